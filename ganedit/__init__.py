"""ganedit: local semantic editing of StyleGAN / StyleGAN2 images (Collins et al., "Editing in Style", CVPR 2020).

This module's exports are the public API that the app, the CLI and notebooks use.
"""

__version__ = "0.1.0"

from .loading import (
    MODELS, ModelFileError, WeightsUnavailableError, availability, load_generator, model_info, save_generator,
)
from .networks import Generator, StyleLayer, Styles
from .query import global_query, sequential_query, simultaneous_query
from .seeds import MAX_SEED, seed_to_z

__all__ = [
    "MAX_SEED", "MODELS", "Generator", "ModelFileError", "StyleLayer", "Styles", "WeightsUnavailableError",
    "availability", "global_query", "load_generator", "model_info", "save_generator", "seed_to_z",
    "sequential_query", "simultaneous_query",
]
