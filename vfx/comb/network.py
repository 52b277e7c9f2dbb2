"""The comb network of the face-swap patent (002, Fig. 3A/3B): one shared encoder, P decoders in parallel.

Levels 0-8 work at 4², 8², ..., 1024². Each level is two convolutions (LeakyReLU 0.2) and a down- or up-scaling
step; the encoder ends in a 4x4 convolution to a 512 x 1 x 1 latent, and each decoder starts with a 4x4
(transposed) convolution from it. Channel counts follow the tables: 512 down to 32² (levels 0-3), then 256,
128, 64, 32, 16 at 64² ... 1024², all scaled by a width multiplier (1.0 is the patent's network).

Progressive growing ([0034]-[0036]): the network is built for its final resolution r, but runs at a current
level L <= log2(r) - 2 with a fade-in gain alpha in [0, 1] on the newest level. Every level has its own 1x1
input layer (3 -> channels, encoder) and output layer (channels -> 3, sigmoid, decoder), ProGAN style: while
level L fades in, the encoder's input is ``alpha * level_L(from_rgb_L(x)) + (1 - alpha) * from_rgb_{L-1}(down(x))``
and each decoder's output ``alpha * to_rgb_L(level_L(up(h))) + (1 - alpha) * up(to_rgb_{L-1}(h))``, so alpha = 0
gives exactly the previous level's output, upsampled. The tables' layers are the levels plus the input and
output layers of level log2(r) - 2; the lower levels' input and output layers are training scaffolding (a few
thousand parameters).

Decoder levels 0 and 1 (with their output layers) are tied ([0035]-[0036], [0040]): one module shared by every
decoder, so the latent space means the same to all of them; decoders are independent from level 2 on.

Convention:
    Images (B, 3, s, s) float in [0, 1], s = 4 * 2**level, RGB in the working space; latents (B, C, 1, 1).
    Level numbers as in the tables: 0 is 4², 8 is 1024².
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vfx.errors import ConfigError

__all__ = ["TIED_LEVELS", "CombConfig", "CombNetwork", "Decoder", "Encoder", "level_channels", "level_size"]

#: Decoder levels whose weights every decoder shares ([0035]).
TIED_LEVELS = 2

_LEAK = 0.2  # [0031]
_FULL_CHANNELS = (512, 512, 512, 512, 256, 128, 64, 32, 16)  # per level at width 1.0 (Fig. 3A/3B)
_MAX_LEVEL = len(_FULL_CHANNELS) - 1


def level_size(level: int) -> int:
    """Side in pixels of level ``level``: 4 * 2**level."""
    return 4 << level


def level_channels(level: int, width: float) -> int:
    """Channels of level ``level`` at width multiplier ``width`` (at least 1)."""
    return max(1, round(_FULL_CHANNELS[level] * width))


@dataclass(frozen=True)
class CombConfig:
    """The architecture of a comb network.

    Attributes:
        resolution: final crop size r, a power of two from 4 to 1024 (the top level is log2(r) - 2).
        width: multiplier on every channel count (1.0: the patent's 23.1 M-parameter decoder at r = 1024).
        personas: decoder names, in order (at least one; two or more for a swap).
    """

    resolution: int = 256
    width: float = 1.0
    personas: tuple[str, ...] = ("a", "b")

    def __post_init__(self) -> None:
        r = self.resolution
        if isinstance(r, bool) or not isinstance(r, int) or r < 4 or r > 1024 or r & (r - 1):
            raise ConfigError("Invalid comb network resolution", expected="a power of two from 4 to 1024",
                              found=repr(r), fix="use 64 for a CPU run, 256-1024 on a GPU")
        if not (isinstance(self.width, int | float) and math.isfinite(self.width) and 0 < self.width <= 4):
            raise ConfigError("Invalid width multiplier", expected="a number in (0, 4] (1.0 is the patent's network)",
                              found=repr(self.width), fix="use 0.25 on a CPU, 1.0 on a GPU")
        names = tuple(self.personas)
        if not names or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
            raise ConfigError("Invalid persona names", expected="one or more distinct non-empty names",
                              found=repr(self.personas),
                              fix="name each persona once, e.g. --persona hopper=... --persona astronaut=...")
        object.__setattr__(self, "personas", names)

    @property
    def top_level(self) -> int:
        """The level of the final resolution: log2(r) - 2."""
        return int(math.log2(self.resolution)) - 2

    @property
    def latent_channels(self) -> int:
        return level_channels(0, self.width)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["personas"] = list(self.personas)
        return data


def _conv(cin: int, cout: int, kernel: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2 if kernel == 3 else 0)


class _EncoderLevel(nn.Module):
    """Two 3x3 convolutions, then (above level 0) a 2x average-pool down; level 0 ends in the 4x4 to 1x1."""

    def __init__(self, level: int, width: float) -> None:
        super().__init__()
        c = level_channels(level, width)
        out = level_channels(level - 1, width) if level > 0 else c
        self.conv1 = _conv(c, c)
        self.conv2 = _conv(c, out) if level > 0 else nn.Conv2d(c, c, 4)  # level 0: 4x4 valid -> 1x1 latent
        self.level = level

    def forward(self, x: Tensor) -> Tensor:
        x = F.leaky_relu(self.conv1(x), _LEAK)
        x = F.leaky_relu(self.conv2(x), _LEAK)
        return F.avg_pool2d(x, 2) if self.level > 0 else x


class _DecoderLevel(nn.Module):
    """Level 0: the 4x4 transposed convolution from the latent and a 3x3; above: 2x nearest up, two 3x3."""

    def __init__(self, level: int, width: float) -> None:
        super().__init__()
        c = level_channels(level, width)
        cin = level_channels(level - 1, width) if level > 0 else level_channels(0, width)
        self.conv1 = nn.ConvTranspose2d(cin, c, 4) if level == 0 else _conv(cin, c)
        self.conv2 = _conv(c, c)
        self.level = level

    def forward(self, x: Tensor) -> Tensor:
        if self.level > 0:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = F.leaky_relu(self.conv1(x), _LEAK)
        return F.leaky_relu(self.conv2(x), _LEAK)


class _ToRGB(nn.Module):
    """The 1x1 output layer of a level: channels -> 3, sigmoid."""

    def __init__(self, level: int, width: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(level_channels(level, width), 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.conv(x))


class Encoder(nn.Module):
    """The shared encoder (Fig. 3A). Knows nothing of personas.

    Convention:
        ``forward(x, level, alpha)``: x (B, 3, s, s) in [0, 1], s = :func:`level_size` (level) -> (B, C, 1, 1).
    """

    def __init__(self, config: CombConfig) -> None:
        super().__init__()
        self.config = config
        top = config.top_level
        self.levels = nn.ModuleList([_EncoderLevel(level, config.width) for level in range(top + 1)])
        self.from_rgb = nn.ModuleList([nn.Conv2d(3, level_channels(level, config.width), 1)
                                       for level in range(top + 1)])

    def forward(self, x: Tensor, level: int, alpha: float = 1.0) -> Tensor:
        h = F.leaky_relu(self.from_rgb[level](x), _LEAK)
        h = self.levels[level](h)
        if level > 0 and alpha < 1.0:
            old = F.leaky_relu(self.from_rgb[level - 1](F.avg_pool2d(x, 2)), _LEAK)
            h = alpha * h + (1.0 - alpha) * old
        for lower in range(level - 1, -1, -1):
            h = self.levels[lower](h)
        return h


class Decoder(nn.Module):
    """One persona's decoder (Fig. 3B) over the shared tied levels.

    ``tied`` holds levels 0..TIED_LEVELS-1 and their output layers; it is the same module object for every
    decoder of a :class:`CombNetwork`, which registers (and saves) it once. ``levels`` and ``to_rgb`` hold this
    decoder's own levels, so ``decoder.parameters()`` are exactly its own.

    Convention:
        ``forward(z, level, alpha)``: z (B, C, 1, 1) -> (B, 3, s, s) in [0, 1].
    """

    def __init__(self, config: CombConfig, tied: nn.ModuleDict) -> None:
        super().__init__()
        self.config = config
        self._tied = (tied,)  # a tuple, so nn.Module does not register it here a second time
        own = range(TIED_LEVELS, config.top_level + 1)
        self.levels = nn.ModuleList([_DecoderLevel(level, config.width) for level in own])
        self.to_rgb = nn.ModuleList([_ToRGB(level, config.width) for level in own])

    def _level(self, level: int) -> nn.Module:
        return self._tied[0]["levels"][level] if level < TIED_LEVELS else self.levels[level - TIED_LEVELS]

    def _head(self, level: int) -> nn.Module:
        return self._tied[0]["to_rgb"][level] if level < TIED_LEVELS else self.to_rgb[level - TIED_LEVELS]

    def forward(self, z: Tensor, level: int, alpha: float = 1.0) -> Tensor:
        return self.forward_features(z, level, alpha)[0]

    def forward_features(self, z: Tensor, level: int, alpha: float = 1.0) -> tuple[Tensor, list[Tensor]]:
        """The image and every level's output feature map, coarse to fine ((B, C_l, 4·2^l, 4·2^l), l = 0..level):
        what a segmentation head reads (004 [0024]). The image is exactly :meth:`forward`'s."""
        h = z
        features = []
        for lower in range(level):
            h = self._level(lower)(h)
            features.append(h)
        top = self._level(level)(h)
        features.append(top)
        out = self._head(level)(top)
        if level > 0 and alpha < 1.0:
            old = F.interpolate(self._head(level - 1)(h), scale_factor=2.0, mode="nearest")
            out = alpha * out + (1.0 - alpha) * old
        return out, features


class CombNetwork(nn.Module):
    """Shared encoder, P decoders coupled in parallel to its output ([0027]), grown level by level.

    Attributes:
        level: the level the network currently runs at (0: 4²); :meth:`grow` moves it up.
        alpha: fade-in gain of the newest level, in [0, 1], one value for all decoders ([0036]).

    Example:
        >>> net = CombNetwork(CombConfig(resolution=16, width=0.05, personas=("x", "y")))
        >>> net.grow(2)
        >>> z = net.encode(torch.rand(1, 3, 16, 16))
        >>> tuple(net.decode(z, "y").shape)
        (1, 3, 16, 16)
    """

    def __init__(self, config: CombConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        tied_top = min(TIED_LEVELS, config.top_level + 1)
        self.tied = nn.ModuleDict({
            "levels": nn.ModuleList([_DecoderLevel(level, config.width) for level in range(tied_top)]),
            "to_rgb": nn.ModuleList([_ToRGB(level, config.width) for level in range(tied_top)]),
        })
        self.decoders = nn.ModuleDict({name: Decoder(config, self.tied) for name in config.personas})
        self.level = 0
        self.alpha = 1.0

    @property
    def personas(self) -> tuple[str, ...]:
        return tuple(self.decoders)

    @property
    def size(self) -> int:
        """Image side at the current level."""
        return level_size(self.level)

    def grow(self, level: int, alpha: float = 1.0) -> None:
        """Run at ``level`` with fade-in gain ``alpha`` from now on."""
        if not 0 <= level <= self.config.top_level:
            raise ConfigError("Invalid level", expected=f"0 to {self.config.top_level} for a {self.config.resolution}² "
                              "network", found=str(level),
                              fix=f"grow to a level from 0 to {self.config.top_level}")
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError("Invalid fade-in alpha", expected="a number in [0, 1]", found=repr(alpha),
                              fix="pass an alpha from 0 (new level off) to 1 (new level on)")
        self.level, self.alpha = int(level), float(alpha)

    def encode(self, x: Tensor) -> Tensor:
        """(B, 3, s, s) images at the current level's size -> (B, C, 1, 1) latents."""
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[-2:] != (self.size, self.size):
            raise ConfigError("Wrong image shape for the encoder",
                              expected=f"(B, 3, {self.size}, {self.size}) at level {self.level}",
                              found=str(tuple(x.shape)), fix="resize the crops to the current level's size")
        return self.encoder(x, self.level, self.alpha)

    def _decoder(self, persona: str) -> Decoder:
        if persona not in self.decoders:
            raise ConfigError(f"Unknown persona {persona!r}", expected=f"one of {', '.join(self.personas)}",
                              found=repr(persona),
                              fix="pick one of the model's personas (vfx model info lists them)")
        return self.decoders[persona]  # type: ignore[return-value]

    def decode(self, z: Tensor, persona: str) -> Tensor:
        """Latents -> persona ``persona``'s images at the current level's size."""
        return self._decoder(persona)(z, self.level, self.alpha)

    def decode_features(self, z: Tensor, persona: str) -> tuple[Tensor, list[Tensor]]:
        """Latents -> (persona's images, the decoder's per-level feature maps), see :meth:`Decoder.forward_features`."""
        return self._decoder(persona).forward_features(z, self.level, self.alpha)

    def feature_channels(self) -> tuple[int, ...]:
        """Channels of each decoder feature map :meth:`decode_features` returns at the current level."""
        return tuple(level_channels(level, self.config.width) for level in range(self.level + 1))

    def forward(self, x: Tensor, persona: str) -> Tensor:
        return self.decode(self.encode(x), persona)

    def fingerprint(self, persona: str) -> str:
        """SHA-256 (first 16 hex) of the weights that turn an image into ``persona``'s image: the encoder, the
        tied levels and the persona's own decoder, names and bytes. Anything learned in this latent space (a
        segmentation head, an edit vector) is valid for exactly this fingerprint; retraining changes it."""
        digest = hashlib.sha256()
        modules = (("encoder", self.encoder), ("tied", self.tied), ("decoder", self._decoder(persona)))
        for prefix, module in modules:
            for name, tensor in module.state_dict().items():
                digest.update(f"{prefix}.{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
                digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def own_parameters(self, persona: str) -> list[nn.Parameter]:
        """The parameters of ``persona``'s decoder that no other decoder shares."""
        return list(self.decoders[persona].parameters())

    def shared_parameters(self) -> list[nn.Parameter]:
        """The encoder's and the tied decoder levels' parameters (P updates per training iteration)."""
        return [*self.encoder.parameters(), *self.tied.parameters()]
