"""Measurements of the retouch: known-warp recovery of the layout warp, and face-region flicker.

Known-warp recovery (the issue's acceptance test): move and widen a landmark group by known amounts, build
the ground truth by warping the crop with the same known field (:func:`vfx.retouch.edits.landmark_field`,
a thin-plate spline through the landmark pairs), and compare the layout warp's output with it inside the
edit mask. The known field (:func:`vfx.retouch.edits.group_field`) is the group's affine edit near the
group, fading to the identity; the warp never sees it: it only gets the two layouts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from vfx.face.mask import face_layout
from vfx.retouch.edits import GroupKey, group_field
from vfx.retouch.warp import WarpConfig, layout_warp

__all__ = ["KnownWarpResult", "known_warp_case", "masked_psnr", "remap_image"]


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR in dB of two [0, 1] images over the pixels of ``mask`` (inf when they agree there)."""
    inside = np.asarray(mask, bool)
    if not inside.any():
        return float("inf")
    error = float(np.mean((np.asarray(a, np.float64)[inside] - np.asarray(b, np.float64)[inside]) ** 2))
    return float("inf") if error == 0 else 10.0 * np.log10(1.0 / error)


def remap_image(image: np.ndarray, field: np.ndarray) -> np.ndarray:
    """An (H, W, 3) image carried through a backward map (bilinear, edges repeated)."""
    import cv2

    return cv2.remap(np.ascontiguousarray(image, dtype=np.float32), field[..., 0], field[..., 1],
                     interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class KnownWarpResult:
    """In-mask PSNR (dB) against the known-field ground truth of: the layout warp, the unwarped input and
    the warp without the cross-label penalty; whether every pixel outside the mask kept its bits."""

    psnr_warp: float
    psnr_unwarped: float
    psnr_no_penalty: float
    outside_identical: bool
    mask_fraction: float
    seconds: float


def known_warp_case(crop: np.ndarray, landmarks: np.ndarray, *, group: str = "mouth",
                    move: tuple[float, float] = (0.0, 0.06), scale: tuple[float, float] = (1.15, 1.0),
                    config: WarpConfig | None = None, device: str = "cpu") -> KnownWarpResult:
    """Edit ``group`` of one real crop by a known move and scale and measure how well the warp recovers it.

    Args:
        crop: (H, W, 3) float32 [0, 1] aligned face crop.
        landmarks: (68, 2) its crop landmarks.
        group, move, scale: the edit (inter-ocular distances, factors).
        config: warp settings.
    """
    config = config or WarpConfig()
    size = crop.shape[:2]
    field, edited_points = group_field(landmarks, group, GroupKey(frame=0, move=move, scale=scale), size)
    labels = face_layout(landmarks, size)
    edited = face_layout(edited_points, size)
    truth = remap_image(crop, field)
    image = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).to(device)
    started = time.perf_counter()
    result = layout_warp(image, torch.from_numpy(labels), torch.from_numpy(edited), config=config)
    seconds = time.perf_counter() - started
    plain = layout_warp(image, torch.from_numpy(labels), torch.from_numpy(edited),
                        config=replace(config, label_penalty=0.0))
    mask = result.mask.cpu().numpy()
    warped = result.image.cpu().numpy().transpose(1, 2, 0)
    no_penalty = plain.image.cpu().numpy().transpose(1, 2, 0)
    return KnownWarpResult(
        psnr_warp=masked_psnr(warped, truth, mask),
        psnr_unwarped=masked_psnr(crop, truth, mask),
        psnr_no_penalty=masked_psnr(no_penalty, truth, mask),
        outside_identical=bool(np.array_equal(warped[~mask], crop[~mask])),
        mask_fraction=float(mask.mean()),
        seconds=seconds,
    )
