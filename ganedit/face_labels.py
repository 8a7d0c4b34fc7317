"""A first, automatic naming of clusters for aligned faces (FFHQ-style), from where each cluster sits.

FFHQ's alignment puts the eyes, nose and mouth at nearly fixed places in the frame, so a cluster whose
pixels gather there is probably that part. The rule, in frame coordinates (0..1, y down), on the mean
position and the area of each cluster over a few images:
- eyes: mean y in [0.38, 0.52], two-sided (its pixels on both halves of the face), area < 6%;
- nose: mean y in [0.50, 0.64] and mean x within 0.08 of the centre, area < 5%;
- mouth: mean y in [0.64, 0.80] and mean x within 0.10 of the centre, area < 6%;
- background: area > 15% with most pixels touching the frame's left/right edges.
Limits: it only knows faces aligned like FFHQ; hair, skin and ears are left unnamed ('cluster i'), and a
cluster that covers two parts at once gets the name of neither. Check the result with the app's overlay
and fix it with `python -m ganedit label`.
"""

import numpy as np
import torch

from .seeds import seeds_to_z


@torch.no_grad()
def cluster_statistics(G, catalog, seeds):
    """Per cluster: (mean y, mean x, area share, share of pixels left of centre, share touching the side edges)."""
    z = seeds_to_z(seeds, G.z_dim, G.device)
    _, activations = G.synthesis(G.styles(G.mapping(z, catalog.truncation_psi)), return_activations=True)
    maps = catalog.cluster_map(activations).cpu().numpy()
    n, h, w = maps.shape
    ys, xs = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing="ij")
    edge = np.zeros((h, w), bool)
    edge[:, : max(1, w // 16)] = edge[:, -max(1, w // 16):] = True
    stats = {}
    for k in range(catalog.k):
        member = maps == k
        count = member.sum()
        if count == 0:
            continue
        stats[k] = dict(
            y=float((member * ys).sum() / count), x=float((member * xs).sum() / count), area=float(count / maps.size),
            left=float((member * (xs < 0.5)).sum() / count), edge=float((member & edge).sum() / count),
        )
    return stats


def classify(s):
    """The part name the rule gives one cluster's statistics, or None."""
    two_sided = 0.25 < s["left"] < 0.75
    if 0.38 <= s["y"] <= 0.52 and two_sided and s["area"] < 0.06:
        return "eyes"
    if 0.50 <= s["y"] <= 0.64 and abs(s["x"] - 0.5) < 0.08 and s["area"] < 0.05:
        return "nose"
    if 0.64 <= s["y"] <= 0.80 and abs(s["x"] - 0.5) < 0.10 and s["area"] < 0.06:
        return "mouth"
    if s["area"] > 0.15 and s["edge"] > 0.15:
        return "background"
    return None


def auto_label_faces(G, catalog, seeds=range(16)):
    """part name -> cluster ids by the rule above (clusters the rule can't place stay unnamed)."""
    labels = {}
    for k, s in cluster_statistics(G, catalog, seeds).items():
        name = classify(s)
        if name:
            labels.setdefault(name, []).append(k)
    return labels
