"""Face identity descriptors: dlib's ResNet on the bundled portrait and on the real stills, distances, means
and the errors for bad inputs and a missing model file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vfx.demo import load_portrait
from vfx.errors import ConfigError, VfxError
from vfx.face.identity import (
    DESCRIPTOR_SIZE,
    FACE_DESCRIPTOR_FILE,
    SAME_PERSON_DISTANCE,
    FaceDescriber,
    descriptor_distance,
    mean_descriptor,
)
from vfx.face.landmark import (
    DlibLandmarker,
    create_landmarker,
    jitter_average,
    refine_boxes,
)

from conftest import SHARED_DATA

STILLS = SHARED_DATA / "stills"


@pytest.fixture(scope="module")
def landmarker() -> DlibLandmarker:
    lm = create_landmarker("dlib")
    assert isinstance(lm, DlibLandmarker)
    return lm


@pytest.fixture(scope="module")
def describer() -> FaceDescriber:
    return FaceDescriber()


def _landmarks(landmarker: DlibLandmarker, image: np.ndarray) -> np.ndarray:
    """Jitter-averaged landmarks of the best face, as the extract stage finds them."""
    boxes = landmarker.detect(image)
    assert boxes, "no face found"
    box = refine_boxes(landmarker, image, boxes[:1])[0]
    return jitter_average(landmarker, image, box)


def _shift_scale(image: np.ndarray, scale: float, dx: float, dy: float) -> np.ndarray:
    """``image`` scaled about its origin and moved by a sub-pixel offset, same size (borders reflected)."""
    matrix = np.array([[scale, 0.0, dx], [0.0, scale, dy]])
    height, width = image.shape[:2]
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _read_still(name: str) -> np.ndarray:
    path = STILLS / f"{name}.jpg"
    if not path.is_file():
        pytest.skip(f"real test still {path} not found (the stills live beside the repository, not in it)")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return np.ascontiguousarray(bgr[..., ::-1])


# ------------------------------------------------------------------------------------------------ fast


def test_portrait_matches_its_mirrored_shifted_copy(landmarker: DlibLandmarker, describer: FaceDescriber) -> None:
    portrait = load_portrait("hopper")  # float32 [0, 1]
    copy = _shift_scale(np.ascontiguousarray(portrait[:, ::-1]), 0.92, 13.3, -7.6)
    a = describer.describe(portrait, _landmarks(landmarker, portrait))
    b = describer.describe(copy, _landmarks(landmarker, copy))
    assert a.shape == (DESCRIPTOR_SIZE,) and a.dtype == np.float64
    assert descriptor_distance(a, b) < SAME_PERSON_DISTANCE / 2


def test_two_portraits_are_different_people(landmarker: DlibLandmarker, describer: FaceDescriber) -> None:
    hopper, astronaut = load_portrait("hopper"), load_portrait("astronaut")
    a = describer.describe(hopper, _landmarks(landmarker, hopper))
    b = describer.describe(astronaut, _landmarks(landmarker, astronaut))
    assert descriptor_distance(a, b) > SAME_PERSON_DISTANCE


def test_describe_many_matches_describe_and_uint8_matches_float(
    landmarker: DlibLandmarker, describer: FaceDescriber
) -> None:
    portrait = load_portrait("hopper")
    points = _landmarks(landmarker, portrait)
    single = describer.describe(portrait, points)
    batch = describer.describe_many(portrait, np.stack([points, points + 3.0]))
    assert batch.shape == (2, DESCRIPTOR_SIZE)
    np.testing.assert_allclose(batch[0], single, atol=1e-6)
    as_uint8 = np.rint(portrait * 255).astype(np.uint8)
    np.testing.assert_allclose(describer.describe(as_uint8, points), single, atol=1e-6)
    assert describer.describe_many(portrait, []).shape == (0, DESCRIPTOR_SIZE)


def test_distance_broadcasts_and_mean() -> None:
    rng = np.random.default_rng(0)
    descs = rng.normal(size=(5, DESCRIPTOR_SIZE))
    mean = mean_descriptor(list(descs))
    np.testing.assert_allclose(mean, descs.mean(axis=0))
    distances = descriptor_distance(descs, mean)
    assert isinstance(distances, np.ndarray) and distances.shape == (5,)
    assert descriptor_distance(descs[0], descs[0]) == 0.0
    assert descriptor_distance(descs[0], descs[1]) == pytest.approx(float(np.linalg.norm(descs[0] - descs[1])))
    np.testing.assert_allclose(mean_descriptor(descs[0]), descs[0])


def test_bad_inputs_raise_vfx_errors(describer: FaceDescriber) -> None:
    image = np.zeros((64, 64, 3), np.float32)
    with pytest.raises(VfxError, match="wrong shape"):
        describer.describe(image, np.zeros((5, 2)))
    with pytest.raises(ConfigError):
        descriptor_distance(np.zeros(128), np.zeros(64))
    with pytest.raises(ConfigError):
        mean_descriptor([])
    with pytest.raises(ConfigError):
        FaceDescriber(num_jitters=-1)
    with pytest.raises(ConfigError):
        FaceDescriber(padding=float("nan"))


def test_missing_model_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=FACE_DESCRIPTOR_FILE) as info:
        FaceDescriber(tmp_path)
    assert str(tmp_path) in str(info.value)


# ------------------------------------------------------------------------------------------------ real stills


def test_real_stills_same_person_close_different_people_far(
    landmarker: DlibLandmarker, describer: FaceDescriber
) -> None:
    obama, biden = _read_still("obama"), _read_still("biden")
    obama_moved = _shift_scale(obama, 0.9, 20.5, -10.3)
    d_obama = describer.describe(obama, _landmarks(landmarker, obama))
    d_moved = describer.describe(obama_moved, _landmarks(landmarker, obama_moved))
    d_biden = describer.describe(biden, _landmarks(landmarker, biden))
    same, different = descriptor_distance(d_obama, d_moved), descriptor_distance(d_obama, d_biden)
    assert same < SAME_PERSON_DISTANCE, same
    assert different > SAME_PERSON_DISTANCE, different
