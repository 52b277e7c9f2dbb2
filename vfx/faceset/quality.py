"""How well a plate face can be swapped: a quality record per frame, with the numbers behind it.

A face the comb model cannot render well (a profile beyond the 68-point landmarks' reach, a face too small
for the crop, a heavily blurred one) is swapped by default and flagged, so a supervisor sees which frames to
check; ``swap.skip`` in the shot file passes such faces through untouched instead. The flags:

=========  ======================================================================================================
``ok``     none of the below
``small``  the face is narrower than :data:`SMALL_FACE_PX` plate pixels (desqueezed), from its detection box
``profile`` the head is turned more than :data:`PROFILE_YAW` degrees (yaw from the 68 landmarks in the aligned
           crop, :func:`vfx.faceset.curate.head_pose`): the jaw line and far eye are guessed there
``blurred`` the sharpness of the face (variance of the Laplacian inside the landmark hull of the crop, scaled to
           at most 128 pixels) is below :data:`BLUR_SHARPNESS`
``cut``    the frame is the first of a camera shot (no frame before it to steady the face)
``no_face`` no face of the track on the frame
=========  ======================================================================================================

Convention:
    Thresholds are in plate pixels and degrees; sharpness is in grey levels² (0-255) on the crop scaled down to
    128² (a smaller crop as it is).
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass

import cv2
import numpy as np

from vfx.faceset.curate import head_pose, sharpness
from vfx.faceset.store import FaceRecord

__all__ = ["BLUR_SHARPNESS", "PROFILE_YAW", "QUALITY_FLAGS", "SKIPPABLE", "SMALL_FACE_PX", "FaceQuality",
           "face_quality"]

SMALL_FACE_PX = 48.0
"""Faces narrower than this (plate pixels, desqueezed) are ``small``."""
PROFILE_YAW = 40.0
"""Heads turned further than this (degrees) are ``profile``."""
BLUR_SHARPNESS = 150.0
"""Faces less sharp than this (Laplacian variance on the crop at most 128²) are ``blurred``. Measured on the
shared pair_x clip's faces at 64²: 6400-10900 as they are, 200-370 blurred by a Gaussian of 1 crop pixel (2 at
128²): only a face blurred past that is flagged."""
QUALITY_FLAGS = ("ok", "small", "profile", "blurred", "cut", "no_face")
SKIPPABLE = ("small", "profile", "blurred")
"""The flags ``swap.skip`` may name."""
_SHARPNESS_SIDE = 128


@dataclass(frozen=True)
class FaceQuality:
    """One frame's face quality.

    Attributes:
        flags: the flags that apply (``("ok",)`` when none does), in :data:`QUALITY_FLAGS` order.
        face_px: face width in plate pixels (desqueezed).
        yaw, pitch: head pose in degrees (NaN when it could not be estimated).
        sharpness: Laplacian variance of the face on a 128² crop.
    """

    flags: tuple[str, ...]
    face_px: float = math.nan
    yaw: float = math.nan
    pitch: float = math.nan
    sharpness: float = math.nan

    def skipped(self, skip: Collection[str]) -> bool:
        """Whether ``swap.skip`` passes this face through."""
        return any(flag in skip for flag in self.flags)

    def to_extra(self) -> dict[str, str]:
        """The EXR metadata of it (``vfx/quality``, ``vfx/quality_figures``)."""
        figures = {"face_px": self.face_px, "yaw": self.yaw, "pitch": self.pitch, "sharpness": self.sharpness}
        return {"quality": ",".join(self.flags),
                "quality_figures": json.dumps({k: None if math.isnan(v) else round(v, 2) for k, v in figures.items()})}


def face_quality(record: FaceRecord | None, crop: np.ndarray | None, *, pixel_aspect: float = 1.0,
                 cut: bool = False) -> FaceQuality:
    """The quality of a plate face from its record and its aligned crop.

    Args:
        record: the tracked face, or None (no face).
        crop: its (r, r, 3) working-space crop, float32 in [0, 1], or None (sharpness not measured).
        pixel_aspect: the plate's pixel aspect (the box is in squeezed plate pixels).
        cut: the frame is the first of a camera shot.

    Convention:
        crop landmarks of ``record`` are in pixels of ``crop``.
    """
    if record is None or record.matrix is None:
        return FaceQuality(flags=("cut", "no_face") if cut else ("no_face",))
    x0, _, x1, _ = record.box
    face_px = float(x1 - x0) * float(pixel_aspect)
    side = crop.shape[0] if crop is not None else max(1, round(float(np.ptp(record.crop_landmarks[:, 0])) * 2))
    yaw, pitch = head_pose(record.crop_landmarks, side)
    sharp = math.nan
    if crop is not None:  # measured at 128² (larger crops scaled down; smaller ones as they are, never enlarged)
        scale = min(1.0, _SHARPNESS_SIDE / crop.shape[0])
        small = crop if scale == 1.0 else cv2.resize(np.ascontiguousarray(crop, np.float32),
                                                     (_SHARPNESS_SIDE, _SHARPNESS_SIDE), interpolation=cv2.INTER_AREA)
        sharp = sharpness(np.clip(small, 0.0, 1.0), np.asarray(record.crop_landmarks) * scale)
    flags = [name for name, on in (("small", face_px < SMALL_FACE_PX),
                                   ("profile", not math.isnan(yaw) and abs(yaw) > PROFILE_YAW),
                                   ("blurred", not math.isnan(sharp) and sharp < BLUR_SHARPNESS),
                                   ("cut", cut)) if on]
    return FaceQuality(flags=tuple(flags) or ("ok",), face_px=face_px, yaw=yaw, pitch=pitch, sharpness=sharp)
