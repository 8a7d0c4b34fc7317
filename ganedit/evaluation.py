"""The paper's Fig. 7 over many random pairs: mean difference maps per part (7a) and In-MSE vs Out-MSE
curves for simultaneous edits over lambda and sequential edits over epsilon (7b, 7c).

``evaluate``'s hooks let a caller measure against ground truth (the bundled model's renderer masks, and how much
of the colour gap an edit closes: ganedit/bundled/evaluate.py).
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


LAMBDA_HALVINGS = 3  # lambda values below the first step of its sweep: its first step, halved this many times


def sweep_values(catalog, method, steps=6):
    """The parameter values a curve runs over: ``steps`` values across the catalog's range of epsilon or lambda.

    Simultaneous edits saturate early (q = min(1, lambda M)): for a large part, lambda's first step already changes
    the inside more than sequential's largest budget, and the curves would not meet at any In-MSE. So lambda's
    sweep also runs below its first step, halving it ``LAMBDA_HALVINGS`` times.
    """
    if steps < 1:
        raise ValueError(f"steps (points per curve) must be at least 1, got {steps}")
    spec = catalog.epsilon if method == "sequential" else catalog.lam
    values = np.linspace(spec["min"], spec["max"], steps + 1)[1:]
    if method != "sequential":
        values = np.concatenate([values[0] / 2.0 ** np.arange(LAMBDA_HALVINGS, 0, -1), values])
    return [round(float(v), 3) for v in values]


class PreparedSeeds(dict):
    """seed -> PreparedSeed of one generator and catalog, each prepared once."""

    def __init__(self, G, catalog):
        super().__init__()
        self.G, self.catalog = G, catalog

    def __missing__(self, seed):
        self[seed] = prepare_seed(self.G, self.catalog, seed)
        return self[seed]


def evaluate(G, catalog, parts, pairs, methods=("sequential", "simultaneous"), steps=6, roi_for=None,
             pair_measures=None, progress=None, prepared=None):
    """Rows of (part, method, value, in_mse, out_mse) averaged over pairs, one per swept setting.

    ``roi_for(target_seed, part)`` replaces the catalog's region of interest (e.g. by ground truth);
    ``pair_measures(target_seed, reference_seed, part, result, roi)`` returns a dict of further numbers, which
    are summed over the pairs into the row. ``prepared`` (PreparedSeeds) lets several calls share prepared seeds.
    """
    if not parts:
        raise ValueError("no named parts to evaluate: name some first (python -m ganedit label)")
    if not pairs:
        raise ValueError("evaluate needs at least one (target, reference) pair, got none")
    prepared = PreparedSeeds(G, catalog) if prepared is None else prepared
    jobs = [(part, method, value) for part in parts for method in methods for value in sweep_values(catalog, method, steps)]
    rows = []
    for i, (part, method, value) in enumerate(jobs):
        ins, outs, sums = [], [], {}
        for target, reference in pairs:
            setting = {"epsilon": value} if method == "sequential" else {"lam": value}
            result = edit_prepared(G, catalog, prepared[target], prepared[reference], part, method, **setting)
            roi = roi_for(target, part) if roi_for else result.roi
            in_mse, out_mse = in_out_mse(result.difference, roi)
            ins.append(in_mse)
            outs.append(out_mse)
            for key, number in (pair_measures(target, reference, part, result, roi) if pair_measures else {}).items():
                sums[key] = sums.get(key, 0.0) + number
        rows.append({"part": part, "method": method, "value": value, "in_mse": float(np.mean(ins)),
                     "out_mse": float(np.mean(outs)), **sums})
        if progress:
            progress((i + 1) / len(jobs), f"{part} {method}")
    return rows


def mean_difference_maps(G, catalog, parts, pairs):
    """Each part's difference map averaged over pairs, at the catalog's default sequential setting (Fig. 7a)."""
    prepared = PreparedSeeds(G, catalog)
    return {part: np.mean([edit_prepared(G, catalog, prepared[t], prepared[r], part).difference for t, r in pairs],
                          axis=0) for part in parts}


def rows_to_csv(rows):
    out = io.StringIO()
    columns = list(dict.fromkeys(key for row in rows for key in row)) or ["part", "method", "value", "in_mse", "out_mse"]
    writer = csv.DictWriter(out, fieldnames=columns)  # rows of some parts carry measures others don't
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


PLOTS_PER_ROW = 5


def plot_curves(rows, title=""):
    """In-MSE (x) vs Out-MSE (y) per part and method, as PNG bytes (matplotlib, headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = list(dict.fromkeys(r["part"] for r in rows))
    columns = min(len(parts), PLOTS_PER_ROW)
    lines = -(-len(parts) // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(4 * columns, 3.6 * lines), squeeze=False)
    for ax in axes.flat[len(parts):]:
        ax.set_visible(False)
    for ax, part in zip(axes.flat, parts):
        for method, style in (("sequential", "o-"), ("simultaneous", "s--"), ("global", "^:")):
            curve = [r for r in rows if r["part"] == part and r["method"] == method]
            if curve:
                ax.plot([r["in_mse"] for r in curve], [r["out_mse"] for r in curve], style, label=method)
        ax.set_title(part)
        ax.set_xlabel("In-MSE (higher: more change in the part)")
        ax.set_ylabel("Out-MSE (lower: more local)")
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
