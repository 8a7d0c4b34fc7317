"""`python -m ganedit prepare` end to end on a tiny official-format file dropped in for a registered model: conversion,
catalog, contact sheet, a second run that skips every finished step, and examples chosen once parts are named."""

import dataclasses
import json

import pytest
from official_files import write_stylegan2_pickle
from PIL import Image

import ganedit
from ganedit import cli, prepare
from ganedit.catalog import load_catalog
from ganedit.loading import converted_weights, file_sha256, load_generator, registry

NAME = "stylegan2-cats"
K = 4


@pytest.fixture
def dropped(tmp_path, monkeypatch):
    """NVIDIA's file name of stylegan2-cats holding a tiny 64 px StyleGAN2, offline, with an empty cache."""
    folder = tmp_path / "weights"
    folder.mkdir()
    pickle = folder / ganedit.model_info(NAME).official_file
    write_stylegan2_pickle(pickle)
    monkeypatch.setenv("GANEDIT_WEIGHTS_DIR", str(folder))
    monkeypatch.setenv("GANEDIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GANEDIT_OFFLINE", "1")
    monkeypatch.delenv("GANEDIT_HUB_REPO", raising=False)
    return pickle


def run(capsys, *args):
    code = cli.main(["prepare", NAME, "--device", "cpu", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_prepare_converts_catalogs_draws_a_contact_sheet_and_resumes(dropped, tmp_path, capsys):
    out = tmp_path / "catalogs"
    code, said, _ = run(capsys, "--k", K, "--n-images", 8, "--out", out)
    assert code == 0
    converted = converted_weights(ganedit.model_info(NAME))
    assert f"weights {dropped} (sha256 {file_sha256(dropped)})" in said
    assert f"converted to {converted} (sha256 {file_sha256(converted)})" in said
    assert load_generator(converted).fingerprint == load_generator(dropped).fingerprint
    catalog = load_catalog(out / NAME)
    assert catalog.k == K and catalog.n_images == 8 and catalog.labels == {}
    sheet = out / f"{NAME}.clusters.png"
    with Image.open(sheet) as image:  # K numbered rows of one tile per sample picture (64 px scaled to the tile)
        assert image.size == (len(prepare.SHEET_SEEDS) * (prepare.SHEET_TILE + 4), K * (16 + prepare.SHEET_TILE + 4))
        assert image.text[prepare.SHEET_KEY] == catalog.build
    assert said.count(f"wrote contact sheet {sheet}") == 1

    stamps = {p: p.stat().st_mtime_ns for p in (converted, out / f"{NAME}.safetensors", sheet)}
    code, said, _ = run(capsys, "--k", K + 1, "--n-images", 8, "--out", out)
    assert code == 0
    assert f"weights {converted} (sha256 {file_sha256(converted)})" in said  # the converted file comes first now
    assert "nothing to convert" in said
    assert f"catalog {out / NAME}.safetensors exists and fits the weights (k={K}, 8 images): kept" in said
    assert f"contact sheet {sheet} shows this catalog: kept" in said
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_examples_are_chosen_from_named_parts_and_merged(dropped, tmp_path, capsys):
    out, examples = tmp_path / "catalogs", tmp_path / "examples.json"
    others = [dict(model="cartoon-faces", target=9, reference=12, part="eyes", method="sequential", epsilon=6.3),
              dict(model=NAME, target=1, reference=2, part="old", method="sequential", epsilon=1.0),
              dict(model="stylegan2-cars", target=5, reference=6, part="wheels", method="global", lam=1)]
    examples.write_text(json.dumps(others))
    options = ["--k", K, "--n-images", 8, "--out", out, "--examples", "--example-seeds", 4, "--examples-file", examples]
    code, _, err = run(capsys, *options)
    assert code == 2 and "has no named parts yet" in err and json.loads(examples.read_text()) == others

    catalog = load_catalog(out / NAME)
    catalog.rename([0], "eyes")
    catalog.rename([1, 2], "body")
    catalog.save_labels()
    code, said, _ = run(capsys, *options)
    assert code == 0 and f"examples written to {examples}: eyes (target" in said
    rows = json.loads(examples.read_text())
    assert rows[0] == others[0] and rows[-1] == others[2]  # the others kept, in their places
    chosen = rows[1:-1]
    assert [r["part"] for r in chosen] == ["eyes", "body"]  # the preferred parts first
    G = load_generator(NAME)
    for row in chosen:
        request = ganedit.EditRequest.strict(lambda model: catalog, **row)
        assert request.epsilon == catalog.epsilon["default"] and request.method == "sequential"

        def score(target, part=row["part"]):
            result = ganedit.edit(G, catalog, target, target + 1, part, epsilon=row["epsilon"])
            return result.in_mse * result.inside_share
        assert row["reference"] == row["target"] + 1
        assert score(row["target"]) == max(score(t) for t in range(3))

    code, said, _ = run(capsys, *options, "--example-parts", "body")
    assert code == 0 and [r["part"] for r in json.loads(examples.read_text())[1:-1]] == ["body"]
    code, _, err = run(capsys, *options, "--example-parts", "tail")
    assert code == 2 and "has no part 'tail'; its parts: eyes, body" in err


def test_face_models_get_their_parts_named_by_position(dropped, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(registry.MODELS, NAME, dataclasses.replace(ganedit.model_info(NAME), faces=True))
    calls = []
    monkeypatch.setattr(prepare, "auto_label_faces", lambda G, catalog: calls.append(G.name) or {"eyes": [1]})
    code, said, _ = run(capsys, "--k", K, "--n-images", 8, "--out", tmp_path)
    assert code == 0 and calls == [NAME] and "parts named by position: eyes" in said
    assert load_catalog(tmp_path / NAME).labels == {"eyes": [1]}
