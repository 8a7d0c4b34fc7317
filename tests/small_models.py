"""Small random-weight generators and catalogs for method tests (seconds to build). A test helper."""

import torch

import ganedit
from ganedit.networks import StyleGAN, StyleGAN2

SMALL = dict(z_dim=16, w_dim=16, mapping_fmaps=16, fmap_base=128, fmap_max=32)


def small_generator(kind="stylegan2", resolution=64, seed=0):
    torch.manual_seed(seed)
    G = (StyleGAN2 if kind == "stylegan2" else StyleGAN)(dict(SMALL, resolution=resolution))
    return G.eval().requires_grad_(False)


def small_model(kind):
    G = small_generator(kind, 64 if kind == "stylegan2" else 128)
    catalog = ganedit.build_catalog(G, k=5, n_images=12, batch_size=4)
    catalog.rename([0, 1], "eyes")
    return G, catalog
