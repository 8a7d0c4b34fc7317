"""Procedural 128x128 cartoon faces with ground-truth part masks (renderer v2).

The same design as :mod:`ganedit.bundled.renderer` (v1, 64 px), with more parts and attributes: every image
comes with exact per-pixel part labels (:data:`PARTS`) and the attribute values that produced it.

Each attribute is read from its own coordinate of ``z`` through the standard normal CDF,
``u = Phi(z[:, i])`` in (0, 1), and mapped continuously to its range (the three accessories switch on at
``u > 0.5``), so a network can regress the images from ``z``.  Coordinates past :data:`Z_DIM` are ignored.
Coordinates 0-18 are v1's attributes under the same names, their ranges adapted to 128 px.

=====  ===================  ===========================================================================
coord  attribute            mapping of u (lengths in pixels at 128 px)
=====  ===================  ===========================================================================
0      skin_rgb             palette path pale -> tan -> brown -> dark brown
1      hair_rgb             palette path black -> brown -> red -> blonde -> grey -> blue
2      hair_length          0 short (above the ears) .. 1 long (to the bottom edge)
3      bangs                0 high hairline .. 1 heavy fringe down to the brows
4      iris_hue             hue in [0, 1) (saturation 0.8, value 0.8) -> iris_rgb
5      lip_rgb              palette path orange -> red -> pink -> purple -> dark plum
6      smile                -1 frown .. +1 smile (mouth curvature)
7      background_rgb       hue of the background
8      background_rgb       value (HSV) of the background, 0.6 .. 0.95, saturation 0.35
9      brow_thickness       brow stroke height 2.6 .. 6 px
10     brow_rgb             palette path black -> dark brown -> brown -> tan
11     nose_size            nose half-axes 3x3.6 .. 5x6 px
12     eye_size             eye white half-axes 7.2x5.3 .. 9.8x7.1 px (scale 0.85 .. 1.15)
13     face_width           face half-width 28 .. 34 px (half-height 36)
14     hair_volume          0 flat .. 1 voluminous hair outline
15     mouth_width          mouth half-width 9 .. 14 px
16     lip_thickness        lip height 5 .. 8 px
17     offset_x             face centre shift -4 .. 4 px
18     offset_y             face centre shift -3 .. 3 px
19     iris_size            iris radius 0.85 .. 1.15 x 5.2 px x eye scale (pupil 0.48 x iris)
20     brow_tilt            -1 inner ends lowered (cross) .. +1 inner ends raised (worried), +-2.2 px
21     glasses              glasses drawn when u > 0.5 (attribute 0. / 1.)
22     glasses_rgb          frame palette black -> tortoise -> red -> gold -> silver -> blue
23     glasses_shape        0 oval .. 1 rectangular rims
24     earrings             earrings drawn when u > 0.5 (attribute 0. / 1.)
25     earring_rgb          palette gold -> silver -> rose gold -> turquoise -> ruby -> emerald
26     shirt_rgb            palette navy -> blue -> green -> mustard -> red -> purple -> white -> charcoal
27     neckline             neckline depth 4 .. 14 px
28     facial_hair          moustache and beard drawn when u > 0.5 (attribute 0. / 1.)
29     facial_hair_amount   0 moustache and chinstrap .. 1 full beard
30     facial_hair_rgb      palette black -> dark brown -> brown -> auburn -> blonde -> grey
31     background_pattern   no dots for u <= 0.5, then dots on a hexagonal grid, period 22 .. 10 px
=====  ===================  ===========================================================================

Drawing: every shape is a signed distance field (negative inside, in pixels, helpers in
:mod:`ganedit.bundled.shapes`) composited back to front: background (with dots), hair (back), neck
(labelled face), shirt with collar, ears (face), face, earrings, facial hair, bangs (hair), brows, eyes
(white, iris, pupil, highlight, upper lid), nose, mouth, glasses (frame only; the lenses are clear).  A pixel
is labelled with the topmost shape whose centre-coverage is at least one half (``sdf <= 0``).  Each shape is
fully opaque where it owns the label and fades out over one pixel outside it (anti-aliasing).  Every shape
whose colour is an attribute draws that colour, and its shading, only inside its label, with an outline
of a colour that is not that attribute in the anti-aliased band (ink, or a shade of skin on the face).
Shading (radial on the face, vertical and sheen on the hair, folds on the shirt, metal on the earrings) is a
fixed function of the geometry multiplying the part's colour.  Hence changing a colour coordinate (hair,
iris, lips, brows, shirt, glasses, earrings, facial hair, background colour or pattern) changes only pixels
labelled with that part.  Skin is the exception: it also tints outline bands of the parts next to it.

Only a window of the canvas that bounds a part over every allowed z is computed for the small parts (eyes,
nose, mouth, ...), and painting is in place, which keeps a batch of 256 faces at about half a second on one
CPU thread; the result equals a full-frame computation (up to rounding in the last bit of a few shaded pixels).
"""

import math

import torch

from . import renderer
from .renderer import BROW_PATH, HAIR_PATH, LIP_PATH, SKIN_PATH
from .shapes import (INK, box_sdf, checked_latents, circle_sdf, coordinate_reader, ellipse_sdf, hsv_to_rgb, label_,
                     paint_, palette, Rendering, ring_sdf, shown, standard_normal, stroke_sdf)

PARTS = ("background", "face", "hair", "eyes", "brows", "nose", "mouth", "glasses", "earrings", "shirt",
         "facial_hair")
Z_DIM = 32
RESOLUTION = 128

(BACKGROUND, FACE, HAIR, EYES, BROWS, NOSE, MOUTH, GLASSES, EARRINGS, SHIRT, FACIAL_HAIR) = range(len(PARTS))

COORDINATES = {  # v1's 0-18, then the new attributes
    **renderer.COORDINATES,
    "iris_size": 19,
    "brow_tilt": 20,
    "glasses": 21,
    "glasses_colour": 22,
    "glasses_shape": 23,
    "earrings": 24,
    "earring_colour": 25,
    "shirt_colour": 26,
    "neckline": 27,
    "facial_hair": 28,
    "facial_hair_amount": 29,
    "facial_hair_colour": 30,
    "background_pattern": 31,
}

_GLASSES_PATH = ((0.08, 0.08, 0.10), (0.45, 0.25, 0.10), (0.80, 0.15, 0.15),
                 (0.85, 0.68, 0.25), (0.75, 0.77, 0.80), (0.15, 0.35, 0.80))
_EARRING_PATH = ((0.95, 0.78, 0.25), (0.82, 0.84, 0.88), (0.90, 0.55, 0.50),
                 (0.15, 0.75, 0.75), (0.80, 0.10, 0.30), (0.20, 0.65, 0.30))
_SHIRT_PATH = ((0.15, 0.20, 0.45), (0.20, 0.45, 0.80), (0.20, 0.60, 0.45), (0.95, 0.80, 0.30),
               (0.85, 0.25, 0.25), (0.55, 0.30, 0.60), (0.92, 0.92, 0.90), (0.25, 0.25, 0.28))
_FACIALHAIR_PATH = ((0.07, 0.06, 0.06), (0.25, 0.15, 0.08), (0.45, 0.28, 0.14),
                     (0.60, 0.25, 0.10), (0.85, 0.70, 0.40), (0.70, 0.70, 0.72))
_EYE_WHITE = (0.97, 0.97, 0.95)
_BLUSH = (0.95, 0.45, 0.45)

# Geometry (pixels at 128 px).  The windows below are derived from these bounds.
_CENTRE_X, _CENTRE_Y = 64.0, 58.0
_SHIFT_X, _SHIFT_Y = 4.0, 3.0
_FACE_W = (28.0, 34.0)
_FACE_H = 36.0
_EYE_DX = 15.0  # eye centres at cx -+ _EYE_DX
_EYE_DY = -2.0  # eye line relative to the face centre
_EYE_SCALE = (0.85, 1.15)
_EYE_AXES = (8.5, 6.2)
_IRIS_RADIUS = 5.2
_BROW_DY = -15.5  # brow line relative to the eye line
_NOSE_DY = 11.0
_MOUTH_DY = 23.5
_GLASSES_HALF_THICKNESS = 1.6
_EARRING_RADIUS = 3.2


def sample_z(n: int, seed: int) -> torch.Tensor:
    """[n, Z_DIM] float32 standard normal latents from ``np.random.RandomState(seed)``."""
    return standard_normal(n, seed, Z_DIM)


def _attributes(z):
    coord = coordinate_reader(z, Z_DIM, COORDINATES)
    iris_hue = coord("iris_hue")
    constant = torch.ones_like(iris_hue)
    pattern = coord("background_pattern")
    return {
        "skin_rgb": palette(coord("skin"), SKIN_PATH),
        "hair_rgb": palette(coord("hair_colour"), HAIR_PATH),
        "hair_length": coord("hair_length"),
        "bangs": coord("bangs"),
        "iris_hue": iris_hue,
        "iris_rgb": hsv_to_rgb(iris_hue, 0.8 * constant, 0.8 * constant),
        "lip_rgb": palette(coord("lip_colour"), LIP_PATH),
        "smile": 2 * coord("smile") - 1,
        "background_rgb": hsv_to_rgb(coord("background_hue"), 0.35 * constant,
                                     0.6 + 0.35 * coord("background_lightness")),
        "brow_thickness": 2.6 + 3.4 * coord("brow_thickness"),
        "brow_rgb": palette(coord("brow_colour"), BROW_PATH),
        "nose_size": coord("nose_size"),
        "eye_size": _EYE_SCALE[0] + (_EYE_SCALE[1] - _EYE_SCALE[0]) * coord("eye_size"),
        "face_width": _FACE_W[0] + (_FACE_W[1] - _FACE_W[0]) * coord("face_width"),
        "hair_volume": coord("hair_volume"),
        "mouth_width": 9.0 + 5.0 * coord("mouth_width"),
        "lip_thickness": 5.0 + 3.0 * coord("lip_thickness"),
        "offset_x": _SHIFT_X * (2 * coord("offset_x") - 1),
        "offset_y": _SHIFT_Y * (2 * coord("offset_y") - 1),
        "iris_size": 0.85 + 0.3 * coord("iris_size"),
        "brow_tilt": 2 * coord("brow_tilt") - 1,
        "glasses": (coord("glasses") > 0.5).float(),
        "glasses_rgb": palette(coord("glasses_colour"), _GLASSES_PATH),
        "glasses_shape": coord("glasses_shape"),
        "earrings": (coord("earrings") > 0.5).float(),
        "earring_rgb": palette(coord("earring_colour"), _EARRING_PATH),
        "shirt_rgb": palette(coord("shirt_colour"), _SHIRT_PATH),
        "neckline": 4.0 + 10.0 * coord("neckline"),
        "facial_hair": (coord("facial_hair") > 0.5).float(),
        "facial_hair_amount": coord("facial_hair_amount"),
        "facial_hair_rgb": palette(coord("facial_hair_colour"), _FACIALHAIR_PATH),
        # 0 up to 0.5 (no dots), then 0 .. 1 (sparse, large dots .. dense, small dots)
        "background_pattern": (2 * pattern - 1).clamp(min=0),
    }


def _window(top, bottom, left, right, margin=2.0):
    """(row slice, column slice) holding the pixel centres in [top, bottom] x [left, right] plus a margin."""
    def span(lo, hi):
        return slice(max(0, math.floor(lo - margin)), min(RESOLUTION, math.ceil(hi + margin)))
    return span(top, bottom), span(left, right)


_X_RANGE = (_CENTRE_X - _SHIFT_X, _CENTRE_X + _SHIFT_X)
_Y_RANGE = (_CENTRE_Y - _SHIFT_Y, _CENTRE_Y + _SHIFT_Y)
_EYE_Y_RANGE = (_Y_RANGE[0] + _EYE_DY, _Y_RANGE[1] + _EYE_DY)
_FULL = (slice(0, RESOLUTION), slice(0, RESOLUTION))
# Hair: the cap reaches 4 + 6 px past the face edge, the curtain 3 + 6 px; bangs end above the fringe line.
_HAIR = _window(0, RESOLUTION, _X_RANGE[0] - _FACE_W[1] - 11, _X_RANGE[1] + _FACE_W[1] + 11)
_BANGS = _window(0, _Y_RANGE[1] - 35 + 14 + 1, _X_RANGE[0] - _FACE_W[1] - 11, _X_RANGE[1] + _FACE_W[1] + 11)
# Neck (from 6 px above the chin) and shirt (from 10 px below it) down to the bottom edge.
_BODY = _window(_Y_RANGE[0] + _FACE_H - 7, RESOLUTION, 0, RESOLUTION)
# Head: face, ears (to 5.5 px past the face edge) and earrings (to about 5 px past it, 20 px below the centre).
_HEAD = _window(_Y_RANGE[0] - _FACE_H - 1, _Y_RANGE[1] + _FACE_H + 1,
                _X_RANGE[0] - _FACE_W[1] - 7, _X_RANGE[1] + _FACE_W[1] + 7)
# Brows (up to 6/2 + 1.25 + 2.2 px from their line), eyes and glasses (rims to 1.5 + 3 + 1.6 px off the white,
# temples to 2 px past the face edge).
_EYES = _window(_EYE_Y_RANGE[0] + _BROW_DY - 7, _EYE_Y_RANGE[1] + _EYE_AXES[1] * _EYE_SCALE[1] + 6,
                _X_RANGE[0] - _FACE_W[1] - 4, _X_RANGE[1] + _FACE_W[1] + 4)
_NOSE = _window(_Y_RANGE[0] + _NOSE_DY - 6, _Y_RANGE[1] + _NOSE_DY + 6, _X_RANGE[0] - 5, _X_RANGE[1] + 5)
_MOUTH = _window(_Y_RANGE[0] + _MOUTH_DY - 7, _Y_RANGE[1] + _MOUTH_DY + 7, _X_RANGE[0] - 15, _X_RANGE[1] + 15)
_WINDOWS = True  # False computes every part on the full frame (tests check that the windows clip nothing)


class _Picture:
    """Canvas and label map of a batch, painted a window at a time."""

    def __init__(self, canvas, mask):
        self.canvas, self.mask = canvas, mask

    @staticmethod
    def grid(window):
        """Pixel-centre coordinates x [1, 1, w] and y [1, h, 1] of a window."""
        if not _WINDOWS:
            window = _FULL
        rows, cols = window
        y = torch.arange(rows.start, rows.stop, dtype=torch.float32) + 0.5
        x = torch.arange(cols.start, cols.stop, dtype=torch.float32) + 0.5
        return x[None, None, :], y[None, :, None]

    def draw(self, window, sdf, colour, ink=None, part=None):
        if not _WINDOWS:
            window = _FULL
        rows, cols = window
        paint_(self.canvas[:, :, rows, cols], sdf, colour, ink)
        if part is not None:
            label_(self.mask[:, rows, cols], sdf, part)


def _crop(values, outer, inner):
    """The part of a tensor computed over window ``outer`` (last two dims) that lies in window ``inner``."""
    if not _WINDOWS:
        return values
    rows = slice(inner[0].start - outer[0].start, inner[0].stop - outer[0].start)
    cols = slice(inner[1].start - outer[1].start, inner[1].stop - outer[1].start)
    return values[..., rows, cols]


def render(z) -> Rendering:
    """Draw one face per row of ``z`` ([N, >= Z_DIM], tensor or array)."""
    z = checked_latents(z, Z_DIM)
    attrs = _attributes(z)
    n = z.shape[0]

    def per_image(values):
        return values[:, None, None]

    def shade(colour, factor):
        """[N, 3] colour times a per-pixel shading factor [N or 1, h, w] -> [N, 3, h, w]."""
        return colour[:, :, None, None] * factor[:, None]

    def mix(colour, other, amount):
        """Blend two [N, 3, h, w] (or [N, 3]) colours by a per-pixel amount [N or 1, h, w]."""
        amount = amount[:, None]
        return _expand(colour) * (1 - amount) + _expand(other) * amount

    def _expand(colour):
        return colour[:, :, None, None] if colour.dim() == 2 else colour

    cx = per_image(_CENTRE_X + attrs["offset_x"])
    cy = per_image(_CENTRE_Y + attrs["offset_y"])
    face_w = per_image(attrs["face_width"])
    face_h = _FACE_H
    skin = attrs["skin_rgb"]
    ink = torch.tensor(INK).expand(n, 3)
    white = torch.ones(n, 3)
    eye_y = cy + _EYE_DY

    # Background: vertical gradient and vignette, optional dots in a darker shade of the same colour.
    x, y = _Picture.grid(_FULL)
    centred = ((x - RESOLUTION / 2) ** 2 + (y - RESOLUTION / 2) ** 2) / (RESOLUTION / 2) ** 2
    bg_shade = 1 - 0.08 * y / RESOLUTION - 0.06 * centred
    background = attrs["background_rgb"]
    canvas = shade(background, bg_shade.expand(1, RESOLUTION, RESOLUTION)).expand(n, 3, RESOLUTION, RESOLUTION)
    picture = _Picture(canvas.contiguous(), torch.zeros(n, RESOLUTION, RESOLUTION, dtype=torch.int64))
    pattern = per_image(attrs["background_pattern"])
    period = 22.0 - 12.0 * pattern
    row_step = period * math.sqrt(3) / 2
    row = torch.round(y / row_step)
    dy = y - row * row_step
    shift = (row % 2) * period / 2
    dx = x - shift - period * torch.round((x - shift) / period)
    dots_sdf = torch.sqrt(dx ** 2 + dy ** 2) - 0.26 * period
    dots_sdf = shown(dots_sdf, attrs["background_pattern"] > 0)
    picture.draw(_FULL, dots_sdf, shade(background * 0.8, bg_shade))

    # Hair behind the head: skull cap plus a curtain, cut at a length-dependent line.  Faint strands fanning
    # out from below the crown, darker towards the ends, and a sheen on the crown.
    x, y = _Picture.grid(_HAIR)
    volume = per_image(attrs["hair_volume"])
    hair = attrs["hair_rgb"]
    cap_axes = (face_w + 4.0 + 6.0 * volume, face_h + 6.0 + 4.0 * volume)
    cap_sdf = ellipse_sdf(x, y, cx, cy - 4.0, *cap_axes)
    curtain_sdf = box_sdf(x, y, cx, cy + 50.0, face_w + 3.0 + 6.0 * volume, 60.0, 10.0)
    hair_end = cy - 6.0 + 74.0 * per_image(attrs["hair_length"])
    hair_back_sdf = torch.maximum(torch.minimum(cap_sdf, curtain_sdf), y - hair_end)
    angle = torch.atan2(x - cx, cy + 6.0 - y)
    strands = 0.91 + 0.09 * torch.cos(angle * 34.0)
    ends = 1 - 0.25 * ((y - cy + 20.0) / 70.0).clamp(0, 1)
    radius = torch.sqrt(((x - cx) / cap_axes[0]) ** 2 + ((y - cy + 4.0) / cap_axes[1]) ** 2)
    sheen = 0.35 * torch.exp(-((radius - 0.8) / 0.07) ** 2) * ((cy - 20.0 - y) / 8.0).clamp(0, 1)
    hair_fill = mix(shade(hair, strands * ends), hair * 0.4 + 0.6, sheen)
    picture.draw(_HAIR, hair_back_sdf, hair_fill, ink, HAIR)

    # Neck (labelled face), darker under the chin.
    x, y = _Picture.grid(_BODY)
    chin = cy + face_h
    neck_sdf = box_sdf(x, y, cx, chin + 22.0, 0.42 * face_w, 28.0, 3.0)
    neck_fill = shade(skin, 0.70 + 0.16 * ((y - chin + 4.0) / 12.0).clamp(0, 1))
    picture.draw(_BODY, neck_sdf, neck_fill, skin * 0.55, FACE)

    # Shirt: rounded shoulders with a neckline cut out of them and a lighter collar band around it.
    top = chin + 10.0
    torso_sdf = box_sdf(x, y, cx, top + 40.0, 1.65 * face_w + 6.0, 40.0, 22.0)
    hole_sdf = ellipse_sdf(x, y, cx, top - 1.0, 0.42 * face_w - 1.0, per_image(attrs["neckline"]))
    shirt_sdf = torch.maximum(torso_sdf, -hole_sdf)
    shirt = attrs["shirt_rgb"]
    folds = 1 - 0.16 * ((x - cx) / (1.65 * face_w + 6.0)) ** 2 - 0.14 * ((y - top) / 30.0).clamp(0, 1)
    picture.draw(_BODY, shirt_sdf, shade(shirt, folds), ink, SHIRT)
    collar_sdf = torch.maximum(ring_sdf(hole_sdf - 2.5, 2.5), shirt_sdf + 1.0)
    picture.draw(_BODY, collar_sdf, shade(shirt * 0.6 + 0.4, folds))

    # Ears (labelled face) behind the face, then the face: narrower at the jaw, lit from the upper middle,
    # with blushed cheeks.
    x, y = _Picture.grid(_HEAD)
    ear_y = cy + 3.0
    ear_sdf = torch.minimum(*(ellipse_sdf(x, y, cx + side * (face_w - 1.0), ear_y, torch.tensor(5.5),
                                          torch.tensor(8.5)) for side in (-1, 1)))
    inner_ear_sdf = torch.minimum(*(ellipse_sdf(x, y, cx + side * (face_w + 0.8), ear_y, torch.tensor(2.0),
                                                torch.tensor(5.0)) for side in (-1, 1)))
    picture.draw(_HEAD, ear_sdf, skin * 0.95, skin * 0.55, FACE)
    picture.draw(_HEAD, torch.maximum(inner_ear_sdf, ear_sdf + 1.0), skin * 0.75)

    jaw = 1 - 0.12 * ((y - cy) / face_h).clamp(0, 1) ** 2
    face_sdf = ellipse_sdf(x, y, cx, cy, face_w * jaw, torch.tensor(face_h))
    lit = (((x - cx) / face_w) ** 2 + ((y - cy + 8.0) / face_h) ** 2).clamp(max=1.3)
    cheeks = torch.minimum(*(((x - cx - side * 0.55 * face_w) ** 2 + (y - cy - 10.0) ** 2) for side in (-1, 1)))
    face_fill = mix(shade(skin, 1.02 - 0.13 * lit), torch.tensor(_BLUSH).expand(n, 3),
                    0.28 * torch.exp(-cheeks / 30.0))
    picture.draw(_HEAD, face_sdf, face_fill, skin * 0.55, FACE)

    # Earrings: a metal drop on a short link below each ear lobe, with a white glint.
    earring_x = [cx + side * (face_w + 1.0) for side in (-1, 1)]
    earring_y = cy + 16.5
    drop_sdf = torch.minimum(*(circle_sdf(x, y, ex, earring_y, _EARRING_RADIUS) for ex in earring_x))
    link_sdf = torch.minimum(*(box_sdf(x, y, ex, cy + 11.5, 0.8, 2.6, 0.8) for ex in earring_x))
    earring_sdf = shown(torch.minimum(drop_sdf, link_sdf), attrs["earrings"] > 0)
    metal = (1.12 - 0.3 * ((y - earring_y) / _EARRING_RADIUS + 0.4) ** 2).clamp(0.6, 1.12)
    earring_fill = shade(attrs["earring_rgb"], metal).clamp(max=1)
    picture.draw(_HEAD, earring_sdf, earring_fill, ink, EARRINGS)
    glint_sdf = torch.minimum(*(circle_sdf(x, y, ex - 1.1, earring_y - 1.1, 0.9) for ex in earring_x))
    picture.draw(_HEAD, torch.maximum(glint_sdf, earring_sdf + 1.0), white)

    # Facial hair: a jaw band inside the face (wider with the amount) plus a moustache, stippled.
    amount = per_image(attrs["facial_hair_amount"])
    mouth_y = cy + _MOUTH_DY
    lip_thickness = per_image(attrs["lip_thickness"])
    mouth_w = per_image(attrs["mouth_width"])
    inner_sdf = ellipse_sdf(x, y, cx, cy - 4.0, face_w - 4.0 - 6.0 * amount, face_h - 5.0 - 11.0 * amount)
    beard_sdf = torch.maximum(torch.maximum(face_sdf, -inner_sdf), cy + 6.0 - y)
    moustache_sdf = stroke_sdf(x, y, cx, mouth_y - lip_thickness / 2 - 2.3, 0.75 * mouth_w + 3.0, -2.5,
                               2.0 + 1.3 * amount, 0.55)
    facial_hair_sdf = shown(torch.minimum(beard_sdf, moustache_sdf), attrs["facial_hair"] > 0)
    stipple = 0.93 + 0.07 * torch.cos(x * 2.3 + y * 0.9) * torch.cos(y * 2.1 - x * 0.7)
    picture.draw(_HEAD, facial_hair_sdf, shade(attrs["facial_hair_rgb"], stipple.expand(1, -1, -1)),
                 skin * 0.6, FACIAL_HAIR)

    # Bangs: the part of the head cap above a scalloped fringe line.
    x, y = _Picture.grid(_BANGS)
    fringe = cy - 35.0 + 14.0 * per_image(attrs["bangs"]) - 3.5 * torch.sin((x - cx) * 0.3).abs()
    bangs_sdf = torch.maximum(_crop(cap_sdf, _HAIR, _BANGS), y - fringe)
    picture.draw(_BANGS, bangs_sdf, _crop(hair_fill, _HAIR, _BANGS), ink, HAIR)

    # Brows: tapered arches, tilted about their middle; a soft skin-tone outline keeps their colour inside.
    x, y = _Picture.grid(_EYES)
    tilt = per_image(attrs["brow_tilt"]) * 0.24
    brow_sdf = torch.minimum(
        *(stroke_sdf(x, y, cx + side * _EYE_DX, eye_y + _BROW_DY, 9.0, -2.5,
                     per_image(attrs["brow_thickness"]) / 2, 0.5, tilt=side * tilt) for side in (-1, 1)))
    picture.draw(_EYES, brow_sdf, attrs["brow_rgb"], skin * 0.8, BROWS)

    # Eyes: the white owns the label; iris, pupil and highlight are clipped to its interior; an upper lid
    # (ink, labelled eyes) covers the top of the outline.
    eye_scale = per_image(attrs["eye_size"])
    eye_xs = [cx - _EYE_DX, cx + _EYE_DX]
    eye_ax, eye_ay = _EYE_AXES[0] * eye_scale, _EYE_AXES[1] * eye_scale
    white_sdf = torch.minimum(*(ellipse_sdf(x, y, ex, eye_y, eye_ax, eye_ay) for ex in eye_xs))
    # paint reaches one pixel outside a shape; this shift keeps eye colours where white_sdf < 0.
    inside_white = white_sdf + 1.0
    iris_radius = _IRIS_RADIUS * eye_scale * per_image(attrs["iris_size"])
    pupil_radius = 0.48 * iris_radius
    iris_sdf = torch.minimum(*(circle_sdf(x, y, ex, eye_y, iris_radius) for ex in eye_xs))
    pupil_sdf = torch.minimum(*(circle_sdf(x, y, ex, eye_y, pupil_radius) for ex in eye_xs))
    glint_sdf = torch.minimum(*(circle_sdf(x, y, ex + 0.5 * iris_radius, eye_y - 0.5 * iris_radius,
                                           0.25 * iris_radius) for ex in eye_xs))
    iris = attrs["iris_rgb"]
    iris_fill = shade(iris, 0.75 + 0.25 * (1 - (y - eye_y + iris_radius) / (2 * iris_radius)).clamp(0, 1))
    picture.draw(_EYES, white_sdf, torch.tensor(_EYE_WHITE).expand(n, 3), ink, EYES)
    picture.draw(_EYES, torch.maximum(iris_sdf, inside_white), iris * 0.55)
    picture.draw(_EYES, torch.maximum(iris_sdf + 0.9, inside_white), iris_fill)
    picture.draw(_EYES, torch.maximum(pupil_sdf, inside_white), ink)
    picture.draw(_EYES, torch.maximum(glint_sdf, inside_white), white)
    lid_sdf = torch.maximum(ring_sdf(white_sdf - 0.4, 1.1), y - (eye_y - 0.3 * eye_ay))
    picture.draw(_EYES, lid_sdf, ink, part=EYES)

    # Nose: a shaded bump with nostrils and a highlight, soft outline.
    x, y = _Picture.grid(_NOSE)
    nose_size = per_image(attrs["nose_size"])
    nose_y = cy + _NOSE_DY
    nose_ax, nose_ay = 3.0 + 2.0 * nose_size, 3.6 + 2.4 * nose_size
    nose_sdf = ellipse_sdf(x, y, cx, nose_y, nose_ax, nose_ay)
    picture.draw(_NOSE, nose_sdf, shade(skin, 0.84 + 0.08 * (nose_y - y) / nose_ay), skin * 0.68, NOSE)
    nostril_sdf = torch.minimum(*(circle_sdf(x, y, cx + side * 0.45 * nose_ax, nose_y + 0.45 * nose_ay,
                                             0.8 + 0.4 * nose_size) for side in (-1, 1)))
    picture.draw(_NOSE, torch.maximum(nostril_sdf, nose_sdf + 1.0), skin * 0.45)
    tip_sdf = circle_sdf(x, y, cx - 0.3 * nose_ax, nose_y - 0.35 * nose_ay, 0.7 + 0.5 * nose_size)
    picture.draw(_NOSE, torch.maximum(tip_sdf, nose_sdf + 1.0), skin * 0.96 + 0.04)

    # Mouth: lips with a dark parting line and a sheen on the lower lip.
    x, y = _Picture.grid(_MOUTH)
    bend = 5.0 * per_image(attrs["smile"])
    lips_sdf = stroke_sdf(x, y, cx, mouth_y, mouth_w, bend, lip_thickness / 2, 0.7)
    line_sdf = torch.maximum(stroke_sdf(x, y, cx, mouth_y, mouth_w, bend, 0.6, 0.0), lips_sdf + 1.0)
    sheen_sdf = torch.maximum(ellipse_sdf(x, y, cx, mouth_y + 0.5 * bend + 0.27 * lip_thickness, 0.3 * mouth_w,
                                          0.09 * lip_thickness + 0.3), lips_sdf + 1.0)
    lips = attrs["lip_rgb"]
    picture.draw(_MOUTH, lips_sdf, lips, skin * 0.5, MOUTH)
    picture.draw(_MOUTH, line_sdf, lips * 0.45)
    picture.draw(_MOUTH, sheen_sdf, lips * 0.65 + 0.35)

    # Glasses: two rims (oval .. rectangular) around the eyes, a bridge and temples to the ears.
    x, y = _Picture.grid(_EYES)
    squareness = per_image(attrs["glasses_shape"])
    rim_ax, rim_ay = eye_ax + 3.2, eye_ay + 3.0
    rim_y = eye_y + 0.5
    thickness = _GLASSES_HALF_THICKNESS

    def rim(ex):
        oval = ellipse_sdf(x, y, ex, rim_y, rim_ax, rim_ay)
        rectangle = box_sdf(x, y, ex, rim_y, rim_ax, rim_ay, 3.0)
        return ring_sdf(oval * (1 - squareness) + rectangle * squareness, thickness)

    gap = (_EYE_DX - rim_ax + 1.0).clamp(min=0.5)
    bridge_sdf = stroke_sdf(x, y, cx, eye_y - 1.5, gap, -1.0, thickness * 0.85, 0.0)
    temple_start = _EYE_DX + rim_ax - 1.0
    temple_half = ((face_w + 2.0 - temple_start) / 2).clamp(min=0.5)
    temple_sdf = torch.minimum(*(box_sdf(x, y, cx + side * (temple_start + temple_half), eye_y - 1.0,
                                         temple_half, thickness * 0.85, 0.5) for side in (-1, 1)))
    frame_sdf = torch.minimum(torch.minimum(rim(eye_xs[0]), rim(eye_xs[1])), torch.minimum(bridge_sdf, temple_sdf))
    frame_sdf = shown(frame_sdf, attrs["glasses"] > 0)
    picture.draw(_EYES, frame_sdf, attrs["glasses_rgb"], ink, GLASSES)

    attrs["eye_centres"] = torch.stack([torch.cat([ex.reshape(n, 1), eye_y.reshape(n, 1)], dim=1)
                                        for ex in eye_xs], dim=1)
    attrs["iris_radius"] = iris_radius.reshape(n)
    attrs["pupil_radius"] = pupil_radius.reshape(n)
    images = (picture.canvas * 2 - 1).clamp(-1, 1)
    return Rendering(images=images, masks=picture.mask, attributes=attrs)
