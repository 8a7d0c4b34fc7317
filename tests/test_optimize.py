"""G.optimize(): the compiled fast path gives eager's pictures, is never compiled on a caller's time in the
service (eager until warm, then the switch), and GANEDIT_OPTIMIZE=0 turns it off.

Compiling costs seconds even for tiny models, so the fast path's own rewrites (transposed upscaling, Winograd)
are checked without the compiler, and only two tests run torch.compile itself.
"""

import os
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ganedit
from ganedit import service as service_module
from ganedit.networks import StyleGAN, StyleGAN2, fast, winograd

REPO = Path(__file__).resolve().parent.parent

TINY = dict(z_dim=16, w_dim=16, mapping_fmaps=16, fmap_max=8)


def tiny(family, resolution=32):
    """A small generator with every parameter random (the initial zeros would hide noise and biases)."""
    torch.manual_seed(0)
    family = StyleGAN if family == "stylegan" else StyleGAN2
    G = family(dict(TINY, resolution=resolution, fmap_base=4 * resolution))
    with torch.no_grad():
        for p in G.parameters():
            p.copy_(torch.randn_like(p) * (1 if p.ndim > 1 else 0.3))
    return G.eval().requires_grad_(False)


def relative_error(a, b):
    return float((a - b).norm() / b.norm())


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANEDIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    monkeypatch.delenv("GANEDIT_OPTIMIZE", raising=False)


@pytest.fixture
def winograd_everywhere(monkeypatch):
    """Winograd for every 3x3 convolution, however small its map (in use it starts at 16x16), with 6x6 tiles from
    16x16 (in use from 64x64), so that a tiny model has both tile sizes."""
    assert winograd.prepare(), "the Winograd kernel did not build"
    monkeypatch.setattr(winograd, "SMALLEST", {"conv": (0, 0), "upscale": (0, 0)})
    monkeypatch.setattr(winograd, "LARGE_TILES_FROM", 16 * 16)


@pytest.fixture
def uncompiled(monkeypatch):
    """The fast path with its rewrites run eagerly instead of compiled; counts the calls it serves."""
    served = []

    def compile_(G):
        run = partial(G._synthesize, fast=True)
        return lambda *args: served.append(args[0][0].shape[0]) or run(*args)

    monkeypatch.setattr(fast, "_compile", compile_)
    return served


# ---- the fast path's rewrites, without the compiler ----------------------------------------------------------

# channels below and above one C step; sizes that tiles of 4 and 6 divide, and sizes neither divides
@pytest.mark.parametrize("shape", [(2, 5, 8, 12, 3), (1, 70, 24, 24, 66), (1, 9, 13, 7, 5)])
@pytest.mark.parametrize("tile", [4, 6])
def test_winograd_convolution_is_a_3x3_convolution(shape, tile):
    assert winograd.prepare(), "the Winograd kernel did not build"
    n, c, h, w, out = shape
    torch.manual_seed(1)
    x, weight = torch.randn(n, c, h, w), torch.randn(out, c, 3, 3)
    expected = F.conv2d(x.double(), weight.double(), padding=1)
    got = winograd.winograd_conv3x3(x, winograd.winograd_weight(weight, tile))
    assert got.shape == expected.shape and relative_error(got.double(), expected) < 1e-5


@pytest.mark.parametrize(("shape", "tile"), [((2, 6, 8, 12, 4), 4), ((1, 6, 10, 7, 4), 6)])
def test_winograd_upscaling_convolution_is_upscaling_then_a_3x3_convolution(shape, tile):
    assert winograd.prepare(), "the Winograd kernel did not build"
    n, c, h, w, out = shape
    torch.manual_seed(2)
    x, weight = torch.randn(n, c, h, w), torch.randn(out, c, 3, 3)
    expected = F.conv2d(F.interpolate(x.double(), scale_factor=2, mode="nearest"), weight.double(), padding=1)
    got = winograd.upscale_conv3x3(x, weight, tile)
    assert got.shape == expected.shape and relative_error(got.double(), expected) < 1e-5


def test_large_maps_get_large_tiles():
    assert winograd.prepare(), "the Winograd kernel did not build"
    side, channels = round(winograd.LARGE_TILES_FROM ** 0.5), winograd.SMALLEST["conv"][0]
    assert winograd.tile_for(torch.zeros(1, channels, side // 2, side // 2)) == 4
    assert winograd.tile_for(torch.zeros(1, channels, side, side)) == 6
    assert winograd.tile_for(torch.zeros(1, channels // 2, side, side)) == 0  # too few channels to pay


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("family", ["stylegan", "stylegan2"])
def test_fast_rewrites_give_eager_pictures(winograd_everywhere, family, batch):
    G = tiny(family, resolution=128)  # StyleGAN: plain and (from 128 px) fused upscaling
    with torch.no_grad():
        styles = G.styles(G.mapping(torch.randn(batch, G.z_dim), truncation_psi=0.7))
        images, activations = G.synthesis(styles, return_activations=True)
        fast_images, fast_activations = G._synthesize(styles.scales, G._style_bias(styles), "const", True, fast=True)
    assert relative_error(fast_images, images) < 1e-5
    assert all(relative_error(fast_activations[k], a) < 1e-5 for k, a in activations.items())


# ---- torch.compile itself: two graphs -------------------------------------------------------------------------

@pytest.mark.parametrize(("family", "batch"), [("stylegan", 4), ("stylegan2", 1)])
def test_optimized_synthesis_gives_eager_pictures(winograd_everywhere, family, batch):
    G = tiny(family, resolution=16)  # few layers: each Winograd convolution is 38 nodes to compile
    with torch.no_grad():
        styles = G.styles(G.mapping(torch.randn(batch, G.z_dim), truncation_psi=0.7))
        eager = G.synthesis(styles)
        assert G.optimize(batch_sizes=()) is G and not G._fast.is_warm(batch)
        optimized = G.synthesis(styles)  # compiles this graph, then serves it
    assert G._fast.is_warm(batch) and relative_error(optimized, eager) < 1e-4


# ---- when the fast path serves, and when it does not -----------------------------------------------------------

def test_the_environment_variable_turns_it_off(monkeypatch, uncompiled):
    monkeypatch.setenv("GANEDIT_OPTIMIZE", "0")
    G = tiny("stylegan2")
    assert G.optimize() is G and G._fast is None
    with torch.no_grad():
        G.synthesis(G.styles(G.w_avg[None]))
    assert uncompiled == []


def test_calls_needing_gradients_or_random_noise_stay_eager(uncompiled):
    G = tiny("stylegan2").optimize(batch_sizes=())
    styles = G.styles(G.w_avg[None])
    G.synthesis(styles)  # gradients enabled
    with torch.no_grad():
        G.synthesis(styles, noise_mode="random")
        assert uncompiled == [] and not G._fast.is_warm(1)
        G.synthesis(styles)
    assert uncompiled and G._fast.is_warm(1)


def test_a_model_that_does_not_compile_is_served_eagerly(monkeypatch):
    def broken(G):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(fast, "_compile", broken)
    G = tiny("stylegan2").optimize(background=True)
    G._fast.wait()
    assert not G._fast.is_warm(1)
    with torch.no_grad():
        assert G.synthesis(G.styles(G.w_avg[None])).shape == (1, 3, 32, 32)


@pytest.fixture
def service_with_an_official_model(dropped_weights, monkeypatch):
    monkeypatch.setattr(service_module, "OPTIMIZE_FROM_RESOLUTION", 0)  # the test model is small
    return ganedit.EditService(device="cpu")


def test_the_service_serves_eager_while_the_fast_path_warms_then_switches(service_with_an_official_model,
                                                                           uncompiled, monkeypatch):
    gate = threading.Event()
    compile_ = fast._compile
    monkeypatch.setattr(fast, "_compile", lambda G: gate.wait() and compile_(G))
    service = service_with_an_official_model
    G, catalog = service.model("stylegan2-cats")  # the catalog is built meanwhile, eagerly
    request = ganedit.EditRequest.strict(service.catalog, "stylegan2-cats", 1, 2, "cluster 0", epsilon=2.0)
    while_warming = service.edit(request)
    assert not G._fast.is_warm(1) and uncompiled == []
    gate.set()
    G._fast.wait()
    assert G._fast.is_warm(1) and G._fast.is_warm(1, return_activations=True)
    served = len(uncompiled)
    switched = service.edit(request)
    assert len(uncompiled) == served + 1
    assert np.abs(switched.result.astype(int) - while_warming.result).max() <= 1


def test_the_service_leaves_models_eager_when_turned_off(service_with_an_official_model, monkeypatch):
    monkeypatch.setenv("GANEDIT_OPTIMIZE", "off")
    G, _ = service_with_an_official_model.model("stylegan2-cats")
    assert G._fast is None


def test_a_process_that_exits_while_the_fast_path_compiles_exits_cleanly(tmp_path):
    """Interpreter teardown under a running compile aborted the process (SIGABRT, 'terminate called without an
    active exception') in 3 of 7 tries at 128 px, skipping every clean-up; now the worker stops first."""
    script = (
        "import sys, time\n"
        "from test_optimize import tiny\n"
        "from ganedit.networks import fast\n"
        "G = tiny('stylegan2', resolution=64).optimize(background=True)\n"
        "while not fast._COMPILING.locked():\n"
        "    time.sleep(0.05)\n"
        "time.sleep(float(sys.argv[1]))\n"
        "print('exiting while compiling:', fast._COMPILING.locked(), flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]), "OMP_NUM_THREADS": "1",
           "GANEDIT_CACHE": str(tmp_path / "cache"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    for delay in ("0.5", "3"):
        run = subprocess.run([sys.executable, "-c", script, delay], capture_output=True, text=True, env=env,
                             timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        assert "exiting while compiling: True" in run.stdout
        assert "terminate called" not in run.stderr and "no fast synthesis" not in run.stderr


def test_an_optimized_catalog_build_uses_one_graph_and_gives_the_eager_catalog(winograd_everywhere):
    G = tiny("stylegan2", resolution=16)
    eager = ganedit.build_catalog(G, k=3, n_images=5, batch_size=2)  # batches of 2, 2, 1
    G.optimize(batch_sizes=(2,), return_activations=(True,))
    assert G.optimized and G._fast.is_warm(2, return_activations=True)
    fast_catalog = ganedit.build_catalog(G, k=3, n_images=5, batch_size=2)
    assert G._fast.warm == {(2, "const", True)}  # the short last batch was padded, not compiled for
    torch.testing.assert_close(fast_catalog.centroids, eager.centroids, rtol=1e-3, atol=1e-4)
    for name, m in eager.contributions.items():
        torch.testing.assert_close(fast_catalog.contributions[name], m, rtol=1e-3, atol=1e-4)
