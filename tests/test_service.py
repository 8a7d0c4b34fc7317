"""EditService: an official model dropped into GANEDIT_WEIGHTS_DIR gets its catalog built on first use, cached,
and reused; prepared seeds are cached so a parameter change costs one synthesis."""

import threading

import numpy as np
import pytest

import ganedit
from ganedit import service as service_module


def test_first_use_builds_and_caches_a_catalog_then_reuses_it(dropped_weights):
    assert ganedit.availability("stylegan2-cats")[0] == "ready"
    reports = []
    G, catalog = ganedit.EditService(device="cpu").model("stylegan2-cats", progress=lambda f, m: reports.append((f, m)))
    assert G.name == "stylegan2-cats" and catalog.model == "stylegan2-cats" and catalog.k == 5
    assert reports and reports[-1][0] == pytest.approx(1.0)
    assert sorted(p.name for p in dropped_weights.iterdir()) == [
        "stylegan2-cats.labels.json", "stylegan2-cats.safetensors"]
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
    request = ganedit.EditRequest.strict(service.catalog, "stylegan2-cats", 1, 2, "cluster 0", epsilon=2.0)
    served = service.edit(request)
    direct = ganedit.edit(G, catalog, 1, 2, "cluster 0", epsilon=2.0)
    assert np.array_equal(served.result, direct.result) and served.in_mse == direct.in_mse
    with pytest.raises(ValueError, match="unknown model"):
        service.model("nope")


def test_concurrent_first_uses_load_the_model_once(dropped_weights, monkeypatch):
    loads = []
    real = service_module.load_generator
    monkeypatch.setattr(service_module, "load_generator", lambda *a, **k: loads.append(a) or real(*a, **k))
    service = ganedit.EditService(device="cpu")
    results = []
    threads = [threading.Thread(target=lambda: results.append(service.model("stylegan2-cats"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1 and len(results) == 4 and all(r is results[0] for r in results)


def test_a_broken_model_is_marked_unavailable_and_the_rest_keeps_working(dropped_weights, tmp_path):
    broken = tmp_path / "weights" / ganedit.model_info("stylegan2-cars").official_file
    broken.write_bytes(b"\x80\x04not a pickle at all")
    service = ganedit.EditService(device="cpu")
    for _ in range(2):  # the second time from memory, without reading the file again
        with pytest.raises(ganedit.ModelUnavailableError, match="stylegan2-cars is not available: its weights file "
                                                                 "could not be read"):
            service.model("stylegan2-cars")
    assert service.state("stylegan2-cars") == ("unavailable", "its weights file could not be read")
    assert service.state("stylegan-ffhq") == ("unavailable", "not available on this server")  # offline, no file
    assert service.model("stylegan2-cats")[1].k == 5
