"""One interface for every blend: the enhanced multi-band blend of Fig. 5 and the baselines it is judged
against (alpha feather, Poisson, OpenCV's plain multi-band), all in the aligned crop.

Every method takes the swapped crops S, the target crops T and the coverage of the polygon of T's outer
landmarks, and returns crops that equal T where the polygon does not reach (OpenCV's multi-band only
approximately: it blends both ways across the outline, in 16-bit fixed point). The baselines run on the host.
"""

from __future__ import annotations

from typing import Literal, get_args

import cv2
import numpy as np
import torch
from torch import Tensor

from vfx.blend.enhanced import (
    DEFAULT_SIGMA_PX,
    DEFAULT_TARGET_FACE_LEVELS,
    enhanced_blend,
    inward_face_mask,
)
from vfx.blend.pyramid import pyramid_levels
from vfx.errors import ConfigError

__all__ = ["BLEND_METHODS", "BlendMethod", "alpha_blend", "blend_crops", "check_blend_method", "opencv_multiband_blend",
           "poisson_blend"]

BlendMethod = Literal["enhanced", "multiband", "poisson", "alpha"]
BLEND_METHODS: tuple[str, ...] = get_args(BlendMethod)

_MULTIBAND_SCALE = 4096.0  # float -> int16 for OpenCV's blender: 12 bits for [0, 1], headroom to 8.0


def alpha_blend(source: Tensor, target: Tensor, cover: Tensor, *, sigma: float = DEFAULT_SIGMA_PX) -> Tensor:
    """Alpha feather: T + M (S - T) with the same inward-only feathered mask as the enhanced blend's finest level."""
    return target + inward_face_mask(cover.to(target.dtype), sigma) * (source - target)


def _to_host(x: Tensor) -> np.ndarray:
    # C-contiguous: OpenCV silently misreads the strides of a permuted view (and of arrays derived from it)
    return np.ascontiguousarray(x.detach().float().permute(0, 2, 3, 1).cpu().numpy())


def _from_host(x: np.ndarray, like: Tensor) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device=like.device, dtype=like.dtype)


def _hard_mask(cover: np.ndarray) -> np.ndarray:
    return np.where(cover > 0.5, 255, 0).astype(np.uint8)


def poisson_blend(source: Tensor, target: Tensor, cover: Tensor) -> Tensor:
    """Poisson (gradient-domain) cloning of S into T over the polygon (Pérez et al. 2003), in float.

    Inside the hard polygon the result has S's gradients and matches T on the polygon's border (Dirichlet
    condition); outside it is T exactly. Solved with a sparse LU factorisation per crop (3 channels, one
    factorisation). Written here rather than calling ``cv2.seamlessClone``: the OpenCV that installs here
    (5.0.0.93) returns alternately an unchanged target and a result that also changes pixels outside the
    mask on identical calls, and it works in 8 bits only.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import splu

    s, t, c = _to_host(source).astype(np.float64), _to_host(target).astype(np.float64), _to_host(cover)[..., 0]
    out = t.copy()
    for i in range(len(t)):
        inside = c[i] > 0.5
        inside[[0, -1], :] = False  # keep a border of known pixels round the unknowns
        inside[:, [0, -1]] = False
        ys, xs = np.nonzero(inside)
        if len(ys) == 0:
            continue
        index = -np.ones(inside.shape, dtype=np.int64)
        index[ys, xs] = np.arange(len(ys))
        rows, cols = [np.arange(len(ys))], [np.arange(len(ys))]
        values = [np.full(len(ys), 4.0)]
        rhs = 4.0 * s[i][ys, xs]
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            ny, nx = ys + dy, xs + dx
            rhs -= s[i][ny, nx]  # the guidance field: S's Laplacian
            neighbour = index[ny, nx]
            known = neighbour < 0
            rhs[known] += t[i][ny[known], nx[known]]  # border pixels: T's values
            rows.append(np.nonzero(~known)[0])
            cols.append(neighbour[~known])
            values.append(np.full(int((~known).sum()), -1.0))
        matrix = coo_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                            shape=(len(ys), len(ys))).tocsc()
        out[i][ys, xs] = splu(matrix).solve(rhs)
    return _from_host(out.astype(np.float32), target)


def opencv_multiband_blend(source: Tensor, target: Tensor, cover: Tensor, *, num_bands: int | None = None) -> Tensor:
    """Plain multi-band blending with OpenCV's ``detail.MultiBandBlender`` (hard masks, both ways smoothed).

    ``num_bands`` defaults to log2(r) - 1: OpenCV builds ``num_bands + 1`` levels, so the pyramid has the
    same n = log2(r) levels as the enhanced blend.
    """
    s, t, c = _to_host(source), _to_host(target), _to_host(cover)[..., 0]
    size = t.shape[1]
    bands = pyramid_levels(size) - 1 if num_bands is None else num_bands
    out = np.empty_like(t)
    for i in range(len(t)):
        mask = _hard_mask(c[i])
        out[i] = multiband_blend_image(s[i], t[i], mask, bands)
    return _from_host(out, target)


def multiband_blend_image(foreground: np.ndarray, background: np.ndarray, mask: np.ndarray, num_bands: int) -> np.ndarray:
    """OpenCV's multi-band blend of one (H, W, 3) float32 image into another where ``mask`` (uint8) is set."""
    h, w = background.shape[:2]
    blender = cv2.detail_MultiBandBlender(0, num_bands)
    blender.prepare((0, 0, w, h))
    to16 = lambda a: np.clip(np.rint(a * _MULTIBAND_SCALE), -32768, 32767).astype(np.int16)
    blender.feed(to16(background), np.where(mask > 0, 0, 255).astype(np.uint8), (0, 0))
    blender.feed(to16(foreground), mask, (0, 0))
    result, _ = blender.blend(None, None)
    return result.astype(np.float32) / _MULTIBAND_SCALE


def blend_crops(source: Tensor, target: Tensor, cover: Tensor, *, method: str = "enhanced",
                sigma: float = DEFAULT_SIGMA_PX, target_face_levels: int = DEFAULT_TARGET_FACE_LEVELS) -> Tensor:
    """Blend swapped crops into target crops with ``method``.

    Args:
        source: (B, 3, r, r) swapped crops S.
        target: (B, 3, r, r) target crops T.
        cover: (B, 1, r, r) coverage of the polygon of T's outer landmarks.
        method: ``"enhanced"`` (Fig. 5), ``"multiband"`` (OpenCV), ``"poisson"`` or ``"alpha"``.
        sigma: the inward mask smoothing σ (enhanced and alpha).
        target_face_levels: coarsest levels whose face comes from T (enhanced).

    Returns:
        (B, 3, r, r) on ``target``'s device and dtype.
    """
    check_blend_method(method)
    if method == "enhanced":
        return enhanced_blend(source, target, cover, sigma=sigma, target_face_levels=target_face_levels)
    if method == "alpha":
        return alpha_blend(source, target, cover, sigma=sigma)
    if method == "poisson":
        return poisson_blend(source, target, cover)
    return opencv_multiband_blend(source, target, cover)


def check_blend_method(method: str) -> str:
    """``method`` if it names a blend, else a ConfigError listing them."""
    if method not in BLEND_METHODS:
        raise ConfigError(f"Unknown blend method {method!r}", expected=f"one of {', '.join(BLEND_METHODS)}",
                          found=repr(method), fix="use --blend enhanced")
    return method
