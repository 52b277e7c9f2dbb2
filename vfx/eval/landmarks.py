"""Landmark accuracy on labelled photos: dlib ``imglab`` XML files and the normalised mean error.

Evaluation code (floor 7): the tools and tests use it, production code never imports it.

Convention:
    Landmarks are (68, 2) float64 plate pixels in the iBUG 300-W order of :mod:`vfx.align.landmarks`; boxes
    are :class:`~vfx.face.types.FaceBox` with an exclusive right/bottom edge.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vfx.align.landmarks import NUM_LANDMARKS
from vfx.errors import MediaError
from vfx.face.types import FaceBox

__all__ = ["LabelledImage", "normalised_mean_error", "read_dlib_landmark_xml"]


@dataclass(frozen=True, eq=False)
class LabelledImage:
    """One image of a dlib landmark XML: its path, face boxes and (N, 68, 2) float64 landmarks."""

    path: Path
    boxes: list[FaceBox]
    landmarks: np.ndarray


def read_dlib_landmark_xml(path: Path) -> list[LabelledImage]:
    """The images, boxes and 68-point landmarks of a dlib ``imglab`` XML file (``training_with_face_landmarks.xml``).

    Image paths are resolved against the XML's folder. Boxes ``top/left/width/height`` become FaceBox
    ``(left, top, left + width, top + height)`` (dlib's rectangle with an exclusive right/bottom edge), the
    same convention as :class:`DlibLandmarker`'s detections. Boxes without all 68 parts are skipped.

    Raises:
        MediaError: the file is missing or not such an XML file.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise MediaError(
            f"Cannot read landmark file {path}",
            expected="a dlib imglab XML file with <image><box><part name='00' x= y=/>",
            found=str(exc),
            fix="pass the imglab XML itself (e.g. training_with_face_landmarks.xml), with its images beside it",
        ) from exc
    images = []
    for node in root.iter("image"):
        boxes, marks = [], []
        for b in node.iter("box"):
            parts = {
                int(p.get("name", "-1")): (float(p.get("x", "nan")), float(p.get("y", "nan"))) for p in b.iter("part")
            }
            if sorted(parts) != list(range(NUM_LANDMARKS)):
                continue
            left, top = float(b.get("left", 0)), float(b.get("top", 0))
            boxes.append(FaceBox(left, top, left + float(b.get("width", 0)), top + float(b.get("height", 0))))
            marks.append([parts[i] for i in range(NUM_LANDMARKS)])
        images.append(
            LabelledImage(
                path.parent / node.get("file", ""),
                boxes,
                np.array(marks, dtype=np.float64).reshape(-1, NUM_LANDMARKS, 2),
            )
        )
    return images


def normalised_mean_error(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Mean point error divided by the outer-eye-corner distance (points 36 and 45), per face.

    Args:
        predicted: (68, 2) or (N, 68, 2).
        truth: the same shape.

    Returns:
        (N,) float64 (a 0-d array for single faces): 0.05 means the average point is off by 5 % of the eye span.
    """
    predicted, truth = np.asarray(predicted, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if predicted.shape != truth.shape or predicted.shape[-2:] != (NUM_LANDMARKS, 2):
        raise ValueError(f"predicted and truth must both be (..., 68, 2); got {predicted.shape} and {truth.shape}")
    span = np.linalg.norm(truth[..., 36, :] - truth[..., 45, :], axis=-1)
    return np.linalg.norm(predicted - truth, axis=-1).mean(axis=-1) / span
