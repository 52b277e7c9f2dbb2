"""Face masks (the Fig. 5 polygon of the outer landmarks), exact rasterisation and the semantic face layout."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from vfx.align import AlignTemplate, estimate_alignment, transform_points, warp_to_crop
from vfx.errors import ConfigError, VfxError
from vfx.face.layout import (
    LABEL_COLOURS,
    LABEL_NAMES,
    PAINT_ORDER,
    FaceLabel,
    colourise_layout,
    face_layout,
    layout_polygons,
)
from vfx.face.mask import face_axes, face_mask, face_polygon, polygon_area, rasterise_polygon

from face_shapes import MEAN_SHAPE  # tests/ is on sys.path

LANDMARK_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "landmarks"

PLATE_SHAPE = (480, 640)


def rotation(angle_deg: float, centre: np.ndarray) -> np.ndarray:
    a = math.radians(angle_deg)
    linear = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.concatenate([linear, (centre - linear @ centre)[:, None]], axis=1)


def plate_face(scale: float = 200.0, angle_deg: float = 0.0, centre: tuple[float, float] = (320.0, 250.0)) -> np.ndarray:
    points = (MEAN_SHAPE - MEAN_SHAPE.mean(axis=0)) * scale + np.asarray(centre)
    return transform_points(points, rotation(angle_deg, np.asarray(centre)))


def closed_mouth(landmarks: np.ndarray) -> np.ndarray:
    """The same face with the inner lips pressed together (65, 66, 67 onto 63, 62, 61)."""
    closed = landmarks.copy()
    closed[[65, 66, 67]] = landmarks[[63, 62, 61]]
    return closed


def segments_cross(p1, p2, q1, q2) -> bool:
    def side(a, b, c):
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    return side(p1, p2, q1) * side(p1, p2, q2) < 0 and side(q1, q2, p1) * side(q1, q2, p2) < 0


def is_simple(polygon: np.ndarray) -> bool:
    """No two non-adjacent edges of the closed polygon cross."""
    n = len(polygon)
    edges = [(polygon[i], polygon[(i + 1) % n]) for i in range(n)]
    return not any(segments_cross(*edges[i], *edges[j])
                   for i in range(n) for j in range(i + 2, n) if not (i == 0 and j == n - 1))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# ---------------------------------------------------------------------------------------------- polygon

def test_face_polygon_is_jaw_then_raised_brows_and_closes_simply():
    landmarks = plate_face()
    polygon = face_polygon(landmarks)
    assert polygon.shape == (27, 2)
    np.testing.assert_array_equal(polygon[:17], landmarks[:17])  # the jaw line, 0..16
    assert is_simple(polygon)  # brows walked 26..17, so the outline closes without crossing itself
    assert polygon_area(polygon) == pytest.approx(polygon_area(np.concatenate([landmarks[:17], landmarks[26:16:-1]])),
                                                  rel=0.5)  # same face, a bit more forehead
    assert np.all(polygon >= 0) and np.all(polygon[:, 0] < PLATE_SHAPE[1]) and np.all(polygon[:, 1] < PLATE_SHAPE[0])


def test_forehead_is_raised_by_the_fraction_of_brow_to_chin_height():
    landmarks = plate_face()
    brows = landmarks[26:16:-1]
    np.testing.assert_allclose(face_polygon(landmarks, forehead_raise=0.0)[17:], brows)
    _, up, _ = face_axes(landmarks)
    assert up[1] < -0.999  # an upright face (the mean shape's eye line is tilted by about a degree)
    height = (landmarks[17:27].mean(axis=0) - landmarks[8]) @ up  # brow-to-chin, along the face's up
    assert height == pytest.approx(0.83 * 200, rel=0.05)
    for fraction in (0.1, 0.25, 0.5):
        forehead = face_polygon(landmarks, forehead_raise=fraction)[17:]
        np.testing.assert_allclose(forehead - brows, np.tile(fraction * height * up, (10, 1)), atol=1e-9)
    with pytest.raises(ConfigError):
        face_polygon(landmarks, forehead_raise=-0.1)


@pytest.mark.parametrize("angle", [-35.0, 12.0, 90.0, 180.0])
def test_forehead_follows_the_head_tilt(angle):
    upright = plate_face()
    turn = rotation(angle, np.array([320.0, 250.0]))
    tilted = transform_points(upright, turn)
    # The polygon turns with the head (a tilted head gets a tilted forehead) ...
    np.testing.assert_allclose(face_polygon(tilted), transform_points(face_polygon(upright), turn), atol=1e-9)
    # ... raised perpendicular to the eye line.
    across, up, _ = face_axes(tilted)
    lift = face_polygon(tilted)[17:] - tilted[26:16:-1]
    np.testing.assert_allclose(lift @ across, 0.0, atol=1e-9)
    assert np.all(lift @ up > 0)
    _, upright_up, _ = face_axes(upright)
    np.testing.assert_allclose(up, turn[:, :2] @ upright_up, atol=1e-12)


# ---------------------------------------------------------------------------------------------- raster

def test_rasterised_area_matches_the_shoelace_area():
    for scale in (200.0, 40.0, 10.0):  # a face on the plate, and two coarse pyramid levels
        polygon = face_polygon(plate_face(scale=scale, angle_deg=21.0, centre=(200.3, 190.7)))
        area = polygon_area(polygon)
        soft = rasterise_polygon(polygon, (400, 420))
        hard = rasterise_polygon(polygon, (400, 420), antialias=False)
        assert soft.dtype == np.float32 and soft.min() >= 0.0 and soft.max() <= 1.0
        # Coverage is exact along x and sampled on 8 sub-scanlines along y; the centre test is exact on
        # average. (OpenCV's antialiased fillPoly is +1.4 %, +6 % and +30 % off at these three sizes.)
        assert soft.sum() == pytest.approx(area, rel=1e-3)
        assert hard.sum() == pytest.approx(area, rel=0.01 if scale > 10 else 0.03)


def test_rasterisation_follows_pixel_centres():
    square = np.array([[1.5, 0.5], [4.5, 0.5], [4.5, 2.5], [1.5, 2.5]])  # pixels x 2..4, y 1..2 exactly
    expected = np.zeros((4, 6), np.float32)
    expected[1:3, 2:5] = 1.0
    np.testing.assert_array_equal(rasterise_polygon(square, (4, 6)), expected)
    np.testing.assert_array_equal(rasterise_polygon(square, (4, 6), antialias=False), expected)
    quarter = rasterise_polygon(square + 0.25, (4, 6))
    assert quarter[1, 2] == pytest.approx(0.75 * 0.75) and quarter[1, 5] == pytest.approx(0.25 * 0.75)
    # Sub-pixel motion moves the soft mask's centroid by exactly as much.
    polygon = face_polygon(plate_face(scale=60.0, centre=(50.0, 50.0)))
    ys, xs = np.mgrid[:100, :100]

    def centroid(mask):
        return np.array([(mask * xs).sum(), (mask * ys).sum()]) / mask.sum()

    shift = centroid(rasterise_polygon(polygon + (0.3, 0.1), 100)) - centroid(rasterise_polygon(polygon, 100))
    np.testing.assert_allclose(shift, (0.3, 0.1), atol=0.01)


def test_rasterisation_clips_to_the_image_and_handles_degenerate_input():
    polygon = face_polygon(plate_face(centre=(10.0, 470.0)))  # mostly off the bottom-left of the plate
    mask = rasterise_polygon(polygon, PLATE_SHAPE)
    assert mask.shape == PLATE_SHAPE and 0 < mask.sum() < polygon_area(polygon)
    assert not rasterise_polygon(polygon + 5000, PLATE_SHAPE).any()
    assert not rasterise_polygon(np.array([[1.0, 1.0], [5.0, 5.0]]), 8).any()
    line = np.array([[1.0, 1.0], [6.0, 1.0], [6.0, 1.0], [1.0, 1.0]])  # zero area
    assert not rasterise_polygon(line, 8).any() and not rasterise_polygon(line, 8, antialias=False).any()
    with pytest.raises(VfxError):
        rasterise_polygon(np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 0.0]]), 8)


def test_face_mask_sizes_are_height_width():
    landmarks = plate_face(scale=80.0, centre=(150.0, 60.0))
    mask = face_mask(landmarks, (120, 200))
    assert mask.shape == (120, 200) and mask.dtype == np.float32
    ys, xs = np.nonzero(mask > 0.5)
    assert abs(xs.mean() - 150.0) < 10 and abs(ys.mean() - 60.0) < 15


@pytest.mark.parametrize("angle", [0.0, 17.0, -40.0])
def test_crop_mask_equals_the_plate_mask_warped(angle):
    landmarks = plate_face(angle_deg=angle)
    m = estimate_alignment(landmarks, AlignTemplate(size=256))
    in_crop = face_mask(landmarks, 256, matrix=m)
    warped = warp_to_crop(face_mask(landmarks, PLATE_SHAPE), m, 256, interpolation="linear", border="constant")
    assert iou(in_crop > 0.5, warped > 0.5) > 0.97
    assert in_crop.sum() == pytest.approx(warped.sum(), rel=0.01)
    np.testing.assert_allclose(face_mask(transform_points(landmarks, m), 256), in_crop)


# ---------------------------------------------------------------------------------------------- layout

def test_label_names_and_colours():
    assert LABEL_NAMES == ("background", "skin", "brows", "eyes", "nose", "upper_lip", "lower_lip", "mouth")
    assert [int(label) for label in FaceLabel] == list(range(8))
    assert LABEL_COLOURS.shape == (8, 3) and len({tuple(c) for c in LABEL_COLOURS}) == 8
    assert PAINT_ORDER[0] is FaceLabel.SKIN and PAINT_ORDER[-1] is FaceLabel.MOUTH
    assert set(PAINT_ORDER) == set(FaceLabel) - {FaceLabel.BACKGROUND}


def test_layout_of_an_open_mouth_has_every_label_in_place():
    landmarks = plate_face()
    layout = face_layout(landmarks, PLATE_SHAPE)
    assert layout.dtype == np.uint8 and layout.shape == PLATE_SHAPE
    assert set(np.unique(layout).tolist()) == set(range(8))

    def centre(label):
        ys, xs = np.nonzero(layout == label)
        return xs.mean(), ys.mean()

    # Top to bottom: brows, eyes, nose, upper lip, mouth interior, lower lip (lips not swapped).
    heights = [centre(label)[1] for label in (FaceLabel.BROWS, FaceLabel.EYES, FaceLabel.NOSE,
                                              FaceLabel.UPPER_LIP, FaceLabel.MOUTH, FaceLabel.LOWER_LIP)]
    assert heights == sorted(heights)
    # Both brows and both eyes, one each side of the nose.
    nose_x = centre(FaceLabel.NOSE)[0]
    for label in (FaceLabel.BROWS, FaceLabel.EYES):
        xs = np.nonzero(layout == label)[1]
        assert (xs < nose_x).sum() > 50 and (xs > nose_x).sum() > 50
    # The nose is wider than the nostril points (the alae), the brows thicker than a line.
    nose_cols = np.nonzero((layout == FaceLabel.NOSE).any(axis=0))[0]
    assert nose_cols.max() - nose_cols.min() > 1.1 * (landmarks[35, 0] - landmarks[31, 0])
    assert (layout == FaceLabel.BROWS).sum() > 0.05 * 200 * (landmarks[21, 0] - landmarks[17, 0])


def test_closed_mouth_has_no_mouth_interior():
    layout = face_layout(closed_mouth(plate_face()), PLATE_SHAPE)
    assert not (layout == FaceLabel.MOUTH).any()
    assert (layout == FaceLabel.UPPER_LIP).any() and (layout == FaceLabel.LOWER_LIP).any()


@pytest.mark.parametrize("angle", [0.0, 25.0])
def test_layout_labels_lie_inside_the_face_polygon(angle):
    landmarks = plate_face(angle_deg=angle)
    layout = face_layout(landmarks, PLATE_SHAPE)
    face = face_mask(landmarks, PLATE_SHAPE, antialias=False) > 0.5
    assert not (layout[~face]).any()
    assert np.array_equal(layout > 0, face)  # and the skin fills the rest of it


def test_layout_is_deterministic_and_works_in_crop_space():
    landmarks = plate_face(angle_deg=-9.0)
    first = face_layout(landmarks, PLATE_SHAPE)
    assert np.array_equal(first, face_layout(landmarks.copy(), PLATE_SHAPE))
    m = estimate_alignment(landmarks, AlignTemplate(size=256))
    in_crop = face_layout(landmarks, 256, matrix=m)
    assert set(np.unique(in_crop).tolist()) == set(range(8))
    warped = warp_to_crop(first, m, 256, interpolation="nearest", border="constant")
    assert (in_crop == warped).mean() > 0.98


def test_layout_polygons_and_options():
    polygons = layout_polygons(plate_face())
    assert set(polygons) == set(FaceLabel) - {FaceLabel.BACKGROUND}
    assert len(polygons[FaceLabel.BROWS]) == 2 and len(polygons[FaceLabel.EYES]) == 2
    thin = (face_layout(plate_face(), PLATE_SHAPE, brow_thickness=0.05) == FaceLabel.BROWS).sum()
    thick = (face_layout(plate_face(), PLATE_SHAPE, brow_thickness=0.2) == FaceLabel.BROWS).sum()
    assert thick > 2 * thin
    with pytest.raises(ConfigError):
        face_layout(plate_face(), PLATE_SHAPE, brow_thickness=-1.0)
    with pytest.raises(VfxError, match=r"\(68, 2\)"):
        face_layout(np.zeros((5, 2)), PLATE_SHAPE)


def test_colourise_layout():
    layout = face_layout(plate_face(), PLATE_SHAPE)
    picture = colourise_layout(layout)
    assert picture.shape == PLATE_SHAPE + (3,) and picture.dtype == np.uint8
    np.testing.assert_array_equal(picture[layout == FaceLabel.NOSE][0], LABEL_COLOURS[FaceLabel.NOSE])
    with pytest.raises(VfxError):
        colourise_layout(np.full((2, 2), 9, np.uint8))


# ---------------------------------------------------------------------------------------------- real faces

def read_dlib_xml(path: Path) -> list[np.ndarray]:
    return [np.array([[float(p.get("x")), float(p.get("y"))] for p in sorted(box.iter("part"), key=lambda p: int(p.get("name")))])
            for box in ET.parse(path).getroot().iter("box")]


def test_real_faces_masks_and_layouts():
    xml = LANDMARK_DATA / "training_with_face_landmarks.xml"
    if not xml.is_file():
        pytest.skip(f"real landmark data not found at {LANDMARK_DATA} (it lives beside the repository, not in it)")
    template = AlignTemplate(size=256)
    for landmarks in read_dlib_xml(xml):
        m = estimate_alignment(landmarks, template)
        in_crop = face_mask(landmarks, 256, matrix=m)
        height, width = int(landmarks[:, 1].max() * 1.5) + 64, int(landmarks[:, 0].max() * 1.5) + 64
        warped = warp_to_crop(face_mask(landmarks, (height, width)), m, 256, interpolation="linear", border="constant")
        assert iou(in_crop > 0.5, warped > 0.5) > 0.97  # though the faces are small (37-109 px in the plate)
        layout = face_layout(landmarks, 256, matrix=m)
        present = set(np.unique(layout).tolist())
        assert present >= {FaceLabel.SKIN, FaceLabel.BROWS, FaceLabel.EYES, FaceLabel.NOSE, FaceLabel.UPPER_LIP,
                            FaceLabel.LOWER_LIP}
        assert not layout[in_crop == 0].any()
