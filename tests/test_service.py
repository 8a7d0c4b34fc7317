"""EditService: an official model dropped into GANEDIT_WEIGHTS_DIR gets its catalog built on first use, cached,
and reused; prepared seeds are cached so a parameter change costs one synthesis."""

import numpy as np
import pytest
from official_files import write_stylegan2_pickle

import ganedit
from ganedit import service as service_module


@pytest.fixture
def dropped_weights(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    write_stylegan2_pickle(folder / ganedit.model_info("stylegan2-cats").official_file)
    monkeypatch.setenv("GANEDIT_WEIGHTS_DIR", str(folder))
    monkeypatch.setenv("GANEDIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GANEDIT_OFFLINE", "1")
    monkeypatch.setattr(service_module, "FIRST_USE_CATALOG", dict(k=5, n_images=8))
    return tmp_path / "cache" / "catalogs"


def test_first_use_builds_and_caches_a_catalog_then_reuses_it(dropped_weights):
    assert ganedit.availability("stylegan2-cats")[0] == "ready"
    reports = []
    G, catalog = ganedit.EditService(device="cpu").model("stylegan2-cats", progress=lambda f, m: reports.append((f, m)))
    assert G.name == "stylegan2-cats" and catalog.model == "stylegan2-cats" and catalog.k == 5
    assert reports and reports[-1][0] == pytest.approx(1.0)
    assert sorted(p.name for p in dropped_weights.iterdir()) == [
        "stylegan2-cats.json", "stylegan2-cats.labels.json", "stylegan2-cats.safetensors"]
    _, again = ganedit.EditService(device="cpu").model("stylegan2-cats")
    assert again.path is not None and all(again.contributions[n].equal(m) for n, m in catalog.contributions.items())


def test_prepared_seeds_are_cached_and_edits_match_the_library(dropped_weights):
    service = ganedit.EditService(device="cpu", max_seeds=2)
    G, catalog = service.model("stylegan2-cats")
    first = service.prepared("stylegan2-cats", 1)
    assert service.prepared("stylegan2-cats", 1) is first
    service.prepared("stylegan2-cats", 2)
    service.prepared("stylegan2-cats", 3)  # the cache holds two seeds: seed 1 is evicted
    assert service.prepared("stylegan2-cats", 1) is not first
    served = service.edit("stylegan2-cats", 1, 2, "cluster 0", epsilon=2.0)
    direct = ganedit.edit(G, catalog, 1, 2, "cluster 0", epsilon=2.0)
    assert np.array_equal(served.result, direct.result) and served.in_mse == direct.in_mse
    with pytest.raises(ValueError, match="unknown model"):
        service.model("nope")
