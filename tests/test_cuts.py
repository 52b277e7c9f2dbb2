"""Camera cuts inside a plate: found exactly, given by the editor, and never crossed by a track or a filter.

The joined plate is three shared clips end to end (pair_x, pair_y, persona_b; 24 frames of each, re-timed
to 25 fps), so its cuts are exactly frames 1025 and 1049 when numbered from 1001.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from vfx.cli import entrypoint
from vfx.face.smooth import smooth_landmarks
from vfx.faceset.cuts import CUTS_FILE, DETECTOR, detect_cuts, read_cuts, segments
from vfx.faceset.extract import ExtractConfig, MediaSource, extract_faceset
from vfx.faceset.store import Faceset
from vfx.io.ffmpeg import find_ffmpeg
from vfx.io.plate import open_media
from vfx.shot.frames import FrameRange

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips"
PIECE = 24
CUTS = (1001 + PIECE, 1001 + 2 * PIECE)


def test_segments_split_at_cuts():
    assert segments(range(1001, 1007), [1003, 1005]) == [[1001, 1002], [1003, 1004], [1005, 1006]]
    assert segments(range(1001, 1004), [1001, 1009]) == [[1001, 1002, 1003]]
    assert segments([], [1003]) == []


def _join(out: Path, names: list[str]) -> Path:
    missing = [n for n in names if not (CLIPS / n).is_file()]
    if missing:
        pytest.skip(f"the shared clips {missing} are not in {CLIPS} (../shared/data beside the repository)")
    inputs = [arg for name in names for arg in ("-i", str(CLIPS / name))]
    chains = "".join(f"[{i}:v]trim=end_frame={PIECE},setpts=N/25/TB,scale=256:256,setsar=1[v{i}];"
                     for i in range(len(names)))
    graph = chains + "".join(f"[v{i}]" for i in range(len(names))) + f"concat=n={len(names)}:v=1:a=0[v]"
    subprocess.run([find_ffmpeg(), "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[v]", "-r", "25",
                    "-c:v", "libx264", "-crf", "14", "-g", "12", "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def joined(tmp_path_factory) -> Path:
    return _join(tmp_path_factory.mktemp("cuts") / "joined.mp4",
                 ["pair_x_aoc.mp4", "pair_y_kh.mp4", "persona_b_d14.mp4"])


def test_the_joined_plate_gives_exactly_its_cuts(joined):
    with open_media(joined) as plate:
        assert len(plate.frame_range) == 3 * PIECE
        assert detect_cuts(plate, plate.frame_range) == CUTS
        # a range starting after the first cut still finds the second, and no cut at its own first frame
        assert detect_cuts(plate, FrameRange.from_bounds(CUTS[0], plate.frame_range.last)) == CUTS[1:]


def _extract(source: Path, out: Path, frames: FrameRange | None = None, cuts=None):
    config = ExtractConfig(crop_size=64, workers=1, jitter_shifts=0, cuts=cuts, min_face_px=40)
    return extract_faceset(MediaSource(str(source)), out, frames=frames, config=config)


def test_no_track_and_no_filter_crosses_a_cut(joined, tmp_path):
    summary = _extract(joined, tmp_path / "faces")
    assert summary.cuts == CUTS and summary.cuts_source == DETECTOR
    assert read_cuts(tmp_path / "faces").cuts == CUTS
    records = [r for r in Faceset.open(tmp_path / "faces").records() if r.quality != "no_face"]
    pieces = segments(range(1001, 1001 + 3 * PIECE), CUTS)
    assert {r.frame for r in records} == set(range(1001, 1001 + 3 * PIECE)), "a face on every frame"
    smoothed = 0
    for track in sorted({r.track for r in records}):
        for piece in pieces:
            mine = sorted((r for r in records if r.track == track and r.frame in piece), key=lambda r: r.frame)
            if not mine:
                continue
            # The landmarks of a camera shot are its own raw landmarks filtered on their own: the filter
            # (zero-lag, 11 frames) stops at the cut on either side.
            raw = np.stack([r.landmarks_raw for r in mine])
            alone = smooth_landmarks(raw, valid=np.ones(len(mine), bool), window=ExtractConfig().smooth_window)
            np.testing.assert_allclose(np.stack([r.landmarks for r in mine]), alone, atol=2e-3)  # the index keeps 4 decimals
            smoothed += len(mine)
    assert smoothed == len(records)
    # and without the cuts the filter does reach over them: the check above is not vacuous
    _extract(joined, tmp_path / "uncut", cuts=())
    uncut = {r.frame: r for r in Faceset.open(tmp_path / "uncut").records() if r.track == 0}
    near = [f for c in CUTS for f in (c - 1, c) if f in uncut]
    cut = {r.frame: r for r in records if r.track == 0}
    assert max(float(np.abs(uncut[f].landmarks - cut[f].landmarks).max()) for f in near if f in cut) > 1.0


def test_the_editors_cuts_win(joined, tmp_path):
    summary = _extract(joined, tmp_path / "faces", cuts=(1030,))
    assert summary.cuts == (1030,) and summary.cuts_source == "shot file"
    # given again with other cuts: the crops are recut along the new tracks
    before = (tmp_path / "faces" / CUTS_FILE).read_text()
    summary = _extract(joined, tmp_path / "faces", cuts=CUTS)
    assert summary.cuts == CUTS and (tmp_path / "faces" / CUTS_FILE).read_text() != before
    assert summary.crops_written > 0


def test_a_cut_list_outside_the_plate_is_refused(joined, tmp_path, capsys):
    shot = tmp_path / "shot.yaml"
    shot.write_text(yaml.safe_dump({"schema": "vfx.Shot/1", "name": "sh", "plate": {
        "path": str(joined), "cuts": [1030, 2000]}, "outputs": {"exr": str(tmp_path / "out" / "sh.####.exr")}}))
    assert entrypoint(["shot", "validate", str(shot)]) == 2
    err = capsys.readouterr().err
    assert "2000" in err and "outside the plate" in err and "Fix:" in err
    assert not (tmp_path / "out").exists()
