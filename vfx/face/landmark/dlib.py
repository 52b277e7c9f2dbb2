"""dlib's HOG frontal-face detector and 68-point shape predictor (CPU), and its model files."""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vfx.errors import ConfigError
from vfx.face.landmark.base import Landmarker, _check_boxes, to_uint8_rgb
from vfx.face.types import NUM_LANDMARKS, FaceBox

if TYPE_CHECKING:
    import dlib


logger = logging.getLogger(__name__)

DLIB_PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
"""dlib's 68-point shape predictor, as shipped in the ``face_recognition_models`` package."""

#: Smallest face box dlib's HOG detector reports without upsampling: its scanning window is 80x80 and the
#: smallest box measured on real stills is 73 px; 80 keeps a margin so faces near the limit are not lost
#: between pyramid levels (steps of 6/5).
_DLIB_SMALLEST_FACE_PX = 80.0
_DLIB_MAX_UPSAMPLE = 3  # each level is 4x the pixels; beyond 3 a 512² frame becomes 4096² of HOG
#: dlib's detector box relative to its 68 landmarks (see DlibLandmarker.box_from_landmarks): side and centre
#: offset (x, y) in units of the points' RMS distance from their centroid.
_DLIB_BOX_SIDE = 2.75
_DLIB_BOX_OFFSET = (0.02, -0.19)


# --------------------------------------------------------------------------------------------------------------


def _face_recognition_models_dir() -> Path | None:
    """The ``models`` folder of the installed face_recognition_models package, without importing it.

    Importing it would run ``import pkg_resources``, which new setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def find_dlib_model(filename: str, what: str, models_dir: Path | None = None) -> Path:
    """The path of one of dlib's model files: in ``models_dir`` when given, else in the face_recognition_models
    package (where the offline default models ship).

    Raises:
        ConfigError: the package is not installed, or the file is not there; the message names the file and
            where to put it.
    """
    if models_dir is not None:
        folder = Path(models_dir).expanduser()
        where = f"the models folder {folder} (--models-dir)"
    else:
        found = _face_recognition_models_dir()
        if found is None:
            raise ConfigError(
                f"dlib's {what} is not installed",
                expected=f"the face_recognition_models package, which ships {filename}",
                found="no face_recognition_models package in this Python environment",
                fix="pip install face_recognition_models, or put the file in a folder and pass --models-dir",
            )
        folder, where = found, f"the face_recognition_models package ({found})"
    path = folder / filename
    if not path.is_file():
        raise ConfigError(
            f"dlib's {what} {filename} is missing",
            expected=f"{path}",
            found=f"no such file in {where}",
            fix=f"copy {filename} (from the face_recognition_models package or dlib.net) into {folder}",
        )
    return path


@functools.lru_cache(maxsize=4)
def load_dlib_model(kind: str, path: str) -> Any:
    """Load one of dlib's model files once per process: ``kind`` is the dlib class that reads it
    (``"shape_predictor"``, ``"face_recognition_model_v1"``).

    Raises:
        ConfigError: the file is not a model of that kind (truncated, or another file under its name).
    """
    import dlib

    logger.info("loading dlib %s %s", kind, path)
    try:
        return getattr(dlib, kind)(path)
    except RuntimeError as exc:
        raise ConfigError(
            f"Cannot load dlib's {kind} {path}",
            expected=f"a dlib {kind} file such as {Path(path).name} from the face_recognition_models package",
            found=str(exc).strip().splitlines()[0] if str(exc).strip() else "an unreadable file",
            fix="replace the file with a fresh copy from the face_recognition_models package",
        ) from exc


@functools.lru_cache(maxsize=1)
def _frontal_face_detector() -> dlib.fhog_object_detector:
    import dlib

    return dlib.get_frontal_face_detector()


class DlibLandmarker(Landmarker):
    """dlib's HOG frontal-face detector and its 68-point regression-tree shape predictor (CPU).

    Args:
        models_dir: folder holding ``shape_predictor_68_face_landmarks.dat``; default: the ``models`` folder
            of the installed ``face_recognition_models`` package.
        upsample: how many times dlib doubles the image before detecting (0: faces from ~80 px; 1: ~40 px,
            4x slower).
        min_face_px: the smallest face box width (full-frame pixels) :meth:`detect` must find; raises the
            upsampling as needed (at ``scale=0.5`` a 60 px face is 30 px in the copy: two doublings). None:
            ``upsample`` alone decides.
        adjust_threshold: added to dlib's detection threshold; negative finds more (and more false) faces.

    Raises:
        ConfigError: the predictor file is missing or unreadable, or an argument is out of range.

    Convention:
        Images (H, W, 3) uint8 RGB; boxes and points in plate pixels. dlib's rectangles are inclusive, so a
        FaceBox's ``x1 = right + 1``; boxes are rounded to whole pixels before landmarking (dlib's API).
        Scores are dlib's HOG detection scores (0 at the threshold, ~1-3 for clear frontal faces).
    """

    name = "dlib"
    refines_boxes = True

    def __init__(
        self,
        models_dir: Path | None = None,
        upsample: int = 0,
        *,
        min_face_px: float | None = None,
        adjust_threshold: float = 0.0,
    ) -> None:
        if not (isinstance(upsample, int) and 0 <= upsample <= _DLIB_MAX_UPSAMPLE):
            raise ConfigError(
                "Invalid dlib upsample count",
                expected=f"an integer from 0 to {_DLIB_MAX_UPSAMPLE}",
                found=repr(upsample),
                fix="use 0 for faces from ~80 px, 1 for faces from ~40 px",
            )
        if min_face_px is not None and not (min_face_px > 0 and math.isfinite(min_face_px)):
            raise ConfigError(
                "Invalid minimum face size", expected="a positive number of pixels", found=repr(min_face_px),
                fix="pass a width in pixels such as 40, or leave min_face_px unset",
            )
        self.upsample = upsample
        self.min_face_px = min_face_px
        self.adjust_threshold = float(adjust_threshold)
        self.predictor_path = find_dlib_model(DLIB_PREDICTOR_FILE, "landmark model", models_dir)
        self._predictor = load_dlib_model("shape_predictor", str(self.predictor_path))
        self._detector = _frontal_face_detector()

    def upsample_for(self, scale: float = 1.0) -> int:
        """The upsampling dlib runs with on a copy shrunk by ``scale``, honouring ``min_face_px``."""
        needed = 0
        if self.min_face_px is not None:
            face_in_copy = self.min_face_px * scale
            needed = max(0, math.ceil(math.log2(_DLIB_SMALLEST_FACE_PX / face_in_copy) - 1e-9))
        return min(_DLIB_MAX_UPSAMPLE, max(self.upsample, needed))

    def _detect_work(self, pixels: np.ndarray, *, scale: float) -> list[FaceBox]:
        rects, scores, _ = self._detector.run(pixels, self.upsample_for(scale), self.adjust_threshold)
        return [
            FaceBox(float(r.left()), float(r.top()), float(r.right() + 1), float(r.bottom() + 1), float(s))
            for r, s in zip(rects, scores, strict=True)
        ]

    def box_from_landmarks(self, landmarks: np.ndarray) -> FaceBox:
        """dlib's typical frontal-detector box for these landmarks: a square of side 2.75 s centred 0.19 s above
        the landmark centroid, s the RMS distance of the 68 points from their centroid.

        The constants are the medians over 126 detections (the shared labelled photos, stills and clip
        frames, faces 60-400 px; the detector's own ratio scatters by +-9 % around them).
        """
        points = np.asarray(landmarks, dtype=np.float64)
        centre = points.mean(axis=0)
        spread = float(np.sqrt(((points - centre) ** 2).sum(axis=1).mean()))
        cx, cy = centre + np.array(_DLIB_BOX_OFFSET) * spread
        half = _DLIB_BOX_SIDE * spread / 2
        return FaceBox(float(cx - half), float(cy - half), float(cx + half), float(cy + half))

    def localise(self, image: np.ndarray, boxes: Sequence[FaceBox]) -> np.ndarray:
        import dlib

        boxes = _check_boxes(boxes)
        pixels = to_uint8_rgb(image)
        out = np.empty((len(boxes), NUM_LANDMARKS, 2), dtype=np.float64)
        for i, box in enumerate(boxes):
            left, top = round(box.x0), round(box.y0)
            # Never below 1 px wide: dlib would divide by a zero-size rectangle.
            right, bottom = max(left, round(box.x1) - 1), max(top, round(box.y1) - 1)
            shape = self._predictor(pixels, dlib.rectangle(left, top, right, bottom))
            out[i] = [(p.x, p.y) for p in shape.parts()]
        return out

    def __repr__(self) -> str:
        return (
            f"DlibLandmarker(upsample={self.upsample}, min_face_px={self.min_face_px}, "
            f"predictor={str(self.predictor_path)!r})"
        )


# --------------------------------------------------------------------------------------------------------------
# FAN
