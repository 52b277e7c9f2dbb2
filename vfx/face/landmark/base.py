"""The landmarker interface every back-end shares, and the pixels it takes (:func:`to_uint8_rgb`)."""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from vfx.errors import ConfigError, InvalidPixelsError, MediaError
from vfx.face.types import FaceBox

if TYPE_CHECKING:
    pass


logger = logging.getLogger(__name__)

LandmarkerName = Literal["dlib", "fan"]


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
        raise MediaError("Cannot use an empty image for face detection", found=f"shape {image.shape}",
                         expected="an image at least 1x1 pixel",
                         fix="pass a decoded frame, not an empty crop or array")

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
            raise ConfigError("Cannot landmark a face box with NaN or infinite corners", found=repr(box),
                              expected="a box with four finite corners",
                              fix="drop that box, or pass boxes from Landmarker.detect")
    return boxes


# --------------------------------------------------------------------------------------------------------------
# dlib
