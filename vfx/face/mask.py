"""Face masks drawn from the 68 landmarks (the semantic face layout is :mod:`vfx.face.layout`).

The face mask is the polygon of the outer facial landmarks that the blend of the source patent (Fig. 5 of
002, "Synthesis of Source Image with Target Image") fills at every pyramid level: the jaw line, then the
brows raised onto the forehead so the swap covers it. Masks are rasterised with exact pixel-centre
coverage (:func:`rasterise_polygon`), because the blend draws them again at every pyramid level down to a
few pixels across, where OpenCV's ``fillPoly`` (which paints every pixel the outline touches, about half a
pixel too far all round) would be tens of percent too big.

The layout is a label map (:class:`FaceLabel`) of skin, brows, eyes, nose, lips and mouth interior, for the
retouch stages (layout warping, label-conditioned refinement, segmentation-driven edits) and for QC.

Convention:
    - Points are (x, y) pixels, pixel centres at integer coordinates, origin top-left.
    - Sizes are (height, width); a plain ``int`` means a square.
    - Landmarks are (68, 2) in the iBUG 300-W order (see :mod:`vfx.face.types`); "right" is the subject's
      right, the image-left side of a frontal face.
    - An optional ``matrix`` is a (2, 3) plate -> crop affine (:func:`vfx.align.estimate_alignment`); with
      it, landmarks are carried into the crop and the result has the crop's size.
"""

from __future__ import annotations

import math

import numpy as np

from vfx.align.similarity import check_landmarks, parse_size, transform_points
from vfx.errors import ConfigError, VfxError
from vfx.face.types import LANDMARK_GROUPS
from vfx.shot.edits import LABEL_NAMES, FaceLabel  # their home: a shot file's edits name the regions

__all__ = [
    "FaceLabel",
    "LABEL_NAMES",
    "face_axes",
    "face_polygon",
    "rasterise_polygon",
    "polygon_area",
    "face_mask",
]

_SUBSCANLINES = 8
"""Sub-scanlines per pixel row for antialiased coverage; coverage along x is exact."""


# ---------------------------------------------------------------------------------------------- checks

def _check_landmarks(landmarks: np.ndarray, matrix: np.ndarray | None = None) -> np.ndarray:
    points = check_landmarks(landmarks)
    return points if matrix is None else transform_points(points, matrix)


def _check_fraction(value: float, name: str) -> float:
    if not (math.isfinite(value) and value >= 0.0):
        raise ConfigError(f"Invalid {name}", expected="a finite number >= 0", found=repr(value),
                          fix=f"set {name} to 0 or a positive number")
    return float(value)


# ---------------------------------------------------------------------------------------------- geometry

def face_axes(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The face's own axes: (across, up, inter-ocular distance).

    ``across`` is the unit vector from the right eye centre to the left one (image-left to image-right on
    a frontal face), ``up`` is perpendicular to it pointing to the forehead ((0, -1) for an upright face,
    since y grows downwards). A tilted head gets tilted axes.

    Example:
        >>> shape = np.zeros((68, 2)); shape[36:42] = (10.0, 50.0); shape[42:48] = (30.0, 50.0)
        >>> across, up, distance = face_axes(shape)
        >>> across.tolist(), up.tolist(), distance
        ([1.0, 0.0], [0.0, -1.0], 20.0)
    """
    points = _check_landmarks(landmarks)
    right = points[list(LANDMARK_GROUPS["right_eye"])].mean(axis=0)
    left = points[list(LANDMARK_GROUPS["left_eye"])].mean(axis=0)
    eye_line = left - right
    distance = float(np.hypot(*eye_line))
    if distance < 1e-9:
        raise VfxError("Cannot orient a face whose eye centres coincide", expected="two distinct eye centres",
                       fix="check the landmarker's output for this face",
                       found=f"eye centres {distance:.3g} px apart")
    across = eye_line / distance
    up = np.array([across[1], -across[0]])  # across turned 90 degrees towards the top of the image
    return across, up, distance


def face_polygon(landmarks: np.ndarray, *, forehead_raise: float = 0.25) -> np.ndarray:
    """The outer face contour: the jaw line 0..16, then the brows 26..17 raised onto the forehead.

    This is the "polygon formed by the outer facial landmarks" of Fig. 5 of the source patent. The brows
    are walked backwards (26 -> 17) so the outline closes without crossing itself, and moved along the
    face's up direction (perpendicular to the eye line, so a tilted head gets a tilted forehead) by
    ``forehead_raise`` times the brow-to-chin height: the distance from the chin (point 8) to the mean of
    the brow points, measured along the up direction. That measure is scale-free and survives yaw (which
    shrinks the inter-ocular distance); opening the mouth lengthens it, which lifts the forehead edge by
    about 0.1 inter-ocular distances for a wide-open mouth.

    Args:
        landmarks: (68, 2) pixels.
        forehead_raise: how far to raise the brows, as a fraction of the brow-to-chin height (0 keeps
            them on the brows; 0.25 reaches mid-forehead, about 0.55 inter-ocular distances above them).

    Returns:
        (27, 2) float64 polygon, jaw first, counter-clockwise on screen for a frontal face.

    Raises:
        ConfigError: a negative or non-finite ``forehead_raise``.

    Example:
        >>> shape = np.zeros((68, 2)); shape[36:42] = (40.0, 50.0); shape[42:48] = (60.0, 50.0)
        >>> shape[8] = (50.0, 100.0); shape[17:27, 1] = 40.0
        >>> polygon = face_polygon(shape, forehead_raise=0.5)
        >>> polygon.shape, polygon[17].tolist()  # point 26 raised by half of the 60 px brow-to-chin
        ((27, 2), [0.0, 10.0])
    """
    raise_fraction = _check_fraction(forehead_raise, "forehead_raise")
    points = _check_landmarks(landmarks)
    _, up, _ = face_axes(points)
    jaw = points[list(LANDMARK_GROUPS["jaw"])]
    brows = points[list(LANDMARK_GROUPS["right_brow"] + LANDMARK_GROUPS["left_brow"])]
    height = max(float((brows.mean(axis=0) - points[8]) @ up), 0.0)
    forehead = brows[::-1] + raise_fraction * height * up
    return np.concatenate([jaw, forehead])


def polygon_area(polygon: np.ndarray) -> float:
    """Area of a simple polygon in square pixels (the shoelace formula).

    Example:
        >>> polygon_area(np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 3.0]]))
        6.0
    """
    p = np.asarray(polygon, dtype=np.float64)
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


# ---------------------------------------------------------------------------------------------- raster

def _crossings(polygon: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spans of each horizontal scanline that lie inside the polygon (non-zero winding rule).

    Returns (start, end, inside), each (len(ys), edges - 1): the x range between consecutive crossings of
    the scanline and whether it is inside. An edge counts for the scanline when one end is on or above it
    and the other strictly below (the half-open rule), so a vertex on a scanline is counted once.
    """
    x0, y0 = polygon[:, 0], polygon[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    y = ys[:, None]
    downward = (y0 <= y) & (y1 > y)
    upward = (y1 <= y) & (y0 > y)
    crossing = downward | upward
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = np.where(crossing, x0 + (y - y0) / (y1 - y0) * (x1 - x0), np.inf)
    direction = downward.astype(np.int32) - upward.astype(np.int32)
    order = np.argsort(xs, axis=1, kind="stable")
    xs = np.take_along_axis(xs, order, axis=1)
    winding = np.cumsum(np.take_along_axis(direction, order, axis=1), axis=1)
    start, end = xs[:, :-1], xs[:, 1:]
    inside = (winding[:, :-1] != 0) & np.isfinite(end)
    return start, end, inside


def _scatter(diff: np.ndarray, rows: np.ndarray, cols: np.ndarray, values: np.ndarray | float) -> None:
    np.add.at(diff, (rows, np.clip(cols, 0, diff.shape[1] - 1)), values)


def rasterise_polygon(polygon: np.ndarray, size: int | tuple[int, int], *, antialias: bool = True) -> np.ndarray:
    """Fill a polygon into an (h, w) float32 mask in [0, 1].

    With ``antialias=True`` each pixel holds the fraction of its square that the polygon covers (exact
    along x, eight sub-scanlines along y), so the mask's sum matches the polygon's area and its edge moves
    smoothly with sub-pixel landmark motion. With ``antialias=False`` a pixel is 1 when its centre is
    inside, 0 otherwise. Self-intersecting outlines fill by the non-zero winding rule. Only the polygon's
    bounding box is computed, whatever the image size.

    Args:
        polygon: (K, 2) (x, y) vertices, in order, closing back to the first.
        size: r or (height, width) of the mask.
        antialias: coverage (default) or a hard pixel-centre test.

    Returns:
        (h, w) float32 in [0, 1].

    Convention:
        - (x, y) pixels, pixel centres at integers, origin top-left; pixel (x, y) is the square
          [x - 0.5, x + 0.5) x [y - 0.5, y + 0.5).

    Example:
        >>> square = np.array([[0.5, 0.5], [2.5, 0.5], [2.5, 2.5], [0.5, 2.5]])  # pixels 1 and 2 exactly
        >>> rasterise_polygon(square, (4, 4)).tolist()[1]
        [0.0, 1.0, 1.0, 0.0]
        >>> float(rasterise_polygon(square + 0.25, (4, 4)).sum())
        4.0
    """
    h, w = parse_size(size, "mask size")
    p = np.asarray(polygon, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or not np.all(np.isfinite(p)):
        raise VfxError("Invalid polygon", expected="(K, 2) finite (x, y) vertices", found=f"shape {p.shape}",
                       fix="pass the polygon as a (K, 2) array of finite (x, y) points")
    mask = np.zeros((h, w), dtype=np.float32)
    if len(p) < 3:
        return mask
    row0 = max(math.floor(p[:, 1].min()), 0)
    row1 = min(math.ceil(p[:, 1].max()) + 1, h)
    col0 = max(math.floor(p[:, 0].min()), 0)
    col1 = min(math.ceil(p[:, 0].max()) + 1, w)
    if row1 <= row0 or col1 <= col0:
        return mask
    p = p - (col0, 0.0)  # columns relative to the box; rows stay absolute for the scanline positions
    width = col1 - col0
    if antialias:
        k = _SUBSCANLINES
        ys = (np.arange(row0, row1)[:, None] + (np.arange(k) + 0.5) / k - 0.5).ravel()
    else:
        k = 1
        ys = np.arange(row0, row1, dtype=np.float64)
    start, end, inside = _crossings(p, ys)
    # Pixel row of each sub-scanline: the sub-scanlines of a row share one difference array (cumulative
    # sums are linear, so summing first and integrating once is the same as averaging integrated rows).
    rows = np.broadcast_to((np.arange(len(ys)) // k)[:, None], start.shape)[inside]
    start, end = start[inside], end[inside]
    # A difference array per pixel row: +/- at the span ends, a cumulative sum along x fills the spans.
    diff = np.zeros((row1 - row0, width + 1), dtype=np.float64)
    if antialias:
        # Pixel i covers [i - 0.5, i + 0.5). The covered length of a span [a, b) in it is
        # clip(i - (a - 0.5), 0, 1) - clip(i - (b - 0.5), 0, 1): two ramps, each a fractional step
        # spread over two neighbouring entries of the difference array.
        for edge, sign in ((start - 0.5, 1.0 / k), (end - 0.5, -1.0 / k)):
            index = np.floor(edge)
            frac = edge - index
            first = index.astype(np.int64) + 1
            _scatter(diff, rows, first, sign * (1.0 - frac))
            _scatter(diff, rows, first + 1, sign * frac)
    else:
        # Centre test: columns i with a <= i < b.
        _scatter(diff, rows, np.ceil(start).astype(np.int64), 1.0)
        _scatter(diff, rows, np.ceil(end).astype(np.int64), -1.0)
    coverage = np.cumsum(diff[:, :width], axis=1)
    mask[row0:row1, col0:col1] = np.clip(coverage, 0.0, 1.0)
    return mask


def face_mask(landmarks: np.ndarray, size: int | tuple[int, int], *, forehead_raise: float = 0.25,
              matrix: np.ndarray | None = None, antialias: bool = True) -> np.ndarray:
    """The face mask: :func:`face_polygon` filled, in plate space or (with ``matrix``) crop space.

    Args:
        landmarks: (68, 2) plate pixels.
        size: (height, width) of the output: the plate's, or the crop's when ``matrix`` is given.
        forehead_raise: see :func:`face_polygon`.
        matrix: optional (2, 3) plate -> crop matrix; the landmarks are carried through it first.
        antialias: coverage (default) or a hard pixel-centre mask.

    Returns:
        (h, w) float32 in [0, 1], 1 on the face. The blend of Fig. 5 smooths it further per pyramid level.

    Convention:
        - landmarks: (x, y) plate pixels; size: (height, width); matrix: plate -> crop.

    Example:
        >>> from vfx.align import AlignTemplate, estimate_alignment
        >>> shape = np.zeros((68, 2)); shape[36:42] = (40.0, 50.0); shape[42:48] = (60.0, 50.0)
        >>> face_mask(shape, (128, 128)).shape, face_mask(shape, 64, matrix=estimate_alignment(shape)).shape
        ((128, 128), (64, 64))
    """
    points = _check_landmarks(landmarks, matrix)
    return rasterise_polygon(face_polygon(points, forehead_raise=forehead_raise), size, antialias=antialias)

