"""NVIDIA's graphs, as tests see them: one tiny official-format file per family (the ``fam`` fixture), slow
float64 numpy transcriptions of NVIDIA's TensorFlow ops (NVlabs/stylegan training/networks_stylegan.py, NVlabs/stylegan2
training/networks_stylegan2.py and its upfirdn_2d ops, written independently of ganedit's torch code), and what those
graphs say a loaded generator must look like. A test helper, not a test.
"""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from official_files import STYLEGAN2_KWARGS, STYLEGAN_KWARGS, write_stylegan2_pickle, write_stylegan_pickle

from ganedit import load_generator

REPO = Path(__file__).resolve().parent.parent
SQRT2 = np.sqrt(2.0)


# ---------------------------------------------------------------------------------------------------------
# Fixtures: one tiny official file per family, loaded once.

@pytest.fixture(scope="module", params=["stylegan", "stylegan2"])
def fam(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param) / f"tiny-{request.param}.pkl"
    if request.param == "stylegan":
        variables = write_stylegan_pickle(path, resolution=128, seed=0)
        kwargs, resolution = STYLEGAN_KWARGS, 128
    else:
        variables = write_stylegan2_pickle(path, resolution=64, seed=1)
        kwargs, resolution = STYLEGAN2_KWARGS, 64
    G = load_generator(path)
    return SimpleNamespace(kind=request.param, path=path, vars=variables, G=G, resolution=resolution, kw=kwargs)


def _z(seed, z_dim, n=1):
    return torch.from_numpy(np.random.RandomState(seed).randn(n, z_dim).astype(np.float32))


# ---------------------------------------------------------------------------------------------------------
# numpy transcriptions of NVIDIA's TensorFlow ops (float64, NCHW, TF weight layouts).

def np_lrelu(x):
    return np.maximum(x, 0.2 * x)


def np_conv2d_same(x, w):
    """tf.nn.conv2d(x, w [k, k, in, out], stride 1, 'SAME'): cross-correlation with (k-1)/2 zeros each side."""
    p = w.shape[0] // 2
    windows = sliding_window_view(np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))), w.shape[:2], axis=(2, 3))
    return np.einsum("nihwab,abio->nohw", windows, w)


def np_conv2d_transpose_valid(x, w, stride):
    """tf.nn.conv2d_transpose(x, w [k, k, out, in], 'VALID'): every input pixel (i, j) adds w[a, b] @ x[:, i, j]
    at output (stride*i + a, stride*j + b); the output is (H-1)*stride + k wide."""
    n, _, h, wd = x.shape
    k, out_ch = w.shape[0], w.shape[2]
    out = np.zeros((n, out_ch, (h - 1) * stride + k, (wd - 1) * stride + k))
    for a in range(k):
        for b in range(w.shape[1]):
            out[:, :, a:a + stride * (h - 1) + 1:stride, b:b + stride * (wd - 1) + 1:stride] += np.einsum(
                "nihw,oi->nohw", x, w[a, b]
            )
    return out


def np_conv2d_transpose_same(x, w, stride):
    """tf.nn.conv2d_transpose(..., output_shape=[N, out, stride*H, stride*W], padding='SAME'): the transpose of a
    SAME conv2d, i.e. the VALID result cropped by the forward conv's leading padding."""
    h, wd = x.shape[2:]
    k = w.shape[0]
    pad_before = max((h - 1) * stride + k - stride * h, 0) // 2
    full = np_conv2d_transpose_valid(x, w, stride)
    return full[:, :, pad_before:pad_before + stride * h, pad_before:pad_before + stride * wd]


def np_depthwise_correlate(x, k):
    windows = sliding_window_view(x, k.shape, axis=(2, 3))
    return np.einsum("nchwab,ab->nchw", windows, k)


def np_setup_kernel(taps):
    k = np.asarray(taps, dtype=np.float64)
    k = np.outer(k, k)
    return k / k.sum()


def np_upfirdn_2d(x, k, up, pad0, pad1):
    """upfirdn_2d_ref: insert up-1 zeros after each sample, pad (pad0, pad1), convolve with k (correlate with flipped k)."""
    assert pad0 >= 0 and pad1 >= 0
    n, c, h, w = x.shape
    u = np.zeros((n, c, h * up, w * up))
    u[:, :, ::up, ::up] = x
    u = np.pad(u, ((0, 0), (0, 0), (pad0, pad1), (pad0, pad1)))
    return np_depthwise_correlate(u, k[::-1, ::-1])


def np_upsample_2d(x, taps=(1, 3, 3, 1), factor=2):
    k = np_setup_kernel(taps) * factor**2
    p = k.shape[0] - factor
    return np_upfirdn_2d(x, k, factor, (p + 1) // 2 + factor - 1, p // 2)


def np_upsample_conv_2d(x, w, taps=(1, 3, 3, 1), factor=2):
    """upsample_conv_2d: transposed conv with the flipped weight (stride 2, VALID), then the FIR filter x factor^2."""
    k = np_setup_kernel(taps) * factor**2
    p = (k.shape[0] - factor) - (w.shape[1] - 1)
    w = w[::-1, ::-1].transpose(0, 1, 3, 2)  # [k, k, out, in]
    x = np_conv2d_transpose_valid(x, w, factor)
    return np_upfirdn_2d(x, k, 1, (p + 1) // 2 + factor - 1, p // 2 + 1)


def np_blur(x, taps=(1, 2, 1)):
    """_blur2d: depthwise_conv2d with the normalised kernel, 'SAME'."""
    k = np_setup_kernel(taps)
    p = k.shape[0] // 2
    return np_depthwise_correlate(np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))), k[::-1, ::-1])


def np_upscale2d(x, factor=2):
    return x.repeat(factor, axis=2).repeat(factor, axis=3)


def np_fused_upscale_conv(x, w):
    """upscale2d_conv2d with fused_scale: w [k, k, in, out] -> [k, k, out, in], zero-padded and summed over
    four shifts into a 4x4 kernel, applied by a stride-2 'SAME' conv2d_transpose."""
    w = w.transpose(0, 1, 3, 2)
    w = np.pad(w, ((1, 1), (1, 1), (0, 0), (0, 0)))
    w = w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]
    return np_conv2d_transpose_same(x, w, 2)


def np_dense(x, w, gain=1.0, lrmul=1.0):
    """dense(): tf.matmul(x, w [in, out] * gain * lrmul / sqrt(in))."""
    return x @ (w.astype(np.float64) * gain * lrmul / np.sqrt(w.shape[0]))


def np_mapping(v, z, kind, lrmul=0.01):
    """G_mapping: normalise z, then Dense{i} with lrelu. StyleGAN folds gain sqrt(2) into the weight;
    StyleGAN2's fused_bias_act applies it after the activation."""
    x = z.astype(np.float64)
    x = x / np.sqrt(np.mean(x**2, axis=1, keepdims=True) + 1e-8)
    i = 0
    while f"mapping/Dense{i}/weight" in v:
        w, b = v[f"mapping/Dense{i}/weight"], v[f"mapping/Dense{i}/bias"]
        if kind == "stylegan":
            x = np_lrelu(np_dense(x, w, SQRT2, lrmul) + b * lrmul)
        else:
            x = np_lrelu(np_dense(x, w, 1.0, lrmul) + b * lrmul) * SQRT2
        i += 1
    return x


def np_dlatents(v, z, kind, num_layers, psi):
    """G_style / G_main: broadcast w to every layer, then truncate toward dlatent_avg (StyleGAN: layers < 8)."""
    w = np_mapping(v, z, kind)
    dl = np.repeat(w[:, None], num_layers, axis=1)
    cutoff = 8 if kind == "stylegan" else num_layers
    coefs = np.where(np.arange(num_layers)[None, :, None] < cutoff, psi, 1.0)
    avg = v["dlatent_avg"].astype(np.float64)
    return avg + (dl - avg) * coefs


def np_stylegan_synthesis(v, dl, resolution, fused_from=128):
    """G_synthesis (StyleGAN, fixed structure, noise from the stored variables)."""
    log2 = int(np.log2(resolution))

    def epilogue(x, idx, scope):
        x = x + v[f"synthesis/noise{idx}"] * v[f"synthesis/{scope}/Noise/weight"][None, :, None, None]
        x = np_lrelu(x + v[f"synthesis/{scope}/bias"][None, :, None, None])
        x = x - x.mean(axis=(2, 3), keepdims=True)
        x = x / np.sqrt(np.mean(x**2, axis=(2, 3), keepdims=True) + 1e-8)
        style = np_dense(dl[:, idx], v[f"synthesis/{scope}/StyleMod/weight"]) + v[f"synthesis/{scope}/StyleMod/bias"]
        style = style.reshape(-1, 2, x.shape[1])
        return x * (style[:, 0, :, None, None] + 1) + style[:, 1, :, None, None]

    def conv_weight(scope):
        w = v[f"synthesis/{scope}/weight"].astype(np.float64)
        return w * SQRT2 / np.sqrt(np.prod(w.shape[:-1]))

    const = v["synthesis/4x4/Const/const"].astype(np.float64)
    x = epilogue(np.repeat(const, dl.shape[0], axis=0), 0, "4x4/Const")
    x = epilogue(np_conv2d_same(x, conv_weight("4x4/Conv")), 1, "4x4/Conv")
    for res_log2 in range(3, log2 + 1):
        r = 2**res_log2
        w = conv_weight(f"{r}x{r}/Conv0_up")
        up = np_fused_upscale_conv(x, w) if x.shape[2] * 2 >= fused_from else np_conv2d_same(np_upscale2d(x), w)
        x = epilogue(np_blur(up), res_log2 * 2 - 4, f"{r}x{r}/Conv0_up")
        x = epilogue(np_conv2d_same(x, conv_weight(f"{r}x{r}/Conv1")), res_log2 * 2 - 3, f"{r}x{r}/Conv1")
    w = v["synthesis/ToRGB_lod0/weight"].astype(np.float64)
    w = w / np.sqrt(np.prod(w.shape[:-1]))
    return np_conv2d_same(x, w) + v["synthesis/ToRGB_lod0/bias"][None, :, None, None]


def np_modulated_conv(x, wlat, weight, mod_weight, mod_bias, up=False, demodulate=True, taps=(1, 3, 3, 1)):
    """modulated_conv2d_layer with fused_modconv: per-sample weights ww = w * s (s = affine(w) + 1), demodulated
    by rsqrt(sum ww^2 + 1e-8) per output channel, applied sample by sample."""
    w = weight.astype(np.float64) / np.sqrt(np.prod(weight.shape[:-1]))
    s = np_dense(wlat, mod_weight) + mod_bias + 1  # [N, in]
    ww = w[None] * s[:, None, None, :, None]  # [N, k, k, in, out]
    if demodulate:
        d = 1 / np.sqrt(np.sum(ww**2, axis=(1, 2, 3)) + 1e-8)  # [N, out]
        ww = ww * d[:, None, None, None, :]
    if up:
        return np.concatenate([np_upsample_conv_2d(x[i:i + 1], ww[i], taps) for i in range(x.shape[0])])
    return np.concatenate([np_conv2d_same(x[i:i + 1], ww[i]) for i in range(x.shape[0])])


def np_stylegan2_synthesis(v, dl, resolution):
    """G_synthesis_stylegan2, architecture 'skip', noise from the stored variables."""
    log2 = int(np.log2(resolution))

    def layer(x, idx, scope, up=False):
        p = f"synthesis/{scope}/"
        x = np_modulated_conv(x, dl[:, idx], v[p + "weight"], v[p + "mod_weight"], v[p + "mod_bias"], up=up)
        x = x + v[f"synthesis/noise{idx}"] * v[p + "noise_strength"]
        return np_lrelu(x + v[p + "bias"][None, :, None, None]) * SQRT2

    def torgb(x, idx, scope):
        p = f"synthesis/{scope}/"
        t = np_modulated_conv(x, dl[:, idx], v[p + "weight"], v[p + "mod_weight"], v[p + "mod_bias"], demodulate=False)
        return t + v[p + "bias"][None, :, None, None]

    x = np.repeat(v["synthesis/4x4/Const/const"].astype(np.float64), dl.shape[0], axis=0)
    x = layer(x, 0, "4x4/Conv")
    y = torgb(x, 1, "4x4/ToRGB")
    for res_log2 in range(3, log2 + 1):
        r = 2**res_log2
        x = layer(x, res_log2 * 2 - 5, f"{r}x{r}/Conv0_up", up=True)
        x = layer(x, res_log2 * 2 - 4, f"{r}x{r}/Conv1")
        y = np_upsample_2d(y) + torgb(x, res_log2 * 2 - 3, f"{r}x{r}/ToRGB")
    return y


def assert_close(actual, expected, rtol=1e-4, atol_frac=1e-4):
    actual = actual.detach().double().numpy() if isinstance(actual, torch.Tensor) else actual
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol_frac * np.abs(expected).max())


# ---------------------------------------------------------------------------------------------------------
# What NVIDIA's graphs say the loaded generator must look like.

def expected_style_layers(kind, resolution, v):
    """(name, resolution, channels, activation) per style input, in synthesis order, channels read from the
    file: StyleGAN's StyleMod/weight is [w_dim, 2C]; StyleGAN2's mod_weight is [w_dim, C_in]."""
    log2 = int(np.log2(resolution))
    if kind == "stylegan":
        names = [("4x4/Const", 4), ("4x4/Conv", 4)]
        names += [(f"{2**r}x{2**r}/{layer}", 2**r) for r in range(3, log2 + 1) for layer in ("Conv0_up", "Conv1")]
        return [(n, res, v[f"synthesis/{n}/StyleMod/weight"].shape[1] // 2, n) for n, res in names]
    out = [("4x4/Conv", 4, "4x4/Const"), ("4x4/ToRGB", 4, "4x4/Conv")]
    previous = "4x4/Conv"
    for r in range(3, log2 + 1):
        res = 2**r
        out += [(f"{res}x{res}/Conv0_up", res // 2, previous), (f"{res}x{res}/Conv1", res, f"{res}x{res}/Conv0_up"),
                (f"{res}x{res}/ToRGB", res, f"{res}x{res}/Conv1")]
        previous = f"{res}x{res}/Conv1"
    return [(n, res, v[f"synthesis/{n}/mod_weight"].shape[1], act) for n, res, act in out]


def w_index_of(kind, name):
    """Which dlatent (layer_idx) NVIDIA's graph feeds each style input."""
    res_log2 = 2 if name.startswith("4x4/") else int(np.log2(int(name.split("x")[0])))
    layer = name.split("/")[1]
    if kind == "stylegan":  # layer_epilogue(x, layer_idx)
        return {"Const": 0, "Conv": 1, "Conv0_up": res_log2 * 2 - 4, "Conv1": res_log2 * 2 - 3}[layer]
    return {"Conv": 0, "Conv0_up": res_log2 * 2 - 5, "Conv1": res_log2 * 2 - 4, "ToRGB": res_log2 * 2 - 3}[layer]


def torch_layout(name, value):
    """NVIDIA's TF layout -> torch's: tf.matmul(x, w[in, out]) is F.linear with weight [out, in];
    tf.nn.conv2d filters [k, k, in, out] are torch's [out, in, k, k]; const / noise images are already NCHW."""
    value = np.asarray(value)
    last = name.split("/")[-1]
    if value.ndim == 2:
        value = value.T
    elif value.ndim == 4 and last != "const" and not last.startswith("noise"):
        value = value.transpose(3, 2, 0, 1)
    return torch.from_numpy(value.copy())  # (np.ascontiguousarray would turn a 0-d array into shape [1])


def used_variables(v):
    """The Gs variables that define the final-resolution picture (not the progressive-growing leftovers)."""
    unused = lambda n: n in ("lod", "synthesis/lod") or (n.startswith("synthesis/ToRGB_lod") and not n.startswith("synthesis/ToRGB_lod0/"))
    return {n: a for n, a in v.items() if not unused(n)}


def tiny_file(tmp_path, family="stylegan", **kwargs):
    """A very small official-format file of ``family`` (32 px StyleGAN, 16 px StyleGAN2) in ``tmp_path``."""
    path = tmp_path / f"{family}.pkl"
    if family == "stylegan":
        write_stylegan_pickle(path, resolution=32, **kwargs)
    else:
        write_stylegan2_pickle(path, resolution=16, **kwargs)
    return path
