"""Parts as names or as sets of clusters (what a click selects): the same edit either way, clear refusals, the
cluster under a point of the picture as shown, and naming clusters."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ganedit
from ganedit import EditRequest, GridRequest, RequestError
from ganedit.catalog import useful_ranges
from ganedit.editing import grid_edits
from ganedit.figures import setting_caption

MODEL = "cartoon-faces"


@pytest.fixture(scope="module")
def model():
    G = ganedit.load_generator(MODEL)
    catalog = ganedit.load_catalog(MODEL)
    return G, catalog


def test_the_same_edit_by_name_and_by_its_clusters(model):
    G, catalog = model
    ids = catalog.part_clusters("eyes")
    by_name = ganedit.edit(G, catalog, 9, 12, "eyes")
    for part in (ids, list(reversed(ids)), "clusters:" + ",".join(map(str, ids))):
        by_clusters = ganedit.edit(G, catalog, 9, 12, part)
        assert np.array_equal(by_clusters.result, by_name.result) and np.array_equal(by_clusters.roi, by_name.roi)


def test_a_set_of_clusters_is_called_by_its_name_when_it_has_one(model):
    _, catalog = model
    eyes, mouth = catalog.part_clusters("eyes"), catalog.part_clusters("mouth")
    assert catalog.part_name(eyes) == "eyes"
    assert catalog.part_name(sorted(eyes + mouth)) == "clusters:" + ",".join(map(str, sorted(eyes + mouth)))
    assert catalog.part_name(eyes[:1]) == "clusters:" + str(eyes[0])  # part of a named part has no name


@pytest.mark.parametrize("part", ["clusters:", "clusters:3,x", f"clusters:3,{10**6}", [], [3, -1], [3, True], 3.0,
                                  "clusters:99"])
def test_bad_cluster_sets_are_refused(model, part):
    _, catalog = model
    with pytest.raises(ValueError, match="cluster ids|unknown part|a part is a name"):
        catalog.part_clusters(part)


def test_requests_carry_cluster_sets_as_text(model):
    _, catalog = model
    eyes = ",".join(map(str, catalog.part_clusters("eyes")))
    assert EditRequest.strict(lambda _: catalog, MODEL, 1, 2, f"clusters:{eyes}").part == "eyes"
    request = EditRequest.strict(lambda _: catalog, MODEL, 1, 2, "clusters:12,10")
    assert request.part == "clusters:10,12" and "part=clusters%3A10%2C12" in request.to_query()
    assert request.file_stem() == "cartoon-faces_t1_r2_clusters-10-12_sequential_eps6.3"
    with pytest.raises(RequestError, match="'clusters:' and cluster ids from 0 to 31; got 'clusters:40'"):
        EditRequest.strict(lambda _: catalog, MODEL, 1, 2, "clusters:40")
    linked, notes = EditRequest.lenient(lambda _: catalog, {"part": "clusters:10,12"}, MODEL)
    assert linked.part == "clusters:10,12" and notes == []


def test_the_cluster_under_a_point_of_the_shown_picture(model):
    G, catalog = model
    prepared = ganedit.prepare_seed(G, catalog, 9)
    shown = ganedit.enlarge(prepared.image)  # 256 x 256 for the 64 px model
    rows, cols = prepared.cluster_map.shape
    scale = shown.shape[0] // rows
    for row, col in ((0, 0), (rows // 2, cols // 3), (rows - 1, cols - 1)):
        x, y = col * scale + scale // 2, row * scale + scale // 2
        assert ganedit.cluster_at(G, prepared, x, y, (shown.shape[1], shown.shape[0])) == prepared.cluster_map[row, col]
    with pytest.raises(ValueError, match="outside the picture"):
        ganedit.cluster_at(G, prepared, shown.shape[1], 0, (shown.shape[1], shown.shape[0]))


def test_a_pictures_cluster_map_keeps_an_outline_finer_than_the_layers_grid(model):
    _, shipped = model
    grid, size = 8, 32
    catalog = dataclasses.replace(shipped, layer=f"{grid}x{grid}/Conv1", k=2, centroids=torch.eye(2, 3))
    pixel = torch.arange(size) + 0.5
    truth = pixel[:, None] + pixel[None, :] < size + 3  # a diagonal edge: the upper-left part is cluster 0
    # each cell of the layer mixes the two directions by how much of it lies on either side, as features do
    share = F.avg_pool2d(truth[None, None].float(), size // grid)[0, 0]
    activations = {catalog.layer: torch.stack([share, 1 - share, torch.zeros(grid, grid)])[None]}
    coarse = catalog.cluster_map(activations)
    assert torch.equal(coarse[0] == 0, share > 0.5)
    assert torch.equal(catalog.cluster_map(activations, size=grid), coarse)  # never coarser than the layer
    fine = catalog.cluster_map(activations, size=size)
    blocks = F.interpolate(coarse[:, None].float(), size=(size, size), mode="nearest")[0, 0]

    def iou(predicted):
        return ((predicted & truth).sum() / (predicted | truth).sum()).item()

    assert fine.shape == (1, size, size) and iou(fine[0] == 0) > iou(blocks == 0)
    assert catalog.map_size(1024) == 4 * grid and catalog.map_size(16) == 16


def test_the_overlay_outlines_the_selection(model):
    G, catalog = model
    prepared = ganedit.prepare_seed(G, catalog, 9)
    plain = ganedit.seed_overlay(G, prepared)
    outlined = ganedit.seed_overlay(G, prepared, catalog.part_clusters("eyes"))
    changed = np.any(plain != outlined, axis=-1)
    assert 0 < changed.mean() < 0.1  # a thin outline, not a repaint


def test_the_overlay_shows_one_colour_per_part(model):
    G, catalog = model
    palette, colours = ganedit.part_palette(catalog), ganedit.cluster_colours(catalog)
    assert list(palette) == catalog.parts and len(set(palette.values())) == len(palette)
    cluster_map = ganedit.prepare_seed(G, catalog, 9).cluster_map.cpu().numpy()
    grey = np.full((*cluster_map.shape, 3), 128, np.uint8)

    def colours_shown(table=None):
        return len(np.unique(ganedit.cluster_overlay(grey, cluster_map, colours=table).reshape(-1, 3), axis=0))

    parts_shown = {part for part in catalog.parts if np.isin(cluster_map, catalog.part_clusters(part)).any()}
    assert colours_shown(colours) == len(parts_shown) < colours_shown() == len(np.unique(cluster_map))


def test_naming_merging_and_renaming_parts(tmp_path, model):
    _, shipped = model
    shipped.save(tmp_path / "copy")
    catalog = ganedit.load_catalog(tmp_path / "copy")
    mouth = catalog.part_clusters("mouth")
    catalog.rename(mouth[:1], "lips")
    catalog.merge(mouth[1:], "lips")
    catalog.rename_part("eyes", "irises")
    with pytest.raises(ValueError, match="already called 'lips'"):
        catalog.rename_part("irises", "lips")
    catalog.save_labels()
    again = ganedit.load_catalog(tmp_path / "copy")
    assert again.part_clusters("lips") == sorted(mouth) and "mouth" not in again.parts
    assert again.part_clusters("irises") == shipped.part_clusters("eyes")
    assert list(again.labels).index("irises") == list(shipped.labels).index("eyes")


# ---- a part's own default epsilon ----------------------------------------------------------------------------

@pytest.fixture
def own_mouth_default(tmp_path, model):
    """A copy of the bundled catalog whose mouth has its own default epsilon (1.5x the catalog's), saved and read
    back."""
    G, catalog = model
    copy = ganedit.load_catalog(MODEL)
    mouth = round(min(1.5 * catalog.epsilon["default"], catalog.epsilon["max"]), 1)
    copy.set_default_epsilon("mouth", mouth)
    copy.save(tmp_path / "cat")
    return G, ganedit.load_catalog(tmp_path / "cat"), mouth


def test_a_part_starts_from_its_own_default(own_mouth_default):
    G, catalog, mouth = own_mouth_default
    assert catalog.default_epsilon("mouth") == mouth != catalog.epsilon["default"]
    assert catalog.default_epsilon("clusters:" + ",".join(map(str, catalog.part_clusters("mouth")))) == mouth
    assert catalog.default_epsilon("brows") == catalog.epsilon["default"]  # a part without its own keeps the catalog's
    implicit = ganedit.edit(G, catalog, 9, 12, "mouth")
    explicit = ganedit.edit(G, catalog, 9, 12, "mouth", epsilon=mouth)
    assert np.array_equal(implicit.result, explicit.result)
    assert not np.array_equal(implicit.result, ganedit.edit(G, catalog, 9, 12, "mouth",
                                                           epsilon=catalog.epsilon["default"]).result)
    request = EditRequest.strict(lambda m: catalog, MODEL, 9, 12, "mouth")
    assert request.epsilon == mouth
    link, notes = EditRequest.lenient(lambda m: catalog, {"model": MODEL, "part": "mouth"}, MODEL)
    assert link.epsilon == mouth and notes == []


def test_a_grid_gives_each_part_its_own_default_unless_given_one(own_mouth_default):
    G, catalog, mouth = own_mouth_default
    default = catalog.epsilon["default"]
    assert GridRequest.strict(lambda m: catalog, MODEL, 9, [12], ["mouth", "brows"]).epsilon is None
    assert GridRequest.strict(lambda m: catalog, MODEL, 9, [12], ["mouth"], epsilon=str(default)).epsilon == default
    own = grid_edits(G, catalog, 9, [12], ["mouth", "brows"])
    assert np.array_equal(own[0][0].result, ganedit.edit(G, catalog, 9, 12, "mouth", epsilon=mouth).result)
    assert np.array_equal(own[1][0].result, ganedit.edit(G, catalog, 9, 12, "brows", epsilon=default).result)
    given = grid_edits(G, catalog, 9, [12], ["mouth"], epsilon=default)
    assert not np.array_equal(given[0][0].result, own[0][0].result)
    # each row of the picture says what it used
    assert [setting_caption(catalog, part, "sequential") for part in ("mouth", "brows")] == [f"eps {mouth:g}",
                                                                                             f"eps {default:g}"]
    assert setting_caption(catalog, "mouth", "sequential", epsilon=2.5) == "eps 2.5"
    assert setting_caption(catalog, "mouth", "simultaneous") == f"lambda {catalog.lam['default']:g}"
    assert setting_caption(catalog, "mouth", "global") == "lambda 1"


def test_a_part_default_follows_a_rename_and_ends_with_a_merge(own_mouth_default):
    _, catalog, mouth = own_mouth_default
    catalog.rename_part("mouth", "lips")
    assert catalog.default_epsilon("lips") == mouth
    catalog.merge(catalog.part_clusters("brows"), "lips")  # other clusters: another part, the catalog's default again
    assert catalog.default_epsilon("lips") == catalog.epsilon["default"]


def test_stored_defaults_lie_on_the_sliders_grid(model):
    G, catalog = model
    copy = ganedit.load_catalog(MODEL)
    copy.set_default_epsilon("mouth", 6.25)
    assert copy.default_epsilon("mouth") == 6.3  # rounded up: a slider of step 0.1 shows it as it is
    copy.set_default_epsilon("mouth", 4.0)
    assert copy.default_epsilon("mouth") == 4.0
    copy.set_default_epsilon("mouth", copy.epsilon["max"])
    assert copy.default_epsilon("mouth") == copy.epsilon["max"]
    epsilon, lam = useful_ranges(catalog.contributions)
    for default in (epsilon["default"], epsilon["max"], lam["default"]):  # a fresh catalog's range ends on it too
        steps = default / ganedit.SLIDER_STEP
        assert default > 0 and abs(steps - round(steps)) < 1e-9, default


@pytest.mark.parametrize("per_part, words", [
    ({"3,1": 1.0}, "sorted cluster ids"), ({"999": 1.0}, "below k"), ({"x": 1.0}, "sorted cluster ids"),
    ({"3": 1e9}, "outside"), ({"3": "high"}, "outside"), ([1, 2], "an object"),
])
def test_bad_part_defaults_are_refused(tmp_path, model, per_part, words):
    catalog = ganedit.load_catalog(MODEL)
    catalog.epsilon = {**catalog.epsilon, "per_part": per_part}
    catalog.save(tmp_path / "cat")
    with pytest.raises(ValueError, match=words):
        ganedit.load_catalog(tmp_path / "cat")
    with pytest.raises(ValueError, match="a default epsilon must be a number"):
        ganedit.load_catalog(MODEL).set_default_epsilon("mouth", -1)
