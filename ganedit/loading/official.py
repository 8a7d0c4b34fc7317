"""NVIDIA's official StyleGAN / StyleGAN2 pickles, read without TensorFlow, without running pickled code, and
without letting the file decide what we allocate.

The files are pickles of ``dnnlib.tflib.network.Network`` objects (a (G, D, Gs) tuple). Each network
pickles as a plain state dict: its build function's name and keyword arguments, its variables as
(name, numpy array) pairs, and its sub-networks. They are read by the allow-list unpickler of unpickler.py
(streamed; sizes, structure and every call checked), allowed nothing but numpy's arrays and scalars, dicts
and the network record below.

Then the architecture in the stored keyword arguments is checked against the bounds of limits.py, and
every variable's name, dtype and shape against that architecture, before the generator is built.
"""

import numpy as np
import torch

from ..networks import build_generator
from .errors import ModelFileError, shown
from .limits import SETTINGS, skeleton
from .unpickler import AllowListUnpickler, Stream, unpickle


class NetworkRecord:
    """What a pickled ``dnnlib.tflib.network.Network`` holds, as inert data of checked types."""

    def __init__(self):
        self.variables = None  # until the file's state arrives

    def __setstate__(self, state):
        if not (isinstance(state, dict) and isinstance(state.get("variables"), list)):
            raise ModelFileError("a Network record without a list of variables")
        fields = {"build_func_name": str, "static_kwargs": dict, "components": dict}
        for key, kind in fields.items():
            if state.get(key) is not None and not isinstance(state[key], kind):
                found = type(state[key]).__name__
                raise ModelFileError(f"a Network record whose {key} is a {found}, not a {kind.__name__}")
        for pair in state["variables"]:
            if not (type(pair) is tuple and len(pair) == 2 and isinstance(pair[0], str)
                    and isinstance(pair[1], (np.ndarray, np.generic))):
                raise ModelFileError(f"a Network variable that is not a (name, numpy value) pair: {shown(pair)}")
        for name, component in (state.get("components") or {}).items():
            if not (isinstance(name, str) and isinstance(component, NetworkRecord) and component.variables is not None):
                raise ModelFileError(f"a Network component {shown(name)} that is not a network record")
        self.build_func_name = state.get("build_func_name") or ""
        self.kwargs = state.get("static_kwargs") or {}
        self.components = state.get("components") or {}
        self.variables = state["variables"]

    def flat_variables(self, prefix=""):
        """All variables of this network and its sub-networks, named 'component/.../variable'."""
        out = {f"{prefix}{name}": np.asarray(value) for name, value in self.variables}
        for name, component in self.components.items():
            out.update(component.flat_variables(f"{prefix}{name}/"))
        return out


def _record_state(unpickler, record, state):
    unpickler.nest(record, [state])
    record.__setstate__(state)


class _NetworkUnpickler(AllowListUnpickler):
    """Numpy data, dicts and network records: what NVIDIA's TensorFlow pickles hold."""

    GLOBALS = {
        **AllowListUnpickler.GLOBALS,
        ("dnnlib.tflib.network", "Network"): NetworkRecord,
        ("dnnlib.util", "EasyDict"): dict,
        ("collections", "OrderedDict"): dict,
    }
    CALLS = {**AllowListUnpickler.CALLS, NetworkRecord: AllowListUnpickler.CALLS[dict]}  # made empty, then filled
    BUILDS = {**AllowListUnpickler.BUILDS, NetworkRecord: _record_state}
    CONTAINERS = (*AllowListUnpickler.CONTAINERS, NetworkRecord)


def read_official_pickle(path):
    """The generator record (Gs) of an official pickle, read as a stream and refusing anything but network records."""
    with open(path, "rb") as f:
        try:
            obj = unpickle(_NetworkUnpickler(Stream(f)))
        except ModelFileError as err:
            raise ModelFileError(f"{path}: refused to load: {err}") from None
    if isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(o, NetworkRecord) for o in obj):
        obj = obj[2]  # (G, D, Gs): Gs is the moving-average generator NVIDIA uses for pictures
    if not (isinstance(obj, NetworkRecord) and obj.variables is not None):
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


def _matches(value, required):
    """Whether a keyword argument from the file is the value ganedit implements (a string, or a number equal to it)."""
    if isinstance(required, str):
        return type(value) is str and value == required
    return isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)) and bool(value == required)


def _architecture(path, record):
    synthesis = record.components.get("synthesis")
    mapping = record.components.get("mapping")
    if synthesis is None or mapping is None:
        raise ModelFileError(f"{path}: the generator has no mapping/synthesis components")
    kind = _KINDS.get((record.build_func_name, synthesis.build_func_name))
    if kind is None:
        raise ModelFileError(
            f"{path}: unsupported network {shown(record.build_func_name)}/{shown(synthesis.build_func_name)}; "
            "supported: StyleGAN (G_style/G_synthesis) and StyleGAN2 (G_main/G_synthesis_stylegan2)"
        )
    kwargs = {**record.kwargs, **mapping.kwargs, **synthesis.kwargs}
    for key, required in _REQUIRED[kind].items():
        if key in kwargs and not _matches(kwargs[key], required):
            raise ModelFileError(
                f"{path}: {key}={shown(kwargs[key])} is not supported (ganedit implements {key}={required!r})"
            )
    # Like NVIDIA's build functions, ignore keywords the kind does not take (they are checked by limits.skeleton).
    return kind, {ours: kwargs[k] for k, ours in _CONFIG_KEYS.items() if k in kwargs and ours in SETTINGS[kind]}


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


def _state_dict(path, shapes, variables):
    """The file's variables as the state dict of generator ``shapes`` (a skeleton), after checking that their names,
    dtypes and shapes are exactly the ones it needs."""
    layout = official_variable_layout(shapes)
    missing = sorted(set(layout) - set(variables))
    unexpected = sorted(n for n in set(variables) - set(layout) if not _is_unused_official_variable(n))
    if missing or unexpected:
        raise ModelFileError(
            f"{path}: variables do not match a {shapes.kind} generator at {shapes.resolution}px: "
            f"missing {missing[:20]}{' ...' if len(missing) > 20 else ''}, "
            f"unexpected [{', '.join(map(shown, unexpected[:20]))}{' ...' if len(unexpected) > 20 else ''}]"
        )
    expected = shapes.state_dict()
    state = {}
    for tf_name, (key, how) in layout.items():
        value = variables[tf_name]
        if value.dtype.kind != "f":
            raise ModelFileError(f"{path}: variable {tf_name} is not a float array")
        ndim, to_torch = _LAYOUTS[how]
        if ndim is None or value.ndim == ndim:
            value = to_torch(value)
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ModelFileError(
                f"{path}: variable {tf_name} has shape {list(variables[tf_name].shape)}, which does not fit "
                f"{key} {list(expected[key].shape)} of the architecture in the file's kwargs"
            )
        state[key] = torch.from_numpy(np.array(value, dtype=np.float32, order="C"))
    return state


def load_official(path, device="cpu"):
    """A generator built from an official NVIDIA pickle (architecture from its stored kwargs)."""
    record = read_official_pickle(path)
    kind, config = _architecture(path, record)
    shapes = skeleton(path, kind, config)
    state = _state_dict(path, shapes, record.flat_variables())
    G = build_generator(kind, shapes.config)
    with torch.no_grad():
        G.load_state_dict(state)
    return G.to(device).eval().requires_grad_(False)
