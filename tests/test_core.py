"""The core: StyleGAN / StyleGAN2 generators in pure PyTorch, loaded safely from NVIDIA's official files.

The official-format files are written by tests/official_files.py from NVIDIA's graph definitions; the
numerical references below are slow numpy transcriptions of NVIDIA's TensorFlow ops (NVlabs/stylegan
training/networks_stylegan.py, NVlabs/stylegan2 training/networks_stylegan2.py and its upfirdn_2d ops),
written independently of ganedit's torch code.
"""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from official_files import STYLEGAN2_KWARGS, STYLEGAN_KWARGS, write_stylegan2_pickle, write_stylegan_pickle

import ganedit
from ganedit import MODELS, ModelFileError, WeightsUnavailableError, load_generator, save_generator, seed_to_z
from ganedit.networks.layers import fir_kernel
from ganedit.networks.stylegan import AdaINLayer
from ganedit.networks.stylegan2 import ModulatedConv, upsample_image

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


def np_modulated_conv(x, wlat, weight, mod_weight, mod_bias, up=False, demodulate=True):
    """modulated_conv2d_layer with fused_modconv: per-sample weights ww = w * s (s = affine(w) + 1), demodulated
    by rsqrt(sum ww^2 + 1e-8) per output channel, applied sample by sample."""
    w = weight.astype(np.float64) / np.sqrt(np.prod(weight.shape[:-1]))
    s = np_dense(wlat, mod_weight) + mod_bias + 1  # [N, in]
    ww = w[None] * s[:, None, None, :, None]  # [N, k, k, in, out]
    if demodulate:
        d = 1 / np.sqrt(np.sum(ww**2, axis=(1, 2, 3)) + 1e-8)  # [N, out]
        ww = ww * d[:, None, None, None, :]
    op = np_upsample_conv_2d if up else np_conv2d_same
    return np.concatenate([op(x[i:i + 1], ww[i]) for i in range(x.shape[0])])


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


# ---------------------------------------------------------------------------------------------------------
# Loading official files.

def test_loaded_architecture(fam):
    G, v = fam.G, fam.vars
    assert G.kind == fam.kind
    assert G.resolution == fam.resolution
    assert G.z_dim == fam.kw["latent_size"] == v["mapping/Dense0/weight"].shape[0]
    assert G.w_dim == fam.kw["dlatent_size"] == v["dlatent_avg"].shape[0]
    assert G.num_ws == 2 * int(np.log2(fam.resolution)) - 2
    got = [(s.name, s.resolution, s.channels, s.activation) for s in G.style_layers]
    assert got == expected_style_layers(fam.kind, fam.resolution, v)
    # The widths really vary with resolution in these files, so a wrong channel rule would show.
    assert len({s.channels for s in G.style_layers}) >= 3
    assert G.name == fam.path.stem and G.info is None
    assert not G.training and not any(p.requires_grad for p in G.parameters())


def test_every_parameter_comes_from_the_file_in_torch_layout(fam):
    state = fam.G.state_dict()
    matched = {}
    for name, value in used_variables(fam.vars).items():
        expected = torch_layout(name, value)
        hits = [k for k, t in state.items() if t.shape == expected.shape and torch.equal(t, expected)]
        assert len(hits) == 1, f"{name}: found in {hits}"
        matched[hits[0]] = name
    assert sorted(matched) == sorted(state), f"not from the file: {sorted(set(state) - set(matched))}"


def test_spot_checks_of_the_layout(fam):
    sd, v = fam.G.state_dict(), fam.vars
    t = lambda a: torch.from_numpy(np.asarray(a).copy())
    assert torch.equal(sd["w_avg"], t(v["dlatent_avg"]))
    assert torch.equal(sd["mapping_network.layers.0.weight"], t(v["mapping/Dense0/weight"].T))
    assert torch.equal(sd["mapping_network.layers.7.bias"], t(v["mapping/Dense7/bias"]))
    if fam.kind == "stylegan":
        w = v["synthesis/128x128/Conv0_up/weight"]
        assert w.shape == (3, 3, 8, 4)
        assert torch.equal(sd["layers.128x128_Conv0_up.weight"], t(w.transpose(3, 2, 0, 1)))
        assert torch.equal(sd["layers.16x16_Conv0_up.style.weight"], t(v["synthesis/16x16/Conv0_up/StyleMod/weight"].T))
        assert torch.equal(sd["layers.32x32_Conv1.noise"], t(v["synthesis/noise7"]))
        assert torch.equal(sd["layers.4x4_Const.const"], t(v["synthesis/4x4/Const/const"]))
        assert torch.equal(sd["layers.64x64_Conv1.noise_weight"], t(v["synthesis/64x64/Conv1/Noise/weight"]))
        assert torch.equal(sd["to_rgb_weight"], t(v["synthesis/ToRGB_lod0/weight"].transpose(3, 2, 0, 1)))
    else:
        w = v["synthesis/32x32/Conv0_up/weight"]
        assert w.shape == (3, 3, 32, 16)
        assert torch.equal(sd["layers.32x32_Conv0_up.weight"], t(w.transpose(3, 2, 0, 1)))
        assert torch.equal(sd["layers.4x4_ToRGB.affine.weight"], t(v["synthesis/4x4/ToRGB/mod_weight"].T))
        assert torch.equal(sd["layers.16x16_Conv1.noise"], t(v["synthesis/noise4"]))
        assert torch.equal(sd["layers.32x32_Conv0_up.noise"], t(v["synthesis/noise5"]))
        assert torch.equal(sd["layers.8x8_Conv1.noise_strength"], t(v["synthesis/8x8/Conv1/noise_strength"]))
        assert torch.equal(sd["const"], t(v["synthesis/4x4/Const/const"]))


@pytest.mark.parametrize("protocol", [2, 3, 4])
@pytest.mark.parametrize("legacy_numpy", [True, False])
def test_pickle_protocols_and_numpy_module_names(tmp_path, protocol, legacy_numpy):
    path = tmp_path / "g.pkl"
    v = write_stylegan2_pickle(path, resolution=16, seed=5, protocol=protocol, legacy_numpy=legacy_numpy)
    data = path.read_bytes()
    assert (b"numpy.core.multiarray" in data) == legacy_numpy
    assert b"dnnlib.tflib.network" in data and "dnnlib" not in sys.modules
    G = load_generator(path)
    assert torch.equal(G.w_avg, torch.from_numpy(v["dlatent_avg"]))
    reference = write_stylegan2_pickle(tmp_path / "ref.pkl", resolution=16, seed=5)
    assert G.fingerprint == load_generator(tmp_path / "ref.pkl").fingerprint
    assert reference.keys() == v.keys()


# ---------------------------------------------------------------------------------------------------------
# The public API: mapping, truncation, styles, synthesis.

def test_mapping_matches_nvidia_graph(fam):
    z = _z(3, fam.G.z_dim, n=4)
    w = fam.G.mapping(z)
    assert w.shape == (4, fam.G.w_dim) and w.dtype == torch.float32
    assert_close(w, np_mapping(fam.vars, z.numpy(), fam.kind))


def test_truncation(fam):
    G = fam.G
    z = _z(4, G.z_dim, n=3)
    w = G.mapping(z)
    assert torch.equal(G.mapping(z, truncation_psi=1.0), w)
    w_avg = torch.from_numpy(fam.vars["dlatent_avg"])
    assert not torch.allclose(w, w_avg.expand_as(w), atol=1e-3)
    zero = G.mapping(z, truncation_psi=0)
    half = G.mapping(z, truncation_psi=0.5)
    if fam.kind == "stylegan2":  # G_main: every layer truncated, one w for all
        assert zero.shape == (3, G.w_dim)
        torch.testing.assert_close(zero, w_avg.expand(3, -1), rtol=0, atol=1e-6)
        torch.testing.assert_close(half, (w + w_avg) / 2, rtol=1e-6, atol=1e-6)
    else:  # G_style: truncation_cutoff=8, later layers untruncated
        assert G.num_ws == 12
        assert zero.shape == (3, G.num_ws, G.w_dim)
        torch.testing.assert_close(zero[:, :8], w_avg.expand(3, 8, -1), rtol=0, atol=1e-6)
        assert torch.equal(zero[:, 8:], w[:, None].expand(3, 4, -1))
        torch.testing.assert_close(half[:, :8], ((w + w_avg) / 2)[:, None].expand(3, 8, -1), rtol=1e-6, atol=1e-6)
    dl = np_dlatents(fam.vars, z.numpy(), fam.kind, G.num_ws, 0.5)
    got = half if half.ndim == 3 else half[:, None].expand(-1, G.num_ws, -1)
    assert_close(got, dl)


def test_styles_match_nvidia_affine_maps(fam):
    G, v = fam.G, fam.vars
    z = _z(5, G.z_dim, n=2)
    # One distinct w per layer, so that feeding a style the wrong w would show.
    ws = G.mapping(_z(6, G.z_dim, n=2 * G.num_ws)).reshape(2, G.num_ws, G.w_dim)
    for w in (G.mapping(z), ws):
        styles = G.styles(w)
        assert isinstance(styles, ganedit.Styles) and len(styles) == len(G.style_layers)
        for spec, sigma in zip(G.style_layers, styles):
            assert sigma.shape == (2, spec.channels)
        if fam.kind == "stylegan":
            assert styles.bias is not None and len(styles.bias) == len(G.style_layers)
        else:
            assert styles.bias is None
        wn = w.numpy() if w.ndim == 3 else np.repeat(w.numpy()[:, None], G.num_ws, axis=1)
        for i, (spec, sigma) in enumerate(zip(G.style_layers, styles)):
            wl = wn[:, w_index_of(fam.kind, spec.name)]
            if fam.kind == "stylegan":
                style = np_dense(wl, v[f"synthesis/{spec.name}/StyleMod/weight"]) + v[f"synthesis/{spec.name}/StyleMod/bias"]
                c = spec.channels
                assert_close(sigma, style[:, :c] + 1)
                assert_close(styles.bias[i], style[:, c:])
            else:
                s = np_dense(wl, v[f"synthesis/{spec.name}/mod_weight"]) + v[f"synthesis/{spec.name}/mod_bias"] + 1
                assert_close(sigma, s)


def test_synthesis_shapes_and_activations(fam):
    G = fam.G
    styles = G.styles(G.mapping(_z(7, G.z_dim, n=2)))
    images = G.synthesis(styles)
    assert images.shape == (2, 3, G.resolution, G.resolution) and images.dtype == torch.float32
    again, activations = G.synthesis(styles, return_activations=True)
    assert torch.equal(again, images)
    for spec in G.style_layers:
        assert activations[spec.activation].shape == (2, spec.channels, spec.resolution, spec.resolution), spec


def test_noise_modes(fam):
    G = fam.G
    styles = G.styles(G.mapping(_z(8, G.z_dim, n=2)))
    const = G.synthesis(styles, noise_mode="const")
    assert torch.equal(G.synthesis(styles, noise_mode="const"), const)
    assert torch.equal(G.synthesis(styles), const)  # const is the default
    random_1 = G.synthesis(styles, noise_mode="random")
    random_2 = G.synthesis(styles, noise_mode="random")
    assert not torch.allclose(random_1, random_2, atol=1e-4)
    assert not torch.allclose(random_1, const, atol=1e-4)
    none = G.synthesis(styles, noise_mode="none")
    assert not torch.allclose(none, const, atol=1e-4)
    assert torch.equal(G.synthesis(styles, noise_mode="none"), none)
    with pytest.raises(ValueError):
        G.synthesis(styles, noise_mode="fresh")


@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_forward_is_mapping_styles_synthesis(fam, psi):
    G = fam.G
    z = _z(9, G.z_dim, n=2)
    expected = G.synthesis(G.styles(G.mapping(z, truncation_psi=psi)))
    assert torch.equal(G(z, truncation_psi=psi), expected)
    assert not torch.equal(G(_z(10, G.z_dim, n=2), truncation_psi=psi), expected)


def test_images_match_nvidia_graph(fam):
    """The whole generator against a numpy transcription of NVIDIA's graph, with the stored noise."""
    G, v = fam.G, fam.vars
    z = _z(11, G.z_dim, n=2)
    dl = np_dlatents(v, z.numpy(), fam.kind, G.num_ws, 0.7)
    if fam.kind == "stylegan":
        expected = np_stylegan_synthesis(v, dl, G.resolution)
    else:
        expected = np_stylegan2_synthesis(v, dl, G.resolution)
    assert np.abs(expected).max() > 0.1
    assert_close(G(z, truncation_psi=0.7, noise_mode="const"), expected, rtol=1e-3, atol_frac=2e-4)


# ---------------------------------------------------------------------------------------------------------
# The trickiest ops, one by one, against NVIDIA's definitions.

def _set(param, array):
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.array(array, dtype=np.float32)))


def test_stylegan_fused_upscale_conv_is_nvidias():
    rng = np.random.RandomState(0)
    in_ch, out_ch, size = 3, 4, 5
    w_tf = rng.randn(3, 3, in_ch, out_ch).astype(np.float32)
    x = rng.randn(2, in_ch, size, size).astype(np.float32)
    w_eff = w_tf.astype(np.float64) * SQRT2 / np.sqrt(9 * in_ch)  # get_weight(gain=sqrt(2), use_wscale=True)
    fused_ref = np_fused_upscale_conv(x.astype(np.float64), w_eff)
    plain_ref = np_conv2d_same(np_upscale2d(x.astype(np.float64)), w_eff)
    assert fused_ref.shape == plain_ref.shape == (2, out_ch, 2 * size, 2 * size)
    outputs = {}
    for fused in (True, False):
        layer = AdaINLayer("up", in_ch, out_ch, 2 * size, w_dim=6, fused=fused)
        _set(layer.weight, w_tf.transpose(3, 2, 0, 1))
        with torch.no_grad():
            outputs[fused] = layer._upscale_conv(torch.from_numpy(x))
        assert_close(outputs[fused], fused_ref if fused else plain_ref, rtol=1e-5, atol_frac=1e-6)


def test_stylegan_fused_and_plain_upscale_conv_differ_by_a_kernel_flip():
    """NVIDIA's fused op (conv2d_transpose, the gradient of a correlation) equals nearest upscaling followed by the
    3x3 conv with the SPATIALLY FLIPPED kernel, over the whole image; with the same kernel the two paths agree
    only for symmetric kernels. Files trained at >= 128 px hold fused-convention weights, so the choice of
    path (fused_scale='auto') matters and must be NVIDIA's."""
    rng = np.random.RandomState(3)
    w = rng.randn(3, 3, 3, 4)
    x = rng.randn(2, 3, 6, 6)
    fused = np_fused_upscale_conv(x, w)
    np.testing.assert_allclose(fused, np_conv2d_same(np_upscale2d(x), w[::-1, ::-1]), rtol=1e-10, atol=1e-10)
    assert np.abs(fused - np_conv2d_same(np_upscale2d(x), w)).max() > 0.1
    symmetric = w + w[::-1, ::-1]
    np.testing.assert_allclose(np_fused_upscale_conv(x, symmetric), np_conv2d_same(np_upscale2d(x), symmetric),
                               rtol=1e-10, atol=1e-10)
    # The same identity between our two torch paths.
    layers = {f: AdaINLayer("up", 3, 4, 12, w_dim=6, fused=f) for f in (True, False)}
    _set(layers[True].weight, w.transpose(3, 2, 0, 1))
    _set(layers[False].weight, w[::-1, ::-1].transpose(3, 2, 0, 1))
    with torch.no_grad():
        xt = torch.from_numpy(x.astype(np.float32))
        torch.testing.assert_close(layers[True]._upscale_conv(xt), layers[False]._upscale_conv(xt), rtol=1e-5, atol=1e-5)


def test_stylegan_uses_the_fused_op_from_128px_like_nvidia(tmp_path):
    write_stylegan_pickle(tmp_path / "g.pkl", resolution=128)
    G = load_generator(tmp_path / "g.pkl")
    fused = {spec.name: layer.fused for spec, layer in zip(G.style_layers, G.layers.values()) if "Conv0_up" in spec.name}
    # upscale2d_conv2d: fused_scale='auto' means min(x.shape[2:]) * 2 >= 128
    assert fused == {f"{r}x{r}/Conv0_up": r >= 128 for r in (8, 16, 32, 64, 128)}


@pytest.mark.parametrize("case", ["up", "conv", "torgb"])
def test_stylegan2_modulated_conv_is_nvidias(case):
    rng = np.random.RandomState(1)
    in_ch, out_ch, w_dim, size, n = 4, 5, 6, 5, 3
    kernel, up, demodulate = {"up": (3, True, True), "conv": (3, False, True), "torgb": (1, False, False)}[case]
    weight = rng.randn(kernel, kernel, in_ch, out_ch).astype(np.float32)
    mod_weight = rng.randn(w_dim, in_ch).astype(np.float32)
    mod_bias = (0.3 * rng.randn(in_ch)).astype(np.float32)
    bias = (0.3 * rng.randn(out_ch)).astype(np.float32)
    x = rng.randn(n, in_ch, size, size).astype(np.float32)
    wlat = rng.randn(n, w_dim).astype(np.float32)
    out_size = 2 * size if up else size
    layer = ModulatedConv(in_ch, out_ch, kernel, w_dim, resolution=None if case == "torgb" else out_size, up=up,
                          demodulate=demodulate)
    _set(layer.weight, weight.transpose(3, 2, 0, 1))
    _set(layer.affine.weight, mod_weight.T)
    _set(layer.affine.bias, mod_bias)
    _set(layer.bias, bias)
    if case != "torgb":
        _set(layer.noise_strength, np.float32(0.7))  # must not matter with noise_mode 'none'
    kernel_2d = torch.from_numpy(np_setup_kernel([1, 3, 3, 1]).astype(np.float32))
    with torch.no_grad():
        sigma = layer.style_of(torch.from_numpy(wlat))
        out = layer(torch.from_numpy(x), sigma, "none", kernel_2d)
    expected = np_modulated_conv(x.astype(np.float64), wlat, weight, mod_weight, mod_bias, up=up, demodulate=demodulate)
    expected = expected + bias[None, :, None, None]
    if case != "torgb":
        expected = np_lrelu(expected) * SQRT2
    assert expected.shape == (n, out_ch, out_size, out_size)
    assert_close(out, expected, rtol=1e-5, atol_frac=1e-5)


def test_stylegan2_upsample_2d_is_nvidias():
    rng = np.random.RandomState(2)
    y = rng.randn(2, 3, 5, 5).astype(np.float32)
    kernel_2d = torch.from_numpy(np_setup_kernel([1, 3, 3, 1]).astype(np.float32))
    out = upsample_image(torch.from_numpy(y), kernel_2d)
    expected = np_upsample_2d(y.astype(np.float64))
    assert expected.shape == (2, 3, 10, 10)
    assert_close(out, expected, rtol=1e-6, atol_frac=1e-6)
    # A constant image stays constant away from the border (the filter has gain 4 over 4 phases).
    flat = upsample_image(torch.ones(1, 1, 6, 6), kernel_2d)
    torch.testing.assert_close(flat[:, :, 2:-2, 2:-2], torch.ones(1, 1, 8, 8))


def test_the_fir_kernel_is_nvidias_setup_kernel():
    np.testing.assert_allclose(fir_kernel([1, 3, 3, 1]).numpy(), np_setup_kernel([1, 3, 3, 1]), rtol=1e-7)
    np.testing.assert_allclose(fir_kernel([1, 2, 1]).numpy(), np_setup_kernel([1, 2, 1]), rtol=1e-7)


# ---------------------------------------------------------------------------------------------------------
# Seeds.

@pytest.mark.parametrize("seed", [0, 1, 1234, 2**31, 2**32 - 1, np.uint32(77), np.int64(5)])
def test_seed_to_z_is_nvidias_latent(seed):
    z = seed_to_z(seed, 16)
    assert z.dtype == np.float32 and z.shape == (1, 16)
    assert np.array_equal(z, np.random.RandomState(int(seed)).randn(1, 16).astype(np.float32))


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, 3.0, True, False, "3", None])
def test_seed_to_z_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed"):
        seed_to_z(seed, 16)


# ---------------------------------------------------------------------------------------------------------
# Refusals.

class _OpensFile:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class _RunsShell:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("payload", [_OpensFile, _RunsShell])
@pytest.mark.parametrize("where", ["inside a network", "whole file"])
def test_refuses_pickles_that_run_code(tmp_path, payload, where):
    created = tmp_path / "created-by-pickle"
    path = tmp_path / "evil.pkl"
    if where == "inside a network":
        write_stylegan2_pickle(path, resolution=16, extra={"synthesis/4x4/Conv/evil": payload(created)})
    else:
        import pickle

        path.write_bytes(pickle.dumps(payload(created), protocol=4))
    func = payload(created).__reduce__()[0]
    with pytest.raises(ModelFileError, match="refused") as err:
        load_generator(path)
    assert f"{func.__module__}.{func.__name__}" in str(err.value)  # io.open / posix.system
    assert not created.exists()


def _tiny(tmp_path, family="stylegan", **kwargs):
    path = tmp_path / f"{family}.pkl"
    if family == "stylegan":
        write_stylegan_pickle(path, resolution=32, **kwargs)
    else:
        write_stylegan2_pickle(path, resolution=16, **kwargs)
    return path


@pytest.mark.parametrize("family, name", [("stylegan", "synthesis/16x16/Conv1/weight"),
                                          ("stylegan", "synthesis/noise3"),
                                          ("stylegan2", "mapping/Dense5/bias"),
                                          ("stylegan2", "synthesis/8x8/Conv0_up/noise_strength"),
                                          ("stylegan2", "dlatent_avg")])
def test_refuses_missing_variable(tmp_path, family, name):
    with pytest.raises(ModelFileError, match="missing") as err:
        load_generator(_tiny(tmp_path, family, drop=[name]))
    assert name in str(err.value)


@pytest.mark.parametrize("family, name", [("stylegan", "synthesis/16x16/Conv2/weight"),
                                          ("stylegan2", "synthesis/noise99"),
                                          ("stylegan2", "mapping/Dense8/weight")])
def test_refuses_unexpected_variable(tmp_path, family, name):
    path = _tiny(tmp_path, family, extra={name: np.ones((3, 3), np.float32)})
    with pytest.raises(ModelFileError, match="unexpected") as err:
        load_generator(path)
    assert name in str(err.value)


@pytest.mark.parametrize("family, name, shape", [("stylegan", "synthesis/8x8/Conv1/weight", (3, 3, 32, 31)),
                                                 ("stylegan", "synthesis/4x4/Const/const", (1, 32, 4)),
                                                 ("stylegan2", "mapping/Dense3/weight", (16, 17)),
                                                 ("stylegan2", "synthesis/8x8/Conv0_up/noise_strength", (1,)),
                                                 ("stylegan2", "dlatent_avg", (15,))])
def test_refuses_shape_mismatch(tmp_path, family, name, shape):
    path = _tiny(tmp_path, family, replace={name: np.ones(shape, np.float32)})
    with pytest.raises(ModelFileError, match="shape") as err:
        load_generator(path)
    assert name in str(err.value)


def test_refuses_non_float_variable(tmp_path):
    path = _tiny(tmp_path, "stylegan2", replace={"synthesis/8x8/Conv1/bias": np.ones(32, np.int64)})
    with pytest.raises(ModelFileError, match="synthesis/8x8/Conv1/bias"):
        load_generator(path)


@pytest.mark.parametrize("family, kwargs, word", [("stylegan", {"label_size": 1}, "label_size"),
                                                  ("stylegan2", {"label_size": 10}, "label_size"),
                                                  ("stylegan2", {"architecture": "resnet"}, "architecture"),
                                                  ("stylegan2", {"architecture": "orig"}, "architecture"),
                                                  ("stylegan", {"num_channels": 1}, "num_channels")])
def test_refuses_architectures_it_does_not_implement(tmp_path, family, kwargs, word):
    with pytest.raises(ModelFileError, match=word):
        load_generator(_tiny(tmp_path, family, **kwargs))


@pytest.mark.parametrize("family", ["stylegan", "stylegan2"])
def test_refuses_truncated_pickle(tmp_path, family):
    path = _tiny(tmp_path, family)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 1, 10, 0):
        path.write_bytes(data[:cut])
        with pytest.raises(ModelFileError):
            load_generator(path)


def test_refuses_garbage(tmp_path):
    import pickle

    rng = np.random.RandomState(0)
    path = tmp_path / "garbage.pkl"
    samples = [rng.bytes(int(rng.randint(1, 4000))) for _ in range(150)]
    samples += [b"\x80\x04" + rng.bytes(int(rng.randint(1, 4000))) for _ in range(150)]
    samples += [b"\x80\x02" + rng.bytes(int(rng.randint(1, 200))) for _ in range(100)]
    samples += [b"not a pickle at all\n", pickle.dumps({"G": np.zeros(3)}), pickle.dumps((1, 2, 3)), pickle.dumps(None)]
    for data in samples:
        path.write_bytes(data)
        with pytest.raises(ModelFileError):
            load_generator(path)


def test_refuses_unknown_file_types_and_sources(tmp_path):
    other = tmp_path / "weights.pt"
    other.write_bytes(b"whatever")
    with pytest.raises(ModelFileError, match="unknown file type"):
        load_generator(other)
    with pytest.raises(ValueError, match="neither a registered model"):
        load_generator(tmp_path / "missing.pkl")


# ---------------------------------------------------------------------------------------------------------
# Our safetensors format.

SEEDS = [0, 1, 42, 2**32 - 1]


def _pictures(G):
    return [G(torch.from_numpy(seed_to_z(s, G.z_dim)), truncation_psi=0.7, noise_mode="const") for s in SEEDS]


def _assert_same_generator(G, H):
    assert H.kind == G.kind and H.resolution == G.resolution and H.style_layers == G.style_layers
    assert H.fingerprint == G.fingerprint
    for a, b in zip(_pictures(G), _pictures(H)):
        assert torch.equal(a, b)


def test_converted_file_gives_identical_pictures(fam, tmp_path):
    out = tmp_path / "converted.safetensors"
    save_generator(fam.G, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["converted.safetensors"]  # no temp file left behind
    H = load_generator(out)
    _assert_same_generator(fam.G, H)
    assert H.name == "converted"


def test_fingerprint_depends_on_the_weights(tmp_path):
    a = load_generator(_tiny(tmp_path, "stylegan2"))
    path_b = tmp_path / "b.pkl"
    write_stylegan2_pickle(path_b, resolution=16, seed=1)
    assert a.fingerprint != load_generator(path_b).fingerprint
    path_c = tmp_path / "c.pkl"
    write_stylegan2_pickle(path_c, resolution=16, seed=0)
    assert a.fingerprint == load_generator(path_c).fingerprint


def test_cli_convert(fam, tmp_path):
    out = tmp_path / "cli.safetensors"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "ganedit", "convert", str(fam.path), str(out)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    _assert_same_generator(fam.G, load_generator(out))


@pytest.fixture
def converted(tmp_path):
    path = tmp_path / "model.safetensors"
    save_generator(load_generator(_tiny(tmp_path, "stylegan2")), path)
    return path


def test_refuses_truncated_safetensors(converted):
    data = converted.read_bytes()
    for cut in (len(data) // 2, len(data) - 4, 100, 7, 0):
        converted.write_bytes(data[:cut])
        with pytest.raises(ModelFileError):
            load_generator(converted)


def test_refuses_garbage_safetensors(converted):
    rng = np.random.RandomState(1)
    size = converted.stat().st_size
    for i in range(20):
        converted.write_bytes(rng.bytes(size if i % 2 else 64))
        with pytest.raises(ModelFileError):
            load_generator(converted)


def test_refuses_safetensors_that_are_not_a_generator(converted, tmp_path):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(converted))
    plain = tmp_path / "plain.safetensors"
    save_file(tensors, str(plain))  # the tensors, but without our architecture header
    with pytest.raises(ModelFileError, match="not a ganedit"):
        load_generator(plain)
    header = {"ganedit": __import__("json").dumps({"format_version": 1, "kind": "stylegan2",
                                                   "config": load_generator(converted).config})}
    partial = tmp_path / "partial.safetensors"
    save_file({k: v for k, v in tensors.items() if k != "layers.8x8_Conv1.weight"}, str(partial), metadata=header)
    with pytest.raises(ModelFileError, match="layers.8x8_Conv1.weight"):
        load_generator(partial)
    wrong = tmp_path / "wrong.safetensors"
    save_file({**tensors, "w_avg": torch.zeros(3)}, str(wrong), metadata=header)
    with pytest.raises(ModelFileError, match="w_avg"):
        load_generator(wrong)


# ---------------------------------------------------------------------------------------------------------
# The registry (never touching the network).

OFFICIAL = {"stylegan-ffhq", "stylegan-bedrooms", "stylegan2-cats", "stylegan2-cars"}


def test_registry_entries():
    assert OFFICIAL <= set(MODELS)
    for name, info in MODELS.items():
        assert info.name == name
        assert info.kind in ("stylegan", "stylegan2"), name
        assert info.resolution >= 4 and info.resolution & (info.resolution - 1) == 0, name
        assert isinstance(info.license, str) and len(info.license) > 10, name
        if name in OFFICIAL:
            assert info.official_file and info.official_file.endswith(".pkl"), name
            assert info.url and info.url.startswith("https://"), name
    assert {n for n, i in MODELS.items() if i.official_file} == OFFICIAL


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("GANEDIT_OFFLINE", "1")
    monkeypatch.setenv("GANEDIT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("GANEDIT_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("GANEDIT_HUB_REPO", raising=False)
    return monkeypatch


def test_offline_without_weights_says_where_to_put_them(offline):
    with pytest.raises(WeightsUnavailableError) as err:
        load_generator("stylegan-ffhq")
    message = str(err.value)
    assert "karras2019stylegan-ffhq-1024x1024.pkl" in message
    assert "GANEDIT_WEIGHTS_DIR" in message
    assert ganedit.availability("stylegan-ffhq")[0] == "unavailable"


@pytest.mark.parametrize("name", ["stylegan2-cats", "stylegan-bedrooms"])
def test_weights_dir_holding_the_official_file(offline, tmp_path, name):
    folder = tmp_path / "weights"
    folder.mkdir()
    info = MODELS[name]
    writer = write_stylegan_pickle if info.kind == "stylegan" else write_stylegan2_pickle
    v = writer(folder / info.official_file, resolution=32, seed=3)
    offline.setenv("GANEDIT_WEIGHTS_DIR", str(folder))
    assert ganedit.availability(name)[0] == "ready"
    G = load_generator(name)
    assert G.kind == info.kind and G.name == name and G.info is info
    assert torch.equal(G.w_avg, torch.from_numpy(v["dlatent_avg"]))


def test_weights_dir_holding_a_converted_file(offline, tmp_path):
    folder = tmp_path / "weights"
    source = _tiny(tmp_path, "stylegan2")
    G = load_generator(source)
    save_generator(G, folder / "stylegan2-cars.safetensors")
    offline.setenv("GANEDIT_WEIGHTS_DIR", str(folder))
    H = load_generator("stylegan2-cars")
    assert H.name == "stylegan2-cars" and H.fingerprint == G.fingerprint
