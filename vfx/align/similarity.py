"""Similarity alignment of a face: eyes level at a fixed inter-ocular distance, crop and uncrop.

The source patent ([0050] of 002) rotates and scales every face "so that the eyes lie on a line having a
predetermined orientation and so as to have a predetermined interocular distance", then crops a square of
r x r pixels. :func:`estimate_alignment` builds that transform in closed form from the two eye centres, so
the eyes are exactly level (no least-squares compromise with other landmarks), and :func:`warp_to_crop` /
:func:`warp_to_plate` resample with OpenCV. :func:`warp_to_plate` only ever touches the plate region the
crop covers, so pasting a face back into a 4K frame costs the face, not the frame.

Convention:
    - Points are (x, y) pixels, pixel centres at integer coordinates, origin top-left; a W-pixel-wide
      image spans x in [-0.5, W - 0.5].
    - Sizes are (height, width); a plain ``int`` means a square.
    - A transform is a (2, 3) float64 matrix ``m`` mapping plate -> crop: ``crop = m[:, :2] @ plate + m[:, 2]``.
    - Images are numpy (H, W) or (H, W, C), uint8 / uint16 / float32 / float64; tensors (B, C, H, W).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np

from vfx.align.landmarks import LANDMARK_GROUPS, NUM_LANDMARKS
from vfx.errors import ConfigError, VfxError

if TYPE_CHECKING:
    import torch

__all__ = [
    "desqueeze",
    "pixel_aspect_matrix",
    "AlignTemplate",
    "PlatePatch",
    "Interpolation",
    "Border",
    "eye_centres",
    "estimate_alignment",
    "invert_affine",
    "compose",
    "transform_points",
    "affine_scale",
    "plate_roi",
    "warp_to_crop",
    "warp_to_plate",
    "warp_to_crop_torch",
    "parse_size",
    "check_landmarks",
]

Interpolation = Literal["cubic", "linear", "area", "nearest"]
Border = Literal["reflect", "constant"]

_MIN_SIZE, _MAX_SIZE = 4, 1024


@dataclass(frozen=True)
class AlignTemplate:
    """Where the eyes go in an aligned r x r crop.

    The defaults frame the whole face with room to spare: on the 43 hand-checked faces of the shared
    landmark set the chin sits on average 1.93 inter-ocular distances below the eye line (2.8 at worst,
    open mouths and nods), the brows 0.33 above and the hairline about 1.45 above. With the eyes 0.25 r
    apart (the same scale as FFHQ's alignment) and on the line y = 0.40 r, the mean chin lands at 0.88 r,
    the hairline near 0.04 r and the jaw spans about 0.2 r .. 0.8 r, so forehead, chin, an open jaw and
    the margin the multi-band blend needs around the face mask all stay inside. FFHQ itself puts the eyes
    lower (about 0.47 r, for hair), which leaves the chin of an open mouth outside; 0.30 r apart at
    0.40 r would put the mean chin at 0.98 r.

    Attributes:
        size: crop size r in pixels, a power of two from 4 to 1024 (the comb network grows 4 -> r).
        eye_distance: distance between the two eye centres as a fraction of r.
        eye_y: height of the eye line below the crop's top edge, as a fraction of r.

    Convention:
        - Fractions are of the crop's extent: fraction f is the coordinate ``f * size - 0.5`` (the top and
          left edges are at -0.5, pixel centres at integers), so the vertical centre line is
          x = (size - 1) / 2 and the eyes sit symmetric about it.

    Example:
        >>> AlignTemplate(size=256).eye_positions().tolist()
        [[95.5, 101.9], [159.5, 101.9]]
        >>> AlignTemplate(size=4).with_size(1024).size
        1024
    """

    size: int = 256
    eye_distance: float = 0.25
    eye_y: float = 0.40

    def __post_init__(self) -> None:
        size = self.size
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not (
            _MIN_SIZE <= size <= _MAX_SIZE and size & (size - 1) == 0
        ):
            raise ConfigError(
                "Invalid aligned crop size",
                expected=f"a power of two from {_MIN_SIZE} to {_MAX_SIZE} (4, 8, ..., 256, 512, 1024)",
                found=repr(size),
                fix="pick the nearest power of two, e.g. 256",
            )
        object.__setattr__(self, "size", int(size))
        if not 0.0 < self.eye_distance < 1.0:
            raise ConfigError("Invalid template eye distance", expected="a fraction of the crop in (0, 1)",
                              found=repr(self.eye_distance), fix="use about 0.25")
        if not 0.0 < self.eye_y < 1.0:
            raise ConfigError("Invalid template eye height", expected="a fraction of the crop in (0, 1)",
                              found=repr(self.eye_y), fix="use about 0.40")

    @property
    def shape(self) -> tuple[int, int]:
        """The crop size as (height, width)."""
        return (self.size, self.size)

    def with_size(self, size: int) -> AlignTemplate:
        """The same framing at another resolution (a progressive-growing level, a preview)."""
        return AlignTemplate(size=size, eye_distance=self.eye_distance, eye_y=self.eye_y)

    def eye_positions(self) -> np.ndarray:
        """(2, 2) crop coordinates of the (right, left) eye centres; the subject's right eye is image-left."""
        r = self.size
        centre_x = r / 2 - 0.5
        half = self.eye_distance * r / 2
        y = self.eye_y * r - 0.5
        return np.array([[centre_x - half, y], [centre_x + half, y]], dtype=np.float64)


class PlatePatch(NamedTuple):
    """A warped patch of a plate and where it goes: ``plate[patch.slices]`` is the region it covers.

    Unpacks as ``pixels, (y0, x0) = warp_to_plate(...)``.
    """

    pixels: np.ndarray
    """(h, w) or (h, w, C), the dtype of the crop it came from."""
    offset: tuple[int, int]
    """(y0, x0): the plate pixel of ``pixels[0, 0]``."""

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices of the plate region the patch covers."""
        y0, x0 = self.offset
        return slice(y0, y0 + self.pixels.shape[0]), slice(x0, x0 + self.pixels.shape[1])


# ---------------------------------------------------------------------------------------------- matrices

def check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """``landmarks`` as (68, 2) float64, or a VfxError saying what is wrong with them (shape, NaN)."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (NUM_LANDMARKS, 2):
        raise VfxError("Landmarks of the wrong shape", expected=f"({NUM_LANDMARKS}, 2) points in the iBUG 68 order",
                       found=str(points.shape), fix="pass Face.landmarks")
    if not np.all(np.isfinite(points)):
        raise VfxError("Landmarks with NaN or infinite coordinates", expected="finite plate pixels",
                       found=f"{int((~np.isfinite(points)).any(axis=1).sum())} bad points",
                       fix="drop or interpolate the face before aligning it")
    return points


def _check_matrix(matrix: np.ndarray, name: str = "matrix") -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape == (3, 3):
        m = m[:2]
    if m.shape != (2, 3) or not np.all(np.isfinite(m)):
        raise VfxError(f"Invalid {name}", expected="a finite (2, 3) plate -> crop affine matrix",
                       found=f"shape {np.shape(matrix)}", fix="use estimate_alignment()")
    return m


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """(2, 2) centres of the (right, left) eye: the mean of each eye's six landmarks.

    Convention:
        - landmarks: (68, 2) (x, y) in the iBUG order; the right eye is the subject's, the image-left one.
    """
    points = check_landmarks(landmarks)
    return np.stack([points[list(LANDMARK_GROUPS["right_eye"])].mean(axis=0),
                     points[list(LANDMARK_GROUPS["left_eye"])].mean(axis=0)])


def _similarity_from_two_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The similarity that maps src[0] -> dst[0] and src[1] -> dst[1] exactly (as complex z -> a z + b)."""
    zs = complex(*src[1]) - complex(*src[0])
    zd = complex(*dst[1]) - complex(*dst[0])
    if abs(zs) < 1e-9:
        raise VfxError("Cannot align a face whose eye centres coincide", expected="two distinct eye centres",
                       found=f"both at {src[0].tolist()}", fix="check the landmarker's output for this face")
    a = zd / zs
    b = complex(*dst[0]) - a * complex(*src[0])
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]], dtype=np.float64)


def estimate_alignment(landmarks: np.ndarray, template: AlignTemplate | None = None) -> np.ndarray:
    """The plate -> crop similarity that puts the eye centres where ``template`` wants them.

    Closed form from the two eye centres: rotation, uniform scale and translation are all fixed by two
    point pairs, so the eyes land exactly on the template's horizontal line, at its distance, symmetric
    about the crop's vertical centre line. No other landmark pulls on the fit, on purpose: a least-squares
    fit over all 68 points would tilt the eye line whenever the mouth moves.

    Args:
        landmarks: (68, 2) plate pixels, iBUG order.
        template: where the eyes go; ``AlignTemplate()`` (256 px) when None.

    Returns:
        (2, 3) float64 plate -> crop matrix.

    Raises:
        VfxError: landmarks of the wrong shape, not finite, or with coinciding eye centres.

    Convention:
        - (x, y) pixels, pixel centres at integers, origin top-left, in both plate and crop.

    Example:
        >>> template = AlignTemplate(size=256)
        >>> shape = np.zeros((68, 2)); shape[36:42] = (300.0, 200.0); shape[42:48] = (364.0, 200.0)
        >>> m = estimate_alignment(shape, template)
        >>> transform_points(eye_centres(shape), m).round(6).tolist() == template.eye_positions().tolist()
        True
    """
    template = template or AlignTemplate()
    return _similarity_from_two_points(eye_centres(landmarks), template.eye_positions())


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a (2, 3) affine matrix (crop -> plate for an alignment matrix), in float64.

    Example:
        >>> m = np.array([[2.0, 0.0, 10.0], [0.0, 2.0, -4.0]])
        >>> invert_affine(m).tolist()
        [[0.5, 0.0, -5.0], [0.0, 0.5, 2.0]]
    """
    m = _check_matrix(matrix)
    linear = m[:, :2]
    det = np.linalg.det(linear)
    if abs(det) < 1e-12:
        raise VfxError("Cannot invert a singular affine matrix", expected="a non-zero determinant",
                       found=f"det = {det:g}", fix="rebuild the matrix with estimate_alignment()")
    inverse = np.linalg.inv(linear)
    return np.concatenate([inverse, -inverse @ m[:, 2:]], axis=1)


def compose(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The (2, 3) affine that applies ``first`` and then ``second``.

    Example:
        >>> shift = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, 0.0]])
        >>> double = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
        >>> compose(shift, double).tolist()  # x -> 2 (x + 5)
        [[2.0, 0.0, 10.0], [0.0, 2.0, 0.0]]
    """
    a, b = _check_matrix(first), _check_matrix(second)
    return np.concatenate([b[:, :2] @ a[:, :2], b[:, :2] @ a[:, 2:] + b[:, 2:]], axis=1)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to (N, 2) points (or one (2,) point); float64 out, same leading shape.

    Example:
        >>> transform_points(np.array([[1.0, 2.0]]), np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])).tolist()
        [[-2.0, 1.0]]
    """
    m = _check_matrix(matrix)
    p = np.asarray(points, dtype=np.float64)
    if p.shape[-1] != 2:
        raise VfxError("Points of the wrong shape", expected="(N, 2) (x, y) pixels", found=str(p.shape),
                       fix="pass an (N, 2) array of (x, y) pixel coordinates, one row per point")
    return p @ m[:, :2].T + m[:, 2]


def pixel_aspect_matrix(pixel_aspect: float) -> np.ndarray:
    """The (2, 3) map from a plate's pixels to its desqueezed picture's: x times the pixel aspect (2.0 for a 2x
    anamorphic squeeze), pixel centres kept (the left edge -0.5 stays at -0.5), y unchanged.

    Example:
        >>> pixel_aspect_matrix(2.0)
        array([[2. , 0. , 0.5],
               [0. , 1. , 0. ]])
    """
    p = float(pixel_aspect)
    if not (math.isfinite(p) and p > 0):
        raise ConfigError("Invalid pixel aspect ratio", expected="a positive number (2.0 for a 2x squeeze)",
                          found=repr(pixel_aspect), fix="set plate.pixel_aspect to the plate's squeeze, e.g. 2.0")
    return np.array([[p, 0.0, (p - 1.0) / 2.0], [0.0, 1.0, 0.0]])


def desqueeze(image: np.ndarray, pixel_aspect: float) -> np.ndarray:
    """An anamorphic plate's picture as it is meant to be seen: ``round(W * pixel_aspect)`` pixels wide, the
    same height, resampled through :func:`pixel_aspect_matrix` (cubic when widening, area when narrowing).

    Convention:
        - image (H, W[, C]); returns (H, round(W * pixel_aspect)[, C]) of the same dtype
    """
    height, width = image.shape[:2]
    return warp_to_crop(image, pixel_aspect_matrix(pixel_aspect), (height, max(1, round(width * pixel_aspect))),
                        interpolation="cubic" if pixel_aspect >= 1 else "area")


def affine_scale(matrix: np.ndarray) -> float:
    """The uniform scale of an affine: output pixels per input pixel (sqrt of |det|).

    Example:
        >>> affine_scale(np.array([[0.0, -3.0, 7.0], [3.0, 0.0, 1.0]]))
        3.0
    """
    m = _check_matrix(matrix)
    return math.sqrt(abs(m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]))


def _footprint(matrix_dst_to_src: np.ndarray, dst_shape: tuple[int, int],
               reach: float = 0.0) -> tuple[float, float, float, float]:
    """Bounding box (x_min, y_min, x_max, y_max) in source pixels of a destination image's outer edges
    (grown by ``reach`` destination pixels)."""
    h, w = dst_shape
    lo = -0.5 - reach
    corners = np.array([[lo, lo], [w - 1 - lo, lo], [w - 1 - lo, h - 1 - lo], [lo, h - 1 - lo]])
    p = transform_points(corners, matrix_dst_to_src)
    return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


def plate_roi(matrix: np.ndarray, crop_size: int | tuple[int, int], plate_size: tuple[int, int], *,
              reach: float = 0.0) -> tuple[int, int, int, int]:
    """The plate pixels a crop covers: (y0, x0, y1, x1), ends exclusive, clipped to the plate.

    A pixel is in the region when its centre lies inside the bounding box of the crop's outer edges
    (grown by ``reach`` crop pixels) mapped into the plate. The box is empty (y0 == y1 or x0 == x1) when
    the crop lies off the plate.

    Args:
        matrix: (2, 3) plate -> crop.
        crop_size: r or (h, w) of the crop.
        plate_size: (height, width) of the plate.
        reach: how far beyond its outer edges the crop still shows, in crop pixels: an interpolation
            kernel's reach (0.5 for linear, 1.5 for cubic) when the crop is resampled into the plate.

    Example:
        >>> plate_roi(np.array([[2.0, 0.0, -20.0], [0.0, 2.0, -40.0]]), 8, (100, 100))
        (20, 10, 24, 14)
    """
    crop_shape = parse_size(crop_size, "crop_size")
    plate_shape = parse_size(plate_size, "plate_size")
    x_min, y_min, x_max, y_max = _footprint(invert_affine(matrix), crop_shape, reach)
    y0 = min(max(math.ceil(y_min), 0), plate_shape[0])
    x0 = min(max(math.ceil(x_min), 0), plate_shape[1])
    y1 = max(min(math.floor(y_max) + 1, plate_shape[0]), y0)
    x1 = max(min(math.floor(x_max) + 1, plate_shape[1]), x0)
    return y0, x0, y1, x1


# ---------------------------------------------------------------------------------------------- warping

_SUPPORTED_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)


def parse_size(size: int | tuple[int, int], name: str = "size") -> tuple[int, int]:
    """``size`` as (height, width): an int is a square; anything else must be a positive (h, w) pair."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        shape = (int(size), int(size))
    else:
        try:
            h, w = size  # type: ignore[misc]
            shape = (int(h), int(w))
        except (TypeError, ValueError):
            shape = (0, 0)
    if shape[0] <= 0 or shape[1] <= 0:
        raise ConfigError(f"Invalid {name}", expected="a positive int or a (height, width) pair", found=repr(size),
                          fix=f"give {name} as one positive number of pixels (a square) or a (height, width) pair")
    return shape


def _check_image(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
        raise VfxError(f"{name} of the wrong shape", expected="(H, W) or (H, W, C) numpy pixels",
                       found=str(image.shape), fix="for (B, C, H, W) tensors use warp_to_crop_torch()")
    if image.dtype not in _SUPPORTED_DTYPES:
        raise VfxError(f"{name} of an unsupported dtype", expected="uint8, uint16, float32 or float64",
                       found=str(image.dtype), fix="convert with vfx.io or .astype(np.float32)")
    return image


def _cv2_flag(interpolation: str) -> int:
    import cv2

    flags = {"cubic": cv2.INTER_CUBIC, "linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}
    return flags[interpolation]


def _check_options(interpolation: str, border: str) -> None:
    if interpolation not in ("cubic", "linear", "area", "nearest"):
        raise ConfigError(f"Unknown interpolation {interpolation!r}", expected="cubic, linear, area or nearest",
                          found=repr(interpolation),
                          fix='pass interpolation="cubic" for pictures, "nearest" for mattes and label maps')
    if border not in ("reflect", "constant"):
        raise ConfigError(f"Unknown border mode {border!r}", expected="reflect or constant", found=repr(border),
                          fix='pass border="reflect" (mirror the edge) or "constant" (fill with border_value)')


def _warp_affine(src: np.ndarray, matrix: np.ndarray, dst_shape: tuple[int, int], interpolation: str,
                 border: str, border_value: float) -> np.ndarray:
    """Resample ``src`` into a ``dst_shape`` image through the src -> dst affine ``matrix``."""
    import cv2

    matrix = _check_matrix(matrix)
    if interpolation == "area":
        src, matrix = _prefilter_area(src, matrix, dst_shape)
        interpolation = "linear"
    # We hand OpenCV the dst -> src map ourselves (float64, WARP_INVERSE_MAP) so there is no doubt about
    # which way it goes; OpenCV samples src at m @ (x, y, 1) for every dst pixel centre (x, y), the same
    # integer-centre convention as ours. It rounds those positions to 1/32 px (INTER_BITS = 5).
    inverse = invert_affine(matrix)
    flags = _cv2_flag(interpolation) | cv2.WARP_INVERSE_MAP
    # BORDER_REFLECT_101 is numpy's "reflect" (the edge pixel is not repeated): no seam at the frame edge.
    border_mode = cv2.BORDER_REFLECT_101 if border == "reflect" else cv2.BORDER_CONSTANT
    dsize = (dst_shape[1], dst_shape[0])  # OpenCV wants (width, height)

    def warp(channels: np.ndarray) -> np.ndarray:
        out = cv2.warpAffine(channels, inverse, dsize, flags=flags, borderMode=border_mode,
                             borderValue=(border_value,) * 4)
        return out.reshape(dst_shape + channels.shape[2:])

    if src.ndim == 2 or src.shape[2] <= 4:
        return warp(np.ascontiguousarray(src))
    # OpenCV's cubic warp takes at most 4 channels; mattes and AOVs can carry more.
    return np.concatenate([warp(np.ascontiguousarray(src[..., i:i + 4])) for i in range(0, src.shape[2], 4)],
                          axis=2)


def _prefilter_area(src: np.ndarray, matrix: np.ndarray,
                    dst_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Box-filter ``src`` down to the destination's scale so a linear warp does not alias.

    Only the source region the destination needs (plus a margin) is resized, so shrinking a face out of a
    4K plate costs the face, not the frame. Returns the smaller source and the matrix from it to dst.
    """
    import cv2

    scale = affine_scale(matrix)  # dst pixels per src pixel
    if scale >= 1.0:
        return src, matrix  # enlarging: a box filter is a no-op, linear interpolation is what "area" means
    factor = 1.0 / scale
    height, width = src.shape[:2]
    margin = 2.0 * factor + 2.0
    x_min, y_min, x_max, y_max = _footprint(invert_affine(matrix), dst_shape)
    x0 = int(np.clip(math.floor(x_min - margin), 0, width))
    y0 = int(np.clip(math.floor(y_min - margin), 0, height))
    x1 = int(np.clip(math.ceil(x_max + margin) + 1, 0, width))
    y1 = int(np.clip(math.ceil(y_max + margin) + 1, 0, height))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return src, matrix  # destination lies off the source: only the border value will show
    small_w = max(1, round((x1 - x0) / factor))
    small_h = max(1, round((y1 - y0) / factor))
    region = np.ascontiguousarray(src[y0:y1, x0:x1])
    if region.ndim == 3 and region.shape[2] > 4:
        small = np.concatenate([cv2.resize(np.ascontiguousarray(region[..., i:i + 4]), (small_w, small_h),
                                           interpolation=cv2.INTER_AREA).reshape(small_h, small_w, -1)
                                for i in range(0, region.shape[2], 4)], axis=2)
    else:
        small = cv2.resize(region, (small_w, small_h), interpolation=cv2.INTER_AREA).reshape(
            (small_h, small_w) + region.shape[2:])
    # cv2.resize maps pixel centres as u = (x + 0.5) * s - 0.5 with s = small / region size per axis.
    sx, sy = small_w / (x1 - x0), small_h / (y1 - y0)
    to_small = np.array([[sx, 0.0, (0.5 - x0) * sx - 0.5], [0.0, sy, (0.5 - y0) * sy - 0.5]])
    return small, compose(invert_affine(to_small), matrix)


def warp_to_crop(image: np.ndarray, matrix: np.ndarray, size: int | tuple[int, int], *,
                 interpolation: Interpolation = "cubic", border: Border = "reflect",
                 border_value: float = 0.0) -> np.ndarray:
    """Resample a plate into an aligned face crop.

    Args:
        image: the plate, (H, W) or (H, W, C), any number of channels.
        matrix: (2, 3) plate -> crop, e.g. from :func:`estimate_alignment`.
        size: crop size, r or (height, width).
        interpolation: ``"cubic"`` (default; may overshoot [0, 1] slightly on float data), ``"linear"``,
            ``"area"`` (box-filters the plate region first; use it when the crop is much smaller than the
            face, e.g. 64 px crops of a 600 px face) or ``"nearest"`` (label maps).
        border: ``"reflect"`` (mirror without repeating the edge pixel; no black wedges when a face is at
            the frame edge) or ``"constant"`` (``border_value``).
        border_value: the value outside the plate when ``border="constant"``.

    Returns:
        The crop, (h, w) or (h, w, C), the dtype of ``image`` (integers saturate).

    Raises:
        VfxError: an image that is not (H, W[, C]) numpy of a supported dtype, or a bad matrix.
        ConfigError: an unknown option or a bad size.

    Convention:
        - image: (H, W, C) numpy, any value range; pixel centres at integers, origin top-left.
        - matrix: plate -> crop; crop pixel (x, y) samples the plate at ``invert_affine(matrix)`` of it.
        - size: (height, width), NOT OpenCV's (width, height).

    Example:
        >>> plate = np.zeros((64, 64), np.float32); plate[10, 20] = 1.0
        >>> shift = np.array([[1.0, 0.0, -16.0], [0.0, 1.0, -8.0]])  # plate (20, 10) -> crop (4, 2)
        >>> crop = warp_to_crop(plate, shift, (8, 8), interpolation="linear")
        >>> [int(v) for v in np.argwhere(crop == 1.0)[0]]
        [2, 4]
    """
    _check_options(interpolation, border)
    image = _check_image(image, "image")
    return _warp_affine(image, matrix, parse_size(size, "size"), interpolation, border, border_value)


def _kernel_reach(matrix: np.ndarray) -> float:
    """How far past its outer edges (in crop pixels) a crop can still show when resampled into the plate.

    The widest kernel decides, whatever the interpolation asked for, so the crop, its matte and its layout
    warped back with different kernels land on the very same plate region: cubic reaches 1.5 crop pixels,
    and "area" shrinking a crop larger than the face spans one plate pixel's worth of crop plus half a one.
    """
    return 0.5 + max(affine_scale(matrix), 1.0)


def warp_to_plate(crop: np.ndarray, matrix: np.ndarray, plate_size: tuple[int, int], *, roi: bool = True,
                  interpolation: Interpolation = "cubic", border: Border = "constant",
                  border_value: float = 0.0, box: tuple[int, int, int, int] | None = None) -> PlatePatch:
    """Resample an aligned crop back into plate space, over the face's region only.

    With ``roi=True`` the result covers just the plate pixels the crop can reach: those whose centres fall
    inside the crop's bounding box in the plate, grown by the widest kernel's reach (:func:`plate_roi`
    with ``reach = 0.5 + max(affine_scale(matrix), 1)`` crop pixels, 1.5 for a crop no larger than the
    face), so a crop and its matte warped with different kernels get the same region; nothing of the size of the frame is allocated or
    touched, so paste-back on a 4K plate costs the face. With ``roi=False`` it is a full plate-size canvas
    at offset (0, 0). Pixels the crop does not reach (the corners of a rotated crop's box, or everything
    when ``border="constant"`` and the crop is off the plate) get ``border_value``: warp the matte the
    same way and composite with it.

    Args:
        crop: (h, w) or (h, w, C) aligned crop (or a matte, a layout with ``interpolation="nearest"``).
        matrix: the (2, 3) plate -> crop matrix the crop was made with.
        plate_size: (height, width) of the plate.
        roi: warp only the face's region (default) or the whole plate.
        interpolation: as in :func:`warp_to_crop`.
        border: ``"constant"`` (default: nothing outside the crop) or ``"reflect"``.
        border_value: the value outside the crop when ``border="constant"``.
        box: (y0, x0, y1, x1) plate pixels to warp into instead (e.g. a matte's box inside the region),
            clipped to the plate; overrides ``roi``.

    Returns:
        ``PlatePatch(pixels, (y0, x0))``; ``plate[patch.slices]`` is the region it covers. The region
        may be empty (shape 0 on an axis) when the crop lies off the plate.

    Convention:
        - crop: (h, w, C) numpy; plate_size: (height, width); matrix: plate -> crop, pixel centres at
          integers, origin top-left.

    Example:
        >>> m = np.array([[1.0, 0.0, -30.0], [0.0, 1.0, -20.0]])  # an 8x8 crop of plate x 30..37, y 20..27
        >>> patch = warp_to_plate(np.ones((8, 8), np.float32), m, (1080, 1920), interpolation="nearest")
        >>> patch.pixels.shape, patch.offset  # the crop plus the cubic kernel's reach all round
        ((12, 12), (18, 28))
        >>> float(patch.pixels.sum()), float(patch.pixels[2:10, 2:10].min())
        (64.0, 1.0)
    """
    _check_options(interpolation, border)
    crop = _check_image(crop, "crop")
    plate_shape = parse_size(plate_size, "plate_size")
    if box is not None:
        y0, x0 = min(max(box[0], 0), plate_shape[0]), min(max(box[1], 0), plate_shape[1])
        y1, x1 = max(min(box[2], plate_shape[0]), y0), max(min(box[3], plate_shape[1]), x0)
    elif roi:
        y0, x0, y1, x1 = plate_roi(matrix, crop.shape[:2], plate_shape, reach=_kernel_reach(matrix))
    else:
        y0, x0, y1, x1 = 0, 0, plate_shape[0], plate_shape[1]
    if y1 <= y0 or x1 <= x0:
        return PlatePatch(np.zeros((y1 - y0, x1 - x0) + crop.shape[2:], dtype=crop.dtype), (y0, x0))
    to_patch = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]])
    crop_to_patch = compose(invert_affine(matrix), to_patch)
    pixels = _warp_affine(crop, crop_to_patch, (y1 - y0, x1 - x0), interpolation, border, border_value)
    return PlatePatch(pixels, (y0, x0))


def warp_to_crop_torch(images: torch.Tensor, matrices: torch.Tensor | np.ndarray, size: int | tuple[int, int], *,
                       interpolation: Literal["cubic", "linear", "nearest"] = "linear",
                       border: Border = "reflect", border_value: float = 0.0) -> torch.Tensor:
    """Batched :func:`warp_to_crop` on tensors with ``F.grid_sample``, on the images' device.

    Same matrix convention as the OpenCV path; the two agree to OpenCV's 1/32 px position rounding away
    from the borders. ``"reflect"`` here mirrors about the image edge (the edge pixel repeats, OpenCV's
    BORDER_REFLECT): it differs from :func:`warp_to_crop` only within a pixel or two of the frame edge.
    Half-precision images are sampled in float32 (a half-precision grid is off by a pixel on a 4K plate)
    and returned in their dtype.

    Args:
        images: (B, C, H, W) float tensor, any device.
        matrices: (B, 2, 3) or (2, 3) plate -> crop matrices (numpy or tensor); one matrix serves the batch.
        size: crop size, r or (height, width).
        interpolation: ``"linear"`` (default), ``"cubic"`` (grid_sample's bicubic, a = -0.75 like OpenCV)
            or ``"nearest"``.
        border: ``"reflect"`` or ``"constant"`` (``border_value``).
        border_value: the value outside the plate when ``border="constant"``.

    Returns:
        (B, C, h, w) tensor on the images' device, in their dtype.

    Convention:
        - images: (B, C, H, W); matrices: plate -> crop, pixel centres at integers, origin top-left;
          size: (height, width).

    Example:
        >>> import torch
        >>> plate = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> shift = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, -2.0]])  # crop (0, 0) is plate (1, 2)
        >>> warp_to_crop_torch(plate, shift, (2, 2))[0, 0].tolist()
        [[9.0, 10.0], [13.0, 14.0]]
    """
    import torch
    import torch.nn.functional as F

    if interpolation not in ("cubic", "linear", "nearest"):
        raise ConfigError(f"Unknown interpolation {interpolation!r} for the torch warp",
                          expected="cubic, linear or nearest",
                          fix='for "area" use warp_to_crop() or downscale the plate first', found=repr(interpolation))
    _check_options(interpolation, border)
    if images.ndim != 4:
        raise VfxError("Images of the wrong shape", expected="(B, C, H, W) tensors", found=str(tuple(images.shape)),
                       fix="for (H, W, C) numpy images use warp_to_crop()")
    if not images.is_floating_point():
        raise VfxError("Images of an integer dtype", expected="a float tensor", found=str(images.dtype),
                       fix="convert with .float() / 255")
    batch, _, height, width = images.shape
    h, w = parse_size(size, "size")
    device = images.device
    # float64 keeps the inverse and the grid exact; MPS has no float64, float32 is still 1/4000 px at 4K.
    calc = torch.float32 if device.type == "mps" else torch.float64
    m = torch.as_tensor(matrices, dtype=calc, device=device)
    if m.ndim == 2:
        m = m.unsqueeze(0)
    if m.shape[-2:] != (2, 3) or m.shape[0] not in (1, batch):
        raise VfxError("Matrices of the wrong shape", expected=f"(2, 3) or ({batch}, 2, 3)",
                       found=str(tuple(m.shape)),
                       fix="pass one (2, 3) matrix for all images, or a (B, 2, 3) stack, one matrix per image")
    linear_inv = torch.linalg.inv(m[:, :, :2])
    offset_inv = -(linear_inv @ m[:, :, 2:])
    ys, xs = torch.meshgrid(torch.arange(h, dtype=calc, device=device),
                            torch.arange(w, dtype=calc, device=device), indexing="ij")
    crop_points = torch.stack([xs, ys], dim=-1).reshape(1, -1, 2, 1)  # (1, h*w, 2, 1)
    plate_points = (linear_inv.unsqueeze(1) @ crop_points + offset_inv.unsqueeze(1)).squeeze(-1)  # (B', h*w, 2)
    # align_corners=False: normalised -1 and +1 are the outer edges (-0.5 and W - 0.5) of the plate.
    scale = torch.tensor([2.0 / width, 2.0 / height], dtype=calc, device=device)
    grid = ((plate_points + 0.5) * scale - 1.0).reshape(-1, h, w, 2).expand(batch, h, w, 2)
    work = images.float() if images.dtype in (torch.float16, torch.bfloat16) else images
    mode = {"cubic": "bicubic", "linear": "bilinear", "nearest": "nearest"}[interpolation]
    padding = "reflection" if border == "reflect" else "zeros"
    # Constant borders other than 0: sample (image - value) with zero padding and add the value back.
    shift = border_value if border == "constant" else 0.0
    out = F.grid_sample(work - shift if shift else work, grid.to(work.dtype), mode=mode, padding_mode=padding,
                        align_corners=False)
    if shift:
        out = out + shift
    return out.to(images.dtype)
