"""Small result types shared by detection, landmarking, tracking and alignment.

Convention:
    - Coordinates are plate pixels, (x, y), pixel centres at integer coordinates, origin top-left.
    - Landmarks are (68, 2) float64 in the iBUG 300-W order (0-16 jaw, 17-21 right brow, 22-26 left brow,
      27-35 nose, 36-41 right eye, 42-47 left eye, 48-67 mouth; "right" is the subject's right, image left).
      The scheme itself (:data:`NUM_LANDMARKS`, :data:`LANDMARK_GROUPS`) lives in :mod:`vfx.align.landmarks`
      and is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vfx.align.landmarks import LANDMARK_GROUPS, NUM_LANDMARKS
from vfx.errors import ShapeError

__all__ = ["FaceBox", "Face", "LANDMARK_GROUPS", "NUM_LANDMARKS"]


@dataclass(frozen=True)
class FaceBox:
    """A face rectangle in plate pixels: ``x0, y0`` top-left, ``x1, y1`` bottom-right (exclusive edge)."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    def shifted(self, dx: float, dy: float) -> FaceBox:
        return replace(self, x0=self.x0 + dx, x1=self.x1 + dx, y0=self.y0 + dy, y1=self.y1 + dy)

    def scaled(self, factor: float) -> FaceBox:
        """The box grown (factor > 1) or shrunk about its centre."""
        cx, cy = self.centre
        hw, hh = self.width * factor / 2, self.height * factor / 2
        return replace(self, x0=cx - hw, x1=cx + hw, y0=cy - hh, y1=cy + hh)

    def iou(self, other: FaceBox) -> float:
        """Intersection over union with ``other`` (0 when they do not touch)."""
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.width * self.height + other.width * other.height - inter
        return inter / union if union > 0 else 0.0

    def as_array(self) -> np.ndarray:
        return np.array([self.x0, self.y0, self.x1, self.y1], dtype=np.float64)

    @classmethod
    def around(cls, points: np.ndarray, score: float = 1.0) -> FaceBox:
        """The tight box around ``points`` (N, 2)."""
        (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
        return cls(float(x0), float(y0), float(x1), float(y1), score)


@dataclass(frozen=True, eq=False)
class Face:
    """One face on one frame.

    Attributes:
        box: the detector's box (or, for an interpolated face, one derived from the landmarks).
        landmarks: (68, 2) float64 plate pixels.
        score: detector confidence (higher is surer; dlib's HOG score, or FAN's detector probability).
        track_id: the track it belongs to, once tracked.
        interpolated: True when the face was filled in across a gap, not seen by the detector.
    """

    box: FaceBox
    landmarks: np.ndarray
    score: float = 1.0
    track_id: int | None = None
    interpolated: bool = False

    def __post_init__(self) -> None:
        landmarks = np.asarray(self.landmarks, dtype=np.float64)
        if landmarks.shape != (NUM_LANDMARKS, 2):
            raise ShapeError(f"landmarks must be ({NUM_LANDMARKS}, 2); got {landmarks.shape}")
        object.__setattr__(self, "landmarks", landmarks)

    def with_track(self, track_id: int) -> Face:
        return replace(self, track_id=track_id)

    @property
    def eye_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(right eye, left eye) centres: the mean of each eye's six points; right is the image-left eye."""
        return self.landmarks[36:42].mean(axis=0), self.landmarks[42:48].mean(axis=0)

    @property
    def interocular(self) -> float:
        """Distance between the eye centres, the unit of landmark error and of retouch edits."""
        right, left = self.eye_centres
        return float(np.linalg.norm(left - right))
