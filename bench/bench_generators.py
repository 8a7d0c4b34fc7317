"""Milliseconds per image of the three generator steps (mapping, styles, synthesis) on real-size generators.

The StyleGAN FFHQ 1024 and StyleGAN2 Car 512 architectures are built with random weights (no download);
the timings do not depend on the weight values. Each step is run once to warm up, then timed a few times
(a fast step is looped until one measurement lasts at least 20 ms) and the median is reported, divided by
the batch size. CPU always; CUDA too when present.

    python bench/bench_generators.py [--quick] [--optimized] [--threads N] [--repeats N]

--quick times batch 1 only. --optimized runs G.optimize() first (compiling synthesis for the timed batch sizes,
not timed). The CPU thread count is torch's default unless --threads is given. bench/bench_reference.py puts
eager and optimized synthesis beside the reference implementations.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ganedit.networks import StyleGAN, StyleGAN2  # noqa: E402

MODELS = {
    "StyleGAN FFHQ 1024": lambda: StyleGAN(dict(resolution=1024)),
    "StyleGAN2 Car 512": lambda: StyleGAN2(dict(resolution=512)),
}
MIN_MEASUREMENT_S = 0.02


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def median_ms(fn, device, repeats):
    """Median wall time of fn() in ms: one warm-up, then ``repeats`` measurements of enough calls to last 20 ms."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    once = time.perf_counter() - start
    loops = max(1, min(1000, int(MIN_MEASUREMENT_S / max(once, 1e-6))))
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1000 / loops)
    return statistics.median(times)


@torch.no_grad()
def bench(name, make, device, batches, repeats, optimized):
    torch.manual_seed(0)
    G = make().to(device).eval().requires_grad_(False)
    if optimized:
        G.optimize(batch_sizes=batches)
    rows = []
    for batch in batches:
        z = torch.randn(batch, G.z_dim, device=device)
        w = G.mapping(z, truncation_psi=0.7)
        styles = G.styles(w)
        mapping = median_ms(lambda: G.mapping(z, truncation_psi=0.7), device, repeats)
        style = median_ms(lambda: G.styles(w), device, repeats)
        synthesis = median_ms(lambda: G.synthesis(styles, noise_mode="const"), device, repeats)
        per_image = [t / batch for t in (mapping, style, synthesis)]
        rows.append((name, device, batch, *per_image, sum(per_image)))
        print(_row(rows[-1]), flush=True)
    return rows


HEADER = f"{'model':20s} {'device':6s} {'batch':>5s} {'mapping':>10s} {'styles':>10s} {'synthesis':>11s} {'total':>11s}   (ms per image)"


def _row(r):
    name, device, batch, mapping, style, synthesis, total = r
    return f"{name:20s} {device:6s} {batch:5d} {mapping:10.3f} {style:10.3f} {synthesis:11.1f} {total:11.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="batch 1 only")
    parser.add_argument("--optimized", action="store_true", help="G.optimize() first")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per step (median reported)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    batches = [1] if args.quick else [1, 8]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s), "
          f"{'optimized' if args.optimized else 'eager'} synthesis"
          + (f", CUDA: {torch.cuda.get_device_name(0)}" if "cuda" in devices else ", no CUDA"))
    print(HEADER, flush=True)
    rows = []
    for device in devices:
        for name, make in MODELS.items():
            rows += bench(name, make, device, batches, args.repeats, args.optimized)
    print("\nsummary")
    print(HEADER)
    for r in rows:
        print(_row(r))
    # Ratios against the batch-1 baseline measured above, in the same process.
    for name, device, batch, *_, total in rows:
        base = next(r[-1] for r in rows if r[0] == name and r[1] == device and r[2] == 1)
        if batch != 1:
            print(f"{name} on {device}: batch {batch} costs {total / base:.2f}x batch 1 per image")


if __name__ == "__main__":
    main()
