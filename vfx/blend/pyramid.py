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


# Polyphase filtering with strided slices: a 5-tap blur followed by decimation (or zero insertion followed by a
# blur) computes only the samples it keeps. On the CPU this is ~9x faster than a grouped F.conv2d, whose
# depthwise path is slow for these small kernels, and it is the same arithmetic on CUDA.

def _reflect(x: Tensor, dim: int, before: int, after: int) -> Tensor:
    """Mirror ``x`` about its edge samples along ``dim`` (the edge is not repeated), like ``F.pad(mode="reflect")``."""
    n = x.shape[dim]
    parts = []
    if before:
        parts.append(x.narrow(dim, 1, before).flip(dim))
    parts.append(x)
    if after:
        parts.append(x.narrow(dim, n - 1 - after, after).flip(dim))
    return torch.cat(parts, dim=dim)


def _down_1d(x: Tensor, dim: int) -> Tensor:
    """(1 4 6 4 1)/16 along ``dim``, keeping the even samples: n -> ceil(n / 2)."""
    n = x.shape[dim]
    if n < 3:
        return x.narrow(dim, 0, 1) if n == 1 else (x.narrow(dim, 0, 1) * 0.75 + x.narrow(dim, 1, 1) * 0.25)
    keep = (n + 1) // 2
    p = _reflect(x, dim, 2, 2)  # sample j of the output is centred on p[2 j + 2]

    def tap(offset: int) -> Tensor:
        return p.narrow(dim, offset, 2 * keep - 1)[(slice(None),) * (dim % x.ndim) + (slice(None, None, 2),)]

    return (tap(0) + tap(4) + 4.0 * (tap(1) + tap(3)) + 6.0 * tap(2)) * (1.0 / 16.0)


def _up_1d(x: Tensor, dim: int, size: int) -> Tensor:
    """Zero insertion to ``size`` samples then (1 4 6 4 1)/8 along ``dim`` (the adjoint of :func:`_down_1d`,
    gain 2 per axis), with the zero-inserted signal mirrored at its edges."""
    n = x.shape[dim]
    if n == 1:
        return x.expand(*x.shape[:dim], size, *x.shape[dim + 1:]).contiguous()
    even_count, odd_count = (size + 1) // 2, size // 2
    # even outputs 2i: (x[i-1] + 6 x[i] + x[i+1]) / 8; odd outputs 2i+1: (x[i] + x[i+1]) / 2. Mirroring the
    # zero-inserted signal about its last sample puts x[n-1] after the end when ``size`` is even (that sample
    # is an inserted zero) and x[n-2] when it is odd.
    after = x.narrow(dim, n - 1 if size % 2 == 0 else n - 2, 1)
    p = torch.cat([x.narrow(dim, 1, 1), x, after], dim=dim)
    even = (p.narrow(dim, 0, even_count) + p.narrow(dim, 2, even_count) + 6.0 * p.narrow(dim, 1, even_count)) * 0.125
    # the mirrored zero-inserted signal puts x[n-1] beyond the last odd output: an edge repeat
    q = torch.cat([x, x.narrow(dim, n - 1, 1)], dim=dim)
    odd = (q.narrow(dim, 0, odd_count) + q.narrow(dim, 1, odd_count)) * 0.5
    if odd_count < even_count:
        odd = torch.cat([odd, torch.zeros_like(even.narrow(dim, 0, 1))], dim=dim)
    out = torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)
    return out.narrow(dim, 0, size)


def pyr_down(x: Tensor) -> Tensor:
    """Blur with the binomial kernel, then keep every second row and column: (B, C, H, W) -> (B, C, ceil(H/2), ceil(W/2))."""
    return _down_1d(_down_1d(x, 3), 2)


def pyr_up(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Insert zeros between samples, then blur with 4x the kernel (the adjoint of :func:`pyr_down`): -> ``size``."""
    return _up_1d(_up_1d(x, 3, int(size[1])), 2, int(size[0]))


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
        raise ConfigError("A pyramid needs at least one level", expected="levels >= 1", found=str(levels),
                          fix="pass levels=1 or more")
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
