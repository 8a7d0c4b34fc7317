"""NVIDIA's StyleGAN (v1) generator, following G_style / G_mapping / G_synthesis of
NVlabs/stylegan training/networks_stylegan.py at evaluation time (lod 0, 'fixed' structure).

Each synthesis layer ends in the same epilogue: noise (per-channel strength), bias, leaky ReLU,
instance norm, then AdaIN ``x * sigma + beta`` with (sigma - 1, beta) an affine map of w.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import winograd
from .generator import Generator, MappingNetwork, StyleLayer, Styles
from .layers import (LRELU_SLOPE, EqualizedLinear, conv3x3, conv_weight, depthwise_filter, fir_kernel, he_gain,
                     noise_tensor, same_padding)

DEFAULTS = dict(
    z_dim=512, w_dim=512, resolution=1024, mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01,
    fmap_base=8192, fmap_decay=1.0, fmap_max=512, blur_filter=(1, 2, 1), fused_scale="auto",
)


def channels_at(config, stage):
    return min(int(config["fmap_base"] / (2.0 ** (stage * config["fmap_decay"]))), config["fmap_max"])


class AdaINLayer(nn.Module):
    """One StyleGAN layer: [const | conv | upscale-conv + blur], then the epilogue with AdaIN."""

    def __init__(self, mode, in_channels, out_channels, resolution, w_dim, fused=False):
        super().__init__()
        self.mode = mode  # "const", "conv" or "up"
        self.fused = fused
        if mode == "const":
            self.const = nn.Parameter(torch.ones(1, out_channels, 4, 4))
        else:
            self.weight = conv_weight(in_channels, out_channels, 3)
            self.weight_gain = he_gain(in_channels * 9, math.sqrt(2))
        self.noise_weight = nn.Parameter(torch.zeros(out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.style = EqualizedLinear(w_dim, 2 * out_channels)
        self.register_buffer("noise", torch.randn(1, 1, resolution, resolution))

    def style_of(self, w):
        """(sigma, beta): the AdaIN scale and bias for w."""
        scale_minus_one, beta = self.style(w).chunk(2, dim=1)
        return scale_minus_one + 1, beta

    def _upscale_conv(self, x, fast=False):
        """Nearest 2x upscaling and the 3x3 conv. NVIDIA folds them into a stride-2 transposed 4x4 conv from 128 px
        (fused), which equals the plain path with the kernel flipped; the fast path takes the cheapest exact form."""
        weight = self.weight * self.weight_gain
        tile = fast and winograd.tile_for(x, "upscale")
        if tile:  # 9 multiply-adds per input pixel and channel pair (4x4 tiles), 7.1 (6x6 tiles)
            return winograd.upscale_conv3x3(x, weight.flip(2, 3) if self.fused else weight, tile)
        if not (self.fused or fast):  # 36
            return F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), weight, padding=1)
        if not self.fused:
            weight = weight.flip(2, 3)
        w = F.pad(weight.transpose(0, 1), [1, 1, 1, 1])  # 16
        w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
        return F.conv_transpose2d(x, w, stride=2, padding=1)

    def forward(self, x, sigma, beta, noise_mode, blur, fast=False):
        if self.mode == "const":
            x = self.const.expand(sigma.shape[0], -1, -1, -1)
        elif self.mode == "conv":
            x = conv3x3(x, self.weight * self.weight_gain, fast)
        else:
            x = depthwise_filter(self._upscale_conv(x, fast), blur, same_padding(len(blur)))
        noise = noise_tensor(noise_mode, self.noise, x.shape[0], x.shape[2], x.shape[3], x)
        if noise is not None:
            # One op, so that compiling with frozen weights can't fold noise * weight into a constant feature map.
            x = torch.addcmul(x, noise, self.noise_weight.view(1, -1, 1, 1))
        x = F.leaky_relu(x + self.bias.view(1, -1, 1, 1), LRELU_SLOPE)
        if fast:  # one pass over x once compiled; eager, var_mean is slower than the two means
            var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
            x = (x - mean) * torch.rsqrt(var + 1e-8)
        else:
            x = x - x.mean(dim=(2, 3), keepdim=True)
            x = x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + 1e-8)
        return x * sigma[:, :, None, None] + beta[:, :, None, None]

    def extra_repr(self):
        in_channels = "" if self.mode == "const" else f"in_channels={self.weight.shape[1]}, "
        fused = ", fused" if self.fused else ""
        return f"{self.mode}, {in_channels}out_channels={self.bias.shape[0]}, resolution={self.noise.shape[-1]}{fused}"


class StyleGAN(Generator):
    kind = "stylegan"
    default_truncation_cutoff = 8

    def __init__(self, config):
        config = {**DEFAULTS, **config}
        super().__init__(config)
        self.mapping_network = MappingNetwork(
            self.z_dim, self.w_dim, config["mapping_layers"], config["mapping_fmaps"], config["mapping_lrmul"]
        )
        self.register_buffer("blur_kernel", fir_kernel(config["blur_filter"]), persistent=False)
        layers, style_layers = {}, []

        def add(name, mode, in_ch, out_ch, res, fused=False):
            layers[name.replace("/", "_")] = AdaINLayer(mode, in_ch, out_ch, res, self.w_dim, fused)
            style_layers.append(StyleLayer(name, res, out_ch, name))

        add("4x4/Const", "const", 0, channels_at(config, 1), 4)
        add("4x4/Conv", "conv", channels_at(config, 1), channels_at(config, 1), 4)
        for log2 in range(3, int(math.log2(self.resolution)) + 1):
            res, in_ch, out_ch = 2**log2, channels_at(config, log2 - 2), channels_at(config, log2 - 1)
            fused = config["fused_scale"] is True or (config["fused_scale"] == "auto" and res >= 128)
            add(f"{res}x{res}/Conv0_up", "up", in_ch, out_ch, res, fused)
            add(f"{res}x{res}/Conv1", "conv", out_ch, out_ch, res)
        self.layers = nn.ModuleDict(layers)
        self.style_layers = tuple(style_layers)
        last = style_layers[-1].channels
        self.to_rgb_weight = conv_weight(last, 3, 1)
        self.to_rgb_bias = nn.Parameter(torch.zeros(3))
        self.to_rgb_gain = he_gain(last)

    def styles(self, w):
        pairs = [layer.style_of(w_l) for layer, w_l in zip(self.layers.values(), self._ws(w))]
        return Styles([sigma for sigma, _ in pairs], bias=[beta for _, beta in pairs])

    def _style_bias(self, styles):
        if styles.bias is None:
            raise ValueError("StyleGAN synthesis needs the AdaIN bias: pass the Styles object that G.styles returns")
        return styles.bias

    def _synthesize(self, scales, biases, noise_mode, return_activations, fast=False):
        x, activations = None, {}
        for spec, layer, sigma, beta in zip(self.style_layers, self.layers.values(), scales, biases):
            x = layer(x, sigma, beta, noise_mode, self.blur_kernel, fast)
            if return_activations:
                activations[spec.name] = x
        images = F.conv2d(x, self.to_rgb_weight * self.to_rgb_gain) + self.to_rgb_bias.view(1, -1, 1, 1)
        return (images, activations) if return_activations else images
