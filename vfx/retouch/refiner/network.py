"""The refiner's networks: its config, the layout-conditioned generator and the multi-scale discriminator.

Generator (seed 000 §2, the multi-resolution generator): a base encoder (1x1 stem, residual down blocks) gives F0 at
1/2**depth resolution; a bottom-up encoder (residual down blocks F1..Fn) continues to 1/2**(depth + n); a latent head
(residual block, global average pool, linear + LReLU, linears for the mean and log-variance) gives z, reparameterised
in training and z = mean in eval; a top-down FPN (1x1 laterals, upsampling, 3x3 conv + LReLU) gives the spatial
tensor phi at F0's resolution; a mapping network (pixel norm, FC + LReLU layers) gives w; a StyleGAN2 decoder of
modulated/demodulated convolutions upsamples phi back to full resolution, tRGB outputs summed over the levels.
Two deviations for retouching (explained at :class:`LayoutRefiner`): the RGB output is a residual on the warped
image, and the decoder gets the base encoder's finer features through U-Net skips.

Discriminator (pix2pixHD, seed 003): :class:`MultiScaleDiscriminator`, ``disc_scales`` spectrally normalised
PatchGANs on an image pyramid, each conditioned on cat(image, layout one-hot, hole).

Also here: :func:`layout_onehot` (label maps to the networks' one-hot input), :class:`TrainedRefiner` (what training
and loading return) and :func:`refine` (inference). Conventions: see :mod:`vfx.retouch.refiner`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from vfx.errors import ConfigError

__all__ = [
    "DiscriminatorOutput",
    "LayoutRefiner",
    "MultiScaleDiscriminator",
    "RefinerConfig",
    "RefinerOutput",
    "TrainedRefiner",
    "layout_onehot",
    "refine",
]

_LEAK = 0.2
_BASE_CHANNELS = 32
_MAX_DOUBLINGS = 3  # channels stop growing at 8x the base (256 at width 1)


def _check_positive_int(value: object, name: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"Invalid refiner setting {name}", expected=f"an integer >= {minimum}", found=repr(value),
                          fix=f"set RefinerConfig({name}=...) to a whole number >= {minimum}")


def _check_weight(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"Invalid loss weight {name}", expected="a finite number >= 0", found=repr(value),
                          fix=f"set RefinerConfig({name}=...) to 0 (off) or a positive weight")


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
            raise ConfigError("Invalid refiner learning rate", expected="a number > 0", found=repr(self.lr),
                              fix="set RefinerConfig(lr=...) to a positive number, e.g. 2e-4 (the default)")
        betas = tuple(self.betas)
        if len(betas) != 2 or not all(isinstance(b, int | float) and 0 <= b < 1 for b in betas):
            raise ConfigError("Invalid Adam betas", expected="two numbers in [0, 1)", found=repr(self.betas),
                              fix="set RefinerConfig(betas=...) to two numbers in [0, 1), e.g. (0.5, 0.999) (the default)")
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
                              found=str(tuple(warped.shape)), fix="pass the warped crops as (B, 3, H, W) RGB tensors")
        b, _, h, w = warped.shape
        if tuple(layout_onehot.shape) != (b, labels, h, w):
            raise ConfigError("Wrong layout shape for the refiner", expected=f"(B, {labels}, H, W) one-hot = "
                              f"{(b, labels, h, w)}", found=str(tuple(layout_onehot.shape)),
                              fix="convert label maps with layout_onehot(labels, num_labels)")
        if tuple(hole.shape) != (b, 1, h, w):
            raise ConfigError("Wrong hole mask shape for the refiner", expected=f"(B, 1, H, W) = {(b, 1, h, w)}",
                              found=str(tuple(hole.shape)),
                              fix="pass one single-channel hole mask per crop, at the crops' size")
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
# Inputs


def layout_onehot(labels: Tensor, num_labels: int = 8) -> Tensor:
    """Integer label maps (B, H, W) or (H, W) -> float32 one-hot (B, L, H, W) or (L, H, W).

    Raises a :class:`ConfigError` for a label outside [0, num_labels).
    """
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.ndim not in (2, 3):
        raise ConfigError("Wrong layout for layout_onehot", expected="an integer label map (H, W) or (B, H, W)",
                          found=f"{labels.dtype} {tuple(labels.shape)}",
                          fix="pass integer label maps (face_layout's output), not one-hot or float tensors")
    labels = labels.long()
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_labels):
        raise ConfigError("Layout label out of range", expected=f"labels in [0, {num_labels})",
                          found=f"labels from {int(labels.min())} to {int(labels.max())}",
                          fix=f"pass label maps with values 0..{num_labels - 1}, such as face_layout returns")
    onehot = F.one_hot(labels, num_labels).to(torch.float32)
    return onehot.movedim(-1, -3).contiguous()


# ----------------------------------------------------------------------------------------------------------------
# Trained refiners and inference


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


def _resolve_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError("Invalid device", expected="'cpu', 'cuda' or 'cuda:N'", found=repr(device),
                          fix='pass device="cpu", "cuda" or "cuda:0"') from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("CUDA device requested but none is available", expected="a machine with a CUDA GPU",
                          found=f"device={device!r}", fix="pass device='cpu'")
    return dev


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
