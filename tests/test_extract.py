"""`vfx extract`: footage to faceset, on sequences made here from the bundled portrait and on the shared clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vfx.cli import entrypoint
from vfx.demo import load_portrait, render_motion
from vfx.errors import ConfigError
from vfx.eval.stability import known_motion
from vfx.faceset import Faceset
from vfx.faceset.extract import ExtractConfig, MediaSource, extract_faceset
from vfx.faceset.qc import write_contact_sheet, write_jitter_plot
from vfx.io.image import read_image, write_image

from conftest import SHARED_DATA

SIZE = 384  # the portrait's face is ~190 px wide: found at the default half-scale detection
FAST = ExtractConfig(workers=1, chunk_frames=8)


def _frames(count: int, size: int = SIZE) -> list[np.ndarray]:
    portrait = load_portrait("hopper")
    return list(render_motion(portrait, known_motion(count, portrait.shape[:2], size), size))


def _write_sequence(folder: Path, frames: list[np.ndarray], *, ext: str = "png", dtype: str = "uint8",
                    channels: tuple[str, ...] = ("R", "G", "B")) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        write_image(folder / f"clip.{1001 + index:04d}.{ext}", frame, channels=channels, dtype=dtype)
    return str(folder / f"clip.####.{ext}")


@pytest.fixture(scope="module")
def moving_face(tmp_path_factory) -> str:
    """A 12-frame PNG sequence of the portrait moving like a head."""
    return _write_sequence(tmp_path_factory.mktemp("seq"), _frames(12))


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_extract_writes_aligned_crops_and_an_index(moving_face, tmp_path):
    out = tmp_path / "fs"
    summary = extract_faceset(MediaSource(moving_face), out, config=FAST)
    assert (summary.frames, summary.faces, summary.tracks, summary.no_face_frames) == (12, 12, 1, ())
    assert summary.crops_written == 12 and summary.crops_skipped == 0
    faceset = Faceset.open(out)
    assert faceset.info.schema == "vfx.Faceset/1" and faceset.info.crop_size == 256
    records = faceset.faces()
    assert [r.frame for r in records] == list(range(1001, 1013)) and {r.track for r in records} == {0}
    for record in records:
        crop = read_image(out / record.crop)
        assert crop.size == (256, 256) and crop.pixel_type == "uint8"  # 8-bit source, 8-bit crop
        right, left = record.crop_landmarks[36:42].mean(axis=0), record.crop_landmarks[42:48].mean(axis=0)
        assert abs(right[1] - left[1]) < 1e-3, "the eyes are level in the crop (index stores 4 decimals)"
        # The matrix carries the plate landmarks into the crop landmarks.
        mapped = record.landmarks @ record.matrix[:, :2].T + record.matrix[:, 2]
        np.testing.assert_allclose(mapped, record.crop_landmarks, atol=1e-3)
        assert record.box is not None and record.landmarks_raw.shape == (68, 2)


def test_rerun_leaves_the_faceset_unchanged(moving_face, tmp_path):
    out = tmp_path / "fs"
    extract_faceset(MediaSource(moving_face), out, config=FAST)
    before = _snapshot(out)
    again = extract_faceset(MediaSource(moving_face), out, config=FAST)
    assert again.crops_written == 0 and again.crops_skipped == 12
    assert _snapshot(out) == before


def test_killed_run_resumes_from_its_cached_chunks(moving_face, tmp_path):
    out = tmp_path / "fs"
    extract_faceset(MediaSource(moving_face), out, config=FAST)
    index = (out / "index.jsonl").read_bytes()
    (out / "index.jsonl").unlink()  # as if killed after the landmark pass
    for crop in list((out / "crops" / "t00").iterdir())[:5]:
        crop.unlink()
    resumed = extract_faceset(MediaSource(moving_face), out, config=FAST)
    assert resumed.crops_written == 5 and resumed.crops_skipped == 7
    assert (out / "index.jsonl").read_bytes() == index


@pytest.mark.parametrize("damage", ["{not json", '{"1001": "x"}', '{"1": [[[0, 0, 1, 1, 1], [[0, 0]]]]}', "[]"],
                         ids=["not-json", "wrong-type", "other-frames", "a-list"])
def test_a_damaged_landmark_cache_is_redone_not_trusted(moving_face, tmp_path, damage):
    out = tmp_path / "fs"
    extract_faceset(MediaSource(moving_face), out, config=FAST)
    index = (out / "index.jsonl").read_bytes()
    (out / "index.jsonl").unlink()
    caches = sorted((out / "cache").iterdir())
    assert caches
    for cache in caches:
        cache.write_text(damage)
    extract_faceset(MediaSource(moving_face), out, config=FAST)
    assert (out / "index.jsonl").read_bytes() == index
    assert all(c.read_text() != damage for c in caches)  # landmarked again and rewritten


def test_parallel_workers_give_the_same_faceset(moving_face, tmp_path):
    extract_faceset(MediaSource(moving_face), tmp_path / "one", config=FAST)
    extract_faceset(MediaSource(moving_face), tmp_path / "two", config=ExtractConfig(workers=2, chunk_frames=4))
    # Each chunk restarts tracking, and dlib's whole-pixel boxes make box refinement settle anywhere in a
    # band about a pixel wide, so chunked runs agree to within that band, not bit for bit.
    one, two = Faceset.open(tmp_path / "one").faces(), Faceset.open(tmp_path / "two").faces()
    assert [r.frame for r in one] == [r.frame for r in two]
    for a, b in zip(one, two):
        assert np.linalg.norm(a.landmarks - b.landmarks, axis=1).mean() < 1.0


def test_frames_without_a_face_are_marked_and_short_gaps_filled(tmp_path):
    frames = _frames(14)
    blank = np.full_like(frames[0], 0.5)
    frames[5] = frames[6] = blank  # a 2-frame dropout: filled by interpolation
    frames[10:] = [blank] * 4  # the face leaves: 4 frames with none
    summary = extract_faceset(MediaSource(_write_sequence(tmp_path / "seq", frames)), tmp_path / "fs", config=FAST)
    records = {r.frame: r for r in Faceset.open(tmp_path / "fs").records()}
    assert len(records) == 14, "every frame has a line"
    assert records[1006].quality == records[1007].quality == "interpolated"
    assert (tmp_path / "fs" / records[1006].crop).is_file()
    assert [f for f, r in records.items() if r.quality == "no_face"] == [1011, 1012, 1013, 1014]
    assert summary.no_face_frames == (1011, 1012, 1013, 1014)


def test_a_shot_without_faces_completes(tmp_path):
    frames = [np.full((128, 128, 3), v, dtype=np.float32) for v in (0.1, 0.5, 0.9)]
    summary = extract_faceset(MediaSource(_write_sequence(tmp_path / "seq", frames)), tmp_path / "fs", config=FAST)
    assert (summary.faces, summary.tracks, summary.no_face_frames) == (0, 0, (1001, 1002, 1003))


@pytest.mark.parametrize(("dtype", "channels", "crop_type"), [
    ("uint16", ("R", "G", "B"), "uint16"),
    ("uint8", ("R", "G", "B", "A"), "uint8"),
    ("uint8", ("Y",), "uint8"),
])
def test_deep_grey_and_rgba_frames(tmp_path, dtype, channels, crop_type):
    frames = _frames(3)
    if channels == ("Y",):
        frames = [f.mean(axis=2, keepdims=True) for f in frames]
    elif "A" in channels:
        frames = [np.concatenate([f, np.ones_like(f[..., :1])], axis=2) for f in frames]
    source = _write_sequence(tmp_path / "seq", frames, dtype=dtype, channels=channels)
    summary = extract_faceset(MediaSource(source), tmp_path / "fs", config=FAST)
    assert summary.faces == 3
    crop = read_image(tmp_path / "fs" / Faceset.open(tmp_path / "fs").faces()[0].crop)
    assert crop.pixel_type == crop_type and crop.channels == ("R", "G", "B")


def test_face_cut_by_the_frame_border(tmp_path):
    frames = [np.ascontiguousarray(np.roll(f, -150, axis=1)[:, :SIZE - 150]) for f in _frames(3)]
    summary = extract_faceset(MediaSource(_write_sequence(tmp_path / "seq", frames)), tmp_path / "fs", config=FAST)
    assert summary.frames == 3  # found or not, nothing raises; the crop is padded where it leaves the plate
    for record in Faceset.open(tmp_path / "fs").faces():
        assert read_image(tmp_path / "fs" / record.crop).size == (256, 256)


def test_tiny_face_needs_min_face_px(tmp_path):
    small = [np.pad(f, ((300, 300), (300, 300), (0, 0)), constant_values=0.3) for f in _frames(2, size=128)]
    source = _write_sequence(tmp_path / "seq", small)  # a ~60 px face in a 728 px frame
    assert extract_faceset(MediaSource(source), tmp_path / "a", config=FAST).faces == 0
    found = extract_faceset(MediaSource(source), tmp_path / "b", config=ExtractConfig(workers=1, min_face_px=50))
    assert found.faces == 2


def test_faceset_of_another_shot_is_refused_before_any_work(moving_face, tmp_path):
    out = tmp_path / "fs"
    extract_faceset(MediaSource(moving_face, shot="sh010"), out, config=FAST)
    before = _snapshot(out)
    with pytest.raises(ConfigError, match="already holds another faceset"):
        extract_faceset(MediaSource(moving_face, shot="sh020"), out, config=FAST)
    with pytest.raises(ConfigError, match="crop_size: 256 here, 128 asked"):
        extract_faceset(MediaSource(moving_face, shot="sh010"), out, config=ExtractConfig(workers=1, crop_size=128))
    assert _snapshot(out) == before


@pytest.mark.parametrize("bad", [{"jitter_beta": -0.1}, {"jitter_shifts": -1}, {"smooth_window": 4},
                                 {"detect_scale": 0.0}, {"chunk_frames": 0}, {"min_face_px": -5.0}, {"track": -1}])
def test_bad_extract_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        ExtractConfig(**bad)


def test_faceset_reads_as_a_torch_dataset(moving_face, tmp_path):
    import torch

    from vfx.faceset.dataset import FacesetDataset

    extract_faceset(MediaSource(moving_face), tmp_path / "fs", config=FAST)
    dataset = FacesetDataset(tmp_path / "fs", track=0)
    assert len(dataset) == 12
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert batch["image"].shape == (4, 3, 256, 256) and batch["image"].dtype == torch.float32
    assert 0.0 <= float(batch["image"].min()) and float(batch["image"].max()) <= 1.0
    assert batch["landmarks"].shape == (4, 68, 2) and batch["frame"].tolist() == [1001, 1002, 1003, 1004]


def test_bad_settings_are_refused_before_anything_is_written(moving_face, tmp_path):
    with pytest.raises(ConfigError, match="power of two"):
        extract_faceset(MediaSource(moving_face), tmp_path / "a", config=ExtractConfig(crop_size=300))
    with pytest.raises(ConfigError, match="FAN landmark weights are missing"):
        extract_faceset(MediaSource(moving_face), tmp_path / "b",
                        config=ExtractConfig(landmarker="fan", models_dir=tmp_path / "no_models"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_contact_sheet_and_jitter_plot(moving_face, tmp_path):
    extract_faceset(MediaSource(moving_face), tmp_path / "fs", config=FAST)
    faceset = Faceset.open(tmp_path / "fs")
    sheet = read_image(write_contact_sheet(faceset, tmp_path / "sheet.png"))
    assert sheet.size == (2 * 160, 6 * 160) and sheet.pixels.std() > 0.05
    plot = read_image(write_jitter_plot(faceset, tmp_path / "jitter.png"))
    assert plot.size[0] > 100 and plot.size[1] > 100


def test_cli_extract_prints_a_summary(moving_face, tmp_path, capsys):
    out = tmp_path / "fs"
    assert entrypoint(["extract", moving_face, "--out", str(out), "--size", "128", "--workers", "1", "--qc"]) == 0
    text = capsys.readouterr().out
    assert "frames 12, faces 12, tracks 1" in text and "frames without a face: none" in text
    assert (out / "contact_sheet.png").is_file() and (out / "qc_jitter.png").is_file()
    assert json.loads((out / "faceset.json").read_text())["crop_size"] == 128


def test_cli_bad_input_exits_2(moving_face, tmp_path, capsys):
    assert entrypoint(["extract", moving_face, "--out", str(tmp_path / "a"), "--size", "100"]) == 2
    assert "power of two" in capsys.readouterr().err
    assert entrypoint(["extract", moving_face, "--out", str(tmp_path / "b"), "--landmarker", "flan"]) == 2
    assert "did you mean 'fan'" in capsys.readouterr().err
    assert entrypoint(["extract", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "c")]) == 2
    assert not any((tmp_path / name).exists() for name in "abc")


def test_two_people_give_two_tracks(tmp_path):
    still = SHARED_DATA / "stills" / "two_people.jpg"
    if not still.is_file():
        pytest.skip(f"real test stills not found at {still.parent} (they live beside the repository)")
    image = read_image(still).pixels
    source = _write_sequence(tmp_path / "seq", [image] * 3)
    summary = extract_faceset(MediaSource(source), tmp_path / "fs", config=ExtractConfig(workers=1, min_face_px=60))
    assert summary.tracks == 2 and summary.faces == 6
    assert summary.track_lengths == {0: 3, 1: 3}


@pytest.mark.slow
def test_shared_clip_extract_and_rerun_unchanged(shared_clips, tmp_path):
    clip = str(shared_clips / "pair_y_kh.mp4")
    out = tmp_path / "fs"
    assert entrypoint(["extract", clip, "--out", str(out), "--frames", "1001-1040"]) == 0
    before = _snapshot(out)
    faceset = Faceset.open(out)
    assert len(faceset.faces(track=0)) == 40
    assert entrypoint(["extract", clip, "--out", str(out), "--frames", "1001-1040"]) == 0
    after = _snapshot(out)
    for name in ("contact_sheet.png",):  # the CLI redraws the sheet on every run
        before.pop(name), after.pop(name)
    assert after == before
