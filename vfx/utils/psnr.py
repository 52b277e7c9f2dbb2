"""PSNR of two images over the pixels of a mask: a quality figure production code reports (how far a latent
edit moved the face outside its region) and evaluation scores with (:mod:`vfx.eval.retouch`).

Convention:
    - Images are display-referred, values in [0, 1]: numpy (H, W, C) or tensors (1, C, H, W); masks (H, W) bool.
    - The result is in dB; ``inf`` when the images agree on the mask, or when the mask is empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["image_psnr", "masked_psnr"]


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR in dB of two [0, 1] images over the pixels of ``mask`` (inf when they agree there)."""
    inside = np.asarray(mask, bool)
    if not inside.any():
        return float("inf")
    error = float(np.mean((np.asarray(a, np.float64)[inside] - np.asarray(b, np.float64)[inside]) ** 2))
    return float("inf") if error == 0 else 10.0 * np.log10(1.0 / error)


def image_psnr(image: Tensor, reference: Tensor, mask: Tensor) -> float:
    """:func:`masked_psnr` of two (1, 3, H, W) tensors over an (H, W) bool mask."""
    def hwc(t: Tensor) -> np.ndarray:
        return t[0].detach().permute(1, 2, 0).cpu().numpy()

    return masked_psnr(hwc(image), hwc(reference), mask.cpu().numpy())
