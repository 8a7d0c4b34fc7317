"""StyleGAN and StyleGAN2 generators as plain torch modules (no file formats here: see ganedit.loading)."""

from .generator import Generator, StyleLayer, Styles
from .stylegan import StyleGAN
from .stylegan2 import StyleGAN2

GENERATOR_CLASSES = {cls.kind: cls for cls in (StyleGAN, StyleGAN2)}


def build_generator(kind, config):
    """A generator with freshly initialised weights for ``kind`` ('stylegan' or 'stylegan2') and ``config``."""
    if kind not in GENERATOR_CLASSES:
        raise ValueError(f"unknown generator kind {kind!r}; allowed: {', '.join(GENERATOR_CLASSES)}")
    return GENERATOR_CLASSES[kind](config)


__all__ = ["Generator", "StyleLayer", "Styles", "StyleGAN", "StyleGAN2", "GENERATOR_CLASSES", "build_generator"]
