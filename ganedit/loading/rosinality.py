"""StyleGAN2 checkpoints of rosinality/stylegan2-pytorch: torch.save files holding a dict with ``g_ema`` (the state
dict of its Generator), which is what most converted StyleGAN2 weights on Hugging Face are. Its train.py saves
g, d, g_ema, the optimizers and its options; its convert_weight.py (NVIDIA's TensorFlow files) saves g_ema and
``latent_avg``, NVIDIA's average w. Read by torchpickle.py; only g_ema's tensors (and latent_avg) are read.

Nothing but the state dict describes the architecture, so it is inferred from the shapes: ``style_dim`` (z and w)
from the mapping's first weight, ``n_mlp`` from how many mapping layers there are, ``size`` from how many ToRGB
layers, the channel widths (``channel_multiplier``) from the last layer's, the blur filter from its stored
kernels; the mapping's learning-rate multiplier is rosinality's ``lr_mlp`` = 0.01, which train.py never changes.

Mapped onto ganedit's StyleGAN2 (NVIDIA's TensorFlow arithmetic), as its convert_weight.py maps NVIDIA's variables
the other way: modulated weights [1, out, in, k, k] lose their first dimension, the up-sampling convolutions'
weights are flipped (rosinality's conv_transpose2d convolves where NVIDIA's correlates), the modulation biases
(initialised to 1) lose 1, FusedLeakyReLU's bias is the layer's bias (added before the leaky ReLU and its gain
sqrt(2), as NVIDIA's), NoiseInjection's weight the noise strength and ``noises.noise_<i>`` the layers' fixed noise,
in layer order; ``input.input`` is the constant; ToRGB's [1, 3, 1, 1] bias a [3] one.

Truncation: rosinality's generate.py truncates towards ``mean_latent(4096)``, the mean w of 4096 z drawn at random
on every run. ganedit uses the checkpoint's ``latent_avg`` when it has one, and otherwise the mean w of the 4096 z
``np.random.RandomState(0).randn(4096, z_dim)``, computed at load (and kept by `convert`): the same for every run.
Seeds stay ganedit's (NVIDIA's numpy RandomState per seed, not torch.randn), and so does noise: the stored noise
buffers (rosinality's ``randomize_noise=False``), not generate.py's fresh noise per picture.
"""

import math
import re

import numpy as np
import torch

from ..networks.layers import fir_kernel
from .errors import ModelFileError, shown
from .limits import skeleton
from .torchpickle import TensorRecord, open_torch_save
from .weights import built, flipped, minus_one, state_dict_from

MEAN_LATENT_SAMPLES = 4096  # what rosinality's generate.py averages for its truncation
LR_MLP = 0.01


def _state(path, obj):
    """g_ema's tensors (and latent_avg or None) from the checkpoint's dict."""
    state = obj.get("g_ema") if type(obj) is dict else None
    if type(state) is not dict:
        found = f"a dict of {', '.join(map(shown, obj))}" if type(obj) is dict else f"a {type(obj).__name__}"
        raise ModelFileError(f"{path}: expected rosinality/stylegan2-pytorch's checkpoint, a dict with 'g_ema', found "
                             f"{found}")
    odd = [name for name, value in state.items() if type(name) is not str or not isinstance(value, TensorRecord)]
    if odd:
        raise ModelFileError(f"{path}: g_ema entries that are not named tensors: {shown(odd)}")
    average = obj.get("latent_avg")
    if not (average is None or isinstance(average, TensorRecord)):
        raise ModelFileError(f"{path}: its latent_avg is a {type(average).__name__}, not a tensor")
    return state, average


def _shape(path, tensors, name, ndim):
    if name not in tensors or len(tensors[name].shape) != ndim:
        found = list(tensors[name].shape) if name in tensors else "missing"
        raise ModelFileError(f"{path}: g_ema's {name} is {found}, not a {ndim}-d tensor, as rosinality's Generator has")
    return tensors[name].shape


def _taps(path, tensors):
    """The 1-D blur filter whose kernels (outer product, normalised, times 4 for up-sampling) the state dict holds."""
    kernels = {name: t for name, t in tensors.items() if name.endswith((".blur.kernel", ".upsample.kernel"))}
    if not kernels:
        return [1, 3, 3, 1], kernels  # a 4 px generator up-samples nothing: rosinality's default
    first = next(iter(kernels.values()))
    taps = first.load().float().sum(1).tolist() if first.shape == (4, 4) else None
    for name, tensor in kernels.items():
        if not (taps and tensor.shape == (4, 4) and torch.allclose(tensor.load().float(), 4 * fir_kernel(taps))):
            raise ModelFileError(f"{path}: {name} is not a 4-tap blur kernel (ganedit implements 4-tap filters, such "
                                 "as rosinality's [1, 3, 3, 1])")
    return taps, kernels


def _architecture(path, tensors, taps):
    n_mlp = sum(1 for name in tensors if re.fullmatch(r"style\.\d+\.weight", name))
    style_dim = _shape(path, tensors, "style.1.weight", 2)[1]
    stages = sum(1 for name in tensors if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", name))
    resolution = 4 * 2**stages
    const = _shape(path, tensors, "input.input", 4)[1]
    last = _shape(path, tensors, f"to_rgbs.{stages - 1}.conv.weight" if stages else "to_rgb1.conv.weight", 5)[2]
    # rosinality's widths are 512 up to 32 px, then 16384 * channel_multiplier / res: min(2 * fmap_base / res, 512)
    # with fmap_base = 8192 * channel_multiplier, which the last layer's width gives (when below 512, else any)
    return {"resolution": resolution, "z_dim": style_dim, "w_dim": style_dim, "mapping_layers": n_mlp,
            "mapping_fmaps": style_dim, "mapping_lrmul": LR_MLP, "fmap_base": last * resolution // 2,
            "fmap_max": const, "resample_kernel": taps}


def _table(G):
    """Our state-dict key -> (rosinality's name, its shape as a function of ours or None for the same, adjustment)."""
    table = {"const": ("input.input", None, None)}
    for i in range(len(G.mapping_network.layers)):
        for what in ("weight", "bias"):
            table[f"mapping_network.layers.{i}.{what}"] = (f"style.{i + 1}.{what}", None, None)
    noise = 0
    for spec in G.style_layers:
        res, layer = spec.name.split("/")
        stage = int(math.log2(int(res.split("x")[0]))) - 3  # 8 px: 0
        theirs = {"Conv": "conv1", "ToRGB": "to_rgb1" if stage < 0 else f"to_rgbs.{stage}",
                  "Conv0_up": f"convs.{2 * stage}", "Conv1": f"convs.{2 * stage + 1}"}[layer]
        ours = f"layers.{spec.name.replace('/', '_')}."
        table[ours + "weight"] = (f"{theirs}.conv.weight", lambda s: (1, *s), flipped if layer == "Conv0_up" else None)
        table[ours + "affine.weight"] = (f"{theirs}.conv.modulation.weight", None, None)
        table[ours + "affine.bias"] = (f"{theirs}.conv.modulation.bias", None, minus_one)
        if layer == "ToRGB":
            table[ours + "bias"] = (f"{theirs}.bias", lambda s: (1, s[0], 1, 1), None)
            continue
        table[ours + "bias"] = (f"{theirs}.activate.bias", None, None)
        table[ours + "noise_strength"] = (f"{theirs}.noise.weight", lambda s: (1,), None)
        table[ours + "noise"] = (f"noises.noise_{noise}", None, None)
        noise += 1
    return table


def mean_w(G, samples=MEAN_LATENT_SAMPLES):
    """The mean w of ``samples`` fixed z (numpy RandomState(0)), as rosinality's mean_latent averages random ones."""
    z = torch.from_numpy(np.random.RandomState(0).randn(samples, G.z_dim).astype(np.float32)).to(G.device)
    with torch.no_grad():
        return G.mapping_network(z).mean(0)


def load_rosinality(path, device="cpu"):
    """The generator of the rosinality/stylegan2-pytorch checkpoint at ``path`` (either torch.save format)."""
    with open_torch_save(path) as obj:
        return _generator(path, obj, device)


def _generator(path, obj, device):
    tensors, average = _state(path, obj)
    taps, kernels = _taps(path, tensors)
    shapes = skeleton(path, "stylegan2", _architecture(path, tensors, taps))
    table = _table(shapes)
    if average is not None:
        tensors = {**tensors, "latent_avg": average}
        table["w_avg"] = ("latent_avg", None, None)
    others = {name: t for name, t in tensors.items() if name not in kernels}
    source = "inferred from g_ema's shapes"
    state = state_dict_from(path, shapes, table, others, source)
    G = built(shapes, {"w_avg": torch.zeros(shapes.w_dim), **state}, device)
    if average is None:
        G.w_avg.copy_(mean_w(G))
    return G
