"""Everything about files: model formats (formats.py tells them apart), the model registry and downloads."""

import hashlib
from pathlib import Path

from .download import file_sha256
from .errors import ModelFileError, WeightsUnavailableError
from .formats import detect_format, load_file
from .native import load_native, save_generator
from .official import load_official
from .registry import BUNDLED_MODELS, MODELS, ModelInfo, availability, converted_weights, fetch_weights, model_info


def weights_fingerprint(G):
    """A short hash of G's weights: the same for an official pickle and its conversion."""
    digest = hashlib.sha256()
    for name, tensor in sorted(G.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_generator(source, device="cpu", progress=None):
    """A generator from a registry name or a model file of any format ganedit reads (see formats.py), told apart by
    its content: NVIDIA's TensorFlow pickles, stylegan2-ada-pytorch / stylegan3 pickles, rosinality/stylegan2-pytorch
    checkpoints, our safetensors files.

    The returned module carries ``name``, ``info`` (the registry entry, or None for a bare file) and
    ``fingerprint`` (see weights_fingerprint).
    """
    info = MODELS.get(str(source))
    path = fetch_weights(info.name, progress) if info else Path(source)
    if not info and not path.exists():
        raise ValueError(f"{source!r} is neither a registered model ({', '.join(MODELS)}) nor an existing file")
    G = load_file(path, device)
    G.name = info.name if info else path.stem
    G.info = info
    G.fingerprint = weights_fingerprint(G)
    return G


__all__ = [
    "BUNDLED_MODELS", "MODELS", "ModelInfo", "ModelFileError", "WeightsUnavailableError", "availability",
    "converted_weights", "detect_format", "fetch_weights", "file_sha256", "load_file", "load_generator", "load_native",
    "load_official", "model_info", "save_generator", "weights_fingerprint",
]
