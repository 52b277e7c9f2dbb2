"""Measurements of the retouch: known-warp recovery of the layout warp, and of the latent edits.

Evaluation code (floor 7): the tools and tests use it, production code never imports it.

Known-warp recovery (the issue's acceptance test): move and widen a landmark group by known amounts, build
the ground truth by warping the crop with the same known field (:func:`vfx.retouch.edits.landmark_field`,
a thin-plate spline through the landmark pairs), and compare the layout warp's output with it inside the
edit mask. The known field (:func:`vfx.retouch.edits.group_field`) is the group's affine edit near the
group, fading to the identity; the warp never sees it: it only gets the two layouts.

Latent edits (004): an artist's edit is synthesised from a landmark-group edit (the decoded segmentation
with the pixels that the group edit changes in the landmark layout repainted), learned on a keyframe and
applied to other frames; :func:`latent_edit_case` reports the figures of the issue (IoU with the edited
labels inside r, the image outside r against the unedited decode, the locality ablation, growth on every
frame with and without refinement, monotonic strength).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from vfx.edit.segment import JointDecoder
from vfx.edit.vectors import (
    EditResult,
    EditSettings,
    apply_vector,
    buffer_pixels,
    label_area,
    learn_edit,
    refine_edit,
    region_iou,
)
from vfx.face.layout import face_layout
from vfx.retouch.edits import GroupKey, edit_landmarks, group_field
from vfx.retouch.perturb import remap_image
from vfx.retouch.warp import WarpConfig, layout_warp
from vfx.utils.psnr import image_psnr, masked_psnr

__all__ = ["KnownWarpResult", "LatentEditReport", "known_warp_case", "landmark_edit_labels", "latent_edit_case"]


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


# ---------------------------------------------------------------------------------------------- latent edits

def landmark_edit_labels(labels: Tensor, landmarks: np.ndarray, *, group: str = "mouth",
                         key: GroupKey | None = None) -> Tensor:
    """An artist's edit, synthesised: ``labels`` (the decoded segmentation, (r, r)) with every pixel where the
    landmark layout changes under the group edit ``key`` repainted with the edited layout's label.

    Args:
        landmarks: (68, 2) the frame's landmarks in the crop's pixels.
        key: the edit (default: the lips enlarged, 30 % wider and 80 % taller: at a 64² crop a smaller edit
            repaints a handful of pixels).
    """
    key = key or GroupKey(frame=0, scale=(1.3, 1.8))
    size = tuple(labels.shape)
    before = face_layout(landmarks, size)
    after = face_layout(edit_landmarks(landmarks, group, key), size)
    changed = torch.from_numpy(before != after).to(labels.device)
    edited = labels.clone()
    edited[changed] = torch.from_numpy(after.astype(np.int64)).to(labels.device)[changed]
    return edited


@dataclass(frozen=True)
class LatentEditReport:
    """The figures of a latent edit learned on one crop and applied to others (PSNRs in dB against the
    unedited decode, outside each frame's region r; areas in pixels of the edit's labels)."""

    classes: tuple[int, ...]
    changed_pixels: int
    keyframe_iou: float
    keyframe_iou_before: float
    keyframe_areas: tuple[int, int, int]
    """The edit's labels' pixels on the keyframe: decoded, edited decode, the artist's target."""
    keyframe_psnr: float
    ablation_iou: float
    ablation_psnr: float
    keyframe_seconds: float
    apply_psnr: list[float]
    apply_growth: list[float]
    refined_psnr: list[float]
    refined_growth: list[float]
    apply_seconds: float
    refine_seconds: float
    strengths: tuple[float, ...]
    strength_areas: list[list[int]]
    edited: Tensor
    """The synthesised edited labels of the keyframe."""
    keyframe: EditResult
    """The keyframe's optimised edit (its δ is the vector applied to the others)."""

    @property
    def locality_db(self) -> float:
        return self.keyframe_psnr - self.ablation_psnr


def latent_edit_case(joint: JointDecoder, crops: Tensor, landmarks: list[np.ndarray], keyframe: int, *,
                     settings: EditSettings | None = None, group: str = "mouth", key: GroupKey | None = None,
                     refine_steps: int = 10, strengths: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5),
                     strength_frames: int = 5) -> LatentEditReport:
    """Learn the synthesised edit on crop ``keyframe`` (and once more without the outside-r loss), apply the
    vector to every other crop alone and refined (warm-started in order), and sweep the strength.

    Args:
        crops: (N, 3, r, r) aligned crops of one shot, in frame order.
        landmarks: their (68, 2) crop landmarks.
        keyframe: index of the crop the edit is painted on.
    """
    settings = settings or EditSettings()
    r = joint.size
    with torch.no_grad():
        z_key = joint.encode(crops[keyframe:keyframe + 1])
        labels = joint.labels(z_key)[0]
    edited = landmark_edit_labels(labels, landmarks[keyframe], group=group, key=key)
    started = time.perf_counter()
    result = learn_edit(joint, crops[keyframe:keyframe + 1], edited, settings)
    seconds = time.perf_counter() - started
    with torch.no_grad():
        reference = joint(z_key)[0]
    ablation = learn_edit(joint, crops[keyframe:keyframe + 1], edited, replace(settings, rgb_weight=0.0))
    classes, delta, buffer = result.classes, result.delta, buffer_pixels(settings.buffer, r)
    others = [i for i in range(len(crops)) if i != keyframe]
    apply_psnr, apply_growth, refined_psnr, refined_growth = [], [], [], []
    apply_seconds = refine_seconds = 0.0
    correction = None
    refinement = settings.for_refinement(refine_steps)
    for i in others:
        with torch.no_grad():
            z = joint.encode(crops[i:i + 1])
            before, logits = joint(z)
        unedited = (before, logits.argmax(1)[0])
        base = max(label_area(unedited[1], classes), 1)
        started = time.perf_counter()
        applied = apply_vector(joint, z, delta, classes, buffer, unedited=unedited)
        apply_seconds += time.perf_counter() - started
        apply_psnr.append(image_psnr(applied.image, before, ~applied.region))
        apply_growth.append(label_area(applied.labels, classes) / base)
        if refine_steps:
            started = time.perf_counter()
            refined = refine_edit(joint, z, delta, classes, refinement, init=correction, unedited=unedited)
            refine_seconds += time.perf_counter() - started
            correction = refined.delta - delta
            refined_psnr.append(image_psnr(refined.image, before, ~refined.region))
            refined_growth.append(label_area(refined.labels, classes) / base)
    sweep = []
    for i in [keyframe, *others[:: max(1, len(others) // max(strength_frames - 1, 1))]][:strength_frames]:
        with torch.no_grad():
            z = joint.encode(crops[i:i + 1])
            sweep.append([label_area(joint.labels(z + s * delta.view(1, -1, 1, 1))[0], classes) for s in strengths])
    return LatentEditReport(
        classes=classes, changed_pixels=int((edited != labels).sum()),
        keyframe_iou=region_iou(result.labels, edited, result.region, classes),
        keyframe_iou_before=region_iou(labels, edited, result.region, classes),
        keyframe_areas=(label_area(labels, classes), label_area(result.labels, classes), label_area(edited, classes)),
        keyframe_psnr=image_psnr(result.image, reference, ~result.region),
        ablation_iou=region_iou(ablation.labels, edited, ablation.region, classes),
        ablation_psnr=image_psnr(ablation.image, reference, ~ablation.region), keyframe_seconds=seconds,
        apply_psnr=apply_psnr, apply_growth=apply_growth, refined_psnr=refined_psnr, refined_growth=refined_growth,
        apply_seconds=apply_seconds / max(len(others), 1), refine_seconds=refine_seconds / max(len(others), 1),
        strengths=strengths, strength_areas=sweep, edited=edited, keyframe=result)
