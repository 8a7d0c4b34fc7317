"""Locality metrics of Sec. 4.3: per-pixel squared CIELAB error, In-/Out-MSE
with respect to a region of interest, and a heat-map rendering of the error."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# sRGB (linear) -> CIE XYZ, D65 white point (IEC 61966-2-1).
_RGB_TO_XYZ = np.array([
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
])
# D65 white = XYZ of sRGB white under that matrix, so (255, 255, 255) -> L 100, a = b = 0.
_D65_WHITE = _RGB_TO_XYZ.sum(axis=1)
_LAB_DELTA = 6.0 / 29.0

# 'inferno' sampled at 0, 0.1, ..., 1 (perceptually uniform, dark = no change).
_INFERNO = np.array([
    [0, 0, 4], [22, 11, 57], [66, 10, 104], [106, 23, 110], [147, 38, 103],
    [188, 55, 84], [221, 81, 58], [243, 120, 25], [252, 165, 10], [246, 215, 70],
    [252, 255, 164],
], dtype=np.float64)


def rgb_to_lab(image) -> np.ndarray:
    """sRGB [..., 3] (uint8, or floats in [0, 255]) -> CIELAB [..., 3] float64."""
    rgb = np.asarray(image, dtype=np.float64)
    if rgb.shape[-1:] != (3,):
        raise ValueError(f"image must have a last axis of size 3 (RGB), got shape {rgb.shape}")
    if rgb.size and (np.isnan(rgb).any() or rgb.min() < 0 or rgb.max() > 255):
        raise ValueError("image values must lie in [0, 255]")
    c = rgb / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _D65_WHITE
    f = np.where(xyz > _LAB_DELTA ** 3, np.cbrt(xyz), xyz / (3 * _LAB_DELTA ** 2) + 4.0 / 29.0)
    lightness = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, a, b], axis=-1)


def lab_squared_error(a, b) -> np.ndarray:
    """Per-pixel squared CIELAB distance (Delta E^2, CIE76) [H, W] between two
    RGB images [H, W, 3]."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 3 or a.shape != b.shape:
        raise ValueError(f"images must both be [H, W, 3] with equal shapes, got {a.shape} and {b.shape}")
    return ((rgb_to_lab(a) - rgb_to_lab(b)) ** 2).sum(axis=-1)


def _check_error_roi(error, roi) -> tuple[np.ndarray, np.ndarray]:
    error, roi = np.asarray(error, dtype=np.float64), np.asarray(roi)
    if roi.dtype != bool:
        raise ValueError(f"roi must be a boolean mask, got dtype {roi.dtype}")
    if error.shape != roi.shape:
        raise ValueError(f"error and roi must have the same shape, got {error.shape} and {roi.shape}")
    return error, roi


def in_out_mse(error, roi) -> tuple[float, float]:
    """(In-MSE, Out-MSE): mean of ``error`` inside / outside the bool ``roi``.

    A side with no pixels (ROI empty or covering everything) reports 0.0, so
    sweeps over many images can average without NaNs.
    """
    error, roi = _check_error_roi(error, roi)
    inside, outside = error[roi], error[~roi]
    in_mse = float(inside.mean()) if inside.size else 0.0
    out_mse = float(outside.mean()) if outside.size else 0.0
    return in_mse, out_mse


def inside_share(error, roi) -> float:
    """Fraction of the total error that falls inside ``roi`` (0.0 if no error)."""
    error, roi = _check_error_roi(error, roi)
    total = error.sum()
    return float(error[roi].sum() / total) if total > 0 else 0.0


# A fixed scale for difference maps, so that edits can be compared: Delta E^2 = 2500 (Delta E 50, a change from
# one clear colour to another) and above show as the brightest colour.
DIFFERENCE_SCALE = 2500.0


def _colorize(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to inferno RGB uint8 by linear interpolation."""
    stops = np.linspace(0.0, 1.0, len(_INFERNO))
    channels = [np.interp(values, stops, _INFERNO[:, i]) for i in range(3)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def heatmap_colours() -> list[str]:
    """The heat-map's colour stops from 0 to vmax, as CSS hex colours (for a legend drawn by a page)."""
    return ["#%02x%02x%02x" % tuple(int(v) for v in rgb) for rgb in _INFERNO]


def percentile_scale(error) -> float:
    """A per-picture scale: the 99th percentile of the error (at least 1e-6), so a few outliers don't wash it out."""
    return max(float(np.percentile(np.asarray(error, dtype=np.float64), 99)), 1e-6)


def heatmap(error, vmax: float) -> np.ndarray:
    """An error map [H, W] as inferno RGB uint8 [H, W, 3]: 0 is black, ``vmax`` and above pale yellow."""
    error = np.asarray(error, dtype=np.float64)
    if error.ndim != 2 or error.size == 0:
        raise ValueError(f"error must be a non-empty 2-D map [H, W], got shape {error.shape}")
    if not np.isfinite(error).all():
        raise ValueError("error must be finite")
    if not (np.isfinite(vmax) and vmax > 0):
        raise ValueError(f"vmax must be a finite positive number, got {vmax}")
    return _colorize(np.clip(error / vmax, 0.0, 1.0))


def difference_heatmap(error, vmax: float | None = None) -> np.ndarray:
    """Render an error map [H, W] as an inferno heat-map with a colour-bar legend.

    Returns uint8 RGB [H, W + legend width, 3]: columns [:W] are the heat-map
    (0 -> black, >= vmax -> pale yellow); to the right, on white, a vertical
    colour bar with ticks labelled 0, vmax / 2 and vmax in the error's units
    (Delta E^2 for ``lab_squared_error``). ``vmax`` defaults to the 99th
    percentile of the error (at least 1e-6), so a few outliers do not wash
    out the map.
    """
    vmax = percentile_scale(error) if vmax is None else vmax
    heat = heatmap(error, vmax)
    height = heat.shape[0]

    font = ImageFont.load_default(size=max(10, height // 20))
    ticks = [0.0, vmax / 2, vmax]
    labels = [f"{t:.3g}" for t in ticks]
    text_width = max(int(np.ceil(font.getlength(label))) for label in labels)
    text_height = font.getbbox("0123456789")[3]
    gap, bar_width, tick_length, margin = 4, 10, 3, 2
    bar_left = gap
    text_left = bar_left + bar_width + tick_length + margin
    legend_width = text_left + text_width + margin

    # The bar leaves half a text line free at each end so the labels fit, and a tenth of the height free at
    # the top, where viewers put their buttons.
    pad = min(text_height // 2 + 1, max((height - 2) // 2, 0))
    bar_top, bar_bottom = max(pad, height // 10), height - 1 - pad
    rows = np.arange(bar_top, bar_bottom + 1)
    fraction = 1.0 - (rows - bar_top) / max(bar_bottom - bar_top, 1)

    legend = np.full((height, legend_width, 3), 255, dtype=np.uint8)
    legend[bar_top:bar_bottom + 1, bar_left:bar_left + bar_width] = _colorize(fraction)[:, None, :]
    legend_image = Image.fromarray(legend)
    draw = ImageDraw.Draw(legend_image)
    for value, label in zip(ticks, labels):
        y = bar_bottom - (value / vmax) * (bar_bottom - bar_top)
        x0 = bar_left + bar_width
        draw.line([(x0, y), (x0 + tick_length - 1, y)], fill=(0, 0, 0))
        draw.text((text_left, y - text_height / 2), label, fill=(0, 0, 0), font=font)
    return np.concatenate([heat, np.asarray(legend_image)], axis=1)
