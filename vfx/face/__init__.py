"""Faces in a frame: detection and 68-point landmarks (:mod:`vfx.face.landmark`: a base, dlib, FAN, jitter
averaging), tracking across frames (:mod:`vfx.face.track`), the zero-lag temporal filter
(:mod:`vfx.face.smooth`), identity descriptors (:mod:`vfx.face.identity`), and face masks and the semantic face
layout (:mod:`vfx.face.mask`, :mod:`vfx.face.layout`).

Floor 3: imports :mod:`vfx.align`, :mod:`vfx.utils` and :mod:`vfx.errors` only.
"""

from vfx.face.landmark import (
    DlibLandmarker,
    FanLandmarker,
    Landmarker,
    create_landmarker,
    jitter_average,
    jitter_average_many,
    refine_boxes,
    to_uint8_rgb,
)
from vfx.face.smooth import smooth_landmarks
from vfx.face.track import FaceTracker, Track
from vfx.face.types import Face, FaceBox

__all__ = [
    "DlibLandmarker",
    "Face",
    "FaceBox",
    "FaceTracker",
    "FanLandmarker",
    "Landmarker",
    "Track",
    "create_landmarker",
    "jitter_average",
    "jitter_average_many",
    "refine_boxes",
    "smooth_landmarks",
    "to_uint8_rgb",
]
