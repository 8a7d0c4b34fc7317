"""The model registry, never touching the network."""

from pathlib import Path

import numpy as np
import pytest
import torch
from official_files import write_stylegan2_pickle, write_stylegan_pickle

import ganedit
from ganedit import MODELS, WeightsUnavailableError, load_generator, save_generator

REPO = Path(__file__).resolve().parent.parent
SQRT2 = np.sqrt(2.0)
from nvidia_graphs import tiny_file


# ---------------------------------------------------------------------------------------------------------
# The registry (never touching the network).

OFFICIAL = {"stylegan-ffhq", "stylegan-bedrooms", "stylegan2-cats", "stylegan2-cars"}


def test_registry_entries():
    assert OFFICIAL <= set(MODELS)
    for name, info in MODELS.items():
        assert info.name == name
        assert info.kind in ("stylegan", "stylegan2"), name
        assert info.resolution >= 4 and info.resolution & (info.resolution - 1) == 0, name
        assert isinstance(info.license, str) and len(info.license) > 10, name
        if name in OFFICIAL:
            assert info.official_file and info.official_file.endswith(".pkl"), name
            assert info.url and info.url.startswith("https://"), name
    assert {n for n, i in MODELS.items() if i.official_file} == OFFICIAL


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("GANEDIT_OFFLINE", "1")
    monkeypatch.setenv("GANEDIT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("GANEDIT_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("GANEDIT_HUB_REPO", raising=False)
    return monkeypatch


def test_offline_without_weights_says_where_to_put_them(offline):
    with pytest.raises(WeightsUnavailableError) as err:
        load_generator("stylegan-ffhq")
    message = str(err.value)
    assert "karras2019stylegan-ffhq-1024x1024.pkl" in message
    assert "GANEDIT_WEIGHTS_DIR" in message
    assert ganedit.availability("stylegan-ffhq")[0] == "unavailable"


@pytest.mark.parametrize("name", ["stylegan2-cats", "stylegan-bedrooms"])
def test_weights_dir_holding_the_official_file(offline, tmp_path, name):
    folder = tmp_path / "weights"
    folder.mkdir()
    info = MODELS[name]
    writer = write_stylegan_pickle if info.kind == "stylegan" else write_stylegan2_pickle
    v = writer(folder / info.official_file, resolution=32, seed=3)
    offline.setenv("GANEDIT_WEIGHTS_DIR", str(folder))
    assert ganedit.availability(name)[0] == "ready"
    G = load_generator(name)
    assert G.kind == info.kind and G.name == name and G.info is info
    assert torch.equal(G.w_avg, torch.from_numpy(v["dlatent_avg"]))


def test_weights_dir_holding_a_converted_file(offline, tmp_path):
    folder = tmp_path / "weights"
    source = tiny_file(tmp_path, "stylegan2")
    G = load_generator(source)
    save_generator(G, folder / "stylegan2-cars.safetensors")
    offline.setenv("GANEDIT_WEIGHTS_DIR", str(folder))
    H = load_generator("stylegan2-cars")
    assert H.name == "stylegan2-cars" and H.fingerprint == G.fingerprint
