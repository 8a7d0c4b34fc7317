"""Build the committed catalog of the bundled model and name its clusters from the renderer's ground truth.

Because the bundled generator reproduces ``render(z)``, the renderer's part masks say what every k-means
cluster covers: each cluster is named after the part it overlaps most (a part may take several clusters),
and the intersection-over-union of each named part with the renderer's mask measures whether the clusters
really are the parts. Candidate layers and k are tried and the best mean IoU wins.

    python -m ganedit.bundled.make_catalog            # writes catalogs/cartoon-faces.safetensors and .labels.json
    python -m ganedit.bundled.make_catalog --model cartoon-faces-128   # the 128 px model (renderer v2)
"""

import argparse
import itertools
from pathlib import Path

import torch

from ..catalog import build_catalog
from ..loading import load_generator
from ..seeds import seeds_to_z
from . import RENDERERS

SCORED_PARTS = {  # the parts whose mean IoU picks the layer and k
    "cartoon-faces": ("eyes", "mouth", "hair", "face", "background"),
    "cartoon-faces-128": ("eyes", "mouth", "hair", "face", "background", "shirt", "glasses"),
}
HELD_OUT_SEEDS = range(100_000, 100_200)  # never used for the catalog (seeds 0..n_images-1) nor in training
CANDIDATE_LAYERS = {  # around the paper's 32x32 layer; at 128 px the parts are twice as many pixels wide
    "cartoon-faces": ["16x16/Conv1", "32x32/Conv0_up", "32x32/Conv1", "64x64/Conv0_up"],
    "cartoon-faces-128": ["32x32/Conv0_up", "32x32/Conv1", "64x64/Conv0_up", "64x64/Conv1"],
}


def bundled_generator(model, weights=None):
    """The bundled model's weights, from the package (they may not be in the registry before they are released), or
    from ``weights`` (e.g. a training run's export)."""
    return load_generator(weights or Path(__file__).with_name(f"{model}.safetensors"))


@torch.no_grad()
def ground_truth(G, seeds, renderer):
    """(renderer masks [N, H, W], the generator's activations) for ``seeds``."""
    z = seeds_to_z(seeds, G.z_dim)
    masks = renderer.render(z).masks
    _, activations = G.synthesis(G.styles(G.mapping(z)), return_activations=True)
    return masks, activations


def cluster_part_overlap(catalog, masks, activations, parts):
    """[K, P] pixel counts: how often cluster k covers a pixel of renderer part p (at full resolution)."""
    maps = catalog.cluster_map(activations)
    size = masks.shape[-1]
    maps = torch.nn.functional.interpolate(maps[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()
    counts = torch.zeros(catalog.k, len(parts))
    counts.index_put_((maps.flatten(), masks.flatten()), torch.ones(maps.numel()), accumulate=True)
    return counts, maps


def name_clusters(counts, parts):
    """part name -> cluster ids: each cluster goes to the part it overlaps most."""
    owner = counts.argmax(1)
    return {parts[p]: [k for k in range(len(owner)) if owner[k] == p] for p in range(len(parts)) if (owner == p).any()}


def part_ious(labels, maps, masks, parts):
    ious = {}
    for p, part in enumerate(parts):
        ids = torch.tensor(labels.get(part, []), dtype=torch.long)
        predicted = torch.isin(maps, ids)
        truth = masks == p
        union = (predicted | truth).sum().item()
        ious[part] = (predicted & truth).sum().item() / union if union else 0.0
    return ious


def labelled_catalog(G, layer, k, n_images, masks, activations, parts):
    catalog = build_catalog(G, layer=layer, k=k, n_images=n_images, seed=0)
    counts, maps = cluster_part_overlap(catalog, masks, activations, parts)
    catalog.labels = name_clusters(counts, parts)
    return catalog, part_ious(catalog.labels, maps, masks, parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=RENDERERS, default="cartoon-faces")
    parser.add_argument("--weights", help="weights file (default: the bundled one)")
    parser.add_argument("--layers", nargs="+", help="candidate layers (default: around the 32x32 layer)")
    parser.add_argument("--k", nargs="+", type=int, default=[12, 20, 32])
    parser.add_argument("--n-images", type=int, default=300)
    parser.add_argument("--out", default=None, help="catalog path stem (default catalogs/MODEL)")
    args = parser.parse_args()
    G, parts = bundled_generator(args.model, args.weights), RENDERERS[args.model].PARTS
    masks, activations = ground_truth(G, HELD_OUT_SEEDS, RENDERERS[args.model])
    best = None
    for layer, k in itertools.product(args.layers or CANDIDATE_LAYERS[args.model], args.k):
        catalog, ious = labelled_catalog(G, layer, k, args.n_images, masks, activations, parts)
        score = sum(ious[p] for p in SCORED_PARTS[args.model]) / len(SCORED_PARTS[args.model])
        print(f"{layer:16s} k={k:3d} mean IoU {score:.3f}  " + "  ".join(f"{p} {v:.2f}" for p, v in ious.items()))
        if best is None or score > best[0]:
            best = (score, catalog, ious)
    score, catalog, ious = best
    catalog.save(args.out)
    print(f"saved {catalog.path} (layer {catalog.layer}, k={catalog.k}, mean IoU {score:.3f}); labels {catalog.labels}")


if __name__ == "__main__":
    main()
