"""Enhanced multi-band blending (Fig. 5 and [0058] of the comb-network patent), on tensors.

Basic multi-band blending mixes two images band by band with masks that widen with each coarser band,
so the seam is invisible at every scale. The enhanced version changes two things:

1. **The face mask is smoothed inward only.** The background mask is 1 outside the polygon of the target
   face's outer landmarks at every level, exactly: the face's outline itself is never blurred, so the
   plate's background, hair and jaw edge come through untouched and the swap cannot leak outside the face.
2. **The coarsest levels' face comes from the target.** Their bands carry the face's overall colour and
   lighting; taking them from the plate makes the new face sit in the shot's light ("copying low-level
   components ... to enforce the global image characteristics", [0058]).

Which end the pseudo code counts from: its levels run i = 1..n with n = log2(r), and "if i <= 2 copy the
face from the *target*". The only reading consistent with [0058] is that i = 1 is the coarsest level (the
2 x 2 residual) and i = 2 the 4 x 4 band: counted from the fine end, the plate's face would replace the
persona's finest detail (eyes, skin, mouth) and the swap would show the performer, not the persona.
``target_face_levels`` (default 2, the pseudo code's value) counts from the coarse end.

σ is in pixels of each level, as in the pseudo code, so the transition is σ wide at full size and 2^i σ
(in crop pixels) at level i: the classic multi-band property that low frequencies blend over wide zones.
The default σ = 1 matches Burt and Adelson's Gaussian pyramid of the mask (about one level pixel per
level). A larger σ narrows the face at the coarse levels: with σ = 4 the mask of a 64² crop's face is
already gone at its 16² level, so the persona's mid-frequency structure (brow and cheek shading) is lost.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vfx.blend import kernels
from vfx.blend.filters import gaussian_blur, gaussian_weights
from vfx.blend.pyramid import (
    downsample_mask,
    laplacian_pyramid,
    pyramid_levels,
    reconstruct,
)
from vfx.errors import ConfigError

__all__ = ["DEFAULT_SIGMA_PX", "DEFAULT_TARGET_FACE_LEVELS", "EnhancedMultiBandBlend", "enhanced_blend",
           "enhanced_blend_pyramid", "inward_face_mask"]

DEFAULT_SIGMA_PX = 1.0
DEFAULT_TARGET_FACE_LEVELS = 2


def inward_face_mask(cover: Tensor, sigma: float) -> Tensor:
    """The face mask M = 1 - M̂ of Fig. 5, smoothed with σ towards the inside only.

    A plain Gaussian of the polygon is 1/2 on its outline and spreads σ-wide both ways. Rescaling it so
    the outline's level 1/2 maps to 0 (``2 G(F) - 1``, clipped) and multiplying by the coverage F keeps
    the smooth fall-off but moves it entirely inside: M is exactly 0 wherever the polygon does not reach
    (so the background mask M̂ is exactly 1 there) and rises smoothly to 1 about 2σ inside the outline.

    Args:
        cover: (B, 1, H, W) polygon coverage in [0, 1] at this level.
        sigma: smoothing in this level's pixels (0: the hard polygon).

    Returns:
        (B, 1, H, W) face mask in [0, 1].
    """
    if sigma <= 0:
        return cover
    return (2.0 * gaussian_blur(cover, sigma) - 1.0).clamp(0.0, 1.0) * cover


def _check(source: Tensor, target: Tensor, cover: Tensor, target_face_levels: int) -> int:
    if source.shape != target.shape or source.ndim != 4:
        raise ConfigError("Blend inputs of different shapes", expected="source and target (B, C, r, r) alike",
                          found=f"{tuple(source.shape)} and {tuple(target.shape)}",
                          fix="pass the swapped face and the plate crop of one aligned crop, both (B, C, r, r)")
    b, _, h, w = target.shape
    if h != w:
        raise ConfigError("Blend crops must be square", expected="(B, C, r, r)", found=str(tuple(target.shape)),
                          fix="pass square crops (width = height), as the aligned crops of one AlignTemplate are")
    if cover.shape != (b, 1, h, w):
        raise ConfigError("Face coverage of the wrong shape", expected=f"({b}, 1, {h}, {w})", found=str(tuple(cover.shape)),
                          fix="pass one single-channel coverage matte per crop, at the crops' size")
    if target_face_levels < 0:
        raise ConfigError("Invalid target_face_levels", expected="0 or more", found=str(target_face_levels),
                          fix="set blend.target_face_levels in the shot file to 0 or more (2 is the default)")
    return pyramid_levels(h)


def _face_bands(source: Tensor, target: Tensor, cover: Tensor, sigma: float, target_face_levels: int) -> list[Tensor]:
    """D_i = M_i (P(S)_i - P(T)_i) on the levels whose face comes from S, zero on the others.

    The pyramid is linear, so P(S)_i - P(T)_i = P(S - T)_i: one decomposition instead of two.
    """
    levels = _check(source, target, cover, target_face_levels)
    difference = laplacian_pyramid(source.to(target.dtype) - target, levels)
    covers = downsample_mask(cover.to(target.dtype), levels)
    bands = []
    for index, (band, level_cover) in enumerate(zip(difference, covers)):
        from_coarse = levels - index  # 1 = the coarsest level, as the pseudo code counts
        if from_coarse <= target_face_levels:
            bands.append(torch.zeros_like(band))  # background and face both from T: M̂ T + M T = T
        else:
            bands.append(inward_face_mask(level_cover, sigma) * band)  # M exactly 0 outside the polygon
    return bands


def enhanced_blend_pyramid(source: Tensor, target: Tensor, cover: Tensor, *, sigma: float = DEFAULT_SIGMA_PX,
                           target_face_levels: int = DEFAULT_TARGET_FACE_LEVELS) -> list[Tensor]:
    """The output pyramid P(O) of Fig. 5, finest level first.

    At each level i: P(O)_i = M̂_i P(T)_i + M_i P(X)_i with X = T on the ``target_face_levels`` coarsest
    levels and X = S on the rest, i.e. P(T)_i + M_i (P(S)_i - P(T)_i). Outside the polygon (coverage 0 at
    that level) P(O)_i equals P(T)_i exactly.

    Args:
        source: (B, C, r, r) swapped crops S (the persona's decoder output).
        target: (B, C, r, r) target crops T (the plate's face, aligned the same way).
        cover: (B, 1, r, r) coverage of the polygon of T's outer landmarks (``rasterise_polygon``).
        sigma: inward smoothing σ of the mask, in each level's pixels.
        target_face_levels: how many of the coarsest levels take the face from T (the pseudo code's 2).
    """
    bands = _face_bands(source, target, cover, sigma, target_face_levels)
    return [band_t + band for band_t, band in zip(laplacian_pyramid(target, len(bands)), bands)]


def enhanced_blend(source: Tensor, target: Tensor, cover: Tensor, *, sigma: float = DEFAULT_SIGMA_PX,
                   target_face_levels: int = DEFAULT_TARGET_FACE_LEVELS) -> Tensor:
    """Blend the swapped crops into the target crops (Fig. 5); see :func:`enhanced_blend_pyramid`.

    Reconstruction is linear too, so O = reconstruct(P(T) + D) = T + reconstruct(D): T itself is kept and
    only the face's bands D are built up (S = T gives T back exactly).

    Returns:
        (B, C, r, r) blended crops, the dtype and device of ``target``.

    Example:
        >>> t = torch.rand(1, 3, 32, 32); cover = torch.zeros(1, 1, 32, 32); cover[..., 8:24, 8:24] = 1
        >>> bool(torch.equal(enhanced_blend(t, t, cover), t))  # S = T gives T back
        True
    """
    levels = _check(source, target, cover, target_face_levels)
    if target_face_levels < levels and kernels.can_run(source, target, cover):
        # the same arithmetic into preallocated buffers, bit-identical (see vfx.blend.kernels)
        weights = gaussian_weights(sigma) if sigma > 0 else None
        return kernels.enhanced_face_change(source, target, cover, weights, target_face_levels)
    return target + reconstruct(_face_bands(source, target, cover, sigma, target_face_levels))


class EnhancedMultiBandBlend(nn.Module):
    """:func:`enhanced_blend` as a module (no parameters), for use inside a torch pipeline."""

    def __init__(self, sigma: float = DEFAULT_SIGMA_PX, target_face_levels: int = DEFAULT_TARGET_FACE_LEVELS) -> None:
        super().__init__()
        self.sigma = float(sigma)
        self.target_face_levels = int(target_face_levels)

    def forward(self, source: Tensor, target: Tensor, cover: Tensor) -> Tensor:
        return enhanced_blend(source, target, cover, sigma=self.sigma, target_face_levels=self.target_face_levels)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, target_face_levels={self.target_face_levels}"
