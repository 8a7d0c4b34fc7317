import torch

from ganedit.kmeans import assign_clusters, fit_spherical_kmeans


def _directional_clusters(n_per_cluster=200, n_clusters=4, dim=16, seed=0):
    """Points scattered tightly around orthonormal directions, with random
    positive lengths spanning two orders of magnitude."""
    g = torch.Generator().manual_seed(seed)
    directions = torch.linalg.qr(torch.randn(dim, n_clusters, generator=g))[0].T
    labels = torch.arange(n_clusters).repeat_interleave(n_per_cluster)
    points = directions[labels] + 0.05 * torch.randn(len(labels), dim, generator=g)
    lengths = 10 ** (2 * torch.rand(len(labels), 1, generator=g) - 1)
    return points * lengths, labels, directions


def _same_partition(a, b):
    """True when the two labelings group the points identically."""
    return torch.equal(a[:, None] == a[None, :], b[:, None] == b[None, :])


def test_recovers_separated_directional_clusters():
    points, labels, directions = _directional_clusters()
    centroids = fit_spherical_kmeans(points, 4, seed=0, chunk_size=128)

    assert centroids.shape == (4, 16) and centroids.dtype == torch.float32
    assert centroids.device.type == "cpu"
    torch.testing.assert_close(centroids.norm(dim=1), torch.ones(4))
    # every true direction has exactly one centroid pointing at it
    cosine = directions @ centroids.T
    assert (cosine.max(dim=1).values > 0.99).all()
    assert len(set(cosine.argmax(dim=1).tolist())) == 4
    assert _same_partition(assign_clusters(points, centroids, chunk_size=100), labels)


def test_assignment_ignores_positive_rescaling():
    points, _, _ = _directional_clusters(n_per_cluster=100, seed=1)
    g = torch.Generator().manual_seed(2)
    rescaled = points * torch.exp(4 * torch.randn(len(points), 1, generator=g))
    centroids = fit_spherical_kmeans(points, 4, seed=3)
    assigned = assign_clusters(points, centroids)
    assert torch.equal(assign_clusters(rescaled, centroids), assigned)
    # rescaling the centroids does not matter either
    assert torch.equal(assign_clusters(points, 7.5 * centroids), assigned)
    # nor does rescaling the data before clustering
    assert _same_partition(assign_clusters(rescaled, fit_spherical_kmeans(rescaled, 4, seed=3)), assigned)


def test_deterministic_for_a_seed_and_accepts_float16():
    points, _, _ = _directional_clusters(n_per_cluster=150, n_clusters=6, seed=4)
    points = points.half()
    first = fit_spherical_kmeans(points, 5, seed=11, chunk_size=64)
    second = fit_spherical_kmeans(points, 5, seed=11, chunk_size=64)
    assert torch.equal(first, second)
    assert first.dtype == torch.float32


def test_empty_cluster_is_reseeded_with_worst_served_vector():
    # 2 heavily repeated directions and one lone vector. The k-means++ sample
    # (20k of 120001 vectors) misses the lone vector for this seed, so the
    # third initial centroid duplicates another one and its cluster is empty;
    # re-seeding it with the worst-served vector must recover the lone direction.
    dim = 8
    e = torch.eye(dim)
    points = torch.cat([e[0].repeat(60_000, 1), 3 * e[1].repeat(60_000, 1), 0.5 * e[2][None]])
    reported = []
    centroids = fit_spherical_kmeans(points, 3, seed=0, progress=reported.append)

    cosine = e[:3] @ centroids.T
    assert torch.allclose(cosine.max(dim=1).values, torch.ones(3))
    assert torch.equal(assign_clusters(points[-1:], centroids), cosine[2].argmax()[None])
    assert reported[-1] == 1.0 and len(reported) < 30  # stopped early once stable


def test_zero_vectors_are_harmless():
    points, _, _ = _directional_clusters(n_per_cluster=50, seed=5)
    points[:3] = 0
    centroids = fit_spherical_kmeans(points, 4, seed=0)
    assert torch.isfinite(centroids).all()
    assert assign_clusters(points, centroids).shape == (len(points),)
