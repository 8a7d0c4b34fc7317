"""Seeds as NVIDIA's scripts turn them into latents, so that a seed gives the picture NVIDIA's code gives."""

import numpy as np
import torch

MAX_SEED = 2**32 - 1


def seed_to_z(seed, z_dim):
    """The latent NVIDIA's scripts draw for ``seed``: ``np.random.RandomState(seed).randn(1, z_dim)`` as float32."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    return np.random.RandomState(int(seed)).randn(1, z_dim).astype(np.float32)


def seeds_to_z(seeds, z_dim, device="cpu"):
    """The latents of several seeds as one tensor [len(seeds), z_dim] on ``device``."""
    return torch.cat([torch.from_numpy(seed_to_z(seed, z_dim)) for seed in seeds]).to(device)
