"""Catalog build time and edit latency on real-size random-weight generators (CPU, and CUDA when present).

Each number is printed beside a baseline measured in the same process: a catalog build against the
plain synthesis of the same images (it runs two passes, so about 2x plus k-means), and an edit from
cached target/reference styles against a full seed -> picture generation (mapping + styles + synthesis).

    python bench/bench_method.py [--quick]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import ganedit  # noqa: E402
from ganedit.networks import StyleGAN, StyleGAN2  # noqa: E402

MODELS = {
    "StyleGAN FFHQ 1024": lambda: StyleGAN(dict(resolution=1024)),
    "StyleGAN2 Car 512": lambda: StyleGAN2(dict(resolution=512)),
}


def median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


@torch.no_grad()
def bench(name, make, device, n_images, repeats):
    torch.manual_seed(0)
    G = make().to(device).eval().requires_grad_(False)
    z = torch.from_numpy(ganedit.seed_to_z(0, G.z_dim)).to(device)
    generate_ms = median_ms(lambda: G.synthesis(G.styles(G.mapping(z))), repeats)
    start = time.perf_counter()
    catalog = ganedit.build_catalog(G, k=16, n_images=n_images, batch_size=4)
    catalog_s = time.perf_counter() - start
    catalog.rename([0], "part")
    target = ganedit.prepare_seed(G, catalog, 1)
    reference = ganedit.prepare_seed(G, catalog, 2)
    edit_ms = median_ms(lambda: ganedit.edit_prepared(G, catalog, target, reference, "part", epsilon=30), repeats)
    baseline_s = n_images * generate_ms / 1000
    print(f"{name:20s} {device:5s} catalog ({n_images} images, k=16): {catalog_s:7.1f} s = "
          f"{catalog_s / baseline_s:4.2f}x generating those images | edit from cached styles: {edit_ms:8.1f} ms = "
          f"{edit_ms / generate_ms:4.2f}x one generation ({generate_ms:.1f} ms)", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats")
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for name, make in MODELS.items():
            n_images = 4 if args.quick or device == "cpu" else 64
            bench(name, make, device, n_images, repeats=2 if args.quick else 3)


if __name__ == "__main__":
    main()
