"""Paste-back: a blended crop goes back into the plate over the face's region only, through a matte, so
every plate pixel the matte does not touch keeps its exact value (its bits, in the plate's own encoding).

Shared by the swap and the retouch stages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from vfx.align.similarity import warp_to_plate
from vfx.blend.filters import gaussian_weights
from vfx.blend.kernels import inward_mask_numpy
from vfx.errors import VfxError

__all__ = ["DEFAULT_MATTE_SIGMA_PX", "Pasted", "crop_matte", "empty_paste", "paste_back", "paste_change"]

DEFAULT_MATTE_SIGMA_PX = 1.5
"""Inward feather of the paste matte, in crop pixels: hides the resampling of the crop (the blended crop
equals the target there already, so this only fades the double warp's softening into the plate's grain)."""


@dataclass(frozen=True)
class Pasted:
    """A frame after paste-back.

    Attributes:
        frame: (H, W, C) float32 in the plate's colour space; outside the matte the plate's own values.
        matte: (H, W) float32 in [0, 1]; 0 exactly where the plate is untouched.
        box: (y0, x0, y1, x1) plate pixels where the matte is above 0 (ends exclusive), or None if empty.
    """

    frame: np.ndarray
    matte: np.ndarray
    box: tuple[int, int, int, int] | None


def crop_matte(cover: np.ndarray, sigma: float = DEFAULT_MATTE_SIGMA_PX) -> np.ndarray:
    """The paste matte in the crop: the face polygon's coverage feathered inward by ``sigma`` crop pixels,
    exactly 0 wherever the polygon does not reach. (h, w) float32 in, (h, w) float32 out."""
    mask = np.ascontiguousarray(cover, dtype=np.float32)
    if sigma <= 0:
        return mask
    return inward_mask_numpy(mask, gaussian_weights(sigma))  # inward_face_mask's arithmetic, bit for bit


def empty_paste(plate: np.ndarray) -> Pasted:
    """A frame with no face: the plate itself, an empty matte."""
    return Pasted(frame=plate, matte=np.zeros(plate.shape[:2], np.float32), box=None)


def _plate_matte(matte: np.ndarray, matrix: np.ndarray, size: tuple[int, int]
                 ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]] | None:
    """The crop matte warped into the plate, cut to its box: (matte, matte > 0, box), or None where it is empty."""
    alpha = warp_to_plate(matte, matrix, size, interpolation="linear", border="constant")
    m = np.clip(alpha.pixels, 0.0, 1.0)
    inside = m > 0
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if len(rows) == 0:
        return None
    y0, x0 = alpha.offset[0] + int(rows[0]), alpha.offset[1] + int(cols[0])
    y1, x1 = alpha.offset[0] + int(rows[-1]) + 1, alpha.offset[1] + int(cols[-1]) + 1
    local = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
    return m[local], inside[local], (y0, x0, y1, x1)


def paste_back(plate: np.ndarray, crop: np.ndarray, matte: np.ndarray, matrix: np.ndarray, *,
               to_plate: Callable[[np.ndarray], np.ndarray] | None = None, in_place: bool = False) -> Pasted:
    """Warp a blended crop into the plate with the inverse of its matrix and composite it through a matte.

    Only the face's region of interest is resampled (never the whole frame). Inside it, where the warped
    matte m is above 0, the result is ``plate + m (face - plate)``; everywhere else the plate's values are
    copied unchanged, so a plate read from an 8-bit, 16-bit or half-float file writes back bit-identical
    outside the matte.

    Args:
        plate: (H, W, C) float32 frame in its own colour space (C >= 3; channels past RGB are kept as they are).
        crop: (r, r, 3) float32 blended crop, in the working space.
        matte: (r, r) float32 crop matte (:func:`crop_matte`).
        matrix: the (2, 3) plate -> crop matrix the crop was cut with.
        to_plate: converts working-space pixels to the plate's colour space (e.g. ``ColorConverter.apply``);
            applied to the face's region only. ``None``: the plate is in the working space.
        in_place: write into ``plate`` instead of a copy.

    Returns:
        :class:`Pasted` with the frame, the full-frame matte and the matte's box.
    """
    out, found = _start_paste(plate, matte, matrix, in_place=in_place, what="Plate")
    if found is None:
        return Pasted(frame=out, matte=np.zeros(out.shape[:2], np.float32), box=None)
    m, inside, (y0, x0, y1, x1) = found
    size = out.shape[:2]
    # the colour only where the matte reaches: its box is smaller than the rotated crop's footprint
    pixels = warp_to_plate(_interleaved(crop), matrix, size, interpolation="cubic", border="constant",
                           box=(y0, x0, y1, x1)).pixels
    if to_plate is not None:
        pixels = to_plate(pixels)
    return _composite(out, pixels, m, inside, (y0, x0, y1, x1))


def paste_change(frame: np.ndarray, change: np.ndarray, matte: np.ndarray, matrix: np.ndarray, *,
                 to_working: Callable[[np.ndarray], np.ndarray] | None = None,
                 to_plate: Callable[[np.ndarray], np.ndarray] | None = None,
                 limit: np.ndarray | None = None, in_place: bool = False) -> Pasted:
    """Add a crop-space change to a finished frame through a matte: ``to_plate(to_working(frame) + change)``
    where the warped matte is 1, blended by it, and the frame's own bits wherever it is 0.

    For a change to a face already pasted (a latent edit: the edited decode minus the unedited one): only
    the change is resampled, never the frame's face itself, so the swap's detail inside the matte survives
    instead of going through the crop and back.

    Args:
        frame: (H, W, C) float32 finished frame in the plate's colour space.
        change: (r, r, 3) float32 difference in the working space.
        matte: (r, r) float32 crop matte, 0 where nothing changes.
        matrix: the (2, 3) plate -> crop matrix.
        to_working, to_plate: colour conversions between the frame's space and the working space (``None``:
            the frame is in the working space).
        limit: (H, W) plate-space matte the result's matte may not exceed (the swap's: an edit never reaches
            past the swapped face).
        in_place: write into ``frame`` instead of a copy.
    """
    out, found = _start_paste(frame, matte, matrix, in_place=in_place, what="Frame")
    if found is None:
        return Pasted(frame=out, matte=np.zeros(out.shape[:2], np.float32), box=None)
    m, inside, (y0, x0, y1, x1) = found
    size = out.shape[:2]
    if limit is not None:
        m = np.minimum(m, limit[y0:y1, x0:x1])
        inside = m > 0
    delta = warp_to_plate(change, matrix, size, interpolation="cubic", border="constant", box=(y0, x0, y1, x1)).pixels
    region = out[y0:y1, x0:x1, :3]
    working = region if to_working is None else to_working(region)
    edited = working + delta
    if to_working is None:
        edited = np.clip(edited, 0.0, 1.0)  # a display-referred frame holds [0, 1]; the cubic's ringing must not leave it
    else:
        edited = to_plate(edited) if to_plate is not None else edited
    return _composite(out, edited, m, inside, (y0, x0, y1, x1))


def _interleaved(crop: np.ndarray) -> np.ndarray:
    """``crop`` as a C-contiguous (h, w, C) array for OpenCV, the same values. A view of planar memory (a
    (B, C, h, w) tensor's crop permuted to (h, w, C), as the blend hands it over) is interleaved by
    ``cv2.merge`` of its planes, several times faster than numpy's strided copy."""
    if (crop.ndim == 3 and 2 <= crop.shape[2] <= 4 and not crop.flags.c_contiguous
            and crop.dtype in (np.uint8, np.uint16, np.float32, np.float64)
            and all(crop[..., i].flags.c_contiguous for i in range(crop.shape[2]))):
        return cv2.merge([crop[..., i] for i in range(crop.shape[2])])
    return crop


def _start_paste(frame: np.ndarray, matte: np.ndarray, matrix: np.ndarray, *, in_place: bool,
                 what: str) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]] | None]:
    """Check the frame, take it (or a copy) as the output, and warp the crop matte into it (None: it misses)."""
    if frame.ndim != 3 or frame.shape[2] < 3 or frame.dtype != np.float32:
        raise VfxError(f"{what} of the wrong shape for paste-back", expected="(H, W, C >= 3) float32",
                       found=f"{frame.shape} {frame.dtype}",
                       fix=f"pass the {what.lower()} as (H, W, 3) or (H, W, 4) float32, e.g. image.astype(np.float32)")
    return (frame if in_place else frame.copy()), _plate_matte(matte, matrix, frame.shape[:2])


def _composite(out: np.ndarray, pixels: np.ndarray, m: np.ndarray, inside: np.ndarray,
               box: tuple[int, int, int, int]) -> Pasted:
    """Blend ``pixels`` into ``out``'s box through the matte ``m``, writing only where it is above 0."""
    y0, x0, y1, x1 = box
    region = out[y0:y1, x0:x1, :3]
    # OpenCV's blend and masked copy: one pass each, 5x faster than the numpy expressions. Only pixels
    # where the matte is above 0 are written, so elsewhere the frame keeps its bits (even a -0.0).
    # An RGB frame's box is an OpenCV image as it is (rows apart, pixels packed); past RGB it is not.
    packed = region.strides[1:] == (3 * region.itemsize, region.itemsize)
    mixed = cv2.blendLinear(np.ascontiguousarray(pixels, dtype=np.float32),
                            region if packed else np.ascontiguousarray(region), m, 1.0 - m)
    if packed:
        cv2.copyTo(mixed, inside.view(np.uint8), region)
    else:
        np.copyto(region, mixed, where=inside[..., None])
    full_matte = np.zeros(out.shape[:2], np.float32)
    full_matte[y0:y1, x0:x1] = m
    return Pasted(frame=out, matte=full_matte, box=box)
