import numpy as np
import pytest

from vfx.errors import FrameRangeError, MissingFramesError
from vfx.io.color import from_working
from vfx.io.image import write_image
from vfx.io.plate import open_media, open_plate, probe_media
from vfx.io.video import VideoReader
from vfx.shot import FrameRange, load_shot
from vfx.shot.schema import PlateConfig


def test_sequence_plate_reads_by_frame_number(demo_shot):
    shot = load_shot(demo_shot)
    plate, frames = open_plate(shot.plate)
    with plate:
        assert plate.kind == "sequence" and frames == FrameRange.from_bounds(1001, 1016)
        assert plate.size == (64, 64) and plate.fps == 24 and plate.colorspace == "ACEScg"
        image = plate.read(1005)
        assert image.channels == ("R", "G", "B") and image.pixels.dtype == np.float32
        working = plate.read_working(1005)
        np.testing.assert_allclose(from_working(working, "ACEScg"), image.pixels, atol=1e-5)
        assert [f for f, _ in plate.frames(FrameRange.parse("1001-1003"))] == [1001, 1002, 1003]
        with pytest.raises(FrameRangeError, match="outside plate"):
            plate.read(1017)


def test_video_frames_are_numbered_from_start_frame(demo_shot):
    video = demo_shot.parent / "media" / "astronaut.mp4"
    with open_media(video) as plate, VideoReader(str(video), start_frame=1001) as reader:
        assert plate.frame_range == FrameRange.from_bounds(1001, 1016)
        first = reader.read(1001)
        np.testing.assert_array_equal(np.round(plate.read(1001).pixels * 255).astype(np.uint8), first)
    with open_media(video, start_frame=1) as plate:
        assert plate.frame_range == FrameRange.from_bounds(1, 16)
    config = PlateConfig(path=video, frames="1001-1020")
    with pytest.raises(FrameRangeError, match="1017-1020"):
        open_plate(config)


def test_sequence_with_a_hole(tmp_path):
    for frame in (1001, 1002, 1004, 1005):
        write_image(tmp_path / f"sh.{frame}.exr", np.full((4, 4, 3), 0.5, np.float32))
    config = PlateConfig(path=tmp_path / "sh.####.exr")
    with pytest.raises(MissingFramesError, match="missing 1 of 5 frames.*1003") as info:
        open_plate(config)
    assert info.value.missing == [1003]
    plate, frames = open_plate(config, FrameRange.parse("1001-1002"))
    assert len(frames) == 2
    assert probe_media(tmp_path / "sh.####.exr")["missing_frames"] == "1003"
