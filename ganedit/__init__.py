"""ganedit: local semantic editing of StyleGAN / StyleGAN2 images (Collins et al., "Editing in Style", CVPR 2020).

This module's exports are the public API that the app, the CLI and notebooks use.
"""

__version__ = "0.1.0"

from .loading import (
    MODELS, ModelFileError, WeightsUnavailableError, availability, load_generator, model_info, save_generator,
)
from .catalog import Catalog, build_catalog, default_layer, load_catalog
from .edit import METHODS, EditResult, PreparedSeed, edit, edit_prepared, prepare_seed, transfer
from .figures import cluster_overlay, difference_panel, edit_grid, edit_strip, enlarge, seed_overlay
from .metrics import difference_heatmap, in_out_mse, inside_share, lab_squared_error
from .networks import Generator, StyleLayer, Styles
from .query import global_query, sequential_query, simultaneous_query
from .seeds import MAX_SEED, seed_to_z
from .service import EditService

__all__ = [
    # models and their files
    "MODELS", "Generator", "StyleLayer", "Styles", "ModelFileError", "WeightsUnavailableError", "availability",
    "load_generator", "model_info", "save_generator", "seed_to_z", "MAX_SEED",
    # the method
    "Catalog", "build_catalog", "default_layer", "load_catalog", "global_query", "sequential_query",
    "simultaneous_query", "METHODS", "transfer", "edit", "EditResult", "PreparedSeed", "prepare_seed", "edit_prepared",
    # metrics and pictures
    "difference_heatmap", "in_out_mse", "inside_share", "lab_squared_error", "cluster_overlay", "seed_overlay",
    "difference_panel", "edit_grid", "edit_strip", "enlarge",
    # serving
    "EditService",
]
