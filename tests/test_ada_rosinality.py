"""stylegan2-ada-pytorch / stylegan3 pickles and rosinality/stylegan2-pytorch checkpoints (issue 11).

The files are written by torch_files.py from the weights of a tiny NVIDIA TensorFlow file, converted by each
repository's own rules (NVIDIA's legacy.py, rosinality's convert_weight.py): each must give the TensorFlow file's
pictures. (Against the repositories' own code, at full size, see the report of issue 11: within 1.6e-6.)
"""

import io
import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from command_line import run_cli
from official_files import write_stylegan2_pickle
from torch_files import EVIL_SOURCE, write_ada_pickle, write_rosinality_checkpoint

from ganedit import MODELS, ModelFileError, load_generator, save_generator, seed_to_z
from ganedit.loading import detect_format, registry
from ganedit.loading.schema import checked_entries

REPO = Path(__file__).resolve().parent.parent
RESOLUTION = 32
SEEDS = [0, 1, 7]
ADA = "stylegan2-ada-pytorch / stylegan3 pickle"


def _pictures(G, psi=0.7):
    z = torch.from_numpy(np.concatenate([seed_to_z(seed, G.z_dim) for seed in SEEDS]))
    with torch.no_grad():
        return G(z, truncation_psi=psi, noise_mode="const")


def _assert_same_pictures(G, H, psi=0.7):
    assert (H.kind, H.resolution, H.style_layers) == (G.kind, G.resolution, G.style_layers)
    a, b = _pictures(G, psi), _pictures(H, psi)
    assert (a - b).norm() / a.norm() < 1e-5


@pytest.fixture(scope="module")
def tf(tmp_path_factory):
    """A tiny NVIDIA TensorFlow file: its variables and its generator."""
    path = tmp_path_factory.mktemp("tf") / "tf.pkl"
    variables = write_stylegan2_pickle(path, resolution=RESOLUTION, seed=5)
    return variables, load_generator(path)


def _ada(tmp_path, tf, name="ada.pkl", **kwargs):
    path = tmp_path / name
    write_ada_pickle(path, tf[0], RESOLUTION, **kwargs)
    return path


def _rosinality(tmp_path, tf, name="rosinality.pt", **kwargs):
    path = tmp_path / name
    write_rosinality_checkpoint(path, tf[0], RESOLUTION, **kwargs)
    return path


# ---------------------------------------------------------------------------------------------------------
# Same pictures.

@pytest.mark.parametrize("repository", ["ada", "stylegan3"])
@pytest.mark.parametrize("protocol", [3, 4])
def test_ada_pickle_gives_the_pictures_of_the_same_weights(tmp_path, tf, repository, protocol):
    G = load_generator(_ada(tmp_path, tf, repository=repository, protocol=protocol))
    _assert_same_pictures(tf[1], G)
    assert torch.equal(G.w_avg, tf[1].w_avg) and G.config["conv_clamp"] is None


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "before-1.6"])
def test_converted_rosinality_checkpoint_gives_the_pictures_of_the_same_weights(tmp_path, tf, zipped):
    G = load_generator(_rosinality(tmp_path, tf, zipped=zipped, trained=False))
    _assert_same_pictures(tf[1], G)
    assert torch.equal(G.w_avg, tf[1].w_avg)  # convert_weight.py's latent_avg is NVIDIA's dlatent_avg


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "before-1.6"])
def test_trained_rosinality_checkpoint_truncates_towards_the_mean_w_of_4096_fixed_z(tmp_path, tf, zipped):
    G = load_generator(_rosinality(tmp_path, tf, zipped=zipped, trained=True))
    _assert_same_pictures(tf[1], G, psi=1.0)
    z = torch.from_numpy(np.random.RandomState(0).randn(4096, G.z_dim).astype(np.float32))
    with torch.no_grad():
        assert torch.allclose(G.w_avg, tf[1].mapping_network(z).mean(0), atol=1e-5)
    assert torch.equal(load_generator(_rosinality(tmp_path, tf, "again.pt", zipped=zipped)).w_avg, G.w_avg)


def test_conv_clamp_is_honoured(tmp_path, tf):
    """Every layer's output within +-conv_clamp: the picture, a sum of up-sampled ToRGB outputs (a filter with
    positive taps summing to 1 per output pixel), within +-(ToRGB layers x conv_clamp)."""
    unclamped = _pictures(tf[1])
    G = load_generator(_ada(tmp_path, tf, conv_clamp=1e5))
    assert G.config["conv_clamp"] == 1e5 and torch.allclose(_pictures(G), unclamped, atol=1e-5)
    clamp = 0.05
    G = load_generator(_ada(tmp_path, tf, "clamped.pkl", conv_clamp=clamp))
    pictures, to_rgb = _pictures(G), sum(1 for spec in G.style_layers if spec.name.endswith("ToRGB"))
    assert pictures.abs().max() <= to_rgb * clamp + 1e-6 < unclamped.abs().max()
    save_generator(G, tmp_path / "clamped.safetensors")
    H = load_generator(tmp_path / "clamped.safetensors")
    assert H.config["conv_clamp"] == clamp and torch.equal(_pictures(H), pictures)


def test_stylegan3s_default_conv_clamp_is_read_from_the_layers(tmp_path, tf):
    """stylegan3's SynthesisBlock defaults to conv_clamp=256 (stylegan2-ada-pytorch's to None): init_kwargs without
    it say nothing, the layers say what forward() uses."""
    def drop(G):
        del G.state["_init_kwargs"]["conv_clamp"]

    G = load_generator(_ada(tmp_path, tf, repository="stylegan3", conv_clamp=256, edit=drop))
    assert G.config["conv_clamp"] == 256


def test_cli_convert_accepts_every_format(tmp_path, tf):
    for source in (_ada(tmp_path, tf, conv_clamp=256), _rosinality(tmp_path, tf, trained=False)):
        out = tmp_path / f"{source.stem}.safetensors"
        result = run_cli("convert", source, out)
        assert result.returncode == 0, result.stderr
        G, H = load_generator(source), load_generator(out)
        assert H.fingerprint == G.fingerprint and H.config == G.config and torch.equal(_pictures(G), _pictures(H))


def test_the_format_is_told_by_the_content_not_the_name(tmp_path, tf):
    files = {"ada": _ada(tmp_path, tf), "torch-zip": _rosinality(tmp_path, tf),
             "torch-legacy": _rosinality(tmp_path, tf, "old.pt", zipped=False), "tensorflow": tmp_path / "tf.pkl"}
    write_stylegan2_pickle(files["tensorflow"], resolution=RESOLUTION, seed=5)
    save_generator(tf[1], tmp_path / "ours.safetensors")
    files["safetensors"] = tmp_path / "ours.safetensors"
    for kind, path in files.items():
        misnamed = shutil.copy(path, tmp_path / f"{kind}.misnamed.{'pkl' if kind == 'safetensors' else 'safetensors'}")
        assert detect_format(misnamed) == kind
        _assert_same_pictures(tf[1], load_generator(misnamed), psi=1.0)


# ---------------------------------------------------------------------------------------------------------
# Refusals: a ModelFileError naming the file, the format found and what was wrong.

def _refused(path, *words):
    with pytest.raises(ModelFileError) as err:
        load_generator(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and all(word in message for word in words), message
    return message


def _add_module(name, class_name):
    def edit(G):
        synthesis = G.state["_modules"]["synthesis"]
        synthesis.state["_modules"][name] = type(synthesis)(class_name)
    return edit


def _remove(module_path, kind, name):
    def edit(G):
        module = G
        for part in module_path.split("."):
            module = module.state["_modules"][part]
        del module.state[kind][name]
    return edit


def _replace(module_path, kind, name, value):
    def edit(G):
        module = G
        for part in module_path.split("."):
            module = module.state["_modules"][part]
        module.state[kind][name] = value
    return edit


@pytest.mark.parametrize("kwargs, words", [
    (dict(c_dim=10), ["conditional generator (c_dim=10)"]),
    (dict(edit=_add_module("input", "SynthesisInput")),
     ["StyleGAN3 (alias-free) generator: StyleGAN3 is not supported yet"]),
    (dict(architecture="resnet"), ["architecture='resnet' is not supported"]),
    (dict(architecture="orig"), ["architecture='orig' is not supported"]),
    (dict(img_channels=1), ["img_channels=1 is not supported"]),
    (dict(magnitude_ema_beta=0.99), ["settings ganedit doesn't know ['magnitude_ema_beta']"]),
    (dict(resample_filter=[1, 2, 1]), ["resample_filter=[1, 2, 1] is not supported", "4-tap"]),
    (dict(edit=_remove("synthesis.b16.conv1", "_buffers", "noise_const")),
     ["missing ['synthesis.b16.conv1.noise_const']"]),
    (dict(edit=_replace("synthesis.b16.conv1", "_parameters", "extra", torch.nn.Parameter(torch.ones(2)))),
     ["unexpected ['synthesis.b16.conv1.extra']"]),
    (dict(edit=_replace("mapping.fc3", "_parameters", "weight", torch.nn.Parameter(torch.ones(16, 17)))),
     ["mapping.fc3.weight is torch.float32 [16, 17]", "needs a float tensor [16, 16]"]),
    (dict(edit=_replace("synthesis.b8", "_buffers", "resample_filter", torch.ones(4, 4))),
     ["synthesis.b8.resample_filter is not the resample filter"]),
], ids=["conditional", "stylegan3", "resnet", "orig", "grey", "unknown-setting", "3-tap-filter", "missing",
        "unexpected", "shape", "filter-buffer"])
def test_refuses_ada_generators_it_does_not_implement(tmp_path, tf, kwargs, words):
    _refused(_ada(tmp_path, tf, **kwargs), ADA, *words)


def _rosinality_edit(change):
    return dict(edit=change, trained=False)


@pytest.mark.parametrize("kwargs, words", [
    (_rosinality_edit(lambda s: s.pop("noises.noise_3")), ["missing ['noises.noise_3']"]),
    (_rosinality_edit(lambda s: s.update({"convs.1.dwt.weight": torch.ones(2)})),
     ["unexpected ['convs.1.dwt.weight']"]),
    (_rosinality_edit(lambda s: s.update({"convs.2.conv.blur.kernel": torch.ones(4, 4)})),
     ["convs.2.conv.blur.kernel is not a 4-tap blur kernel"]),
    (_rosinality_edit(lambda s: s.update({"conv1.activate.bias": torch.ones(3)})),
     ["conv1.activate.bias is torch.float32 [3]", "inferred from g_ema's shapes"]),
    (_rosinality_edit(lambda s: s.update({"style.2.bias": torch.ones(16, dtype=torch.int64)})),
     ["style.2.bias is torch.int64 [16]"]),
], ids=["missing", "unexpected", "blur", "shape", "integer"])
def test_refuses_rosinality_checkpoints_that_do_not_fit(tmp_path, tf, kwargs, words):
    _refused(_rosinality(tmp_path, tf, **kwargs), "rosinality/stylegan2-pytorch checkpoint", *words)


def test_refuses_torch_save_files_without_g_ema(tmp_path):
    path = tmp_path / "state.pt"
    torch.save({"model": torch.nn.Linear(2, 2).state_dict()}, path)
    _refused(path, "torch.save zip archive", "a dict with 'g_ema', found a dict of 'model'")


def test_truncated_files_name_their_format(tmp_path, tf):
    for path, what in ((_ada(tmp_path, tf), ADA), (_rosinality(tmp_path, tf), "torch.save zip archive"),
                       (_rosinality(tmp_path, tf, "old.pt", zipped=False), "torch.save file of before PyTorch 1.6")):
        data = path.read_bytes()
        for cut in (len(data) // 2, len(data) - 3):
            path.write_bytes(data[:cut])
            _refused(path, what)


# ---------------------------------------------------------------------------------------------------------
# Hostile files: nothing runs.

class _RunsShell:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class _StorageRunsShell(_RunsShell):
    """What ``torch.storage._load_from_bytes`` gets: a file of torch.save's older format, whose object is a payload."""

    def __reduce__(self):
        header = b"".join(pickle.dumps(part, protocol=2) for part in (
            0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}))
        payload = pickle.dumps(_RunsShell(self.path), protocol=2) + pickle.dumps([], protocol=2)
        return (torch.storage._load_from_bytes, (header + payload,))


def test_the_source_an_ada_pickle_carries_never_runs(tmp_path, tf):
    ran, marker = tmp_path / "proof", tmp_path / "ran"
    exec(EVIL_SOURCE.format(marker=str(ran)), {})  # what NVIDIA's loader would do with module_src
    assert ran.exists()
    G = load_generator(_ada(tmp_path, tf, module_src=EVIL_SOURCE.format(marker=str(marker))))
    assert not marker.exists()
    _assert_same_pictures(tf[1], G)


@pytest.mark.parametrize("payload", [_RunsShell, _StorageRunsShell], ids=["reduce", "inside-a-storage"])
def test_a_payload_in_an_ada_pickle_runs_nothing(tmp_path, tf, payload):
    marker = tmp_path / "ran"
    edit = _replace("synthesis.b8.conv1", "_buffers", "noise_const", payload(marker))
    _refused(_ada(tmp_path, tf, edit=edit), ADA, "refused to load", "posix.system")
    assert not marker.exists()


def test_a_payload_in_a_torch_save_file_runs_nothing(tmp_path, tf):
    marker = tmp_path / "ran"
    path = _rosinality(tmp_path, tf, edit=lambda s: s.update({"style.1.bias": _RunsShell(marker)}), trained=False)
    _refused(path, "torch.save zip archive", "refused to load", "posix.system")
    assert not marker.exists()


def test_a_torch_save_archive_nested_a_million_deep_is_refused(tmp_path):
    """torch.load(weights_only=True) overflows the C stack on this file (SIGSEGV); ganedit never calls torch.load."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02})" + b"\x85" * 10**6 + b"K\x00s.")
    path = tmp_path / "deep.pt"
    path.write_bytes(buffer.getvalue())
    _refused(path, "torch.save zip archive", "nested more than")


# ('storage', torch.FloatStorage, '0', 'cpu', 2**40), a persistent id (BINPERSID), and a tensor of it:
# _rebuild_tensor_v2(storage, 0, (1,), (1,), False, OrderedDict())
_CLAIM = (b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu\x8a\x06"
          + (2**40).to_bytes(6, "little") + b"tQ")


def _tensor_of(storage):
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage
            + b"K\x00K\x01\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR")


def _claiming_ada_pickle():
    """An ada pickle (as its first global says) whose storage, torch.save bytes of the older format, declares 2**40
    floats and holds one."""
    header = b"".join(pickle.dumps(p, protocol=2) for p in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    keys = pickle.dumps(["0"], protocol=2)
    inner = header + b"\x80\x02" + _CLAIM + b"." + keys + (1).to_bytes(8, "little") + bytes(4)
    storage = b"ctorch.storage\n_load_from_bytes\n(B" + len(inner).to_bytes(4, "little") + inner + b"tR"
    return b"\x80\x03ctorch_utils.persistence\n_reconstruct_persistent_obj\n0" + _tensor_of(storage) + b"."


def _claiming_archive():
    """A torch.save archive whose g_ema tensor's storage declares 2**40 floats; its member holds one."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}X\x05\x00\x00\x00g_ema}X\x01\x00\x00\x00w" + _tensor_of(_CLAIM)
                         + b"ss.")
        archive.writestr("archive/data/0", bytes(4))
    return buffer.getvalue()


@pytest.mark.parametrize("make, words", [
    (_claiming_ada_pickle, [ADA, "storage '0' holds 1 elements, declared 1099511627776"]),
    (_claiming_archive, ["torch.save zip archive", "archive/data/0 holds 4 bytes", "1099511627776 elements"]),
], ids=["ada", "torch-zip"])
def test_a_storage_claiming_more_than_the_file_holds_is_refused_before_it_is_read(tmp_path, make, words):
    path = tmp_path / "claims"
    path.write_bytes(make())
    _refused(path, *words)


# ---------------------------------------------------------------------------------------------------------
# Models added by configuration (GANEDIT_MODELS).

AFHQ_LIKE = {"title": "Tiny ada cats", "kind": "stylegan2", "resolution": RESOLUTION, "crop": None,
             "truncation_psi": 0.6, "license": "NVIDIA Source Code License-NC (non-commercial), test weights",
             "file": "weights/tiny-ada.pkl", "faces": False}


def _without(entry, field):
    return {key: value for key, value in entry.items() if key != field}


def _models_file(tmp_path, monkeypatch, entries):
    path = tmp_path / "models.json"
    path.write_text(json.dumps(entries))
    monkeypatch.setenv("GANEDIT_MODELS", str(path))
    return path


def test_models_added_by_configuration_load_by_name(tmp_path, tf, monkeypatch):
    (tmp_path / "weights").mkdir()
    _ada(tmp_path / "weights", tf, "tiny-ada.pkl")
    _models_file(tmp_path, monkeypatch, {"tiny-ada": AFHQ_LIKE, "web-cat": {
        **_without(AFHQ_LIKE, "file"), "url": "https://example.org/pretrained/afhqcat.pkl", "download_mb": 360}})
    models = registry._read_registry()
    assert list(models)[:len(MODELS)] == list(MODELS)  # the built-in models first, as they were
    info = models["tiny-ada"]
    assert info.bundled_file == str(tmp_path / "weights" / "tiny-ada.pkl") and info.truncation_psi == 0.6
    assert models["web-cat"].official_file == "afhqcat.pkl" and models["web-cat"].url.endswith("/afhqcat.pkl")
    monkeypatch.setitem(MODELS, "tiny-ada", info)
    G = load_generator("tiny-ada")
    assert G.name == "tiny-ada" and G.info is info
    _assert_same_pictures(tf[1], G)


def test_the_cli_lists_models_added_by_configuration(tmp_path, tf, monkeypatch):
    (tmp_path / "weights").mkdir()
    _ada(tmp_path / "weights", tf, "tiny-ada.pkl")
    path = _models_file(tmp_path, monkeypatch, {"tiny-ada": AFHQ_LIKE})
    out = tmp_path / "tiny.safetensors"
    result = run_cli("convert", "tiny-ada", out, env={"GANEDIT_MODELS": str(path)})
    assert result.returncode == 0, result.stderr
    _assert_same_pictures(tf[1], load_generator(out))


@pytest.mark.parametrize("entries, words", [
    ({"x": {**AFHQ_LIKE, "kind": "stylegan3"}}, "model 'x': kind must be 'stylegan' or 'stylegan2', not \"stylegan3\""),
    ({"x": {**AFHQ_LIKE, "colour": "red"}}, "model 'x': unknown fields ['colour']"),
    ({"x": _without(AFHQ_LIKE, "license")}, "missing fields ['license']"),
    ({"x": {**AFHQ_LIKE, "crop": [0, 64]}}, "the crop [0, 64] goes beyond the 32 rows"),
    ({"x": {**AFHQ_LIKE, "truncation_psi": "0.7"}}, "truncation_psi must be a number from 0 to 2"),
    ({"x": _without(AFHQ_LIKE, "file")}, "no weights: give a file, a url"),
    ({"Big Cat": AFHQ_LIKE}, "model 'Big Cat': a name is 1 to 64 lowercase letters"),
    ({"cartoon-faces": AFHQ_LIKE}, "cartoon-faces is already a built-in model"),
    (["x"], "expected a JSON object of models by name, found list"),
])
def test_models_file_mistakes_are_named(tmp_path, monkeypatch, entries, words):
    path = _models_file(tmp_path, monkeypatch, entries)
    with pytest.raises(ValueError) as err:
        registry._read_registry()
    assert str(path) in str(err.value) and words in str(err.value), str(err.value)


def test_unreadable_models_file_is_named(tmp_path, monkeypatch):
    path = tmp_path / "models.json"
    path.write_text("{not json")
    monkeypatch.setenv("GANEDIT_MODELS", str(path))
    with pytest.raises(ValueError, match="GANEDIT_MODELS=.*models.json: can't read the models file"):
        registry._read_registry()


def test_the_built_in_registry_is_held_to_the_same_schema():
    import dataclasses

    entries = json.loads(registry.REGISTRY_FILE.read_text())
    fields = dataclasses.fields(registry.ModelInfo)
    assert set(checked_entries(entries, fields, "registry.json")) == set(MODELS)
    entries["stylegan2-cars"]["crop"] = [448, 64]
    with pytest.raises(ValueError, match="registry.json: model 'stylegan2-cars': crop must be null or"):
        checked_entries(entries, fields, "registry.json")
