"""Spherical k-means (Sec. 3.1): clusters activation vectors by direction only.

Vectors are compared by cosine similarity, so rescaling a vector by a positive
factor never changes its cluster. The Lloyd passes stream over the data in
chunks, so memory stays bounded by ``chunk_size x C`` plus ``k x C`` whatever
the number of vectors (FFHQ-scale runs have ~300k x 512).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

_EPS = 1e-12
_INIT_SAMPLE_SIZE = 20_000


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Float32 rows scaled to unit norm; all-zero rows stay zero."""
    x = x.float()
    return x / x.norm(dim=1, keepdim=True).clamp_min(_EPS)


def _check_vectors(vectors: torch.Tensor) -> None:
    if not isinstance(vectors, torch.Tensor) or vectors.dim() != 2:
        raise ValueError("vectors must be a 2-D torch.Tensor [P, C]")
    if not vectors.is_floating_point():
        raise ValueError(f"vectors must be floating point, got {vectors.dtype}")


def _check_chunk_size(chunk_size: int) -> None:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")


def _nearest(chunk: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(best cosine, index of best centroid) for each unit row of ``chunk``."""
    return (chunk @ centroids.T).max(dim=1)


def fit_spherical_kmeans(
    vectors: torch.Tensor,
    k: int,
    *,
    seed: int = 0,
    n_iter: int = 30,
    chunk_size: int = 65536,
    device=None,
    progress: Optional[Callable[[float], None]] = None,
) -> torch.Tensor:
    """Cluster the rows of ``vectors`` [P, C] by direction.

    Returns unit-norm centroids [k, C], float32 on CPU. Chunks of ``vectors``
    are moved to ``device`` (default: the device of ``vectors``) for the
    computation. The result is deterministic for a given ``seed``. Lloyd
    iterations stop early once the assignments no longer change. An empty
    cluster is re-seeded with the vector that is worst served by its current
    centroid. ``progress``, if given, is called with the fraction done after
    each iteration.
    """
    _check_vectors(vectors)
    _check_chunk_size(chunk_size)
    n_points = vectors.shape[0]
    if not 1 <= k <= n_points:
        raise ValueError(f"k must be between 1 and the number of vectors ({n_points}), got {k}")
    if n_iter < 0:
        raise ValueError(f"n_iter must be >= 0, got {n_iter}")
    device = vectors.device if device is None else torch.device(device)

    generator = torch.Generator().manual_seed(seed)
    sample = torch.randperm(n_points, generator=generator)[:_INIT_SAMPLE_SIZE]
    sample_points = _unit(vectors[sample.to(vectors.device)].to(device))
    # scikit-learn's (greedy) k-means++ seeding; on unit vectors its squared Euclidean distance is 2 * (1 - cosine).
    # Imported here: it adds about a second to start-up, and only catalog building needs it.
    from sklearn.cluster import kmeans_plusplus

    seeds, _ = kmeans_plusplus(sample_points.cpu().double().numpy(), k, random_state=seed)
    centroids = _unit(torch.from_numpy(seeds).to(device))

    previous = None
    for iteration in range(n_iter):
        sums = torch.zeros_like(centroids)
        assignment = torch.empty(n_points, dtype=torch.long, device=device)
        best_cosine = torch.empty(n_points, dtype=torch.float32, device=device)
        for start in range(0, n_points, chunk_size):
            chunk = _unit(vectors[start:start + chunk_size].to(device))
            cosine, index = _nearest(chunk, centroids)
            assignment[start:start + len(chunk)] = index
            best_cosine[start:start + len(chunk)] = cosine
            # One-hot matmul instead of index_add_: deterministic on GPU too.
            one_hot = torch.nn.functional.one_hot(index, k).to(chunk.dtype)
            sums += one_hot.T @ chunk

        converged = previous is not None and torch.equal(assignment, previous)
        previous = assignment
        counts = torch.bincount(assignment, minlength=k)
        empty = torch.nonzero(counts == 0).flatten()
        centroids = _unit(sums)
        if len(empty) > 0:
            worst = torch.argsort(best_cosine, stable=True)[: len(empty)]
            centroids[empty] = _unit(vectors[worst.to(vectors.device)].to(device))
            converged = False
        if progress is not None:
            progress(1.0 if converged else (iteration + 1) / n_iter)
        if converged:
            break
    return centroids.cpu()


def assign_clusters(
    vectors: torch.Tensor,
    centroids: torch.Tensor,
    chunk_size: int = 65536,
    *,
    device=None,
) -> torch.Tensor:
    """Index [P] (int64) of the centroid with the highest cosine for each row.

    Computed chunk by chunk on ``device`` (default: the device of ``vectors``);
    the result lives on the device of ``vectors``.
    """
    _check_vectors(vectors)
    _check_chunk_size(chunk_size)
    if centroids.dim() != 2 or centroids.shape[1] != vectors.shape[1]:
        raise ValueError(
            f"centroids must be [k, {vectors.shape[1]}] to match vectors, got {tuple(centroids.shape)}"
        )
    device = vectors.device if device is None else torch.device(device)
    unit_centroids = _unit(centroids.to(device))
    labels = [
        _nearest(_unit(vectors[start:start + chunk_size].to(device)), unit_centroids)[1]
        for start in range(0, vectors.shape[0], chunk_size)
    ]
    if not labels:
        return torch.empty(0, dtype=torch.long, device=vectors.device)
    return torch.cat(labels).to(vectors.device)
