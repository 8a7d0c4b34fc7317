"""Query vectors q for conditioned style interpolation (Sec. 3.2.3).

Every query is built for one semantic part at one style layer from ``m``, the
per-channel contributions M[k', :] of that part (Eq. 1), values in [0, 1].
The edited style is then sigma_G = sigma_S + q * (sigma_R - sigma_S) (Eq. 3).
"""

from __future__ import annotations

import math

import torch

DEFAULT_THRESHOLD = 0.1  # rho / (1 + rho), the paper's value
THRESHOLD_RANGE = (0.0, 1.0)  # [low, high): a threshold of 1 would zero every channel


def _check_m(m) -> torch.Tensor:
    m = torch.as_tensor(m)
    if m.dim() != 1:
        raise ValueError(f"m must be a 1-D tensor of channel contributions, got shape {tuple(m.shape)}")
    if not m.is_floating_point():
        m = m.float()
    if torch.isnan(m).any():
        raise ValueError("m must not contain NaN")
    return m


def _check_non_negative(name: str, value: float, *, allow_inf: bool) -> None:
    if math.isnan(value) or value < 0 or (math.isinf(value) and not allow_inf):
        allowed = "a non-negative number (inf allowed)" if allow_inf else "a finite non-negative number"
        raise ValueError(f"{name} must be {allowed}, got {value}")


def simultaneous_query(m, lam: float) -> torch.Tensor:
    """Eq. 4: q_c = min(1, lam * m_c); lam >= 0 is the global strength."""
    m = _check_m(m)
    _check_non_negative("lam", lam, allow_inf=False)
    return (lam * m).clamp(0.0, 1.0)


def sequential_query(m, epsilon: float, threshold: float = DEFAULT_THRESHOLD) -> torch.Tensor:
    """Eq. 5, solved greedily as in the authors' code.

    Channels are taken in descending order of m (ties: lower index first) and
    set to 1 while the running sum of (1 - m) over the taken channels,
    including the one being considered, stays strictly below ``epsilon`` (the
    budget of effect outside the ROI for this layer). Channels with
    m <= ``threshold`` (= rho / (1 + rho), 0.1 in the paper) are then zeroed.
    """
    m = _check_m(m)
    _check_non_negative("epsilon", epsilon, allow_inf=True)
    low, high = THRESHOLD_RANGE
    if math.isnan(threshold) or not low <= threshold < high:
        raise ValueError(f"threshold must be in [{low:g}, {high:g}), got {threshold}")
    order = torch.sort(m, descending=True, stable=True).indices
    # float64 so long running sums do not drift across the budget boundary
    spent = torch.cumsum(1.0 - m[order].double(), dim=0)
    q = torch.zeros_like(m)
    q[order[spent < epsilon]] = 1.0
    q[m <= threshold] = 0.0
    return q


def global_query(m, lam: float) -> torch.Tensor:
    """Eq. 2: plain interpolation, q_c = lam on every channel, 0 <= lam <= 1."""
    m = _check_m(m)
    _check_non_negative("lam", lam, allow_inf=False)
    if lam > 1:
        raise ValueError(f"lam must be in [0, 1] for the global query, got {lam}")
    return torch.full_like(m, lam)
