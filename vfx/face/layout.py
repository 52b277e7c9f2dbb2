"""The semantic face layout: a label map (:class:`FaceLabel`) of skin, brows, eyes, nose, lips and mouth interior
drawn from the 68 landmarks, for the retouch stages (layout warping, label-conditioned refinement), the latent
edits' segmentation and QC; its colours, and painted label maps read back.

Convention: as :mod:`vfx.face.mask` (points (x, y) at pixel centres, sizes (height, width), iBUG 300-W order).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vfx.align.similarity import parse_size
from vfx.errors import MediaError, VfxError
from vfx.face.mask import _check_fraction, _check_landmarks, face_axes, face_polygon, rasterise_polygon
from vfx.shot.edits import LABEL_NAMES, FaceLabel  # their home: a shot file's edits name the regions

__all__ = ["LABEL_COLOURS", "LABEL_NAMES", "PAINT_ORDER", "FaceLabel", "colourise_layout", "face_layout", "layout_polygons",
           "read_painted_map"]

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
        raise VfxError("Invalid label map", expected="(h, w) integer labels", found=f"{labels.dtype} {labels.shape}",
                       fix="pass a single-channel map of integer labels, such as face_layout returns")
    if labels.size and (labels.min() < 0 or labels.max() >= len(FaceLabel)):
        raise VfxError("Unknown labels in the label map", expected=f"values 0..{len(FaceLabel) - 1}",
                       found=f"values {int(labels.min())}..{int(labels.max())}",
                       fix=f"keep the labels within 0..{len(FaceLabel) - 1} (the FaceLabel values)")
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
                         found="a folder" if path.is_dir() else "no file" if not path.exists() else "not a readable image",
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
                             found=f"values up to {int(pixels.max())}",
                             fix=f"paint only grey values 0..{len(LABEL_NAMES) - 1}, antialiasing off")
        return pixels.astype(np.uint8)
    rgb = pixels[:, :, 2::-1].astype(np.int32)  # OpenCV reads BGR(A)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    palette = (LABEL_COLOURS[:, 0].astype(np.int32) << 16) | (LABEL_COLOURS[:, 1].astype(np.int32) << 8) | LABEL_COLOURS[:, 2]
    lookup = {int(c): i for i, c in enumerate(palette)}
    unknown = sorted(set(np.unique(codes).tolist()) - set(lookup))
    if unknown:
        found = ", ".join(f"#{c:06x}" for c in unknown[:5])
        raise MediaError(f"Painted label map {path} has colours that are no label",
                         expected="only the layout colours (see the preview's legend)", found=found,
                         fix="paint only in the legend's colours, with antialiasing and colour management off")
    labels = np.zeros(codes.shape, np.uint8)
    for code, label in lookup.items():
        labels[codes == code] = label
    return labels
