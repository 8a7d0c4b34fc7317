"""What the procedural renderers share: their output and latents, signed-distance shapes, compositing, colours.

All functions work on torch tensors that broadcast to ``[N, H, W]`` (per-pixel fields) or ``[N, 3]`` /
``[N, 3, H, W]`` (colours in [0, 1]).  Signed distances are in pixels, negative inside.

The compositing rule (:func:`paint`, :func:`label`) is what gives the renderers their ground truth: a pixel
is labelled with the topmost shape whose centre lies inside it (``sdf <= 0``), that shape is fully opaque
there, and a shape drawn with an ``ink`` outline puts its own colour only where ``sdf < 0``.  So the colour
of such a shape reaches only pixels labelled with it, and the pixels it does not touch stay bitwise equal.
"""

from dataclasses import dataclass

import numpy as np
import torch

INK = (0.10, 0.07, 0.07)
HIDDEN = 1e4  # signed distance of a shape that is not drawn: paint() leaves the canvas bitwise unchanged


@dataclass
class Rendering:
    images: torch.Tensor  # [N, 3, R, R] float32 RGB in [-1, 1]
    masks: torch.Tensor  # [N, R, R] int64 indices into the renderer's PARTS
    attributes: dict[str, torch.Tensor]  # name -> [N], [N, 3] (colours in [0, 1]) or more (v2's eye centres)


def standard_normal(n, seed, z_dim):
    """[n, z_dim] float32 standard normal latents from ``np.random.RandomState(seed)`` (NVIDIA's seed -> z)."""
    return torch.from_numpy(np.random.RandomState(seed).randn(n, z_dim).astype(np.float32))


def checked_latents(z, z_dim):
    """``z`` (tensor or array) as float32 [N, >= z_dim]; ValueError for any other shape."""
    z = torch.as_tensor(z).detach().to(torch.float32)
    if z.dim() != 2 or z.shape[1] < z_dim:
        raise ValueError(f"z must have shape [N, >={z_dim}], got {tuple(z.shape)}")
    return z


def coordinate_reader(z, z_dim, coordinates):
    """name -> u = Phi(z[:, coordinates[name]]) in [0, 1]: how every attribute reads its own coordinate."""
    u = torch.special.ndtr(z[:, :z_dim]).clamp(0, 1)
    return lambda name: u[:, coordinates[name]]



def palette(u, stops):
    """Piecewise-linear colour along ``stops`` at positions u in [0, 1] -> [N, 3]."""
    stops = torch.tensor(stops, dtype=torch.float32)
    t = u.clamp(0, 1) * (len(stops) - 1)
    index = t.floor().clamp(max=len(stops) - 2).long()
    frac = (t - index)[:, None]
    return stops[index] * (1 - frac) + stops[index + 1] * frac


def hsv_to_rgb(hue, saturation, value):
    """Continuous HSV -> RGB for [N] tensors, returns [N, 3]."""
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = (n + hue * 6) % 6
        ramp = torch.minimum(k, 4 - k).clamp(0, 1)
        channels.append(value * (1 - saturation * ramp))
    return torch.stack(channels, dim=1)


def ellipse_sdf(x, y, cx, cy, ax, ay):
    """First-order signed distance to an axis-aligned ellipse (exact sign)."""
    dx, dy = x - cx, y - cy
    q = torch.sqrt((dx / ax) ** 2 + (dy / ay) ** 2)
    grad = torch.sqrt((dx / ax ** 2) ** 2 + (dy / ay ** 2) ** 2) / q.clamp(min=1e-6)
    return (q - 1) / torch.maximum(grad, 1 / torch.maximum(ax, ay))


def circle_sdf(x, y, cx, cy, radius):
    return torch.sqrt((x - cx) ** 2 + (y - cy) ** 2) - radius


def box_sdf(x, y, cx, cy, half_w, half_h, radius):
    """Rounded box centred at (cx, cy)."""
    qx = (x - cx).abs() - half_w + radius
    qy = (y - cy).abs() - half_h + radius
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2)
    return outside + torch.maximum(qx, qy).clamp(max=0) - radius


def stroke_sdf(x, y, cx, cy, half_length, bend, half_thickness, taper, tilt=None):
    """Parabolic stroke: positive ``bend`` lifts the ends, thickness tapers to the ends.

    ``tilt`` (optional) adds a straight slope dy/dx to the centre line, so a positive tilt lowers the
    right end and lifts the left one.
    """
    u = (x - cx) / half_length
    centre_y = cy - bend * (u ** 2 - 0.5)
    slope = 2 * bend * u / half_length
    if tilt is not None:
        centre_y = centre_y + tilt * (x - cx)
        slope = slope - tilt
    thickness = half_thickness * (1 - taper * u.clamp(-1, 1) ** 2)
    across = ((y - centre_y).abs() - thickness) / torch.sqrt(1 + slope ** 2)
    return torch.maximum(across, (x - cx).abs() - half_length)


def ring_sdf(sdf, half_thickness):
    """The band of half-width ``half_thickness`` around the outline of a shape."""
    return sdf.abs() - half_thickness


def shown(sdf, present):
    """``sdf`` where ``present`` ([N] bool) holds, else :data:`HIDDEN` (a shape that draws nothing)."""
    return torch.where(present[:, None, None], sdf, torch.full_like(sdf, HIDDEN))


def as_colour(colour):
    return colour[:, :, None, None] if colour.dim() == 2 else colour


def paint(canvas, sdf, colour, ink=None):
    """Composite one shape.

    Without ink the shape is opaque for ``sdf <= 0`` and fades over one pixel
    outside.  With ink, the anti-aliased band is drawn in ``ink`` and
    ``colour`` appears only where ``sdf < 0``, so the colour never reaches
    pixels labelled as something else.  ``a * c + (1 - a) * canvas`` is exact
    at a = 0 and a = 1, which keeps untouched pixels bitwise identical.
    """
    cover = (1 - sdf).clamp(0, 1)[:, None]
    if ink is None:
        return canvas * (1 - cover) + as_colour(colour) * cover
    canvas = canvas * (1 - cover) + as_colour(ink) * cover
    fill = (-sdf).clamp(0, 1)[:, None]
    return canvas * (1 - fill) + as_colour(colour) * fill


def paint_(canvas, sdf, colour, ink=None):
    """:func:`paint` in place, with ``torch.lerp``: the same rule in fewer passes over memory.

    Exact at cover 0 and 1 like :func:`paint` (untouched pixels stay bitwise equal, opaque ones take the
    colour), but elsewhere it may differ from :func:`paint` in the last bits, so v1 keeps :func:`paint`.
    ``canvas`` may be a view (a window of a bigger canvas); ``sdf`` and the colours broadcast to it.
    """
    cover = (1 - sdf).clamp(0, 1)[:, None]
    if ink is None:
        return canvas.lerp_(as_colour(colour), cover)
    canvas.lerp_(as_colour(ink), cover)
    return canvas.lerp_(as_colour(colour), (-sdf).clamp(0, 1)[:, None])


def label(mask, sdf, part):
    return torch.where(sdf <= 0, torch.full_like(mask, part), mask)


def label_(mask, sdf, part):
    """:func:`label` in place (``mask`` may be a view)."""
    return mask.masked_fill_(sdf <= 0, part)
