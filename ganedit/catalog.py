"""Semantic catalogs (paper Sec. 3.1): spherical k-means clusters of one layer's activations, and for every
style layer the contribution M[cluster, channel] of each channel to each cluster (Eq. 1).

A catalog is stored as catalogs/<model>.safetensors (centroids and M), <model>.json (metadata) and
<model>.labels.json (part name -> cluster ids, edited by hand or by `python -m ganedit label`).
"""

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from . import __version__
from .files import atomic_path, write_bytes_atomically
from .kmeans import assign_clusters, fit_spherical_kmeans
from .seeds import seed_to_z

CATALOG_DIR = Path(os.environ.get("GANEDIT_CATALOG_DIR", Path(__file__).resolve().parent.parent / "catalogs"))
PAPER_THRESHOLD = 0.1  # rho / (1 + rho) in the paper


def default_layer(G):
    """The layer whose activations are clustered by default.

    The paper found the first 32x32 layer "most semantic" for its 256-1024 px models, so that is the default
    from 128 px up. A smaller generator has few layers, so we take the first layer at the middle rung of its
    resolution ladder (4 px ... full size), rounding up: 16 px for a 64 px generator.
    """
    if G.resolution >= 128:
        res = 32
    else:
        res = 2 ** math.ceil((2 + math.log2(G.resolution)) / 2)
    return next(s.activation for s in G.style_layers if s.resolution == res and s.activation != "4x4/Const")


def useful_ranges(contributions, threshold=PAPER_THRESHOLD):
    """Ranges of epsilon and lambda over which edits still change, read off M.

    Beyond the budget that takes every channel with m > threshold (for the most demanding cluster and layer), a
    larger epsilon changes nothing; beyond lambda = 1 / threshold, every such channel is already saturated.
    Defaults start at the middle; a model's measured defaults replace them (see the bundled model).
    """
    epsilon_max = 0.0
    for m in contributions.values():
        for row in m:
            kept = torch.sort(row[row > threshold], descending=True).values
            if len(kept):
                epsilon_max = max(epsilon_max, float((1 - kept).sum()))
    epsilon_max = math.ceil(epsilon_max * 1.05 * 100) / 100
    lam_max = 1 / threshold
    return (
        {"default": round(epsilon_max / 2, 2), "min": 0.0, "max": epsilon_max},
        {"default": round(lam_max / 4, 2), "min": 0.0, "max": lam_max},
    )


@dataclass
class Catalog:
    model: str
    fingerprint: str
    layer: str
    k: int
    n_images: int
    seed: int
    truncation_psi: float
    centroids: torch.Tensor  # [K, C] unit vectors
    contributions: dict  # style layer name -> M [K, C_layer]
    labels: dict = field(default_factory=dict)  # part name -> sorted list of cluster ids
    epsilon: dict = field(default_factory=dict)  # {"default", "min", "max"}
    lam: dict = field(default_factory=dict)
    crop: tuple | None = None
    version: str = __version__
    path: Path | None = None

    # ---- parts -------------------------------------------------------------------------------------------
    @property
    def parts(self):
        """Named parts first (in label-file order), then every unnamed cluster as 'cluster i'."""
        named = set(i for ids in self.labels.values() for i in ids)
        return list(self.labels) + [f"cluster {i}" for i in range(self.k) if i not in named]

    def part_clusters(self, part):
        if part in self.labels:
            return list(self.labels[part])
        if part.startswith("cluster ") and part[8:].isdigit() and int(part[8:]) < self.k:
            return [int(part[8:])]
        raise ValueError(f"unknown part {part!r} for model {self.model}; parts: {', '.join(self.parts)}")

    def part_contributions(self, part):
        """M of a part (its clusters' rows summed, since their memberships add up) for every style layer, in order."""
        ids = self.part_clusters(part)
        return [m[ids].sum(0).clamp(0, 1) for m in self.contributions.values()]

    def rename(self, ids, name):
        """Give clusters ``ids`` the part name ``name`` (taking them away from any other part)."""
        ids = sorted(set(int(i) for i in ids))
        if not name or not name.strip() or name.startswith("cluster "):
            raise ValueError("a part name must be non-empty and must not start with 'cluster '")
        bad = [i for i in ids if not 0 <= i < self.k]
        if not ids or bad:
            raise ValueError(f"cluster ids must be between 0 and {self.k - 1}, got {ids or 'none'}")
        labels = {}
        for part, members in self.labels.items():
            rest = [i for i in members if i not in ids]
            if rest and part != name:
                labels[part] = rest
        labels[name.strip()] = ids
        self.labels = labels

    # ---- cluster maps ------------------------------------------------------------------------------------
    def cluster_map(self, activations):
        """Cluster id of every position of the catalog layer: [N, H, W] from the synthesis activations dict."""
        act = activations[self.layer]
        n, c, h, w = act.shape
        vectors = act.permute(0, 2, 3, 1).reshape(-1, c)
        return assign_clusters(vectors, self.centroids.to(act.device)).reshape(n, h, w)

    def part_mask(self, cluster_map, part, size):
        """Bool [N, size, size]: where the part's clusters are, scaled (nearest) to ``size``."""
        ids = torch.tensor(self.part_clusters(part), device=cluster_map.device)
        mask = torch.isin(cluster_map, ids).float().unsqueeze(1)
        return F.interpolate(mask, size=(size, size), mode="nearest")[:, 0] > 0.5

    # ---- compatibility and files -------------------------------------------------------------------------
    def check_fits(self, G):
        layers = {s.name: s.channels for s in G.style_layers}
        mine = {name: m.shape[1] for name, m in self.contributions.items()}
        if layers != mine:
            raise ValueError(
                f"catalog {self.path or self.model} was built for a different architecture than generator "
                f"{getattr(G, 'name', '?')}: its style layers do not match"
            )
        fingerprint = getattr(G, "fingerprint", None)
        if fingerprint and fingerprint != self.fingerprint:
            raise ValueError(
                f"catalog {self.path or self.model} was built for weights {self.fingerprint}, but generator "
                f"{getattr(G, 'name', '?')} has weights {fingerprint}; build a catalog for it with `python -m ganedit catalog`"
            )

    def metadata(self):
        return {
            "model": self.model, "fingerprint": self.fingerprint, "layer": self.layer, "k": self.k,
            "n_images": self.n_images, "seed": self.seed, "truncation_psi": self.truncation_psi,
            "epsilon": self.epsilon, "lam": self.lam, "crop": list(self.crop) if self.crop else None,
            "ganedit_version": self.version, "style_layers": list(self.contributions),
        }

    def save(self, path=None):
        """Write <stem>.safetensors, <stem>.json and <stem>.labels.json, each atomically."""
        stem = _stem(path or CATALOG_DIR / self.model)
        stem.parent.mkdir(parents=True, exist_ok=True)
        tensors = {"centroids": self.centroids.contiguous()}
        tensors.update({f"M/{name}": m.contiguous() for name, m in self.contributions.items()})
        with atomic_path(stem.with_suffix(".safetensors")) as tmp:
            save_file(tensors, tmp)
        write_bytes_atomically(stem.with_suffix(".json"), json.dumps(self.metadata(), indent=2).encode())
        self.save_labels(stem)
        self.path = stem

    def save_labels(self, path=None):
        stem = _stem(path or self.path or CATALOG_DIR / self.model)
        write_bytes_atomically(Path(f"{stem}.labels.json"), json.dumps(self.labels, indent=2).encode())


def _stem(path):
    path = Path(path)
    for suffix in (".labels.json", ".safetensors", ".json"):
        if path.name.endswith(suffix):
            return path.with_name(path.name[: -len(suffix)])
    return path


def load_catalog(name_or_path):
    """A catalog from a path (any of its files, or the stem) or a model name looked up in catalogs/."""
    stem = _stem(name_or_path)
    if not stem.with_suffix(".json").exists():
        stem = CATALOG_DIR / str(name_or_path)
    if not stem.with_suffix(".json").exists():
        raise FileNotFoundError(
            f"no catalog {name_or_path!r}: looked for {stem}.json; build one with `python -m ganedit catalog --model NAME`"
        )
    try:
        meta = json.loads(stem.with_suffix(".json").read_text())
        tensors = load_file(str(stem.with_suffix(".safetensors")))
        labels_file = Path(f"{stem}.labels.json")
        labels = json.loads(labels_file.read_text()) if labels_file.exists() else {}
        contributions = {name: tensors[f"M/{name}"] for name in meta["style_layers"]}
        return Catalog(
            model=meta["model"], fingerprint=meta["fingerprint"], layer=meta["layer"], k=meta["k"],
            n_images=meta["n_images"], seed=meta["seed"], truncation_psi=meta["truncation_psi"],
            centroids=tensors["centroids"], contributions=contributions,
            labels={part: [int(i) for i in ids] for part, ids in labels.items()},
            epsilon=meta["epsilon"], lam=meta["lam"], crop=tuple(meta["crop"]) if meta.get("crop") else None,
            version=meta.get("ganedit_version", "?"), path=stem,
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"catalog {stem} is unreadable or incomplete: {err!r}") from None


def _crop_mask(crop, resolution, size, device):
    """Bool [size, 1]: the rows of a ``size``-row feature map that lie inside the display crop."""
    rows = torch.ones(size, 1, dtype=torch.bool, device=device)
    if crop is not None:
        centre = (torch.arange(size, device=device) + 0.5) * resolution / size
        rows[:, 0] = (centre >= crop[0]) & (centre < crop[1])
    return rows


def _batches(G, n_images, seed, batch_size, truncation_psi):
    for start in range(0, n_images, batch_size):
        seeds = range(seed + start, seed + min(start + batch_size, n_images))
        z = torch.cat([torch.from_numpy(seed_to_z(s, G.z_dim)) for s in seeds])
        w = G.mapping(z.to(G.device), truncation_psi)
        yield len(seeds), G.synthesis(G.styles(w), return_activations=True)[1]


@torch.no_grad()
def build_catalog(G, layer=None, k=12, n_images=200, seed=0, batch_size=8, progress=None, truncation_psi=None):
    """Cluster ``layer`` over ``n_images`` seeds (seed, seed+1, ...) and compute M for every style layer.

    Two passes over the same seeds: the first collects the clustered layer's vectors and per-channel
    statistics of every style layer's activation; the second, with the centroids known, accumulates Eq. 1.
    For a model with a display crop (the car model's black bands) only positions inside it count.
    """
    layer = layer or default_layer(G)
    info = getattr(G, "info", None)
    crop = info.crop if info else None
    psi = truncation_psi if truncation_psi is not None else (info.truncation_psi if info else 1.0)
    report = progress or (lambda fraction, message: None)
    styles = G.style_layers
    sums = {s.name: 0.0 for s in styles}
    squares = {s.name: 0.0 for s in styles}
    counts = {s.name: 0 for s in styles}
    vectors = []
    done = 0
    for n, acts in _batches(G, n_images, seed, batch_size, psi):
        for s in styles:
            a = acts[s.activation].double()
            rows = _crop_mask(crop, G.resolution, a.shape[2], a.device)
            a = a * rows
            sums[s.name] = sums[s.name] + a.sum(dim=(0, 2, 3))
            squares[s.name] = squares[s.name] + a.square().sum(dim=(0, 2, 3))
            counts[s.name] += n * int(rows.sum()) * a.shape[3]
        a = acts[layer]
        keep = _crop_mask(crop, G.resolution, a.shape[2], a.device)[:, 0]
        vectors.append(a[:, :, keep].permute(0, 2, 3, 1).reshape(-1, a.shape[1]).half().cpu())
        done += n
        report(0.3 * done / n_images, "collecting activations")
    centroids = fit_spherical_kmeans(
        torch.cat(vectors), k, seed=seed, device=G.device, progress=lambda f: report(0.3 + 0.3 * f, "k-means")
    )
    del vectors
    mean = {name: sums[name] / counts[name] for name in sums}
    std = {name: (squares[name] / counts[name] - mean[name].square()).clamp_min(1e-12).sqrt() for name in sums}
    totals = {s.name: 0.0 for s in styles}
    done = 0
    for n, acts in _batches(G, n_images, seed, batch_size, psi):
        a = acts[layer]
        labels = assign_clusters(a.permute(0, 2, 3, 1).reshape(-1, a.shape[1]), centroids.to(a.device))
        memberships = F.one_hot(labels, k).reshape(n, a.shape[2], a.shape[3], k).permute(0, 3, 1, 2).float()
        for s in styles:
            act = acts[s.activation].double()
            z = (act - mean[s.name].view(1, -1, 1, 1)) / std[s.name].view(1, -1, 1, 1)
            u = F.interpolate(memberships, size=act.shape[2:], mode="bilinear", align_corners=False).double()
            u = u * _crop_mask(crop, G.resolution, act.shape[2], act.device)
            totals[s.name] = totals[s.name] + torch.einsum("nkhw,nchw->kc", u, z.square())
        done += n
        report(0.6 + 0.4 * done / n_images, "measuring channel contributions")
    contributions = {name: (totals[name] / counts[name]).float().cpu() for name in totals}
    epsilon, lam = useful_ranges(contributions)
    return Catalog(
        model=getattr(G, "name", "generator"), fingerprint=getattr(G, "fingerprint", ""), layer=layer, k=k,
        n_images=n_images, seed=seed, truncation_psi=float(psi), centroids=centroids, contributions=contributions,
        epsilon=epsilon, lam=lam, crop=crop,
    )
