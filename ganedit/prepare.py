"""`python -m ganedit prepare`: what a registered model needs before it is served, step by step, resumable.

For each model: its weights (found or downloaded as loading.registry says; their sha256 is printed, for the
registry and for checking an upload), converted to ganedit's format into ``<cache>/weights/<name>.safetensors``
(which loading prefers to NVIDIA's file from then on), its catalog (parts named by position for aligned faces), and a contact sheet
``<catalog>.clusters.png`` to name the other clusters from. Then, once parts are named, ``choose_examples`` and
``write_examples`` pick the app's examples for the model.

A step already done is skipped, with a line saying so: the converted file comes first in the load order, so there
is nothing left to convert; a catalog that exists and fits the weights is kept (``force`` rebuilds it, and its part
names are lost); a contact sheet records the build of the catalog it shows, and is kept while that build is.
"""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from .catalog import CATALOG_DIR, build_catalog, catalog_file, load_catalog
from .editing import edit_prepared, prepare_seed
from .face_labels import auto_label_faces
from .figures import labelled, side_by_side, stacked
from .files import safe_name, write_bytes_atomically
from .imaging import crop_rows
from .loading import (
    availability, converted_weights, fetch_weights, file_sha256, load_generator, model_info, save_generator,
)
from .request import PREFERRED_PARTS

EXAMPLES_FILE = Path(__file__).resolve().parent.parent / "examples" / "examples.json"
SHEET_SEEDS = range(6)  # the pictures each cluster is shown over
SHEET_TILE = 128  # width in pixels of one picture on the contact sheet
SHEET_KEY = "ganedit_catalog"  # the PNG text entry naming the catalog build a contact sheet shows
EXAMPLE_PARTS = 3  # parts that get an example each


def quiet_bar(description):
    """A progress bar that shows nothing: ``bar(description)`` is a context giving a progress(fraction, message)."""
    return contextlib.nullcontext(lambda fraction, message="": None)


def prepare_model(name, out=CATALOG_DIR, device="cpu", k=16, n_images=200, force=False, say=print, bar=quiet_bar):
    """(generator, catalog) of registered model ``name`` once every step is done; the catalog and its contact
    sheet are written into the folder ``out``."""
    info = model_info(name)
    if availability(name)[0] == "download":
        with bar(f"{name}: download") as progress:
            path = fetch_weights(name, progress)
    else:
        path = fetch_weights(name)
    say(f"{name}: weights {path} (sha256 {file_sha256(path)})")
    if path.suffix == ".pkl":
        save_generator(load_generator(path), converted_weights(info))
        say(f"{name}: converted to {converted_weights(info)} (sha256 {file_sha256(converted_weights(info))})")
    else:
        say(f"{name}: the weights are in ganedit's format already, nothing to convert")
    G = load_generator(name, device)
    catalog = _catalog(G, Path(out) / safe_name(name), k, n_images, force, say, bar)
    _contact_sheet(G, catalog, say, bar)
    return G, catalog


def _catalog(G, stem, k, n_images, force, say, bar):
    if catalog_file(stem).exists() and not force:
        catalog = load_catalog(stem)
        try:
            catalog.check_fits(G)
        except ValueError as err:
            raise ValueError(f"{err}; or prepare it again with --force (its part names are lost)") from None
        say(f"{G.name}: catalog {catalog_file(stem)} exists and fits the weights (k={catalog.k}, "
            f"{catalog.n_images} images): kept, --force rebuilds it")
        return catalog
    with bar(f"{G.name}: catalog") as progress:
        catalog = build_catalog(G, k=k, n_images=n_images, progress=progress)
    if G.info.faces:
        catalog.labels = auto_label_faces(G, catalog)
    catalog.save(stem)
    say(f"{G.name}: wrote catalog {catalog_file(stem)} (layer {catalog.layer}, k={k}, {n_images} images); "
        f"parts named by position: {', '.join(catalog.labels) or 'none'}")
    return catalog


# ---- contact sheet -------------------------------------------------------------------------------------------
def contact_sheet(G, catalog, seeds=SHEET_SEEDS, progress=None):
    """One numbered row per cluster: the cluster over each seed's picture, everything else dimmed."""
    prepared = []
    for seed in seeds:
        prepared.append(prepare_seed(G, catalog, seed))
        if progress:
            progress(len(prepared) / len(seeds), "pictures")
    rows = [side_by_side([_tile(G, catalog, p, cluster) for p in prepared]) for cluster in range(catalog.k)]
    return stacked([labelled(row, f"cluster {cluster}") for cluster, row in enumerate(rows)])


def _tile(G, catalog, prepared, cluster):
    inside = catalog.part_mask(prepared.cluster_map[None], [cluster], G.resolution)[0].cpu().numpy()
    crop = G.crop
    picture = crop_rows(np.where(inside[..., None], prepared.image, prepared.image // 4), crop, G.resolution)
    height = round(SHEET_TILE * picture.shape[0] / picture.shape[1])
    return np.asarray(Image.fromarray(picture).resize((SHEET_TILE, height), Image.LANCZOS))


def _shown_build(file):
    """The catalog build a contact sheet was made for, or None (no file, not a PNG, not ours)."""
    try:
        with Image.open(file) as image:
            return image.text.get(SHEET_KEY)
    except (OSError, AttributeError):
        return None


def _contact_sheet(G, catalog, say, bar):
    file = catalog.path.with_name(f"{catalog.path.name}.clusters.png")
    if _shown_build(file) == catalog.build:
        say(f"{G.name}: contact sheet {file} shows this catalog: kept")
        return
    with bar(f"{G.name}: contact sheet") as progress:
        picture = contact_sheet(G, catalog, progress=progress)
    text = PngImagePlugin.PngInfo()
    text.add_text(SHEET_KEY, catalog.build)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG", pnginfo=text)
    write_bytes_atomically(file, buffer.getvalue())
    say(f"{G.name}: wrote contact sheet {file}; name parts from it with `python -m ganedit label --catalog "
        f"{catalog.path} --clusters 3 9 --name eyes`, then choose examples with `prepare --examples`")


# ---- examples ------------------------------------------------------------------------------------------------
def choose_examples(G, catalog, n_seeds=300, bar=quiet_bar, parts=None):
    """Rows for examples.json: for ``parts`` (default: a few named parts, the usual ones first), the pair of
    consecutive seeds (target, reference) among 0..n_seeds-1 whose edit, sequential with the part's default epsilon,
    is the most visible and the most local: the largest In-MSE times the share of the change inside the part."""
    if parts is None:
        preferred = [p for p in PREFERRED_PARTS if p in catalog.labels]
        parts = (preferred + [p for p in catalog.labels if p not in preferred])[:EXAMPLE_PARTS]
    unknown = [p for p in parts if p not in catalog.labels]
    if unknown:
        raise ValueError(f"catalog {catalog.path} has no part {', '.join(map(repr, unknown))}; "
                         f"its parts: {', '.join(catalog.labels) or 'none'}")
    if not parts:
        raise ValueError(f"catalog {catalog.path} has no named parts yet: name them from its contact sheet with "
                         "`python -m ganedit label`, then choose examples again")
    if n_seeds < 2:
        raise ValueError(f"examples need at least 2 seeds to pair, got {n_seeds}")
    best = {}  # part -> (score, target seed, reference seed)
    with bar(f"{G.name}: examples") as progress:
        target = prepare_seed(G, catalog, 0)
        for seed in range(1, n_seeds):
            reference = prepare_seed(G, catalog, seed)
            for part in parts:
                result = edit_prepared(G, catalog, target, reference, part, "sequential")
                score = result.in_mse * result.inside_share
                if score > best.get(part, (-1.0,))[0]:
                    best[part] = (score, target.seed, reference.seed)
            target = reference
            progress(seed / (n_seeds - 1), "pairs")
    return [dict(model=G.name, target=t, reference=r, part=part, method="sequential",
                 epsilon=catalog.default_epsilon(part)) for part, (_, t, r) in best.items()]


def _read_examples(path):
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text())
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise ValueError("it is not a list of objects")
    except ValueError as err:
        raise ValueError(f"{path} is not a JSON list of examples ({err}); correct or remove it") from None
    return rows


def write_examples(path, model, rows):
    """Replace ``model``'s rows of the examples file ``path`` with ``rows``, where its first row was (at the end if
    it had none), keeping every other model's rows; written atomically, one row per line."""
    path = Path(path)
    old = _read_examples(path)
    at = next((i for i, row in enumerate(old) if row.get("model") == model), len(old))
    kept = [row for row in old if row.get("model") != model]
    merged = kept[:at] + list(rows) + kept[at:]
    write_bytes_atomically(path, ("[\n" + ",\n".join(f"  {json.dumps(row)}" for row in merged) + "\n]\n").encode())
