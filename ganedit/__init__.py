"""ganedit: local semantic editing of StyleGAN / StyleGAN2 images (Collins et al., "Editing in Style", CVPR 2020).

This module's exports are the public API that the app, the CLI and notebooks use.
"""

__version__ = "0.1.0"

from .loading import (
    MODELS, ModelFileError, WeightsUnavailableError, availability, load_generator, model_info, save_generator,
)
from .catalog import Catalog, build_catalog, default_layer, load_catalog
from .edit import METHODS, EditResult, PreparedSeed, edit, edit_prepared, prepare_seed, transfer
from .figures import cluster_overlay, difference_panel, edit_grid, edit_strip, enlarge
from .metrics import difference_heatmap, in_out_mse, inside_share, lab_squared_error
from .networks import Generator, StyleLayer, Styles
from .query import global_query, sequential_query, simultaneous_query
from .seeds import MAX_SEED, seed_to_z
from .service import EditService

__all__ = [
    "Catalog", "EditResult", "METHODS", "PreparedSeed", "build_catalog", "default_layer", "difference_heatmap",
    "edit", "edit_prepared", "in_out_mse", "inside_share", "lab_squared_error", "load_catalog", "prepare_seed",
    "transfer", "MAX_SEED", "EditService", "cluster_overlay", "difference_panel", "edit_grid", "edit_strip", "enlarge", "MODELS", "Generator", "ModelFileError", "StyleLayer", "Styles", "WeightsUnavailableError",
    "availability", "global_query", "load_generator", "model_info", "save_generator", "seed_to_z",
    "sequential_query", "simultaneous_query",
]
