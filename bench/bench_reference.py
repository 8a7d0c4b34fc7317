"""Synthesis milliseconds per image, side by side: ganedit eager, ganedit optimized and the reference code.

The references are NVIDIA's StyleGAN2-ADA generator (training/networks.py of NVlabs/stylegan2-ada-pytorch,
config-f; its custom CUDA ops fall back to their reference code on a CPU) for the StyleGAN2 sizes, and the paper
authors' StyleGAN port (stylegan.py of IVRL/GANLocalEditing, constant noise) for the StyleGAN sizes. They are not
dependencies: put their source into a scratch folder and name it, e.g.

    git clone https://github.com/IVRL/GANLocalEditing DIR/GANLocalEditing
    git clone https://github.com/NVlabs/stylegan2-ada-pytorch DIR/stylegan2-ada-pytorch
    python bench/bench_reference.py --reference-dir DIR [--models cat-256 ...] [--threads N] [--repeats N]

Without --reference-dir ganedit is timed alone. All generators have random weights at the real sizes (timings
don't depend on the values), batch 1, one process per model with one thread count. Every implementation is timed
once per round, in turns, so that other load on the machine falls on all of them alike; the median of the rounds
is reported. Twice: first with malloc as the process started (how the references' users run them), then after
ganedit's optimized path was compiled and warmed (that time is printed, with how far its picture is from eager):
``optimize()`` on a CPU makes glibc's malloc keep freed memory, for the whole process, so the references run
faster in that phase too (ganedit.networks.memory says why). The references' synthesis starts from w (NVIDIA's
includes its per-layer affine maps, a few small matrix products), ganedit's from the styles, as an edit does.
"""

import argparse
import copy
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ganedit.networks import StyleGAN, StyleGAN2, memory  # noqa: E402

MODELS = {  # name: (ganedit family, resolution, reference)
    "ffhq-1024": (StyleGAN, 1024, "authors"),
    "bedrooms-256": (StyleGAN, 256, "authors"),
    "car-512": (StyleGAN2, 512, "nvidia"),
    "cat-256": (StyleGAN2, 256, "nvidia"),
}
REFERENCE_NAMES = {"authors": "authors' stylegan.py", "nvidia": "NVIDIA stylegan2-ada"}


def authors_synthesis(folder, resolution):
    """The paper authors' StyleGAN synthesis and styles for it, as a zero-argument callable."""
    sys.path.insert(0, str(folder / "GANLocalEditing"))
    import stylegan

    synthesis = stylegan.G_synthesis(resolution=resolution).eval().requires_grad_(False)
    synthesis.set_noise("fixed")
    ys = stylegan.G_style(resolution=resolution)(torch.randn(1, 2 * len(synthesis.blocks), 512))
    return lambda: synthesis(ys)


def nvidia_synthesis(folder, resolution):
    """NVIDIA's StyleGAN2-ADA synthesis (config-f) and a w for it, as a zero-argument callable."""
    sys.path.insert(0, str(folder / "stylegan2-ada-pytorch"))
    from training.networks import Generator

    G = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3).eval().requires_grad_(False)
    ws = torch.randn(1, G.num_ws, 512)
    return lambda: G.synthesis(ws, noise_mode="const")


REFERENCE_PROGRAMS = {"authors": authors_synthesis, "nvidia": nvidia_synthesis}


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_rounds(runs, repeats):
    """Median milliseconds of each run, timed once per round in turns, so that other load falls on all alike."""
    ms = {label: [] for label in runs}
    for _ in range(repeats):
        for label, run in runs.items():
            ms[label].append(1000 * timed(run))
    return {label: statistics.median(times) for label, times in ms.items()}


def report(title, ms):
    print(f"  {title}")
    for label, value in ms.items():
        ratios = "  ".join(f"{other / value:5.2f}x {short(other_label)}" for other_label, other in ms.items()
                           if other_label != label)
        print(f"    {label:30s} {value:9.1f} ms   speed: {ratios}", flush=True)


@torch.no_grad()
def bench(name, reference_dir, repeats):
    """Two phases: first with malloc as a process starts (as the references' users run them), then after
    ``optimize()``, which on glibc makes malloc keep freed memory for the whole process (ganedit.networks.memory),
    the references included."""
    family, resolution, reference = MODELS[name]
    torch.manual_seed(0)
    eager = family(dict(resolution=resolution)).eval().requires_grad_(False)
    styles = eager.styles(eager.mapping(torch.randn(1, eager.z_dim), truncation_psi=0.7))
    runs = {"ganedit eager": lambda: eager.synthesis(styles)}
    if reference_dir:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runs[REFERENCE_NAMES[reference]] = REFERENCE_PROGRAMS[reference](reference_dir, resolution)
    for run in runs.values():
        run()  # a first call warms up
    as_started = time_rounds(runs, repeats)

    fast = copy.deepcopy(eager).optimize(batch_sizes=())
    expected = eager.synthesis(styles)
    warm_s = timed(lambda: fast.synthesis(styles))  # compiles and runs the batch-1 edit graph
    error = float((fast.synthesis(styles) - expected).norm() / expected.norm())
    tuned = time_rounds({"ganedit optimized": lambda: fast.synthesis(styles), **runs}, repeats)
    print(f"\n{name}: optimized path compiled and warmed in {warm_s:.1f} s; its picture is {error:.1e} relative L2 "
          f"from eager; malloc keeps freed memory after optimize(): {memory.kept}", flush=True)
    report("malloc as the process started:", as_started)
    report("after optimize():", tuned)
    if reference_dir:
        label = REFERENCE_NAMES[reference]
        print(f"  ganedit optimized vs {label} as its users run it: "
              f"{as_started[label] / tuned['ganedit optimized']:.2f}x", flush=True)
    return name, tuned


def short(label):
    return label.replace("ganedit ", "").split(" ")[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-dir", type=Path, help="folder holding GANLocalEditing/ and stylegan2-ada-pytorch/")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (the median is reported)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if len(args.models) > 1:  # one process per model: malloc's setting outlives a model (see bench)
        for name in args.models:
            subprocess.run([sys.executable, __file__, *sys.argv[1:], "--models", name], check=True)
        return
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} thread(s), batch 1; 'speed: 2.00x other' means "
          "twice as fast as other")
    bench(args.models[0], args.reference_dir, args.repeats)


if __name__ == "__main__":
    main()
