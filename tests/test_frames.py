from fractions import Fraction

import pytest

from vfx.errors import ConfigError, FrameRangeError
from vfx.shot import FrameRange, SequencePattern, format_frames, is_sequence_pattern, parse_fps


class TestFrameRange:
    @pytest.mark.parametrize(
        ("spec", "frames"),
        [
            ("1001-1005", (1001, 1002, 1003, 1004, 1005)),
            ("1001-1010x3", (1001, 1004, 1007, 1010)),
            ("1001,1005,1010-1012", (1001, 1005, 1010, 1011, 1012)),
            ("1001", (1001,)),
            (1001, (1001,)),
            (" 1-3 ", (1, 2, 3)),
        ],
    )
    def test_parse(self, spec, frames):
        assert FrameRange.parse(spec).frames == frames

    def test_inclusive_bounds_and_len(self):
        r = FrameRange.parse("1001-1100")
        assert (r.first, r.last, len(r)) == (1001, 1100, 100)
        assert 1100 in r and 1101 not in r

    def test_text_round_trip(self):
        for spec in ("1001-1100", "1001-1010x3", "1001,1005,1010-1020"):
            assert FrameRange.parse(str(FrameRange.parse(spec))) == FrameRange.parse(spec)

    @pytest.mark.parametrize("spec", ["abc", "1001-", "1001.5", "10-1x"])
    def test_rejects_bad_text(self, spec):
        with pytest.raises(FrameRangeError, match="Expected: integer frames"):
            FrameRange.parse(spec)

    def test_chunks(self):
        chunks = list(FrameRange.parse("1001-1012").chunks(5))
        assert [len(c) for c in chunks] == [5, 5, 2]
        assert [f for c in chunks for f in c] == list(range(1001, 1013))
        with pytest.raises(ConfigError):
            list(FrameRange.parse("1-3").chunks(0))

    def test_check_within(self):
        plate = FrameRange.from_bounds(1001, 1048)
        FrameRange.parse("1001-1048").check_within(plate)
        with pytest.raises(FrameRangeError, match=r"outside the plate.*1049-1050"):
            FrameRange.parse("1040-1050").check_within(plate)

    def test_from_bounds_rejects_reversed(self):
        with pytest.raises(FrameRangeError):
            FrameRange.from_bounds(10, 1)


class TestFps:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("24000/1001", Fraction(24000, 1001)),
            (24, Fraction(24)),
            ("25", Fraction(25)),
            (29.97, Fraction(30000, 1001)),
            ("23.976", Fraction(24000, 1001)),
            (Fraction(60000, 1001), Fraction(60000, 1001)),
        ],
    )
    def test_parse(self, value, expected):
        assert parse_fps(value) == expected

    @pytest.mark.parametrize("value", ["fast", "0", "-24", "1/0", True])
    def test_rejects(self, value):
        with pytest.raises(ConfigError, match="frame rate"):
            parse_fps(value)


class TestSequencePattern:
    @pytest.mark.parametrize(
        ("pattern", "name"),
        [
            ("sh010.####.exr", "sh010.1001.exr"),
            ("sh010.%04d.exr", "sh010.1001.exr"),
            ("sh010.@@@@.exr", "sh010.1001.exr"),
            ("sh010.@.exr", "sh010.1001.exr"),
            ("sh010.$F4.exr", "sh010.1001.exr"),
            ("sh010.######.exr", "sh010.001001.exr"),
        ],
    )
    def test_tokens(self, pattern, name):
        assert SequencePattern(pattern).path(1001).name == name

    def test_padding_short_frames(self):
        assert SequencePattern("a/b.####.png").path(7).as_posix() == "a/b.0007.png"

    def test_not_a_pattern(self):
        assert not is_sequence_pattern("plates/clip.mp4")
        with pytest.raises(ConfigError, match="frame token"):
            SequencePattern("plates/clip.mp4")

    def test_frames_on_disk_and_missing(self, tmp_path):
        pattern = SequencePattern(str(tmp_path / "sh.####.exr"))
        for frame in (1001, 1002, 1004):
            pattern.path(frame).write_bytes(b"x")
        (tmp_path / "sh.01003.exr").write_bytes(b"x")  # other padding: another sequence
        (tmp_path / "other.1003.exr").write_bytes(b"x")
        assert pattern.frames_on_disk() == [1001, 1002, 1004]
        assert pattern.missing(range(1001, 1006)) == [1003, 1005]

    def test_format_frames(self):
        assert format_frames([1003, 1001, 1002, 1007]) == "1001-1003,1007"


def test_empty_range_text():
    with pytest.raises(FrameRangeError, match="holds no frames"):
        FrameRange.parse("")
