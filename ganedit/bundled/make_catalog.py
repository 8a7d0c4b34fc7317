"""Build the committed catalog of the bundled model and name its clusters from the renderer's ground truth.

Because the bundled generator reproduces ``render(z)``, the renderer's part masks say what every k-means
cluster covers: clusters are named so that the parts match the masks best (a part may take several clusters,
see ``name_clusters``), and the intersection-over-union of each named part with the renderer's mask measures
whether the clusters really are the parts. Candidate layers and k are tried and the best mean IoU wins.

    python -m ganedit.bundled.make_catalog            # writes catalogs/cartoon-faces.safetensors and .labels.json
    python -m ganedit.bundled.make_catalog --model cartoon-faces-128   # the 128 px model (renderer v2)
"""

import argparse
import itertools
from pathlib import Path

import torch
import torch.nn.functional as F

from ..catalog import build_catalog, layer_resolution
from ..loading import load_generator
from ..query import DEFAULT_THRESHOLD
from ..seeds import seeds_to_z
from . import RENDERERS

SCORED_PARTS = {  # the parts whose mean IoU picks the layer and k
    "cartoon-faces": ("eyes", "mouth", "hair", "face", "background"),
    "cartoon-faces-128": ("eyes", "mouth", "hair", "face", "background", "shirt", "glasses"),
}
HELD_OUT_SEEDS = range(100_000, 100_200)  # measure the parts (evaluate.py): used neither here nor in training
NAMING_SEEDS = range(200_000, 200_200)  # name the clusters and pick the layer and k; the catalog uses 0..n-1
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
    """([K, P] pixel counts: how often cluster k covers a pixel of renderer part p, the cluster maps), with the maps
    drawn as the app draws them (Catalog.map_size) and scaled to the masks' size."""
    size, layer = masks.shape[-1], activations[catalog.layer]
    maps = torch.cat([catalog.cluster_map({catalog.layer: layer[i:i + 16]}, catalog.map_size(size))
                      for i in range(0, len(layer), 16)])  # 16 images at a time: the fine maps' vectors are large
    maps = torch.nn.functional.interpolate(maps[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()
    counts = torch.zeros(catalog.k, len(parts))
    counts.index_put_((maps.flatten(), masks.flatten()), torch.ones(maps.numel()), accumulate=True)
    return counts, maps


MIN_PART_IOU = 0.3  # a part whose clusters match its mask less well than this is not named


def _part_ious(owner, counts, n_parts):
    """[P] IoU of each part with its mask when cluster k belongs to part owner[k] (from the [K, P] overlap counts)."""
    member = torch.nn.functional.one_hot(owner, n_parts).double()
    overlap = (member * counts).sum(0)
    union = member.T @ counts.sum(1) + counts.sum(0) - overlap
    return torch.where(union > 0, overlap / union.clamp(min=1), torch.zeros_like(union))


def name_clusters(counts, parts, min_iou=MIN_PART_IOU, unnamed=()):
    """part name -> cluster ids, so that the named parts match the renderer's masks best.

    Each cluster starts with the part it overlaps most; then clusters move, one at a time, to the part that raises
    the sum of the parts' IoUs most, until no move helps. By pixels alone the face outweighs a cluster along the
    glasses' rims or the brows, so without the moves thin parts never get a cluster. A part left under ``min_iou``
    is not named (a "glasses" that is mostly cheek would mislead), nor are the parts in ``unnamed``; their
    clusters go to the remaining part they overlap most.
    """
    counts = counts.double()
    n_clusters, n_parts = counts.shape
    owner = counts.argmax(1)
    best = _part_ious(owner, counts, n_parts).sum()
    improved = True
    while improved:
        improved = False
        for k in range(n_clusters):
            trials = owner.repeat(n_parts, 1)
            trials[:, k] = torch.arange(n_parts)
            totals = torch.stack([_part_ious(trial, counts, n_parts).sum() for trial in trials])
            if totals.max() > best + 1e-9:
                owner, best, improved = trials[totals.argmax()], totals.max(), True
    kept = (_part_ious(owner, counts, n_parts) >= min_iou) & torch.tensor([p not in unnamed for p in parts])
    if not kept.any():
        return {}
    dropped = ~kept[owner]
    owner[dropped] = counts[dropped].masked_fill(~kept, -1).argmax(1)
    return {parts[p]: [k for k in range(n_clusters) if owner[k] == p] for p in range(n_parts) if (owner == p).any()}


def part_ious(labels, maps, masks, parts):
    ious = {}
    for p, part in enumerate(parts):
        ids = torch.tensor(labels.get(part, []), dtype=torch.long)
        predicted = torch.isin(maps, ids)
        truth = masks == p
        union = (predicted | truth).sum().item()
        ious[part] = (predicted & truth).sum().item() / union if union else 0.0
    return ious


def grid_ceiling_ious(masks, grid, parts):
    """Each part's IoU with its mask when every cell of a ``grid`` x ``grid`` map takes the part that covers most of
    it: about the best that clusters of a layer of that resolution can do, since their maps are scaled up to the
    masks' size by repeating cells."""
    factor = masks.shape[-1] // grid
    coverage = F.avg_pool2d(F.one_hot(masks, len(parts)).permute(0, 3, 1, 2).float(), factor)
    maps = coverage.argmax(1).repeat_interleave(factor, 1).repeat_interleave(factor, 2)
    return part_ious({part: [p] for p, part in enumerate(parts)}, maps, masks, parts)


def editable(catalog, part, threshold=DEFAULT_THRESHOLD):
    """Whether a sequential edit of ``part`` can move anything: some channel's M is over the threshold. A part too
    small to hold a tenth of any channel (earrings, in fine catalogs) would be a name that edits nothing."""
    return any(bool((m > threshold).any()) for m in catalog.part_contributions(part))


def labelled_catalog(G, layer, k, n_images, masks, activations, parts):
    """A catalog of ``layer`` with k clusters, named from the masks (parts no edit can move left unnamed), and
    its parts' IoUs."""
    catalog = build_catalog(G, layer=layer, k=k, n_images=n_images, seed=0)
    counts, maps = cluster_part_overlap(catalog, masks, activations, parts)
    catalog.labels = name_clusters(counts, parts)
    stuck = [part for part in catalog.labels if not editable(catalog, part)]
    if stuck:
        catalog.labels = name_clusters(counts, parts, unnamed=stuck)
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
    masks, activations = ground_truth(G, NAMING_SEEDS, RENDERERS[args.model])
    layers = args.layers or CANDIDATE_LAYERS[args.model]
    for grid in sorted({layer_resolution(layer) for layer in layers}):
        ceiling = grid_ceiling_ious(masks, grid, parts)
        print(f"the best a {grid}x{grid} layer can do: " + "  ".join(f"{p} {v:.2f}" for p, v in ceiling.items()))
    best = None
    for layer, k in itertools.product(layers, args.k):
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
