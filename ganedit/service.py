"""Models, catalogs and prepared seeds kept ready between requests: bounded, thread-safe, keyed by model name.

Nothing here is per-user state: every call names its model, so concurrent users never overwrite each other.
Target and reference styles are cached per (model, seed, psi), so changing epsilon or lambda costs one synthesis.
"""

import threading
from collections import OrderedDict

import torch

from .catalog import CATALOG_DIR, build_catalog, load_catalog
from .edit import edit_prepared, prepare_seed
from .loading import load_generator, model_info
from .loading.registry import cache_dir

FIRST_USE_CATALOG = dict(k=16, n_images=200)  # a catalog built on first use when none is precomputed


def _default_device():
    return "cuda" if torch.cuda.is_available() else "cpu"


class _LRU:
    def __init__(self, size):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key, make):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = make()
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


class EditService:
    def __init__(self, max_models=2, max_seeds=128, device=None):
        self.device = device or _default_device()
        self._models = _LRU(max_models)
        self._seeds = _LRU(max_seeds)
        self._load_lock = threading.Lock()  # one model load or catalog build at a time

    def model(self, name, progress=None):
        """(generator, catalog) for a registered model; loads, downloads or builds on first use."""
        model_info(name)  # unknown names fail here, with the list of known ones

        def load():
            with self._load_lock:
                G = load_generator(name, self.device, progress=progress and (lambda f: progress(f, "downloading weights")))
                return G, self._catalog(G, progress)

        return self._models.get(name, load)

    def _catalog(self, G, progress):
        for place in (CATALOG_DIR / G.name, _user_catalog_dir() / G.name):
            if place.with_suffix(".json").exists():
                catalog = load_catalog(place)
                catalog.check_fits(G)
                return catalog
        catalog = build_catalog(G, progress=progress, **FIRST_USE_CATALOG)
        catalog.save(_user_catalog_dir() / G.name)
        return catalog

    def prepared(self, name, seed, truncation_psi=None):
        G, catalog = self.model(name)
        psi = model_info(name).truncation_psi if truncation_psi is None else truncation_psi
        return self._seeds.get((name, int(seed), float(psi)), lambda: prepare_seed(G, catalog, seed, psi))

    def edit(self, name, target_seed, reference_seed, part, method="sequential", epsilon=None, lam=None,
             truncation_psi=None, threshold=0.1):
        G, catalog = self.model(name)
        target = self.prepared(name, target_seed, truncation_psi)
        reference = self.prepared(name, reference_seed, truncation_psi)
        return edit_prepared(G, catalog, target, reference, part, method, epsilon, lam, threshold)


def _user_catalog_dir():
    return cache_dir() / "catalogs"
