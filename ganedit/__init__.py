"""ganedit: local semantic editing of StyleGAN / StyleGAN2 images (Collins et al., "Editing in Style", CVPR 2020).

This module's exports are the public API that the app, the CLI and notebooks use.
"""

from ._version import __version__

from .loading import (
    BUNDLED_MODELS, MODELS, ModelFileError, WeightsUnavailableError, availability, load_generator, model_info,
    save_generator,
)
from .catalog import SLIDER_STEP, Catalog, build_catalog, default_layer, load_catalog
from .editing import (
    METHODS, PSI_RANGE, EditResult, PreparedSeed, edit, edit_prepared, prepare_seed, transfer, why_nothing_moved,
)
from .figures import (
    cluster_at, cluster_colours, cluster_overlay, cluster_palette, difference_panel, difference_picture, edit_grid,
    edit_strip, enlarge, part_palette, seed_overlay,
)
from .heatmap import DIFFERENCE_SCALE, difference_heatmap, heatmap, heatmap_colours, percentile_scale
from .metrics import in_out_mse, inside_share, lab_squared_error
from .networks import Generator, StyleLayer, Styles
from .query import DEFAULT_THRESHOLD, THRESHOLD_RANGE, global_query, sequential_query, simultaneous_query
from .request import FIELDS as REQUEST_FIELDS
from .request import (
    MAX_GRID_PARTS, MAX_GRID_REFERENCES, EditRequest, GridRequest, RequestError, default_parts, lam_range,
)
from .seeds import MAX_SEED, seed_to_z, seeds_to_z
from .files import PictureFolders
from .service import EditService, ModelUnavailableError

__all__ = [
    "__version__",
    # models and their files
    "MODELS", "BUNDLED_MODELS", "Generator", "StyleLayer", "Styles", "ModelFileError", "WeightsUnavailableError",
    "availability", "load_generator", "model_info", "save_generator", "seed_to_z", "seeds_to_z", "MAX_SEED",
    # the method
    "Catalog", "SLIDER_STEP", "build_catalog", "default_layer", "load_catalog", "global_query", "sequential_query",
    "simultaneous_query", "DEFAULT_THRESHOLD", "THRESHOLD_RANGE", "PSI_RANGE", "METHODS", "transfer", "edit",
    "EditResult", "PreparedSeed", "prepare_seed", "edit_prepared", "why_nothing_moved",
    # requests: what the app, its API and share links speak
    "EditRequest", "GridRequest", "RequestError", "REQUEST_FIELDS", "MAX_GRID_PARTS", "MAX_GRID_REFERENCES",
    "default_parts", "lam_range",
    # metrics and pictures
    "DIFFERENCE_SCALE", "difference_heatmap", "heatmap", "heatmap_colours", "percentile_scale", "in_out_mse",
    "inside_share", "lab_squared_error", "cluster_at", "cluster_colours", "cluster_overlay", "cluster_palette",
    "part_palette", "seed_overlay", "difference_panel", "difference_picture", "edit_grid", "edit_strip", "enlarge",
    # serving
    "EditService", "ModelUnavailableError", "PictureFolders",
]
