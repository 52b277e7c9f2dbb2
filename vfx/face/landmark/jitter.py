"""Jitter averaging ([0052] of 002): shift the face box by ``beta * width`` in eight directions, landmark all
nine boxes in one batched call, average; and the box refined from landmarks."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from vfx.errors import ConfigError
from vfx.face.landmark.base import Landmarker, to_uint8_rgb
from vfx.face.types import NUM_LANDMARKS, FaceBox

if TYPE_CHECKING:
    pass


logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------------------
# Jitter averaging
# --------------------------------------------------------------------------------------------------------------


def jitter_boxes(box: FaceBox, *, beta: float = 0.05, num_shifts: int = 8) -> list[FaceBox]:
    """``box`` followed by ``num_shifts`` copies moved ``beta * box.width`` pixels in evenly spaced directions.

    With 8 shifts these are the eight principal directions N, NE, E, SE, S, SW, W, NW (each moved by the same
    distance ``beta * w``, so a diagonal move is ``beta * w / sqrt(2)`` on each axis); in general the k-th
    direction is ``k * 360 / num_shifts`` degrees clockwise from up.

    Raises:
        ConfigError: ``beta`` negative or not finite, ``num_shifts`` not a non-negative integer.
    """
    if not (isinstance(beta, int | float) and math.isfinite(beta) and beta >= 0):
        raise ConfigError(
            "Invalid jitter beta", expected="a fraction of the box width >= 0", found=repr(beta),
            fix="--jitter-beta 0.05 (the default)"
        )
    if not (isinstance(num_shifts, int) and not isinstance(num_shifts, bool) and num_shifts >= 0):
        raise ConfigError(
            "Invalid jitter shift count", expected="an integer >= 0 (8 in [0052]; 0: no jitter)", found=repr(num_shifts),
            fix="--jitter-shifts 8 (the default), or 0 for a single pass",
        )
    radius = beta * box.width
    out = [box]
    for k in range(num_shifts):
        angle = 2 * math.pi * k / num_shifts
        # Round away float dust (cos 90° = 6e-17) so N/E/S/W shifts move along one axis only.
        dx, dy = round(radius * math.sin(angle), 9), round(-radius * math.cos(angle), 9)
        out.append(box.shifted(dx, dy))
    return out


def refine_boxes(
    landmarker: Landmarker, image: np.ndarray, boxes: Sequence[FaceBox], *, iterations: int = 2
) -> list[FaceBox]:
    """Replace detector boxes by boxes made from landmarks (:meth:`Landmarker.box_from_landmarks`).

    The patent's initial "detection and alignment" ([0052]): landmark the detector's box, draw the back-end's
    box around those points, and repeat. dlib's points follow the box they are given only partly, so the
    box converges to one set by the face alone: from a detector box 16 % too wide, two rounds leave it
    within 1 % of the fixed point. The refined box moves continuously with the face where the detector's
    jumps between its scan scales and its 8-pixel HOG cells; jitter averaging then shifts the refined box.

    Boxes keep their detection score. Back-ends without a rule (``refines_boxes`` False) get their boxes
    back unchanged, at no cost.

    Args:
        landmarker: the back-end.
        image: the frame.
        boxes: detector boxes.
        iterations: rounds of landmark, then box; each is one batched ``localise`` call.
    """
    boxes = list(boxes)
    if not boxes or not landmarker.refines_boxes:
        return boxes
    pixels = to_uint8_rgb(image)
    refined = boxes
    for _ in range(iterations):
        points = landmarker.localise(pixels, refined)
        refined = [landmarker.box_from_landmarks(p) or box for p, box in zip(points, refined, strict=True)]
    return [replace(new, score=old.score) for new, old in zip(refined, boxes, strict=True)]


def jitter_average(
    landmarker: Landmarker, image: np.ndarray, box: FaceBox, *, beta: float = 0.05, num_shifts: int = 8
) -> np.ndarray:
    """Landmarks averaged over ``box`` and ``num_shifts`` shifted copies of it ([0052]); one ``localise`` call.

    Args:
        landmarker: the back-end.
        image: the frame.
        box: the detected face box.
        beta: shift as a fraction of the box width (0.05 removes the temporal artefacts at 1024² per [0052]).
        num_shifts: shifted copies (8: the principal directions; 0: a single pass).

    Returns:
        (68, 2) float64 plate pixels: the mean of the 1 + ``num_shifts`` landmark sets.
    """
    return jitter_average_many(landmarker, image, [box], beta=beta, num_shifts=num_shifts)[0]


def jitter_average_many(
    landmarker: Landmarker,
    image: np.ndarray,
    boxes: Sequence[FaceBox],
    *,
    beta: float = 0.05,
    num_shifts: int = 8,
) -> np.ndarray:
    """:func:`jitter_average` for every face of one frame, all ``N * (1 + num_shifts)`` boxes in one call.

    Returns:
        (N, 68, 2) float64 plate pixels, in the order of ``boxes``.
    """
    boxes = list(boxes)
    if not boxes:
        return np.empty((0, NUM_LANDMARKS, 2), dtype=np.float64)
    pixels = to_uint8_rgb(image)  # once, not once per localise of each shifted box
    per_face = 1 + num_shifts
    all_boxes = [b for box in boxes for b in jitter_boxes(box, beta=beta, num_shifts=num_shifts)]
    points = landmarker.localise(pixels, all_boxes)
    return points.reshape(len(boxes), per_face, NUM_LANDMARKS, 2).mean(axis=1)
