"""SSIM, MS-SSIM and the level-dependent masked loss of the comb training ([0042]-[0043] of 002).

SSIM is computed as ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1)`` does: an 11-tap Gaussian window (sigma 1.5, truncated at 3.5
sigma), K1 = 0.01, K2 = 0.03, averaged over the pixels whose window lies inside the image; the window and the
local statistics are :mod:`vfx.blend.filters`', which the retouch refiner's SSIM shares. MS-SSIM is Wang,
Simoncelli and Bovik's (2003): contrast-structure at every scale, luminance at the coarsest, the published
five weights. Written here rather than taken from a library because the comb network trains at 32² and 64²,
where the usual implementations refuse to run (pytorch-msssim asserts 5 scales, 161 px and more); here MS-SSIM
uses as many scales as the image allows (each at least one window, 11 px), with the weights of those scales
renormalised to sum to 1.

Convention:
    Images (B, C, H, W) float in [0, 1]; masks (B, 1, H, W) in [0, 1]. Functions return (B,) per-image values.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from vfx.blend.filters import SSIM_RADIUS, SSIM_SIGMA, gaussian_window, ssim_fractions, ssim_statistics
from vfx.errors import ConfigError

__all__ = ["ssim", "ms_ssim", "ms_ssim_scales", "masked_loss", "level_loss", "MaskMode", "MS_SSIM_WEIGHTS"]

MaskMode = Literal["target", "both"]
"""Eq. 1 of [0042] masks the target only (``"target"``); Eq. 2 masks both images (``"both"``)."""

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW = 2 * SSIM_RADIUS + 1
SSIM_LEVELS = 2
"""Levels 0..2 use SSIM on images upsampled to 16² ([0043]); MS-SSIM from level 3 (32²) on."""
_SSIM_SIZE = 16


def _ssim_parts(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image mean SSIM and mean contrast-structure term, (B,) each (:mod:`vfx.blend.filters`' SSIM over
    the pixels whose window lies inside the image)."""
    if x.shape[-1] < WINDOW or x.shape[-2] < WINDOW:
        raise ConfigError("Image too small for SSIM", expected=f"at least {WINDOW}x{WINDOW} pixels",
                          found=f"{tuple(x.shape[-2:])}", fix="upsample first (level_loss does, to 16²)")
    window = gaussian_window(SSIM_SIGMA, SSIM_RADIUS).to(device=x.device, dtype=x.dtype)
    luminance, cs = ssim_fractions(ssim_statistics(x, y, border="valid", window=window))
    return (luminance * cs).flatten(1).mean(1), cs.flatten(1).mean(1)


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.shape != y.shape or x.ndim != 4:
        raise ConfigError("SSIM needs two images of one shape", expected="(B, C, H, W) twice",
                          found=f"{tuple(x.shape)} and {tuple(y.shape)}",
                          fix="resize one image to the other's size before comparing")


def ssim(x: Tensor, y: Tensor) -> Tensor:
    """Mean SSIM of each image pair, (B,); equals skimage's Gaussian-window SSIM with ``data_range=1``.

    Computed in float32 at least (SSIM's variances cancel badly in half precision).
    """
    _check_pair(x, y)
    dtype = torch.promote_types(x.dtype, torch.float32)
    return _ssim_parts(x.to(dtype), y.to(dtype))[0]


def ms_ssim_scales(size: int) -> int:
    """How many MS-SSIM scales (at most 5) an image of side ``size`` allows: every scale at least 11 px."""
    scales = 0
    while scales < len(MS_SSIM_WEIGHTS) and size >= WINDOW:
        scales += 1
        size //= 2
    return scales


def ms_ssim(x: Tensor, y: Tensor, *, scales: int | None = None) -> Tensor:
    """Multi-scale SSIM of each image pair, (B,).

    Args:
        x, y: (B, C, H, W) in [0, 1].
        scales: number of scales; default :func:`ms_ssim_scales` of the smaller side. The first ``scales`` of
            :data:`MS_SSIM_WEIGHTS` are used, renormalised to sum to 1 (with 1 scale this is SSIM).
    """
    _check_pair(x, y)
    dtype = torch.promote_types(x.dtype, torch.float32)
    x, y = x.to(dtype), y.to(dtype)
    allowed = ms_ssim_scales(min(x.shape[-2:]))
    scales = allowed if scales is None else scales
    if not 1 <= scales <= allowed:
        raise ConfigError("Invalid MS-SSIM scale count", expected=f"1 to {allowed} for {tuple(x.shape[-2:])} images",
                          found=str(scales), fix=f"use at most {allowed} scales, or larger images")
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=dtype, device=x.device)
    weights = weights / weights.sum()
    terms = []
    for scale in range(scales):
        full, cs = _ssim_parts(x, y)
        # relu: a negative contrast term to a fractional power is NaN (pytorch-msssim does the same).
        terms.append(torch.relu(full if scale == scales - 1 else cs))
        if scale < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return torch.prod(torch.stack(terms, dim=0) ** weights.view(-1, 1), dim=0)


def masked_loss(target: Tensor, output: Tensor, mask: Tensor | None, *, mode: MaskMode = "target",
                multiscale: bool = True) -> Tensor:
    """``1 - f(x * m, x~)`` (Eq. 1, ``mode="target"``) or ``1 - f(x * m, x~ * m)`` (Eq. 2, ``"both"``), mean over B.

    Args:
        target: x, the ground-truth crops.
        output: x~, the reconstructions.
        mask: m(x), the face mask (B, 1, H, W); None means no masking.
        mode: which images the mask multiplies.
        multiscale: MS-SSIM (True) or SSIM as f.
    """
    if mode not in ("target", "both"):
        raise ConfigError("Invalid loss mask mode", expected="'target' (Eq. 1) or 'both' (Eq. 2)", found=repr(mode),
                          fix="--mask target or --mask both")
    if mask is not None:
        target = target * mask
        if mode == "both":
            output = output * mask
    f = ms_ssim if multiscale else ssim
    return (1.0 - f(target, output)).mean()


def level_loss(target: Tensor, output: Tensor, mask: Tensor | None, level: int, *,
               mode: MaskMode = "target") -> Tensor:
    """The loss of level ``level`` ([0043]): SSIM on images upsampled to 16² for levels 0-2, MS-SSIM above."""
    if level <= SSIM_LEVELS:
        size = (_SSIM_SIZE, _SSIM_SIZE)
        if target.shape[-1] != _SSIM_SIZE:
            target = F.interpolate(target, size=size, mode="bilinear", align_corners=False)
            output = F.interpolate(output, size=size, mode="bilinear", align_corners=False)
            mask = None if mask is None else F.interpolate(mask, size=size, mode="bilinear", align_corners=False)
        return masked_loss(target, output, mask, mode=mode, multiscale=False)
    return masked_loss(target, output, mask, mode=mode, multiscale=True)
