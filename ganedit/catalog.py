"""Semantic catalogs (paper Sec. 3.1): spherical k-means clusters of one layer's activations, and for every
style layer the contribution M[cluster, channel] of each channel to each cluster (Eq. 1).

A catalog is one file, catalogs/<model>.safetensors: centroids and M as tensors, and in the safetensors header
(key ``ganedit_catalog``) its metadata, a build id (a hash of tensors and metadata) and the part names it was
saved with. Written atomically, it is always one whole build. The part names people edit live beside it in
<model>.labels.json, {"catalog": <build id>, "parts": {name: [cluster ids]}} (by hand, `python -m ganedit label`
or ``Catalog.rename`` + ``save_labels``); they are used only with the build they name, since the same cluster id
is another region in another build.

Loading checks everything against everything else and refuses what does not fit with a ValueError that names
the file. Catalogs of ganedit 0.1 (tensors, <model>.json and plain labels, written one after another) are
refused too; `python -m ganedit upgrade-catalog NAME` converts one, keeping its numbers and part names.
"""

import hashlib
import json
import math
import numbers
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ._version import __version__
from .files import atomic_path, safe_name, write_bytes_atomically
from .kmeans import assign_clusters, fit_spherical_kmeans
from .networks.fast import OPTIMIZE_FROM_RESOLUTION
from .query import DEFAULT_THRESHOLD
from .seeds import seeds_to_z

CATALOG_DIR = Path(os.environ.get("GANEDIT_CATALOG_DIR") or Path(__file__).resolve().parent.parent / "catalogs")
FORMAT = 2  # 1: the three files of ganedit 0.1
HEADER_KEY = "ganedit_catalog"
CLUSTERS_PREFIX = "clusters:"  # a part given by its cluster ids, as text: 'clusters:3,7'
PART_NAME = re.compile(r"[\w\- ]{1,40}")  # also a file name once spaces become '_' (evaluate's maps)
MAP_UPSCALE = 4  # cluster maps for pictures are drawn at most this many times finer than the catalog layer
SLIDER_STEP = 0.1  # the step of the app's epsilon and lambda sliders; stored defaults lie on it (see on_slider_grid)


def on_slider_grid(value):
    """``value`` rounded up to a multiple of SLIDER_STEP, so that a slider shows a default exactly and its arrow
    keys move from it by whole steps (a browser snaps an off-grid value first)."""
    return round(math.ceil(round(value / SLIDER_STEP, 6)) * SLIDER_STEP, 6)


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


def layer_resolution(layer):
    """A generator layer's resolution from its name: "64x64/Conv0_up" -> 64."""
    return int(layer.split("x")[0])


def useful_ranges(contributions, threshold=DEFAULT_THRESHOLD):
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
    epsilon_max = on_slider_grid(epsilon_max * 1.05)  # the slider's range ends on its grid, like its defaults
    lam_max = 1 / threshold
    return (
        {"default": on_slider_grid(epsilon_max / 2), "min": 0.0, "max": epsilon_max},
        {"default": on_slider_grid(lam_max / 4), "min": 0.0, "max": lam_max},
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
    epsilon: dict = field(default_factory=dict)  # {"default", "min", "max"} and optionally "per_part" (see below)
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
        """The cluster ids of ``part``: a part name, 'cluster i', a set of ids as text ('clusters:3,7') or a list
        of ids ([3, 7]). ValueError for anything else, or ids outside 0..k-1."""
        if isinstance(part, (list, tuple)):
            _check_ids(list(dict.fromkeys(part)), self.k)
            return sorted(set(part))
        if not isinstance(part, str):
            raise ValueError(f"a part is a name or a list of cluster ids, got {part!r}")
        if part in self.labels:
            return list(self.labels[part])
        if part.startswith("cluster ") and part[8:].isdigit() and int(part[8:]) < self.k:
            return [int(part[8:])]
        if part.startswith(CLUSTERS_PREFIX):
            ids = part[len(CLUSTERS_PREFIX):].split(",")
            if all(i.strip().isdigit() and len(i.strip()) <= 4 for i in ids):
                return self.part_clusters([int(i) for i in ids])
        raise ValueError(f"unknown part {part!r} for model {self.model}; parts: {', '.join(self.parts)}, or "
                         f"'{CLUSTERS_PREFIX}' and cluster ids from 0 to {self.k - 1} (e.g. '{CLUSTERS_PREFIX}3,7')")

    def part_name(self, ids):
        """How a set of clusters is called: its part's name when it is exactly a named part (or one unnamed
        cluster), else 'clusters:3,7'."""
        ids = self.part_clusters(list(ids))
        for part in self.parts:
            if self.part_clusters(part) == ids:
                return part
        return CLUSTERS_PREFIX + ",".join(str(i) for i in ids)

    # ---- per-part defaults -----------------------------------------------------------------------------------
    # One epsilon can't serve every part (a part whose channels are shared with a larger one needs more budget).
    # A part's own default is stored under its cluster ids ("3,7"), so it follows the part through a rename and
    # stops applying when the part's clusters change.
    def default_epsilon(self, part):
        """The epsilon a part's edits start from: its own measured default if it has one, else the catalog's."""
        key = ",".join(str(i) for i in self.part_clusters(part))
        return self.epsilon.get("per_part", {}).get(key, self.epsilon["default"])

    def set_default_epsilon(self, part, value):
        """Give ``part`` its own default epsilon (within the catalog's range), rounded up onto the slider's grid."""
        if not (_is_number(value) and self.epsilon["min"] <= value <= self.epsilon["max"]):
            raise ValueError(f"a default epsilon must be a number from {self.epsilon['min']} to "
                             f"{self.epsilon['max']}, got {value!r}")
        key = ",".join(str(i) for i in self.part_clusters(part))
        value = min(on_slider_grid(value), self.epsilon["max"])
        self.epsilon = {**self.epsilon, "per_part": {**self.epsilon.get("per_part", {}), key: value}}

    def part_contributions(self, part):
        """M of a part (its clusters' rows summed, since their memberships add up) for every style layer, in order."""
        ids = self.part_clusters(part)
        return [m[ids].sum(0).clamp(0, 1) for m in self.contributions.values()]

    def rename(self, ids, name):
        """Give clusters ``ids`` (a list of ints) the part name ``name``, taking them away from any other part."""
        name = name.strip() if isinstance(name, str) else name
        _check_part_name(name)
        _check_ids(ids, self.k)
        ids = sorted(int(i) for i in ids)
        labels = {}
        for part, members in self.labels.items():
            rest = [i for i in members if i not in ids]
            if rest and part != name:
                labels[part] = rest
        labels[name] = ids
        self.labels = labels

    def merge(self, ids, name):
        """Add clusters ``ids`` to the part ``name`` (created if new), taking them away from any other part."""
        self.rename(sorted(set(ids) | set(self.labels.get(name, []))), name)

    def rename_part(self, old, new):
        """Call the named part ``old`` ``new`` instead, keeping its place in the list."""
        new = new.strip() if isinstance(new, str) else new
        _check_part_name(new)
        if old not in self.labels:
            raise ValueError(f"no named part {old!r} to rename; named parts: {', '.join(self.labels) or 'none'}")
        if new != old and new in self.labels:
            raise ValueError(f"a part is already called {new!r}; merge into it instead")
        self.labels = {new if part == old else part: ids for part, ids in self.labels.items()}

    # ---- cluster maps ------------------------------------------------------------------------------------
    def cluster_map(self, activations, size=None):
        """Cluster id of every position of the catalog layer: [N, H, W] from the synthesis activations dict; or,
        for a ``size`` above the layer's, [N, size, size]: the layer's activation vectors, scaled to unit length
        (all k-means looks at), interpolated bilinearly and then assigned, so that parts keep the outline of what
        they cover instead of the layer's square grid."""
        act = activations[self.layer]
        if size is not None and size > act.shape[-1]:
            unit = act / act.norm(dim=1, keepdim=True).clamp_min(1e-12)
            act = F.interpolate(unit, size=(size, size), mode="bilinear", align_corners=False)
        n, c, h, w = act.shape
        vectors = act.permute(0, 2, 3, 1).reshape(-1, c)
        return assign_clusters(vectors, self.centroids.to(act.device)).reshape(n, h, w)

    def map_size(self, resolution):
        """The size of the cluster map drawn for a picture of ``resolution`` (see cluster_map): the picture's, up
        to MAP_UPSCALE times the layer's (past that, a finer map would show little more and cost more)."""
        return min(resolution, MAP_UPSCALE * layer_resolution(self.layer))

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
                f"{G.name}: its style layers do not match"
            )
        if G.fingerprint and G.fingerprint != self.fingerprint:
            raise ValueError(
                f"catalog {self.path or self.model} was built for weights {self.fingerprint}, but generator "
                f"{G.name} has weights {G.fingerprint}; build a catalog for it with `python -m ganedit catalog`"
            )

    def metadata(self):
        return {
            "format": FORMAT, "model": self.model, "fingerprint": self.fingerprint, "layer": self.layer, "k": self.k,
            "n_images": self.n_images, "seed": self.seed, "truncation_psi": self.truncation_psi,
            "epsilon": self.epsilon, "lam": self.lam, "crop": list(self.crop) if self.crop else None,
            "ganedit_version": self.version, "style_layers": list(self.contributions),
        }

    def _tensors(self):
        tensors = {"centroids": self.centroids, **{f"M/{name}": m for name, m in self.contributions.items()}}
        return {name: t.detach().cpu().contiguous() for name, t in tensors.items()}

    @property
    def build(self):
        """The build id: a hash of tensors and metadata, what labels.json's cluster ids are tied to."""
        digest = hashlib.sha256(json.dumps(self.metadata(), sort_keys=True).encode())
        for name, t in sorted(self._tensors().items()):
            digest.update(f"\0{name}\0{t.dtype}\0{list(t.shape)}\0".encode())
            digest.update(t.numpy().tobytes())
        return digest.hexdigest()[:16]

    def save(self, path=None):
        """Write <stem>.safetensors (tensors, metadata, part names), then <stem>.labels.json; each atomically.

        The catalog file records the build named by the labels.json it is about to replace, so that a save stopped
        between the two writes is recognised on load: that labels.json then gives way to the part names inside
        the new file.
        """
        stem = _stem(path or CATALOG_DIR / safe_name(self.model))
        if _is_other_safetensors(catalog_file(stem)) and not Path(f"{stem}.json").exists():  # (0.1's: upgraded)
            raise ValueError(f"{catalog_file(stem)} is safetensors data but not a catalog (model weights?): not "
                             "replacing it; save the catalog under another name")
        labels = _checked_labels(self.labels, self.k)
        header = {**self.metadata(), "build": self.build, "replaces_labels_of": _labels_build(stem), "labels": labels}
        with atomic_path(catalog_file(stem)) as tmp:
            save_file(self._tensors(), tmp, metadata={HEADER_KEY: json.dumps(header)})
        self.path = stem
        self.save_labels(stem)

    def save_labels(self, path=None):
        """Write the part names to <stem>.labels.json atomically, for this build only.

        Refused when <stem>.safetensors holds another build (or none): the ids would name other regions there.
        """
        stem = _stem(path or self.path or CATALOG_DIR / safe_name(self.model))
        labels, build = _checked_labels(self.labels, self.k), self.build
        if _build_in(catalog_file(stem)) != build:
            raise ValueError(f"{catalog_file(stem)} does not hold this catalog (build {build}); save the catalog first")
        write_bytes_atomically(_labels_file(stem), json.dumps({"catalog": build, "parts": labels}, indent=2).encode())


# ---- files ---------------------------------------------------------------------------------------------------
def _stem(path):
    path = Path(path)
    for suffix in (".labels.json", ".safetensors", ".json"):
        if path.name.endswith(suffix):
            return path.with_name(path.name[: -len(suffix)])
    return path


def catalog_file(path):
    """The file that holds the catalog at ``path`` (its stem or any of its files)."""
    stem = _stem(path)
    return stem.with_name(f"{stem.name}.safetensors")


def _labels_file(stem):
    return stem.with_name(f"{stem.name}.labels.json")


def _locate(name_or_path, suffix=".safetensors"):
    """The stem of a catalog given as a path (its stem or any of its files) or as a bare name.

    A bare name is looked for in CATALOG_DIR before the current folder: weights files end in .safetensors too, so
    ./<model>.safetensors may well be the model's weights.
    """
    path = _stem(name_or_path)
    places = [CATALOG_DIR / path.name, path] if str(path) == path.name else [path]
    for stem in places:
        if stem.with_name(stem.name + suffix).exists():
            return stem
    raise FileNotFoundError(
        f"no catalog {name_or_path!r}: looked for {' and '.join(f'{p}{suffix}' for p in places)}; "
        "build one with `python -m ganedit catalog --model NAME`"
    )


def _refused(file, problem, model=None, fix=""):
    """The ValueError for a catalog that can't be used: its file, what is wrong, and how to repair it."""
    model = model if isinstance(model, str) and re.fullmatch(r"[\w.\-]{1,80}", model) else "NAME"  # shown as a command
    return ValueError(
        f"catalog file {file} is refused: {problem}. To repair it: {fix}rebuild the catalog with "
        f"`python -m ganedit catalog --model {model} --force`."
    )


def _read(file):
    """(the text of our header entry, or None, and the tensors) of a safetensors file."""
    try:
        with safe_open(file, "pt") as f:
            return (f.metadata() or {}).get(HEADER_KEY), {name: f.get_tensor(name) for name in f.keys()}
    except (OSError, SafetensorError) as err:
        raise _refused(file, f"it is not readable safetensors data ({err})") from None


def _is_other_safetensors(file):
    """True for a readable safetensors file without a catalog header (a damaged catalog may be replaced, and a
    catalog of ganedit 0.1 has its header in <stem>.json)."""
    try:
        with safe_open(file, "pt") as f:
            return HEADER_KEY not in (f.metadata() or {})
    except (OSError, SafetensorError):
        return False


def _labels_build(stem):
    """The build id that <stem>.labels.json names, or None (no such file, unreadable, or ganedit 0.1's)."""
    try:
        doc = json.loads(_labels_file(stem).read_text())
        return doc["catalog"] if isinstance(doc, dict) and isinstance(doc.get("catalog"), str) else None
    except (OSError, ValueError, RecursionError):
        return None


def _build_in(file):
    """The build id of the catalog in ``file``, or None (no file, not a current catalog, unreadable)."""
    try:
        with safe_open(file, "pt") as f:
            return json.loads((f.metadata() or {})[HEADER_KEY])["build"]
    except (OSError, SafetensorError, ValueError, KeyError, TypeError):
        return None


def _unique_keys(pairs):
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a name appears twice: {sorted(k for k in set(keys) if keys.count(k) > 1)}")
    return dict(pairs)


def _parse_json(text):
    """JSON whose objects name each thing once (a second "eyes" must not silently win); too deep is malformed too."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except (json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"it is not valid JSON ({str(err) or 'nested too deeply'})") from None


# ---- checks (each raises a ValueError saying what is wrong) -------------------------------------------------
def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_part_name(name):
    plain = isinstance(name, str) and PART_NAME.fullmatch(name) and name == name.strip()
    if not plain or name.startswith("cluster "):
        raise ValueError(f"part name {name!r} is not 1 to 40 letters, digits, spaces, '-' or '_' (no space at either "
                         "end, and not starting with 'cluster ', which names unnamed clusters)")


def _check_ids(ids, k):
    if (not isinstance(ids, (list, tuple)) or not ids or not all(_is_int(i) and 0 <= i < k for i in ids)
            or len(set(ids)) != len(ids)):
        raise ValueError(f"cluster ids must be a non-empty list of distinct integers from 0 to {k - 1}, got {ids!r}")


def _checked_labels(parts, k):
    """part name -> sorted cluster ids, after checking names and ids: each cluster belongs to one part at most."""
    if not isinstance(parts, dict):
        raise ValueError(f"the part names must be an object of name -> cluster ids, got {parts!r}")
    seen = []
    for name, ids in parts.items():
        _check_part_name(name)
        _check_ids(ids, k)
        seen += ids
    repeated = sorted(set(i for i in seen if seen.count(i) > 1))
    if repeated:
        raise ValueError(f"clusters {repeated} are given to more than one part")
    return {name: sorted(int(i) for i in ids) for name, ids in parts.items()}


def _check_range(name, spec):
    values = [spec.get(key) if isinstance(spec, dict) else None for key in ("min", "default", "max")]
    if not all(map(_is_number, values)) or sorted(values) != values:
        raise ValueError(f"{name} must be {{'min', 'default', 'max'}}: finite numbers in that order, got {spec!r}")


def _check_part_defaults(epsilon, k):
    """Per-part defaults: at most one per subset of clusters named as sorted ids ("3,7"), each within the range."""
    per_part = epsilon.get("per_part", {})
    if not isinstance(per_part, dict) or len(per_part) > k:
        raise ValueError(f"epsilon's per_part must be an object of at most k = {k} entries, got {per_part!r:.80}")
    for key, value in per_part.items():
        ids = key.split(",")
        if not (all(i.isdigit() and len(i) <= 4 for i in ids) and [int(i) for i in ids] == sorted({int(i) for i in ids})
                and int(ids[-1]) < k):
            raise ValueError(f"epsilon's per_part key {key!r:.40} is not sorted cluster ids below k = {k} ('3,7')")
        if not (_is_number(value) and epsilon["min"] <= value <= epsilon["max"]):
            raise ValueError(f"epsilon's per_part default {value!r:.40} for clusters {key} is outside "
                             f"[{epsilon['min']}, {epsilon['max']}]")


FIELDS = dict(model=str, fingerprint=str, layer=str, k=int, n_images=int, seed=int, truncation_psi=float,
              epsilon=dict, lam=dict, style_layers=list, ganedit_version=str)


def _checked_catalog(meta, tensors):
    """A Catalog (without part names) from metadata and tensors, once each agrees with the other."""
    if not isinstance(meta, dict):
        raise ValueError(f"its metadata is not an object: {meta!r}")
    for name, kind in FIELDS.items():
        value = meta.get(name)
        if not (_is_number(value) if kind is float else isinstance(value, kind) and not isinstance(value, bool)):
            raise ValueError(f"metadata {name!r} must be {kind.__name__}, got {value!r}")
    k, layers, crop = meta["k"], meta["style_layers"], meta.get("crop")
    if k < 1 or not layers or not all(isinstance(n, str) for n in layers) or len(set(layers)) != len(layers):
        raise ValueError(f"k = {k!r} or the style layers {layers!r} are not usable")
    _check_range("epsilon", meta["epsilon"])
    _check_part_defaults(meta["epsilon"], k)
    _check_range("lam", meta["lam"])
    rows = isinstance(crop, list) and len(crop) == 2 and all(map(_is_int, crop)) and 0 <= crop[0] < crop[1]
    if crop is not None and not rows:
        raise ValueError(f"crop must be null or [first row, end row], got {crop!r}")
    expected = {"centroids", *(f"M/{name}" for name in layers)}
    if set(tensors) != expected:
        raise ValueError(f"its tensors do not match its style layers: missing {sorted(expected - set(tensors))}, "
                         f"unexpected {sorted(set(tensors) - expected)}")
    for name, t in tensors.items():
        if t.dtype != torch.float32 or t.dim() != 2 or t.shape[0] != k or not torch.isfinite(t).all():
            raise ValueError(f"tensor {name} must be finite float32 [k = {k}, channels], got {t.dtype} {list(t.shape)}")
        if name != "centroids" and (t < 0).any():
            raise ValueError(f"tensor {name} holds negative contributions")
    return Catalog(
        model=meta["model"], fingerprint=meta["fingerprint"], layer=meta["layer"], k=k, n_images=meta["n_images"],
        seed=meta["seed"], truncation_psi=meta["truncation_psi"], centroids=tensors["centroids"],
        contributions={name: tensors[f"M/{name}"] for name in layers}, epsilon=meta["epsilon"], lam=meta["lam"],
        crop=tuple(crop) if crop else None, version=meta["ganedit_version"],
    )


# ---- loading -------------------------------------------------------------------------------------------------
def load_catalog(name_or_path):
    """A catalog from a path (its stem or any of its files) or a model name (CATALOG_DIR, then the current folder)."""
    stem = _locate(name_or_path)
    file = catalog_file(stem)
    text, tensors = _read(file)
    if text is None and Path(f"{stem}.json").exists():
        raise _refused(file, "it is a catalog of ganedit 0.1, whose three files could mix two builds",
                       fix=f"convert it, keeping its part names, with `python -m ganedit upgrade-catalog {stem}`, or ")
    header = None
    try:
        header = _parse_json(text or "null")
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"its header has no '{HEADER_KEY}' object of format {FORMAT}")
        catalog = _checked_catalog(header, tensors)
        if header.get("build") != catalog.build:
            raise ValueError(f"its build id {header.get('build')!r} does not match its content, "
                             f"build {catalog.build} (edited or damaged)")
        catalog.labels = _checked_labels(header.get("labels"), catalog.k)
    except ValueError as err:
        raise _refused(file, err, header.get("model") if isinstance(header, dict) else None) from None
    catalog.labels = _labels_for(catalog, stem, header.get("replaces_labels_of"))
    catalog.path = stem
    return catalog


def _labels_for(catalog, stem, replaced):
    """The part names of a loaded catalog: labels.json's when made for this build, else those saved inside it."""
    file = _labels_file(stem)
    if not file.exists():
        return catalog.labels
    fix = f"correct or delete {file.name} (the part names saved in the catalog file are then used), or "
    try:
        doc = _parse_json(file.read_text())
        if not isinstance(doc, dict) or set(doc) != {"catalog", "parts"}:
            raise ValueError('it is not {"catalog": build id, "parts": {name: [cluster ids]}} '
                             "(the labels of ganedit 0.1 name no build)")
        if doc["catalog"] == catalog.build:
            return _checked_labels(doc["parts"], catalog.k)
        if replaced is not None and doc["catalog"] == replaced:
            return catalog.labels  # a save stopped after writing the catalog file, before its labels
        raise ValueError(f"it was made for catalog build {doc['catalog']!r}, not for {catalog_file(stem).name}, "
                         f"build {catalog.build}: its cluster ids would name other regions")
    except (OSError, ValueError) as err:
        raise _refused(file, err, catalog.model, fix) from None


def upgrade_catalog(name_or_path):
    """Convert a catalog of ganedit 0.1 (<stem>.safetensors, <stem>.json, plain <stem>.labels.json) to the current
    format, keeping its numbers and part names; <stem>.json is removed once the new files are written."""
    stem = _locate(name_or_path, ".json")
    old, labels_file = Path(f"{stem}.json"), _labels_file(stem)
    try:
        catalog = _checked_catalog(_parse_json(old.read_text()), load_file(str(catalog_file(stem))))
        labels = _parse_json(labels_file.read_text()) if labels_file.exists() else {}
        catalog.labels = _checked_labels(labels, catalog.k)
    except (OSError, SafetensorError, ValueError) as err:
        raise _refused(old, f"it is not a whole catalog of ganedit 0.1 ({err})") from None
    catalog.save(stem)
    old.unlink()
    return catalog


def _crop_mask(crop, resolution, size, device):
    """Bool [size, 1]: the rows of a ``size``-row feature map that lie inside the display crop."""
    rows = torch.ones(size, 1, dtype=torch.bool, device=device)
    if crop is not None:
        centre = (torch.arange(size, device=device) + 0.5) * resolution / size
        rows[:, 0] = (centre >= crop[0]) & (centre < crop[1])
    return rows


def _batches(G, n_images, seed, batch_size, truncation_psi):
    """(n, activations) for seeds seed .. seed + n_images - 1 in batches. An optimized G synthesises whole batches
    only (the last one padded with further seeds, whose activations are dropped): a compiled graph serves one batch
    size, and a second graph for one short batch would cost more than it saves."""
    for start in range(0, n_images, batch_size):
        n = min(batch_size, n_images - start)
        seeds = range(seed + start, seed + start + (batch_size if G.optimized else n))
        w = G.mapping(seeds_to_z(seeds, G.z_dim, G.device), truncation_psi)
        activations = G.synthesis(G.styles(w), return_activations=True)[1]
        yield n, {name: a[:n] for name, a in activations.items()}


@torch.no_grad()
def build_catalog(G, layer=None, k=12, n_images=200, seed=0, batch_size=8, progress=None, truncation_psi=None):
    """Cluster ``layer`` over ``n_images`` seeds (seed, seed+1, ...) and compute M for every style layer.

    Two passes over the same seeds: the first collects the clustered layer's vectors and per-channel
    statistics of every style layer's activation; the second, with the centroids known, accumulates Eq. 1.
    For a model with a display crop (the car model's black bands) only positions inside it count.
    A generator of ``OPTIMIZE_FROM_RESOLUTION`` px or more is optimized first (same pictures within 1e-4; compiling
    takes tens of seconds and saves minutes), unless it already is.
    """
    if G.resolution >= OPTIMIZE_FROM_RESOLUTION and not G.optimized:
        G.optimize(batch_sizes=(batch_size,), return_activations=(True,))
    layer = layer or default_layer(G)
    crop = G.crop
    psi = G.default_psi if truncation_psi is None else truncation_psi
    report = progress or (lambda fraction, message: None)
    style_layers = G.style_layers
    sums = {spec.name: 0.0 for spec in style_layers}
    squares = {spec.name: 0.0 for spec in style_layers}
    counts = {spec.name: 0 for spec in style_layers}
    vectors = []
    done = 0
    # Feature maps stay float32 (float64 copies of 512-1024 px maps dominated the build); sums are accumulated in
    # float64, per batch and across batches.
    for n, acts in _batches(G, n_images, seed, batch_size, psi):
        for spec in style_layers:
            a = acts[spec.activation]
            rows = _crop_mask(crop, G.resolution, a.shape[2], a.device)
            a = a * rows
            sums[spec.name] = sums[spec.name] + a.sum(dim=(0, 2, 3), dtype=torch.float64)
            squares[spec.name] = squares[spec.name] + a.square().sum(dim=(0, 2, 3), dtype=torch.float64)
            counts[spec.name] += n * int(rows.sum()) * a.shape[3]
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
    totals = {spec.name: 0.0 for spec in style_layers}
    done = 0
    for n, acts in _batches(G, n_images, seed, batch_size, psi):
        a = acts[layer]
        assignments = assign_clusters(a.permute(0, 2, 3, 1).reshape(-1, a.shape[1]), centroids.to(a.device))
        memberships = F.one_hot(assignments, k).reshape(n, a.shape[2], a.shape[3], k).permute(0, 3, 1, 2).float()
        for spec in style_layers:
            act = acts[spec.activation]
            standardised = (act - mean[spec.name].float().view(1, -1, 1, 1)) / std[spec.name].float().view(1, -1, 1, 1)
            u = F.interpolate(memberships, size=act.shape[2:], mode="bilinear", align_corners=False)
            u = u * _crop_mask(crop, G.resolution, act.shape[2], act.device)
            batch_total = torch.einsum("nkhw,nchw->kc", u, standardised.square())
            totals[spec.name] = totals[spec.name] + batch_total.double()
        done += n
        report(0.6 + 0.4 * done / n_images, "measuring channel contributions")
    contributions = {name: (totals[name] / counts[name]).float().cpu() for name in totals}
    epsilon, lam = useful_ranges(contributions)
    return Catalog(
        model=G.name, fingerprint=G.fingerprint, layer=layer, k=k,
        n_images=n_images, seed=seed, truncation_psi=float(psi), centroids=centroids, contributions=contributions,
        epsilon=epsilon, lam=lam, crop=crop,
    )
