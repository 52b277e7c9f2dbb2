"""The OTIO hand-off (:func:`vfx.export.otio.write_otio`): read back by OpenTimelineIO and by ``otiotool``, with the
versions' frame ranges, the exact rate and the plate's timecode (24, 25, 23.976, 29.97 drop-frame)."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

from vfx.errors import ConfigError
from vfx.export.otio import write_otio
from vfx.io.exr_metadata import ExrMetadata
from vfx.io.image import write_image
from vfx.io.timecode import frame_timecode, timecode_to_frames
from vfx.shot import FrameRange, parse_shot

OTIOTOOL = Path(sys.executable).with_name("otiotool")


def write_sequence(pattern: Path, frames: range, fps: Fraction, start_timecode: str | None = None) -> None:
    """A tiny EXR sequence, each frame stamped with its timecode (counted from ``start_timecode`` at the first)."""
    pattern.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((4, 6, 3), 0.18, np.float32)
    for frame in frames:
        tc = None if start_timecode is None else frame_timecode(frame, fps, start_frame=frames[0],
                                                                start_timecode=start_timecode)
        write_image(str(pattern).replace("####", f"{frame:04d}"), pixels, channels=("R", "G", "B"),
                    metadata=ExrMetadata(timecode=tc, fps=fps))


def make_shot(folder: Path, fps: Fraction, start_timecode: str | None, *, frames: str | None = None):
    write_sequence(folder / "plates" / "sh010.####.exr", range(1001, 1009), fps, start_timecode)
    text = (f"schema: vfx.Shot/1\nname: sh010\nplate:\n  path: plates/sh010.####.exr\n  fps: {fps}\n"
            + (f"  frames: {frames}\n" if frames else "") + "outputs:\n  exr: out/sh010_swap.####.exr\n")
    return parse_shot(text, base_dir=folder)


RATES = [
    (Fraction(24), "01:00:00:00", False),
    (Fraction(25), "10:00:00:00", False),
    (Fraction(24000, 1001), "00:59:59:12", False),
    (Fraction(30000, 1001), "01:00:59;28", True),  # drop-frame: 4 frames later the minute skips ;00 and ;01
]


@pytest.mark.parametrize(("fps", "start_tc", "drop"), RATES, ids=["24", "25", "23.976", "29.97df"])
def test_timeline_has_each_version_with_its_range_rate_and_timecode(tmp_path, fps, start_tc, drop):
    shot = make_shot(tmp_path, fps, start_tc)
    # swap rendered on 1003-1008, retouch on 1005-1008: partial versions start later on the timeline
    write_sequence(tmp_path / "out" / "sh010_swap.####.exr", range(1003, 1009), fps)
    write_sequence(tmp_path / "out" / "sh010_retouch.####.exr", range(1005, 1009), fps)
    out = write_otio(shot, tmp_path / "hand off" / "sh010.otio")
    assert out.stat().st_mode & 0o644 == 0o644
    timeline = otio.adapters.read_from_file(str(out))
    rate = float(fps)
    assert [t.name for t in timeline.tracks] == ["plate", "swap", "retouch"]  # no edit frames on disk
    start = timecode_to_frames(start_tc, fps)
    assert timeline.global_start_time == otio.opentime.RationalTime(start, rate)
    assert otio.opentime.to_timecode(timeline.global_start_time, rate, drop) == start_tc
    assert timeline.metadata["vfx"]["fps"] == str(fps) and timeline.metadata["vfx"]["drop_frame"] is drop
    assert timeline.metadata["vfx"]["timecode"] == start_tc
    for track, first in zip(timeline.tracks, (1001, 1003, 1005)):
        clip = track.find_clips()[0]
        ref = clip.media_reference
        assert isinstance(ref, otio.schema.ImageSequenceReference)
        assert ref.rate == rate and clip.source_range.start_time.rate == rate
        assert ref.start_frame == first and ref.frame_zero_padding == 4 and ref.frame_step == 1
        assert ref.name_suffix == ".exr" and ref.target_url_base.startswith("file://")
        assert clip.source_range.start_time.value == start + first - 1001
        assert clip.source_range.duration.value == 1009 - first
        # OTIO's own mapping of media time to file gives the first frame on disk
        url = ref.target_url_for_image_number(ref.number_of_images_in_sequence() and 0)
        assert Path(url.removeprefix("file://").replace("%20", " ")).is_file()
        assert ref.frame_for_time(clip.source_range.start_time) == first
        # the clip sits on the timeline under the plate frame it was rendered from
        assert clip.range_in_parent().start_time.value == first - 1001
        timecode = otio.opentime.to_timecode(clip.source_range.start_time, rate, drop)
        assert timecode == frame_timecode(first, fps, start_frame=1001, start_timecode=start_tc)
    if OTIOTOOL.is_file():
        listed = subprocess.run([str(OTIOTOOL), "-i", str(out), "--list-clips", "--list-tracks", "--stats"],
                                capture_output=True, text=True, timeout=60, check=True).stdout
        for name in ("sh010 plate", "sh010 swap", "sh010 retouch", "TRACK: swap", "TRACK: retouch"):
            assert name in listed, listed
        eight = otio.opentime.to_timecode(otio.opentime.RationalTime(8, rate), rate, drop)
        assert f"Duration: {eight}" in listed, listed  # 8 frames at the plate's rate


def test_a_plate_without_timecode_counts_frame_numbers(tmp_path):
    shot = make_shot(tmp_path, Fraction(24), None, frames="1002-1007")
    out = write_otio(shot, tmp_path / "sh010.otio")
    timeline = otio.adapters.read_from_file(str(out))
    (clip,) = timeline.tracks[0].find_clips()
    assert clip.source_range == otio.opentime.TimeRange(otio.opentime.RationalTime(1002, 24),
                                                        otio.opentime.RationalTime(6, 24))
    assert clip.media_reference.available_range.start_time.value == 1001  # the whole plate is available
    assert timeline.metadata["vfx"]["timecode"] == "00:00:41:18" and timeline.metadata["vfx"]["plate_timecode"] is None


def test_video_plate_and_review_movie_are_external_references(tmp_path):
    from vfx.io.video import encode_video

    fps = Fraction(30000, 1001)
    pictures = [np.full((16, 16, 3), i * 20, np.uint8) for i in range(8)]
    encode_video(pictures, tmp_path / "plate.mov", fps=fps, timecode="01:00:00;00")
    (tmp_path / "out").mkdir()
    encode_video(pictures[2:], tmp_path / "out" / "sh010_review.mp4", fps=fps, timecode="01:00:00;02")
    shot = parse_shot("schema: vfx.Shot/1\nname: sh010\nplate:\n  path: plate.mov\n  frames: 1003-1008\n"
                      "outputs:\n  exr: out/sh010_swap.####.exr\n  review: out/sh010_review.mp4\n", base_dir=tmp_path)
    timeline = otio.adapters.read_from_file(str(write_otio(shot, tmp_path / "sh010.otio")))
    assert [t.name for t in timeline.tracks] == ["plate", "review"]
    plate, review = (t.find_clips()[0] for t in timeline.tracks)
    assert isinstance(plate.media_reference, otio.schema.ExternalReference)
    assert plate.media_reference.target_url == (tmp_path / "plate.mov").as_uri()
    assert otio.opentime.to_timecode(plate.source_range.start_time, float(fps), True) == "01:00:00;02"
    assert plate.source_range.duration.value == 6
    assert not timeline.tracks[1].enabled
    assert review.media_reference.target_url.endswith("sh010_review.mp4")
    assert review.source_range == plate.source_range


def test_bad_destination_is_refused_with_nothing_written(tmp_path):
    shot = make_shot(tmp_path, Fraction(24), "01:00:00:00")
    with pytest.raises(ConfigError, match=r"\.otio") as err:
        write_otio(shot, tmp_path / "sh010.edl")
    assert err.value.fix
    with pytest.raises(ConfigError, match="a folder"):
        write_otio(shot, tmp_path / "plates.otio" if (tmp_path / "plates.otio").mkdir() is None else "")
    assert not (tmp_path / "sh010.edl").exists() and not list((tmp_path / "plates.otio").iterdir())


def test_frames_outside_the_plate_are_refused(tmp_path):
    from vfx.errors import FrameRangeError

    shot = make_shot(tmp_path, Fraction(24), "01:00:00:00")
    with pytest.raises(FrameRangeError):
        write_otio(shot, tmp_path / "sh010.otio", frames=FrameRange.parse("995-1004"))
    assert not (tmp_path / "sh010.otio").exists()
