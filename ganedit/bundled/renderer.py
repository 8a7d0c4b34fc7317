"""Procedural 64x64 cartoon faces: training data and ground truth for the bundled model.

The bundled StyleGAN2 is trained on faces drawn by :func:`render`, so every
image comes with exact per-pixel part labels (:data:`PARTS`) and the attribute
values that produced it.  That makes it possible to check edits and part
segmentations against ground truth instead of against another network.

Each attribute is read from its own coordinate of ``z`` through the standard
normal CDF, ``u = Phi(z[:, i])`` in (0, 1), and mapped continuously to its
range, so a network can regress the images from ``z``.  Coordinates not listed
are ignored.

=====  ================  ==========================================================
coord  attribute         mapping of u
=====  ================  ==========================================================
0      skin_rgb          palette path pale -> tan -> brown -> dark brown
1      hair_rgb          palette path black -> brown -> red -> blonde -> grey -> blue
2      hair_length       0 short (ear level) .. 1 long (past the bottom edge)
3      bangs             0 high hairline .. 1 heavy fringe down to the brows
4      iris_hue          hue in [0, 1) (saturation 0.9, value 0.85) -> iris_rgb
5      lip_rgb           palette path orange -> red -> pink -> purple -> dark plum
6      smile             -1 frown .. +1 smile (mouth curvature)
7      background_rgb    hue of the background
8      background_rgb    value (HSV) of the background, 0.55 .. 0.95, saturation 0.45
9      brow_thickness    brow stroke height 1.4 .. 3.4 px
10     brow_rgb          palette path black -> dark brown -> brown -> tan
11     nose_size         nose half-axes 1.4x1.6 .. 2.6x3.2 px
12     eye_size          eye white half-axes 4.5x3.6 .. 5.5x4.4 px, iris radius 3-3.7 px
13     face_width        face half-width 16.5 .. 19.5 px
14     hair_volume       0 flat .. 1 voluminous hair outline
15     mouth_width       mouth half-width 5.5 .. 8.5 px
16     lip_thickness     lip height 3.4 .. 5 px
17     offset_x          face centre shift -2 .. 2 px
18     offset_y          face centre shift -1.5 .. 1.5 px
=====  ================  ==========================================================

Drawing: every shape is a signed distance field (negative inside, in pixels)
composited back to front: background, hair (back), neck (labelled face),
face, bangs, brows, eyes (white, iris, pupil, highlight), nose, mouth.  A pixel is labelled with
the topmost shape whose centre-coverage is at least one half (``sdf <= 0``).
Each shape is fully opaque where it owns the label and fades out over one
pixel outside it; shapes whose colour is an attribute (hair, eyes, lips) draw
that colour only inside their label and an outline of another colour in the
anti-aliased band.  Hence changing the hair colour, iris or lip coordinate
changes only pixels labelled hair, eyes or mouth respectively (other colours,
e.g. skin, also tint the outline bands of neighbouring parts).
"""

from dataclasses import dataclass

import numpy as np
import torch

PARTS = ("background", "face", "hair", "eyes", "brows", "nose", "mouth")
Z_DIM = 32
RESOLUTION = 64

BACKGROUND, FACE, HAIR, EYES, BROWS, NOSE, MOUTH = range(len(PARTS))

COORDINATES = {
    "skin": 0,
    "hair_colour": 1,
    "hair_length": 2,
    "bangs": 3,
    "iris_hue": 4,
    "lip_colour": 5,
    "smile": 6,
    "background_hue": 7,
    "background_lightness": 8,
    "brow_thickness": 9,
    "brow_colour": 10,
    "nose_size": 11,
    "eye_size": 12,
    "face_width": 13,
    "hair_volume": 14,
    "mouth_width": 15,
    "lip_thickness": 16,
    "offset_x": 17,
    "offset_y": 18,
}

_SKIN_PATH = ((1.00, 0.87, 0.77), (0.96, 0.76, 0.60), (0.82, 0.60, 0.42),
              (0.60, 0.40, 0.26), (0.40, 0.25, 0.16))
_HAIR_PATH = ((0.07, 0.06, 0.06), (0.40, 0.22, 0.10), (0.80, 0.25, 0.08),
              (0.96, 0.84, 0.42), (0.75, 0.75, 0.78), (0.20, 0.35, 0.90))
_LIP_PATH = ((0.98, 0.45, 0.12), (0.85, 0.05, 0.10), (0.98, 0.35, 0.65),
             (0.55, 0.12, 0.70), (0.32, 0.03, 0.12))
_BROW_PATH = ((0.05, 0.04, 0.04), (0.28, 0.16, 0.08), (0.50, 0.32, 0.16),
              (0.72, 0.55, 0.35))
_INK = (0.10, 0.07, 0.07)


@dataclass
class Rendering:
    images: torch.Tensor  # [N, 3, 64, 64] float32 RGB in [-1, 1]
    masks: torch.Tensor  # [N, 64, 64] int64 indices into PARTS
    attributes: dict[str, torch.Tensor]  # name -> [N] or [N, 3] (colours in [0, 1])


def sample_z(n: int, seed: int) -> torch.Tensor:
    """[n, Z_DIM] float32 standard normal latents from ``np.random.RandomState(seed)``."""
    return torch.from_numpy(np.random.RandomState(seed).randn(n, Z_DIM).astype(np.float32))


def _palette(u, stops):
    """Piecewise-linear colour along ``stops`` at positions u in [0, 1] -> [N, 3]."""
    stops = torch.tensor(stops, dtype=torch.float32)
    t = u.clamp(0, 1) * (len(stops) - 1)
    index = t.floor().clamp(max=len(stops) - 2).long()
    frac = (t - index)[:, None]
    return stops[index] * (1 - frac) + stops[index + 1] * frac


def _hsv_to_rgb(hue, saturation, value):
    """Continuous HSV -> RGB for [N] tensors, returns [N, 3]."""
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = (n + hue * 6) % 6
        ramp = torch.minimum(k, 4 - k).clamp(0, 1)
        channels.append(value * (1 - saturation * ramp))
    return torch.stack(channels, dim=1)


def _ellipse_sdf(x, y, cx, cy, ax, ay):
    """First-order signed distance to an axis-aligned ellipse (exact sign)."""
    dx, dy = x - cx, y - cy
    q = torch.sqrt((dx / ax) ** 2 + (dy / ay) ** 2)
    grad = torch.sqrt((dx / ax ** 2) ** 2 + (dy / ay ** 2) ** 2) / q.clamp(min=1e-6)
    return (q - 1) / torch.maximum(grad, 1 / torch.maximum(ax, ay))


def _circle_sdf(x, y, cx, cy, radius):
    return torch.sqrt((x - cx) ** 2 + (y - cy) ** 2) - radius


def _box_sdf(x, y, cx, cy, half_w, half_h, radius):
    """Rounded box centred at (cx, cy)."""
    qx = (x - cx).abs() - half_w + radius
    qy = (y - cy).abs() - half_h + radius
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2)
    return outside + torch.maximum(qx, qy).clamp(max=0) - radius


def _stroke_sdf(x, y, cx, cy, half_length, bend, half_thickness, taper):
    """Parabolic stroke: positive ``bend`` lifts the ends, thickness tapers to the ends."""
    u = (x - cx) / half_length
    centre_y = cy - bend * (u ** 2 - 0.5)
    slope = 2 * bend * u / half_length
    thickness = half_thickness * (1 - taper * u.clamp(-1, 1) ** 2)
    across = ((y - centre_y).abs() - thickness) / torch.sqrt(1 + slope ** 2)
    return torch.maximum(across, (x - cx).abs() - half_length)


def _as_colour(colour):
    return colour[:, :, None, None] if colour.dim() == 2 else colour


def _paint(canvas, sdf, colour, ink=None):
    """Composite one shape.

    Without ink the shape is opaque for ``sdf <= 0`` and fades over one pixel
    outside.  With ink, the anti-aliased band is drawn in ``ink`` and
    ``colour`` appears only where ``sdf < 0``, so the colour never reaches
    pixels labelled as something else.  ``a * c + (1 - a) * canvas`` is exact
    at a = 0 and a = 1, which keeps untouched pixels bitwise identical.
    """
    cover = (1 - sdf).clamp(0, 1)[:, None]
    if ink is None:
        return canvas * (1 - cover) + _as_colour(colour) * cover
    canvas = canvas * (1 - cover) + _as_colour(ink) * cover
    fill = (-sdf).clamp(0, 1)[:, None]
    return canvas * (1 - fill) + _as_colour(colour) * fill


def _label(mask, sdf, part):
    return torch.where(sdf <= 0, torch.full_like(mask, part), mask)


def _attributes(z):
    u = torch.special.ndtr(z[:, :Z_DIM]).clamp(0, 1)

    def coord(name):
        return u[:, COORDINATES[name]]

    iris_hue = coord("iris_hue")
    return {
        "skin_rgb": _palette(coord("skin"), _SKIN_PATH),
        "hair_rgb": _palette(coord("hair_colour"), _HAIR_PATH),
        "hair_length": coord("hair_length"),
        "bangs": coord("bangs"),
        "iris_hue": iris_hue,
        "iris_rgb": _hsv_to_rgb(iris_hue, torch.full_like(iris_hue, 0.9), torch.full_like(iris_hue, 0.85)),
        "lip_rgb": _palette(coord("lip_colour"), _LIP_PATH),
        "smile": 2 * coord("smile") - 1,
        "background_rgb": _hsv_to_rgb(coord("background_hue"), torch.full_like(iris_hue, 0.45),
                                      0.55 + 0.4 * coord("background_lightness")),
        "brow_thickness": 1.4 + 2.0 * coord("brow_thickness"),
        "brow_rgb": _palette(coord("brow_colour"), _BROW_PATH),
        "nose_size": coord("nose_size"),
        "eye_size": 0.9 + 0.2 * coord("eye_size"),
        "face_width": 16.5 + 3.0 * coord("face_width"),
        "hair_volume": coord("hair_volume"),
        "mouth_width": 5.5 + 3.0 * coord("mouth_width"),
        "lip_thickness": 3.4 + 1.6 * coord("lip_thickness"),
        "offset_x": 4.0 * coord("offset_x") - 2.0,
        "offset_y": 3.0 * coord("offset_y") - 1.5,
    }


def render(z) -> Rendering:
    """Draw one face per row of ``z`` ([N, >= Z_DIM], tensor or array)."""
    z = torch.as_tensor(z).detach().to(torch.float32)
    if z.dim() != 2 or z.shape[1] < Z_DIM:
        raise ValueError(f"z must have shape [N, >={Z_DIM}], got {tuple(z.shape)}")
    attrs = _attributes(z)
    n = z.shape[0]

    def per_image(values):
        return values[:, None, None]

    pixel = torch.arange(RESOLUTION, dtype=torch.float32) + 0.5
    y, x = pixel[None, :, None], pixel[None, None, :]
    cx = per_image(32.0 + attrs["offset_x"])
    cy = per_image(35.0 + attrs["offset_y"])
    face_w = per_image(attrs["face_width"])
    face_h = torch.full_like(face_w, 21.5)
    skin = attrs["skin_rgb"]
    ink = torch.tensor(_INK).expand(n, 3)

    canvas = attrs["background_rgb"][:, :, None, None] * (1 - 0.1 * pixel[None, None, :, None] / RESOLUTION)
    canvas = canvas.expand(n, 3, RESOLUTION, RESOLUTION).contiguous()
    mask = torch.zeros(n, RESOLUTION, RESOLUTION, dtype=torch.int64)

    # Hair behind the head: skull cap plus a curtain, cut at a length-dependent line.
    volume = per_image(attrs["hair_volume"])
    cap_sdf = _ellipse_sdf(x, y, cx, cy - 2.5, face_w + 2.5 + 3.5 * volume, face_h + 3.0 + 2.5 * volume)
    curtain_sdf = _box_sdf(x, y, cx, cy + 30.0, face_w + 2.0 + 3.0 * volume, 36.0, 5.0)
    hair_end = cy - 3.0 + 34.0 * per_image(attrs["hair_length"])
    hair_back_sdf = torch.maximum(torch.minimum(cap_sdf, curtain_sdf), y - hair_end)
    strands = 0.9 + 0.1 * torch.cos((x - cx) * 1.3)[:, None]
    hair_fill = attrs["hair_rgb"][:, :, None, None] * strands
    canvas = _paint(canvas, hair_back_sdf, hair_fill, ink)
    mask = _label(mask, hair_back_sdf, HAIR)

    neck_sdf = _box_sdf(x, y, cx, cy + 30, 0.45 * face_w, 20.0, 2.0)
    canvas = _paint(canvas, neck_sdf, skin * 0.82, skin * 0.55)
    mask = _label(mask, neck_sdf, FACE)

    face_sdf = _ellipse_sdf(x, y, cx, cy, face_w, face_h)
    canvas = _paint(canvas, face_sdf, skin, skin * 0.55)
    mask = _label(mask, face_sdf, FACE)

    # Bangs: the part of the head cap above a scalloped fringe line.
    fringe = cy - 19.0 + 8.5 * per_image(attrs["bangs"]) - 1.8 * torch.sin((x - cx) * 0.55).abs()
    bangs_sdf = torch.maximum(cap_sdf, y - fringe)
    canvas = _paint(canvas, bangs_sdf, hair_fill, ink)
    mask = _label(mask, bangs_sdf, HAIR)

    eye_y = cy - 1.0
    brow_sdf = torch.minimum(
        *(_stroke_sdf(x, y, cx + side * 8.5, eye_y - 7.5, 5.0, -1.5,
                      per_image(attrs["brow_thickness"]) / 2, 0.5) for side in (-1, 1)))
    canvas = _paint(canvas, brow_sdf, attrs["brow_rgb"])
    mask = _label(mask, brow_sdf, BROWS)

    # Eyes: the white owns the label; iris, pupil and highlight are clipped to its interior.
    eye_scale = per_image(attrs["eye_size"])
    eye_xs = [cx - 8.0, cx + 8.0]
    white_sdf = torch.minimum(*(_ellipse_sdf(x, y, ex, eye_y, 5.0 * eye_scale, 4.0 * eye_scale) for ex in eye_xs))
    # _paint reaches one pixel outside a shape; this shift keeps eye colours where white_sdf < 0.
    inside_white = white_sdf + 1.0
    iris_radius = 3.3 * eye_scale
    iris_sdf = torch.minimum(*(_circle_sdf(x, y, ex, eye_y + 0.3, iris_radius) for ex in eye_xs))
    pupil_sdf = torch.minimum(*(_circle_sdf(x, y, ex, eye_y + 0.3, 1.4 * eye_scale) for ex in eye_xs))
    glint_sdf = torch.minimum(*(_circle_sdf(x, y, ex + 1.2, eye_y - 0.9, 0.9) for ex in eye_xs))
    iris = attrs["iris_rgb"]
    canvas = _paint(canvas, white_sdf, torch.ones(n, 3), ink)
    canvas = _paint(canvas, torch.maximum(iris_sdf, inside_white), iris * 0.55)
    canvas = _paint(canvas, torch.maximum(iris_sdf + 0.9, inside_white), iris)
    canvas = _paint(canvas, torch.maximum(pupil_sdf, inside_white), ink)
    canvas = _paint(canvas, torch.maximum(glint_sdf, inside_white), torch.ones(n, 3))
    mask = _label(mask, white_sdf, EYES)

    nose_size = per_image(attrs["nose_size"])
    nose_sdf = _ellipse_sdf(x, y, cx, cy + 6.5, 1.4 + 1.2 * nose_size, 1.6 + 1.6 * nose_size)
    canvas = _paint(canvas, nose_sdf, skin * 0.72)
    mask = _label(mask, nose_sdf, NOSE)

    mouth_y = cy + 13.5
    mouth_w = per_image(attrs["mouth_width"])
    bend = 3.0 * per_image(attrs["smile"])
    lips_sdf = _stroke_sdf(x, y, cx, mouth_y, mouth_w, bend, per_image(attrs["lip_thickness"]) / 2, 0.7)
    lip_line_sdf = torch.maximum(_stroke_sdf(x, y, cx, mouth_y, mouth_w, bend, 0.45, 0.0), lips_sdf + 1.0)
    lips = attrs["lip_rgb"]
    canvas = _paint(canvas, lips_sdf, lips, skin * 0.5)
    canvas = _paint(canvas, lip_line_sdf, lips * 0.45)
    mask = _label(mask, lips_sdf, MOUTH)

    images = (canvas * 2 - 1).clamp(-1, 1)
    return Rendering(images=images, masks=mask, attributes=attrs)
