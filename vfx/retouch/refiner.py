"""The layout-conditioned refiner of a face retouch: it repairs the warped crop inside the hole, trained per shot.

A retouch warps a face crop towards an edited semantic layout (:class:`vfx.face.mask.FaceLabel`, 8 classes); the
warp leaves artefacts and holes. :class:`LayoutRefiner` takes (edited layout, warped image, hole mask) and repaints
the hole; everything outside it is the warped input, bit for bit (Eq. 12 of seed 001:
``y = G(x, c, m) * m + x * (1 - m)``).

Generator (seed 000 §2, the multi-resolution generator): a base encoder (1x1 stem, residual down blocks) gives F0 at
1/2**depth resolution; a bottom-up encoder (residual down blocks F1..Fn) continues to 1/2**(depth + n); a latent head
(residual block, global average pool, linear + LReLU, linears for the mean and log-variance) gives z, reparameterised
in training and z = mean in eval; a top-down FPN (1x1 laterals, upsampling, 3x3 conv + LReLU) gives the spatial
tensor phi at F0's resolution; a mapping network (pixel norm, FC + LReLU layers) gives w; a StyleGAN2 decoder of
modulated/demodulated convolutions upsamples phi back to full resolution, tRGB outputs summed over the levels.
Two deviations for retouching (explained at :class:`LayoutRefiner`): the RGB output is a residual on the warped
image, and the decoder gets the base encoder's finer features through U-Net skips.

Discriminator (pix2pixHD, seed 003): :class:`MultiScaleDiscriminator`, ``disc_scales`` spectrally normalised
PatchGANs on an image pyramid, each conditioned on cat(image, layout one-hot, hole). Losses: hinge adversarial
loss (as Eq. 14 of seed 001, sign corrected), pix2pixHD's feature-matching loss (Eq. 4), L1 and 1 - SSIM inside
the hole, and the KL term of seed 000 (weight 0.01, [0071]).

No pretrained network exists here or can be downloaded, so there is no VGG perceptual loss (seed 000 [0071], seed
001 Eq. 13): the feature-matching loss on the discriminators' own features stands in for it, as pix2pixHD allows
(its full objective is GAN + feature matching; VGG is an optional extra).

Training alternates a discriminator and a generator step (:func:`train_refiner`); half of each batch trains at
z = mu, the latent the eval mode uses, because a posterior the KL term pulls to N(0, I) never samples near its
mean in 64 dimensions (without this the eval output was measurably worse than the training output on the toy test).
Training is self-supervised per shot (seed 001 §4): the caller makes (layout, warped, hole, target) samples from the
shot's own frames, e.g. by warping or occluding a frame and keeping the original as the target.

Convention:
    - Images (B, 3, H, W) float in [0, 1], RGB; holes (B, 1, H, W) in [0, 1], 1 = repaint.
    - Layouts (B, L, H, W) float one-hot for the networks, (H, W) or (B, H, W) integer labels elsewhere
      (:func:`layout_onehot` converts); L = ``config.num_labels`` (8 = ``len(FaceLabel)``).
    - H and W must be multiples of ``config.size_multiple`` = 2**(depth + bottom_up_levels) (32 by default).
    - Sizes are (height, width).
    - Works on the CPU in float32; on CUDA the helpers run channels-last under bf16 autocast.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

import vfx
from vfx.blend.filters import SSIM_C1, SSIM_C2, SSIM_RADIUS, SSIM_SIGMA, gaussian_window, ssim_statistics
from vfx.errors import ConfigError, MediaError
from vfx.utils.stamped import Layout, read_stamped, read_stamped_weights, write_stamped

__all__ = [
    "REFINER_SCHEMA",
    "DiscriminatorOutput",
    "LayoutRefiner",
    "MultiScaleDiscriminator",
    "RefinerConfig",
    "RefinerOutput",
    "RefinerSample",
    "TrainedRefiner",
    "feature_matching_loss",
    "hinge_d_loss",
    "hinge_g_loss",
    "kl_divergence",
    "layout_onehot",
    "load_refiner",
    "masked_l1",
    "masked_ssim_loss",
    "refine",
    "save_refiner",
    "train_refiner",
]

log = logging.getLogger(__name__)

REFINER_SCHEMA = "vfx.Refiner/1"
WEIGHTS_FILE, MANIFEST_FILE = "refiner.safetensors", "refiner.json"
_LAYOUT = Layout.folder(MANIFEST_FILE, WEIGHTS_FILE)
HISTORY_TAIL = 200
"""How many logged loss rows ``refiner.json`` keeps."""

_LEAK = 0.2
_BASE_CHANNELS = 32
_MAX_DOUBLINGS = 3  # channels stop growing at 8x the base (256 at width 1)


def _check_positive_int(value: object, name: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"Invalid refiner setting {name}", expected=f"an integer >= {minimum}", found=repr(value))


def _check_weight(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"Invalid loss weight {name}", expected="a finite number >= 0", found=repr(value))


@dataclass(frozen=True)
class RefinerConfig:
    """Architecture, losses and optimiser of a refiner.

    Attributes:
        width: multiplier on every channel count; channels are ``32 * width * 2**level`` (level 0 full resolution),
            capped at ``256 * width``. 1.0 for a GPU, 0.25 for a CPU run.
        num_labels: classes of the layout (8 = ``len(FaceLabel)``).
        depth: /2 levels of the base encoder; phi is at 1/2**depth resolution (2: a quarter).
        bottom_up_levels: /2 residual blocks of the bottom-up encoder (F1..Fn, seed 000 [0057]).
        z_dim: size of the latent z and of w (the mapping keeps the dimensionality, [0066]).
        mapping_layers: FC + LReLU layers of the mapping network (8 in seed 000 [0066]).
        disc_scales: PatchGAN discriminators on the image pyramid (3 in pix2pixHD).
        disc_layers: stride-2 convolutions of each PatchGAN (3 in pix2pixHD).
        l1_weight: weight of the in-hole L1 loss.
        ssim_weight: weight of the in-hole 1 - SSIM loss.
        fm_weight: weight of the feature-matching loss (pix2pixHD's lambda = 10).
        adv_weight: weight of the generator's adversarial loss.
        kl_weight: weight of the KL term on z (seed 000 [0071]: 0.01).
        lr: Adam learning rate of generator and discriminator.
        betas: Adam betas.
        seed: seeds the weights, the batches, the flips and the latent noise.
    """

    width: float = 1.0
    num_labels: int = 8
    depth: int = 2
    bottom_up_levels: int = 3
    z_dim: int = 64
    mapping_layers: int = 8
    disc_scales: int = 3
    disc_layers: int = 3
    l1_weight: float = 1.0
    ssim_weight: float = 1.0
    fm_weight: float = 10.0
    adv_weight: float = 1.0
    kl_weight: float = 0.01
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.width, bool) or not isinstance(self.width, int | float) or not (
                math.isfinite(self.width) and 0 < self.width <= 4):
            raise ConfigError("Invalid refiner width multiplier", expected="a number in (0, 4]",
                              found=repr(self.width), fix="use 0.25 on a CPU, 1.0 on a GPU")
        _check_positive_int(self.num_labels, "num_labels")
        _check_positive_int(self.depth, "depth")
        _check_positive_int(self.bottom_up_levels, "bottom_up_levels")
        _check_positive_int(self.z_dim, "z_dim")
        _check_positive_int(self.mapping_layers, "mapping_layers", minimum=0)
        _check_positive_int(self.disc_scales, "disc_scales")
        _check_positive_int(self.disc_layers, "disc_layers")
        _check_positive_int(self.seed, "seed", minimum=0)
        for name in ("l1_weight", "ssim_weight", "fm_weight", "adv_weight", "kl_weight"):
            _check_weight(getattr(self, name), name)
        if isinstance(self.lr, bool) or not isinstance(self.lr, int | float) or not (
                math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError("Invalid refiner learning rate", expected="a number > 0", found=repr(self.lr))
        betas = tuple(self.betas)
        if len(betas) != 2 or not all(isinstance(b, int | float) and 0 <= b < 1 for b in betas):
            raise ConfigError("Invalid Adam betas", expected="two numbers in [0, 1)", found=repr(self.betas))
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this: 2**(depth + bottom_up_levels)."""
        return 2 ** (self.depth + self.bottom_up_levels)

    def channels(self, level: int) -> int:
        """Channels at resolution level ``level`` (0: full resolution, k: 1/2**k)."""
        return max(4, round(_BASE_CHANNELS * self.width * 2 ** min(level, _MAX_DOUBLINGS)))

    def check_size(self, height: int, width: int) -> None:
        """Raise a :class:`ConfigError` unless (height, width) are positive multiples of :attr:`size_multiple`."""
        m = self.size_multiple
        if height <= 0 or width <= 0 or height % m or width % m:
            fit = f"{max(m, round(height / m) * m)}x{max(m, round(width / m) * m)}"
            raise ConfigError(f"Refiner input size {height}x{width} (HxW) is not a multiple of {m}",
                              expected=f"height and width multiples of {m} = 2**(depth {self.depth} + "
                                       f"bottom_up_levels {self.bottom_up_levels})",
                              found=f"{height}x{width}", fix=f"pad or resize the crops, e.g. to {fit}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["betas"] = list(self.betas)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RefinerConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError("Unknown refiner config keys", expected=f"some of {sorted(known)}", found=str(unknown),
                              fix="retrain the refiner with this version of vfx")
        values = dict(data)
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        return cls(**values)


# ----------------------------------------------------------------------------------------------------------------
# Generator building blocks


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, _LEAK)


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class _ResBlock(nn.Module):
    """Seed 000 §2.4: ``[1x1 + LReLU](down(LReLU(3x3(x)))) + 1x1(down(x))``, the sum scaled by 1/sqrt(2).

    ``down`` is a 2x2 average pool (the patent leaves the operator open; a strided 1x1 would drop 3/4 of the
    pixels). It comes before the 1x1 convolutions, which commute with it. Without ``down`` the skip is the identity
    when the channel counts agree.
    """

    def __init__(self, cin: int, cout: int, *, down: bool) -> None:
        super().__init__()
        self.conv3 = nn.Conv2d(cin, cin, 3, padding=1)
        self.conv1 = nn.Conv2d(cin, cout, 1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False) if down or cin != cout else nn.Identity()
        self.down = down

    def forward(self, x: Tensor) -> Tensor:
        h = _lrelu(self.conv3(x))
        if self.down:
            h, x = F.avg_pool2d(h, 2), F.avg_pool2d(x, 2)
        return (_lrelu(self.conv1(h)) + self.skip(x)) * (1 / math.sqrt(2))


class _ModConv(nn.Module):
    """StyleGAN2 modulated convolution: weights scaled per input channel by a style from w, then demodulated.

    Written as StyleGAN2's non-fused form: ``conv(x * s, W) * d`` with ``d = 1 / sqrt(sum_{i,k} (s_i W_oik)**2)``,
    which equals convolving with the per-sample modulated, demodulated weights and keeps one weight for the batch
    (channels-last friendly). Without demodulation (tRGB) it is the modulated 1x1 colour conversion.
    """

    def __init__(self, cin: int, cout: int, w_dim: int, kernel: int = 3, *, demodulate: bool = True,
                 gain: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel) * (gain / math.sqrt(cin * kernel**2)))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.affine = nn.Linear(w_dim, cin)
        nn.init.normal_(self.affine.weight, std=1 / math.sqrt(w_dim))
        nn.init.ones_(self.affine.bias)  # styles start at 1: the layer starts as a plain convolution
        self.demodulate = demodulate
        self.padding = kernel // 2

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        s = self.affine(w)
        out = F.conv2d(x * s[:, :, None, None].to(x.dtype), self.weight.to(x.dtype), padding=self.padding)
        if self.demodulate:
            with torch.autocast(x.device.type, enabled=False):  # the norm in float32, whatever the autocast
                energy = s.float().square() @ self.weight.float().square().sum((2, 3)).T
                out = out * torch.rsqrt(energy + 1e-8)[:, :, None, None].to(out.dtype)
        return out + self.bias[None, :, None, None].to(out.dtype)


class _Mapping(nn.Module):
    """Seed 000 [0066]: a normalisation layer (pixel norm) and ``layers`` FC + LReLU layers, dimension kept."""

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(dim, dim) for _ in range(layers)])
        for layer in self.layers:
            nn.init.kaiming_normal_(layer.weight, a=_LEAK)  # keeps the scale of w through the stack
            nn.init.zeros_(layer.bias)

    def forward(self, z: Tensor) -> Tensor:
        w = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)
        for layer in self.layers:
            w = _lrelu(layer(w))
        return w


class _DecoderBlock(nn.Module):
    """Upsample, concatenate the base encoder's skip, two modulated 3x3 convolutions, a tRGB output."""

    def __init__(self, cin: int, cskip: int, cout: int, w_dim: int) -> None:
        super().__init__()
        self.conv1 = _ModConv(cin + cskip, cout, w_dim)
        self.conv2 = _ModConv(cout, cout, w_dim)
        self.to_rgb = _ModConv(cout, 3, w_dim, 1, demodulate=False, gain=0.1)

    def forward(self, x: Tensor, skip: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.cat([_up(x), skip], dim=1)
        x = _lrelu(self.conv1(x, w))
        x = _lrelu(self.conv2(x, w))
        return x, self.to_rgb(x, w)


class RefinerOutput(NamedTuple):
    """What ``LayoutRefiner.forward(..., return_latent=True)`` returns.

    Attributes:
        image: (B, 3, H, W) the composite (Eq. 12).
        mu: (B, z_dim) mean of z.
        logvar: (B, z_dim) log-variance of z.
    """

    image: Tensor
    mu: Tensor
    logvar: Tensor


class LayoutRefiner(nn.Module):
    """The generator: seed 000's multi-resolution generator, conditioned on (layout, warped image, hole).

    Input is cat(layout one-hot, warped image, hole): the warped image itself, artefacts and all, because the warp
    is the guide (it carries the face's detail into the new layout; outside and around the hole it is the context).

    Two deviations from seed 000, both needed for retouching:

    (a) Residual output: the summed tRGB outputs are added to the warped image instead of being the image. The
        refiner corrects the warp rather than repainting the face, so the detail the warp carried (pores, specular
        highlights, the shot's grain) survives wherever the network does not need to change it, and an untrained
        or lightly trained refiner starts from the warp, not from grey.
    (b) Full-resolution guidance: the decoder gets the base encoder's features at every resolution finer than phi
        (full and half resolution at depth 2) by skip concatenation, U-Net style. In seed 000 the decoder sees the
        labels only through phi (§2.9), at 1/4 resolution here, which cannot give crisp lip and eyelid lines.

    Convention:
        ``forward(layout_onehot, warped, hole)``: layout (B, L, H, W) float one-hot, warped (B, 3, H, W) in [0, 1],
        hole (B, 1, H, W) in [0, 1] -> (B, 3, H, W) float32 composite ``out * hole + warped * (1 - hole)``; outside
        the hole (hole == 0) exactly ``warped``. Not clipped (:func:`refine` clips). H, W multiples of
        ``config.size_multiple``. In training mode z is sampled (``mu + exp(logvar / 2) * noise``); in eval mode
        z = mu, so the output is deterministic.

    Example:
        >>> net = LayoutRefiner(RefinerConfig(width=0.125, mapping_layers=2)).eval()
        >>> layout = layout_onehot(torch.zeros(1, 32, 32, dtype=torch.long), 8)
        >>> tuple(net(layout, torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)).shape)
        (1, 3, 32, 32)
    """

    def __init__(self, config: RefinerConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        depth, levels = config.depth, config.bottom_up_levels
        # Base encoder (308a): 1x1 stem, then `depth` residual down blocks; F0 at 1/2**depth.
        self.stem = nn.Conv2d(config.num_labels + 4, c(0), 1)
        self.base = nn.ModuleList([_ResBlock(c(k), c(k + 1), down=True) for k in range(depth)])
        # Bottom-up encoder (308b): F1..Fn.
        self.bottom_up = nn.ModuleList([_ResBlock(c(depth + k), c(depth + k + 1), down=True) for k in range(levels)])
        # Latent head (318e, 320, 322a, 322b).
        low = c(depth + levels)
        self.latent_block = _ResBlock(low, low, down=False)
        self.latent_fc = nn.Linear(low, low)
        self.mu = nn.Linear(low, config.z_dim)
        self.logvar = nn.Linear(low, config.z_dim)
        # Top-down FPN (308c): laterals on F1..Fn, upsample + 3x3 conv + LReLU, phi at F0's resolution.
        c_phi = c(depth)
        self.laterals = nn.ModuleList([nn.Conv2d(c(depth + k + 1), c_phi, 1) for k in range(levels)])
        self.smooth = nn.ModuleList([nn.Conv2d(c_phi, c_phi, 3, padding=1) for _ in range(levels)])
        # Mapping (310a) and decoder (310b): a modulated block at phi's resolution, then one per /2 level.
        self.mapping = _Mapping(config.z_dim, config.mapping_layers)
        self.first = _ModConv(c_phi, c_phi, config.z_dim)
        self.first_rgb = _ModConv(c_phi, 3, config.z_dim, 1, demodulate=False, gain=0.1)
        self.decoder = nn.ModuleList([_DecoderBlock(c(k + 1), c(k), c(k), config.z_dim)
                                      for k in reversed(range(depth))])

    def check_inputs(self, layout_onehot: Tensor, warped: Tensor, hole: Tensor) -> None:
        """Raise a :class:`ConfigError` unless the three inputs have the shapes :meth:`forward` takes."""
        labels = self.config.num_labels
        if warped.ndim != 4 or warped.shape[1] != 3:
            raise ConfigError("Wrong warped image shape for the refiner", expected="(B, 3, H, W)",
                              found=str(tuple(warped.shape)))
        b, _, h, w = warped.shape
        if tuple(layout_onehot.shape) != (b, labels, h, w):
            raise ConfigError("Wrong layout shape for the refiner", expected=f"(B, {labels}, H, W) one-hot = "
                              f"{(b, labels, h, w)}", found=str(tuple(layout_onehot.shape)),
                              fix="convert label maps with layout_onehot(labels, num_labels)")
        if tuple(hole.shape) != (b, 1, h, w):
            raise ConfigError("Wrong hole mask shape for the refiner", expected=f"(B, 1, H, W) = {(b, 1, h, w)}",
                              found=str(tuple(hole.shape)))
        self.config.check_size(h, w)

    def encode(self, layout_onehot: Tensor, warped: Tensor, hole: Tensor) -> tuple[Tensor, list[Tensor], Tensor,
                                                                                    Tensor]:
        """The encoders: (phi, skips from full resolution down, mu, logvar)."""
        x = torch.cat([layout_onehot, warped, hole], dim=1).to(self.stem.weight.dtype)
        h = _lrelu(self.stem(x))
        skips = []
        for block in self.base:
            skips.append(h)
            h = block(h)
        features = []
        for block in self.bottom_up:
            h = block(h)
            features.append(h)
        pooled = self.latent_block(features[-1]).float().mean((2, 3))
        hidden = _lrelu(self.latent_fc(pooled))
        mu, logvar = self.mu(hidden).float(), self.logvar(hidden).float()
        t = self.laterals[-1](features[-1])
        for k in reversed(range(len(features))):
            if k < len(features) - 1:
                t = t + self.laterals[k](features[k])
            t = _lrelu(self.smooth[k](_up(t)))
        return t, skips, mu, logvar

    def decode(self, phi: Tensor, skips: list[Tensor], z: Tensor) -> Tensor:
        """The mapping and decoder: (phi, skips, z) -> the RGB residual (B, 3, H, W), float32."""
        w = self.mapping(z)
        x = _lrelu(self.first(phi, w))
        rgb = self.first_rgb(x, w)
        for block, skip in zip(self.decoder, reversed(skips), strict=True):
            x, colour = block(x, skip, w)
            rgb = _up(rgb) + colour
        return rgb.float()

    def forward(self, layout_onehot: Tensor, warped: Tensor, hole: Tensor, *, return_latent: bool = False,
                noise: Tensor | None = None) -> Tensor | RefinerOutput:
        """Refine the warped image inside the hole.

        Args:
            layout_onehot: (B, L, H, W) float one-hot of the edited layout.
            warped: (B, 3, H, W) the warped image, in [0, 1].
            hole: (B, 1, H, W) in [0, 1], 1 where the refiner repaints.
            return_latent: also return (mu, logvar), for the KL term.
            noise: (B, z_dim) standard normal noise for the reparameterisation in training mode (default: drawn from
                torch's global generator); ignored in eval mode.

        Returns:
            The composite (B, 3, H, W) float32, or a :class:`RefinerOutput` with ``return_latent``.
        """
        self.check_inputs(layout_onehot, warped, hole)
        phi, skips, mu, logvar = self.encode(layout_onehot, warped, hole)
        if self.training:
            eps = torch.randn_like(mu) if noise is None else noise.to(mu)
            z = mu + torch.exp(0.5 * logvar) * eps
        else:
            z = mu
        warped32, hole32 = warped.float(), hole.float()
        out = warped32 + self.decode(phi, skips, z)  # deviation (a): a residual on the warp
        image = out * hole32 + warped32 * (1 - hole32)  # Eq. 12
        return RefinerOutput(image, mu, logvar) if return_latent else image


# ----------------------------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorOutput(NamedTuple):
    """One scale of :class:`MultiScaleDiscriminator`.

    Attributes:
        features: the intermediate activations, first layer first (feature matching compares these).
        logits: (B, 1, h, w) the patch logits.
    """

    features: list[Tensor]
    logits: Tensor


class _PatchDiscriminator(nn.Module):
    """pix2pixHD's N-layer PatchGAN, spectrally normalised, no other normalisation (works down to 1x1 features)."""

    def __init__(self, cin: int, ndf: int, layers: int) -> None:
        super().__init__()
        blocks = []
        channels = cin
        for k in range(layers + 1):
            out = ndf * 2 ** min(k, 3)
            blocks.append(spectral_norm(nn.Conv2d(channels, out, 4, stride=2 if k < layers else 1, padding=2)))
            channels = out
        self.blocks = nn.ModuleList(blocks)
        self.head = spectral_norm(nn.Conv2d(channels, 1, 4, padding=2))

    def forward(self, x: Tensor) -> DiscriminatorOutput:
        features = []
        for block in self.blocks:
            x = _lrelu(block(x))
            features.append(x)
        return DiscriminatorOutput(features, self.head(x))


class MultiScaleDiscriminator(nn.Module):
    """pix2pixHD's multi-scale discriminator: ``disc_scales`` PatchGANs on an image pyramid.

    Scale 0 sees the full resolution; each further scale sees its input average-pooled 3x3 with stride 2. Each is
    conditioned on cat(image, layout one-hot, hole), so it judges whether the hole's content fits the layout.
    Channels: ``max(8, 32 * width)`` doubling per layer up to 8x.

    Convention:
        ``forward(image, layout_onehot, hole)``: (B, 3, H, W), (B, L, H, W), (B, 1, H, W) -> a list of
        :class:`DiscriminatorOutput`, one per scale, full resolution first.
    """

    def __init__(self, config: RefinerConfig) -> None:
        super().__init__()
        self.config = config
        ndf = max(8, round(_BASE_CHANNELS * config.width))
        cin = 3 + config.num_labels + 1
        self.scales = nn.ModuleList([_PatchDiscriminator(cin, ndf, config.disc_layers)
                                     for _ in range(config.disc_scales)])

    def forward(self, image: Tensor, layout_onehot: Tensor, hole: Tensor) -> list[DiscriminatorOutput]:
        x = torch.cat([image, layout_onehot.to(image.dtype), hole.to(image.dtype)], dim=1)
        outputs = []
        for k, disc in enumerate(self.scales):
            if k > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(disc(x))
        return outputs


# ----------------------------------------------------------------------------------------------------------------
# Losses


def layout_onehot(labels: Tensor, num_labels: int = 8) -> Tensor:
    """Integer label maps (B, H, W) or (H, W) -> float32 one-hot (B, L, H, W) or (L, H, W).

    Raises a :class:`ConfigError` for a label outside [0, num_labels).
    """
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.ndim not in (2, 3):
        raise ConfigError("Wrong layout for layout_onehot", expected="an integer label map (H, W) or (B, H, W)",
                          found=f"{labels.dtype} {tuple(labels.shape)}")
    labels = labels.long()
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_labels):
        raise ConfigError("Layout label out of range", expected=f"labels in [0, {num_labels})",
                          found=f"labels from {int(labels.min())} to {int(labels.max())}")
    onehot = F.one_hot(labels, num_labels).to(torch.float32)
    return onehot.movedim(-1, -3).contiguous()


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)): ``-1/2 sum_j (1 + logvar - mu**2 - exp(logvar))``, mean over the batch."""
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(1).mean()


def feature_matching_loss(fake: Sequence[DiscriminatorOutput], real: Sequence[DiscriminatorOutput]) -> Tensor:
    """pix2pixHD's feature-matching loss (Eq. 4), with its weights.

    ``sum_k sum_i 1/S * 4/(n+1) * mean|D_k^i(fake) - D_k^i(real)|`` over the S scales and each scale's n + 1
    intermediate layers (the logits excluded); the real features are detached.
    """
    if len(fake) != len(real):
        raise ConfigError("Feature matching needs one output per scale for both images",
                          expected=f"{len(fake)} real outputs", found=str(len(real)))
    total = torch.zeros((), device=fake[0].logits.device)
    for f, r in zip(fake, real, strict=True):
        weight = 1.0 / len(fake) * 4.0 / len(f.features)
        for a, b in zip(f.features, r.features, strict=True):
            total = total + weight * (a.float() - b.detach().float()).abs().mean()
    return total


def hinge_d_loss(real: Sequence[DiscriminatorOutput], fake: Sequence[DiscriminatorOutput]) -> Tensor:
    """Hinge loss of the discriminator, mean over scales: ``relu(1 - D(real)) + relu(1 + D(fake))``."""
    losses = [F.relu(1 - r.logits.float()).mean() + F.relu(1 + f.logits.float()).mean()
              for r, f in zip(real, fake, strict=True)]
    return torch.stack(losses).mean()


def hinge_g_loss(fake: Sequence[DiscriminatorOutput]) -> Tensor:
    """Hinge loss of the generator, mean over scales: ``-D(fake)``."""
    return torch.stack([-f.logits.float().mean() for f in fake]).mean()


def masked_l1(output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean absolute error weighted by ``mask`` (B, 1, H, W) over the whole batch; 0 for an empty mask."""
    mask = mask.float()
    error = (output.float() - target.float()).abs() * mask
    return error.sum() / (mask.sum() * output.shape[1]).clamp_min(1e-6)


def masked_ssim_loss(output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """``1 - SSIM`` averaged over the pixels inside ``mask`` (weighted by it); 0 for an empty mask.

    The same SSIM as :func:`vfx.comb.losses.ssim` (:mod:`vfx.blend.filters`: 11-tap Gaussian window, sigma 1.5,
    K1 = 0.01, K2 = 0.03, data range 1), but as a per-pixel map with replicated borders, averaged under the mask.
    ``vfx.comb.losses.ssim`` returns one value per image over the window-valid pixels, so the unchanged pixels
    outside a small hole (SSIM 1) would swamp it, and it drops the 5-pixel border where holes can lie.
    """
    x, y, mask = output.float(), target.float(), mask.float()
    window = gaussian_window(SSIM_SIGMA, SSIM_RADIUS, dtype=torch.float32, device=x.device)  # its own rounding
    mu_x, mu_y, var_x, var_y, cov = ssim_statistics(x, y, border="replicate", window=window)
    ssim_map = ((2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)) / (
        (mu_x**2 + mu_y**2 + SSIM_C1) * (var_x + var_y + SSIM_C2))
    return ((1 - ssim_map.mean(1, keepdim=True)) * mask).sum() / mask.sum().clamp_min(1e-6)


# ----------------------------------------------------------------------------------------------------------------
# Training


@dataclass
class RefinerSample:
    """One training sample of a shot.

    Attributes:
        layout: (H, W) integer labels (any integer dtype) of the edited layout, values in [0, num_labels) -- label
            maps, not one-hot, as :func:`vfx.face.mask.face_layout` draws them (``torch.from_numpy`` them).
        warped: (3, H, W) float in [0, 1], the warped image (the network's guide).
        hole: (1, H, W) float in [0, 1], 1 where the refiner repaints.
        target: (3, H, W) float in [0, 1], the ground truth (outside the hole it should equal ``warped``).
    """

    layout: Tensor
    warped: Tensor
    hole: Tensor
    target: Tensor


@dataclass
class TrainedRefiner:
    """What :func:`train_refiner` and :func:`load_refiner` return.

    Attributes:
        generator: the trained :class:`LayoutRefiner`, in eval mode.
        config: its configuration.
        steps: training steps done (one generator and one discriminator update each).
        size: (height, width) of the crops it was trained at.
        history: logged loss rows, oldest first: ``step``, ``seconds``, ``g_total``, ``l1``, ``ssim``, ``fm``,
            ``adv``, ``kl``, ``d`` (each a mean over the steps since the previous row).
    """

    generator: LayoutRefiner
    config: RefinerConfig
    steps: int
    size: tuple[int, int]
    history: list[dict[str, float]]


def _stack_samples(samples: Sequence[RefinerSample], config: RefinerConfig) -> dict[str, Tensor]:
    if len(samples) == 0:
        raise ConfigError("No refiner training samples", expected="at least one RefinerSample", found="none",
                          fix="check the shot's retouch frames")
    h, w = samples[0].layout.shape[-2:] if samples[0].layout.ndim == 2 else (-1, -1)
    for index, s in enumerate(samples):
        if s.layout.ndim != 2 or s.layout.dtype.is_floating_point or s.layout.dtype == torch.bool:
            raise ConfigError(f"Refiner sample {index} has a wrong layout", expected="(H, W) integer labels",
                              found=f"{s.layout.dtype} {tuple(s.layout.shape)}",
                              fix="pass label maps, not one-hot layouts")
        for name, channels in (("warped", 3), ("hole", 1), ("target", 3)):
            tensor = getattr(s, name)
            if tuple(tensor.shape) != (channels, h, w):
                raise ConfigError(f"Refiner sample {index} has a wrong {name} shape",
                                  expected=f"{(channels, h, w)} (all samples one size)",
                                  found=str(tuple(tensor.shape)))
    config.check_size(h, w)
    layouts = torch.stack([s.layout for s in samples]).long()
    if int(layouts.min()) < 0 or int(layouts.max()) >= config.num_labels:
        raise ConfigError("Refiner layout label out of range", expected=f"labels in [0, {config.num_labels})",
                          found=f"labels from {int(layouts.min())} to {int(layouts.max())}")
    return {"layout": layouts.to(torch.uint8 if config.num_labels <= 256 else torch.long),
            **{name: torch.stack([getattr(s, name) for s in samples]).float()
               for name in ("warped", "hole", "target")}}


def _resolve_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError("Invalid device", expected="'cpu', 'cuda' or 'cuda:N'", found=repr(device)) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("CUDA device requested but none is available", expected="a machine with a CUDA GPU",
                          found=f"device={device!r}", fix="pass device='cpu'")
    return dev


def train_refiner(samples: Sequence[RefinerSample], config: RefinerConfig = RefinerConfig(), *,
                  device: str | torch.device = "cpu", steps: int | None = None, seconds: float | None = None,
                  batch_size: int = 4, log_every: int = 50,
                  progress: Callable[[dict[str, float]], None] | None = None) -> TrainedRefiner:
    """Train a refiner on one shot's samples: discriminator and generator updated alternately.

    Each step draws ``batch_size`` samples (epochs of shuffled order), flips each horizontally with probability 1/2
    (layout, warped image, hole and target together; the 8-class layout has no left/right classes, so a flip is
    label-safe), updates the discriminator (hinge loss), then the generator:
    ``l1 * L1 + ssim * (1 - SSIM)`` inside the hole, ``fm * feature matching + adv * hinge`` against the
    discriminator, ``kl * KL(z)``. The discriminator's real image is ``target * hole + warped * (1 - hole)``, so real
    and fake agree outside the hole and it can only judge the hole's content. Half of each batch (alternating
    samples) runs at z = mu rather than a sampled z, so the decoder is trained at the latent eval mode uses.

    Args:
        samples: the shot's samples, all one size (a multiple of ``config.size_multiple``).
        config: architecture, losses and optimiser settings.
        device: where to train; on CUDA the models run channels-last under bf16 autocast.
        steps: stop after this many steps.
        seconds: stop after this much wall-clock time (checked between steps). With ``steps`` too, whichever comes
            first; at least one is required.
        batch_size: samples per step.
        log_every: steps per row of the loss history (the only host read-backs of the losses); the last step is
            always logged.
        progress: called with each history row as it is logged.

    Returns:
        A :class:`TrainedRefiner` with the generator in eval mode. On the CPU two runs with the same config (seed)
        and samples give identical weights and losses; the caller's torch random state is left as it was.
    """
    if steps is None and seconds is None:
        raise ConfigError("No training budget for the refiner", expected="steps, seconds, or both",
                          found="neither", fix="pass steps=N or seconds=S")
    if steps is not None:
        _check_positive_int(steps, "steps", minimum=0)
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0):
        raise ConfigError("Invalid training time budget", expected="seconds > 0", found=repr(seconds))
    _check_positive_int(batch_size, "batch_size")
    _check_positive_int(log_every, "log_every")
    dev = _resolve_device(device)
    data = {k: v.to(dev) for k, v in _stack_samples(samples, config).items()}
    count, (height, width) = data["layout"].shape[0], tuple(data["layout"].shape[-2:])
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(config.seed)
        generator, done, history = _train(data, count, config, dev, steps, seconds, batch_size, log_every, progress)
    return TrainedRefiner(generator.eval(), config, done, (height, width), history)


def _train(data: dict[str, Tensor], count: int, config: RefinerConfig, dev: torch.device, steps: int | None,
           seconds: float | None, batch_size: int, log_every: int, progress: Callable[[dict[str, float]], None] | None,
           ) -> tuple[LayoutRefiner, int, list[dict[str, float]]]:
    cuda = dev.type == "cuda"
    generator = LayoutRefiner(config).to(dev)
    discriminator = MultiScaleDiscriminator(config).to(dev)
    memory = torch.channels_last if cuda else torch.contiguous_format
    generator.to(memory_format=memory).train()
    discriminator.to(memory_format=memory).train()
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=config.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=config.betas)
    batches = torch.Generator().manual_seed(config.seed)  # on the CPU: the same batches on every device
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    order: list[int] = []

    def batch() -> tuple[Tensor, Tensor, Tensor, Tensor]:
        nonlocal order
        picked = []
        while len(picked) < batch_size:
            if not order:
                order = torch.randperm(count, generator=batches).tolist()
            picked.append(order.pop())
        index = torch.tensor(picked, device=dev)
        flip = (torch.rand(batch_size, generator=batches) < 0.5).to(dev).view(-1, 1, 1, 1)
        # Labels were checked once in _stack_samples; one_hot here avoids layout_onehot's per-step host sync.
        layout = F.one_hot(data["layout"][index].long(), config.num_labels).movedim(-1, 1).float()
        tensors = [layout, data["warped"][index], data["hole"][index], data["target"][index]]
        tensors = [torch.where(flip, t.flip(-1), t).contiguous(memory_format=memory) for t in tensors]
        return tensors[0], tensors[1], tensors[2], tensors[3]

    names = ("g_total", "l1", "ssim", "fm", "adv", "kl", "d")
    window = torch.zeros(len(names), device=dev)
    window_steps = 0
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    step = 0
    while (steps is None or step < steps) and (seconds is None or time.perf_counter() - started < seconds):
        layout, warped, hole, target = batch()
        real = target * hole + warped * (1 - hole)
        # Half of each batch (alternating) trains at z = mu, the latent eval mode uses: the KL term drives the
        # posterior towards N(0, I), and in 64 dimensions its samples lie on a shell (RMS ~1) that never comes near
        # mu ~ 0, so a decoder trained on samples alone is markedly worse at z = mu.
        sampled = ((torch.arange(batch_size, device=dev) + step) % 2 == 1).float()[:, None]
        noise = torch.randn(batch_size, config.z_dim, device=dev) * sampled
        with autocast():
            fake, mu, logvar = generator(layout, warped, hole, return_latent=True, noise=noise)

        # Discriminator step.
        discriminator.requires_grad_(True)
        with autocast():
            d_loss = hinge_d_loss(discriminator(real, layout, hole), discriminator(fake.detach(), layout, hole))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        # Generator step, against the updated discriminator.
        discriminator.requires_grad_(False)
        with autocast():
            pred_fake = discriminator(fake, layout, hole)
            with torch.no_grad():
                pred_real = discriminator(real, layout, hole)
        l1 = masked_l1(fake, target, hole)
        ssim = masked_ssim_loss(fake, target, hole)
        fm = feature_matching_loss(pred_fake, pred_real)
        adv = hinge_g_loss(pred_fake)
        kl = kl_divergence(mu, logvar)
        g_loss = (config.l1_weight * l1 + config.ssim_weight * ssim + config.fm_weight * fm
                  + config.adv_weight * adv + config.kl_weight * kl)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

        step += 1
        window += torch.stack([g_loss, l1, ssim, fm, adv, kl, d_loss]).detach().float()
        window_steps += 1
        finished = (steps is not None and step >= steps) or (
            seconds is not None and time.perf_counter() - started >= seconds)
        if step % log_every == 0 or finished:
            means = (window / window_steps).tolist()  # the one host read-back, at log intervals
            row = {"step": float(step), "seconds": round(time.perf_counter() - started, 3),
                   **{name: float(value) for name, value in zip(names, means, strict=True)}}
            history.append(row)
            log.info("refiner step %d  g %.4f  l1 %.4f  ssim %.4f  fm %.4f  adv %.4f  kl %.4f  d %.4f",
                     step, *means)
            if progress is not None:
                progress(row)
            window.zero_()
            window_steps = 0
    return generator.to(memory_format=torch.contiguous_format), step, history


# ----------------------------------------------------------------------------------------------------------------
# Inference


def refine(refiner: LayoutRefiner | TrainedRefiner, layout: Tensor, warped: Tensor, hole: Tensor) -> Tensor:
    """Refine a batch of warped crops: no gradients, on the refiner's device, in its eval mode.

    Args:
        refiner: a :class:`LayoutRefiner` or a :class:`TrainedRefiner`.
        layout: the edited layout, (B, H, W) integer labels or (B, L, H, W) float one-hot.
        warped: (B, 3, H, W) in [0, 1].
        hole: (B, 1, H, W) in [0, 1].

    Returns:
        (B, 3, H, W) float32 in [0, 1] on the refiner's device: the composite, clipped; outside the hole exactly the
        (clipped) warped input. On CUDA it runs channels-last under bf16 autocast.
    """
    net = refiner.generator if isinstance(refiner, TrainedRefiner) else refiner
    dev = next(net.parameters()).device
    if layout.ndim == 3:
        layout = layout_onehot(layout, net.config.num_labels)
    cuda = dev.type == "cuda"
    memory = torch.channels_last if cuda else torch.contiguous_format
    layout, warped, hole = (t.to(dev, torch.float32).contiguous(memory_format=memory) for t in (layout, warped, hole))
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            out = net(layout, warped, hole)
    finally:
        net.train(was_training)
    return out.float().clamp(0, 1).contiguous()


# ----------------------------------------------------------------------------------------------------------------
# Saving and loading


def save_refiner(folder: str | os.PathLike[str], trained: TrainedRefiner) -> Path:
    """Write ``folder/refiner.safetensors`` and ``folder/refiner.json`` (schema ``vfx.Refiner/1``), each atomically.

    The weights are written first and the manifest last, so a folder with a manifest always has its weights. The
    manifest holds the config, the steps, the training size and the last :data:`HISTORY_TAIL` history rows.

    Returns:
        The folder.
    """
    folder = Path(folder)
    state = {k: v.detach().float() for k, v in trained.generator.state_dict().items()}
    manifest = {"schema": REFINER_SCHEMA, "vfx_version": vfx.__version__, "config": trained.config.to_dict(),
                "steps": trained.steps, "size": list(trained.size), "history": trained.history[-HISTORY_TAIL:]}
    write_stamped(folder, REFINER_SCHEMA, manifest, state, layout=_LAYOUT)
    return folder


def load_refiner(folder: str | os.PathLike[str], device: str | torch.device = "cpu") -> TrainedRefiner:
    """Load a refiner written by :func:`save_refiner`, in eval mode on ``device``.

    Raises:
        ConfigError: a missing folder or file (``vfx retouch SHOT`` trains and writes one), a manifest that is not
            ``vfx.Refiner/1`` JSON, or weights that do not match the manifest's architecture.
    """
    folder = Path(folder)
    how = "run `vfx retouch SHOT` to train the shot's refiner and write it there"
    if not folder.is_dir():
        raise ConfigError(f"Refiner folder {folder} not found",
                          expected=f"a folder holding {MANIFEST_FILE} and {WEIGHTS_FILE}",
                          found="a file" if folder.exists() else "nothing at that path", fix=how)
    for name in (MANIFEST_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise ConfigError(f"Refiner file {folder / name} not found",
                              expected=f"{MANIFEST_FILE} and {WEIGHTS_FILE} in {folder}", found=f"no {name}", fix=how)
    try:
        manifest = read_stamped(folder, REFINER_SCHEMA, layout=_LAYOUT, what="refiner", fix=how)
        state = read_stamped_weights(folder, _LAYOUT, what="refiner", fix=how)
    except MediaError as err:  # this loader's callers expect a ConfigError (exit 2 all the same)
        raise ConfigError(err.message, expected=err.expected, found=err.found, fix=err.fix) from err
    try:
        config = RefinerConfig.from_dict(manifest["config"])
        steps, size = int(manifest["steps"]), (int(manifest["size"][0]), int(manifest["size"][1]))
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ConfigError(f"Incomplete refiner manifest {folder / MANIFEST_FILE}",
                          expected="config, steps and size entries", found=repr(err), fix=how) from err
    net = LayoutRefiner(config)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ConfigError(f"Refiner weights {folder / WEIGHTS_FILE} do not match its manifest",
                          expected="the architecture of refiner.json's config", found=str(err).splitlines()[0],
                          fix=how) from err
    dev = _resolve_device(device)
    history = [dict(row) for row in manifest.get("history", [])]
    return TrainedRefiner(net.to(dev).eval(), config, steps, size, history)
