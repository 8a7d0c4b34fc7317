"""Training the bundled models (ganedit.bundled.train): a run stopped and resumed gives the weights an
uninterrupted run gives, so the CPU budget can be spread over sessions."""

import pytest
from safetensors.torch import load_file

import ganedit
from ganedit.bundled.train import RECIPES, argument_parser, build_generator, multiscale_l1, render_on, train


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


def test_a_run_can_start_from_trained_weights(tmp_path):
    trained = load_file(run(tmp_path, "trained"))
    # with a learning rate of 0 the new run's steps change nothing: it saves the weights it started from
    started = load_file(run(tmp_path, "again", "--init", str(tmp_path / "trained.safetensors"), "--lr", "0"))
    assert all(started[key].equal(trained[key]) for key in trained)
    fresh = load_file(run(tmp_path, "fresh", "--lr", "0"))
    assert any(not fresh[key].equal(trained[key]) for key in trained)


def test_weights_of_another_architecture_are_refused(tmp_path):
    run(tmp_path, "small")
    with pytest.raises(SystemExit, match="not this model's"):
        train(argument_parser().parse_args([
            "--model", "cartoon-faces-128", "--init", str(tmp_path / "small.safetensors"), "--device", "cpu",
            "--checkpoint", str(tmp_path / "other.ckpt"), "--out", str(tmp_path / "other.safetensors")]))


def test_fit_minutes_sizes_the_schedule_from_timed_steps(tmp_path, capsys):
    # a budget far below one step's time: the schedule ends with the timed steps themselves
    run(tmp_path, "fitted", "--total-steps", "1000", "--fit-minutes", "1e-6")
    out = capsys.readouterr().out
    assert "schedule: 25 steps" in out and "to resume, pass --total-steps 25" in out
    assert "after 25 steps" in out
    with pytest.raises(SystemExit, match="resume with the --total-steps"):
        run(tmp_path, "fitted", "--fit-minutes", "1")


def test_fit_minutes_refuses_what_it_cannot_time(tmp_path, capsys):
    for text in ("0", "-1", "nan", "inf"):
        with pytest.raises(SystemExit):
            argument_parser().parse_args(["--fit-minutes", text])
        assert f"must be a finite number above 0, got {text}" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--steps must be at least 25, got 10"):
        run(tmp_path, "short", "--fit-minutes", "5", "--steps", "10")
    assert not (tmp_path / "short.ckpt").exists()  # refused before anything was written


@pytest.mark.parametrize("model", list(RECIPES))
def test_a_batch_is_drawn_and_weighed_on_the_training_device(model):
    # "meta" stands in for a GPU here: like CUDA tensors, meta tensors refuse to mix with CPU ones, so a tensor
    # that the renderer, the part weights or the loss made on the CPU would raise
    recipe = RECIPES[model]
    z = recipe.renderer.sample_z(2, 0)
    with pytest.raises(RuntimeError):
        recipe.renderer.render(z.to("meta"))  # drawn without render_on, the renderer's own tensors are on the CPU
    rendering = render_on("meta", recipe.renderer.render, z)
    assert rendering.images.device.type == rendering.masks.device.type == "meta"
    G = build_generator(recipe, seed=0).to("meta")
    loss = multiscale_l1(G(z.to("meta"), noise_mode="const"), rendering.images, recipe.weights_of(rendering.masks))
    assert loss.device.type == "meta" and loss.shape == ()
