"""The paper's method on small random-weight generators: catalogs (Eq. 1), transfer, edit."""

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from official_files import write_stylegan2_pickle, write_stylegan_pickle
from small_models import small_generator, small_model

import ganedit
from ganedit.catalog import _crop_mask
from ganedit.face_labels import classify


@pytest.fixture(scope="module", params=["stylegan2", "stylegan"])
def model(request):
    return small_model(request.param)


def test_contributions_of_every_channel_sum_to_one(model):
    # Activations are standardised per channel and the memberships of a position sum to 1, so
    # sum_k M[k, c] = mean(A^2) = 1 for every channel of every layer (the paper's M in [0, 1]).
    G, catalog = model
    assert list(catalog.contributions) == [s.name for s in G.style_layers]
    for spec in G.style_layers:
        m = catalog.contributions[spec.name]
        assert m.shape == (catalog.k, spec.channels)
        assert (m >= 0).all()
        torch.testing.assert_close(m.sum(0), torch.ones(spec.channels), atol=1e-4, rtol=0)


def test_contributions_match_a_direct_computation_of_eq1(model):
    G, catalog = model
    z = torch.cat([torch.from_numpy(ganedit.seed_to_z(s, G.z_dim)) for s in range(catalog.n_images)])
    _, acts = G.synthesis(G.styles(G.mapping(z, catalog.truncation_psi)), return_activations=True)
    u = F.one_hot(catalog.cluster_map(acts), catalog.k).permute(0, 3, 1, 2).float()
    spec = G.style_layers[-2]
    a = acts[spec.activation].double()
    a = (a - a.mean(dim=(0, 2, 3), keepdim=True)) / a.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
    u = F.interpolate(u, size=a.shape[2:], mode="bilinear", align_corners=False).double()
    expected = (a.square().unsqueeze(1) * u.unsqueeze(2)).mean(dim=(0, 3, 4))
    torch.testing.assert_close(catalog.contributions[spec.name].double(), expected, atol=1e-4, rtol=1e-3)


def test_kmeans_layer_defaults_follow_the_documented_rule():
    assert ganedit.default_layer(small_generator("stylegan", 128)) == "32x32/Conv0_up"
    assert ganedit.default_layer(small_generator("stylegan2", 64)) == "16x16/Conv0_up"
    assert ganedit.default_layer(small_generator("stylegan2", 32)) == "16x16/Conv0_up"


def test_black_bands_of_the_car_canvas_take_no_part():
    rows = _crop_mask((64, 448), 512, 32, "cpu")[:, 0]
    assert rows.tolist() == [False] * 4 + [True] * 24 + [False] * 4
    assert _crop_mask(None, 512, 32, "cpu").all()


def test_transfer_with_q_zero_keeps_the_target_and_q_one_takes_the_reference(model):
    G, catalog = model
    target = G.styles(G.mapping(torch.from_numpy(ganedit.seed_to_z(1, G.z_dim))))
    reference = G.styles(G.mapping(torch.from_numpy(ganedit.seed_to_z(2, G.z_dim))))
    kept = ganedit.transfer(target, reference, catalog, "eyes", "sequential", epsilon=0.0)
    taken = ganedit.transfer(target, reference, catalog, "eyes", "global", lam=1.0)
    for t, r, k, g in zip(target.scales, reference.scales, kept.scales, taken.scales):
        assert torch.equal(k, t)
        assert torch.equal(g, r)
    if target.bias is not None:  # StyleGAN's AdaIN bias moves only on request
        assert all(torch.equal(b, t) for b, t in zip(taken.bias, target.bias))
        moved = ganedit.transfer(target, reference, catalog, "eyes", "global", lam=1.0, interpolate_bias=True)
        assert all(torch.equal(b, r) for b, r in zip(moved.bias, reference.bias))


def test_edit_end_to_end(model):
    G, catalog = model
    nothing = ganedit.edit(G, catalog, 3, 4, "eyes", "sequential", epsilon=0.0)
    assert np.array_equal(nothing.result, nothing.target)
    assert nothing.in_mse == 0 and nothing.out_mse == 0 and nothing.channels_moved == 0
    # q = 1 everywhere gives the reference's picture (StyleGAN: once its AdaIN bias moves too)
    everything = ganedit.edit(G, catalog, 3, 4, "eyes", "global", lam=1.0, interpolate_bias=True)
    assert np.array_equal(everything.result, everything.reference)
    some = ganedit.edit(G, catalog, 3, 4, "eyes", "sequential", epsilon=5.0)
    size = G.resolution
    assert some.target.shape == some.result.shape == (size, size, 3) and some.result.dtype == np.uint8
    assert some.difference.shape == some.roi.shape == (size, size)
    assert some.roi.any() and some.roi.dtype == bool
    assert some.in_mse > 0 or some.out_mse > 0
    taken = [ganedit.sequential_query(m, 5.0) for m in catalog.part_contributions("eyes")]
    assert some.channels_moved == sum(int(q.sum()) for q in taken) > 0
    assert everything.channels_moved == sum(s.channels for s in G.style_layers)
    with pytest.raises(ValueError, match="unknown part"):
        ganedit.edit(G, catalog, 3, 4, "wheels")
    with pytest.raises(ValueError, match="seed"):
        ganedit.edit(G, catalog, -1, 4, "eyes")
    with pytest.raises(ValueError, match="method"):
        ganedit.edit(G, catalog, 3, 4, "eyes", "magic")
    with pytest.raises(ValueError, match="epsilon"):
        ganedit.edit(G, catalog, 3, 4, "eyes", epsilon=float("nan"))


def test_an_edit_that_moves_nothing_says_what_would_move_something():
    sequential = ganedit.why_nothing_moved("sequential", 0.0, 2.5, 0.1)
    for words in ("at ε 0", "threshold 0.1", "raise ε", "lower the threshold", "add clusters", "simultaneous"):
        assert words in sequential
    assert "raise λ" in ganedit.why_nothing_moved("simultaneous", 4.5, 0.0)
    assert "add clusters" in ganedit.why_nothing_moved("simultaneous", 4.5, 2.0)  # then no channel has any M


def test_catalog_round_trip_and_refusal_of_a_mismatch(model, tmp_path):
    G, catalog = model
    catalog.save(tmp_path / "mine")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.labels.json", "mine.safetensors"]
    loaded = ganedit.load_catalog(tmp_path / "mine.safetensors")
    assert loaded.labels == catalog.labels and loaded.layer == catalog.layer and loaded.k == catalog.k
    assert torch.equal(loaded.centroids, catalog.centroids)
    assert all(torch.equal(loaded.contributions[n], m) for n, m in catalog.contributions.items())
    assert loaded.parts == catalog.parts and loaded.parts[0] == "eyes" and "cluster 4" in loaded.parts
    other = small_generator(G.kind, G.resolution * 2 if G.kind == "stylegan2" else 256)
    with pytest.raises(ValueError, match="different architecture"):
        loaded.check_fits(other)
    loaded.fingerprint, G.fingerprint = "aaaa", "bbbb"
    try:
        with pytest.raises(ValueError, match="built for weights aaaa"):
            loaded.check_fits(G)
    finally:
        del G.fingerprint
    with pytest.raises(FileNotFoundError, match="no catalog"):
        ganedit.load_catalog(tmp_path / "absent")


def test_rename_moves_clusters_between_parts(model):
    _, catalog = model
    labels = dict(catalog.labels)
    try:
        catalog.rename([1, 2], "mouth")
        assert catalog.labels == {"eyes": [0], "mouth": [1, 2]}
        assert catalog.part_clusters("cluster 3") == [3]
        for bad_ids, bad_name in (([9], "x"), ([], "x"), ([0], ""), ([0], "cluster 7")):
            with pytest.raises(ValueError):
                catalog.rename(bad_ids, bad_name)
    finally:
        catalog.labels = labels


def test_face_rule_names_clusters_by_their_place():
    assert classify(dict(y=0.46, x=0.5, area=0.02, left=0.5, edge=0.0)) == "eyes"
    assert classify(dict(y=0.46, x=0.35, area=0.02, left=1.0, edge=0.0)) is None  # one eye only: not both
    assert classify(dict(y=0.57, x=0.5, area=0.02, left=0.5, edge=0.0)) == "nose"
    assert classify(dict(y=0.72, x=0.5, area=0.03, left=0.5, edge=0.0)) == "mouth"
    assert classify(dict(y=0.5, x=0.5, area=0.4, left=0.5, edge=0.3)) == "background"
    assert classify(dict(y=0.2, x=0.5, area=0.1, left=0.5, edge=0.0)) is None


def test_evaluation_rows_cover_every_setting(model):
    G, catalog = model
    from ganedit.evaluation import LAMBDA_HALVINGS, evaluate, mean_difference_maps, random_pairs, sweep_values

    pairs = random_pairs(3, seed=1)
    assert len(set(pairs)) == 3 and all(t != r for t, r in pairs)
    rows = evaluate(G, catalog, ["eyes"], pairs, steps=3)
    maps = mean_difference_maps(G, catalog, ["eyes"], pairs)
    assert [(r["method"]) for r in rows] == ["sequential"] * 3 + ["simultaneous"] * (3 + LAMBDA_HALVINGS)
    assert maps["eyes"].shape == (G.resolution, G.resolution)
    epsilons = [r["value"] for r in rows if r["method"] == "sequential"]
    assert epsilons == sweep_values(catalog, "sequential", 3) and epsilons[-1] == catalog.epsilon["max"]
    lambdas = [r["value"] for r in rows if r["method"] == "simultaneous"]
    first_step = catalog.lam["min"] + (catalog.lam["max"] - catalog.lam["min"]) / 3
    assert lambdas[-1] == catalog.lam["max"] and lambdas == sorted(lambdas)
    assert lambdas[:LAMBDA_HALVINGS + 1] == pytest.approx([first_step / 8, first_step / 4, first_step / 2, first_step],
                                                        abs=1e-3)
    assert all(r["in_mse"] >= 0 and r["out_mse"] >= 0 for r in rows)
    # the hooks: a region of interest of our own, and numbers summed over the pairs
    everywhere = np.ones((G.resolution, G.resolution), dtype=bool)
    hooked = evaluate(G, catalog, ["eyes"], pairs, steps=3, roi_for=lambda target, part: everywhere,
                      pair_measures=lambda target, reference, part, result, roi: {"pairs": 1.0})
    assert all(r["out_mse"] == 0 and r["pairs"] == 3 for r in hooked)
    assert [r["in_mse"] for r in hooked] != [r["in_mse"] for r in rows]


@pytest.mark.parametrize("kind", ["stylegan", "stylegan2"])
def test_end_to_end_on_tiny_official_files(kind, tmp_path):
    path = tmp_path / f"{kind}.pkl"
    (write_stylegan_pickle if kind == "stylegan" else write_stylegan2_pickle)(path)
    G = ganedit.load_generator(path)
    catalog = ganedit.build_catalog(G, k=4, n_images=6, batch_size=3)
    catalog.rename([0], "part")
    catalog.check_fits(G)
    result = ganedit.edit(G, catalog, 0, 1, "part", "sequential", epsilon=catalog.epsilon["max"])
    assert result.result.shape == (G.resolution, G.resolution, 3)
    assert not np.array_equal(result.result, result.target)
    assert np.array_equal(ganedit.edit(G, catalog, 0, 1, "part", epsilon=0.0).result, result.target)


def test_display_crop_applies_to_edits_and_overlays():
    from ganedit.loading import ModelInfo

    G, catalog = small_model("stylegan2")
    G.info = ModelInfo(name="banded", title="", kind="stylegan2", resolution=64, crop=(16, 48), truncation_psi=1.0,
                       license="")
    result = ganedit.edit(G, catalog, 1, 2, "eyes", epsilon=3.0)
    assert result.target.shape == result.result.shape == (32, 64, 3)
    assert result.difference.shape == result.roi.shape == (32, 64)
    overlay = ganedit.seed_overlay(G, ganedit.prepare_seed(G, catalog, 1))
    assert overlay.shape == (32, 64, 3)
    assert not np.array_equal(overlay, result.target)


def test_fig7_plots_wrap_into_rows_of_five_parts():
    from ganedit.evaluation import PLOTS_PER_ROW, plot_curves

    rows = [{"part": f"part {i}", "method": method, "value": v, "in_mse": v, "out_mse": v / 2}
            for i in range(PLOTS_PER_ROW + 2) for method in ("sequential", "simultaneous") for v in (1.0, 2.0)]
    picture = Image.open(io.BytesIO(plot_curves(rows)))
    one_row = Image.open(io.BytesIO(plot_curves([r for r in rows if r["part"] == "part 0"])))
    assert picture.width == PLOTS_PER_ROW * one_row.width and picture.height == 2 * one_row.height
