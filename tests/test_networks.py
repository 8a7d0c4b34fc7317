"""The generators against NVIDIA's graphs: mapping, truncation, styles, synthesis, the trickiest ops one by one,
seeds."""

from pathlib import Path

import numpy as np
import pytest
import torch
from official_files import write_stylegan_pickle

import ganedit
from ganedit import load_generator, seed_to_z
from ganedit.networks.layers import depthwise_filter, fir_kernel, same_padding
from ganedit.networks.stylegan import AdaINLayer
from ganedit.networks.stylegan2 import ModulatedConv, ToRGB, upsample_image

REPO = Path(__file__).resolve().parent.parent
SQRT2 = np.sqrt(2.0)
from nvidia_graphs import (  # noqa: F401  fam is a fixture
    _z, assert_close, fam, np_blur, np_conv2d_same, np_dense, np_dlatents, np_fused_upscale_conv, np_lrelu, np_mapping,
    np_modulated_conv, np_setup_kernel, np_stylegan2_synthesis, np_stylegan_synthesis, np_upsample_2d, np_upscale2d,
    SQRT2, w_index_of,
)


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
        for spec, sigma in zip(G.style_layers, styles.scales):
            assert sigma.shape == (2, spec.channels)
        if fam.kind == "stylegan":
            assert styles.bias is not None and len(styles.bias) == len(G.style_layers)
        else:
            assert styles.bias is None
        wn = w.numpy() if w.ndim == 3 else np.repeat(w.numpy()[:, None], G.num_ws, axis=1)
        for i, (spec, sigma) in enumerate(zip(G.style_layers, styles.scales)):
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


@pytest.mark.parametrize(("case", "taps"), [("up", (1, 3, 3, 1)), ("conv", (1, 3, 3, 1)), ("torgb", (1, 3, 3, 1)),
                                            ("up", (1, 1)), ("up", (1, 2, 1)), ("up", (1, 4, 6, 4, 1)),
                                            ("up", (1, 5, 10, 10, 5, 1))])
def test_stylegan2_modulated_conv_is_nvidias(case, taps):
    """Every layer type, and the up-sampling conv with filters of 2-6 taps (the paddings follow the kernel length)."""
    rng = np.random.RandomState(1)
    in_ch, w_dim, size, n = 4, 6, 5, 3
    out_ch = 3 if case == "torgb" else 5
    kernel, up, demodulate = {"up": (3, True, True), "conv": (3, False, True), "torgb": (1, False, False)}[case]
    weight = rng.randn(kernel, kernel, in_ch, out_ch).astype(np.float32)
    mod_weight = rng.randn(w_dim, in_ch).astype(np.float32)
    mod_bias = (0.3 * rng.randn(in_ch)).astype(np.float32)
    bias = (0.3 * rng.randn(out_ch)).astype(np.float32)
    x = rng.randn(n, in_ch, size, size).astype(np.float32)
    wlat = rng.randn(n, w_dim).astype(np.float32)
    out_size = 2 * size if up else size
    layer = ToRGB(in_ch, w_dim) if case == "torgb" else ModulatedConv(in_ch, out_ch, w_dim, out_size, up=up)
    assert layer.weight.shape == (out_ch, in_ch, kernel, kernel)
    _set(layer.weight, weight.transpose(3, 2, 0, 1))
    _set(layer.affine.weight, mod_weight.T)
    _set(layer.affine.bias, mod_bias)
    _set(layer.bias, bias)
    if case != "torgb":
        _set(layer.noise_strength, np.float32(0.7))  # must not matter with noise_mode 'none'
    kernel_2d = torch.from_numpy(np_setup_kernel(taps).astype(np.float32))
    with torch.no_grad():
        sigma = layer.style_of(torch.from_numpy(wlat))
        out = layer(torch.from_numpy(x), sigma) if case == "torgb" else layer(torch.from_numpy(x), sigma, "none", kernel_2d)
    expected = np_modulated_conv(x.astype(np.float64), wlat, weight, mod_weight, mod_bias, up=up, demodulate=demodulate,
                                 taps=taps)
    expected = expected + bias[None, :, None, None]
    if case != "torgb":
        expected = np_lrelu(expected) * SQRT2
    assert expected.shape == (n, out_ch, out_size, out_size)
    assert_close(out, expected, rtol=1e-5, atol_frac=1e-5)


@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 1), (1, 2, 1), (1, 4, 6, 4, 1), (1, 5, 10, 10, 5, 1)])
def test_stylegan2_upsample_2d_is_nvidias(taps):
    rng = np.random.RandomState(2)
    y = rng.randn(2, 3, 5, 5).astype(np.float32)
    kernel_2d = torch.from_numpy(np_setup_kernel(taps).astype(np.float32))
    out = upsample_image(torch.from_numpy(y), kernel_2d)
    expected = np_upsample_2d(y.astype(np.float64), taps)
    assert expected.shape == (2, 3, 10, 10)
    assert_close(out, expected, rtol=1e-6, atol_frac=1e-6)


def test_upsample_2d_keeps_a_flat_image_flat():
    kernel_2d = torch.from_numpy(np_setup_kernel([1, 3, 3, 1]).astype(np.float32))
    # A constant image stays constant away from the border (the filter has gain 4 over 4 phases).
    flat = upsample_image(torch.ones(1, 1, 6, 6), kernel_2d)
    torch.testing.assert_close(flat[:, :, 2:-2, 2:-2], torch.ones(1, 1, 8, 8))


@pytest.mark.parametrize("taps", [(1, 2, 1), (1, 4, 6, 4, 1)])
def test_stylegan_blur_is_nvidias(taps):
    x = np.random.RandomState(3).randn(2, 3, 6, 6)
    out = depthwise_filter(torch.from_numpy(x).float(), fir_kernel(taps), same_padding(len(taps)))
    assert_close(out, np_blur(x, taps), rtol=1e-6, atol_frac=1e-6)


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
# What a generator says about itself.

def test_styles_keep_their_bias(fam):
    styles = fam.G.styles(fam.G.mapping(_z(11, fam.G.z_dim)))
    with pytest.raises(TypeError):
        styles[1:]  # no slicing that would leave the bias behind
    with pytest.raises(TypeError):
        list(styles)
    with pytest.raises(ValueError, match="biases"):
        ganedit.Styles(styles.scales, bias=styles.scales[:-1])
    if fam.kind == "stylegan":
        with pytest.raises(ValueError, match="AdaIN bias"):
            fam.G.synthesis(list(styles.scales))
    else:  # StyleGAN2 has no bias: plain scales are a whole description
        assert torch.equal(fam.G.synthesis(list(styles.scales)), fam.G.synthesis(styles))


def test_printing_a_generator_shows_its_configuration(fam):
    text = repr(fam.G)
    assert f"resolution={fam.resolution}" in text and f"z_dim={fam.G.z_dim}" in text
    if fam.kind == "stylegan2":
        assert text.count("ToRGB(") == int(np.log2(fam.resolution)) - 1
        assert f"resolution={fam.resolution}, up=True" in text
    else:
        assert "up, in_channels=" in text and "fused" in text
    assert "EqualizedLinear(in_features=" in text and "lrmul=0.01" in text
