"""Self-supervised training pairs for the per-shot refiner (seed 001 col. 23, L622).

A frame's crop and layout are perturbed together: a random landmark group is moved, scaled and rotated by a
known smooth field (:func:`vfx.retouch.edits.group_field`), and sometimes an occluder is painted over the
moved part. The layout warp then takes the perturbed crop back to the frame's own layout, exactly as a
retouch warps a frame to an edited layout; the refiner learns to turn that warp into the original crop.
So it trains on the warp's real artefacts (seams, stretched or missing texture, copied occluders) on the
shot's own face, light and grain, and needs no pretrained network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from vfx.face.layout import face_layout
from vfx.face.mask import face_axes
from vfx.retouch.edits import EDIT_GROUPS, GroupKey, group_field
from vfx.retouch.refiner import RefinerSample
from vfx.retouch.warp import WarpConfig, layout_warp, mask_box

__all__ = ["PERTURBED_GROUPS", "PerturbConfig", "hole_psnr", "hole_window", "perturbed_sample", "remap_image",
           "window_sample"]

PERTURBED_GROUPS = ("mouth", "upper_lip", "lower_lip", "left_brow", "right_brow", "left_eye", "right_eye", "nose")
"""Groups a perturbation moves (the jaw is left alone: moving it exposes background the crop does not hold)."""


@dataclass(frozen=True)
class PerturbConfig:
    """Ranges of the random perturbations (moves in inter-ocular distances, rotations in degrees)."""

    move: float = 0.04
    scale: tuple[float, float] = (0.9, 1.12)
    rotate: float = 6.0
    occluder_probability: float = 0.5
    occluder_radius: tuple[float, float] = (0.04, 0.12)


def remap_image(image: np.ndarray, field: np.ndarray) -> np.ndarray:
    """An (H, W, 3) image carried through a backward map (bilinear, edges repeated)."""
    return cv2.remap(np.ascontiguousarray(image, dtype=np.float32), field[..., 0], field[..., 1],
                     interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def perturbed_sample(crop: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, *,
                     config: PerturbConfig = PerturbConfig(), warp: WarpConfig | None = None,
                     device: str = "cpu") -> RefinerSample:
    """One training pair from one crop: the warp of a perturbed copy back to the crop's own layout.

    Args:
        crop: (H, W, 3) float32 [0, 1] working-space crop.
        landmarks: (68, 2) its crop landmarks.
        rng: the random source (seeded by the caller, so a shot's samples are reproducible).
        config: perturbation ranges.
        warp: layout warp settings (the retouch's own).

    Returns:
        A :class:`RefinerSample`: layout = the crop's layout, warped = the warp (the crop outside the hole),
        hole = the edit mask plus any occluder, target = the crop.
    """
    size = crop.shape[:2]
    group = PERTURBED_GROUPS[int(rng.integers(len(PERTURBED_GROUPS)))]
    key = GroupKey(frame=0, move=tuple(rng.uniform(-config.move, config.move, 2)),
                   scale=tuple(rng.uniform(*config.scale, 2)), rotate=float(rng.uniform(-config.rotate, config.rotate)))
    field, moved = group_field(landmarks, group, key, size)
    perturbed = remap_image(crop, field)
    labels = face_layout(landmarks, size)
    perturbed_labels = face_layout(moved, size)
    occluder = np.zeros(size, np.uint8)
    if rng.random() < config.occluder_probability:
        # A blob of flat colour plus noise over the moved part: the warp copies it and the refiner removes it.
        _, _, distance = face_axes(landmarks)
        centre = moved[list(EDIT_GROUPS[group])].mean(axis=0) + rng.normal(0.0, 0.05 * distance, 2)
        axes = rng.uniform(*config.occluder_radius, 2) * distance
        cv2.ellipse(occluder, (round(float(centre[0])), round(float(centre[1]))),
                    (max(1, int(axes[0])), max(1, int(axes[1]))), float(rng.uniform(0, 180)), 0, 360, 1, -1)
        colour = rng.uniform(0.0, 1.0, 3).astype(np.float32)
        noise = rng.normal(0.0, 0.05, crop.shape).astype(np.float32)
        perturbed = np.where(occluder[..., None] > 0, np.clip(colour + noise, 0, 1), perturbed).astype(np.float32)
    image = torch.from_numpy(np.ascontiguousarray(perturbed.transpose(2, 0, 1))).to(device)
    result = layout_warp(image, torch.from_numpy(perturbed_labels), torch.from_numpy(labels), config=warp)
    hole = result.mask.cpu().numpy() | (occluder > 0)
    original = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))
    # Outside the hole the retouch keeps the frame's own pixels (Eq. 3), so the pair does too.
    warped = torch.where(torch.from_numpy(hole)[None], result.image.cpu(), original)
    return RefinerSample(layout=torch.from_numpy(labels), warped=warped.float(),
                         hole=torch.from_numpy(hole.astype(np.float32))[None], target=original.float())


def hole_psnr(sample: RefinerSample, image: torch.Tensor) -> float:
    """PSNR (dB) of ``image`` against the sample's target inside its hole."""
    inside = sample.hole[0] > 0.5
    error = float(((image.float() - sample.target)[:, inside] ** 2).mean())
    return math.inf if error == 0 else 10.0 * math.log10(1.0 / error)


def hole_window(hole: torch.Tensor, side: int, *, margin: int = 8) -> tuple[int, int, int, int]:
    """A (y0, x0, y1, x1) window around a (H, W) hole: its box plus ``margin``, grown to a multiple of ``side``'s
    granularity (the refiner's size multiple) and kept inside the crop.

    The refiner works on this window rather than the whole crop: the hole is a few percent of the crop, so
    training and inference on the window cost a fraction and see the same context.
    """
    h, w = hole.shape[-2:]
    box = mask_box(hole.reshape(h, w) > 0)
    if box is None:
        return 0, 0, min(side, h), min(side, w)

    def span(lo: int, hi: int, limit: int) -> tuple[int, int]:
        need = max(side, -(-(hi - lo + 2 * margin) // side) * side)
        need = min(need, limit - limit % side if limit >= side else limit)
        start = min(max(0, (lo + hi) // 2 - need // 2), limit - need)
        return start, start + need

    y0, y1 = span(box[0], box[2], h)
    x0, x1 = span(box[1], box[3], w)
    return y0, x0, y1, x1


def window_sample(sample: RefinerSample, side: int) -> RefinerSample:
    """The ``side`` x ``side`` window of a sample centred on its hole (inside the crop), for training."""
    h, w = sample.hole.shape[-2:]
    y0, x0, y1, x1 = hole_window(sample.hole[0], 1, margin=0)
    top = min(max(0, (y0 + y1) // 2 - side // 2), h - side)
    left = min(max(0, (x0 + x1) // 2 - side // 2), w - side)
    box = np.s_[top:top + side, left:left + side]
    return RefinerSample(layout=sample.layout[box], warped=sample.warped[(slice(None), *box)],
                         hole=sample.hole[(slice(None), *box)], target=sample.target[(slice(None), *box)])
