"""Building blocks shared by NVIDIA's StyleGAN and StyleGAN2 graphs.

Parameters are stored exactly as NVIDIA trains them ("equalised learning rate"): the raw
variable is kept, and its runtime multiplier ``gain * lrmul / sqrt(fan_in)`` is applied
on every forward pass, so official weights load without rescaling.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import winograd

LRELU_SLOPE = 0.2


class EqualizedLinear(nn.Module):
    """``x @ (w * gain * lrmul / sqrt(in)) + b * lrmul``: NVIDIA's dense layer."""

    def __init__(self, in_features, out_features, gain=1.0, lrmul=1.0):
        super().__init__()
        # in place: on the meta device (the loader's shape check) "/" would import torch._dynamo, 0.8 s
        self.weight = nn.Parameter(torch.randn(out_features, in_features).div_(lrmul))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.weight_gain = gain * lrmul / math.sqrt(in_features)
        self.bias_gain = lrmul

    def forward(self, x):
        return F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)

    def extra_repr(self):
        lrmul = f", lrmul={self.bias_gain:g}" if self.bias_gain != 1 else ""
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}{lrmul}"


def conv_weight(in_channels, out_channels, kernel):
    """A fresh convolution weight in torch layout [out, in, k, k], N(0, 1) as NVIDIA initialises it."""
    return nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))


def conv3x3(x, weight, fast=False):
    """The 3x3 'same' convolution of both families; on the fast path as Winograd where that is faster."""
    tile = fast and winograd.tile_for(x)
    if tile:
        return winograd.winograd_conv3x3(x, winograd.winograd_weight(weight, tile))
    return F.conv2d(x, weight, padding=1)


def he_gain(fan_in, gain=1.0):
    return gain / math.sqrt(fan_in)


def pixel_norm(x, eps=1e-8):
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def fir_kernel(taps):
    """The normalised 2-D separable filter NVIDIA builds from 1-D taps, e.g. [1, 2, 1] or [1, 3, 3, 1]."""
    k = np.asarray(taps, dtype=np.float32)
    k = np.outer(k, k)
    return torch.from_numpy(k / k.sum())


def same_padding(taps):
    """(left, right, top, bottom) zeros that keep the size under a ``taps``-long filter, as TensorFlow's 'SAME'."""
    before, after = (taps - 1) // 2, taps // 2
    return [before, after, before, after]


def upsample_padding(taps, after_up_conv=False):
    """(left, right, top, bottom) zeros of NVIDIA's upfirdn2d for a ``taps``-long filter after 2x upsampling.

    Zero-stuffed input (upsample_2d): ``(taps + 1) // 2`` before, ``(taps - 2) // 2`` after. The output of a 3x3
    stride-2 transposed convolution (conv2d_up) is one sample longer, which NVIDIA absorbs by padding one less before.
    """
    before, after = (taps + 1) // 2 - after_up_conv, (taps - 2) // 2
    return [before, after, before, after]


def depthwise_filter(x, kernel, pad):
    """Convolve every channel with the same (symmetric) 2-D kernel; pad = (left, right, top, bottom)."""
    channels = x.shape[1]
    weight = kernel.to(x.dtype)[None, None].expand(channels, 1, *kernel.shape)
    if len(set(pad)) == 1:  # the convolution pads as it reads: no padded copy of x
        return F.conv2d(x, weight, padding=pad[0], groups=channels)
    return F.conv2d(F.pad(x, pad), weight, groups=channels)


def upsample_zeros(x, factor=2):
    """Insert factor-1 zeros after every sample along height and width (the 'up' of upfirdn)."""
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h, factor, w, factor)
    out[:, :, :, 0, :, 0] = x
    return out.reshape(n, c, h * factor, w * factor)


def noise_tensor(noise_mode, stored, n, height, width, like):
    """The noise image for one layer, [N or 1, 1, H, W], or None for noise_mode 'none'."""
    if noise_mode == "const":
        return stored
    if noise_mode == "random":
        return torch.randn(n, 1, height, width, device=like.device, dtype=like.dtype)
    if noise_mode == "none":
        return None
    raise ValueError(f"noise_mode must be 'const', 'random' or 'none', not {noise_mode!r}")
