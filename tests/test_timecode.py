"""Timecode in one place (vfx.io.timecode, on OpenTimelineIO's opentime): drop-frame at 29.97/59.94, non-drop
elsewhere, checked against an independent SMPTE 12M formula and round-tripped through EXR and a review movie."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
from opentimelineio import opentime

from vfx.errors import ConfigError
from vfx.io.exr_metadata import ExrMetadata
from vfx.io.image import read_image, write_image
from vfx.io.timecode import check_timecode, frame_timecode, frames_to_timecode, timecode_to_frames

RATES = [Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30), Fraction(60000, 1001)]


def smpte(count: int, fps: Fraction, drop: bool) -> str:
    """SMPTE 12M by the textbook formula (not opentime): drop 2 (or 4) numbers a minute except every tenth."""
    nominal = round(float(fps))
    if drop:
        skip = 2 * nominal // 30
        per_ten = 10 * 60 * nominal - 9 * skip
        per_minute = 60 * nominal - skip
        tens, rest = divmod(count, per_ten)
        count += 9 * skip * tens + (skip * ((rest - skip) // per_minute) if rest > skip else 0)
    ff = count % nominal
    seconds = count // nominal
    sep = ";" if drop else ":"
    return f"{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}{sep}{ff:02d}"


@pytest.mark.parametrize("fps", RATES, ids=[str(r) for r in RATES])
def test_100_random_frames_agree_with_smpte_and_opentime_and_round_trip(fps):
    generator = random.Random(int(fps * 1000))
    drop = fps in (Fraction(30000, 1001), Fraction(60000, 1001))
    for _ in range(100):
        count = generator.randrange(0, 23 * 3600 * 24)  # within the day at every rate
        text = frames_to_timecode(count, fps)
        assert text == smpte(count, fps, drop), (count, fps)
        assert text == opentime.to_timecode(opentime.RationalTime(count, float(fps)), float(fps))
        assert timecode_to_frames(text, fps) == count


def test_the_drop_frame_example_of_the_issue():
    ntsc = Fraction(30000, 1001)
    assert frame_timecode(1800, ntsc, start_frame=0, start_timecode="01:00:00;00") == "01:01:00;02"
    assert frames_to_timecode(17982, ntsc) == "00:10:00;00"  # ten minutes drop nothing at their start
    assert frame_timecode(1800, ntsc, start_frame=0, start_timecode="01:00:00:00") == "01:01:00:00"  # NDF stays NDF
    assert frame_timecode(1001, Fraction(24)) == "00:00:41:17"
    assert frames_to_timecode(24 * 3600 * 25 + 3, Fraction(25)) == "00:00:00:03"  # wraps at 24 hours


@pytest.mark.parametrize(("timecode", "fps", "words"), [
    ("01:00:00", Fraction(24), "HH:MM:SS:FF"),
    ("24:00:00:00", Fraction(24), "hours below 24"),
    ("01:00:00:24", Fraction(24), "FF below 24"),
    ("01:00:00;00", Fraction(25), "NTSC"),
    ("01:01:00;01", Fraction(30000, 1001), "does not exist"),
])
def test_bad_timecodes_are_refused(timecode, fps, words):
    with pytest.raises(ConfigError, match=words) as caught:
        check_timecode(timecode, fps)
    assert "Fix:" in str(caught.value)


@pytest.mark.parametrize(("timecode", "fps"), [("00:59:59;29", Fraction(30000, 1001)), ("01:00:00:23", Fraction(24000, 1001)),
                                               ("10:20:30;38", Fraction(60000, 1001)), ("23:59:59:24", Fraction(25))])
def test_timecode_round_trips_through_exr(tmp_path, timecode, fps):
    path = tmp_path / "f.exr"
    write_image(path, np.zeros((4, 4, 3), np.float32), metadata=ExrMetadata(timecode=timecode, fps=fps))
    assert read_image(path).exr_metadata.timecode == timecode


def test_timecode_round_trips_through_a_review_movie(tmp_path):
    from vfx.io.video import encode_video, probe_video

    ntsc = Fraction(30000, 1001)
    start = frame_timecode(1800, ntsc, start_frame=0, start_timecode="01:00:00;00")
    frames = [np.full((32, 32, 3), v, np.uint8) for v in (50, 128, 200)]
    info = encode_video(frames, tmp_path / "r.mp4", fps=ntsc, timecode=start)
    assert probe_video(tmp_path / "r.mp4").timecode == start == info.timecode == "01:01:00;02"
