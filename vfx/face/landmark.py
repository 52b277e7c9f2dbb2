"""Face detection and 68-point landmarks: dlib (HOG + regression trees) or FAN (SFD + hourglass), with jitter
averaging.

Two back-ends share one interface, :class:`Landmarker`:

* :class:`DlibLandmarker`: dlib's HOG frontal-face detector and its 68-point shape predictor. CPU only, fast
  (~6 ms to detect on a 256² frame, ~2 ms per face to landmark), no torch needed at run time.
* :class:`FanLandmarker`: face-alignment's S3FD detector and 2D-FAN heatmap network in torch, batched, on CPU
  or CUDA. More robust to pose and occlusion; needs the two weight files on disk (never downloaded here).

``detect`` finds faces, optionally only inside a region (around the previous frame's face) or on a downscaled
copy of the frame; ``localise`` turns N boxes into (N, 68, 2) points in one call. :func:`jitter_average`
implements the precision trick of the face-swap patent ([0052]): shift the face box by ``beta * width`` in
eight directions, landmark all nine boxes in one batched call, and average. Small localisation
inconsistencies that would flicker once a 128² face is blown up to 1024² average out.

Model files are looked up, never fetched: dlib's ``shape_predictor_68_face_landmarks.dat`` comes from the
``face_recognition_models`` package (or ``models_dir``), FAN's ``2DFAN4-11f355bf06.pth.tar`` and
``s3fd-619a316812.pth`` from ``models_dir`` or torch's hub cache (``torch.hub.get_dir()/checkpoints``).

Convention:
    Images for detection and landmarking are numpy arrays (H, W, 3) uint8 RGB, top row first
    (:func:`to_uint8_rgb` converts anything else). Points are (x, y) plate pixels, pixel centres at integer
    coordinates, float64. Landmarks are (68, 2) in the iBUG 300-W order of :data:`vfx.align.landmarks.LANDMARK_GROUPS`.
    Boxes are :class:`~vfx.face.types.FaceBox` in full-frame plate pixels, whatever region or scale the
    detector ran at.
"""

from __future__ import annotations

import abc
import difflib
import functools
import importlib.util
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import cv2
import numpy as np

from vfx.errors import ConfigError, InvalidPixelsError, MediaError
from vfx.face.types import NUM_LANDMARKS, FaceBox

if TYPE_CHECKING:
    import dlib
    import torch

__all__ = [
    "LandmarkerName",
    "Landmarker",
    "DlibLandmarker",
    "FanLandmarker",
    "create_landmarker",
    "to_uint8_rgb",
    "jitter_boxes",
    "jitter_average",
    "jitter_average_many",
    "refine_boxes",
    "DLIB_PREDICTOR_FILE",
    "FAN_WEIGHTS_FILE",
    "FAN_LEGACY_WEIGHTS_FILE",
    "SFD_WEIGHTS_FILE",
]

logger = logging.getLogger(__name__)

LandmarkerName = Literal["dlib", "fan"]

DLIB_PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
"""dlib's 68-point shape predictor, as shipped in the ``face_recognition_models`` package."""

FAN_WEIGHTS_FILE = "2DFAN4-11f355bf06.pth.tar"
"""face-alignment 1.5's 2D-FAN (4 stacks) state dict: the basename of its ``models_urls['2DFAN-4']``."""

FAN_LEGACY_WEIGHTS_FILE = "2DFAN4-cd938726ad.zip"
"""The TorchScript 2D-FAN that face-alignment 1.3/1.4 cached; used when only this one is on disk."""

SFD_WEIGHTS_FILE = "s3fd-619a316812.pth"
"""face-alignment's S3FD face detector state dict: the basename of its ``models_urls['s3fd']``."""

_FAN_URL = "https://www.adrianbulat.com/downloads/python-fan/" + FAN_WEIGHTS_FILE
_SFD_URL = "https://www.adrianbulat.com/downloads/python-fan/" + SFD_WEIGHTS_FILE

#: Smallest face box dlib's HOG detector reports without upsampling: its scanning window is 80x80 and the
#: smallest box measured on real stills is 73 px; 80 keeps a margin so faces near the limit are not lost
#: between pyramid levels (steps of 6/5).
_DLIB_SMALLEST_FACE_PX = 80.0
_DLIB_MAX_UPSAMPLE = 3  # each level is 4x the pixels; beyond 3 a 512² frame becomes 4096² of HOG
#: dlib's detector box relative to its 68 landmarks (see DlibLandmarker.box_from_landmarks): side and centre
#: offset (x, y) in units of the points' RMS distance from their centroid.
_DLIB_BOX_SIDE = 2.75
_DLIB_BOX_OFFSET = (0.02, -0.19)

#: face-alignment's centre/scale convention for a detector box (``face_alignment.utils``): the crop is
#: centred 12 % of the box height above the box centre and spans 200 * (w + h) / 195 pixels.
_FAN_CROP = 256
_FAN_HEATMAP = 64
_FAN_REFERENCE_SCALE = 195.0
_FAN_SCALE_FACTOR = 200.0
_FAN_CENTRE_Y_OFFSET = 0.12
_SFD_MEAN_BGR = (104.0, 117.0, 123.0)
_SFD_NMS_IOU = 0.3


# --------------------------------------------------------------------------------------------------------------
# Pixels
# --------------------------------------------------------------------------------------------------------------


def to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """The image as C-contiguous (H, W, 3) uint8 RGB, the only layout the detectors take.

    Args:
        image: (H, W) grey, (H, W, 1) grey, (H, W, 3) RGB or (H, W, 4) RGBA (alpha is dropped: detectors
            look at colour only); uint8 as is, uint16 full range (rounded to the nearest 8-bit level,
            ``round(v / 257)``), or float in [0, 1] (clipped, then rounded to the nearest code).

    Returns:
        The converted array; ``image`` itself when it already is contiguous (H, W, 3) uint8.

    Raises:
        MediaError: another dtype, rank or channel count, or an empty image.
        InvalidPixelsError: NaN or infinite float pixels.

    Convention:
        Channels are taken as RGB(A) in that order; no colour management happens here.
    """
    if not isinstance(image, np.ndarray):
        raise MediaError(
            "Cannot use this image for face detection",
            expected="a numpy array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)",
            found=type(image).__name__,
            fix="pass the frame's pixels as a numpy array (vfx.io.image.read_image(...).pixels)",
        )
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        pixels = image[..., :3] if image.shape[2] == 4 else image
    elif image.ndim == 2:
        pixels = image[..., None]
    else:
        raise MediaError(
            "Cannot use this image for face detection",
            expected="shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)",
            found=f"shape {image.shape}",
            fix="pass one frame (not a batch) with 1, 3 or 4 channels",
        )
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise MediaError("Cannot use an empty image for face detection", found=f"shape {image.shape}")

    if pixels.dtype == np.uint8:
        out = pixels
    elif pixels.dtype == np.uint16:
        # The nearest 8-bit level, round(v * 255 / 65535), in integers. Not (v + 128) >> 8: full-range 16-bit
        # levels are 257 apart, so that would turn an 8-bit 200 stored as 16-bit (51400) into 201.
        out = ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif np.issubdtype(pixels.dtype, np.floating):
        if not np.isfinite(pixels).all():
            raise InvalidPixelsError(
                "Cannot detect faces on an image with NaN or infinite pixels",
                expected="finite float pixels in [0, 1]",
                found="NaN or Inf values",
                fix="clean the plate first (e.g. vfx.io.image refuses such pixels on write)",
            )
        out = np.rint(np.clip(pixels.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        raise MediaError(
            "Cannot use this image for face detection",
            expected="dtype uint8, uint16 or float in [0, 1]",
            found=f"dtype {pixels.dtype}",
            fix="convert the pixels to float32 in [0, 1] or to uint8",
        )
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return np.ascontiguousarray(out)


# --------------------------------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------------------------------


class Landmarker(abc.ABC):
    """A face detector plus a 68-point landmark localiser.

    Subclasses implement :meth:`_detect_work` (on an already cropped/scaled uint8 RGB image) and
    :meth:`localise`; region cropping, downscaling and mapping boxes back to the frame live here once.

    Attributes:
        name: the back-end's name, as :func:`create_landmarker` takes it.
        refines_boxes: whether :meth:`box_from_landmarks` has a rule.

    Convention:
        Images (H, W, 3) uint8 RGB (others are converted with :func:`to_uint8_rgb`); boxes and points in
        full-frame plate pixels.
    """

    name: str = "landmarker"
    refines_boxes: bool = False
    """True when :meth:`box_from_landmarks` has a rule for this back-end (:func:`refine_boxes` uses it)."""

    def detect(self, image: np.ndarray, *, region: FaceBox | None = None, scale: float = 1.0) -> list[FaceBox]:
        """Find faces.

        Args:
            image: the frame.
            region: when given, only this part of the frame is searched (the tracker passes a box around the
                previous frame's face, about twice the face's size: the detectors need context around a face).
                It is clipped to the frame; a region outside the frame finds nothing.
            scale: in (0, 1]: detect on a copy of the frame (or region) resized by this factor. 0.5 makes
                dlib ~4x faster; faces smaller than the detector's limit divided by ``scale`` are lost.

        A sliding-window detector sees a region or a smaller copy on a different grid, so the box found there
        can differ from the full-frame one by a few percent of its size (dlib: IoU 0.7-1.0 on real stills;
        identical for a region anchored at the frame origin). :func:`jitter_average` absorbs such wobble.

        Returns:
            Face boxes in full-frame pixels, highest score first; empty when there are none.

        Raises:
            ConfigError: ``scale`` outside (0, 1].
            MediaError: an image :func:`to_uint8_rgb` refuses.
        """
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            scale = math.nan
        if not 0.0 < scale <= 1.0:
            raise ConfigError(
                "Invalid detection scale",
                expected="a number in (0, 1]",
                found=repr(scale),
                fix="use 1.0 for full resolution or 0.5 to detect on a half-size copy",
            )
        if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
            to_uint8_rgb(image)  # raises the explanatory error
        ox, oy = 0, 0
        if region is not None:
            # Crop before converting: a float 4K plate is not converted whole to search a 400 px region.
            height, width = image.shape[:2]
            ox, oy = max(0, math.floor(region.x0)), max(0, math.floor(region.y0))
            x1, y1 = min(width, math.ceil(region.x1)), min(height, math.ceil(region.y1))
            if x1 <= ox or y1 <= oy:
                logger.debug("detect: region %s lies outside the %dx%d frame", region, width, height)
                return []
            image = image[oy:y1, ox:x1]
        pixels = to_uint8_rgb(image)
        sx = sy = 1.0
        if scale < 1.0:
            h, w = pixels.shape[:2]
            new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
            # INTER_AREA: a box filter, so the small copy is not aliased (HOG is gradient based).
            pixels = cv2.resize(pixels, (new_w, new_h), interpolation=cv2.INTER_AREA)
            sx, sy = new_w / w, new_h / h
        found = self._detect_work(pixels, scale=min(sx, sy))
        # Box edges scale with the image: an edge at x in the small copy is at x / s in the crop.
        boxes = [
            FaceBox(b.x0 / sx + ox, b.y0 / sy + oy, b.x1 / sx + ox, b.y1 / sy + oy, b.score) for b in found
        ]
        boxes.sort(key=lambda b: b.score, reverse=True)
        logger.debug("%s detect: %d face(s) (region=%s, scale=%.3g)", self.name, len(boxes), region, scale)
        return boxes

    @abc.abstractmethod
    def _detect_work(self, pixels: np.ndarray, *, scale: float) -> list[FaceBox]:
        """Detect on a contiguous uint8 RGB image; ``scale`` is how much it was shrunk from the plate."""

    def box_from_landmarks(self, landmarks: np.ndarray) -> FaceBox | None:
        """The box this back-end's detector would draw around a face with these landmarks, or None.

        A detector's boxes are quantised (dlib's scan window grows in steps of 6/5, so its box size jumps by
        up to 20 % between frames of a slow push-in), and a regression-tree predictor's points move with the
        box. A box made from a first set of landmarks instead changes continuously with the face;
        :func:`jitter_average` shifts that box. None: the back-end has no calibrated rule (FAN's heatmaps
        depend far less on the box) and the detector's box is used as it is.
        """
        del landmarks
        return None

    @abc.abstractmethod
    def localise(self, image: np.ndarray, boxes: Sequence[FaceBox]) -> np.ndarray:
        """68 landmarks for each box, all boxes in one call (one network batch for FAN).

        Args:
            image: the frame the boxes belong to.
            boxes: face boxes in plate pixels (from :meth:`detect`, or shifted copies of them); boxes that
                cross the frame edge are fine (outside pixels read as black).

        Returns:
            (N, 68, 2) float64 (x, y) plate pixels, in the order of ``boxes``; (0, 68, 2) for no boxes.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _check_boxes(boxes: Sequence[FaceBox]) -> list[FaceBox]:
    boxes = list(boxes)
    for box in boxes:
        if not (isinstance(box, FaceBox) and box.width > 0 and box.height > 0):
            raise ConfigError(
                "Cannot landmark this face box",
                expected="FaceBox instances with positive width and height",
                found=repr(box),
                fix="pass boxes from Landmarker.detect (or FaceBox.shifted/scaled copies of them)",
            )
        if not np.isfinite(box.as_array()).all():
            raise ConfigError("Cannot landmark a face box with NaN or infinite corners", found=repr(box))
    return boxes


# --------------------------------------------------------------------------------------------------------------
# dlib
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
                "Invalid minimum face size", expected="a positive number of pixels", found=repr(min_face_px)
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
# --------------------------------------------------------------------------------------------------------------


def _default_torch_models_dir() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def _torch_state_dict(path: Path, device: str) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises a zoo of types (pickle, zip, RuntimeError) for a bad file
        raise ConfigError(
            f"Cannot load the weights file {path}",
            expected="a PyTorch state dict as face-alignment publishes it",
            found=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
            fix="download the file again (a truncated download is the usual cause)",
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"Cannot load the weights file {path}", expected="a state dict", found=type(state).__name__)
    # Checkpoints saved from nn.DataParallel prefix every key with "module.".
    return {k.removeprefix("module."): v for k, v in state.items()}


class FanLandmarker(Landmarker):
    """face-alignment's S3FD detector and 2D-FAN 68-point heatmap network, batched, on CPU or CUDA.

    Args:
        models_dir: folder with ``2DFAN4-11f355bf06.pth.tar`` (or face-alignment 1.3/1.4's TorchScript
            ``2DFAN4-cd938726ad.zip``) and ``s3fd-619a316812.pth``; default: torch's hub cache,
            ``torch.hub.get_dir()/checkpoints``, where face-alignment itself caches them. Nothing is ever
            downloaded.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. CUDA runs channels-last under float16 autocast.
        batch_size: most crops per network call; :meth:`localise` splits larger calls into chunks.
        detector_threshold: S3FD probability a box needs (face-alignment's default 0.5).
        flip_input: also run each crop mirrored and average the two heatmaps (face-alignment's
            ``flip_input``): steadier points for 2x the network time.

    Raises:
        ConfigError: missing or unreadable weights (the message names each file and the folder), a bad device.

    Convention:
        Images (H, W, 3) uint8 RGB; boxes and points in plate pixels. A box is cropped the way face-alignment
        does (centre 12 % of the box height above the box centre, side ``200 * (w + h) / 195``, resized to
        256²) but with an exact sub-pixel affine warp instead of face-alignment's whole-pixel crop, and
        heatmap peaks map back without its integer truncation: shifting a box by a fraction of a pixel moves
        the crop by exactly that, which jitter averaging relies on. FAN expects S3FD-like boxes (forehead to
        chin); dlib's tighter boxes would want ``FaceBox.scaled`` first.
    """

    name = "fan"

    def __init__(
        self,
        models_dir: Path | None = None,
        device: str = "cpu",
        batch_size: int = 16,
        *,
        detector_threshold: float = 0.5,
        flip_input: bool = False,
    ) -> None:
        import torch

        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ConfigError("Invalid FAN batch size", expected="an integer >= 1", found=repr(batch_size))
        if not 0.0 <= detector_threshold <= 1.0:
            raise ConfigError(
                "Invalid detector threshold", expected="a probability in [0, 1]", found=repr(detector_threshold)
            )
        self.device = self._check_device(device)
        self.batch_size = batch_size
        self.detector_threshold = float(detector_threshold)
        self.flip_input = bool(flip_input)
        self._cuda = self.device.startswith("cuda")
        self.models_dir = Path(models_dir).expanduser() if models_dir is not None else _default_torch_models_dir()
        fan_path, sfd_path = self._find_weights(self.models_dir)
        self.fan_path, self.sfd_path = fan_path, sfd_path
        self._net = self._load_fan(fan_path)
        self._sfd = self._load_sfd(sfd_path)
        if self._cuda:
            torch.backends.cudnn.benchmark = True

    @staticmethod
    def _check_device(device: str) -> str:
        import torch

        if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
            raise ConfigError(
                "Invalid device for FAN",
                expected="'cpu', 'cuda' or 'cuda:N'",
                found=repr(device),
                fix="pass --device cpu or --device cuda",
            )
        if device.startswith("cuda"):
            index = int(device.partition(":")[2] or 0)
            if not torch.cuda.is_available() or index >= torch.cuda.device_count():
                raise ConfigError(
                    f"CUDA device {device!r} is not available",
                    expected="a machine with an NVIDIA GPU and a CUDA build of torch",
                    found=f"torch {torch.__version__}, {torch.cuda.device_count()} CUDA device(s)",
                    fix="use --device cpu",
                )
        return device

    @staticmethod
    def _find_weights(folder: Path) -> tuple[Path, Path]:
        fan, legacy, sfd = folder / FAN_WEIGHTS_FILE, folder / FAN_LEGACY_WEIGHTS_FILE, folder / SFD_WEIGHTS_FILE
        missing = []
        if not fan.is_file() and not legacy.is_file():
            missing.append(f"{FAN_WEIGHTS_FILE} (from {_FAN_URL})")
        if not sfd.is_file():
            missing.append(f"{SFD_WEIGHTS_FILE} (from {_SFD_URL})")
        if missing:
            raise ConfigError(
                "FAN landmark weights are missing",
                expected=f"{FAN_WEIGHTS_FILE} and {SFD_WEIGHTS_FILE} in {folder}",
                found=f"missing in {folder}: " + "; ".join(missing),
                fix=(
                    f"download the missing file(s) on a machine with network access and copy them into {folder}, "
                    "or pass --models-dir with the folder that holds them (vfx never downloads at run time)"
                ),
            )
        return (fan if fan.is_file() else legacy), sfd

    def _load_fan(self, path: Path) -> torch.nn.Module:
        import torch
        from face_alignment.models import FAN

        if path.name == FAN_LEGACY_WEIGHTS_FILE:
            try:
                net = torch.jit.load(str(path), map_location=self.device)
            except Exception as exc:
                raise ConfigError(f"Cannot load the TorchScript FAN {path}", found=str(exc).splitlines()[0]) from exc
        else:
            state = _torch_state_dict(path, self.device)
            # The stack count is in the keys ("l0.weight" .. "l3.weight" for 2DFAN-4), so smaller test
            # networks of the same architecture load too.
            stacks = sum(1 for k in state if re.fullmatch(r"l\d+\.weight", k))
            if stacks == 0:
                raise ConfigError(
                    f"Cannot load the FAN weights {path}",
                    expected="a face_alignment.models.FAN state dict (keys l0.weight ...)",
                    found=f"{len(state)} keys, none a FAN heatmap head",
                    fix=f"use face-alignment's {FAN_WEIGHTS_FILE}",
                )
            net = FAN(stacks)
            try:
                net.load_state_dict(state)
            except RuntimeError as exc:
                raise ConfigError(f"Cannot load the FAN weights {path}", found=str(exc).splitlines()[0]) from exc
            logger.info("loaded 2D-FAN (%d stacks) from %s", stacks, path)
        net = net.to(self.device).eval()
        if self._cuda:
            net = net.to(memory_format=torch.channels_last)
        return net

    def _load_sfd(self, path: Path) -> torch.nn.Module:
        import torch
        from face_alignment.detection.sfd.net_s3fd import s3fd

        state = _torch_state_dict(path, self.device)
        net = s3fd()
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise ConfigError(f"Cannot load the S3FD weights {path}", found=str(exc).splitlines()[0]) from exc
        net = net.to(self.device).eval()
        if self._cuda:
            net = net.to(memory_format=torch.channels_last)
        logger.info("loaded S3FD from %s", path)
        return net

    def _autocast(self) -> Any:
        import contextlib

        import torch

        return torch.autocast("cuda", dtype=torch.float16) if self._cuda else contextlib.nullcontext()

    # -- detection --------------------------------------------------------------------------------------------

    def _detect_work(self, pixels: np.ndarray, *, scale: float) -> list[FaceBox]:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(pixels).to(self.device).permute(2, 0, 1)[None].float()
            # S3FD was trained on Caffe-style BGR minus the ImageNet means.
            x = x.flip(1) - torch.tensor(_SFD_MEAN_BGR, device=self.device).view(1, 3, 1, 1)
            if self._cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                outputs = self._sfd(x)
            # outputs alternate (class logits, box regression) per level; softmax in float32 even under autocast.
            levels = [
                (outputs[2 * i].float().softmax(1)[0, 1].cpu().numpy(), outputs[2 * i + 1].float()[0].cpu().numpy())
                for i in range(len(outputs) // 2)
            ]
            dets = _sfd_decode(levels, self.detector_threshold)
        keep = _nms(dets, _SFD_NMS_IOU)
        return [FaceBox(*map(float, dets[k, :4]), score=float(dets[k, 4])) for k in keep]

    # -- landmarks --------------------------------------------------------------------------------------------

    def localise(self, image: np.ndarray, boxes: Sequence[FaceBox]) -> np.ndarray:
        import torch

        boxes = _check_boxes(boxes)
        if not boxes:
            return np.empty((0, NUM_LANDMARKS, 2), dtype=np.float64)
        pixels = to_uint8_rgb(image)
        centres, sides = _fan_centre_side(boxes)
        crops = np.stack([_fan_crop(pixels, c, s) for c, s in zip(centres, sides, strict=True)])
        heatmaps = []
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                heatmaps.append(self._heatmaps(crops[start : start + self.batch_size]))
        peaks = _heatmap_peaks(np.concatenate(heatmaps))  # (N, 68, 2) in heatmap units, [0, 64)
        # Heatmap [0, 64] spans the crop square [c - side/2, c + side/2] (face-alignment's transform()).
        points = centres[:, None, :] + (peaks / _FAN_HEATMAP - 0.5) * sides[:, None, None]
        return points.astype(np.float64)

    def _heatmaps(self, crops: np.ndarray) -> np.ndarray:
        """(B, 256, 256, 3) uint8 crops -> (B, 68, 64, 64) float32 heatmaps (numpy, on the CPU)."""
        import torch

        x = torch.from_numpy(crops).to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        if self.flip_input:
            x = torch.cat([x, x.flip(3)])
        if self._cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            out = self._net(x)
        out = (out[-1] if isinstance(out, list | tuple) else out).float()
        if self.flip_input:
            from face_alignment.utils import shuffle_lr

            n = len(crops)
            out = out[:n] + shuffle_lr(out[n:]).flip(3)
        return out.cpu().numpy()

    def __repr__(self) -> str:
        return f"FanLandmarker(device={self.device!r}, batch_size={self.batch_size}, fan={str(self.fan_path)!r})"


def _fan_centre_side(boxes: Sequence[FaceBox]) -> tuple[np.ndarray, np.ndarray]:
    """face-alignment's crop centre (N, 2) and crop side in plate pixels (N,) for each box."""
    arr = np.array([b.as_array() for b in boxes], dtype=np.float64).reshape(-1, 4)
    w, h = arr[:, 2] - arr[:, 0], arr[:, 3] - arr[:, 1]
    centres = np.stack([(arr[:, 0] + arr[:, 2]) / 2, (arr[:, 1] + arr[:, 3]) / 2 - h * _FAN_CENTRE_Y_OFFSET], axis=1)
    sides = _FAN_SCALE_FACTOR * (w + h) / _FAN_REFERENCE_SCALE
    return centres, sides


def _fan_crop(pixels: np.ndarray, centre: np.ndarray, side: float) -> np.ndarray:
    """The 256² crop of the square ``centre ± side/2``: crop pixel j samples plate c + ((j + 0.5) / 256 - 0.5) side.

    This is the continuous form of face-alignment's ``crop`` (which snaps the square to whole pixels).
    """
    k = _FAN_CROP / side
    m = np.array(
        [[k, 0.0, (_FAN_CROP - 1) / 2 - centre[0] * k], [0.0, k, (_FAN_CROP - 1) / 2 - centre[1] * k]], dtype=np.float64
    )
    # Bilinear like face-alignment's cv2.resize(INTER_LINEAR): the network saw such crops in training.
    return cv2.warpAffine(
        pixels, m, (_FAN_CROP, _FAN_CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def _heatmap_peaks(heatmaps: np.ndarray) -> np.ndarray:
    """Sub-pixel peaks (N, C, 2) of (N, C, H, W) heatmaps, in continuous heatmap units (cell i centred at i + 0.5).

    The same decoding as face-alignment's ``get_preds_fromhm``: the arg-max, moved a quarter cell towards the
    larger neighbour on each axis (not on the border), vectorised and without its integer truncation.
    """
    n, c, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, c, h * w)
    idx = flat.argmax(axis=-1)
    x, y = idx % w, idx // w
    xi, yi = np.clip(x, 1, w - 2), np.clip(y, 1, h - 2)
    ni, ci = np.ogrid[:n, :c]
    dx = np.sign(heatmaps[ni, ci, y, xi + 1] - heatmaps[ni, ci, y, xi - 1])
    dy = np.sign(heatmaps[ni, ci, yi + 1, x] - heatmaps[ni, ci, yi - 1, x])
    inner = (x > 0) & (x < w - 1) & (y > 0) & (y < h - 1)
    px = x + 0.5 + np.where(inner, 0.25 * dx, 0.0)
    py = y + 0.5 + np.where(inner, 0.25 * dy, 0.0)
    return np.stack([px, py], axis=-1).astype(np.float64)


def _sfd_decode(levels: list[tuple[np.ndarray, np.ndarray]], threshold: float) -> np.ndarray:
    """S3FD anchors to boxes (K, 5) x0 y0 x1 y1 score, only those scoring at least ``threshold``.

    ``levels[i]`` is (face probability (H, W), regression (4, H, W)) at stride 4 * 2**i with square anchors of
    4 * stride, as face-alignment's ``get_predictions`` decodes them. Filtering before NMS gives what filtering
    after does (a box can only suppress lower-scoring ones) and keeps NMS small.
    """
    out = []
    for i, (prob, reg) in enumerate(levels):
        stride = 2 ** (i + 2)
        ys, xs = np.nonzero(prob >= max(threshold, 0.05))
        if len(ys) == 0:
            continue
        anchor = 4.0 * stride
        loc = reg[:, ys, xs].T.astype(np.float64)  # (K, 4)
        cx = stride / 2 + xs * stride + loc[:, 0] * 0.1 * anchor
        cy = stride / 2 + ys * stride + loc[:, 1] * 0.1 * anchor
        bw, bh = anchor * np.exp(loc[:, 2] * 0.2), anchor * np.exp(loc[:, 3] * 0.2)
        out.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, prob[ys, xs]], axis=1))
    return np.concatenate(out) if out else np.empty((0, 5))


def _nms(dets: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression (face-alignment's, with its +1 pixel areas); indices, best first."""
    if len(dets) == 0:
        return []
    x0, y0, x1, y1, scores = dets.T
    areas = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x1[i], x1[order[1:]]) - np.maximum(x0[i], x0[order[1:]]) + 1)
        h = np.maximum(0.0, np.minimum(y1[i], y1[order[1:]]) - np.maximum(y0[i], y0[order[1:]]) + 1)
        overlap = w * h / (areas[i] + areas[order[1:]] - w * h)
        order = order[1:][overlap <= iou]
    return keep


# --------------------------------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------------------------------


def create_landmarker(
    name: LandmarkerName, *, models_dir: Path | None = None, device: str = "cpu", **options: Any
) -> Landmarker:
    """The landmarker called ``name``.

    Args:
        name: ``"dlib"`` or ``"fan"`` (case-insensitive).
        models_dir: the folder with the model files (CLI ``--models-dir``); None: each back-end's default.
        device: torch device for FAN; dlib always runs on the CPU (a CUDA device is noted in the log).
        **options: passed to the back-end's constructor (``min_face_px``, ``batch_size``, ...).

    Raises:
        ConfigError: an unknown name (the message lists the valid ones and the closest match), or the
            back-end's own errors (missing model files).
    """
    choices = get_args(LandmarkerName)
    key = name.strip().lower() if isinstance(name, str) else name
    if key == "dlib":
        if device != "cpu":
            logger.info("dlib landmarks run on the CPU; device %r is not used", device)
        return DlibLandmarker(models_dir, **options)
    if key == "fan":
        return FanLandmarker(models_dir, device=device, **options)
    close = difflib.get_close_matches(str(key), choices, n=1, cutoff=0.3)
    raise ConfigError(
        f"Unknown landmarker {name!r}",
        expected="one of " + ", ".join(repr(c) for c in choices),
        found=repr(name),
        fix=(f"did you mean {close[0]!r}? " if close else "") + "use 'dlib' (fast, CPU) or 'fan' (robust, torch)",
    )


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
            "Invalid jitter beta", expected="a fraction of the box width >= 0 (0.05 in [0052])", found=repr(beta)
        )
    if not (isinstance(num_shifts, int) and not isinstance(num_shifts, bool) and num_shifts >= 0):
        raise ConfigError(
            "Invalid jitter shift count", expected="an integer >= 0 (8 in [0052]; 0: no jitter)", found=repr(num_shifts)
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
