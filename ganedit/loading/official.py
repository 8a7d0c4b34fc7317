"""NVIDIA's official StyleGAN / StyleGAN2 pickles, read without TensorFlow and without running pickled code.

The files are pickles of ``dnnlib.tflib.network.Network`` objects (a (G, D, Gs) tuple). Each network
pickles as a plain state dict: its build function's name and keyword arguments, its variables as
(name, numpy array) pairs, and its sub-networks. An allow-listed unpickler rebuilds only those records
and numpy arrays; any other global in the file is refused before it can be called.
"""

import codecs
import io
import pickle

import numpy as np
import torch

from ..networks import build_generator
from .errors import ModelFileError

_NUMPY_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy's own array-unpickling function
_NUMPY_SCALAR = np.float32(0).__reduce__()[0]  # and its scalar-unpickling function


class NetworkRecord:
    """What a pickled ``dnnlib.tflib.network.Network`` holds, as inert data."""

    def __setstate__(self, state):
        if not isinstance(state, dict) or "variables" not in state:
            raise pickle.UnpicklingError("a Network record without variables")
        self.state = state

    @property
    def build_func_name(self):
        return self.state.get("build_func_name", "")

    @property
    def kwargs(self):
        return dict(self.state.get("static_kwargs") or {})

    @property
    def components(self):
        return dict(self.state.get("components") or {})

    def flat_variables(self, prefix=""):
        """All variables of this network and its sub-networks, named 'component/.../variable'."""
        out = {f"{prefix}{name}": np.asarray(value) for name, value in self.state["variables"]}
        for name, component in self.components.items():
            out.update(component.flat_variables(f"{prefix}{name}/"))
        return out


_ALLOWED_GLOBALS = {
    ("dnnlib.tflib.network", "Network"): NetworkRecord,
    ("dnnlib.util", "EasyDict"): dict,
    ("collections", "OrderedDict"): dict,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _NUMPY_SCALAR,
    ("numpy._core.multiarray", "scalar"): _NUMPY_SCALAR,
    ("_codecs", "encode"): codecs.encode,  # how protocol-2 pickles store bytes
}


class _AllowListUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise ModelFileError(
                f"refused to load: the file asks for the Python object {module}.{name}, which is not part of a "
                f"StyleGAN network record (allowed: {', '.join(f'{m}.{n}' for m, n in _ALLOWED_GLOBALS)})"
            ) from None

    def persistent_load(self, pid):
        raise ModelFileError("refused to load: the file uses persistent references, which network records never do")


def read_official_pickle(path):
    """The generator record (Gs) of an official pickle, refusing anything but network records and arrays."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        obj = _AllowListUnpickler(io.BytesIO(data)).load()
    except ModelFileError as err:
        raise ModelFileError(f"{path}: {err}") from None
    except Exception as err:  # noqa: BLE001 - garbage can fail in many ways (e.g. OverflowError on a huge FRAME length)
        raise ModelFileError(f"{path}: not a readable NVIDIA network pickle (truncated or corrupt?): {err!r}") from None
    if isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(o, NetworkRecord) for o in obj):
        obj = obj[2]  # (G, D, Gs): Gs is the moving-average generator NVIDIA uses for pictures
    if not isinstance(obj, NetworkRecord):
        raise ModelFileError(f"{path}: expected a (G, D, Gs) tuple of networks, found {type(obj).__name__}")
    return obj


# The keyword arguments each official build function reads, with the defaults of its signature;
# a keyword that changes the graph in a way we don't implement is refused (REQUIRED).
_CONFIG_KEYS = {
    "latent_size": "z_dim", "dlatent_size": "w_dim", "resolution": "resolution", "mapping_layers": "mapping_layers",
    "mapping_fmaps": "mapping_fmaps", "mapping_lrmul": "mapping_lrmul", "fmap_base": "fmap_base",
    "fmap_decay": "fmap_decay", "fmap_max": "fmap_max", "fmap_min": "fmap_min", "blur_filter": "blur_filter",
    "fused_scale": "fused_scale", "resample_kernel": "resample_kernel",
}
_REQUIRED = {
    "stylegan": {"num_channels": 3, "label_size": 0, "use_styles": True, "const_input_layer": True, "use_noise": True,
                 "nonlinearity": "lrelu", "mapping_nonlinearity": "lrelu", "use_wscale": True, "use_pixel_norm": False,
                 "use_instance_norm": True, "normalize_latents": True},
    "stylegan2": {"num_channels": 3, "label_size": 0, "architecture": "skip", "nonlinearity": "lrelu",
                  "mapping_nonlinearity": "lrelu", "normalize_latents": True},
}
_KINDS = {("G_style", "G_synthesis"): "stylegan", ("G_main", "G_synthesis_stylegan2"): "stylegan2"}


def _architecture(path, record):
    synthesis = record.components.get("synthesis")
    mapping = record.components.get("mapping")
    if synthesis is None or mapping is None:
        raise ModelFileError(f"{path}: the generator has no mapping/synthesis components")
    kind = _KINDS.get((record.build_func_name, synthesis.build_func_name))
    if kind is None:
        raise ModelFileError(
            f"{path}: unsupported network {record.build_func_name}/{synthesis.build_func_name}; supported: "
            "StyleGAN (G_style/G_synthesis) and StyleGAN2 (G_main/G_synthesis_stylegan2)"
        )
    kwargs = {**record.kwargs, **mapping.kwargs, **synthesis.kwargs}
    for key, required in _REQUIRED[kind].items():
        if key in kwargs and kwargs[key] != required:
            raise ModelFileError(f"{path}: {key}={kwargs[key]!r} is not supported (ganedit implements {key}={required!r})")
    config = {ours: kwargs[theirs] for theirs, ours in _CONFIG_KEYS.items() if theirs in kwargs}
    for key in ("blur_filter", "resample_kernel"):
        if key in config:
            config[key] = [float(v) for v in config[key]]
    return kind, config


def official_variable_layout(G):
    """NVIDIA's variable name -> (our state-dict key, layout) for generator G; layout says how to transpose."""
    table = {"dlatent_avg": ("w_avg", "plain")}
    for i in range(len(G.mapping_network.layers)):
        table[f"mapping/Dense{i}/weight"] = (f"mapping_network.layers.{i}.weight", "dense")
        table[f"mapping/Dense{i}/bias"] = (f"mapping_network.layers.{i}.bias", "plain")
    noise_index = 0
    for spec in G.style_layers:
        tf, ours = f"synthesis/{spec.name}/", f"layers.{spec.name.replace('/', '_')}."
        if G.kind == "stylegan":
            if spec.name == "4x4/Const":
                table[tf + "const"] = (ours + "const", "plain")
            else:
                table[tf + "weight"] = (ours + "weight", "conv")
            table[tf + "Noise/weight"] = (ours + "noise_weight", "plain")
            table[tf + "bias"] = (ours + "bias", "plain")
            table[tf + "StyleMod/weight"] = (ours + "style.weight", "dense")
            table[tf + "StyleMod/bias"] = (ours + "style.bias", "plain")
        else:
            table[tf + "weight"] = (ours + "weight", "conv")
            table[tf + "mod_weight"] = (ours + "affine.weight", "dense")
            table[tf + "mod_bias"] = (ours + "affine.bias", "plain")
            table[tf + "bias"] = (ours + "bias", "plain")
            if spec.name.endswith("ToRGB"):
                continue
            table[tf + "noise_strength"] = (ours + "noise_strength", "plain")
        table[f"synthesis/noise{noise_index}"] = (ours + "noise", "plain")
        noise_index += 1
    if G.kind == "stylegan":
        table["synthesis/ToRGB_lod0/weight"] = ("to_rgb_weight", "conv")
        table["synthesis/ToRGB_lod0/bias"] = ("to_rgb_bias", "plain")
    else:
        table["synthesis/4x4/Const/const"] = ("const", "plain")
    return table


def _is_unused_official_variable(name):
    """Variables NVIDIA stores that don't affect the final-resolution picture: the progressive-growing
    level of detail and StyleGAN's ToRGB layers for lower resolutions."""
    return name in ("lod", "synthesis/lod") or (name.startswith("synthesis/ToRGB_lod") and not name.startswith("synthesis/ToRGB_lod0/"))


# How NVIDIA's TensorFlow layouts map onto torch's: dense [in, out] -> [out, in]; conv [k, k, in, out] -> [out, in, k, k].
_LAYOUTS = {"plain": (None, lambda a: a), "dense": (2, lambda a: a.T), "conv": (4, lambda a: a.transpose(3, 2, 0, 1))}


def load_official(path, device="cpu"):
    """A generator built from an official NVIDIA pickle (architecture from its stored kwargs)."""
    record = read_official_pickle(path)
    kind, config = _architecture(path, record)
    G = build_generator(kind, config)
    variables = record.flat_variables()
    layout = official_variable_layout(G)
    missing = sorted(set(layout) - set(variables))
    unexpected = sorted(n for n in set(variables) - set(layout) if not _is_unused_official_variable(n))
    if missing or unexpected:
        raise ModelFileError(
            f"{path}: variables do not match a {kind} generator at {G.resolution}px: "
            f"missing {missing[:20]}{' ...' if len(missing) > 20 else ''}, "
            f"unexpected {unexpected[:20]}{' ...' if len(unexpected) > 20 else ''}"
        )
    state = G.state_dict()
    for tf_name, (key, how) in layout.items():
        value = variables[tf_name]
        if not (isinstance(value, np.ndarray) and value.dtype.kind == "f"):
            raise ModelFileError(f"{path}: variable {tf_name} is not a float array")
        ndim, to_torch = _LAYOUTS[how]
        if ndim is None or value.ndim == ndim:
            value = to_torch(value)
        if tuple(value.shape) != tuple(state[key].shape):
            raise ModelFileError(
                f"{path}: variable {tf_name} has shape {list(variables[tf_name].shape)}, which does not fit "
                f"{key} {list(state[key].shape)} of the architecture in the file's kwargs"
            )
        state[key] = torch.from_numpy(np.array(value, dtype=np.float32, order="C"))
    with torch.no_grad():
        G.load_state_dict(state)
    return G.to(device).eval().requires_grad_(False)
