"""Measure the bundled model against its renderer's ground truth (the numbers in README.md).

- reconstruction: mean absolute error per pixel (0-255) between G(seed) and render(seed), and a sample grid;
- clusters are parts: IoU of each named part of the committed catalog with the renderer's mask;
- the paper's Fig. 7 on ground truth: In-MSE vs Out-MSE with the region of interest from the renderer's masks,
  sequential over epsilon against simultaneous over lambda;
- transfer, which the paper never measured: the share of the colour gap that an edit closes inside the part.
  The ideal edit is the renderer's own: the target's z with the part's colour coordinate taken from the
  reference (iris hue for eyes, lip colour for mouth, hair colour for hair). The share is the projection of
  the edit's change in mean CIELAB colour over the target's part onto the ideal change, pooled over pairs.

All seeds are held out: training drew its z from a torch generator, and the catalog used seeds 0..n_images-1.

    python -m ganedit.bundled.evaluate [--pairs 200] [--out docs]
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..catalog import load_catalog, useful_ranges
from ..evaluation import evaluate, plot_curves, random_pairs, rows_to_csv
from ..figures import edit_grid, enlarge, labelled, side_by_side, stacked
from ..imaging import to_uint8
from ..loading import load_generator
from ..metrics import rgb_to_lab
from ..seeds import seeds_to_z
from .make_catalog import HELD_OUT_SEEDS, cluster_part_overlap, ground_truth, part_ious
from .renderer import COORDINATES, PARTS, render

TRANSFER = {"eyes": "iris_hue", "mouth": "lip_colour", "hair": "hair_colour"}
PAIR_SEED = 7  # pairs come from seeds 10^6 .. 2 * 10^6
SEED_OFFSET = 1_000_000


@torch.no_grad()
def reconstruction(G, seeds):
    z = seeds_to_z(seeds, G.z_dim)
    generated, rendered = to_uint8(G(z)), to_uint8(render(z).images)
    mae = np.abs(generated.astype(float) - rendered.astype(float)).mean()
    baseline = np.abs(rendered.astype(float) - rendered.astype(float).mean(0)).mean()
    grid = stacked([side_by_side([labelled(enlarge(r, 128), f"render {s}") for r, s in zip(rendered[:8], seeds)]),
                    side_by_side([labelled(enlarge(g, 128), f"generator {s}") for g, s in zip(generated[:8], seeds)])])
    return mae, baseline, grid


def mean_lab(image, mask):
    return rgb_to_lab(image[mask]).mean(0) if mask.any() else np.zeros(3)


@torch.no_grad()
def ideal_edit(G, target_seed, reference_seed, part):
    """The renderer's picture of the target with the part's colour coordinate taken from the reference."""
    z = seeds_to_z([target_seed], G.z_dim)
    i = COORDINATES[TRANSFER[part]]
    z[0, i] = seeds_to_z([reference_seed], G.z_dim)[0, i]
    return to_uint8(render(z).images)[0]


def measure_pairs(G, catalog, pairs, parts, steps):
    """Rows (part, method, value, in_mse, out_mse, transfer) averaged over pairs, ROI from the renderer's masks."""
    seeds = sorted({s for pair in pairs for s in pair})
    masks = {s: m.numpy() for s, m in zip(seeds, render(seeds_to_z(seeds, G.z_dim)).masks)}
    ideal = {(pair, part): ideal_edit(G, *pair, part) for pair in pairs for part in parts if part in TRANSFER}

    def colour_moved(target, reference, part, result, roi):
        """The edit's change of the part's mean colour projected on the ideal change, and that change squared."""
        if part not in TRANSFER:
            return {}
        before = mean_lab(result.target, roi)
        gap = mean_lab(ideal[(target, reference), part], roi) - before
        return {"moved": float(gap @ (mean_lab(result.result, roi) - before)), "gap2": float(gap @ gap)}

    rows = evaluate(G, catalog, parts, pairs, steps=steps, pair_measures=colour_moved,
                    roi_for=lambda target, part: masks[target] == PARTS.index(part))
    for row in rows:
        moved, gap2 = row.pop("moved", 0.0), row.pop("gap2", 0.0)
        row["transfer"] = moved / gap2 if gap2 else float("nan")
    return rows


def saturating_epsilon(rows, parts=("eyes", "mouth"), share=0.99):
    """The smallest swept epsilon at which the sequential edits of ``parts`` change the inside (nearly) as much as
    at the largest: past it, a bigger budget only adds change outside the part."""
    epsilons = sorted({r["value"] for r in rows if r["method"] == "sequential"})

    def inside(part, value):
        return next(r["in_mse"] for r in rows if r["method"] == "sequential" and r["part"] == part and r["value"] == value)

    return next(e for e in epsilons if all(inside(p, e) >= share * inside(p, epsilons[-1]) for p in parts))


def choose_defaults(rows, parts=("eyes", "mouth"), target_share=0.6):
    """The smallest epsilon whose sequential edits carry at least ``target_share`` of the colour gap for every
    one of ``parts`` (else the one with the best worst part), and the lambda whose simultaneous edits change the
    inside of the first part as much."""
    def share(method, value):
        return min(r["transfer"] for r in rows if r["method"] == method and r["value"] == value and r["part"] in parts)

    epsilons = sorted({r["value"] for r in rows if r["method"] == "sequential"})
    good = [e for e in epsilons if share("sequential", e) >= target_share]
    epsilon = good[0] if good else max(epsilons, key=lambda e: share("sequential", e))
    in_mse = next(r["in_mse"] for r in rows if r["method"] == "sequential" and r["value"] == epsilon and r["part"] == parts[0])
    lam = min((r for r in rows if r["method"] == "simultaneous" and r["part"] == parts[0]),
              key=lambda r: abs(r["in_mse"] - in_mse))["value"]
    return epsilon, lam


def locality_advantage(rows, part):
    """Mean ratio Out-MSE(sequential) / Out-MSE(simultaneous) at equal In-MSE (simultaneous interpolated)."""
    seq = [r for r in rows if r["part"] == part and r["method"] == "sequential"]
    sim = sorted((r for r in rows if r["part"] == part and r["method"] == "simultaneous"), key=lambda r: r["in_mse"])
    xs, ys = [r["in_mse"] for r in sim], [r["out_mse"] for r in sim]
    ratios = [r["out_mse"] / np.interp(r["in_mse"], xs, ys) for r in seq if xs[0] <= r["in_mse"] <= xs[-1]]
    return float(np.mean(ratios)) if ratios else float("nan"), len(ratios)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", default="docs")
    parser.add_argument("--store-defaults", action="store_true", help="write the chosen epsilon and lambda into the catalog")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    G = load_generator("cartoon-faces")
    catalog = load_catalog("cartoon-faces")
    catalog.check_fits(G)
    summary = {}

    mae, baseline, grid = reconstruction(G, list(HELD_OUT_SEEDS)[:64])
    summary["reconstruction_mae_0_255"] = {"generator": round(float(mae), 2), "mean_face_baseline": round(float(baseline), 2)}
    Image.fromarray(grid).save(out / "cartoon-samples.png")

    masks, activations = ground_truth(G, HELD_OUT_SEEDS)
    _, maps = cluster_part_overlap(catalog, masks, activations)
    summary["iou"] = {p: round(v, 3) for p, v in part_ious(catalog.labels, maps, masks).items()}

    pairs = [(t + SEED_OFFSET, r + SEED_OFFSET) for t, r in random_pairs(args.pairs, PAIR_SEED)]
    if args.store_defaults:
        # A first, coarse sweep over the whole range read off M finds where eye and mouth edits stop changing;
        # the stored range ends at 1.5 times that budget, and the fine sweep below runs over it.
        catalog.epsilon, catalog.lam = useful_ranges(catalog.contributions)
        coarse = measure_pairs(G, catalog, pairs[:30], ["eyes", "mouth"], 10)
        catalog.epsilon["max"] = float(math.ceil(1.5 * saturating_epsilon(coarse)))
        summary["epsilon_range"] = {"read_off_M": useful_ranges(catalog.contributions)[0]["max"],
                                    "stored_max": catalog.epsilon["max"]}
    rows = measure_pairs(G, catalog, pairs, ["eyes", "mouth", "hair"], args.steps)
    (out / "cartoon-fig7.csv").write_text(rows_to_csv(rows))
    (out / "cartoon-fig7.png").write_bytes(plot_curves(rows, "cartoon-faces (ground-truth ROI)"))
    summary["fig7_out_mse_ratio_sequential_vs_simultaneous"] = {p: locality_advantage(rows, p) for p in ["eyes", "mouth", "hair"]}
    epsilon, lam = choose_defaults(rows)
    summary["chosen_defaults"] = {"epsilon": epsilon, "lam": lam}
    summary["at_default_epsilon"] = {r["part"]: {k: round(r[k], 3) for k in ("in_mse", "out_mse", "transfer")}
                                     for r in rows if r["method"] == "sequential" and r["value"] == epsilon}
    if args.store_defaults:
        catalog.epsilon["default"], catalog.lam["default"] = epsilon, lam
        catalog.save(catalog.path)

    figure = edit_grid(G, catalog, 11, [3, 25, 42, 77], ["eyes", "mouth", "hair"])
    Image.fromarray(figure).save(out / "cartoon-grid.png")
    print(json.dumps(summary, indent=2))
    (out / "cartoon-summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
