"""Train the bundled 'cartoon-faces' StyleGAN2 by regression onto the procedural renderer.

Every training face is ``render(z)`` for a fresh z ~ N(0, I), so the generator learns G(z) ~ render(z)
directly: a supervised loss converges far faster on a CPU than adversarial training, and it makes the
seed -> face map of the generator the same as the renderer's, which is what lets ganedit measure its
edits against ground-truth part masks. The loss is L1 at three scales (full, half and quarter size) with the pixels of
the small, salient parts (eyes, brows, mouth) weighted up, so that iris colour and mouth shape are not
drowned out by the large face and background areas. Checkpoints make the run resumable.

    python -m ganedit.bundled.train --minutes 60            # resumes from the checkpoint if there is one
    python -m ganedit.bundled.train --model cartoon-faces-128 --minutes 60   # v2: 128 px, renderer_v2

The generator trains on ``--device``, CUDA when there is one, and the renderer draws each batch there too (on a
GPU, drawing on the CPU would leave the generator waiting). z comes from a CPU random generator, so the batches
are the same on every device up to float rounding, and a run may move between devices.
On a machine of unknown speed, ``--fit-minutes`` times the first steps and sizes the schedule to the time there is,
and ``--init`` starts a new run from trained weights (the bundled ones) rather than from random ones:

    python -m ganedit.bundled.train --model cartoon-faces-128 --device cuda --threads 16 --batch 256 \
        --init ganedit/bundled/cartoon-faces-128.safetensors --fit-minutes 6 --lr 2e-3 --compile

``--compile`` runs each step's drawing, generator and loss through torch.compile: 1.8x faster steps on a 2-core
CPU after about two minutes of compiling (bench/bench_train.py). Uncompiled, a step is about 2,900 small tensor
operations (1,300 of them drawing the batch); compiling fuses them, which should matter most on a GPU, where
launching each costs more than its arithmetic (not yet timed on one).
"""

import argparse
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F

from ..loading import load_generator, save_generator
from ..networks import StyleGAN2
from . import renderer, renderer_v2

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Recipe:
    """What differs between the bundled models: the renderer they learn, their size and the loss's part weights."""

    renderer: ModuleType
    config: dict
    part_weights: dict

    def weights_of(self, masks):
        table = torch.tensor([self.part_weights[p] for p in self.renderer.PARTS], device=masks.device)
        return table[masks].unsqueeze(1)


RECIPES = {
    "cartoon-faces": Recipe(renderer, dict(
        resolution=renderer.RESOLUTION, z_dim=renderer.Z_DIM, w_dim=128, mapping_layers=4, mapping_fmaps=128,
        mapping_lrmul=1.0, fmap_base=1024, fmap_max=128,  # widths 128/128/128/64/32 at 4/8/16/32/64 px
    ), {"background": 1.0, "face": 1.0, "hair": 2.0, "eyes": 10.0, "brows": 4.0, "nose": 2.0, "mouth": 10.0}),
    "cartoon-faces-128": Recipe(renderer_v2, dict(
        resolution=renderer_v2.RESOLUTION, z_dim=renderer_v2.Z_DIM, w_dim=256, mapping_layers=4, mapping_fmaps=256,
        mapping_lrmul=1.0, fmap_base=2048, fmap_max=256,  # widths 256/256/256/128/64/32 at 4 ... 128 px
    ), {"background": 1.0, "face": 1.0, "hair": 2.0, "eyes": 10.0, "brows": 4.0, "nose": 3.0, "mouth": 10.0,
        "glasses": 4.0, "earrings": 6.0, "shirt": 1.0, "facial_hair": 2.0}),
}
VALIDATION_SEED = 2**31 - 1  # seeds used for measurements elsewhere are small; this one is not among them
FIT_TIMED_STEPS = (5, 25)  # --fit-minutes times steps 5 to 25 (the first ones include warming up)


def multiscale_l1(output, target, weights):
    loss = 0.0
    for factor in (1, 2, 4):
        if factor > 1:
            output, target, weights = (F.avg_pool2d(t, 2) for t in (output, target, weights))
        loss = loss + (weights * (output - target).abs()).sum() / weights.sum()
    return loss / 3


def render_on(device, render, z):
    """``render(z)`` drawn on ``device``: the renderers make every tensor with torch's factory functions, which
    follow the ``torch.device`` context."""
    with torch.device(device):
        return render(z.to(device))


def build_generator(recipe, seed):
    torch.manual_seed(seed)
    return StyleGAN2(recipe.config)


def learning_rate(base, step, total_steps):
    """Cosine from ``base`` down to a tenth of it over the schedule."""
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)))


def initial_weights(G, path):
    """Load trained weights of G's architecture (a file save_generator wrote) into G, or say what differs."""
    weights = load_generator(path).state_dict()
    shapes = {name: tuple(t.shape) for name, t in G.state_dict().items()}
    if {name: tuple(t.shape) for name, t in weights.items()} != shapes:
        raise SystemExit(f"--init {path}: its architecture is not this model's (other tensors or shapes)")
    G.load_state_dict(weights)


@torch.no_grad()
def validation_l1(G, z, targets):
    return (G(z, noise_mode="const") - targets).abs().mean().item()


@torch.no_grad()
def estimate_w_avg(G, sample_z, n=20000, seed=1):
    z = sample_z(n, seed)
    G.w_avg.copy_(G.mapping_network(z).mean(0))


def train(args):
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    recipe = RECIPES[args.model]
    render, sample_z, z_dim = recipe.renderer.render, recipe.renderer.sample_z, recipe.renderer.Z_DIM
    checkpoint = Path(args.checkpoint or f".train/{args.model}.ckpt")
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    out = args.out or HERE / f"{args.model}.safetensors"
    G = build_generator(recipe, args.seed).to(device)
    ema = build_generator(recipe, args.seed).to(device)
    ema.load_state_dict(G.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.9, 0.99))
    step, elapsed = 0, 0.0
    data_rng = torch.Generator().manual_seed(args.seed)
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=True, map_location="cpu")  # the random state stays on the CPU
        G.load_state_dict(state["G"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        data_rng.set_state(state["data_rng"])
        step, elapsed = state["step"], state["elapsed"]
        print(f"resumed at step {step} ({elapsed / 60:.1f} min trained)")
    elif args.init:
        initial_weights(G, args.init)
        ema.load_state_dict(G.state_dict())
        print(f"starting from {args.init}")
    if args.fit_minutes and step > 0:
        raise SystemExit("--fit-minutes sizes a new schedule: resume with the --total-steps it printed instead")
    if args.fit_minutes and args.steps and args.steps < FIT_TIMED_STEPS[1]:
        raise SystemExit(f"--fit-minutes times steps {FIT_TIMED_STEPS[0]} to {FIT_TIMED_STEPS[1]}: "
                         f"--steps must be at least {FIT_TIMED_STEPS[1]}, got {args.steps}")
    val_z = sample_z(256, VALIDATION_SEED).to(device)
    val_targets = render_on(device, render, val_z).images
    deadline = time.time() + args.minutes * 60
    total_steps = args.total_steps

    first_step = step

    def last_step_of(total):
        return min(total, first_step + args.steps) if args.steps else total

    last_step = last_step_of(total_steps)
    start, start_elapsed = time.time(), elapsed

    def save_checkpoint():
        tmp = checkpoint.with_suffix(".tmp")
        torch.save({"G": G.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step,
                    "elapsed": start_elapsed + time.time() - start, "data_rng": data_rng.get_state()}, tmp)
        os.replace(tmp, checkpoint)

    def batch_loss(z):
        rendering = render_on(device, render, z)
        return multiscale_l1(G(z, noise_mode="const"), rendering.images, recipe.weights_of(rendering.masks))

    if args.compile:
        torch._dynamo.config.suppress_errors = True  # what can't be compiled here runs as it is, with a warning
        batch_loss = torch.compile(batch_loss)

    while time.time() < deadline and step < last_step:
        lr = learning_rate(args.lr, step, total_steps)
        for group in opt.param_groups:
            group["lr"] = lr
        z = torch.randn(args.batch, z_dim, generator=data_rng)
        loss = batch_loss(z.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), G.parameters()):
                p_ema.lerp_(p, 1 - args.ema)
        step += 1
        if args.fit_minutes and step == FIT_TIMED_STEPS[0]:
            timed_from = time.time()
        if args.fit_minutes and step == FIT_TIMED_STEPS[1]:
            per_step = (time.time() - timed_from) / (FIT_TIMED_STEPS[1] - FIT_TIMED_STEPS[0])
            total_steps = max(step, int(args.fit_minutes * 60 / per_step))
            last_step = last_step_of(total_steps)
            print(f"schedule: {total_steps} steps ({per_step:.3f} s a step fits {args.fit_minutes} min); "
                  f"to resume, pass --total-steps {total_steps}", flush=True)
        if step % args.log_every == 0:
            minutes = (start_elapsed + time.time() - start) / 60
            print(f"step {step} loss {loss.item():.4f} val-L1(ema) {validation_l1(ema, val_z, val_targets):.4f} "
                  f"lr {lr:.2e} {minutes:.1f} min", flush=True)
        if step % args.checkpoint_every == 0:
            save_checkpoint()
    save_checkpoint()
    estimate_w_avg(ema, lambda n, seed: sample_z(n, seed).to(device))
    save_generator(ema.cpu(), out)
    val_z, val_targets = val_z.cpu(), val_targets.cpu()
    print(f"saved {out} after {step} steps; val-L1 {validation_l1(ema, val_z, val_targets):.4f} "
          f"(mean-face baseline {(val_targets - val_targets.mean(0)).abs().mean():.4f})")


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text}")
    return value


def positive_float(text):
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def argument_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=RECIPES, default="cartoon-faces", help="which bundled model to train")
    parser.add_argument("--minutes", type=float, default=90, help="stop after this much training in this run")
    parser.add_argument("--total-steps", type=positive_int, default=20000, help="length of the learning-rate schedule")
    parser.add_argument("--fit-minutes", type=positive_float,
                        help="instead: time the first steps and make the schedule about this long (a new run only)")
    parser.add_argument("--init", help="start a new run from these weights (a file this script saved) instead of "
                                       "random ones; a resumed run ignores it")
    parser.add_argument("--steps", type=positive_int, help="stop after this many steps in this run (default: no limit)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--ema", type=float, default=0.999, help="decay of the weight average that is saved")
    parser.add_argument("--compile", action="store_true",
                        help="compile each step's drawing, generator and loss with torch.compile (fewer, fused "
                             "operations: faster steps after a minute or two of compiling)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (training and drawing on the CPU)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where the generator trains and its batches are drawn (default: cuda when available)")
    parser.add_argument("--checkpoint", help="resumable training state (default .train/MODEL.ckpt, not committed)")
    parser.add_argument("--out", help="the weights (default ganedit/bundled/MODEL.safetensors)")
    parser.add_argument("--log-every", type=int, default=200)
    parser.add_argument("--checkpoint-every", type=int, default=500)
    return parser


def main():
    train(argument_parser().parse_args())


if __name__ == "__main__":
    main()
