"""Catalog files: one atomic file per build, labels tied to their build, every malformed form refused with a
ValueError that names the file, kill -9 at any moment, temp files left by killed writers, safe output names, and
the cache folder."""

import json
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

import ganedit
from ganedit import catalog as catalog_module
from ganedit.catalog import HEADER_KEY, Catalog, catalog_file, load_catalog, upgrade_catalog
from ganedit.files import STALE_TEMP_S, safe_name
from ganedit.files import cache_dir

REPO = Path(__file__).resolve().parent.parent
LAYERS = {"4x4/Conv": 8, "8x8/Conv": 6}


def synthetic(seed=0, k=4, labels=None):
    """A catalog of made-up numbers with the right shapes (M >= 0, columns summing to one)."""
    g = torch.Generator().manual_seed(seed)
    return Catalog(
        model="m", fingerprint="f", layer="8x8/Conv", k=k, n_images=10 + seed, seed=seed, truncation_psi=1.0,
        centroids=F.normalize(torch.randn(k, 5, generator=g), dim=1),
        contributions={name: torch.rand(k, c, generator=g).softmax(0) for name, c in LAYERS.items()},
        labels={"eyes": [0, 1]} if labels is None else labels,
        epsilon={"default": 1.0, "min": 0.0, "max": 2.0}, lam={"default": 2.5, "min": 0.0, "max": 10.0},
    )


def same(a, b):
    return (a.build == b.build and a.labels == b.labels and a.metadata() == b.metadata()
            and torch.equal(a.centroids, b.centroids)
            and all(torch.equal(a.contributions[n], b.contributions[n]) for n in LAYERS))


def refused(path, match):
    """The ValueError of loading ``path``, checked to name a file and the way to rebuild."""
    with pytest.raises(ValueError, match=match) as err:
        load_catalog(path)
    assert str(path.parent) in str(err.value) and "python -m ganedit catalog --model" in str(err.value)
    return str(err.value)


def write_labels(stem, build, parts):
    stem.with_name("cat.labels.json").write_text(json.dumps({"catalog": build, "parts": parts}))


@pytest.fixture
def saved(tmp_path):
    catalog = synthetic()
    catalog.save(tmp_path / "cat")
    return catalog, tmp_path / "cat"


def test_one_catalog_file_and_labels_for_its_build(saved, tmp_path):
    catalog, stem = saved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.labels.json", "cat.safetensors"]
    assert json.loads(stem.with_name("cat.labels.json").read_text()) == {"catalog": catalog.build, "parts": {"eyes": [0, 1]}}
    for way in (stem, catalog_file(stem), stem.with_name("cat.labels.json")):
        assert same(load_catalog(way), catalog)
    loaded = load_catalog(stem)
    loaded.rename([3, 2], "mouth")
    loaded.save_labels()
    assert load_catalog(stem).labels == {"eyes": [0, 1], "mouth": [2, 3]}
    stem.with_name("cat.labels.json").unlink()  # the part names saved inside the catalog file remain
    assert load_catalog(stem).labels == {"eyes": [0, 1]}


def test_labels_of_another_build_are_refused(saved, tmp_path):
    catalog, stem = saved
    other = synthetic(seed=1, labels={"hair": [3]})
    other.save(tmp_path / "other")
    shutil.copy(tmp_path / "other.labels.json", tmp_path / "cat.labels.json")
    message = refused(stem, "made for catalog build")
    assert "cat.labels.json" in message and other.build in message and catalog.build in message
    with pytest.raises(ValueError, match="does not hold this catalog"):
        other.save_labels(stem)  # never written for a file that holds another build


def test_a_save_stopped_between_catalog_and_labels_gives_the_new_catalog_whole(saved, monkeypatch):
    _, stem = saved
    new = synthetic(seed=1, labels={"hair": [3]})
    monkeypatch.setattr(Catalog, "save_labels", lambda self, path=None: None)  # stopped after the catalog file
    new.save(stem)
    assert same(load_catalog(stem), new)


@pytest.mark.parametrize("ids", ["12", "3", -1, [-1], [], [4], [1.0], [True], ["1"], [0, 0], None, {"0": 1}])
def test_malformed_cluster_ids_are_refused(saved, ids):
    catalog, stem = saved
    write_labels(stem, catalog.build, {"eyes": ids})
    assert "cat.labels.json" in refused(stem, "cluster ids must be a non-empty list of distinct integers from 0 to 3")
    with pytest.raises(ValueError, match="cluster ids"):
        catalog.rename(ids, "nose")


@pytest.mark.parametrize("text", [
    '{"catalog": "%s", "parts": {"eyes": [0], "nose": [0]}}',  # one cluster in two parts
    '{"catalog": "%s", "parts": {"eyes": [0], "eyes": [1]}}',  # a name twice: JSON would keep the last silently
    '{"catalog": "%s", "parts": [["eyes", [0]]]}',
    '{"eyes": [0, 1]}',  # ganedit 0.1's labels: no build
    '{"catalog": "%s", "parts": {"eyes": [0]}, "extra": 1}',
    '{"catalog": "%s", "parts": {"eyes": [0]',
    "[" * 100_000,
])
def test_malformed_labels_files_are_refused(saved, text):
    catalog, stem = saved
    stem.with_name("cat.labels.json").write_text(text.replace("%s", catalog.build))
    assert "cat.labels.json" in refused(stem, "cat.labels.json is refused")


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "", " ", "cluster 3", "x" * 41, "a\nb", "a.b"])
def test_unsafe_part_names_are_refused_when_named_and_on_load(saved, name):
    catalog, stem = saved
    with pytest.raises(ValueError, match="part name"):
        catalog.rename([2], name)
    write_labels(stem, catalog.build, {name: [2]})
    refused(stem, "part name")


def test_spaces_around_a_name_are_trimmed_when_named_and_refused_on_load(saved):
    catalog, stem = saved
    catalog.rename([2], " nose ")
    assert catalog.labels == {"eyes": [0, 1], "nose": [2]}
    write_labels(stem, catalog.build, {" nose": [2]})
    refused(stem, "part name")


def rewrite(stem, header=None, tensors=None):
    """Write the catalog file again with the header entries and tensors changed (None removes one)."""
    with safe_open(catalog_file(stem), "pt") as f:
        meta = json.loads(f.metadata()[HEADER_KEY])
        data = {name: f.get_tensor(name) for name in f.keys()}
    meta.update(header or {})
    data.update(tensors or {})
    meta, data = ({k: v for k, v in d.items() if v is not None} for d in (meta, data))
    save_file(data, catalog_file(stem), metadata={HEADER_KEY: json.dumps(meta)})


@pytest.mark.parametrize("header, tensors, match", [
    ({"k": 5}, None, r"float32 \[k = 5, channels\], got torch.float32 \[4, 8\]"),
    ({"k": "4"}, None, "'k' must be int, got '4'"),
    ({"k": True}, None, "'k' must be int"),
    ({"k": 0}, None, "k = 0"),
    ({"style_layers": [["4x4/Conv"], "8x8/Conv"]}, None, "style layers"),
    ({"format": 1}, None, "format 2"),
    ({"style_layers": ["4x4/Conv"]}, None, r"unexpected \['M/8x8/Conv'\]"),
    ({"style_layers": ["4x4/Conv", "8x8/Conv", "16x16/Conv"]}, None, r"missing \['M/16x16/Conv'\]"),
    ({"epsilon": {"default": 3.0, "min": 0.0, "max": 2.0}}, None, "epsilon must be"),
    ({"lam": {"default": float("nan"), "min": 0.0, "max": 2.0}}, None, "lam must be"),
    ({"truncation_psi": None}, None, "'truncation_psi' must be float"),
    ({"crop": [5, 2]}, None, "crop must be"),
    ({"labels": {"eyes": "12"}}, None, "cluster ids"),
    ({"build": "0" * 16}, None, "does not match its content"),
    (None, {"centroids": torch.ones(5, 5)}, r"tensor centroids must be .* got torch.float32 \[5, 5\]"),
    (None, {"centroids": torch.ones(4)}, "tensor centroids must be"),
    (None, {"centroids": torch.full((4, 5), float("nan"))}, "tensor centroids must be finite"),
    (None, {"centroids": torch.ones(4, 5, dtype=torch.float64)}, "float32"),
    (None, {"M/4x4/Conv": -torch.ones(4, 8)}, "negative"),
    (None, {"M/4x4/Conv": torch.zeros(4, 8)}, "does not match its content"),  # same shape, other numbers
    (None, {"M/4x4/Conv": None}, r"missing \['M/4x4/Conv'\]"),
    (None, {"stray": torch.ones(4, 1)}, r"unexpected \['stray'\]"),
])
def test_malformed_catalog_files_are_refused(saved, header, tensors, match):
    _, stem = saved
    rewrite(stem, header, tensors)
    assert "cat.safetensors is refused" in refused(stem, match)


@pytest.mark.parametrize("content", [b"", b"not safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{}", None, "{", "[]", "null"])
def test_files_that_are_no_catalog_are_refused(saved, content):
    _, stem = saved
    if isinstance(content, bytes):
        catalog_file(stem).write_bytes(content)
        match = "not readable safetensors"
    else:  # a safetensors file whose header holds no catalog
        save_file({"x": torch.ones(1)}, catalog_file(stem), metadata=None if content is None else {HEADER_KEY: content})
        match = "ganedit_catalog|not valid JSON"
    refused(stem, match)


def test_ganedit_0_1_catalogs_are_refused_and_upgrade_keeps_their_numbers_and_names(tmp_path):
    old = synthetic(labels={"eyes": [0, 1], "mouth": [3]})
    stem = tmp_path / "old"
    save_file(old._tensors(), catalog_file(stem))  # the three files of ganedit 0.1
    meta = old.metadata()
    del meta["format"]
    (tmp_path / "old.json").write_text(json.dumps(meta))
    (tmp_path / "old.labels.json").write_text(json.dumps(old.labels))
    assert "python -m ganedit upgrade-catalog" in refused(stem, "ganedit 0.1")
    upgraded = upgrade_catalog(tmp_path / "old.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.labels.json", "old.safetensors"]
    assert same(load_catalog(stem), old) and same(upgraded, old)


def test_the_committed_catalog_is_in_the_current_format(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where ./cartoon-faces.safetensors is the model's weights, not its catalog
    shutil.copy(Path(ganedit.__file__).parent / "bundled" / "cartoon-faces.safetensors", tmp_path)
    catalog = load_catalog("cartoon-faces")
    assert catalog.path == catalog_module.CATALOG_DIR / "cartoon-faces"
    assert not (catalog_module.CATALOG_DIR / "cartoon-faces.json").exists()
    assert json.loads((catalog_module.CATALOG_DIR / "cartoon-faces.labels.json").read_text())["catalog"] == catalog.build


def _save_forever(versions, stem):
    """The child of the kill test: saves the two versions in turn until it is killed."""
    try:
        while True:
            for catalog in versions:
                catalog.save(stem)
    finally:
        os._exit(1)


def test_kill_9_at_random_moments_leaves_the_old_or_the_new_catalog_whole(tmp_path):
    stem = tmp_path / "cat"
    versions = [synthetic(seed=1, labels={"eyes": [0, 1]}), synthetic(seed=2, labels={"mouth": [2], "hair": [0, 3]})]
    versions[0].save(stem)
    by_build = {c.build: c for c in versions}
    rng, kills, between = random.Random(0), 60, 0
    for _ in range(kills):
        pid = os.fork()
        if pid == 0:
            _save_forever(versions, stem)
        time.sleep(rng.uniform(0.001, 0.03))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        on_disk = json.loads(stem.with_name("cat.labels.json").read_text())["catalog"]
        loaded = load_catalog(stem)
        between += on_disk != loaded.build  # killed after the catalog file, before its labels
        assert loaded.build in by_build and same(loaded, by_build[loaded.build])
    temps = list(tmp_path.glob(".*.tmp"))
    report = f"{kills} kills: {between} between the catalog file and its labels, {len(temps)} temp files left"
    print(report)
    assert between and temps, report  # the kills did land inside saves
    for temp in temps:  # as if a minute had passed: their writers are dead
        os.utime(temp, (time.time() - 2 * STALE_TEMP_S,) * 2)
    versions[0].save(stem)
    assert not list(tmp_path.glob(".*.tmp"))


def test_only_stale_temp_files_are_removed(saved, tmp_path):
    catalog, stem = saved
    stale, live, other = (tmp_path / name for name in (".cat.safetensors.ab12.tmp", ".cat.safetensors.cd34.tmp", ".x.tmp"))
    for path in (stale, live, other):
        path.write_bytes(b"half")
        if path != live:
            os.utime(path, (time.time() - 2 * STALE_TEMP_S,) * 2)
    catalog.save(stem)
    assert not stale.exists() and live.exists() and other.exists()


def test_safe_name():
    assert safe_name("mouth corners") == "mouth_corners"
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name(".hidden") == "hidden"
    assert safe_name("a" * 200) == "a" * 80
    for bad in ("..", "/", ""):
        with pytest.raises(ValueError):
            safe_name(bad)


@pytest.mark.parametrize("value", ["", "   ", "relative/cache", "."])
def test_an_empty_or_relative_cache_variable_falls_back_to_the_default(monkeypatch, value):
    monkeypatch.setenv("GANEDIT_CACHE", value)
    assert cache_dir() == Path.home() / ".cache" / "ganedit"


def test_an_absolute_cache_variable_is_used(monkeypatch, tmp_path):
    monkeypatch.setenv("GANEDIT_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.setenv("GANEDIT_CACHE", "~/elsewhere")
    assert cache_dir() == Path.home() / "elsewhere"




def test_a_catalog_never_replaces_model_weights(tmp_path):
    """Catalogs and weights are both .safetensors: saving a catalog under a weights file's stem destroyed the
    weights (it happened with `make_catalog --out` next to a training export)."""
    weights = tmp_path / "model.safetensors"
    shutil.copy(Path(ganedit.__file__).parent / "bundled" / "cartoon-faces.safetensors", weights)
    before = weights.read_bytes()
    with pytest.raises(ValueError, match="not a catalog"):
        load_catalog("cartoon-faces").save(tmp_path / "model")
    assert weights.read_bytes() == before and ganedit.load_generator(weights).name == "model"
