"""What a registry entry may hold: the schema every entry is checked against, those of registry.json and those a
Space owner adds in the JSON file named by ``GANEDIT_MODELS`` (a mistake there stops ganedit with a message that
names the file, the model and the field, rather than a model that fails later).

That file is an object of entries by model name, like registry.json. Its entries may also give ``file``, a path
on this machine (relative to the JSON file), instead of ``bundled_file``; and a ``url`` without ``official_file``,
whose file is then named after the URL's last part. Each entry needs a source: a file, or a URL, or the
``official_file`` name to look for in GANEDIT_WEIGHTS_DIR. (Converted weights ``<name>.safetensors`` are found in
GANEDIT_WEIGHTS_DIR, the cache and the hub repo named by GANEDIT_HUB_REPO whatever the entry says.)
"""

import json
import os
import re
import urllib.parse
from dataclasses import MISSING
from pathlib import Path

ENV_VAR = "GANEDIT_MODELS"
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # also a catalog's file name


def _number(low, high):
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high


def _text(v):
    return isinstance(v, str) and 0 < len(v.strip()) and len(v) <= 2000


def _file_name(v):
    return isinstance(v, str) and v not in (".", "..") and re.fullmatch(r"[^/\\\x00]{1,255}", v) is not None


# field -> (what it must be, check); a field of ModelInfo without a check here takes any JSON value.
CHECKS = {
    "title": ("a text (what the dropdown shows)", _text),
    "kind": ("'stylegan' or 'stylegan2'", lambda v: v in ("stylegan", "stylegan2")),
    "resolution": ("a power of two from 4 to 2048", lambda v: type(v) is int and 4 <= v <= 2048 and v & (v - 1) == 0),
    "crop": ("null or [first row, end row] of the picture", lambda v: v is None or (
        type(v) is list and len(v) == 2 and all(type(r) is int for r in v) and 0 <= v[0] < v[1])),
    "truncation_psi": ("a number from 0 to 2", _number(0, 2)),
    "license": ("a text (the weights' license, shown to visitors)", _text),
    "bundled_file": ("a path inside the package", _text),
    "official_file": ("a file name", _file_name),
    "url": ("an http(s) URL", lambda v: isinstance(v, str) and urllib.parse.urlparse(v).scheme in ("http", "https")
            and bool(urllib.parse.urlparse(v).netloc)),
    "sha256": ("null or 64 hexadecimal digits", lambda v: v is None or (
        isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None)),
    "download_mb": ("null or a whole number of megabytes", lambda v: v is None or (type(v) is int and v >= 0)),
    "faces": ("true or false", lambda v: type(v) is bool),
}


def _checked(entry, known, required, folder):
    """One entry's ModelInfo keyword arguments; ValueError says what is wrong."""
    if not isinstance(entry, dict):
        raise ValueError(f"expected an object of fields, found {type(entry).__name__}")
    entry = dict(entry)
    if folder is not None and "file" in entry:
        if "bundled_file" in entry or not _text(entry["file"]):
            raise ValueError("'file' is a path on this machine, given instead of 'bundled_file'")
        entry["bundled_file"] = str((folder / Path(entry.pop("file")).expanduser()).resolve())
    if folder is not None and isinstance(entry.get("url"), str) and "official_file" not in entry:
        entry["official_file"] = urllib.parse.unquote(Path(urllib.parse.urlparse(entry["url"]).path).name)
    unknown, missing = sorted(set(entry) - known), sorted(required - set(entry))
    if unknown or missing:
        raise ValueError(f"unknown fields {unknown}, missing fields {missing}; the fields are "
                         f"{', '.join(sorted(known | ({'file'} if folder else set())))}")
    for field, value in entry.items():
        what, check = CHECKS.get(field, (None, lambda v: True))
        if not check(value):
            raise ValueError(f"{field} must be {what}, not {json.dumps(value)[:200]}")
    if entry["crop"] and entry["crop"][1] > entry["resolution"]:
        raise ValueError(f"the crop {entry['crop']} goes beyond the {entry['resolution']} rows of the picture")
    if not (entry.get("bundled_file") or entry.get("official_file")):
        raise ValueError("no weights: give a file, a url, or the official_file to look for in GANEDIT_WEIGHTS_DIR")
    return {**entry, "crop": tuple(entry["crop"]) if entry["crop"] else None}


def checked_entries(entries, fields, where, folder=None):
    """{name: ModelInfo keyword arguments} from the JSON object ``entries`` read from ``where``, every entry checked
    against ``fields`` (ModelInfo's dataclass fields) and CHECKS. ``folder``: the entries are a Space owner's, whose
    ``file`` paths are relative to it. ValueError names the file, the model and what is wrong."""
    if not isinstance(entries, dict):
        raise ValueError(f"{where}: expected a JSON object of models by name, found {type(entries).__name__}")
    known = {f.name for f in fields} - {"name"}
    required = {f.name for f in fields if f.default is MISSING and f.default_factory is MISSING} - {"name"}
    checked = {}
    for name, entry in entries.items():
        try:
            if not NAME.fullmatch(name):
                raise ValueError("a name is 1 to 64 lowercase letters, digits, '.', '_' or '-', starting with a "
                                 "letter or digit")
            checked[name] = _checked(entry, known, required, folder)
        except ValueError as err:
            raise ValueError(f"{where}: model {name!r}: {err}") from None
    return checked


def configured_entries(fields, taken):
    """The checked entries of the JSON file ``$GANEDIT_MODELS`` ({} when unset); their names may not be in ``taken``
    (the built-in models)."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return {}
    path = Path(value).expanduser().resolve()
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{ENV_VAR}={value}: can't read the models file: {err}") from None
    checked = checked_entries(entries, fields, path, folder=path.parent)
    clash = sorted(set(checked) & set(taken))
    if clash:
        raise ValueError(f"{path}: {', '.join(clash)} is already a built-in model; give yours another name")
    return checked
