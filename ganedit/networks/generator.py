"""What StyleGAN and StyleGAN2 share: the mapping network, truncation and the public generator API.

The public API splits NVIDIA's ``Gs.run`` into the three steps the paper edits between::

    w = G.mapping(z, truncation_psi)      # [N, w_dim] (or one w per style layer, see ``mapping``)
    sigma = G.styles(w)                    # one [N, C] tensor per style layer
    images = G.synthesis(sigma)            # [N, 3, H, W], about [-1, 1]

``G.optimize()`` makes ``synthesis`` run a compiled fast path (ganedit.networks.fast) with the same pictures.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LRELU_SLOPE, EqualizedLinear, pixel_norm

OFFICIAL_CUTOFF = "official"


@dataclass(frozen=True)
class StyleLayer:
    """One style input of the synthesis network.

    ``activation`` names the feature map whose channels this style scales (a key of the dict that
    ``synthesis(..., return_activations=True)`` returns); ``resolution`` and ``channels`` are that
    feature map's. In StyleGAN the style scales its own layer's normalised output (AdaIN); in
    StyleGAN2 it scales the input of its convolution, i.e. the previous layer's output.
    """

    name: str
    resolution: int
    channels: int
    activation: str


@dataclass(frozen=True)
class Styles:
    """The per-layer style scales sigma, one [N, C] tensor per style layer, in synthesis order.

    StyleGAN's AdaIN also adds a per-channel bias; it travels in ``bias`` (None for StyleGAN2, whose modulation
    has no bias) so that an edit can interpolate it on request. Not a list, so that no slicing or copying can
    drop the bias: take ``scales`` (and ``bias``) explicitly.
    """

    scales: tuple
    bias: tuple = None

    def __post_init__(self):
        object.__setattr__(self, "scales", tuple(self.scales))
        if self.bias is not None:
            object.__setattr__(self, "bias", tuple(self.bias))
            if len(self.bias) != len(self.scales):
                raise ValueError(f"{len(self.scales)} style scales but {len(self.bias)} biases")

    def __len__(self):
        return len(self.scales)


class MappingNetwork(nn.Module):
    """z -> w: pixel norm, then ``num_layers`` dense layers with leaky ReLU at learning-rate multiplier ``lrmul``.

    StyleGAN folds the ReLU gain sqrt(2) into the weights; StyleGAN2 applies it after the activation
    (``gain_after_activation``), which differs once the bias is non-zero.
    """

    def __init__(self, z_dim, w_dim, num_layers=8, hidden=512, lrmul=0.01, gain_after_activation=False):
        super().__init__()
        self.gain_after_activation = gain_after_activation
        weight_gain = 1.0 if gain_after_activation else math.sqrt(2)
        dims = [z_dim] + [hidden] * (num_layers - 1) + [w_dim]
        self.layers = nn.ModuleList(
            EqualizedLinear(dims[i], dims[i + 1], gain=weight_gain, lrmul=lrmul) for i in range(num_layers)
        )

    def forward(self, z):
        x = pixel_norm(z)
        for layer in self.layers:
            x = F.leaky_relu(layer(x), LRELU_SLOPE)
            if self.gain_after_activation:
                x = x * math.sqrt(2)
        return x

    def extra_repr(self):
        return "gain after activation" if self.gain_after_activation else "gain folded into the weights"


class Generator(nn.Module):
    """Base of both families. Subclasses build ``style_layers`` and implement ``styles``, ``_style_bias`` and
    ``_synthesize`` (whose ``fast`` flag picks exact rewrites that are cheaper once compiled).

    ``config`` is the architecture as plain data (what our safetensors files store beside the weights).
    What the loader knows of the model is declared here too: ``name`` (the registry name, or the file's stem),
    ``info`` (its registry entry, None for a bare file) and ``fingerprint`` (a hash of the weights, which a
    catalog must match).
    """

    kind = None
    default_truncation_cutoff = None  # None: truncate every layer

    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        self.resolution = int(config["resolution"])
        self.z_dim = int(config["z_dim"])
        self.w_dim = int(config["w_dim"])
        self.num_ws = 2 * int(math.log2(self.resolution)) - 2
        self.register_buffer("w_avg", torch.zeros(self.w_dim))
        self.name, self.info, self.fingerprint = "generator", None, ""
        self._fast = None  # a FastSynthesis once optimize() ran

    def extra_repr(self):
        return f"name={self.name!r}, resolution={self.resolution}, z_dim={self.z_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"

    @property
    def device(self):
        return self.w_avg.device

    @property
    def crop(self):
        """(first row, end row) of the picture shown from the canvas (the car model's black bands), or None."""
        return self.info.crop if self.info else None

    @property
    def default_psi(self):
        """The truncation the model's pictures are shown with: its registry entry's, else none (1.0)."""
        return self.info.truncation_psi if self.info else 1.0

    def mapping(self, z, truncation_psi=1.0, truncation_cutoff=OFFICIAL_CUTOFF):
        """z [N, z_dim] -> w [N, w_dim], truncated toward the stored average w by ``truncation_psi``.

        NVIDIA's StyleGAN truncates only the first 8 style layers (``truncation_cutoff=8`` in G_style);
        StyleGAN2 truncates all of them. With the default ``truncation_cutoff="official"`` we do the same,
        so that seeds give NVIDIA's pictures. When the cutoff leaves some layers untruncated (StyleGAN with
        psi != 1) one w per layer is needed, and the result is [N, num_ws, w_dim]; ``styles`` accepts both
        shapes. ``truncation_cutoff=None`` truncates every layer and always returns [N, w_dim].
        """
        z = torch.as_tensor(z, dtype=torch.float32, device=self.device)
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        w = self.mapping_network(z)
        if truncation_psi == 1:
            return w
        truncated = self.w_avg.lerp(w, float(truncation_psi))
        cutoff = self.default_truncation_cutoff if truncation_cutoff == OFFICIAL_CUTOFF else truncation_cutoff
        if cutoff is None or cutoff >= self.num_ws:
            return truncated
        per_layer = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        per_layer[:, :cutoff] = truncated.unsqueeze(1)
        return per_layer

    def _ws(self, w):
        """One w per synthesis w-slot: a list of num_ws tensors [N, w_dim]."""
        if w.ndim == 2:
            return [w] * self.num_ws
        if w.ndim == 3 and w.shape[1] == self.num_ws:
            return list(w.unbind(1))
        raise ValueError(f"w must have shape [N, {self.w_dim}] or [N, {self.num_ws}, {self.w_dim}], got {list(w.shape)}")

    def synthesis(self, styles, noise_mode="const", return_activations=False):
        """Styles (as ``styles`` returns them; for StyleGAN2 also a plain sequence of scales) -> images [N, 3, H, W];
        with ``return_activations`` also a dict of the feature maps named by ``StyleLayer.activation``. After
        ``optimize()`` a warm fast path serves the call."""
        if not isinstance(styles, Styles):
            styles = Styles(styles)
        if len(styles) != len(self.style_layers):
            raise ValueError(f"expected {len(self.style_layers)} style tensors, got {len(styles)}")
        args = (styles.scales, self._style_bias(styles), noise_mode, return_activations)
        fast = self._fast.get(*args) if self._fast is not None else None
        return (fast or self._synthesize)(*args)

    def optimize(self, background=False, batch_sizes=(1,), return_activations=(False, True)):
        """Make ``synthesis`` use the compiled fast path (pictures within 1e-4 relative L2 of eager) and return self.

        The path is compiled and warmed for ``batch_sizes`` (with and without activations, or as
        ``return_activations`` says), other calls on first use. ``background=True`` does all compiling in a worker thread and serves eager synthesis until the
        call's path is warm, so no caller waits for a compiler. Optimize after moving the model to its device and
        loading its weights: the compiled graphs hold them as constants. GANEDIT_OPTIMIZE=0 turns this off.
        """
        from .fast import FastSynthesis, optimization_enabled

        if optimization_enabled():
            self._fast = FastSynthesis(self, background, batch_sizes, return_activations)
        return self

    @property
    def optimized(self):
        """True once ``optimize()`` gave this generator a fast path (warm or not)."""
        return self._fast is not None

    def forward(self, z, truncation_psi=1.0, noise_mode="const"):
        return self.synthesis(self.styles(self.mapping(z, truncation_psi)), noise_mode=noise_mode)
