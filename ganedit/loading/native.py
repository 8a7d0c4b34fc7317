"""ganedit's own weight format: one safetensors file whose header metadata holds the architecture as JSON.

Loading it never unpickles anything: safetensors only reads raw tensors, and the config is plain JSON. Nothing is
allocated from the file's say-so: the header must be small (ours are a few kB; safetensors alone would parse up to
100 MB of it), the architecture must be within the bounds of limits.py, and every tensor's declared dtype and shape
must be the architecture's before any tensor data is read or the generator is built.
"""

import json

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..files import atomic_path
from ..networks import build_generator
from .errors import ModelFileError
from .limits import skeleton

METADATA_KEY = "ganedit"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 1 << 20  # a 1024 px generator's header (~150 tensors) is about 20 kB


def save_generator(G, path):
    """Write G's weights and architecture to ``path`` atomically (temp file, then rename)."""
    header = {"format_version": FORMAT_VERSION, "kind": G.kind, "config": G.config}
    tensors = {name: t.detach().cpu().contiguous() for name, t in G.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(header)})


def _check_header_size(path):
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
    if not 0 < size <= MAX_HEADER_BYTES:
        raise ModelFileError(
            f"{path}: a safetensors header of {size} bytes; ganedit's files have headers of 1 to {MAX_HEADER_BYTES}"
        )


def _architecture(path, metadata):
    """(kind, config) from our entry in the safetensors metadata (a dict of strings)."""
    try:
        header = json.loads((metadata or {})[METADATA_KEY])
    except (KeyError, ValueError, RecursionError) as err:
        raise ModelFileError(
            f"{path}: not a ganedit safetensors file (its header has no readable '{METADATA_KEY}' config): {err!r}"
        ) from None
    if not (isinstance(header, dict) and header.get("format_version") == FORMAT_VERSION
            and {"kind", "config"} <= set(header)):
        raise ModelFileError(
            f"{path}: its '{METADATA_KEY}' header is not format {FORMAT_VERSION} "
            "(a JSON object with format_version, kind and config)"
        )
    return header["kind"], header["config"]


def _check_tensors(path, kind, f, expected):
    """The declared tensors of open file ``f`` are exactly ``expected``'s names, all float32 of its shapes."""
    declared = set(f.keys())
    missing, unexpected = sorted(set(expected) - declared), sorted(declared - set(expected))
    if missing or unexpected:
        raise ModelFileError(
            f"{path}: tensors do not match a {kind} generator: "
            f"missing {missing[:20]}{' ...' if len(missing) > 20 else ''}, "
            f"unexpected {unexpected[:20]}{' ...' if len(unexpected) > 20 else ''}"
        )
    for name, tensor in expected.items():
        dtype, shape = f.get_slice(name).get_dtype(), f.get_slice(name).get_shape()
        if dtype != "F32" or shape != list(tensor.shape):
            needed = list(tensor.shape)
            raise ModelFileError(f"{path}: tensor {name} is {dtype} {shape}, the architecture needs F32 {needed}")


def load_native(path, device="cpu"):
    try:
        _check_header_size(path)
        with safe_open(str(path), "pt") as f:
            kind, config = _architecture(path, f.metadata())
            shapes = skeleton(path, kind, config)
            _check_tensors(path, kind, f, shapes.state_dict())
            G = build_generator(kind, shapes.config)
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError) as err:
        raise ModelFileError(f"{path}: unreadable safetensors data (truncated or corrupt?): {err}") from None
    with torch.no_grad():
        G.load_state_dict(tensors)
    return G.to(device).eval().requires_grad_(False)
