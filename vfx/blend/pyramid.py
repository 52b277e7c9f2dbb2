"""Gaussian and Laplacian pyramids on (B, C, H, W) tensors, any device.

Written here rather than taken from a library: the toolkit's chosen dependencies have no tensor pyramid
(OpenCV's ``pyrDown``/``pyrUp`` are host-only and one image at a time, kornia is not a dependency), and
the blend needs exact reconstruction in float: ``reconstruct(laplacian_pyramid(x, n)) == x`` to rounding.

Levels are listed finest first: ``pyramid[0]`` is full size, ``pyramid[-1]`` the coarsest (the Gaussian
residual). The 5-tap binomial kernel (1 4 6 4 1)/16 and mirrored borders are Burt and Adelson's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from vfx.errors import ConfigError

__all__ = ["downsample_mask", "laplacian_pyramid", "pyr_down", "pyr_up", "pyramid_levels", "reconstruct"]

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)


def pyramid_levels(size: int) -> int:
    """The pyramid depth of Fig. 5: n = log2(r) for an r x r crop (the coarsest level is 2 x 2).

    Example:
        >>> pyramid_levels(1024)
        10
    """
    if size < 2 or size & (size - 1):
        raise ConfigError("Blend crops must be a power of two", expected="r = 2, 4, ..., 1024", found=str(size),
                          fix="set model.resolution to a power of two")
    return int(math.log2(size))


def _kernel(x: Tensor) -> Tensor:
    k = torch.tensor(_BINOMIAL, dtype=x.dtype, device=x.device) / 16.0
    return k


def _blur(x: Tensor) -> Tensor:
    """Separable binomial blur with mirrored borders, per channel."""
    channels = x.shape[1]
    k = _kernel(x)
    x = F.pad(x, (2, 2, 2, 2), mode="reflect") if min(x.shape[-2:]) > 2 else F.pad(x, (2, 2, 2, 2), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(channels, 1, 1, 5), groups=channels)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(channels, 1, 5, 1), groups=channels)


def pyr_down(x: Tensor) -> Tensor:
    """Blur, then keep every second row and column: (B, C, H, W) -> (B, C, ceil(H/2), ceil(W/2))."""
    return _blur(x)[:, :, ::2, ::2]


def pyr_up(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Insert zeros between samples, then blur with 4x the kernel (the exact adjoint of :func:`pyr_down`)."""
    batch, channels = x.shape[:2]
    up = x.new_zeros((batch, channels, size[0], size[1]))
    up[:, :, ::2, ::2] = x[:, :, : (size[0] + 1) // 2, : (size[1] + 1) // 2]
    return _blur(up) * 4.0


def laplacian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``levels`` band-pass images, finest first; the last is the Gaussian residual.

    Args:
        x: (B, C, H, W) float tensor.
        levels: number of levels n (``pyramid_levels(r)`` for Fig. 5).

    Returns:
        ``[L_0, ..., L_{n-2}, G_{n-1}]`` with ``L_i = G_i - up(G_{i+1})``; L_i is (H / 2^i, W / 2^i).

    Example:
        >>> x = torch.rand(1, 3, 16, 16)
        >>> [tuple(p.shape[-2:]) for p in laplacian_pyramid(x, 4)]
        [(16, 16), (8, 8), (4, 4), (2, 2)]
        >>> bool(torch.allclose(reconstruct(laplacian_pyramid(x, 4)), x, atol=1e-6))
        True
    """
    if levels < 1:
        raise ConfigError("A pyramid needs at least one level", expected="levels >= 1", found=str(levels))
    pyramid = []
    current = x
    for _ in range(levels - 1):
        smaller = pyr_down(current)
        pyramid.append(current - pyr_up(smaller, current.shape[-2:]))
        current = smaller
    pyramid.append(current)
    return pyramid


def reconstruct(pyramid: list[Tensor]) -> Tensor:
    """Collapse a Laplacian pyramid (finest first) back into an image."""
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = band + pyr_up(image, band.shape[-2:])
    return image


def downsample_mask(mask: Tensor, levels: int) -> list[Tensor]:
    """A coverage mask at every pyramid level, finest first: each level's pixel holds the fraction of its
    area the full-size mask covers (2x2 box averages), so a pixel is 0 exactly when nothing of the shape
    reaches it."""
    masks = [mask]
    for _ in range(levels - 1):
        m = masks[-1]
        if m.shape[-1] % 2 or m.shape[-2] % 2:
            m = F.pad(m, (0, m.shape[-1] % 2, 0, m.shape[-2] % 2), mode="replicate")
        masks.append(F.avg_pool2d(m, 2))
    return masks
