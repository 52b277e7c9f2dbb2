import numpy as np
import pytest

from vfx.errors import ConfigError, MediaError
from vfx.faceset import FaceRecord, Faceset, FacesetInfo


def info(**changes) -> FacesetInfo:
    base = dict(source="/plates/sh010.####.exr", source_kind="sequence", crop_size=256, landmarker="dlib",
                jitter_beta=0.05, jitter_shifts=8, smooth_window=7, forehead_raise=0.25,
                colorspace="sRGB Encoded Rec.709 (sRGB)", shot="sh010")
    base.update(changes)
    return FacesetInfo(**base)


def record(frame: int, track: int = 0) -> FaceRecord:
    rng = np.random.default_rng(frame)
    points = rng.uniform(0, 500, (68, 2))
    return FaceRecord(frame=frame, track=track, quality="ok", crop=Faceset.crop_name(track, frame),
                      box=(1.0, 2.0, 300.5, 310.25), score=1.5, landmarks=points, landmarks_raw=points + 0.1,
                      crop_landmarks=points / 2, matrix=np.array([[0.5, 0, 1], [0, 0.5, 2]]))


def test_create_open_and_index_round_trip(tmp_path):
    faceset = Faceset.create(tmp_path / "fs", info())
    records = [record(1002), FaceRecord(frame=1003, track=None, quality="no_face"), record(1001)]
    assert faceset.write_index(records)
    assert not faceset.write_index(records), "an identical index is not rewritten"
    again = Faceset.open(tmp_path / "fs")
    assert again.info == faceset.info
    read = list(again.records())
    assert [r.frame for r in read] == [1001, 1002, 1003]
    assert read[2].quality == "no_face" and read[2].track is None
    np.testing.assert_allclose(read[0].landmarks, records[2].landmarks, atol=1e-4)
    np.testing.assert_allclose(read[0].matrix, records[2].matrix)
    assert [r.frame for r in again.faces(track=0)] == [1001, 1002]
    assert again.crop_path(0, 1001) == tmp_path / "fs" / "crops" / "t00" / "1001.png"


def test_resume_same_source_and_refuse_another(tmp_path):
    Faceset.create(tmp_path / "fs", info())
    assert Faceset.create(tmp_path / "fs", info()).info == info()
    with pytest.raises(ConfigError, match=r"already holds another faceset.*source: '/plates/sh010.####.exr' here"):
        Faceset.create(tmp_path / "fs", info(source="/plates/sh020.####.exr", shot="sh020"))
    with pytest.raises(ConfigError, match="crop_size: 256 here, 512 asked"):
        Faceset.create(tmp_path / "fs", info(crop_size=512))


def test_refuse_non_faceset_folder(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        Faceset.create(tmp_path / "busy", info())
    with pytest.raises(MediaError, match="No faceset"):
        Faceset.open(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "faceset.json").write_text('{"schema": "vfx.Faceset/9"}')
    with pytest.raises(MediaError, match="Unsupported faceset schema"):
        Faceset.open(tmp_path / "bad")
