import numpy as np
import pytest
import torch

from ganedit.bundled import renderer, renderer_v2
from ganedit.bundled.renderer import COORDINATES, PARTS, RESOLUTION, Z_DIM


@pytest.fixture(scope="module")
def faces():
    z = renderer.sample_z(64, seed=0)
    return z, renderer.render(z)


def test_shapes_and_value_range(faces):
    z, out = faces
    assert out.images.shape == (64, 3, RESOLUTION, RESOLUTION)
    assert out.images.dtype == torch.float32
    assert out.masks.shape == (64, RESOLUTION, RESOLUTION)
    assert out.masks.dtype == torch.int64
    assert out.images.min() >= -1 and out.images.max() <= 1
    # Real contrast, not a flat image.
    assert (out.images.amax(dim=(1, 2, 3)) - out.images.amin(dim=(1, 2, 3))).min() > 1.0
    for name, value in out.attributes.items():
        assert value.shape[0] == 64, name


def test_deterministic_and_accepts_numpy(faces):
    z, out = faces
    again = renderer.render(z.numpy())
    assert torch.equal(out.images, again.images)
    assert torch.equal(out.masks, again.masks)
    wide = torch.cat([z, torch.randn(64, 5)], dim=1)
    assert torch.equal(renderer.render(wide).images, out.images)


def test_sample_z_matches_numpy_stream():
    z = renderer.sample_z(3, seed=7)
    assert z.dtype == torch.float32 and z.shape == (3, Z_DIM)
    expected = np.random.RandomState(7).randn(3, Z_DIM).astype(np.float32)
    assert np.array_equal(z.numpy(), expected)


def test_every_part_appears(faces):
    _, out = faces
    assert out.masks.min() >= 0 and out.masks.max() < len(PARTS)
    present = torch.stack([(out.masks == i).flatten(1).any(dim=1) for i in range(len(PARTS))], dim=1)
    rate = present.float().mean(dim=0)
    for name in ("background", "face", "hair", "eyes", "mouth"):
        assert rate[PARTS.index(name)] >= 0.95, name
    for name in ("brows", "nose"):
        assert rate[PARTS.index(name)] >= 0.8, name


def _render_before_after(z, coordinate):
    """Render z and z with one coordinate moved by 2 standard deviations."""
    edited = z.clone()
    edited[:, coordinate] = torch.where(z[:, coordinate] > 0, z[:, coordinate] - 2, z[:, coordinate] + 2)
    return renderer.render(z), renderer.render(edited)


@pytest.mark.parametrize(
    "coordinate, part",
    [("iris_hue", "eyes"), ("lip_colour", "mouth"), ("hair_colour", "hair")],
)
def test_colour_coordinates_change_only_their_part(faces, coordinate, part):
    z, _ = faces
    z = z[:16]
    before, after = _render_before_after(z, COORDINATES[coordinate])
    assert torch.equal(before.masks, after.masks)
    changed = (before.images != after.images).any(dim=1)
    inside = before.masks == PARTS.index(part)
    assert not (changed & ~inside).any()
    # The change is visible: most pixels of the part move by a clear amount.
    moved = (before.images - after.images).abs().amax(dim=1) > 0.05
    assert (moved & inside).sum() > 0.5 * inside.sum()


def test_attributes_follow_z():
    z = torch.zeros(2, Z_DIM)
    z[0, COORDINATES["iris_hue"]] = -1.0
    z[1, COORDINATES["iris_hue"]] = 1.0
    z[0, COORDINATES["smile"]] = -1.5
    z[1, COORDINATES["smile"]] = 1.5
    z[0, COORDINATES["hair_length"]] = -2.0
    z[1, COORDINATES["hair_length"]] = 2.0
    out = renderer.render(z)
    attrs = out.attributes
    assert attrs["iris_hue"][0] < attrs["iris_hue"][1]
    assert (attrs["iris_rgb"][0] - attrs["iris_rgb"][1]).abs().max() > 0.3
    assert attrs["smile"][0] < 0 < attrs["smile"][1]
    for key in ("skin_rgb", "hair_rgb", "iris_rgb", "lip_rgb", "background_rgb"):
        assert attrs[key].shape == (2, 3)
        assert attrs[key].min() >= 0 and attrs[key].max() <= 1
    # Long hair reaches well below the short cut.
    hair_rows = (out.masks == PARTS.index("hair")).any(dim=2)
    lowest_hair_row = [int(torch.nonzero(rows).max()) for rows in hair_rows]
    assert lowest_hair_row[1] > lowest_hair_row[0] + 15


@pytest.mark.parametrize("drawing", [renderer, renderer_v2], ids=["v1", "v2"])
def test_smile_bends_mouth_corners_up(drawing):
    scale = drawing.RESOLUTION // 64  # v2 draws at 128 px
    z = torch.zeros(2, drawing.Z_DIM)
    z[0, drawing.COORDINATES["smile"]] = -2.0
    z[1, drawing.COORDINATES["smile"]] = 2.0
    masks = drawing.render(z).masks == drawing.PARTS.index("mouth")
    rows = torch.arange(drawing.RESOLUTION, dtype=torch.float32)[:, None]
    centre_column = drawing.RESOLUTION // 2

    def mean_row(mask, columns):
        region = mask[:, columns]
        return float((rows * region).sum() / region.sum())

    for mask, sign in zip(masks, (-1, 1)):
        corners = torch.nonzero(mask.any(dim=0)).flatten()
        edge_columns = torch.cat([corners[:2 * scale - scale // 2], corners[-(2 * scale - scale // 2):]])
        corner_row = mean_row(mask, edge_columns)
        centre_row = mean_row(mask, slice(centre_column - scale, centre_column + scale))
        # Image rows grow downwards: a smile has its corners above the centre.
        assert sign * (centre_row - corner_row) > scale
