"""The difference heat-map: squared CIELAB error as the 'inferno' colour map, with or without a colour-bar legend."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# 'inferno' sampled at 0, 0.1, ..., 1 (perceptually uniform, dark = no change).
_INFERNO = np.array([
    [0, 0, 4], [22, 11, 57], [66, 10, 104], [106, 23, 110], [147, 38, 103],
    [188, 55, 84], [221, 81, 58], [243, 120, 25], [252, 165, 10], [246, 215, 70],
    [252, 255, 164],
], dtype=np.float64)


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
