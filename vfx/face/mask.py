"""Face masks and the semantic face layout, both drawn from the 68 landmarks.

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
import os
from pathlib import Path

import numpy as np

from vfx.align.similarity import check_landmarks, parse_size, transform_points
from vfx.errors import ConfigError, MediaError, VfxError
from vfx.face.types import LANDMARK_GROUPS
from vfx.shot.edits import LABEL_NAMES, FaceLabel  # their home: a shot file's edits name the regions

__all__ = [
    "FaceLabel",
    "LABEL_NAMES",
    "LABEL_COLOURS",
    "PAINT_ORDER",
    "face_axes",
    "face_polygon",
    "rasterise_polygon",
    "polygon_area",
    "face_mask",
    "layout_polygons",
    "face_layout",
    "colourise_layout",
    "read_painted_map",
]

_SUBSCANLINES = 8
"""Sub-scanlines per pixel row for antialiased coverage; coverage along x is exact."""


LABEL_COLOURS: np.ndarray = np.array([
    (0, 0, 0),  # background
    (222, 170, 128),  # skin
    (120, 70, 20),  # brows
    (40, 150, 255),  # eyes
    (255, 220, 0),  # nose
    (230, 30, 60),  # upper lip
    (255, 120, 200),  # lower lip
    (110, 0, 170),  # mouth interior
], dtype=np.uint8)
"""(8, 3) uint8 sRGB colour of each label for contact sheets, indexed by label value."""

PAINT_ORDER: tuple[FaceLabel, ...] = (
    FaceLabel.SKIN, FaceLabel.NOSE, FaceLabel.BROWS, FaceLabel.EYES,
    FaceLabel.UPPER_LIP, FaceLabel.LOWER_LIP, FaceLabel.MOUTH,
)
"""The order :func:`face_layout` paints in; later labels cover earlier ones. The nose goes before brows and
eyes because its widened bridge may touch the inner eye corners and brow heads, which should win; the mouth
interior goes last so an open mouth cuts through the lips."""

# Shape of the parts the landmarks do not outline, as fractions of the inter-ocular distance. They are
# typical adult proportions checked by eye on the layout contact sheet, not measurements.
_BROW_ABOVE = 0.25  # iBUG brow points run along the brow's upper edge; a little skin above catches the hairs
_BROW_OUTER_TAPER = 0.6  # the brow tail is this fraction of the head's thickness
_NOSE_BRIDGE_HALF_WIDTH = (0.10, 0.12, 0.14)  # at points 27, 28, 29 (the bridge narrows between the eyes)
_NOSE_ALA_OUT = 0.08  # the alae reach this far beyond the nostril points 31 and 35


# ---------------------------------------------------------------------------------------------- checks

def _check_landmarks(landmarks: np.ndarray, matrix: np.ndarray | None = None) -> np.ndarray:
    points = check_landmarks(landmarks)
    return points if matrix is None else transform_points(points, matrix)


def _check_fraction(value: float, name: str) -> float:
    if not (math.isfinite(value) and value >= 0.0):
        raise ConfigError(f"Invalid {name}", expected="a finite number >= 0", found=repr(value))
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
                       fix="check the landmarker's output for this face")
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
        raise VfxError("Invalid polygon", expected="(K, 2) finite (x, y) vertices", found=f"shape {p.shape}")
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


# ---------------------------------------------------------------------------------------------- layout

def _thick_brow(brow: np.ndarray, up: np.ndarray, thickness_px: float, inner_first: bool) -> np.ndarray:
    """A brow as a band below its landmark line (plus a little above), thick at the head, thin at the tail."""
    taper = np.linspace(1.0, _BROW_OUTER_TAPER, len(brow))
    if not inner_first:
        taper = taper[::-1]
    thickness = thickness_px * taper[:, None]
    upper = brow + _BROW_ABOVE * thickness * up
    lower = brow - (1.0 - _BROW_ABOVE) * thickness * up
    return np.concatenate([upper, lower[::-1]])


def _nose(points: np.ndarray, across: np.ndarray, up: np.ndarray, distance: float) -> np.ndarray:
    """The nose: the bridge 27-29 widened, the alae pushed out beyond the nostril points, the base 31-35."""
    bridge = points[27:30]
    tip = points[30]
    base = points[31:36]
    half = np.array(_NOSE_BRIDGE_HALF_WIDTH)[:, None] * distance
    ala_out = _NOSE_ALA_OUT * distance

    def side(sign: float, nostril: np.ndarray) -> list[np.ndarray]:
        outward = sign * across
        lift = float((tip - nostril) @ up)  # height of the tip above the nostril point
        return [
            *(bridge + outward * half),
            nostril + outward * (0.6 * ala_out) + up * lift,  # where the ala leaves the nose's side
            nostril + outward * ala_out + up * (0.35 * lift),  # the widest point of the ala
            nostril + outward * (0.5 * ala_out),  # the alar base, where the ala meets the lip
        ]

    right = side(-1.0, base[0])  # image-left side (the subject's right), from the bridge down
    left = side(1.0, base[-1])
    return np.array([*right, *base, *left[::-1]])


def layout_polygons(landmarks: np.ndarray, *, forehead_raise: float = 0.25, brow_thickness: float = 0.12,
                    matrix: np.ndarray | None = None) -> dict[FaceLabel, list[np.ndarray]]:
    """The polygons :func:`face_layout` fills, per label (plate or crop pixels).

    - SKIN: :func:`face_polygon`.
    - BROWS: each brow line (17-21, 22-26) thickened into a band ``brow_thickness`` inter-ocular distances
      thick at the head, tapering towards the tail; it lies mostly below the points, which run along the
      brow's upper edge in the iBUG scheme.
    - EYES: the eye contours 36-41 and 42-47.
    - NOSE: the bridge 27-29 widened (the bridge narrows between the eyes), the alae pushed out beyond the
      nostril points 31 and 35, the base 31-35.
    - UPPER_LIP: the outer upper contour 48-54 and back along the inner upper contour 64-60.
    - LOWER_LIP: the outer lower contour 54-59, 48 and back along the inner lower contour 60, 67-64.
    - MOUTH: the inner lip contour 60-67 (zero area when the lips are closed).

    Args:
        landmarks: (68, 2) plate pixels.
        forehead_raise: see :func:`face_polygon`.
        brow_thickness: brow thickness at the head, as a fraction of the inter-ocular distance.
        matrix: optional (2, 3) plate -> crop matrix.

    Returns:
        Polygons per label, each (K, 2) float64.
    """
    thickness = _check_fraction(brow_thickness, "brow_thickness")
    points = _check_landmarks(landmarks, matrix)
    across, up, distance = face_axes(points)
    return {
        FaceLabel.SKIN: [face_polygon(points, forehead_raise=forehead_raise)],
        FaceLabel.BROWS: [_thick_brow(points[17:22], up, thickness * distance, inner_first=False),
                          _thick_brow(points[22:27], up, thickness * distance, inner_first=True)],
        FaceLabel.EYES: [points[36:42], points[42:48]],
        FaceLabel.NOSE: [_nose(points, across, up, distance)],
        FaceLabel.UPPER_LIP: [points[[48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60]]],
        FaceLabel.LOWER_LIP: [points[[54, 55, 56, 57, 58, 59, 48, 60, 67, 66, 65, 64]]],
        FaceLabel.MOUTH: [points[60:68]],
    }


def face_layout(landmarks: np.ndarray, size: int | tuple[int, int], *, forehead_raise: float = 0.25,
                matrix: np.ndarray | None = None, brow_thickness: float = 0.12) -> np.ndarray:
    """The semantic face layout: a label map of :class:`FaceLabel` values drawn from the landmarks.

    Each part of :func:`layout_polygons` is filled by the pixel-centre rule and painted in
    :data:`PAINT_ORDER` (skin, nose, brows, eyes, upper lip, lower lip, mouth interior), later labels over
    earlier ones. Every part is clipped to the face polygon, so no label ever lies outside the hard face
    mask (``face_mask(..., antialias=False)``). The result depends on the landmarks only: the same landmarks give the same
    map, bit for bit.

    Args:
        landmarks: (68, 2) plate pixels.
        size: (height, width) of the map: the plate's, or the crop's when ``matrix`` is given.
        forehead_raise: see :func:`face_polygon`.
        matrix: optional (2, 3) plate -> crop matrix.
        brow_thickness: see :func:`layout_polygons`.

    Returns:
        (h, w) uint8 label map.

    Convention:
        - landmarks: (x, y) plate pixels; size: (height, width); matrix: plate -> crop.

    Example:
        >>> shape = np.zeros((68, 2)); shape[36:42] = (40.0, 50.0); shape[42:48] = (60.0, 50.0)
        >>> face_layout(shape, (32, 32)).dtype
        dtype('uint8')
    """
    shape = parse_size(size, "mask size")
    polygons = layout_polygons(landmarks, forehead_raise=forehead_raise, brow_thickness=brow_thickness,
                               matrix=matrix)
    label_map = np.zeros(shape, dtype=np.uint8)
    face = rasterise_polygon(polygons[FaceLabel.SKIN][0], shape, antialias=False) > 0.5
    for label in PAINT_ORDER:
        for polygon in polygons[label]:
            region = face if label is FaceLabel.SKIN else face & (rasterise_polygon(polygon, shape,
                                                                                   antialias=False) > 0.5)
            label_map[region] = label
    return label_map


def colourise_layout(label_map: np.ndarray) -> np.ndarray:
    """An (h, w, 3) uint8 sRGB picture of a label map in :data:`LABEL_COLOURS`, for contact sheets.

    Example:
        >>> colourise_layout(np.array([[0, 4]], np.uint8)).tolist()
        [[[0, 0, 0], [255, 220, 0]]]
    """
    labels = np.asarray(label_map)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise VfxError("Invalid label map", expected="(h, w) integer labels", found=f"{labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(FaceLabel)):
        raise VfxError("Unknown labels in the label map", expected=f"values 0..{len(FaceLabel) - 1}",
                       found=f"values {int(labels.min())}..{int(labels.max())}")
    return LABEL_COLOURS[labels]


def read_painted_map(path: str | os.PathLike[str], size: tuple[int, int]) -> np.ndarray:
    """Read a painted label map: label values 0..7 (grey) or the layout colours (RGB), ``size`` exactly.

    Raises:
        MediaError: missing or unreadable file, the wrong size, or values that are no label.
    """
    import cv2

    path = Path(path)
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None
    if pixels is None:
        raise MediaError(f"Cannot read the painted label map {path}", expected="a PNG label map",
                         fix="paint it on the keyframe's layout preview (`vfx retouch SHOT --preview`)")
    if pixels.shape[:2] != tuple(size):
        raise MediaError(f"Painted label map {path} is the wrong size",
                         expected=f"{size[1]}x{size[0]} (width x height), the retouch crop",
                         found=f"{pixels.shape[1]}x{pixels.shape[0]}",
                         fix="paint on the layout the preview writes, at the shot's retouch resolution")
    if pixels.ndim == 2:
        if pixels.max() >= len(LABEL_NAMES):
            raise MediaError(f"Painted label map {path} has values that are no label",
                             expected=f"values 0..{len(LABEL_NAMES) - 1} ({', '.join(LABEL_NAMES)})",
                             found=f"values up to {int(pixels.max())}")
        return pixels.astype(np.uint8)
    rgb = pixels[:, :, 2::-1].astype(np.int32)  # OpenCV reads BGR(A)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    palette = (LABEL_COLOURS[:, 0].astype(np.int32) << 16) | (LABEL_COLOURS[:, 1].astype(np.int32) << 8) | LABEL_COLOURS[:, 2]
    lookup = {int(c): i for i, c in enumerate(palette)}
    unknown = sorted(set(np.unique(codes).tolist()) - set(lookup))
    if unknown:
        found = ", ".join(f"#{c:06x}" for c in unknown[:5])
        raise MediaError(f"Painted label map {path} has colours that are no label",
                         expected="only the layout colours (see the preview's legend)", found=found)
    labels = np.zeros(codes.shape, np.uint8)
    for code, label in lookup.items():
        labels[codes == code] = label
    return labels
