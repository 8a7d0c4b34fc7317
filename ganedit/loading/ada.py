"""StyleGAN2 generators in the pickles of NVIDIA's PyTorch repositories, stylegan2-ada-pytorch and stylegan3 (their
published FFHQ, MetFaces, AFHQ and LSUN files, and the models people train with that code), read without running
the code they carry.

The training loop pickles ``dict(G=..., D=..., G_ema=..., augment_pipe=..., training_set_kwargs=...)``; NVIDIA's
pretrained files are such dicts. Each network is a ``torch_utils.persistence`` object: it pickles as
``_reconstruct_persistent_obj(meta)``, with meta holding the source code of its module (``module_src``), its class
name and its state (the torch module's __dict__: parameters, buffers, sub-modules, and the ``init_args`` /
``init_kwargs`` it was built with). NVIDIA's loader executes ``module_src``; here it stays a string, and the
object becomes a PersistentRecord of class name and state. Tensors are read as torchpickle.py reads them.

The generator is G_ema (the moving average NVIDIA draws pictures with). Its architecture comes from its
``init_kwargs`` (stylegan3's Generator takes the synthesis keywords flat, stylegan2-ada-pytorch's as
``synthesis_kwargs``); the one exception is ``conv_clamp``, read from the layers, where both repositories'
constructors store the value forward() uses (their defaults differ: None in stylegan2-ada-pytorch, 256 in
stylegan3). Every parameter and buffer is then mapped onto ganedit's StyleGAN2 (networks/stylegan2.py, which
follows NVIDIA's TensorFlow config-f 'skip') as NVIDIA's own legacy.py maps TensorFlow variables onto this code:

- channel_base counts channels per resolution (channels = channel_base / res), fmap_base per stage (fmap_base /
  2**(log2(res) - 1)): fmap_base = channel_base / 2, with the same integer rounding;
- the affine layers' biases start at 1 where TensorFlow adds 1 to them: ours = theirs - 1;
- the up-sampling convolutions apply their weight as a convolution where TensorFlow's correlate: ours = theirs
  flipped;
- the constant input has no batch dimension, noise_const no batch and channel dimensions;
- ToRGB's weight gain 1/sqrt(fan_in) multiplies the styles instead of the weight: the same product; the modulated
  convolutions have no weight gain, which demodulation removes (up to its 1e-8);
- the mapping normalises z by its second moment (TensorFlow's pixel norm), and the resample_filter buffers are
  the [1, 3, 3, 1] filter of init_kwargs, checked rather than loaded.
Pictures are NVIDIA's with ``force_fp32=True``; by default their code runs the four highest resolutions in float16
on a GPU, which moves pixels by about 1e-3.

Refused, with what was found: conditional generators (c_dim > 0), StyleGAN3's alias-free generators, the 'orig'
and 'resnet' architectures, settings that change the picture in ways ganedit doesn't implement, and any missing
or unexpected tensor.
"""

import pickle

import numpy as np
import torch

from ..networks.layers import fir_kernel
from .errors import ModelFileError, shown
from .limits import skeleton
from .torchpickle import TensorRecord, TorchUnpickler, read_torch_pickle
from .unpickler import same
from .weights import built, flipped, minus_one, state_dict_from


class PersistentRecord:
    """A ``torch_utils.persistence`` object as inert data: its class name and its (torch module's) state."""

    def __init__(self, class_name, state):
        self.class_name, self.state = class_name, state

    def part(self, key):
        """The state's ``_parameters``, ``_buffers`` or ``_modules``: {name: value or None}."""
        value = self.state.get(key, {})
        if type(value) is not dict or not all(type(name) is str for name in value):
            raise ModelFileError(f"a {self.class_name} whose {key} is {shown(value)}, not a dict of names")
        return {name: v for name, v in value.items() if v is not None}

    def modules(self):
        """(name, record) for this record and every sub-module, named as torch names them ('synthesis.b4'). A module
        met twice is refused: generators share none, and a file could share one to make the walk explode."""
        seen, todo = set(), [("", self)]
        while todo:
            name, record = todo.pop()
            if id(record) in seen:
                raise ModelFileError(f"the module {name} is also another module (shared modules)")
            seen.add(id(record))
            yield name, record
            for child, module in reversed(record.part("_modules").items()):
                if not isinstance(module, PersistentRecord):
                    raise ModelFileError(f"the module {name}.{child} is a {type(module).__name__}, not a record")
                todo.append((f"{name}.{child}".removeprefix("."), module))

    def tensors(self):
        """Every parameter and buffer, as state_dict() names them: {'mapping.fc0.weight': TensorRecord, ...}."""
        found = {}
        for prefix, module in self.modules():
            for name, tensor in {**module.part("_parameters"), **module.part("_buffers")}.items():
                if not isinstance(tensor, TensorRecord):
                    raise ModelFileError(f"{prefix}.{name} is a {type(tensor).__name__}, not a tensor")
                found[f"{prefix}.{name}".removeprefix(".")] = tensor
        return found


def _persistent(unpickler, func, args):
    meta = args[0] if len(args) == 1 else None
    if not (type(meta) is dict and same(meta.get("type"), "class") and type(meta.get("class_name")) is str
            and type(meta.get("module_src")) is str and type(meta.get("state")) is dict):
        raise ModelFileError(f"a persistent object whose meta is {shown(meta)}; allowed: a dict of type 'class', "
                             "module_src, class_name and state")
    record = PersistentRecord(meta["class_name"], meta["state"])  # module_src is never run
    unpickler.nest(record, [meta])
    return record


def _string_set(unpickler, func, args):
    if not (len(args) == 1 and type(args[0]) is list and all(type(item) is str for item in args[0])):
        raise ModelFileError(f"set{shown(args)}; allowed: a set of names")
    return set(args[0])


class _AdaUnpickler(TorchUnpickler):
    """torch's tensors plus what NVIDIA's persistent networks add: their records, EasyDicts and sets of names."""

    GLOBALS = {
        **TorchUnpickler.GLOBALS,
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentRecord,
        ("dnnlib.util", "EasyDict"): dict,
        ("builtins", "set"): set,  # a module's _non_persistent_buffers_set, at protocols 2 and 3
        ("__builtin__", "set"): set,
    }
    CALLS = {**TorchUnpickler.CALLS, PersistentRecord: _persistent, set: _string_set}
    CONTAINERS = (*TorchUnpickler.CONTAINERS, PersistentRecord)
    load_empty_set = pickle._Unpickler.load_empty_set

    def load_additems(self):
        items = self.pop_mark()
        if not (type(self.stack[-1]) is set and all(type(item) is str for item in items)):
            raise ModelFileError(f"set items {shown(items)}; allowed: names, into a set")
        self.stack[-1].update(items)


def generator_record(path, obj):
    """G_ema from the training loop's dict (NVIDIA's files are such dicts), or a pickled Generator itself."""
    if type(obj) is dict and "G_ema" in obj:
        obj = obj["G_ema"]
    if not isinstance(obj, PersistentRecord):
        found = f"a dict of {', '.join(map(shown, obj))}" if type(obj) is dict else type(obj).__name__
        raise ModelFileError(f"{path}: expected a dict holding G_ema, as NVIDIA's training loop writes, found {found}")
    if any(module.class_name == "SynthesisInput" for _, module in obj.modules()):
        raise ModelFileError(f"{path}: a StyleGAN3 (alias-free) generator: StyleGAN3 is not supported yet")
    if obj.class_name != "Generator":
        raise ModelFileError(f"{path}: G_ema is a {shown(obj.class_name)}, not a Generator")
    return obj


_GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
# The keywords that change the picture in ways ganedit doesn't implement, with the value it does implement.
_REQUIRED = {"c_dim": 0, "img_channels": 3, "architecture": "skip", "activation": "lrelu", "use_noise": True,
             "kernel_size": 3}
# The keywords that only change speed or training (float16, memory layout, the w_avg update, the label embedding).
_IGNORED = {"num_fp16_res", "fp16_channels_last", "channels_last", "fused_modconv_default", "w_avg_beta",
            "embed_features"}
_MAPPING = {"num_layers", "layer_features", "lr_multiplier", "activation"}
_SYNTHESIS = {"channel_base", "channel_max", "resample_filter", "conv_clamp", "architecture", "activation",
              "use_noise", "kernel_size"}


def _matches(value, required):
    if isinstance(required, (str, bool)):
        return type(value) is type(required) and value == required
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value == required


def _init_kwargs(path, G):
    """The Generator's keyword arguments as (generator, mapping, synthesis) dicts, whichever repository built it."""
    args, kwargs = G.state.get("_init_args", ()), G.state.get("_init_kwargs")
    if not (type(args) is tuple and len(args) <= len(_GENERATOR_ARGS) and type(kwargs) is dict):
        raise ModelFileError(f"{path}: the Generator's init_args {shown(args)} and init_kwargs {shown(kwargs)} are "
                             "not a tuple and a dict")
    top = {**dict(zip(_GENERATOR_ARGS, args)), **kwargs}
    mapping, synthesis = top.pop("mapping_kwargs", {}), top.pop("synthesis_kwargs", {})
    if type(mapping) is not dict or type(synthesis) is not dict:
        raise ModelFileError(f"{path}: mapping_kwargs {shown(mapping)} or synthesis_kwargs {shown(synthesis)} is not "
                             "a dict")
    synthesis = {**synthesis, **{key: top.pop(key) for key in list(top) if key not in _GENERATOR_ARGS}}  # stylegan3's
    missing = [key for key in _GENERATOR_ARGS[:5] if key not in top]
    unknown = [str(key) for key in (*mapping, *synthesis) if key not in _MAPPING | _SYNTHESIS | _IGNORED]
    if missing or unknown:
        raise ModelFileError(f"{path}: init_kwargs without {missing} or with settings ganedit doesn't know {unknown}")
    return top, mapping, synthesis


def _conv_clamp(path, G, synthesis):
    layers = [m for _, m in G.modules() if m.class_name in ("SynthesisLayer", "ToRGBLayer")]
    clamps = [layer.state.get("conv_clamp", "absent") for layer in layers]
    if not clamps or any(c is not None and not isinstance(c, (int, float)) for c in clamps) or len(set(clamps)) > 1:
        raise ModelFileError(f"{path}: the synthesis layers' conv_clamp values {shown(clamps)} are not one number or "
                             "None")
    declared = synthesis.get("conv_clamp", clamps[0])
    if not (declared is None or isinstance(declared, (int, float))) or declared != clamps[0]:
        raise ModelFileError(f"{path}: init_kwargs say conv_clamp={shown(declared)}, the layers hold {clamps[0]}")
    return clamps[0]


def _architecture(path, G):
    top, mapping, synthesis = _init_kwargs(path, G)
    if not _matches(top["c_dim"], 0):
        raise ModelFileError(f"{path}: a conditional generator (c_dim={shown(top['c_dim'])}): ganedit draws pictures "
                             "from z alone")
    for where, kwargs in (("init_kwargs", top), ("mapping_kwargs", mapping), ("synthesis_kwargs", synthesis)):
        for key, value in kwargs.items():
            if key in _REQUIRED and not _matches(value, _REQUIRED[key]):
                raise ModelFileError(f"{path}: {where} {key}={shown(value)} is not supported (ganedit implements "
                                     f"{key}={_REQUIRED[key]!r}: StyleGAN2's 'skip' generator)")
    resample_filter = synthesis.get("resample_filter", [1, 3, 3, 1])
    if not (isinstance(resample_filter, (list, tuple)) and len(resample_filter) == 4):
        raise ModelFileError(f"{path}: resample_filter={shown(resample_filter)} is not supported (ganedit implements "
                             "4-tap filters in these files, such as [1, 3, 3, 1]: the paddings of other lengths in "
                             "stylegan2-ada-pytorch's conv2d_resample are not verified here)")
    channel_base = synthesis.get("channel_base", 32768)
    if not (isinstance(channel_base, int) and 0 < channel_base):
        raise ModelFileError(f"{path}: channel_base={shown(channel_base)} is not a positive integer")
    features = mapping.get("layer_features")
    return {
        "resolution": top["img_resolution"], "z_dim": top["z_dim"], "w_dim": top["w_dim"],
        "mapping_layers": mapping.get("num_layers", 8), "mapping_fmaps": top["w_dim"] if features is None else features,
        "mapping_lrmul": mapping.get("lr_multiplier", 0.01), "fmap_base": channel_base // 2,
        "fmap_max": synthesis.get("channel_max", 512),
        "resample_kernel": resample_filter,
        "conv_clamp": _conv_clamp(path, G, synthesis),
    }


def _check_filters(path, filters, taps):
    """The resample_filter buffers are the filter of init_kwargs, normalised (what upfirdn2d.setup_filter makes)."""
    expected = fir_kernel(taps)
    for name, tensor in filters.items():
        if tensor.shape != tuple(expected.shape) or not torch.allclose(tensor.load().float(), expected, atol=1e-6):
            raise ModelFileError(f"{path}: {name} is not the resample filter {taps} of init_kwargs")


def _table(G):
    """Our state-dict key -> (ada tensor name, its shape as a function of ours or None for the same, adjustment)."""
    table = {"w_avg": ("mapping.w_avg", None, None), "const": ("synthesis.b4.const", lambda s: s[1:], None)}
    for i in range(len(G.mapping_network.layers)):
        for what in ("weight", "bias"):
            table[f"mapping_network.layers.{i}.{what}"] = (f"mapping.fc{i}.{what}", None, None)
    names = {"Conv": "conv1", "Conv0_up": "conv0", "Conv1": "conv1", "ToRGB": "torgb"}
    for spec in G.style_layers:
        res, layer = spec.name.split("/")
        ours, theirs = f"layers.{spec.name.replace('/', '_')}.", f"synthesis.b{res.split('x')[0]}.{names[layer]}."
        table[ours + "weight"] = (theirs + "weight", None, flipped if layer == "Conv0_up" else None)
        table[ours + "bias"] = (theirs + "bias", None, None)
        table[ours + "affine.weight"] = (theirs + "affine.weight", None, None)
        table[ours + "affine.bias"] = (theirs + "affine.bias", None, minus_one)
        if layer != "ToRGB":
            table[ours + "noise_strength"] = (theirs + "noise_strength", None, None)
            table[ours + "noise"] = (theirs + "noise_const", lambda s: s[2:], None)
    return table


def load_ada(path, device="cpu"):
    """The generator of the stylegan2-ada-pytorch / stylegan3 pickle at ``path``."""
    G = generator_record(path, read_torch_pickle(path, _AdaUnpickler))
    shapes = skeleton(path, "stylegan2", _architecture(path, G))
    tensors = G.tensors()
    filters = {name: t for name, t in tensors.items() if name.endswith("resample_filter")}
    _check_filters(path, filters, shapes.config["resample_kernel"])
    others = {name: t for name, t in tensors.items() if name not in filters}
    return built(shapes, state_dict_from(path, shapes, _table(shapes), others, "from init_kwargs"), device)
