"""Measure the bundled model against its renderer's ground truth (the numbers in README.md).

- reconstruction: mean absolute error per pixel (0-255) between G(seed) and render(seed), overall and per part,
  and a figure of faces with their error;
- clusters are parts: IoU of each named part of the committed catalog with the renderer's mask;
- the paper's Fig. 7 on ground truth, for every named part: In-MSE vs Out-MSE with the region of interest from
  the renderer's masks, sequential over epsilon against simultaneous over lambda;
- transfer, which the paper never measured: the share of the colour gap that an edit closes inside the part.
  The ideal edit is the renderer's own: the target's z with the part's colour coordinates taken from the
  reference (iris hue for eyes, lip colour for mouth, hair colour for hair, ...). The share is the projection of
  the edit's change in mean CIELAB colour over the target's part onto the ideal change, pooled over pairs;
- colours neither image has: how far (CIELAB ΔE) the edited part's mean colour lies from the nearest mix of the
  target's and the ideal edit's colours, and (v2, whose renderer says where the pupils are) the share of eye
  edits whose pupils stay dark.

All seeds are held out: training drew its z from a torch generator, and the catalog used seeds 0..n_images-1.

    python -m ganedit.bundled.evaluate [--model cartoon-faces-128] [--pairs 200] [--out docs]
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..catalog import layer_resolution, load_catalog, on_slider_grid, useful_ranges
from ..evaluation import PreparedSeeds, evaluate, plot_curves, random_pairs, rows_to_csv
from ..figures import edit_grid, enlarge, labelled, side_by_side, stacked
from ..imaging import to_uint8
from ..metrics import rgb_to_lab
from ..seeds import seeds_to_z
from . import RENDERERS
from .make_catalog import (HELD_OUT_SEEDS, bundled_generator, cluster_part_overlap, grid_ceiling_ious, ground_truth,
                           part_ious)

# part -> the renderer coordinates of its colour (the ideal edit takes them from the reference); the edit grid
# figure shows the first five
TRANSFER = {"eyes": ("iris_hue",), "mouth": ("lip_colour",), "hair": ("hair_colour",), "shirt": ("shirt_colour",),
            "glasses": ("glasses_colour",), "brows": ("brow_colour",), "facial_hair": ("facial_hair_colour",),
            "face": ("skin",), "background": ("background_hue", "background_lightness")}
# parts that only some faces have: measured on pairs that both have them
PRESENCE = {"glasses": "glasses", "earrings": "earrings", "facial_hair": "facial_hair"}
DARK_PUPIL_L = 25  # CIELAB lightness: the renderer's pupil ink is about 5, its lightest iris colours above 40
PUPIL_SHIFT = 0.25  # an eye edit may move the pupil this far (times the iris radius) with the reference's eye
PAIR_SEED = 7  # pairs come from seeds 10^6 .. 2 * 10^6
POOL_FACTOR = 6  # pairs drawn per pair wanted: enough for a part that both faces of about one pair in four have
SEED_OFFSET = 1_000_000
ERROR_GAIN = 4  # the samples figure shows |G - render| this many times brighter


def error_by_part(generated, rendered, masks, parts):
    """Per part the renderer's masks draw: the mean absolute error (0-255) over its pixels, and its share of
    the images' summed error (where the error is, not only how large it is)."""
    error = np.abs(generated.astype(float) - rendered.astype(float)).mean(-1)
    total = error.sum()
    return {part: {"mae": round(float(error[masks == k].mean()), 2),
                   "share": round(float(error[masks == k].sum() / total), 3)}
            for k, part in enumerate(parts) if (masks == k).any()}


@torch.no_grad()
def reconstruction(G, seeds, renderer):
    """G against the renderer on ``seeds``: the mean absolute error (0-255), that of the renderer's mean face,
    the error per part, and a figure of 8 faces: rendered, generated, and their difference."""
    z = seeds_to_z(seeds, G.z_dim)
    rendering = renderer.render(z)
    generated, rendered = to_uint8(G(z)), to_uint8(rendering.images)
    difference = np.abs(generated.astype(float) - rendered.astype(float))
    mae = difference.mean()
    baseline = np.abs(rendered.astype(float) - rendered.astype(float).mean(0)).mean()
    error_images = np.clip(ERROR_GAIN * difference, 0, 255).astype(np.uint8)
    rows = [(rendered, "render"), (generated, "generator"), (error_images, f"|error| x{ERROR_GAIN}")]
    grid = stacked([side_by_side([labelled(enlarge(image, 128), f"{name} {s}") for image, s in zip(images[:8], seeds)])
                    for images, name in rows])
    return mae, baseline, error_by_part(generated, rendered, rendering.masks.numpy(), renderer.PARTS), grid


def mean_lab(image, mask):
    return rgb_to_lab(image[mask]).mean(0) if mask.any() else np.zeros(3)


def off_path(before, ideal, after):
    """CIELAB distance from ``after`` to the nearest colour on the segment from ``before`` to ``ideal``."""
    step = ideal - before
    t = float(np.clip((after - before) @ step / (step @ step), 0, 1)) if step @ step > 0 else 0.0
    return float(np.linalg.norm(after - (before + t * step)))


def pupil_geometry(renderer, seeds, z_dim):
    """seed -> (eye centres [2, 2] as x, y in pixels, iris radius, pupil radius) for renderers that report them,
    else {}."""
    attributes = renderer.render(seeds_to_z(seeds, z_dim)).attributes
    if "pupil_radius" not in attributes:
        return {}
    return {seed: (centres, float(iris), float(pupil)) for seed, centres, iris, pupil in
            zip(seeds, attributes["eye_centres"], attributes["iris_radius"], attributes["pupil_radius"])}


def pupil_lightness(image, geometry):
    """CIELAB lightness of the lighter of the two pupils in ``image`` (H x W x 3 uint8), the target's ``geometry``
    (from ``pupil_geometry``) saying where they were.

    A pupil's lightness is the mean over a disc of 80% of its radius, at the darkest place within ``PUPIL_SHIFT``
    iris radii of where it was: an eye edit carries some of the reference's eye geometry and may move the pupil
    by a pixel or two (then the glint, which sits on the pupil's rim, falls where the pupil was), which is not a
    colour that neither image has; a pupil lightened in place is.
    """
    centres, iris_radius, pupil_radius = geometry
    lightness = torch.from_numpy(rgb_to_lab(image.reshape(-1, 3)).reshape(image.shape)[..., 0]).float()
    reach = math.ceil(0.8 * pupil_radius)
    offsets = torch.arange(-reach, reach + 1, dtype=torch.float32)
    disc = (offsets[None, :].square() + offsets[:, None].square() <= (0.8 * pupil_radius) ** 2).float()
    disc_mean = torch.nn.functional.conv2d(lightness[None, None], (disc / disc.sum())[None, None], padding=reach)[0, 0]
    x = torch.arange(image.shape[1], dtype=torch.float32) + 0.5
    y = torch.arange(image.shape[0], dtype=torch.float32) + 0.5
    # the window holds at least the pixel nearest the centre, however small the iris
    window = max(PUPIL_SHIFT * iris_radius, 0.71)
    return max(float(disc_mean[(x[None, :] - cx).square() + (y[:, None] - cy).square() <= window ** 2].min())
               for cx, cy in centres.tolist())


def ideal_edit(renderer, target_seed, reference_seed, part, z_dim):
    """The renderer's picture of the target with the part's colour coordinates taken from the reference."""
    z = seeds_to_z([target_seed], z_dim)
    coordinates = [renderer.COORDINATES[name] for name in TRANSFER[part]]
    z[0, coordinates] = seeds_to_z([reference_seed], z_dim)[0, coordinates]
    return to_uint8(renderer.render(z).images)[0]


def pairs_per_part(renderer, pool, parts, n_pairs, z_dim):
    """part -> the first ``n_pairs`` pairs of ``pool`` it can be measured on: every pair, or for an accessory
    (PRESENCE) those whose target and reference both wear it."""
    seeds = sorted({s for pair in pool for s in pair})
    z = seeds_to_z(seeds, z_dim)
    chosen = {}
    for part in parts:
        if part in PRESENCE:
            has = {s for s, v in zip(seeds, z[:, renderer.COORDINATES[PRESENCE[part]]]) if v > 0}
            chosen[part] = [p for p in pool if {*p} <= has][:n_pairs]
        else:
            chosen[part] = pool[:n_pairs]
    return chosen


def measure_pairs(G, renderer, catalog, pairs_of, steps):
    """Rows (part, method, value, in_mse, out_mse, transfer) averaged over each part's pairs (``pairs_of``: part ->
    pairs), ROI from the renderer's masks."""
    seeds = sorted({s for pairs in pairs_of.values() for pair in pairs for s in pair})
    masks = {s: m.numpy() for s, m in zip(seeds, renderer.render(seeds_to_z(seeds, G.z_dim)).masks)}
    pupils = pupil_geometry(renderer, seeds, G.z_dim)
    ideal = {(pair, part): ideal_edit(renderer, *pair, part, G.z_dim)
             for part, pairs in pairs_of.items() if part in TRANSFER for pair in pairs}

    def colour_measures(target, reference, part, result, roi):
        """The edit's change of the part's mean colour projected on the ideal change, that change squared, the
        distance off the target-to-ideal colour path, and whether the pupils stayed dark."""
        measures = {"pairs": 1}
        if part in TRANSFER:
            before, after = mean_lab(result.target, roi), mean_lab(result.result, roi)
            ideal_colour = mean_lab(ideal[(target, reference), part], roi)
            gap = ideal_colour - before
            measures.update(moved=float(gap @ (after - before)), gap2=float(gap @ gap),
                            off_path=off_path(before, ideal_colour, after))
        if part == "eyes" and pupils:
            measures["dark_pupils"] = float(pupil_lightness(result.result, pupils[target]) <= DARK_PUPIL_L)
        return measures

    rows, prepared = [], PreparedSeeds(G, catalog)  # each seed prepared once for every part
    for part, pairs in pairs_of.items():
        rows += evaluate(G, catalog, [part], pairs, steps=steps, pair_measures=colour_measures, prepared=prepared,
                         roi_for=lambda target, part: masks[target] == renderer.PARTS.index(part))
    for row in rows:
        moved, gap2, n = row.pop("moved", 0.0), row.pop("gap2", 0.0), int(row["pairs"])
        row["pairs"] = n
        row["transfer"] = moved / gap2 if gap2 else float("nan")
        row["off_path"] = row["off_path"] / n if "off_path" in row else float("nan")
        if "dark_pupils" in row:
            row["dark_pupils"] /= n
    return rows


def sequential_row(rows, part, epsilon):
    return next(r for r in rows if r["method"] == "sequential" and r["part"] == part and r["value"] == epsilon)


def saturating_epsilon(rows, parts=("eyes", "mouth"), share=0.99):
    """The smallest swept epsilon at which the sequential edits of ``parts`` change the inside (nearly) as much as
    at the largest: past it, a bigger budget only adds change outside the part."""
    epsilons = sorted({r["value"] for r in rows if r["method"] == "sequential"})

    def inside(part, value):
        return sequential_row(rows, part, value)["in_mse"]

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
    in_mse = sequential_row(rows, parts[0], epsilon)["in_mse"]
    lam = min((r for r in rows if r["method"] == "simultaneous" and r["part"] == parts[0]),
              key=lambda r: abs(r["in_mse"] - in_mse))["value"]
    return epsilon, lam


def part_defaults(rows, parts, epsilon, target_share=0.8, tolerance=0.02):
    """Per part whose colour gap the catalog-wide ``epsilon`` closes less than ``target_share`` of, or more than it
    needs: the smallest swept epsilon that closes ``target_share``, else the smallest that closes the most (to
    within ``tolerance``: a larger budget also changes more outside the part). Parts that ``epsilon`` serves
    exactly are left out."""
    chosen = {}
    for part in parts:
        sweep = sorted((r["value"], r["transfer"]) for r in rows
                       if r["method"] == "sequential" and r["part"] == part and not math.isnan(r["transfer"]))
        if not sweep:
            continue
        most = max(share for _, share in sweep)
        best = next(value for value, share in sweep if share >= min(target_share, most - tolerance))
        if best != epsilon:
            chosen[part] = best
    return chosen


def locality_advantage(rows, part):
    """Mean ratio Out-MSE(sequential) / Out-MSE(simultaneous) at equal In-MSE (simultaneous interpolated)."""
    seq = [r for r in rows if r["part"] == part and r["method"] == "sequential"]
    sim = sorted((r for r in rows if r["part"] == part and r["method"] == "simultaneous"), key=lambda r: r["in_mse"])
    xs, ys = [r["in_mse"] for r in sim], [r["out_mse"] for r in sim]
    ratios = [r["out_mse"] / np.interp(r["in_mse"], xs, ys) for r in seq if xs[0] <= r["in_mse"] <= xs[-1]]
    return float(np.mean(ratios)) if ratios else float("nan"), len(ratios)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=RENDERERS, default="cartoon-faces")
    parser.add_argument("--weights", help="weights file (default: the bundled one)")
    parser.add_argument("--catalog", help="catalog path stem (default: the model's, catalogs/MODEL)")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", default="docs")
    parser.add_argument("--store-defaults", action="store_true",
                        help="write the chosen epsilon and lambda into the catalog")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    renderer, prefix = RENDERERS[args.model], args.model.replace("-faces", "")
    G = bundled_generator(args.model, args.weights)
    catalog = load_catalog(args.catalog or args.model)
    catalog.check_fits(G)
    summary = {"parts_without_clusters": [p for p in renderer.PARTS if p not in catalog.labels]}
    parts = [p for p in renderer.PARTS if p in catalog.labels]  # Fig. 7 for every named part
    colour_parts = [p for p in TRANSFER if p in parts]

    mae, baseline, by_part, grid = reconstruction(G, list(HELD_OUT_SEEDS)[:64], renderer)
    summary["reconstruction_mae_0_255"] = {"generator": round(float(mae), 2),
                                           "mean_face_baseline": round(float(baseline), 2), "by_part": by_part}
    Image.fromarray(grid).save(out / f"{prefix}-samples.png")

    masks, activations = ground_truth(G, HELD_OUT_SEEDS, renderer)
    _, maps = cluster_part_overlap(catalog, masks, activations, renderer.PARTS)
    summary["iou"] = {p: round(v, 3) for p, v in part_ious(catalog.labels, maps, masks, renderer.PARTS).items()}
    summary["iou_best_at_the_layers_resolution"] = {
        p: round(v, 3) for p, v in grid_ceiling_ious(masks, layer_resolution(catalog.layer), renderer.PARTS).items()}

    # accessories are worn by about half the faces, so pairs that both wear one are drawn from a larger pool
    pool = [(t + SEED_OFFSET, r + SEED_OFFSET) for t, r in random_pairs(POOL_FACTOR * args.pairs, PAIR_SEED)]
    pairs_of = pairs_per_part(renderer, pool, parts, args.pairs, G.z_dim)
    fewer = {part: len(pairs) for part, pairs in pairs_of.items() if len(pairs) < args.pairs}
    if fewer:  # an accessory too rare in the pool: measured on the pairs there are, and said so
        summary["parts_measured_on_fewer_pairs"] = fewer
        print(f"only these pairs wear the part in a pool of {len(pool)}: {fewer} (asked for {args.pairs})")
    if args.store_defaults:
        # A first, coarse sweep over the whole range read off M finds where eye and mouth edits stop changing;
        # the stored range ends at 1.5 times that budget, and the fine sweep below runs over it.
        catalog.epsilon, catalog.lam = useful_ranges(catalog.contributions)
        coarse = measure_pairs(G, renderer, catalog, {part: pool[:30] for part in ("eyes", "mouth")}, 10)
        catalog.epsilon["max"] = float(math.ceil(1.5 * saturating_epsilon(coarse)))
        summary["epsilon_range"] = {"read_off_M": useful_ranges(catalog.contributions)[0]["max"],
                                    "stored_max": catalog.epsilon["max"]}
    rows = measure_pairs(G, renderer, catalog, pairs_of, args.steps)
    (out / f"{prefix}-fig7.csv").write_text(rows_to_csv(rows))
    (out / f"{prefix}-fig7.png").write_bytes(plot_curves(rows, f"{args.model} (ground-truth ROI)"))
    summary["fig7_out_mse_ratio_sequential_vs_simultaneous"] = {p: locality_advantage(rows, p) for p in parts}
    epsilon, lam = choose_defaults(rows)
    summary["chosen_defaults"] = {"epsilon": epsilon, "lam": lam}
    summary["at_default_epsilon"] = {
        r["part"]: {k: round(r[k], 3) for k in ("pairs", "in_mse", "out_mse", "transfer", "off_path", "dark_pupils")
                    if k in r}
        for r in rows if r["method"] == "sequential" and r["value"] == epsilon}
    own = part_defaults(rows, colour_parts, epsilon)
    summary["per_part_epsilon"] = own
    if args.store_defaults:
        catalog.epsilon["default"], catalog.lam["default"] = on_slider_grid(epsilon), on_slider_grid(lam)
        for part, value in own.items():
            catalog.set_default_epsilon(part, value)
        catalog.save(catalog.path)

    figure = edit_grid(G, catalog, 11, [3, 25, 42, 77], colour_parts[:5])
    Image.fromarray(figure).save(out / f"{prefix}-grid.png")
    print(json.dumps(summary, indent=2))
    (out / f"{prefix}-summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
