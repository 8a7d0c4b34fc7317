"""Local style transfer (paper Sec. 3.2): sigma_G = sigma_S + q * (sigma_R - sigma_S) per style layer, with the
query q chosen per part from the catalog, and the result measured as in Sec. 4.3.

``edit`` does everything for two seeds. Interactive callers split it: ``prepare_seed`` once per (seed, psi)
(mapping, styles, one synthesis, the cluster map), then ``edit_prepared`` per parameter change (one synthesis).
"""

from dataclasses import dataclass

import numpy as np
import torch

from .imaging import crop_rows, to_uint8
from .metrics import in_out_mse, inside_share, lab_squared_error
from .networks import Styles
from .query import DEFAULT_THRESHOLD, global_query, sequential_query, simultaneous_query
from .seeds import seeds_to_z

METHODS = ("sequential", "simultaneous", "global")
PSI_RANGE = (0.0, 2.0)  # truncation psi: 0 is the average picture, beyond 2 pictures fall apart


def _check_psi(value):
    low, high = PSI_RANGE
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"truncation_psi must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def query_for(m, method, epsilon=None, lam=None, threshold=DEFAULT_THRESHOLD):
    """The query vector q for contributions m (one part, one style layer)."""
    if method == "sequential":
        return sequential_query(m, epsilon, threshold)
    if method == "simultaneous":
        return simultaneous_query(m, lam)
    if method == "global":
        return global_query(m, lam)
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def part_queries(catalog, part, method, epsilon=None, lam=None, threshold=DEFAULT_THRESHOLD):
    """The query q of ``part`` for every style layer, in order."""
    return [query_for(m, method, epsilon, lam, threshold) for m in catalog.part_contributions(part)]


def interpolate_styles(target_styles, reference_styles, queries, interpolate_bias=False):
    """Per style layer sigma_S + q * (sigma_R - sigma_S) (Eq. 3). StyleGAN's AdaIN bias stays the target's unless
    ``interpolate_bias`` (then it moves with the same q)."""
    if not len(queries) == len(target_styles) == len(reference_styles):
        raise ValueError("target, reference and catalog must have the same number of style layers")
    # torch.lerp is exact at both ends: q = 0 gives the target's styles, q = 1 the reference's.
    scales = [torch.lerp(s, r, q.to(s)) for s, r, q in zip(target_styles.scales, reference_styles.scales, queries)]
    bias = target_styles.bias
    if bias is not None and interpolate_bias:
        bias = [torch.lerp(s, r, q.to(s)) for s, r, q in zip(bias, reference_styles.bias, queries)]
    return Styles(scales, bias)


def transfer(target_styles, reference_styles, catalog, part, method, epsilon=None, lam=None, threshold=DEFAULT_THRESHOLD,
             interpolate_bias=False):
    """Edited styles: ``interpolate_styles`` with q from ``method`` on the part's M."""
    return interpolate_styles(target_styles, reference_styles,
                              part_queries(catalog, part, method, epsilon, lam, threshold), interpolate_bias)


def why_nothing_moved(method, epsilon, lam, threshold=DEFAULT_THRESHOLD):
    """What to change when an edit moved no style channel (EditResult.channels_moved == 0)."""
    if method == "sequential":
        return (f"at ε {epsilon:g} the sequential query takes no channel of this part with M over the threshold "
                f"{threshold:g}: raise ε, lower the threshold, add clusters to the part or try simultaneous")
    if lam == 0:
        return "at λ 0 every channel keeps the target's style: raise λ"
    return "no channel has any M in this part: add clusters to the part"


@dataclass
class PreparedSeed:
    """What an edit needs of one seed, computed once: its styles, picture and catalog cluster map."""

    seed: int
    truncation_psi: float
    styles: Styles
    image: np.ndarray  # H x W x 3 uint8, full canvas
    cluster_map: torch.Tensor  # [h, w] cluster ids, finer than the catalog layer (Catalog.map_size)


@dataclass
class EditResult:
    target: np.ndarray  # H x W x 3 uint8, cropped for display
    reference: np.ndarray
    result: np.ndarray
    difference: np.ndarray  # H x W float: squared CIELAB error between target and result
    roi: np.ndarray  # H x W bool: the part in the target, from the catalog's cluster map
    in_mse: float
    out_mse: float
    inside_share: float  # share of the total difference that falls inside the part
    channels_moved: int  # style channels whose q is above 0, over all style layers


@torch.no_grad()
def prepare_seed(G, catalog, seed, truncation_psi=None, noise_mode="const"):
    psi = _check_psi(G.default_psi if truncation_psi is None else truncation_psi)
    z = seeds_to_z([seed], G.z_dim, G.device)
    styles = G.styles(G.mapping(z, psi))
    images, activations = G.synthesis(styles, noise_mode=noise_mode, return_activations=True)
    cluster_map = catalog.cluster_map(activations, catalog.map_size(G.resolution))[0]
    return PreparedSeed(seed, psi, styles, to_uint8(images)[0], cluster_map)


def edit_settings(catalog, part, method, epsilon=None, lam=None):
    """(epsilon, lam) an edit of ``part`` runs with: those given, else the part's default epsilon and the
    catalog's lambda (1 for the global method, which applies lambda everywhere)."""
    if epsilon is None:
        epsilon = catalog.default_epsilon(part)
    if lam is None:
        lam = 1.0 if method == "global" else catalog.lam["default"]
    return epsilon, lam


@torch.no_grad()
def edit_prepared(G, catalog, target, reference, part, method="sequential", epsilon=None, lam=None,
                  threshold=DEFAULT_THRESHOLD, interpolate_bias=False, noise_mode="const"):
    """One edit from two prepared seeds: the styles' transfer, one synthesis, then the metrics. The queries
    validate the parameters."""
    epsilon, lam = edit_settings(catalog, part, method, epsilon, lam)
    queries = part_queries(catalog, part, method, epsilon, lam, threshold)
    styles = interpolate_styles(target.styles, reference.styles, queries, interpolate_bias)
    result = to_uint8(G.synthesis(styles, noise_mode=noise_mode))[0]
    return measure(G, catalog, target, reference, result, part, sum(int((q > 0).sum()) for q in queries))


def measure(G, catalog, target, reference, result, part, channels_moved):
    """An EditResult: the three pictures cropped for display, the part's region in the target (from its cluster
    map), the CIELAB difference between target and result with In-/Out-MSE and the share inside the part, and
    how many style channels the edit moved."""
    roi = catalog.part_mask(target.cluster_map[None], part, G.resolution)[0].cpu().numpy()
    shown_target, shown_reference, shown_result, shown_roi = (
        crop_rows(a, G.crop, G.resolution) for a in (target.image, reference.image, result, roi))
    difference = lab_squared_error(shown_target, shown_result)
    in_mse, out_mse = in_out_mse(difference, shown_roi)
    return EditResult(shown_target, shown_reference, shown_result, difference, shown_roi, in_mse, out_mse,
                      inside_share(difference, shown_roi), channels_moved)


def grid_edits(G, catalog, target_seed, reference_seeds, parts, method="sequential", epsilon=None, lam=None,
               truncation_psi=None, progress=None):
    """The edits of the paper's Fig. 3: one row per part, one EditResult per reference (figures.grid_figure
    draws them). Without ``epsilon``, each part's row takes the part's own default."""
    target = prepare_seed(G, catalog, target_seed, truncation_psi)
    references = [prepare_seed(G, catalog, s, truncation_psi) for s in reference_seeds]
    rows = []
    for i, part in enumerate(parts):
        rows.append([edit_prepared(G, catalog, target, r, part, method, epsilon, lam) for r in references])
        if progress:
            progress((i + 1) / len(parts), f"grid row {part}")
    return rows


def edit(G, catalog, target_seed, reference_seed, part, method="sequential", epsilon=None, lam=None,
         truncation_psi=None, threshold=DEFAULT_THRESHOLD, interpolate_bias=False, noise_mode="const"):
    """Move the look of ``part`` from the reference seed's picture to the target seed's.

    epsilon and lam default to the catalog's; truncation_psi to the model's.
    """
    catalog.check_fits(G)
    target = prepare_seed(G, catalog, target_seed, truncation_psi, noise_mode)
    reference = prepare_seed(G, catalog, reference_seed, truncation_psi, noise_mode)
    return edit_prepared(G, catalog, target, reference, part, method, epsilon, lam, threshold, interpolate_bias,
                         noise_mode)
