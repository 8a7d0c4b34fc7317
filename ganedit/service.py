"""Models, catalogs and prepared seeds kept ready between requests: bounded, thread-safe, keyed by model name.

Nothing here is per-user state: every call names its model, so concurrent users never overwrite each other.
Target and reference styles are cached per (model, seed, psi), so changing epsilon or lambda costs one synthesis.

A model that fails to load, for whatever reason, is remembered as unavailable with a short reason for visitors
(the operator's detail goes to the log), so one broken file never takes the server down and is not retried on
every request. Each model is loaded once even when many requests ask for it at the same moment.
"""

import logging
import threading
import time
from collections import OrderedDict

import torch

from .catalog import CATALOG_DIR, build_catalog, catalog_file, load_catalog
from .editing import edit_prepared, prepare_seed
from .figures import cluster_at, cluster_colours, edit_grid, seed_overlay
from .files import cache_dir
from .imaging import crop_rows
from .loading import ModelFileError, WeightsUnavailableError, availability, load_generator, model_info
from .networks.fast import OPTIMIZE_FROM_RESOLUTION

# A catalog built on first use when none is precomputed. On a CPU the rehearsal (bench/rehearsal.py) measured
# 1.7 (256 px) to 10.7 s (1024 px) per image and 9 GB peak at batches of 8, so a CPU server clusters fewer
# images in smaller batches; precomputed catalogs (`python -m ganedit prepare`) are better still.
FIRST_USE_CATALOG = dict(k=16, n_images=200, batch_size=8)
FIRST_USE_CATALOG_CPU = dict(k=16, n_images=48, batch_size=2)
FAILURE_MEMORY_S = 600  # a failed model is not tried again for this long (a download may work later)
log = logging.getLogger("ganedit")


class ModelUnavailableError(ValueError):
    """A model that can't be used on this server right now; the message is a short sentence for visitors."""


def _default_device():
    return "cuda" if torch.cuda.is_available() else "cpu"


def _visitor_reason(err):
    if isinstance(err, WeightsUnavailableError):
        return "its weights are not available on this server"
    if isinstance(err, ModelFileError):
        return "its weights file could not be read"
    return "it could not be loaded"


class BoundedCache:
    """At most ``size`` values, least recently used evicted first. ``get(key, make)`` runs ``make`` once per
    missing key even when many threads ask at the same moment: the others wait for that one result."""

    def __init__(self, size):
        self.size, self.items, self.pending = size, OrderedDict(), {}
        self.lock = threading.Lock()

    def __contains__(self, key):
        with self.lock:
            return key in self.items

    def get(self, key, make):
        while True:
            with self.lock:
                if key in self.items:
                    self.items.move_to_end(key)
                    return self.items[key]
                done = self.pending.get(key)
                mine = done is None
                if mine:
                    done = self.pending[key] = threading.Event()
            if not mine:
                done.wait()  # then look again: the value is there, or that attempt failed and we try ourselves
                continue
            try:
                value = make()
                with self.lock:
                    self.items[key] = value
                    while len(self.items) > self.size:
                        self.items.popitem(last=False)
                return value
            finally:
                with self.lock:
                    del self.pending[key]
                done.set()


class EditService:
    def __init__(self, max_models=2, max_seeds=128, device=None):
        self.device = device or _default_device()
        self._models = BoundedCache(max_models)
        self._seeds = BoundedCache(max_seeds)
        self._failures = {}  # model name -> (time, reason for visitors)

    # ---- models ------------------------------------------------------------------------------------------
    def model(self, name, progress=None):
        """(generator, catalog) for a registered model; loads, downloads or builds its catalog on first use.

        ValueError for an unknown name; ModelUnavailableError (a short reason) when it can't be used here.
        """
        model_info(name)  # unknown names fail here, with the list of known ones
        return self._models.get(name, lambda: self._load(name, progress))

    def catalog(self, name):
        return self.model(name)[1]

    def _load(self, name, progress):
        failed = self._failures.get(name)
        if failed and time.monotonic() - failed[0] < FAILURE_MEMORY_S:
            raise ModelUnavailableError(f"{name} is not available: {failed[1]}")
        try:
            report = progress and (lambda fraction: progress(fraction, "downloading weights"))
            G = load_generator(name, self.device, progress=report)
            if G.resolution >= OPTIMIZE_FROM_RESOLUTION:
                G.optimize(background=True)  # compiled in a worker; visitors get eager synthesis until it is warm
            return G, self._catalog(G, progress)
        except Exception as err:  # noqa: BLE001 - whatever breaks a model must not break the server
            log.warning("model %s could not be loaded: %s: %s", name, type(err).__name__, err)
            reason = _visitor_reason(err)
            self._failures[name] = (time.monotonic(), reason)
            raise ModelUnavailableError(f"{name} is not available: {reason}") from None

    def _catalog(self, G, progress):
        """The shipped catalog, else the one built here before, else a new one (built and kept in the cache).

        A cached catalog that no longer loads (an older format, a damaged file) is rebuilt: it was made here,
        without names, so nothing is lost. A shipped one that fails is an error for the operator.
        """
        shipped, cached = CATALOG_DIR / G.name, user_catalog_dir() / G.name
        if catalog_file(shipped).exists():
            catalog = load_catalog(shipped)
            catalog.check_fits(G)
            return catalog
        if catalog_file(cached).exists():
            try:
                catalog = load_catalog(cached)
                catalog.check_fits(G)
                return catalog
            except ValueError as err:
                log.warning("rebuilding the cached catalog of %s: %s", G.name, err)
        settings = FIRST_USE_CATALOG_CPU if G.device.type == "cpu" else FIRST_USE_CATALOG
        catalog = build_catalog(G, progress=progress, **settings)
        catalog.save(cached)
        return catalog

    def state(self, name):
        """('ready' | 'download' | 'unavailable', a short sentence for visitors), without loading anything."""
        failed = self._failures.get(name)
        if failed and time.monotonic() - failed[0] < FAILURE_MEMORY_S:
            return "unavailable", failed[1]
        if name in self._models:
            return "ready", "ready"
        state, _ = availability(name)
        info = model_info(name)
        if state == "download":
            size = f" (about {info.download_mb} MB)" if info.download_mb else ""
            return state, f"downloads on first use{size}"
        return state, "ready" if state == "ready" else "not available on this server"

    def has_catalog(self, name):
        """Whether a catalog of ``name`` exists already (shipped in catalogs/ or built here before)."""
        return any(catalog_file(place / name).exists() for place in (CATALOG_DIR, user_catalog_dir()))

    # ---- seeds and edits -----------------------------------------------------------------------------------
    def prepared(self, name, seed, truncation_psi=None):
        G, catalog = self.model(name)
        psi = model_info(name).truncation_psi if truncation_psi is None else truncation_psi
        return self._seeds.get((name, int(seed), float(psi)), lambda: prepare_seed(G, catalog, seed, psi))

    def edit(self, request):
        """The ganedit.EditResult of an EditRequest."""
        G, catalog = self.model(request.model)
        target = self.prepared(request.model, request.target, request.psi)
        reference = self.prepared(request.model, request.reference, request.psi)
        return edit_prepared(G, catalog, target, reference, request.part, request.method, request.epsilon,
                             request.lam, request.threshold)

    def grid(self, grid, progress=None):
        """The paper's Fig. 3 for a GridRequest, as one picture."""
        G, catalog = self.model(grid.model)
        return edit_grid(G, catalog, grid.target, grid.references, grid.parts, grid.method, grid.epsilon, grid.lam,
                         grid.psi, progress=progress)

    def overlays(self, request):
        """Target and reference with the catalog's parts over them, one colour each (the part's clusters outlined),
        cropped for display."""
        G, catalog = self.model(request.model)
        selected, colours = catalog.part_clusters(request.part), cluster_colours(catalog)
        return [seed_overlay(G, self.prepared(request.model, seed, request.psi), selected, colours)
                for seed in (request.target, request.reference)]

    def cluster_at(self, name, seed, truncation_psi, x, y, shown_size):
        """The catalog cluster under pixel (x, y) of a seed's picture shown at ``shown_size`` (width, height)."""
        G, _ = self.model(name)
        return cluster_at(G, self.prepared(name, seed, truncation_psi), x, y, shown_size)

    def picture(self, name, seed, truncation_psi=None):
        """One seed's picture, cropped for display (thumbnails of candidate references)."""
        G, _ = self.model(name)
        info = model_info(name)
        return crop_rows(self.prepared(name, seed, truncation_psi).image, info.crop, G.resolution)


def user_catalog_dir():
    return cache_dir() / "catalogs"
