"""Training the bundled model with and without ``--compile``, through ganedit.bundled.train itself.

Both runs start from the same random weights and draw the same batches. Each runs 25 steps with ``--fit-minutes``,
which times steps 5 to 25 (after compiling, which happens in the first step); printed: seconds a step, the
compiled run's speed-up against the plain one measured here, how long compiling took, and the two runs' loss and
validation L1 after the last step (the same up to float rounding when the compiled code is right).

    python bench/bench_train.py [--model cartoon-faces-128] [--batch 16] [--threads 2] [--device cpu]
"""

import argparse
import contextlib
import io
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from ganedit.bundled.train import RECIPES, argument_parser, train  # noqa: E402

STEPS = 25


def timed_run(folder, args, *extra):
    """(seconds a step over the timed steps, wall seconds of the whole run, (loss, validation L1) at the end)."""
    parsed = argument_parser().parse_args([
        "--model", args.model, "--batch", str(args.batch), "--threads", str(args.threads), "--device", args.device,
        "--total-steps", str(STEPS), "--fit-minutes", "1e-6", "--log-every", str(STEPS),
        "--checkpoint", str(folder / "run.ckpt"), "--out", str(folder / "run.safetensors"), *extra])
    log = io.StringIO()
    started = time.time()
    with contextlib.redirect_stdout(log):
        train(parsed)
    wall = time.time() - started
    text = log.getvalue()
    per_step = float(re.search(r"\(([\d.]+) s a step", text).group(1))
    last = re.search(rf"step {STEPS} loss ([\d.]+) val-L1\(ema\) ([\d.]+)", text)
    return per_step, wall, (float(last.group(1)), float(last.group(2)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=RECIPES, default="cartoon-faces-128")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as plain_dir, tempfile.TemporaryDirectory() as compiled_dir:
        plain, plain_wall, plain_end = timed_run(Path(plain_dir), args)
        compiled, compiled_wall, compiled_end = timed_run(Path(compiled_dir), args, "--compile")
    compiling = compiled_wall - plain_wall - STEPS * (compiled - plain)
    print(f"{args.model}, batch {args.batch}, {args.threads} threads, {args.device}:")
    print(f"  plain    {plain:.3f} s a step; after {STEPS} steps loss {plain_end[0]:.4f}, val-L1 {plain_end[1]:.4f}")
    print(f"  compiled {compiled:.3f} s a step ({plain / compiled:.2f}x faster) after about {compiling:.0f} s of "
          f"compiling; after {STEPS} steps loss {compiled_end[0]:.4f}, val-L1 {compiled_end[1]:.4f}")


if __name__ == "__main__":
    main()
