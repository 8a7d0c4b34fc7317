"""NVIDIA's StyleGAN2 generator, following G_main / G_mapping / G_synthesis_stylegan2 of
NVlabs/stylegan2 training/networks_stylegan2.py with architecture 'skip' (config-f).

Every convolution is modulated: its weight is scaled per input channel by the style sigma (an
affine map of w, plus 1), then demodulated per output channel. ToRGB layers are modulated but not
demodulated, and their outputs are summed across resolutions through FIR upsampling.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import winograd
from .generator import Generator, MappingNetwork, StyleLayer, Styles
from .layers import (LRELU_SLOPE, EqualizedLinear, conv3x3, conv_weight, depthwise_filter, fir_kernel, he_gain,
                     noise_tensor, upsample_padding, upsample_zeros)

DEFAULTS = dict(
    z_dim=512, w_dim=512, resolution=1024, mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01,
    fmap_base=16 << 10, fmap_decay=1.0, fmap_min=1, fmap_max=512, resample_kernel=(1, 3, 3, 1),
    conv_clamp=None,  # stylegan2-ada-pytorch's: each layer's output limited to +-conv_clamp (its models: 256)
)


def channels_at(config, stage):
    value = int(config["fmap_base"] / (2.0 ** (stage * config["fmap_decay"])))
    return max(config["fmap_min"], min(value, config["fmap_max"]))


class _Modulated(nn.Module):
    """What every StyleGAN2 synthesis layer has: a convolution weight, the affine map w -> style sigma (plus 1) that
    scales its input channels, an output bias and stylegan2-ada-pytorch's optional output clamp."""

    def __init__(self, in_channels, out_channels, kernel, w_dim):
        super().__init__()
        self.kernel = kernel
        self.weight = conv_weight(in_channels, out_channels, kernel)
        self.weight_gain = he_gain(in_channels * kernel * kernel)
        self.affine = EqualizedLinear(w_dim, in_channels)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.conv_clamp = None  # set by the generator from its config

    def style_of(self, w):
        return self.affine(w) + 1

    def _clamped(self, x):
        return x if self.conv_clamp is None else x.clamp(-self.conv_clamp, self.conv_clamp)

    def extra_repr(self):
        out_channels, in_channels = self.weight.shape[:2]
        clamp = f", conv_clamp={self.conv_clamp}" if self.conv_clamp is not None else ""
        return f"in_channels={in_channels}, out_channels={out_channels}, kernel={self.kernel}{clamp}"


# Which tap of the 4-tap filter joins weight tap k to input offset a-1 in output phase p: 1 - p + 2a - k.
_UP_CONV_FILTER_TAP = [[[[float(m == 1 - p + 2 * a - k) for m in range(4)] for k in range(3)] for a in range(3)]
                       for p in range(2)]


def up_conv_taps(resample_kernel):
    """The upscaling convolution below (3x3 transposed with stride 2, then the 4x4 FIR filter with gain 4) as
    phase taps for winograd.upscale_conv3x3: output pixel 2i+p takes weight tap k from input pixel i+a-1 through
    f[1 - p + 2a - k], f the 1-D filter with gain 2 (NVIDIA's 2-D filter is the outer product of two)."""
    select = torch.tensor(_UP_CONV_FILTER_TAP, dtype=resample_kernel.dtype, device=resample_kernel.device)
    return select @ (2 * resample_kernel.sum(1))  # [2, 3, 3]


class ModulatedConv(_Modulated):
    """A modulated, demodulated 3x3 convolution (``up``: transposed with stride 2, then the FIR filter), then noise,
    bias and leaky ReLU. ``resolution`` is its output's: the size of its stored noise image."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, up=False):
        super().__init__(in_channels, out_channels, 3, w_dim)
        self.up, self.resolution = up, resolution
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise", torch.randn(1, 1, resolution, resolution))

    def forward(self, x, sigma, noise_mode, resample_kernel, fast=False):
        # Scaling the input channels by sigma and the output channels by the demodulation factor is the
        # same arithmetic as NVIDIA's per-sample weights (fused_modconv), but lets the batch share one
        # convolution, which is much faster on a CPU.
        weight = self.weight * self.weight_gain
        x = x * sigma[:, :, None, None]
        tile = self.up and fast and len(resample_kernel) == 4 and winograd.tile_for(x, "upscale")
        if tile:
            x = winograd.upscale_conv3x3(x, weight, tile, up_conv_taps(resample_kernel))  # the same, in one convolution
        elif self.up:
            # Zero-stuffing transposed conv (kernel flipped, so it correlates like NVIDIA's), then the FIR filter.
            x = F.conv_transpose2d(x, weight.transpose(0, 1).flip(2, 3), stride=2)
            x = depthwise_filter(x, resample_kernel * 4, upsample_padding(len(resample_kernel), after_up_conv=True))
        else:
            x = conv3x3(x, weight, fast)
        demod = torch.rsqrt(sigma.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8)  # [N, O]
        x = x * demod[:, :, None, None]
        noise = noise_tensor(noise_mode, self.noise, x.shape[0], x.shape[2], x.shape[3], x)
        if noise is not None:
            x = x + noise * self.noise_strength
        return self._clamped(F.leaky_relu(x + self.bias.view(1, -1, 1, 1), LRELU_SLOPE) * math.sqrt(2))

    def extra_repr(self):
        return f"{super().extra_repr()}, resolution={self.resolution}, up={self.up}"


class ToRGB(_Modulated):
    """A modulated 1x1 convolution to RGB: not demodulated, no noise, no activation."""

    def __init__(self, in_channels, w_dim):
        super().__init__(in_channels, 3, 1, w_dim)

    def forward(self, x, sigma):
        x = F.conv2d(x * sigma[:, :, None, None], self.weight * self.weight_gain)
        return self._clamped(x + self.bias.view(1, -1, 1, 1))


def upsample_image(y, resample_kernel):
    """NVIDIA's upsample_2d: zero-stuff by 2, then the FIR filter with gain 4."""
    return depthwise_filter(upsample_zeros(y), resample_kernel * 4, upsample_padding(len(resample_kernel)))


class StyleGAN2(Generator):
    kind = "stylegan2"
    default_truncation_cutoff = None

    def __init__(self, config):
        config = {**DEFAULTS, **config}
        super().__init__(config)
        self.mapping_network = MappingNetwork(
            self.z_dim, self.w_dim, config["mapping_layers"], config["mapping_fmaps"], config["mapping_lrmul"],
            gain_after_activation=True,
        )
        self.register_buffer("resample_kernel", fir_kernel(config["resample_kernel"]), persistent=False)
        const_channels = channels_at(config, 1)
        self.const = nn.Parameter(torch.randn(1, const_channels, 4, 4))
        layers, style_layers, w_index = {}, [], []

        def add(name, layer, source, res, in_ch, index):
            layers[name.replace("/", "_")] = layer
            style_layers.append(StyleLayer(name, res, in_ch, source))
            w_index.append(index)

        # Which w each layer reads (NVIDIA's dlatents_in[:, index]): the block at 2**log2 px uses 2*log2 - 5 for
        # Conv0_up, 2*log2 - 4 for Conv1 and 2*log2 - 3 for ToRGB, so a ToRGB shares its w with the next block's
        # Conv0_up and num_ws = 2*log2(resolution) - 2. At 4 px: Conv 0, ToRGB 1.
        add("4x4/Conv", ModulatedConv(const_channels, const_channels, self.w_dim, 4), "4x4/Const", 4, const_channels, 0)
        add("4x4/ToRGB", ToRGB(const_channels, self.w_dim), "4x4/Conv", 4, const_channels, 1)
        previous, previous_ch = "4x4/Conv", const_channels
        for log2 in range(3, int(math.log2(self.resolution)) + 1):
            res, ch = 2**log2, channels_at(config, log2 - 1)
            up, conv1, rgb = f"{res}x{res}/Conv0_up", f"{res}x{res}/Conv1", f"{res}x{res}/ToRGB"
            add(up, ModulatedConv(previous_ch, ch, self.w_dim, res, up=True), previous, res // 2, previous_ch, 2 * log2 - 5)
            add(conv1, ModulatedConv(ch, ch, self.w_dim, res), up, res, ch, 2 * log2 - 4)
            add(rgb, ToRGB(ch, self.w_dim), conv1, res, ch, 2 * log2 - 3)
            previous, previous_ch = conv1, ch
        self.layers = nn.ModuleDict(layers)
        self.style_layers = tuple(style_layers)
        self.w_index = tuple(w_index)
        for layer in self.layers.values():
            layer.conv_clamp = config["conv_clamp"]

    def styles(self, w):
        ws = self._ws(w)
        return Styles([layer.style_of(ws[i]) for layer, i in zip(self.layers.values(), self.w_index)])

    def _style_bias(self, styles):
        return None  # modulation has no bias

    def _synthesize(self, scales, biases, noise_mode, return_activations, fast=False):
        x = self.const.expand(scales[0].shape[0], -1, -1, -1)
        activations = {"4x4/Const": x} if return_activations else None
        image = None
        for spec, layer, sigma in zip(self.style_layers, self.layers.values(), scales):
            if isinstance(layer, ToRGB):
                rgb = layer(x, sigma)
                image = rgb if image is None else upsample_image(image, self.resample_kernel) + rgb
                continue
            x = layer(x, sigma, noise_mode, self.resample_kernel, fast)
            if return_activations:
                activations[spec.name] = x
        return (image, activations) if return_activations else image
