"""Training the bundled models (ganedit.bundled.train): a run stopped and resumed gives the weights an
uninterrupted run gives, so the CPU budget can be spread over sessions."""

import pytest
from safetensors.torch import load_file

import ganedit
from ganedit.bundled.train import argument_parser, train


def run(tmp_path, name, *extra):
    args = argument_parser().parse_args([
        "--model", "cartoon-faces", "--batch", "2", "--total-steps", "4", "--threads", "1", "--device", "cpu",
        "--log-every", "1000", "--checkpoint", str(tmp_path / f"{name}.ckpt"),
        "--out", str(tmp_path / f"{name}.safetensors"), *extra])
    train(args)
    return tmp_path / f"{name}.safetensors"


def test_a_stopped_and_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    whole = load_file(run(tmp_path, "whole"))
    first_half = load_file(run(tmp_path, "halves", "--steps", "2"))
    resumed = load_file(run(tmp_path, "halves", "--steps", "2"))
    assert whole.keys() == resumed.keys()
    assert any(not whole[k].equal(first_half[k]) for k in whole)  # two more steps changed the weights
    for key in whole:
        assert whole[key].equal(resumed[key]), key
    G = ganedit.load_generator(tmp_path / "whole.safetensors")  # what a run saves loads as the model
    assert (G.kind, G.resolution) == ("stylegan2", 64)


def test_a_step_count_below_one_is_refused(capsys):
    for text in ("0", "-3"):
        with pytest.raises(SystemExit):
            argument_parser().parse_args(["--steps", text])
        assert f"must be a whole number of at least 1, got {text}" in capsys.readouterr().err
