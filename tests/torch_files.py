"""Writes tiny model files in the formats of NVIDIA's stylegan2-ada-pytorch / stylegan3 pickles and of
rosinality/stylegan2-pytorch checkpoints (a test helper, not a test), without either repository's code.

Their weights are those of a tiny NVIDIA TensorFlow file (official_files.py), converted by the rules of each
repository's own converter: NVIDIA's legacy.py (convert_tf_generator) and rosinality's convert_weight.py. So a
file written here and the TensorFlow file hold the same generator, and must give the same pictures.

stylegan2-ada-pytorch: its training loop writes ``pickle.dump(dict(G=G, D=D, G_ema=G_ema, augment_pipe=...,
training_set_kwargs=...))`` of ``torch_utils.persistence`` objects. Such an object reduces to
``_reconstruct_persistent_obj(meta)``, meta = dict(type='class', version=6, module_src=<its module's source>,
class_name=..., state=<the torch module's __dict__>). The state below is what torch.nn.Module.__dict__ holds after
the constructors of training/networks.py (stylegan3: training/networks_stylegan2.py): the training flag,
_parameters, _buffers, _non_persistent_buffers_set, the hook dicts, _modules, the attributes the constructor sets
and _init_args / _init_kwargs. Tensors are real torch tensors and Parameters, so torch's own reducers write them.
While pickling, throw-away modules ``torch_utils.persistence`` and ``dnnlib.util`` (EasyDict) are put in
sys.modules, as official_files.py does for dnnlib.tflib.

rosinality/stylegan2-pytorch: train.py saves ``torch.save({"g", "d", "g_ema", "g_optim", "d_optim", "args",
"ada_aug_p"})``, convert_weight.py ``torch.save({"g_ema", "latent_avg"})``; g_ema is its Generator's state_dict(),
named as model.py names it.
"""

import argparse
import collections
import contextlib
import pickle
import sys
import types

import numpy as np
import torch

EVIL_SOURCE = "import pathlib\npathlib.Path({marker!r}).write_text('the pickled source ran')\n"


# ---------------------------------------------------------------------------------------------------------
# stylegan2-ada-pytorch / stylegan3 pickles.

@contextlib.contextmanager
def _nvidia_modules():
    names = ["torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util"]
    present = [name for name in names if name in sys.modules]
    if present:
        raise RuntimeError(f"a real module {present[0]} is loaded; these test files must be written without it")
    modules = {name: types.ModuleType(name) for name in names}
    modules["torch_utils"].persistence = modules["torch_utils.persistence"]
    modules["dnnlib"].util = modules["dnnlib.util"]

    def _reconstruct_persistent_obj(meta):
        raise AssertionError("only for pickling")

    class EasyDict(dict):
        pass

    for module, obj in (("torch_utils.persistence", _reconstruct_persistent_obj), ("dnnlib.util", EasyDict)):
        obj.__module__, obj.__qualname__ = module, obj.__name__
        setattr(modules[module], obj.__name__, obj)
    sys.modules.update(modules)
    try:
        yield _reconstruct_persistent_obj, EasyDict
    finally:
        for name in names:
            sys.modules.pop(name, None)


MODULE_SRC = "# training/networks.py (its source is stored in the file; ganedit never runs it)\n"


class _Persistent:
    """A persistent torch module, pickled as NVIDIA's persistence decorator pickles it."""

    reconstruct = None  # _reconstruct_persistent_obj, while pickling
    module_src = MODULE_SRC

    def __init__(self, class_name, attributes=None, parameters=None, buffers=None, modules=None, init_kwargs=None):
        self.class_name = class_name
        self.state = {
            "training": False, "_parameters": collections.OrderedDict(parameters or {}),
            "_buffers": collections.OrderedDict(buffers or {}), "_non_persistent_buffers_set": set(),
            "_backward_hooks": collections.OrderedDict(), "_forward_hooks": collections.OrderedDict(),
            "_forward_pre_hooks": collections.OrderedDict(), "_state_dict_hooks": collections.OrderedDict(),
            "_load_state_dict_pre_hooks": collections.OrderedDict(),
            "_modules": collections.OrderedDict(modules or {}), **(attributes or {}),
            "_init_args": (), "_init_kwargs": dict(init_kwargs or {}),
        }

    def __reduce__(self):
        meta = dict(type="class", version=6, module_src=self.module_src, class_name=self.class_name, state=self.state)
        return (_Persistent.reconstruct, (meta,))


def _parameter(value):
    return torch.nn.Parameter(torch.as_tensor(np.array(value, dtype=np.float32)), requires_grad=False)


def _filter():
    f = np.outer([1, 3, 3, 1], [1, 3, 3, 1]).astype(np.float32)
    return torch.from_numpy(f / f.sum())  # upfirdn2d.setup_filter([1, 3, 3, 1])


def _fc(weight, bias, activation="linear", lr_multiplier=1.0):
    """FullyConnectedLayer; ``weight`` in torch's [out, in] layout."""
    return _Persistent("FullyConnectedLayer", {"activation": activation, "weight_gain": np.float64(
        lr_multiplier / np.sqrt(weight.shape[1])), "bias_gain": lr_multiplier},
        {"weight": _parameter(weight), "bias": _parameter(bias)},
        init_kwargs=dict(in_features=weight.shape[1], out_features=weight.shape[0], activation=activation,
                         lr_multiplier=lr_multiplier))


def _layer(v, scope, resolution, up, noise, conv_clamp):
    """SynthesisLayer from TensorFlow scope ``scope`` (legacy.py: weights transposed, Conv0_up's flipped, mod_bias + 1,
    noise [0, 0])."""
    weight = v[f"{scope}/weight"][::-1, ::-1] if up == 2 else v[f"{scope}/weight"]
    return _Persistent(
        "SynthesisLayer",
        {"resolution": resolution, "up": up, "use_noise": True, "activation": "lrelu", "conv_clamp": conv_clamp,
         "padding": 1, "act_gain": np.float64(np.sqrt(2))},
        {"weight": _parameter(weight.transpose(3, 2, 0, 1)), "noise_strength": _parameter(v[f"{scope}/noise_strength"]),
         "bias": _parameter(v[f"{scope}/bias"])},
        {"resample_filter": _filter(), "noise_const": torch.from_numpy(np.array(noise[0, 0], np.float32))},
        {"affine": _fc(v[f"{scope}/mod_weight"].T, v[f"{scope}/mod_bias"] + 1)},
        dict(resolution=resolution, up=up, resample_filter=[1, 3, 3, 1], conv_clamp=conv_clamp, channels_last=False))


def _torgb(v, scope, conv_clamp):
    weight = v[f"{scope}/weight"].transpose(3, 2, 0, 1)
    gain = np.float64(1 / np.sqrt(weight.shape[1]))
    return _Persistent("ToRGBLayer", {"conv_clamp": conv_clamp, "weight_gain": gain},
                       {"weight": _parameter(weight), "bias": _parameter(v[f"{scope}/bias"])}, None,
                       {"affine": _fc(v[f"{scope}/mod_weight"].T, v[f"{scope}/mod_bias"] + 1)},
                       dict(w_dim=v[f"{scope}/mod_weight"].shape[0], conv_clamp=conv_clamp, channels_last=False))


def _generator(v, resolution, conv_clamp, generator_kwargs, mapping_layers=8):
    """Generator (MappingNetwork + SynthesisNetwork of SynthesisBlocks) holding TensorFlow variables ``v``."""
    w_dim = v["dlatent_avg"].shape[0]
    blocks, log2 = {}, int(np.log2(resolution))
    for r in range(2, log2 + 1):
        res, tf = 2**r, f"synthesis/{2**r}x{2**r}"
        modules = {} if r == 2 else {"conv0": _layer(v, f"{tf}/Conv0_up", res, 2, v[f"synthesis/noise{2 * r - 5}"],
                                                     conv_clamp)}
        modules["conv1"] = _layer(v, f"{tf}/Conv" if r == 2 else f"{tf}/Conv1", res, 1,
                                  v[f"synthesis/noise{max(2 * r - 4, 0)}"], conv_clamp)
        modules["torgb"] = _torgb(v, f"{tf}/ToRGB", conv_clamp)
        parameters = {"const": _parameter(v["synthesis/4x4/Const/const"][0])} if res == 4 else {}
        blocks[f"b{res}"] = _Persistent(
            "SynthesisBlock",
            {"in_channels": 0 if res == 4 else modules["conv0"].state["_parameters"]["weight"].shape[1],
             "w_dim": w_dim, "resolution": res, "img_channels": 3, "is_last": res == resolution,
             "architecture": "skip", "use_fp16": res >= max(resolution // 8, 8), "channels_last": False,
             "num_conv": 1 if res == 4 else 2, "num_torgb": 1},
            parameters, {"resample_filter": _filter()}, modules)
    synthesis = _Persistent("SynthesisNetwork", {"w_dim": w_dim, "img_resolution": resolution,
                                                 "img_resolution_log2": log2, "img_channels": 3,
                                                 "block_resolutions": [2**i for i in range(2, log2 + 1)],
                                                 "num_ws": 2 * log2 - 2}, modules=blocks)
    fcs = {f"fc{i}": _fc(v[f"mapping/Dense{i}/weight"].T, v[f"mapping/Dense{i}/bias"], "lrelu", 0.01)
           for i in range(mapping_layers)}
    mapping = _Persistent("MappingNetwork", {"z_dim": v["mapping/Dense0/weight"].shape[0], "c_dim": 0, "w_dim": w_dim,
                                             "num_ws": 2 * log2 - 2, "num_layers": mapping_layers, "w_avg_beta": 0.995},
                          buffers={"w_avg": torch.from_numpy(np.array(v["dlatent_avg"], np.float32))}, modules=fcs)
    return _Persistent("Generator", {"z_dim": mapping.state["z_dim"], "c_dim": 0, "w_dim": w_dim,
                                     "img_resolution": resolution, "img_channels": 3, "num_ws": 2 * log2 - 2},
                       modules={"synthesis": synthesis, "mapping": mapping}, init_kwargs=generator_kwargs)


def ada_kwargs(EasyDict, resolution, repository="ada", conv_clamp=None, **synthesis):
    """The Generator's init_kwargs as each repository's training script passes them (small widths)."""
    synthesis = {"channel_base": 512, "channel_max": 32, "num_fp16_res": 4, "conv_clamp": conv_clamp, **synthesis}
    kwargs = dict(z_dim=16, w_dim=16, mapping_kwargs=EasyDict(num_layers=8), c_dim=0, img_resolution=resolution,
                  img_channels=3)
    if repository == "stylegan3":  # its Generator takes the synthesis keywords flat
        return {**kwargs, **synthesis, "fused_modconv_default": "inference_only"}
    return {**kwargs, "synthesis_kwargs": EasyDict(synthesis)}


def write_ada_pickle(path, tf_variables, resolution, conv_clamp=None, repository="ada", protocol=3,
                     module_src=MODULE_SRC, edit=None, **kwargs):
    """Write ``tf_variables`` (what write_stylegan2_pickle returns) as stylegan2-ada-pytorch's training loop would.

    ``kwargs`` override the Generator's init_kwargs (synthesis keywords go into synthesis_kwargs); ``edit(G)`` may
    change the G_ema record (a _Persistent) before it is written; ``module_src`` replaces the stored source. The
    default protocol is 3, Python 3.7's (the published files'); Python 3.8+ writes 4.
    """
    v = {name: np.asarray(value) for name, value in tf_variables.items()}
    with _nvidia_modules() as (reconstruct, EasyDict):
        _Persistent.reconstruct = reconstruct
        top = {k: kwargs.pop(k) for k in list(kwargs) if k in ("z_dim", "w_dim", "c_dim", "img_channels")}
        generator_kwargs = {**ada_kwargs(EasyDict, resolution, repository, conv_clamp, **kwargs), **top}
        G_ema = _generator(v, resolution, conv_clamp, generator_kwargs)
        if edit:
            edit(G_ema)
        G = _generator({k: a * 0.5 for k, a in v.items()}, resolution, conv_clamp, generator_kwargs)
        fromrgb = _Persistent("Conv2dLayer", {"activation": "lrelu", "up": 1, "down": 1, "conv_clamp": conv_clamp,
                                              "padding": 0, "weight_gain": np.float64(1 / np.sqrt(3)),
                                              "act_gain": np.float64(np.sqrt(2))},
                              {"weight": _parameter(np.ones((8, 3, 1, 1))), "bias": _parameter(np.zeros(8))},
                              {"resample_filter": _filter()})
        D = _Persistent("Discriminator", {"c_dim": 0, "img_resolution": resolution, "img_channels": 3}, modules={
            f"b{resolution}": _Persistent("DiscriminatorBlock", {"resolution": resolution, "architecture": "resnet"},
                                          buffers={"resample_filter": _filter()}, modules={"fromrgb": fromrgb})})
        augment_pipe = _Persistent("AugmentPipe", {"xflip": 1.0, "rotate90": 1.0}, buffers={
            "p": torch.zeros([]), "Hz_geom": torch.ones(12) / 12})
        snapshot = dict(training_set_kwargs=dict(class_name="training.dataset.ImageFolderDataset", path="data.zip",
                                                  use_labels=False, max_size=None, xflip=False, resolution=resolution),
                        G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe)
        _Persistent.module_src = module_src
        try:
            with open(path, "wb") as f:
                pickle.dump(snapshot, f, protocol=protocol)
        finally:
            _Persistent.module_src = MODULE_SRC
    return G_ema


# ---------------------------------------------------------------------------------------------------------
# rosinality/stylegan2-pytorch checkpoints.

def _rosinality_state(v, resolution):
    """g_ema's state_dict (convert_weight.py's fill_statedict: transposes, Conv0_up flipped, mod_bias + 1, the
    noise strength a [1] tensor, ToRGB's bias [1, 3, 1, 1]), in the order model.py registers its modules."""
    def tensor(value):
        return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))

    kernel = 4 * _filter()  # Blur(upsample_factor=2) and Upsample: make_kernel([1, 3, 3, 1]) * 4
    state = collections.OrderedDict()
    layers = sum(1 for name in v if name.startswith("mapping/Dense") and name.endswith("/weight"))
    for i in range(layers):
        state[f"style.{i + 1}.weight"] = tensor(v[f"mapping/Dense{i}/weight"].T)
        state[f"style.{i + 1}.bias"] = tensor(v[f"mapping/Dense{i}/bias"])
    state["input.input"] = tensor(v["synthesis/4x4/Const/const"])

    def modconv(scope, target, flip=False, up=False):
        weight = v[f"{scope}/weight"].transpose(3, 2, 0, 1)[None]
        state[f"{target}.conv.weight"] = tensor(weight[:, :, :, ::-1, ::-1] if flip else weight)
        if up:
            state[f"{target}.conv.blur.kernel"] = kernel
        state[f"{target}.conv.modulation.weight"] = tensor(v[f"{scope}/mod_weight"].T)
        state[f"{target}.conv.modulation.bias"] = tensor(v[f"{scope}/mod_bias"] + 1)
        state[f"{target}.noise.weight"] = tensor([v[f"{scope}/noise_strength"]])
        state[f"{target}.activate.bias"] = tensor(v[f"{scope}/bias"])

    def torgb(scope, target, up=True):
        state[f"{target}.bias"] = tensor(v[f"{scope}/bias"].reshape(1, 3, 1, 1))
        if up:
            state[f"{target}.upsample.kernel"] = kernel
        state[f"{target}.conv.weight"] = tensor(v[f"{scope}/weight"].transpose(3, 2, 0, 1)[None])
        state[f"{target}.conv.modulation.weight"] = tensor(v[f"{scope}/mod_weight"].T)
        state[f"{target}.conv.modulation.bias"] = tensor(v[f"{scope}/mod_bias"] + 1)

    modconv("synthesis/4x4/Conv", "conv1")
    torgb("synthesis/4x4/ToRGB", "to_rgb1", up=False)
    log2 = int(np.log2(resolution))
    for i in range(log2 - 2):
        res = 4 * 2 ** (i + 1)
        modconv(f"synthesis/{res}x{res}/Conv0_up", f"convs.{2 * i}", flip=True, up=True)
        modconv(f"synthesis/{res}x{res}/Conv1", f"convs.{2 * i + 1}")
    for i in range(log2 - 2):
        res = 4 * 2 ** (i + 1)
        torgb(f"synthesis/{res}x{res}/ToRGB", f"to_rgbs.{i}")
    for i in range((log2 - 2) * 2 + 1):
        state[f"noises.noise_{i}"] = tensor(v[f"synthesis/noise{i}"])
    state._metadata = collections.OrderedDict({"": {"version": 1}, "style": {"version": 1}})
    return state


def write_rosinality_checkpoint(path, tf_variables, resolution, zipped=True, trained=True, edit=None):
    """Write ``tf_variables`` as rosinality's train.py (``trained``) or convert_weight.py (with latent_avg) would,
    as a zip archive or (``zipped=False``) in torch.save's format of before PyTorch 1.6. ``edit(state)`` may change
    g_ema's state dict first. Returns the state dict."""
    v = {name: np.asarray(value) for name, value in tf_variables.items()}
    state = _rosinality_state(v, resolution)
    if edit:
        edit(state)
    if trained:
        g = _rosinality_state({k: a * 0.5 for k, a in v.items()}, resolution)
        adam = {"state": {i: {"step": torch.tensor(10.0), "exp_avg": torch.zeros_like(t),
                              "exp_avg_sq": torch.ones_like(t)} for i, t in enumerate(g.values())},
                "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99), "eps": 1e-08, "weight_decay": 0, "amsgrad": False,
                                  "maximize": False, "foreach": None, "params": list(range(len(g)))}]}
        checkpoint = {"g": g, "d": collections.OrderedDict({"convs.0.0.weight": torch.ones(8, 3, 1, 1)}),
                      "g_ema": state, "g_optim": adam, "d_optim": {"state": {}, "param_groups": []},
                      "args": argparse.Namespace(size=resolution, latent=16, n_mlp=8, channel_multiplier=2,
                                                 path="lmdb", r1=10.0, augment=False),
                      "ada_aug_p": 0.0}
    else:
        checkpoint = {"g_ema": state, "latent_avg": torch.from_numpy(np.array(v["dlatent_avg"], np.float32))}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=zipped)
    return state
