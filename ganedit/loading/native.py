"""ganedit's own weight format: one safetensors file whose header metadata holds the architecture as JSON.

Loading it never unpickles anything: safetensors only reads raw tensors, and the config is plain JSON.
"""

import json

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..files import atomic_path
from ..networks import build_generator
from .errors import ModelFileError

METADATA_KEY = "ganedit"
FORMAT_VERSION = 1


def save_generator(G, path):
    """Write G's weights and architecture to ``path`` atomically (temp file, then rename)."""
    header = {"format_version": FORMAT_VERSION, "kind": G.kind, "config": G.config}
    tensors = {name: t.detach().cpu().contiguous() for name, t in G.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(header)})


def read_header(path):
    """The architecture header of one of our files, without loading its tensors."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if size <= 0 or size > 100_000_000:
                raise ValueError("bad header size")
            meta = json.loads(f.read(size)).get("__metadata__") or {}
        header = json.loads(meta[METADATA_KEY])
        return header["kind"], header["config"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelFileError(
            f"{path}: not a ganedit safetensors file (its header has no readable '{METADATA_KEY}' config): {err}"
        ) from None


def load_native(path, device="cpu"):
    kind, config = read_header(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ModelFileError(f"{path}: unreadable safetensors data (truncated or corrupt?): {err}") from None
    G = build_generator(kind, config)
    expected = G.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ModelFileError(f"{path}: tensors do not match a {kind} generator: missing {missing}, unexpected {unexpected}")
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape:
            raise ModelFileError(
                f"{path}: tensor {name} has shape {list(tensor.shape)}, the architecture needs {list(expected[name].shape)}"
            )
    with torch.no_grad():
        G.load_state_dict(tensors)
    return G.to(device).eval().requires_grad_(False)
