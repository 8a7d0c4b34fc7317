"""Loading NVIDIA's official files and our safetensors: every parameter in place, conversion bit for bit, every
refusal."""

import os
import sys

import numpy as np
import pytest
import torch
from command_line import run_cli
from official_files import write_stylegan2_pickle

from nvidia_graphs import (  # noqa: F401  fam is a fixture
    expected_style_layers, fam, tiny_file, torch_layout, used_variables,
)

from ganedit import ModelFileError, load_generator, save_generator, seed_to_z


# ---------------------------------------------------------------------------------------------------------
# Loading official files.

def test_loaded_architecture(fam):
    G, v = fam.G, fam.vars
    assert G.kind == fam.kind
    assert G.resolution == fam.resolution
    assert G.z_dim == fam.kw["latent_size"] == v["mapping/Dense0/weight"].shape[0]
    assert G.w_dim == fam.kw["dlatent_size"] == v["dlatent_avg"].shape[0]
    assert G.num_ws == 2 * int(np.log2(fam.resolution)) - 2
    got = [(s.name, s.resolution, s.channels, s.activation) for s in G.style_layers]
    assert got == expected_style_layers(fam.kind, fam.resolution, v)
    # The widths really vary with resolution in these files, so a wrong channel rule would show.
    assert len({s.channels for s in G.style_layers}) >= 3
    assert G.name == fam.path.stem and G.info is None
    assert not G.training and not any(p.requires_grad for p in G.parameters())


def test_every_parameter_comes_from_the_file_in_torch_layout(fam):
    state = fam.G.state_dict()
    matched = {}
    for name, value in used_variables(fam.vars).items():
        expected = torch_layout(name, value)
        hits = [k for k, t in state.items() if t.shape == expected.shape and torch.equal(t, expected)]
        assert len(hits) == 1, f"{name}: found in {hits}"
        matched[hits[0]] = name
    assert sorted(matched) == sorted(state), f"not from the file: {sorted(set(state) - set(matched))}"


def test_spot_checks_of_the_layout(fam):
    sd, v = fam.G.state_dict(), fam.vars
    t = lambda a: torch.from_numpy(np.asarray(a).copy())
    assert torch.equal(sd["w_avg"], t(v["dlatent_avg"]))
    assert torch.equal(sd["mapping_network.layers.0.weight"], t(v["mapping/Dense0/weight"].T))
    assert torch.equal(sd["mapping_network.layers.7.bias"], t(v["mapping/Dense7/bias"]))
    if fam.kind == "stylegan":
        w = v["synthesis/128x128/Conv0_up/weight"]
        assert w.shape == (3, 3, 8, 4)
        assert torch.equal(sd["layers.128x128_Conv0_up.weight"], t(w.transpose(3, 2, 0, 1)))
        assert torch.equal(sd["layers.16x16_Conv0_up.style.weight"], t(v["synthesis/16x16/Conv0_up/StyleMod/weight"].T))
        assert torch.equal(sd["layers.32x32_Conv1.noise"], t(v["synthesis/noise7"]))
        assert torch.equal(sd["layers.4x4_Const.const"], t(v["synthesis/4x4/Const/const"]))
        assert torch.equal(sd["layers.64x64_Conv1.noise_weight"], t(v["synthesis/64x64/Conv1/Noise/weight"]))
        assert torch.equal(sd["to_rgb_weight"], t(v["synthesis/ToRGB_lod0/weight"].transpose(3, 2, 0, 1)))
    else:
        w = v["synthesis/32x32/Conv0_up/weight"]
        assert w.shape == (3, 3, 32, 16)
        assert torch.equal(sd["layers.32x32_Conv0_up.weight"], t(w.transpose(3, 2, 0, 1)))
        assert torch.equal(sd["layers.4x4_ToRGB.affine.weight"], t(v["synthesis/4x4/ToRGB/mod_weight"].T))
        assert torch.equal(sd["layers.16x16_Conv1.noise"], t(v["synthesis/noise4"]))
        assert torch.equal(sd["layers.32x32_Conv0_up.noise"], t(v["synthesis/noise5"]))
        assert torch.equal(sd["layers.8x8_Conv1.noise_strength"], t(v["synthesis/8x8/Conv1/noise_strength"]))
        assert torch.equal(sd["const"], t(v["synthesis/4x4/Const/const"]))


@pytest.mark.parametrize("protocol", [2, 3, 4])
@pytest.mark.parametrize("legacy_numpy", [True, False])
def test_pickle_protocols_and_numpy_module_names(tmp_path, protocol, legacy_numpy):
    path = tmp_path / "g.pkl"
    v = write_stylegan2_pickle(path, resolution=16, seed=5, protocol=protocol, legacy_numpy=legacy_numpy)
    data = path.read_bytes()
    assert (b"numpy.core.multiarray" in data) == legacy_numpy
    assert b"dnnlib.tflib.network" in data and "dnnlib" not in sys.modules
    G = load_generator(path)
    assert torch.equal(G.w_avg, torch.from_numpy(v["dlatent_avg"]))
    reference = write_stylegan2_pickle(tmp_path / "ref.pkl", resolution=16, seed=5)
    assert G.fingerprint == load_generator(tmp_path / "ref.pkl").fingerprint
    assert reference.keys() == v.keys()



# ---------------------------------------------------------------------------------------------------------
# Refusals.

class _OpensFile:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class _RunsShell:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("payload", [_OpensFile, _RunsShell])
@pytest.mark.parametrize("where", ["inside a network", "whole file"])
def test_refuses_pickles_that_run_code(tmp_path, payload, where):
    created = tmp_path / "created-by-pickle"
    path = tmp_path / "evil.pkl"
    if where == "inside a network":
        write_stylegan2_pickle(path, resolution=16, extra={"synthesis/4x4/Conv/evil": payload(created)})
    else:
        import pickle

        path.write_bytes(pickle.dumps(payload(created), protocol=4))
    func = payload(created).__reduce__()[0]
    with pytest.raises(ModelFileError, match="refused") as err:
        load_generator(path)
    assert f"{func.__module__}.{func.__name__}" in str(err.value)  # io.open / posix.system
    assert not created.exists()


@pytest.mark.parametrize("family, name", [("stylegan", "synthesis/16x16/Conv1/weight"),
                                          ("stylegan", "synthesis/noise3"),
                                          ("stylegan2", "mapping/Dense5/bias"),
                                          ("stylegan2", "synthesis/8x8/Conv0_up/noise_strength"),
                                          ("stylegan2", "dlatent_avg")])
def test_refuses_missing_variable(tmp_path, family, name):
    with pytest.raises(ModelFileError, match="missing") as err:
        load_generator(tiny_file(tmp_path, family, drop=[name]))
    assert name in str(err.value)


@pytest.mark.parametrize("family, name", [("stylegan", "synthesis/16x16/Conv2/weight"),
                                          ("stylegan2", "synthesis/noise99"),
                                          ("stylegan2", "mapping/Dense8/weight")])
def test_refuses_unexpected_variable(tmp_path, family, name):
    path = tiny_file(tmp_path, family, extra={name: np.ones((3, 3), np.float32)})
    with pytest.raises(ModelFileError, match="unexpected") as err:
        load_generator(path)
    assert name in str(err.value)


@pytest.mark.parametrize("family, name, shape", [("stylegan", "synthesis/8x8/Conv1/weight", (3, 3, 32, 31)),
                                                 ("stylegan", "synthesis/4x4/Const/const", (1, 32, 4)),
                                                 ("stylegan2", "mapping/Dense3/weight", (16, 17)),
                                                 ("stylegan2", "synthesis/8x8/Conv0_up/noise_strength", (1,)),
                                                 ("stylegan2", "dlatent_avg", (15,))])
def test_refuses_shape_mismatch(tmp_path, family, name, shape):
    path = tiny_file(tmp_path, family, replace={name: np.ones(shape, np.float32)})
    with pytest.raises(ModelFileError, match="shape") as err:
        load_generator(path)
    assert name in str(err.value)


def test_refuses_non_float_variable(tmp_path):
    path = tiny_file(tmp_path, "stylegan2", replace={"synthesis/8x8/Conv1/bias": np.ones(32, np.int64)})
    with pytest.raises(ModelFileError, match="synthesis/8x8/Conv1/bias"):
        load_generator(path)


@pytest.mark.parametrize("family, kwargs, word", [("stylegan", {"label_size": 1}, "label_size"),
                                                  ("stylegan2", {"label_size": 10}, "label_size"),
                                                  ("stylegan2", {"architecture": "resnet"}, "architecture"),
                                                  ("stylegan2", {"architecture": "orig"}, "architecture"),
                                                  ("stylegan", {"num_channels": 1}, "num_channels")])
def test_refuses_architectures_it_does_not_implement(tmp_path, family, kwargs, word):
    with pytest.raises(ModelFileError, match=word):
        load_generator(tiny_file(tmp_path, family, **kwargs))


@pytest.mark.parametrize("family", ["stylegan", "stylegan2"])
def test_refuses_truncated_pickle(tmp_path, family):
    path = tiny_file(tmp_path, family)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 1, 10, 0):
        path.write_bytes(data[:cut])
        with pytest.raises(ModelFileError):
            load_generator(path)


def test_refuses_garbage(tmp_path):
    import pickle

    rng = np.random.RandomState(0)
    path = tmp_path / "garbage.pkl"
    samples = [rng.bytes(int(rng.randint(1, 4000))) for _ in range(150)]
    samples += [b"\x80\x04" + rng.bytes(int(rng.randint(1, 4000))) for _ in range(150)]
    samples += [b"\x80\x02" + rng.bytes(int(rng.randint(1, 200))) for _ in range(100)]
    samples += [b"not a pickle at all\n", pickle.dumps({"G": np.zeros(3)}), pickle.dumps((1, 2, 3)), pickle.dumps(None)]
    for data in samples:
        path.write_bytes(data)
        with pytest.raises(ModelFileError):
            load_generator(path)


def test_refuses_unknown_file_types_and_sources(tmp_path):
    other = tmp_path / "weights.pt"
    other.write_bytes(b"whatever")
    with pytest.raises(ModelFileError, match="unknown file type"):
        load_generator(other)
    with pytest.raises(ValueError, match="neither a registered model"):
        load_generator(tmp_path / "missing.pkl")


# ---------------------------------------------------------------------------------------------------------
# Our safetensors format.

SEEDS = [0, 1, 42, 2**32 - 1]


def _pictures(G):
    return [G(torch.from_numpy(seed_to_z(s, G.z_dim)), truncation_psi=0.7, noise_mode="const") for s in SEEDS]


def _assert_same_generator(G, H):
    assert H.kind == G.kind and H.resolution == G.resolution and H.style_layers == G.style_layers
    assert H.fingerprint == G.fingerprint
    for a, b in zip(_pictures(G), _pictures(H)):
        assert torch.equal(a, b)


def test_converted_file_gives_identical_pictures(fam, tmp_path):
    out = tmp_path / "converted.safetensors"
    save_generator(fam.G, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["converted.safetensors"]  # no temp file left behind
    H = load_generator(out)
    _assert_same_generator(fam.G, H)
    assert H.name == "converted"


def test_fingerprint_depends_on_the_weights(tmp_path):
    a = load_generator(tiny_file(tmp_path, "stylegan2"))
    path_b = tmp_path / "b.pkl"
    write_stylegan2_pickle(path_b, resolution=16, seed=1)
    assert a.fingerprint != load_generator(path_b).fingerprint
    path_c = tmp_path / "c.pkl"
    write_stylegan2_pickle(path_c, resolution=16, seed=0)
    assert a.fingerprint == load_generator(path_c).fingerprint


def test_cli_convert(fam, tmp_path):
    out = tmp_path / "cli.safetensors"
    result = run_cli("convert", fam.path, out)
    assert result.returncode == 0, result.stderr
    _assert_same_generator(fam.G, load_generator(out))


@pytest.fixture
def converted(tmp_path):
    path = tmp_path / "model.safetensors"
    save_generator(load_generator(tiny_file(tmp_path, "stylegan2")), path)
    return path


def test_refuses_truncated_safetensors(converted):
    data = converted.read_bytes()
    for cut in (len(data) // 2, len(data) - 4, 100, 7, 0):
        converted.write_bytes(data[:cut])
        with pytest.raises(ModelFileError):
            load_generator(converted)


def test_refuses_garbage_safetensors(converted):
    rng = np.random.RandomState(1)
    size = converted.stat().st_size
    for i in range(20):
        converted.write_bytes(rng.bytes(size if i % 2 else 64))
        with pytest.raises(ModelFileError):
            load_generator(converted)


def test_refuses_safetensors_that_are_not_a_generator(converted, tmp_path):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(converted))
    plain = tmp_path / "plain.safetensors"
    save_file(tensors, str(plain))  # the tensors, but without our architecture header
    with pytest.raises(ModelFileError, match="not a ganedit"):
        load_generator(plain)
    header = {"ganedit": __import__("json").dumps({"format_version": 1, "kind": "stylegan2",
                                                   "config": load_generator(converted).config})}
    partial = tmp_path / "partial.safetensors"
    save_file({k: v for k, v in tensors.items() if k != "layers.8x8_Conv1.weight"}, str(partial), metadata=header)
    with pytest.raises(ModelFileError, match="layers.8x8_Conv1.weight"):
        load_generator(partial)
    wrong = tmp_path / "wrong.safetensors"
    save_file({**tensors, "w_avg": torch.zeros(3)}, str(wrong), metadata=header)
    with pytest.raises(ModelFileError, match="w_avg"):
        load_generator(wrong)


