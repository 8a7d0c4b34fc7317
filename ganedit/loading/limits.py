"""Bounds on the architectures ganedit builds, checked before a model file makes us allocate anything.

A model file names its architecture (NVIDIA's pickled keyword arguments, or the JSON config in our safetensors
header), and building a generator allocates in proportion to it: a few bytes claiming resolution 2**20 or a million
mapping layers would cost gigabytes and minutes. So every value is checked against bounds that comfortably include
NVIDIA's published models (FFHQ 1024 px StyleGAN: 512 wide, 8 mapping layers, fmap_base 8192; LSUN cars 512 px
StyleGAN2 config-f: fmap_base 16384) and not much more: the largest generator they allow has about 270 M values
(1.1 GB of float32; FFHQ's has 29 M).

Within the bounds, building the generator on torch's meta device is cheap and allocates nothing, and gives the
shape of every tensor: the loaders compare those with the file's tensors before they build the real generator.
"""

import math

import numpy as np
import torch

from ..networks import build_generator, stylegan, stylegan2
from .errors import ModelFileError, shown

_FAMILIES = {"stylegan": stylegan, "stylegan2": stylegan2}  # kind -> module with DEFAULTS and channels_at
SETTINGS = {kind: tuple(family.DEFAULTS) for kind, family in _FAMILIES.items()}  # the config keys of each kind

# key: (what, low, high), with the values of NVIDIA's published models in the comments.
_BOUNDS = {
    "resolution": ("power of two", 4, 2048),  # 1024 (FFHQ), 512 (cars), 256 (cats, bedrooms)
    "z_dim": ("integer", 1, 1024),  # 512
    "w_dim": ("integer", 1, 1024),  # 512
    "mapping_layers": ("integer", 1, 32),  # 8
    "mapping_fmaps": ("integer", 1, 1024),  # 512
    "mapping_lrmul": ("number", 1e-4, 100),  # 0.01
    "fmap_base": ("integer", 1, 1 << 16),  # 8192 (StyleGAN), 16384 (StyleGAN2 config-f)
    "fmap_max": ("integer", 1, 1024),  # 512
    "fmap_min": ("integer", 1, 1024),  # 1
    "fmap_decay": ("number", 0, 4),  # 1.0
    "blur_filter": ("taps", 2, 6),  # [1, 2, 1]; paddings follow the length (tested against NVIDIA's for 2-6 taps)
    "resample_kernel": ("taps", 2, 6),  # [1, 3, 3, 1]
    "fused_scale": ("choice", None, None),  # "auto"
    "conv_clamp": ("number or None", 1e-3, 1 << 20),  # stylegan2-ada-pytorch's models: 256; NVIDIA's TF ones: None
}
_CHOICES = (True, False, "auto")


def _allowed(what, low, high):
    return {
        "power of two": f"a power of two from {low} to {high}",
        "integer": f"an integer from {low} to {high}",
        "number": f"a number from {low} to {high}",
        "number or None": f"None or a number from {low} to {high}",
        "taps": f"a list of {low} to {high} finite numbers with a positive sum",
        "choice": " or ".join(map(repr, _CHOICES)),
    }[what]


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


_REFUSED = object()


def _checked_value(what, low, high, value):
    """``value`` as plain Python data if it is within the bound, else _REFUSED."""
    if what == "number or None" and value is None:
        return None
    if what in ("integer", "power of two"):
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and low <= value <= high:
            if what == "integer" or value & (value - 1) == 0:
                return int(value)
    elif what in ("number", "number or None"):
        if _is_number(value) and low <= value <= high:  # (NaN fails the comparison)
            return float(value)
    elif what == "taps":
        if isinstance(value, (list, tuple)) and low <= len(value) <= high and all(map(_is_number, value)):
            taps = [float(v) for v in value]
            if all(map(math.isfinite, taps)) and sum(taps) > 0:
                return taps
    elif type(value) in (bool, str) and value in _CHOICES:
        return value
    return _REFUSED


def checked_config(path, kind, config):
    """``config`` for a ``kind`` generator as plain Python data; ModelFileError names a value out of bounds."""
    if not isinstance(kind, str) or kind not in _FAMILIES:
        raise ModelFileError(f"{path}: unknown generator kind {shown(kind)}; allowed: {', '.join(_FAMILIES)}")
    if not isinstance(config, dict):
        raise ModelFileError(f"{path}: the architecture is {type(config).__name__}, not a dict of settings")
    unknown = sorted(map(shown, set(config) - set(SETTINGS[kind])))
    if unknown:
        allowed = ", ".join(SETTINGS[kind])
        raise ModelFileError(f"{path}: unknown {kind} settings {', '.join(unknown)}; allowed: {allowed}")
    checked = {}
    for key, value in config.items():
        checked[key] = _checked_value(*_BOUNDS[key], value)
        if checked[key] is _REFUSED:
            allowed = _allowed(*_BOUNDS[key])
            raise ModelFileError(f"{path}: {key}={shown(value)} is outside what ganedit builds ({allowed})")
    family = _FAMILIES[kind]
    full = {**family.DEFAULTS, **checked}
    widths = [family.channels_at(full, stage) for stage in range(1, int(math.log2(full["resolution"])))]
    if min(widths) < 1:
        raise ModelFileError(f"{path}: fmap_base, fmap_decay and fmap_max give layers without channels: {widths}")
    return checked


def skeleton(path, kind, config):
    """The ``kind`` generator of ``config``, built on the meta device: every tensor's shape, no memory.

    Raises ModelFileError if ``config`` is out of bounds (see checked_config). Build the real generator from
    the skeleton's ``config`` once the file's tensors are known to fit its ``state_dict()`` shapes.
    """
    config = checked_config(path, kind, config)
    with torch.device("meta"):
        return build_generator(kind, config)
