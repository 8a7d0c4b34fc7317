"""``python -m ganedit``: commands run as a user runs them, in a child process."""

import json

from command_line import run_cli
from PIL import Image
from small_models import small_model

import ganedit
from ganedit import load_catalog
from ganedit.loading import save_generator


def test_cli_edit_writes_a_strip_and_refuses_bad_arguments(tmp_path):
    G, catalog = small_model("stylegan2")
    save_generator(G, tmp_path / "g.safetensors")
    loaded = ganedit.load_generator(tmp_path / "g.safetensors")
    catalog.fingerprint = loaded.fingerprint
    catalog.save(tmp_path / "cat")
    ok = run_cli("edit", "--model", str(tmp_path / "g.safetensors"), "--catalog", str(tmp_path / "cat"),
                 "--target", "1", "--reference", "2", "--part", "eyes", "--out", str(tmp_path / "strip.png"))
    assert ok.returncode == 0, ok.stderr
    assert "In-MSE" in ok.stdout and "nothing moved" not in ok.stdout
    still = run_cli("edit", "--model", str(tmp_path / "g.safetensors"), "--catalog", str(tmp_path / "cat"),
                    "--target", "1", "--reference", "2", "--part", "eyes", "--epsilon", "0",
                    "--out", str(tmp_path / "still.png"))
    assert "style channels moved 0\nnothing moved: at ε 0 the sequential query" in still.stdout
    assert Image.open(tmp_path / "strip.png").width > 3 * 256
    labels_before = (tmp_path / "cat.labels.json").read_text()
    kept = run_cli("catalog", "--model", str(tmp_path / "g.safetensors"), "--out", str(tmp_path / "cat"), "--k", "3")
    assert kept.returncode != 0 and "--force" in kept.stderr
    unsafe = run_cli("label", "--catalog", str(tmp_path / "cat"), "--clusters", "2", "--name", "../x")
    assert unsafe.returncode == 2 and "part name '../x'" in unsafe.stderr
    assert (tmp_path / "cat.labels.json").read_text() == labels_before
    for bad in (["--target", "-1"], ["--target", str(2**32)], ["--part", "wheels"], ["--epsilon", "nan"]):
        args = {"--target": "1", "--part": "eyes", "--epsilon": "3"}
        args[bad[0]] = bad[1]
        out = tmp_path / "bad.png"
        run = run_cli("edit", "--model", str(tmp_path / "g.safetensors"), "--catalog", str(tmp_path / "cat"),
                      "--reference", "2", "--out", str(out), *[x for kv in args.items() for x in kv])
        assert run.returncode != 0 and not out.exists()
        assert "error" in run.stderr
        assert not list(tmp_path.glob(".bad.png*"))


def test_evaluate_writes_only_inside_its_out_folder(tmp_path):
    catalog = load_catalog("cartoon-faces")
    catalog.labels = {"eye area": catalog.labels["eyes"]}
    catalog.save(tmp_path / "cat")
    out = tmp_path / "deep" / "out"
    ok = run_cli("evaluate", "--model", "cartoon-faces", "--catalog", str(tmp_path / "cat"), "--out", str(out),
                 "--pairs", "2", "--steps", "2")
    assert ok.returncode == 0, ok.stderr
    assert sorted(p.name for p in out.iterdir()) == ["curves.csv", "curves.png", "mean-difference-eye_area.png"]

    labels = tmp_path / "cat.labels.json"
    labels.write_text(json.dumps({"catalog": catalog.build, "parts": {"../../escape": catalog.labels["eye area"]}}))
    before = sorted(tmp_path.rglob("*"))
    bad = run_cli("evaluate", "--model", "cartoon-faces", "--catalog", str(tmp_path / "cat"), "--out", str(out),
                  "--pairs", "2", "--steps", "2")
    assert bad.returncode == 2 and "part name '../../escape'" in bad.stderr
    assert sorted(tmp_path.rglob("*")) == before


def test_evaluate_refuses_an_empty_run_before_it_starts(tmp_path):
    catalog = load_catalog("cartoon-faces")
    catalog.save(tmp_path / "named")
    catalog.labels = {}
    catalog.save(tmp_path / "unnamed")
    out = tmp_path / "out"
    refusals = (("named", ["--steps", "0"], "steps (points per curve) must be at least 1, got 0"),
                ("named", ["--pairs", "0"], "at least one (target, reference) pair"),
                ("unnamed", [], "no named parts to evaluate"))
    for catalog_path, extra, words in refusals:
        run = run_cli("evaluate", "--model", "cartoon-faces", "--catalog", str(tmp_path / catalog_path),
                      "--out", str(out), "--pairs", "2", "--steps", "2", *extra)
        assert run.returncode == 2 and words in run.stderr and "Traceback" not in run.stderr, run.stderr
        assert not out.exists()
