"""Locality metrics of Sec. 4.3: per-pixel squared CIELAB error, and In-/Out-MSE with respect to a region of
interest (the heat-maps that show the error are drawn by ganedit.heatmap)."""

from __future__ import annotations

import numpy as np

# sRGB (linear) -> CIE XYZ, D65 white point (IEC 61966-2-1).
_RGB_TO_XYZ = np.array([
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
])
# D65 white = XYZ of sRGB white under that matrix, so (255, 255, 255) -> L 100, a = b = 0.
_D65_WHITE = _RGB_TO_XYZ.sum(axis=1)
_LAB_DELTA = 6.0 / 29.0

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
