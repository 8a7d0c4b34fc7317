"""Build the committed catalog of the bundled model and name its clusters from the renderer's ground truth.

Because the bundled generator reproduces ``render(z)``, the renderer's part masks say what every k-means
cluster covers: each cluster is named after the part it overlaps most (a part may take several clusters),
and the intersection-over-union of each named part with the renderer's mask measures whether the clusters
really are the parts. Candidate layers and k are tried and the best mean IoU wins.

    python -m ganedit.bundled.make_catalog            # writes catalogs/cartoon-faces.safetensors and .labels.json
"""

import argparse
import itertools

import torch

from ..catalog import build_catalog
from ..loading import load_generator
from ..seeds import seeds_to_z
from .renderer import PARTS, render

SCORED_PARTS = ("eyes", "mouth", "hair", "face", "background")
HELD_OUT_SEEDS = range(100_000, 100_200)  # never used for the catalog (seeds 0..n_images-1) nor in training


@torch.no_grad()
def ground_truth(G, seeds):
    """(renderer masks [N, 64, 64], the generator's activations) for ``seeds``."""
    z = seeds_to_z(seeds, G.z_dim)
    masks = render(z).masks
    _, activations = G.synthesis(G.styles(G.mapping(z)), return_activations=True)
    return masks, activations


def cluster_part_overlap(catalog, masks, activations):
    """[K, P] pixel counts: how often cluster k covers a pixel of renderer part p (at full resolution)."""
    maps = catalog.cluster_map(activations)
    size = masks.shape[-1]
    maps = torch.nn.functional.interpolate(maps[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()
    counts = torch.zeros(catalog.k, len(PARTS))
    counts.index_put_((maps.flatten(), masks.flatten()), torch.ones(maps.numel()), accumulate=True)
    return counts, maps


def name_clusters(counts):
    """part name -> cluster ids: each cluster goes to the part it overlaps most."""
    owner = counts.argmax(1)
    return {PARTS[p]: [k for k in range(len(owner)) if owner[k] == p] for p in range(len(PARTS)) if (owner == p).any()}


def part_ious(labels, maps, masks):
    ious = {}
    for p, part in enumerate(PARTS):
        ids = torch.tensor(labels.get(part, []), dtype=torch.long)
        predicted = torch.isin(maps, ids)
        truth = masks == p
        union = (predicted | truth).sum().item()
        ious[part] = (predicted & truth).sum().item() / union if union else 0.0
    return ious


def labelled_catalog(G, layer, k, n_images, masks, activations):
    catalog = build_catalog(G, layer=layer, k=k, n_images=n_images, seed=0)
    counts, maps = cluster_part_overlap(catalog, masks, activations)
    catalog.labels = name_clusters(counts)
    return catalog, part_ious(catalog.labels, maps, masks)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", nargs="+", default=["16x16/Conv1", "32x32/Conv0_up", "32x32/Conv1", "64x64/Conv0_up"])
    parser.add_argument("--k", nargs="+", type=int, default=[12, 20, 32])
    parser.add_argument("--n-images", type=int, default=300)
    parser.add_argument("--out", default=None, help="catalog path stem (default catalogs/cartoon-faces)")
    args = parser.parse_args()
    G = load_generator("cartoon-faces")
    masks, activations = ground_truth(G, HELD_OUT_SEEDS)
    best = None
    for layer, k in itertools.product(args.layers, args.k):
        catalog, ious = labelled_catalog(G, layer, k, args.n_images, masks, activations)
        score = sum(ious[p] for p in SCORED_PARTS) / len(SCORED_PARTS)
        print(f"{layer:16s} k={k:3d} mean IoU {score:.3f}  " + "  ".join(f"{p} {v:.2f}" for p, v in ious.items()))
        if best is None or score > best[0]:
            best = (score, catalog, ious)
    score, catalog, ious = best
    catalog.save(args.out)
    print(f"saved {catalog.path} (layer {catalog.layer}, k={catalog.k}, mean IoU {score:.3f}); labels {catalog.labels}")


if __name__ == "__main__":
    main()
