"""An editorial cut (``plate.edit``: OTIO or CMX 3600 EDL) sets the shot's frames through the plate's timecode."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

import vfx.io.plate_clock  # noqa: F401  (registers the plate clock reader load_shot maps timecode through)
from tests.test_otio import write_sequence
from vfx.errors import ConfigError, FrameRangeError
from vfx.export.otio import write_otio
from vfx.shot import dump_shot, load_shot
from vfx.shot.cut import CutClip, PlateClock, cut_frames
from vfx.shot.frames import FrameRange

RT = otio.opentime.RationalTime


def write_cut(path: Path, clips: list[tuple[str, int, int]], rate: float) -> Path:
    """An OTIO cut: one track of clips (name, source start in frames of timecode, duration)."""
    timeline = otio.schema.Timeline(name="cut")
    track = otio.schema.Track(name="V1")
    for name, start, duration in clips:
        track.append(otio.schema.Clip(name=name, source_range=otio.opentime.TimeRange(RT(start, rate),
                                                                                      RT(duration, rate))))
    timeline.tracks.append(track)
    otio.adapters.write_to_file(timeline, str(path))
    return path


def shot_file(folder: Path, plate_tc: str | None, extra: str = "", fps: str = "24") -> Path:
    write_sequence(folder / "plates" / "sh010.####.exr", range(1001, 1021), Fraction(fps), plate_tc)
    path = folder / "sh010.yaml"
    path.write_text(f"schema: vfx.Shot/1\nname: sh010\nplate:\n  path: plates/sh010.####.exr\n  fps: {fps}\n{extra}")
    return path


def test_otio_cut_sets_frames_through_the_plates_timecode_with_handles(tmp_path):
    # plate 1001-1020 starts at 01:00:00:00 (86400 at 24): the clip 01:00:00:05 for 8 frames is 1006-1013
    write_cut(tmp_path / "cut.otio", [("sh005", 86390, 10), ("sh010", 86405, 8), ("sh020", 86500, 4)], 24)
    path = shot_file(tmp_path, "01:00:00:00", "  edit: cut.otio\n  handles: 2\n")
    assert str(load_shot(path).plate.frames) == "1004-1015"


def test_drop_frame_cut_at_2997(tmp_path):
    fps = Fraction(30000, 1001)
    start = otio.opentime.from_timecode("01:00:59;28", float(fps)).value  # the plate's first frame
    write_cut(tmp_path / "cut.otio", [("sh010", start + 4, 6)], float(fps))  # 01:01:00;02: ;00 and ;01 skipped
    path = shot_file(tmp_path, "01:00:59;28", "  edit: cut.otio\n", fps="30000/1001")
    assert str(load_shot(path).plate.frames) == "1005-1010"


def test_edl_cut_through_the_cmx3600_adapter(tmp_path):
    if "cmx_3600" not in {a.name for a in otio.plugins.ActiveManifest().adapters}:
        pytest.skip("otio-cmx3600-adapter is not installed")
    (tmp_path / "cut.edl").write_text(
        "TITLE: cut_v001\nFCM: NON-DROP FRAME\n\n"
        "001  A001    V     C        01:00:00:10 01:00:00:16 00:00:00:00 00:00:00:06\n* FROM CLIP NAME: sh010\n"
        "002  A002    V     C        02:00:00:00 02:00:01:00 00:00:00:06 00:00:01:06\n* FROM CLIP NAME: sh020\n")
    path = shot_file(tmp_path, "01:00:00:00", "  edit: cut.edl\n  handles: 1\n")
    assert str(load_shot(path).plate.frames) == "1010-1017"  # 01:00:00:10 is frame 1011; 6 frames, 1 handle


def test_a_plate_without_timecode_reads_the_source_range_as_frame_numbers(tmp_path):
    write_cut(tmp_path / "cut.otio", [("main", 1003, 5)], 24)
    path = shot_file(tmp_path, None, "  edit: cut.otio\n  edit_clip: main\n")
    assert str(load_shot(path).plate.frames) == "1003-1007"


def test_our_own_otio_is_a_cut_that_gives_back_the_frames(tmp_path):
    """A timeline from `vfx export --otio` (clips with available ranges) used as the cut of the same plate."""
    path = shot_file(tmp_path, None, "  frames: 1004-1012\n")
    timeline = write_otio(load_shot(path), tmp_path / "handoff.otio")
    text = path.read_text().replace("  frames: 1004-1012\n", "  edit: handoff.otio\n  edit_clip: sh010 plate\n")
    path.write_text(text)
    assert str(load_shot(path).plate.frames) == "1004-1012"
    assert timeline.is_file()


def test_the_plates_timecode_wins_over_an_available_range():
    clock = PlateClock(Fraction(25), FrameRange.from_bounds(1001, 1100), 90000, "01:00:00:00")
    clip = CutClip("sh010", 90010, 5, 25.0, available_start=0)
    assert str(cut_frames([clip], clock)) == "1011-1015"
    # the shot cut away and back: the span of both uses
    assert str(cut_frames([clip, CutClip("sh010", 90050, 5, 25.0)], clock)) == "1011-1055"


def test_dump_writes_the_cut_not_the_frames_and_reloads(tmp_path):
    write_cut(tmp_path / "cut.otio", [("sh010", 86405, 8)], 24)
    path = shot_file(tmp_path, "01:00:00:00", "  edit: cut.otio\n")
    text = dump_shot(load_shot(path))
    assert text.startswith("# plate.frames 1006-1013 come from the editorial cut")
    (tmp_path / "again.yaml").write_text(text)
    assert str(load_shot(tmp_path / "again.yaml").plate.frames) == "1006-1013"


# ------------------------------------------------------------------------------------------------ bad input


def test_a_cut_without_the_shots_clip_lists_its_clips(tmp_path):
    write_cut(tmp_path / "cut.otio", [("sh001", 86400, 4), ("sh01O", 86404, 4)], 24)
    path = shot_file(tmp_path, "01:00:00:00", "  edit: cut.otio\n")
    with pytest.raises(ConfigError, match="no clip 'sh010'") as err:
        load_shot(path)
    assert "'sh001', 'sh01O'" in err.value.found and "sh01O" in err.value.fix


@pytest.mark.parametrize(("clip", "handles", "words"), [
    ((86395, 10), 0, "5 frames before the plate's first frame 1001"),
    ((86410, 10), 3, "3 frames after its last frame 1020"),
    ((86399, 30), 0, "1 frames before the plate's first frame 1001 and 9 frames after its last frame 1020"),
])
def test_a_cut_outside_the_plate_says_by_how_many_frames(tmp_path, clip, handles, words):
    write_cut(tmp_path / "cut.otio", [("sh010", *clip)], 24)
    path = shot_file(tmp_path, "01:00:00:00", f"  edit: cut.otio\n  handles: {handles}\n")
    with pytest.raises(FrameRangeError) as err:
        load_shot(path)
    assert words in str(err.value) and "01:00:00:00" in str(err.value)
    assert err.value.exit_code == 2


@pytest.mark.parametrize(("name", "content", "words"), [
    ("cut.otio", "{not json", "Cannot read editorial cut"),
    ("missing.otio", None, "not found"),
    ("cut.xml", "<xml/>", "a .xml file"),
])
def test_an_unreadable_cut_is_refused(tmp_path, name, content, words):
    if content is not None:
        (tmp_path / name).write_text(content)
    path = shot_file(tmp_path, "01:00:00:00", f"  edit: {name}\n")
    with pytest.raises(ConfigError, match=words) as err:
        load_shot(path)
    assert err.value.fix and err.value.exit_code == 2


def test_frames_and_edit_together_are_refused(tmp_path):
    write_cut(tmp_path / "cut.otio", [("sh010", 86405, 8)], 24)
    path = shot_file(tmp_path, "01:00:00:00", "  frames: 1001-1010\n  edit: cut.otio\n")
    with pytest.raises(ConfigError, match="plate.frames and plate.edit both") as err:
        load_shot(path)
    assert "remove plate.frames" in err.value.fix


def test_handles_without_a_cut_are_refused(tmp_path):
    path = shot_file(tmp_path, None, "  handles: 8\n")
    with pytest.raises(ConfigError, match="need plate.edit"):
        load_shot(path)


def test_a_cut_at_another_rate_is_refused(tmp_path):
    write_cut(tmp_path / "cut.otio", [("sh010", 90005, 8)], 25)
    path = shot_file(tmp_path, "01:00:00:00", "  edit: cut.otio\n")
    with pytest.raises(ConfigError, match="another rate"):
        load_shot(path)
