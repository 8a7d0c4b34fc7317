import numpy as np
import pytest
import torch

from ganedit.bundled import renderer, renderer_v2
from ganedit.bundled.shapes import INK
from ganedit.bundled.renderer_v2 import COORDINATES, PARTS, RESOLUTION, Z_DIM, render, sample_z

ACCESSORIES = ("glasses", "earrings", "facial_hair")


def part(name):
    return PARTS.index(name)


def areas(masks):
    """[N, len(PARTS)] pixel counts."""
    return torch.stack([(masks == i).flatten(1).sum(dim=1) for i in range(len(PARTS))], dim=1)


def extreme_z(n, seed):
    """Every coordinate at +-4 standard deviations (the ends of every attribute range)."""
    signs = torch.from_numpy(np.random.RandomState(seed).choice([-4.0, 4.0], size=(n - 2, Z_DIM)).astype(np.float32))
    return torch.cat([signs, torch.full((1, Z_DIM), 4.0), torch.full((1, Z_DIM), -4.0)])


@pytest.fixture(scope="module")
def faces():
    z = sample_z(64, seed=0)
    return z, render(z)


@pytest.fixture(scope="module")
def extremes():
    z = extreme_z(64, seed=1)
    return z, render(z)


def test_shapes_and_value_range(faces):
    z, out = faces
    assert RESOLUTION == 128 and Z_DIM in (32, 64) and len(COORDINATES) <= Z_DIM
    assert sorted(COORDINATES.values()) == list(range(len(COORDINATES)))
    assert out.images.shape == (64, 3, RESOLUTION, RESOLUTION)
    assert out.images.dtype == torch.float32
    assert out.masks.shape == (64, RESOLUTION, RESOLUTION)
    assert out.masks.dtype == torch.int64
    assert out.images.min() >= -1 and out.images.max() <= 1
    assert out.masks.min() >= 0 and out.masks.max() < len(PARTS)
    # Real contrast, not a flat image.
    assert (out.images.amax(dim=(1, 2, 3)) - out.images.amin(dim=(1, 2, 3))).min() > 1.0
    for name, value in out.attributes.items():
        assert value.shape[0] == 64, name
        assert torch.isfinite(value).all(), name


def test_deterministic_accepts_numpy_and_ignores_extra_coordinates(faces):
    z, out = faces
    again = render(z.numpy())
    assert torch.equal(out.images, again.images)
    assert torch.equal(out.masks, again.masks)
    wide = torch.cat([z, torch.randn(64, 5)], dim=1)
    assert torch.equal(render(wide).images, out.images)
    # A face does not depend on the rest of its batch.
    few = render(z[5:8])
    assert torch.equal(few.images, out.images[5:8]) and torch.equal(few.masks, out.masks[5:8])
    with pytest.raises(ValueError):
        render(z[:, : Z_DIM - 1])


def test_sample_z_is_the_numpy_stream_of_v1():
    z = sample_z(3, seed=7)
    assert z.dtype == torch.float32 and z.shape == (3, Z_DIM)
    expected = np.random.RandomState(7).randn(3, Z_DIM).astype(np.float32)
    assert np.array_equal(z.numpy(), expected)
    if Z_DIM == renderer.Z_DIM:
        assert torch.equal(z, renderer.sample_z(3, seed=7))


MINIMUM_AREA = {"background": 2000, "face": 800, "hair": 300, "eyes": 200, "brows": 40, "nose": 20, "mouth": 40,
                "shirt": 1000}


@pytest.mark.parametrize("batch", ["faces", "extremes"])
def test_every_face_has_every_part(batch, request):
    z, out = request.getfixturevalue(batch)
    assert not torch.isnan(out.images).any()
    area = areas(out.masks)
    for name, minimum in MINIMUM_AREA.items():
        assert area[:, part(name)].min() >= minimum, name
    # Both eyes are open, each with a fair share of the eye pixels.
    eyes = out.masks == part("eyes")
    assert eyes[:, :, : RESOLUTION // 2].flatten(1).sum(1).min() >= 100
    assert eyes[:, :, RESOLUTION // 2:].flatten(1).sum(1).min() >= 100
    # Parts of the head never reach the border of the canvas.
    border = torch.zeros(RESOLUTION, RESOLUTION, dtype=torch.bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    for name in ("face", "eyes", "brows", "nose", "mouth", "glasses", "earrings", "facial_hair"):
        assert not ((out.masks == part(name)) & border).any(), name


@pytest.mark.parametrize("batch", ["faces", "extremes"])
def test_accessories_follow_their_coordinate(batch, request):
    z, out = request.getfixturevalue(batch)
    area = areas(out.masks)
    for name, minimum in (("glasses", 200), ("earrings", 30), ("facial_hair", 150)):
        present = z[:, COORDINATES[name]] > 0
        assert present.any() and (~present).any(), name
        assert torch.equal(out.attributes[name] > 0, present), name
        assert area[present, part(name)].min() >= minimum, name
        assert area[~present, part(name)].max() == 0, name


def test_accessories_sit_where_they_belong(faces):
    _, out = faces
    rows = torch.arange(RESOLUTION, dtype=torch.float32)[:, None].expand(RESOLUTION, RESOLUTION)
    cols = rows.T
    attrs = out.attributes
    for i in range(len(out.masks)):
        (left_x, eye_y), (right_x, _) = attrs["eye_centres"][i].tolist()
        cx = (left_x + right_x) / 2
        if attrs["glasses"][i]:
            # A rim on both sides of each eye, along the eye line, and the eye still shows inside it.
            glasses = out.masks[i] == part("glasses")
            row = glasses[int(eye_y)]
            for ex in (left_x, right_x):
                assert row[: int(ex)].any() and row[int(ex) + 1:].any()
        if attrs["earrings"][i]:
            earrings = out.masks[i] == part("earrings")
            assert (rows[earrings] > eye_y).all()
            assert ((cols[earrings] - cx).abs() > attrs["face_width"][i] - 3).all()
            assert earrings[:, : int(cx)].any() and earrings[:, int(cx):].any()
        if attrs["facial_hair"][i]:
            assert (rows[out.masks[i] == part("facial_hair")] > eye_y).all()


def test_glasses_do_not_hide_the_eyes(faces):
    z, _ = faces
    with_glasses, without = z.clone(), z.clone()
    with_glasses[:, COORDINATES["glasses"]] = 2.0
    without[:, COORDINATES["glasses"]] = -2.0
    eyes = part("eyes")
    shown = areas(render(with_glasses).masks)[:, eyes].float()
    bare = areas(render(without).masks)[:, eyes].float()
    assert (shown >= 0.85 * bare).all()


def _moved(z, coordinate, by=2.0):
    edited = z.clone()
    edited[:, coordinate] = torch.where(z[:, coordinate] > 0, z[:, coordinate] - by, z[:, coordinate] + by)
    return edited


# (coordinate, part, share of the part's pixels that must visibly move)
LOCAL_COORDINATES = [
    ("hair_colour", "hair", 0.5),
    ("iris_hue", "eyes", 0.15),
    ("iris_size", "eyes", 0.02),
    ("lip_colour", "mouth", 0.5),
    ("brow_colour", "brows", 0.3),
    ("shirt_colour", "shirt", 0.5),
    ("glasses_colour", "glasses", 0.3),
    ("earring_colour", "earrings", 0.3),
    ("facial_hair_colour", "facial_hair", 0.5),
    ("background_hue", "background", 0.5),
    ("background_lightness", "background", 0.3),
    ("background_pattern", "background", 0.0),
]


@pytest.mark.parametrize("coordinate, part_name, share", LOCAL_COORDINATES)
def test_local_coordinates_change_only_their_part(faces, coordinate, part_name, share):
    z, _ = faces
    z = z[:16].clone()
    for name in ACCESSORIES:  # show every accessory, so that its colour is seen
        z[:, COORDINATES[name]] = 1.0
    if coordinate == "background_pattern":
        z[:, COORDINATES[coordinate]] = torch.linspace(-2, 2, 16)
    before, after = render(z), render(_moved(z, COORDINATES[coordinate]))
    assert torch.equal(before.masks, after.masks)
    changed = (before.images != after.images).any(dim=1)
    inside = before.masks == part(part_name)
    assert not (changed & ~inside).any()
    moved = (before.images - after.images).abs().amax(dim=1) > 0.05
    assert (moved & inside).sum() > share * inside.sum()
    assert (moved & inside).flatten(1).any(dim=1).sum() >= 8


@pytest.mark.parametrize("coordinate", ["glasses_colour", "earring_colour", "facial_hair_colour"])
def test_colour_of_an_absent_accessory_changes_nothing(faces, coordinate):
    z, _ = faces
    z = z[:8].clone()
    for name in ACCESSORIES:
        z[:, COORDINATES[name]] = -1.0
    before, after = render(z), render(_moved(z, COORDINATES[coordinate]))
    assert torch.equal(before.images, after.images)


def test_background_pattern_switches_on_above_the_middle(faces):
    z, _ = faces
    z = z[:8].clone()
    pattern = COORDINATES["background_pattern"]
    images = []
    for value in (-2.0, -0.5, 0.5, 2.0):
        z[:, pattern] = value
        images.append(render(z).images)
    assert torch.equal(images[0], images[1])  # no dots either way
    assert not torch.equal(images[1], images[2]) and not torch.equal(images[2], images[3])


def test_pupils_stay_dark_and_highlights_white_under_every_iris(faces):
    z, _ = faces
    z = z[:8].clone()
    rows = torch.arange(RESOLUTION, dtype=torch.float32)[:, None] + 0.5
    cols = torch.arange(RESOLUTION, dtype=torch.float32)[None, :] + 0.5
    pupils, glints, irises = [], [], []
    for value in torch.linspace(-2.5, 2.5, 9):
        z[:, COORDINATES["iris_hue"]] = value
        out = render(z)
        images = (out.images + 1) / 2
        attrs = out.attributes
        pupil_pixels, glint_pixels, iris_pixels = [], [], []
        for i in range(len(z)):
            for ex, ey in attrs["eye_centres"][i].tolist():
                distance = torch.sqrt((cols - ex) ** 2 + (rows - ey) ** 2)
                pupil = distance < attrs["pupil_radius"][i] - 0.75
                assert pupil.sum() >= 4
                pupil_pixels.append(images[i][:, pupil])
                in_iris = (distance < attrs["iris_radius"][i]) & (out.masks[i] == part("eyes"))
                white = (images[i] == 1).all(dim=0) & in_iris
                assert white.any()
                glint_pixels.append(white)
                ring = (distance > attrs["pupil_radius"][i] + 1) & in_iris & ~white
                assert ring.sum() >= 8
                iris_pixels.append(images[i][:, ring])
        pupils.append(pupil_pixels)
        glints.append(glint_pixels)
        irises.append(iris_pixels)
        ink = torch.tensor(INK)[:, None]
        for pixels in pupil_pixels:
            # Mostly dark, and nowhere tinted: every pupil pixel is ink, or ink blended with the white highlight.
            assert (pixels.amax(dim=0) < 0.15).float().mean() > 0.6
            t = ((pixels - ink) * (1 - ink)).sum(dim=0) / ((1 - ink) ** 2).sum()
            assert (pixels - (ink + t * (1 - ink))).abs().max() < 1e-4
    for hue in range(1, 9):
        for eye in range(len(pupils[0])):
            assert torch.equal(pupils[hue][eye], pupils[0][eye])  # not tinted by the iris
            assert torch.equal(glints[hue][eye], glints[0][eye])
    # ... while the iris itself does change colour.
    spread = torch.stack([torch.cat([p.mean(dim=1) for p in iris]) for iris in irises])  # [hues, 3 * eyes]
    assert (spread.amax(dim=0) - spread.amin(dim=0)).min() > 0.2


@pytest.mark.parametrize("part_name, attribute", [("mouth", "lip_rgb"), ("hair", "hair_rgb"), ("shirt", "shirt_rgb"),
                                                  ("background", "background_rgb"), ("eyes", "iris_rgb")])
def test_mask_colours_follow_the_attributes(faces, part_name, attribute):
    _, out = faces
    images = (out.images + 1) / 2
    inside = (out.masks == part(part_name))[:, None]
    mean = (images * inside).sum(dim=(2, 3)) / inside.sum(dim=(2, 3))
    expected = out.attributes[attribute]
    for channel in range(3):
        correlation = np.corrcoef(mean[:, channel].numpy(), expected[:, channel].numpy())[0, 1]
        assert correlation > 0.8, (channel, correlation)


def test_attributes_follow_z():
    z = torch.zeros(2, Z_DIM)
    for name, value in (("iris_hue", 1.0), ("smile", 1.5), ("hair_length", 2.0), ("neckline", 2.0),
                        ("eye_size", 2.0), ("face_width", 2.0)):
        z[0, COORDINATES[name]] = -value
        z[1, COORDINATES[name]] = value
    out = render(z)
    attrs = out.attributes
    assert attrs["iris_hue"][0] < attrs["iris_hue"][1]
    assert (attrs["iris_rgb"][0] - attrs["iris_rgb"][1]).abs().max() > 0.3
    assert attrs["smile"][0] < 0 < attrs["smile"][1]
    for key in ("skin_rgb", "hair_rgb", "iris_rgb", "lip_rgb", "background_rgb", "brow_rgb", "glasses_rgb",
                "earring_rgb", "shirt_rgb", "facial_hair_rgb"):
        assert attrs[key].shape == (2, 3)
        assert attrs[key].min() >= 0 and attrs[key].max() <= 1
    area = areas(out.masks)
    # Long hair reaches well below the short cut.
    hair_rows = (out.masks == part("hair")).any(dim=2)
    lowest_hair_row = [int(torch.nonzero(rows).max()) for rows in hair_rows]
    assert lowest_hair_row[1] > lowest_hair_row[0] + 30
    # Bigger eyes, a wider face; a deeper neckline shows more neck between the shoulders.
    assert area[1, part("eyes")] > 1.3 * area[0, part("eyes")]
    face_columns = (out.masks == part("face")).any(dim=1).sum(dim=1)
    assert face_columns[1] > face_columns[0] + 6
    top_of_shirt = [int(torch.nonzero((out.masks[i] == part("shirt")).any(dim=1)).min()) for i in range(2)]
    neck_bottom = [int(torch.nonzero((out.masks[i, :, 64] == part("face"))).max()) for i in range(2)]
    assert neck_bottom[1] - top_of_shirt[1] > neck_bottom[0] - top_of_shirt[0] + 5


def test_brow_tilt_raises_the_inner_ends():
    z = torch.zeros(2, Z_DIM)
    z[0, COORDINATES["brow_tilt"]] = -2.0
    z[1, COORDINATES["brow_tilt"]] = 2.0
    brows = render(z).masks == part("brows")
    rows = torch.arange(RESOLUTION, dtype=torch.float32)[:, None]
    inner = slice(RESOLUTION // 2 - 12, RESOLUTION // 2 + 12)
    outer = torch.cat([torch.arange(0, RESOLUTION // 2 - 18), torch.arange(RESOLUTION // 2 + 18, RESOLUTION)])

    def mean_row(mask, columns):
        region = mask[:, columns]
        return float((rows * region).sum() / region.sum())

    lift = [mean_row(b, outer) - mean_row(b, inner) for b in brows]  # > 0: inner ends higher up
    assert lift[1] > lift[0] + 2.0


@pytest.mark.parametrize("batch", ["faces", "extremes"])
def test_windows_clip_nothing(batch, request, monkeypatch):
    """Small parts are computed in fixed windows; the full-frame computation gives the same picture."""
    z, out = request.getfixturevalue(batch)
    monkeypatch.setattr(renderer_v2, "_WINDOWS", False)
    full = render(z[:32])
    assert torch.equal(full.masks, out.masks[:32])
    assert torch.allclose(full.images, out.images[:32], rtol=0, atol=1e-5)
