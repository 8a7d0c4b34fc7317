"""Catalog build time and edit latency on real-size random-weight generators (CPU, and CUDA when present).

The catalog is the default one (k=16 from 200 images, batches of 8), estimated cheaply: its two passes over the
images are timed on a few images and scaled to 200, and its k-means is timed at full size on random vectors of
the clustered layer's size. An edit from cached target/reference styles is printed beside a full seed -> picture
generation (mapping + styles + synthesis) measured in the same process.

    python bench/bench_method.py [--optimized] [--models ffhq-1024 ...] [--quick]

--optimized runs G.optimize() first (compiling for the edit and catalog batch sizes; that time is printed).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import ganedit  # noqa: E402
from ganedit.catalog import default_layer  # noqa: E402
from ganedit.kmeans import fit_spherical_kmeans  # noqa: E402
from ganedit.networks import StyleGAN, StyleGAN2  # noqa: E402

MODELS = {
    "ffhq-1024": lambda: StyleGAN(dict(resolution=1024)),
    "bedrooms-256": lambda: StyleGAN(dict(resolution=256)),
    "car-512": lambda: StyleGAN2(dict(resolution=512)),
    "cat-256": lambda: StyleGAN2(dict(resolution=256)),
}
CATALOG = dict(k=16, n_images=200, batch_size=8)  # the service's and the CLI's default catalog


def median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def timed_s(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def kmeans_s(G, n_images, k, device):
    """k-means on random unit vectors as many and as long as the clustered layer gives for n_images."""
    spec = next(s for s in G.style_layers if s.activation == default_layer(G))
    vectors = torch.nn.functional.normalize(torch.randn(n_images * spec.resolution**2, spec.channels), dim=1).half()
    return timed_s(lambda: fit_spherical_kmeans(vectors, k, device=device))[0]


@torch.no_grad()
def bench(name, make, device, n_images, repeats, optimized):
    torch.manual_seed(0)
    G = make().to(device).eval().requires_grad_(False)
    compile_s = timed_s(lambda: G.optimize(batch_sizes=(1, CATALOG["batch_size"])))[0] if optimized else 0
    z = torch.from_numpy(ganedit.seed_to_z(0, G.z_dim)).to(device)
    generate_ms = median_ms(lambda: G.synthesis(G.styles(G.mapping(z))), repeats)
    build_s, catalog = timed_s(lambda: ganedit.build_catalog(G, k=CATALOG["k"], n_images=n_images,
                                                             batch_size=CATALOG["batch_size"]))
    passes_s = build_s - kmeans_s(G, n_images, CATALOG["k"], device)
    estimate_s = passes_s * CATALOG["n_images"] / n_images + kmeans_s(G, CATALOG["n_images"], CATALOG["k"], device)
    catalog.rename([0], "part")
    target = ganedit.prepare_seed(G, catalog, 1)
    reference = ganedit.prepare_seed(G, catalog, 2)
    edit_ms = median_ms(lambda: ganedit.edit_prepared(G, catalog, target, reference, "part", epsilon=30), repeats)
    mode = f"optimized (compiled in {compile_s:.0f} s)" if optimized else "eager"
    print(f"{name:13s} {device:5s} {mode}: default catalog ~ {estimate_s / 60:5.1f} min (passes timed on {n_images} "
          f"images: {passes_s / n_images:5.2f} s per image) | edit from cached styles {edit_ms:7.1f} ms = "
          f"{edit_ms / generate_ms:4.2f}x one generation ({generate_ms:.1f} ms)", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--optimized", action="store_true", help="G.optimize() first")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats")
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for name in args.models:
            n_images = CATALOG["batch_size"] * (1 if args.quick else 2 if device == "cpu" else 8)
            bench(name, MODELS[name], device, n_images, 2 if args.quick else 3, args.optimized)


if __name__ == "__main__":
    main()
