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
e.g. skin, also tint the outline bands of neighbouring parts).  The distance
fields and the compositing live in :mod:`ganedit.bundled.shapes`, shared with
the 128 px :mod:`ganedit.bundled.renderer_v2`.
"""


import torch

from .shapes import (INK, box_sdf, checked_latents, circle_sdf, coordinate_reader, ellipse_sdf, hsv_to_rgb, label,
                     paint, palette, Rendering, standard_normal, stroke_sdf)

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

# Colour paths, shared with renderer v2.
SKIN_PATH = ((1.00, 0.87, 0.77), (0.96, 0.76, 0.60), (0.82, 0.60, 0.42),
              (0.60, 0.40, 0.26), (0.40, 0.25, 0.16))
HAIR_PATH = ((0.07, 0.06, 0.06), (0.40, 0.22, 0.10), (0.80, 0.25, 0.08),
              (0.96, 0.84, 0.42), (0.75, 0.75, 0.78), (0.20, 0.35, 0.90))
LIP_PATH = ((0.98, 0.45, 0.12), (0.85, 0.05, 0.10), (0.98, 0.35, 0.65),
             (0.55, 0.12, 0.70), (0.32, 0.03, 0.12))
BROW_PATH = ((0.05, 0.04, 0.04), (0.28, 0.16, 0.08), (0.50, 0.32, 0.16),
              (0.72, 0.55, 0.35))


def sample_z(n: int, seed: int) -> torch.Tensor:
    """[n, Z_DIM] float32 standard normal latents from ``np.random.RandomState(seed)``."""
    return standard_normal(n, seed, Z_DIM)


def _attributes(z):
    coord = coordinate_reader(z, Z_DIM, COORDINATES)
    iris_hue = coord("iris_hue")
    return {
        "skin_rgb": palette(coord("skin"), SKIN_PATH),
        "hair_rgb": palette(coord("hair_colour"), HAIR_PATH),
        "hair_length": coord("hair_length"),
        "bangs": coord("bangs"),
        "iris_hue": iris_hue,
        "iris_rgb": hsv_to_rgb(iris_hue, torch.full_like(iris_hue, 0.9), torch.full_like(iris_hue, 0.85)),
        "lip_rgb": palette(coord("lip_colour"), LIP_PATH),
        "smile": 2 * coord("smile") - 1,
        "background_rgb": hsv_to_rgb(coord("background_hue"), torch.full_like(iris_hue, 0.45),
                                      0.55 + 0.4 * coord("background_lightness")),
        "brow_thickness": 1.4 + 2.0 * coord("brow_thickness"),
        "brow_rgb": palette(coord("brow_colour"), BROW_PATH),
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
    z = checked_latents(z, Z_DIM)
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
    ink = torch.tensor(INK).expand(n, 3)

    canvas = attrs["background_rgb"][:, :, None, None] * (1 - 0.1 * pixel[None, None, :, None] / RESOLUTION)
    canvas = canvas.expand(n, 3, RESOLUTION, RESOLUTION).contiguous()
    mask = torch.zeros(n, RESOLUTION, RESOLUTION, dtype=torch.int64)

    # Hair behind the head: skull cap plus a curtain, cut at a length-dependent line.
    volume = per_image(attrs["hair_volume"])
    cap_sdf = ellipse_sdf(x, y, cx, cy - 2.5, face_w + 2.5 + 3.5 * volume, face_h + 3.0 + 2.5 * volume)
    curtain_sdf = box_sdf(x, y, cx, cy + 30.0, face_w + 2.0 + 3.0 * volume, 36.0, 5.0)
    hair_end = cy - 3.0 + 34.0 * per_image(attrs["hair_length"])
    hair_back_sdf = torch.maximum(torch.minimum(cap_sdf, curtain_sdf), y - hair_end)
    strands = 0.9 + 0.1 * torch.cos((x - cx) * 1.3)[:, None]
    hair_fill = attrs["hair_rgb"][:, :, None, None] * strands
    canvas = paint(canvas, hair_back_sdf, hair_fill, ink)
    mask = label(mask, hair_back_sdf, HAIR)

    neck_sdf = box_sdf(x, y, cx, cy + 30, 0.45 * face_w, 20.0, 2.0)
    canvas = paint(canvas, neck_sdf, skin * 0.82, skin * 0.55)
    mask = label(mask, neck_sdf, FACE)

    face_sdf = ellipse_sdf(x, y, cx, cy, face_w, face_h)
    canvas = paint(canvas, face_sdf, skin, skin * 0.55)
    mask = label(mask, face_sdf, FACE)

    # Bangs: the part of the head cap above a scalloped fringe line.
    fringe = cy - 19.0 + 8.5 * per_image(attrs["bangs"]) - 1.8 * torch.sin((x - cx) * 0.55).abs()
    bangs_sdf = torch.maximum(cap_sdf, y - fringe)
    canvas = paint(canvas, bangs_sdf, hair_fill, ink)
    mask = label(mask, bangs_sdf, HAIR)

    eye_y = cy - 1.0
    brow_sdf = torch.minimum(
        *(stroke_sdf(x, y, cx + side * 8.5, eye_y - 7.5, 5.0, -1.5,
                      per_image(attrs["brow_thickness"]) / 2, 0.5) for side in (-1, 1)))
    canvas = paint(canvas, brow_sdf, attrs["brow_rgb"])
    mask = label(mask, brow_sdf, BROWS)

    # Eyes: the white owns the label; iris, pupil and highlight are clipped to its interior.
    eye_scale = per_image(attrs["eye_size"])
    eye_xs = [cx - 8.0, cx + 8.0]
    white_sdf = torch.minimum(*(ellipse_sdf(x, y, ex, eye_y, 5.0 * eye_scale, 4.0 * eye_scale) for ex in eye_xs))
    # paint reaches one pixel outside a shape; this shift keeps eye colours where white_sdf < 0.
    inside_white = white_sdf + 1.0
    iris_radius = 3.3 * eye_scale
    iris_sdf = torch.minimum(*(circle_sdf(x, y, ex, eye_y + 0.3, iris_radius) for ex in eye_xs))
    pupil_sdf = torch.minimum(*(circle_sdf(x, y, ex, eye_y + 0.3, 1.4 * eye_scale) for ex in eye_xs))
    glint_sdf = torch.minimum(*(circle_sdf(x, y, ex + 1.2, eye_y - 0.9, 0.9) for ex in eye_xs))
    iris = attrs["iris_rgb"]
    canvas = paint(canvas, white_sdf, torch.ones(n, 3), ink)
    canvas = paint(canvas, torch.maximum(iris_sdf, inside_white), iris * 0.55)
    canvas = paint(canvas, torch.maximum(iris_sdf + 0.9, inside_white), iris)
    canvas = paint(canvas, torch.maximum(pupil_sdf, inside_white), ink)
    canvas = paint(canvas, torch.maximum(glint_sdf, inside_white), torch.ones(n, 3))
    mask = label(mask, white_sdf, EYES)

    nose_size = per_image(attrs["nose_size"])
    nose_sdf = ellipse_sdf(x, y, cx, cy + 6.5, 1.4 + 1.2 * nose_size, 1.6 + 1.6 * nose_size)
    canvas = paint(canvas, nose_sdf, skin * 0.72)
    mask = label(mask, nose_sdf, NOSE)

    mouth_y = cy + 13.5
    mouth_w = per_image(attrs["mouth_width"])
    bend = 3.0 * per_image(attrs["smile"])
    lips_sdf = stroke_sdf(x, y, cx, mouth_y, mouth_w, bend, per_image(attrs["lip_thickness"]) / 2, 0.7)
    lip_line_sdf = torch.maximum(stroke_sdf(x, y, cx, mouth_y, mouth_w, bend, 0.45, 0.0), lips_sdf + 1.0)
    lips = attrs["lip_rgb"]
    canvas = paint(canvas, lips_sdf, lips, skin * 0.5)
    canvas = paint(canvas, lip_line_sdf, lips * 0.45)
    mask = label(mask, lips_sdf, MOUTH)

    images = (canvas * 2 - 1).clamp(-1, 1)
    return Rendering(images=images, masks=mask, attributes=attrs)
