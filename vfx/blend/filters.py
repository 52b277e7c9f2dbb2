"""Gaussian kernels, the Gaussian blur and SSIM on (B, C, H, W) tensors: the toolkit's one home for them.

Three Gaussians, each kept exactly as its users have always computed it (their outputs are hashed, so not a
bit may move):

* **the blend's** (:func:`gaussian_weights`, :func:`gaussian_blur` with ``border="zero"``): taps out to
  ``max(1, ceil(3σ))`` as Python floats, zero padding (outside the crop is background), summed as shifted
  slices, in the input's dtype. The face masks of the enhanced blend and the paste matte use it (and
  :mod:`vfx.blend.kernels` replays its arithmetic on preallocated buffers).
* **SSIM's** (:func:`gaussian_window`, :func:`gaussian_blur` with ``border="valid"`` or ``"replicate"``):
  skimage's window, truncated at 3.5σ (11 taps for σ = 1.5), as a tensor, applied by grouped convolutions.
  ``"valid"`` (no padding: only pixels whose window lies inside the image, as skimage averages) is the comb
  losses'; ``"replicate"`` (a same-size map, edges repeated) the retouch refiner's, whose holes may touch
  the border.
* **OpenCV's** (:func:`gaussian_blur_image`) for host images: the blend metrics and the retouch warp.

:func:`ssim_statistics` is the SSIM both losses build on: the local means, variances and covariance of Wang
et al. (2004) under that window. :func:`ssim_fractions` makes the comb losses' luminance and contrast-structure
maps of them (K1 = 0.01, K2 = 0.03, data range 1); the refiner multiplies the same numerators and denominators
before dividing, its own rounding, and keeps it.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vfx.errors import ConfigError

__all__ = ["SSIM_C1", "SSIM_C2", "SSIM_RADIUS", "SSIM_SIGMA", "Border", "SsimStatistics", "gaussian_blur",
           "gaussian_blur_image", "gaussian_radius", "gaussian_weights", "gaussian_window", "ssim_fractions", "ssim_statistics"]

Border = Literal["zero", "valid", "replicate"]

SSIM_SIGMA = 1.5
SSIM_RADIUS = int(3.5 * SSIM_SIGMA + 0.5)
"""skimage's truncate=3.5 -> 5, an 11-tap window."""
SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2
"""(K1 L)^2 and (K2 L)^2 with K1 = 0.01, K2 = 0.03 and data range L = 1."""


def gaussian_radius(sigma: float) -> int:
    """The blend's truncation: max(1, ceil(3σ)) pixels each side."""
    return max(1, math.ceil(3.0 * sigma))


def gaussian_weights(sigma: float) -> list[float]:
    """The blend's normalised Gaussian taps of σ pixels (σ > 0), radius :func:`gaussian_radius`, as Python floats.

    Example:
        >>> [round(w, 4) for w in gaussian_weights(0.5)]
        [0.0003, 0.1065, 0.7866, 0.1065, 0.0003]
    """
    radius = gaussian_radius(sigma)
    taps = [math.exp(-0.5 * (t / sigma) ** 2) for t in range(-radius, radius + 1)]
    total = sum(taps)
    return [t / total for t in taps]


def gaussian_window(sigma: float = SSIM_SIGMA, radius: int = SSIM_RADIUS, *, dtype: torch.dtype = torch.float64,
                    device: torch.device | str | None = None) -> Tensor:
    """SSIM's normalised 1-D Gaussian window, (2 radius + 1,), computed in ``dtype`` on ``device``.

    The comb losses compute it in float64 on the CPU and cast it to the images' dtype; the refiner computes
    it in float32 on the images' device. Both are kept: the roundings differ.
    """
    coords = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _blur_1d(x: Tensor, weights: list[float], dim: int) -> Tensor:
    radius = len(weights) // 2
    padding = [0, 0] * (x.ndim - 1 - dim) + [radius, radius]
    p = F.pad(x, padding)
    n = x.shape[dim]
    out = p.narrow(dim, radius, n) * weights[radius]
    for offset in range(1, radius + 1):
        out = out + (p.narrow(dim, radius - offset, n) + p.narrow(dim, radius + offset, n)) * weights[radius + offset]
    return out


def gaussian_blur(x: Tensor, sigma: float, *, border: Border = "zero", window: Tensor | None = None) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W): along W, then along H.

    Args:
        x: (B, C, H, W) tensor.
        sigma: σ in pixels.
        border: ``"zero"``: the blend's, zero padding, same size, taps :func:`gaussian_weights` summed as
            shifted slices (σ <= 0 returns ``x``); ``"valid"``: no padding, (H - 2R, W - 2R), SSIM's window by
            grouped convolutions; ``"replicate"``: the same with the edge pixels repeated, same size.
        window: for ``"valid"`` and ``"replicate"``, the 1-D taps (default :func:`gaussian_window` of σ with
            SSIM's radius, in float64, cast to ``x``'s dtype and device).
    """
    if border == "zero":
        if sigma <= 0:
            return x
        weights = gaussian_weights(sigma)
        return _blur_1d(_blur_1d(x, weights, 3), weights, 2)
    if border not in ("valid", "replicate"):
        raise ConfigError(f"Unknown blur border {border!r}", expected="zero, valid or replicate", found=repr(border),
                          fix='pass border="zero", "valid" or "replicate"')
    if window is None:
        window = gaussian_window(sigma).to(device=x.device, dtype=x.dtype)
    channels, taps = x.shape[1], window.shape[-1]
    row = window.reshape(1, 1, 1, taps).expand(channels, 1, 1, taps).contiguous()
    if border == "replicate":
        x = F.pad(x, (taps // 2,) * 4, mode="replicate")
    return F.conv2d(F.conv2d(x, row, groups=channels), row.transpose(2, 3), groups=channels)


def gaussian_blur_image(image: np.ndarray, sigma: float, *, border: Literal["zero", "reflect"]) -> np.ndarray:
    """OpenCV's Gaussian blur of a host image (H, W) or (H, W, C): its own kernel (``getGaussianKernel``,
    sized from σ), for the numpy code (the blend metrics' band means, the retouch warp's offset field).

    Args:
        image: the pixels (made C-contiguous for OpenCV).
        sigma: σ in pixels.
        border: ``"zero"`` (outside the image counts as 0, for normalised convolutions) or ``"reflect"``
            (mirrored without repeating the edge, OpenCV's default).
    """
    modes = {"zero": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT_101}
    if border not in modes:
        raise ConfigError(f"Unknown blur border {border!r}", expected="zero or reflect", found=repr(border),
                          fix='pass border="zero" or "reflect"')
    return cv2.GaussianBlur(np.ascontiguousarray(image), (0, 0), sigma, borderType=modes[border])


class SsimStatistics(NamedTuple):
    """Local statistics under SSIM's Gaussian window, per pixel and channel (population moments, as skimage's
    ``use_sample_covariance=False``)."""

    mu_x: Tensor
    mu_y: Tensor
    var_x: Tensor
    var_y: Tensor
    cov: Tensor


def ssim_statistics(x: Tensor, y: Tensor, *, border: Literal["valid", "replicate"] = "valid",
                    window: Tensor | None = None) -> SsimStatistics:
    """The local means, variances and covariance SSIM is made of: what every SSIM of the toolkit shares.

    Args:
        x, y: (B, C, H, W) images of one shape, data range 1.
        border: ``"valid"`` (maps of (H - 10, W - 10)) or ``"replicate"`` (same size); see :func:`gaussian_blur`.
        window: the 1-D taps (default :func:`gaussian_window` cast to ``x``).
    """
    if window is None:
        window = gaussian_window().to(device=x.device, dtype=x.dtype)

    def blur(t: Tensor) -> Tensor:
        return gaussian_blur(t, SSIM_SIGMA, border=border, window=window)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    return SsimStatistics(mu_x, mu_y, var_x, var_y, cov)


def ssim_fractions(stats: SsimStatistics) -> tuple[Tensor, Tensor]:
    """SSIM's luminance ``(2 mu_x mu_y + C1) / (mu_x² + mu_y² + C1)`` and contrast-structure
    ``(2 cov + C2) / (var_x + var_y + C2)`` per pixel: SSIM = luminance · cs, MS-SSIM takes cs alone.
    Returns (luminance, cs)."""
    mu_x, mu_y, var_x, var_y, cov = stats
    cs = (2 * cov + SSIM_C2) / (var_x + var_y + SSIM_C2)
    luminance = (2 * mu_x * mu_y + SSIM_C1) / (mu_x**2 + mu_y**2 + SSIM_C1)
    return luminance, cs
