"""The models ganedit knows, kept as data in registry.json (and in the JSON file GANEDIT_MODELS names, see
schema.py), and where each one's weights come from.

Weights are looked for, in order: files on this machine, ganedit's own format first (it loads faster, and it is
what `python -m ganedit prepare` built the catalog with), then downloads:
1. the bundled file shipped inside the package (cartoon-faces-128, cartoon-faces);
2. ``$GANEDIT_WEIGHTS_DIR/<name>.safetensors``;
3. ``<cache>/weights/<name>.safetensors``, converted by `prepare`;
4. ``$GANEDIT_WEIGHTS_DIR/<official file name>`` (NVIDIA's pickle);
5. ``<cache>/<official file name>``, downloaded before and checked (see download.py);
6. ``<name>.safetensors`` in the Hugging Face hub repo named by ``$GANEDIT_HUB_REPO`` (huggingface_hub's cache);
7. NVIDIA's published URL, downloaded into 5.
``<cache>`` is ``$GANEDIT_CACHE`` (default ~/.cache/ganedit).
"""

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..files import cache_dir
from .download import download_weights, file_sha256, usable_download
from .errors import WeightsUnavailableError
from .schema import checked_entries, configured_entries

PACKAGE_DIR = Path(__file__).resolve().parent.parent
REGISTRY_FILE = Path(__file__).with_name("registry.json")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    title: str
    kind: str
    resolution: int
    crop: tuple | None  # (first row, end row) of the picture inside the canvas, or None
    truncation_psi: float
    license: str
    bundled_file: str | None = None
    official_file: str | None = None
    url: str | None = None
    sha256: str | None = None
    download_mb: int | None = None  # about how much a first use downloads (NVIDIA's file), for visitors
    faces: bool = False  # aligned faces like FFHQ's: `prepare` names eyes, nose, mouth by position (face_labels)

    @property
    def hub_file(self):
        return f"{self.name}.safetensors"


def _read_registry():
    """registry.json's models, then those of the JSON file GANEDIT_MODELS names, all checked (see schema.py)."""
    fields = dataclasses.fields(ModelInfo)
    built_in = checked_entries(json.loads(REGISTRY_FILE.read_text()), fields, REGISTRY_FILE)
    entries = {**built_in, **configured_entries(fields, taken=built_in)}
    return {name: ModelInfo(name=name, **entry) for name, entry in entries.items()}


MODELS = _read_registry()
# the models whose weights ship inside the package; the first is the default, what the app opens on
BUNDLED_MODELS = [name for name, info in MODELS.items() if info.bundled_file]


def model_info(name):
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None


def _offline():
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("GANEDIT_OFFLINE", "HF_HUB_OFFLINE"))


def converted_weights(info):
    """Where `prepare` writes ``info``'s weights converted to ganedit's format."""
    return cache_dir() / "weights" / info.hub_file


def downloaded_weights(info):
    """Where NVIDIA's file of ``info`` is downloaded to."""
    return cache_dir() / info.official_file


def local_weights(info):
    """The path of weights already on this machine for ``info``, or None (the order is the module's docstring's)."""
    if info.bundled_file:
        path = PACKAGE_DIR / info.bundled_file
        return path if path.exists() else None
    folder = os.environ.get("GANEDIT_WEIGHTS_DIR")
    mine = [Path(folder) / info.hub_file] if folder else []
    nvidia = [Path(folder) / info.official_file] if folder else []
    candidates = mine + [converted_weights(info)] + nvidia + [downloaded_weights(info)]
    return next((p for p in candidates if p.exists()), None)


def availability(name):
    """('ready' | 'download' | 'unavailable', a sentence for people) without downloading anything."""
    info = model_info(name)
    if local_weights(info):
        return "ready", "weights are on this machine"
    if info.bundled_file:
        return "unavailable", f"the bundled weights {info.bundled_file} are missing from the installation"
    if _offline():
        return "unavailable", f"offline and {info.official_file} is not in GANEDIT_WEIGHTS_DIR"
    return "download", "weights download on first use"


def _unavailable_message(info, reasons):
    return (
        f"The weights of '{info.name}' ({info.official_file}) are not on this machine and could not be downloaded "
        f"({'; '.join(reasons)}). Get {info.official_file} from NVIDIA ({info.url}) and put it in the folder named by "
        f"GANEDIT_WEIGHTS_DIR, or set GANEDIT_HUB_REPO to a Hugging Face repo holding {info.hub_file} "
        f"(made with `python -m ganedit prepare` or `convert`)."
    )


def fetch_weights(name, progress=None):
    """A local path to the weights of registered model ``name``, downloading them if needed and allowed."""
    info = model_info(name)
    path = local_weights(info)
    if info.official_file and path == downloaded_weights(info):
        path = path if usable_download(path, info) else None  # a bad download is removed, and downloaded again below
    elif path and info.sha256 and path.name == info.official_file and file_sha256(path) != info.sha256:
        raise WeightsUnavailableError(f"{path} does not match the known sha256 of {info.official_file}")
    if path:
        return path
    if info.bundled_file:
        raise WeightsUnavailableError(f"the bundled weights {info.bundled_file} are missing from this installation")
    reasons = []
    if not os.environ.get("GANEDIT_WEIGHTS_DIR"):
        reasons.append("GANEDIT_WEIGHTS_DIR is not set")
    if _offline():
        reasons.append("offline (GANEDIT_OFFLINE or HF_HUB_OFFLINE is set)")
        raise WeightsUnavailableError(_unavailable_message(info, reasons))
    repo = os.environ.get("GANEDIT_HUB_REPO")
    if repo:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        try:
            return Path(hf_hub_download(repo_id=repo, filename=info.hub_file))
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as err:
            reasons.append(f"hub repo {repo}: {type(err).__name__}")
    else:
        reasons.append("GANEDIT_HUB_REPO is not set")
    try:
        download_weights(info, downloaded_weights(info), progress)
        return downloaded_weights(info)
    except WeightsUnavailableError as err:
        reasons.append(f"download from NVIDIA failed: {err}")
    raise WeightsUnavailableError(_unavailable_message(info, reasons))
