"""Faceset curation: `vfx faceset report` figures, `vfx faceset exclude` (honoured by re-extraction and training),
landmark overrides (overrides.jsonl) that re-extraction keeps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.test_extract import _frames, _write_sequence
from vfx.cli import entrypoint
from vfx.comb.data import PersonaData
from vfx.errors import ConfigError, MediaError
from vfx.faceset import Faceset
from vfx.faceset.curate import exclude_faces, head_pose, measure_faceset, near_duplicates, write_report
from vfx.faceset.extract import ExtractConfig, MediaSource, extract_faceset
from vfx.faceset.store import LandmarkOverride, apply_overrides, read_overrides, write_overrides
from vfx.shot import FrameRange

from conftest import CLIPS

FAST = ExtractConfig(workers=1, chunk_frames=8, crop_size=64, jitter_shifts=0)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    """A 6-frame PNG sequence of the bundled portrait moving like a head."""
    return _write_sequence(tmp_path_factory.mktemp("seq"), _frames(6))


@pytest.fixture(scope="module")
def extracted(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fs") / "fs"
    extract_faceset(MediaSource(source), out, config=FAST)
    return out


@pytest.fixture
def faceset(extracted, tmp_path) -> Path:
    copy = tmp_path / "fs"
    shutil.copytree(extracted, copy)
    return copy


def test_head_pose_signs_and_a_frontal_face(extracted):
    record = Faceset.open(extracted).faces()[0]
    points = np.asarray(record.crop_landmarks)
    yaw, pitch = head_pose(points, 64)
    assert abs(yaw) < 15 and abs(pitch) < 25, (yaw, pitch)
    nose = list(range(27, 36))
    turned = points.copy()
    turned[nose, 0] += 4.0  # the nose moves towards the picture's right: the head turns right
    assert head_pose(turned, 64)[0] > yaw + 5
    raised = points.copy()
    raised[nose, 1] -= 3.0  # the nose moves up: the head turns up
    assert head_pose(raised, 64)[1] > pitch + 3


def test_near_duplicate_rule():
    rng = np.random.default_rng(0)
    a, b = rng.random((32, 32)), rng.random((32, 32))
    thumbs = np.stack([a, a + 0.005, b, a + 0.02, b - 0.001])
    assert near_duplicates(thumbs, 0.012) == [None, 0, None, None, 2]


def test_report_figures_on_a_tiny_faceset(faceset, tmp_path, capsys):
    exclude_faces(faceset, FrameRange.parse("1002"), reason="test")
    report = measure_faceset(faceset)
    summary = report.summary()
    print(report.describe())
    assert summary["faces"] == 6 and summary["tracks"] == {"0": {"faces": 6, "interpolated": 0, "excluded": 1,
                                                                 "overridden": 0}}
    assert summary["identity_outliers"] == 0 and summary["identity_distance"]["max"] < 0.6  # one face, one person
    assert summary["profile"] == 0 and all(np.isfinite(f.yaw_deg) for f in report.faces)
    assert all(f.sharpness > 0 for f in report.faces)
    json_path, png_path = write_report(report, tmp_path / "report")
    data = json.loads(json_path.read_text())
    assert data["schema"] == "vfx.FacesetReport/1" and len(data["faces"]) == 6
    assert [f["frame"] for f in data["faces"] if f["excluded"]] == [1002]
    assert png_path.stat().st_size > 10_000
    assert entrypoint(["faceset", "report", str(faceset), "--no-identity", "--out", str(tmp_path / "cli")]) == 0
    out = capsys.readouterr().out
    assert "6 faces" in out and "identity: not measured" in out
    assert (tmp_path / "cli" / "faceset_report.png").is_file()


def test_a_wrong_face_is_an_identity_outlier(faceset):
    """A crop replaced by another person's face (a still of a different face, same landmarks) is flagged."""
    from vfx.demo import load_portrait
    from vfx.io.image import read_image, write_image

    fs = Faceset.open(faceset)
    record = fs.faces()[3]
    other = load_portrait("astronaut")
    crop = read_image(fs.crop_file(record)).pixels[..., :3]
    import cv2

    write_image(fs.crop_file(record), cv2.resize(other, crop.shape[:2][::-1]), channels=("R", "G", "B"),
                dtype="uint8")
    report = measure_faceset(faceset)
    flagged = [f.frame for f in report.faces if "identity" in f.flags]
    print({f.frame: round(f.identity_distance, 3) for f in report.faces})
    assert flagged == [record.frame]


def test_excluded_frames_stay_excluded_after_a_re_extract_and_are_not_trained_on(source, faceset, capsys):
    assert entrypoint(["faceset", "exclude", str(faceset), "1002-1003", "1005", "--reason", "blurred"]) == 0
    assert "3 face(s) added" in capsys.readouterr().out
    kept = [r.frame for r in Faceset.open(faceset).faces()]
    assert kept == [1001, 1004, 1006]
    # Re-extract: the index is rewritten (drop it first so it must be), the exclude list is not touched.
    before = (faceset / "exclude.json").read_bytes()
    (faceset / "index.jsonl").unlink()
    extract_faceset(MediaSource(source), faceset, config=FAST)
    assert (faceset / "exclude.json").read_bytes() == before
    assert [r.frame for r in Faceset.open(faceset).faces()] == kept
    assert len(Faceset.open(faceset).faces(include_excluded=True)) == 6
    # Training reads only the kept faces.
    data = PersonaData("p", [faceset], 32)
    assert len(data) == 3
    from vfx.faceset.dataset import FacesetDataset

    assert [FacesetDataset(faceset)[i]["frame"] for i in range(3)] == kept
    # --clear puts frames back.
    assert entrypoint(["faceset", "exclude", str(faceset), "1005", "--clear"]) == 0
    assert [r.frame for r in Faceset.open(faceset).faces()] == [1001, 1004, 1005, 1006]
    assert entrypoint(["faceset", "exclude", str(faceset), "--clear"]) == 0
    assert not (faceset / "exclude.json").exists() and len(Faceset.open(faceset).faces()) == 6


def test_exclude_refuses_frames_and_tracks_the_faceset_lacks(faceset):
    with pytest.raises(ConfigError, match="no face on 2 of those frames"):
        exclude_faces(faceset, FrameRange.parse("1006-1008"))
    with pytest.raises(ConfigError, match="no track 3"):
        exclude_faces(faceset, FrameRange.parse("1001"), track=3)
    assert not (faceset / "exclude.json").exists()


def test_a_damaged_exclude_list_is_refused(faceset):
    (faceset / "exclude.json").write_text(json.dumps({"schema": "vfx.FacesetExclude/1",
                                                      "faces": [{"frame": "1001"}]}))
    with pytest.raises(MediaError, match="frame"):
        Faceset.open(faceset).faces()


def test_overrides_round_trip_and_move_only_their_points(faceset):
    fs = Faceset.open(faceset)
    record = fs.faces()[2]
    chin = (float(record.landmarks[8][0]) + 3.0, float(record.landmarks[8][1]) + 5.0)
    write_overrides(faceset, [LandmarkOverride(record.frame, 0, {8: chin}, "chin under the collar")])
    overrides = read_overrides(faceset)
    assert overrides == {(record.frame, 0): LandmarkOverride(record.frame, 0, {8: chin}, "chin under the collar")}
    fixed = Faceset.open(faceset).faces()[2]
    np.testing.assert_allclose(fixed.landmarks[8], chin)
    np.testing.assert_allclose(np.delete(fixed.landmarks, 8, 0), np.delete(record.landmarks, 8, 0))
    mapped = fixed.landmarks @ fixed.matrix[:, :2].T + fixed.matrix[:, 2]
    np.testing.assert_allclose(fixed.crop_landmarks, mapped, atol=1e-9)  # the crop points follow, same matrix
    np.testing.assert_array_equal(fixed.matrix, record.matrix)
    np.testing.assert_array_equal(fixed.landmarks_raw, record.landmarks_raw)
    again = apply_overrides([fixed], overrides)[0]
    np.testing.assert_array_equal(again.landmarks, fixed.landmarks)  # applying twice changes nothing
    raw = [r for r in Faceset.open(faceset).records(overrides=False) if r.frame == record.frame][0]
    np.testing.assert_array_equal(raw.landmarks, record.landmarks)
    # A later line for the same face merges (its points win).
    with (faceset / "overrides.jsonl").open("a") as handle:
        handle.write(json.dumps({"frame": record.frame, "track": 0, "points": {"8": [1.0, 2.0], "30": [3.0, 4.0]}})
                     + "\n")
    merged = read_overrides(faceset)[(record.frame, 0)]
    assert merged.points == {8: (1.0, 2.0), 30: (3.0, 4.0)} and merged.note == "chin under the collar"


@pytest.mark.parametrize("line", ['{"frame": 1001, "track": 0, "points": {"68": [1, 2]}}',
                                  '{"frame": 1001, "track": 0, "points": {}}',
                                  '{"frame": 1001, "track": 0, "points": {"8": [1, "x"]}}',
                                  '{"frame": 1001, "points": {"8": [1, 2]}}',
                                  "not json"])
def test_bad_overrides_are_refused(faceset, line):
    (faceset / "overrides.jsonl").write_text(line + "\n")
    with pytest.raises(MediaError, match="overrides.jsonl, line 1"):
        list(Faceset.open(faceset).records())


def test_an_override_survives_re_extraction(source, faceset):
    fs = Faceset.open(faceset)
    record = fs.faces()[1]
    write_overrides(faceset, [LandmarkOverride(record.frame, 0, {36: (10.0, 20.0)})])
    (faceset / "index.jsonl").unlink()
    extract_faceset(MediaSource(source), faceset, config=FAST)
    fixed = [r for r in Faceset.open(faceset).records() if r.frame == record.frame][0]
    np.testing.assert_allclose(fixed.landmarks[36], (10.0, 20.0))
    assert (faceset / "overrides.jsonl").is_file()
    report = measure_faceset(faceset, identity=False)
    assert report.summary()["overridden"] == 1


@pytest.mark.slow
def test_report_on_a_shared_persona_clip(tmp_path, capsys):
    clip = CLIPS / "pair_x_aoc.mp4"
    if not clip.is_file():
        pytest.skip(f"shared test clips not found at {CLIPS} (see ../shared/data/README.md)")
    out = tmp_path / "px"
    assert entrypoint(["extract", str(clip), "--out", str(out), "--frames", "1001-1080", "--size", "128",
                       "--workers", "1"]) == 0
    capsys.readouterr()
    assert entrypoint(["faceset", "report", str(out)]) == 0
    text = capsys.readouterr().out
    with capsys.disabled():
        print("\n" + text)
    data = json.loads((out / "faceset_report.json").read_text())
    summary = data["summary"]
    assert summary["faces"] == 80 and summary["identity_outliers"] == 0 and summary["profile"] == 0
    assert summary["identity_distance"]["max"] < 0.45
    assert -30 < summary["yaw_deg"]["min"] and summary["yaw_deg"]["max"] < 30
