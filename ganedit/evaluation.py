"""The paper's Fig. 7 over many random pairs: mean difference maps per part (7a) and In-MSE vs Out-MSE
curves for simultaneous edits over lambda and sequential edits over epsilon (7b, 7c).

``roi_for`` lets a caller replace the catalog's region of interest by ground truth (the bundled model's
renderer masks): In/Out-MSE are then measured against the true part.
"""

import csv
import io

import numpy as np

from .editing import edit_prepared, prepare_seed
from .metrics import in_out_mse


def random_pairs(n_pairs, seed=0, max_seed=1_000_000):
    """n_pairs distinct (target, reference) seed pairs drawn from a seeded generator."""
    rng = np.random.RandomState(seed)
    pairs = []
    while len(pairs) < n_pairs:
        target, reference = (int(s) for s in rng.randint(0, max_seed, size=2))
        if target != reference:
            pairs.append((target, reference))
    return pairs


def sweep_values(catalog, method, steps=6):
    """The parameter values a curve runs over: epsilon across the catalog's range, lambda across its range."""
    spec = catalog.epsilon if method == "sequential" else catalog.lam
    return [round(float(v), 3) for v in np.linspace(spec["min"], spec["max"], steps + 1)[1:]]


def evaluate(G, catalog, parts, pairs, methods=("sequential", "simultaneous"), steps=6, roi_for=None, progress=None):
    """Rows of (part, method, value, in_mse, out_mse) averaged over pairs, and each part's mean difference map
    at the catalog's default setting of the sequential method."""
    prepared = {}

    def seed_prepared(seed):
        if seed not in prepared:
            prepared[seed] = prepare_seed(G, catalog, seed)
        return prepared[seed]

    rows, mean_maps = [], {}
    jobs = [(part, method, value) for part in parts for method in methods for value in sweep_values(catalog, method, steps)]
    jobs += [(part, "default", None) for part in parts]
    for i, (part, method, value) in enumerate(jobs):
        ins, outs, maps = [], [], []
        for target, reference in pairs:
            kwargs = {"epsilon": value} if method == "sequential" else {"lam": value}
            run_method = method if method != "default" else "sequential"
            result = edit_prepared(G, catalog, seed_prepared(target), seed_prepared(reference), part, run_method,
                                   **(kwargs if method != "default" else {}))
            roi = roi_for(target, part) if roi_for else result.roi
            in_mse, out_mse = in_out_mse(result.difference, roi)
            ins.append(in_mse)
            outs.append(out_mse)
            maps.append(result.difference)
        if method == "default":
            mean_maps[part] = np.mean(maps, axis=0)
        else:
            rows.append({"part": part, "method": method, "value": value, "in_mse": float(np.mean(ins)),
                         "out_mse": float(np.mean(outs))})
        if progress:
            progress((i + 1) / len(jobs), f"{part} {method}")
    return rows, mean_maps


def rows_to_csv(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["part", "method", "value", "in_mse", "out_mse"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def plot_curves(rows, title=""):
    """In-MSE (x) vs Out-MSE (y) per part and method, as PNG bytes (matplotlib, headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = list(dict.fromkeys(r["part"] for r in rows))
    fig, axes = plt.subplots(1, len(parts), figsize=(4 * len(parts), 3.6), squeeze=False)
    for ax, part in zip(axes[0], parts):
        for method, style in (("sequential", "o-"), ("simultaneous", "s--"), ("global", "^:")):
            curve = [r for r in rows if r["part"] == part and r["method"] == method]
            if curve:
                ax.plot([r["in_mse"] for r in curve], [r["out_mse"] for r in curve], style, label=method)
        ax.set_title(f"{title} {part}".strip())
        ax.set_xlabel("In-MSE (higher: more change in the part)")
        ax.set_ylabel("Out-MSE (lower: more local)")
        ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
