"""The dailies review (issue 18, item 3): the show's OCIO display/view, burn-ins, the slate, the codecs, timecode.

Every shot here is fabricated: an ACEScg half-float EXR plate holding a grey chart (patches of known scene values,
0.18 among them), a few frames at 256x144 (DNxHR's smallest size is 256x120), a separate tone for its sound, and
"rendered" frames that are the plate itself (an empty matte) written through the rendered-frame contract with a
start timecode, so every pixel of the review has a value known in advance.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import PyOpenColorIO as ocio
import pytest

from vfx.cli import entrypoint
from vfx.errors import ColorError, ConfigError, MediaError
from vfx.export import RenderInfo, write_rendered_frame, write_review
from vfx.export.burnin import SYNTHETIC_TAG, BurnIn, burn_in_boxes, draw_burn_ins
from vfx.export.handoff import write_handoff
from vfx.export.review import ReviewLabels, review_frames, review_options
from vfx.io import ffmpeg as ff
from vfx.io.color import DisplayView, load_config
from vfx.io.ffmpeg import find_ffmpeg
from vfx.io.image import ExrMetadata, write_image
from vfx.io.plate import open_plate
from vfx.io.timecode import frame_timecode
from vfx.io.video import VideoReader, probe_video
from vfx.shot import FrameRange, load_shot, save_shot
from vfx.shot.layout import rendered_sequence
from vfx.shot.schema import OutputsConfig, PlateConfig, ReviewOptions, Shot

SIZE = (144, 256)  # (height, width)
FIRST = 1001
COUNT = 4
#: Scene-linear ACEScg values of the chart's columns: black, shadow, 18 % grey, a light grey, white, a highlight.
CHART = (0.0, 0.045, 0.18, 0.5, 1.0, 4.0)


def _ffmpeg(*args: str) -> None:
    proc = subprocess.run([find_ffmpeg(), "-hide_banner", "-nostdin", "-y", *args], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]


def _chart() -> np.ndarray:
    """(H, W, 3) ACEScg grey patches: one column per :data:`CHART` value, neutral."""
    columns = np.repeat(np.array(CHART, np.float32), -(-SIZE[1] // len(CHART)))[: SIZE[1]]
    return np.broadcast_to(columns[None, :, None], (*SIZE, 3)).copy()


def _make_shot(root: Path, fps: Fraction = Fraction(24000, 1001), start_timecode: str = "01:00:00:00", *,
               review: ReviewOptions | None = None, review_path: str = "out/sh010_review.mov") -> Shot:
    """A grey-chart ACEScg shot with its tone and rendered frames, saved and reloaded."""
    plate_dir = root / "plates"
    plate_dir.mkdir(parents=True)
    for frame in range(FIRST, FIRST + COUNT):
        write_image(plate_dir / f"sh010.{frame}.exr", _chart(), channels=("R", "G", "B"), dtype="half",
                    metadata=ExrMetadata(fps=fps, colorspace="ACEScg"))
    tone = root / "sh010.wav"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=48000:duration=1", "-c:a", "pcm_s16le", str(tone))
    (root / "out").mkdir()
    shot = Shot(name="sh010", plate=PlateConfig(path=Path("plates/sh010.####.exr"), fps=fps, colorspace="ACEScg",
                                                audio=Path("sh010.wav")),
                outputs=OutputsConfig(exr=Path("out/sh010_swap.####.exr"), review=Path(review_path)),
                review=review or ReviewOptions())
    save_shot(shot, root / "sh010.yaml")
    shot = load_shot(root / "sh010.yaml")
    plate, frames = open_plate(shot.plate)
    with plate:
        for frame in frames:
            rgb = plate.read(frame).rgb()
            info = RenderInfo(frame=frame, persona="hopper", model="runs/sh010@10", blend="enhanced")
            write_rendered_frame(rendered_sequence(shot).path(frame), rgb, np.zeros(SIZE, np.float32), info,
                                 timecode=frame_timecode(frame, fps, start_frame=FIRST, start_timecode=start_timecode),
                                 fps=fps, colorspace="ACEScg", shot_hash=shot.content_hash())
    return shot


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> Shot:
    return _make_shot(tmp_path_factory.mktemp("dailies"))


def _pictures(shot: Shot, *, view: DisplayView | None = None, labels: ReviewLabels | None = None,
              bit_depth: int = 8) -> list[np.ndarray]:
    plate, frames = open_plate(shot.plate)
    with plate:
        return list(review_frames(plate, rendered_sequence(shot), frames, view=view, labels=labels,
                                  bit_depth=bit_depth))


def _labels(shot: Shot) -> ReviewLabels:
    return ReviewLabels(shot=shot.name, version="sh010_swap 1a2b3c4d", first_timecode="01:00:00:00",
                        fps=shot.plate.fps, first_frame=FIRST)


def _nothing_written(folder: Path, before: set[Path]) -> None:
    assert set(folder.iterdir()) == before, "a refused review left files behind"


# ------------------------------------------------------------------------------------------- display / view


@pytest.mark.parametrize(("display", "view"), [(None, None), ("Rec.1886 Rec.709 - Display", "Un-tone-mapped"),
                                               ("Display P3 - Display", None)])
def test_grey_chart_matches_ocio_display_view(shot: Shot, display: str | None, view: str | None) -> None:
    """Each chart patch of the review (before encoding) is OCIO's own display/view processor's value, to 1/255."""
    config = load_config()
    want_display = display or config.getDefaultDisplay()
    want_view = view or config.getDefaultView(want_display)
    processor = config.getProcessor("ACEScg", want_display, want_view, ocio.TRANSFORM_DIR_FORWARD)
    # the plate is half float: the chart's values as stored (0.18 is 0.17993 in half)
    reference = np.array(CHART, np.float16).astype(np.float32)[:, None].repeat(3, axis=1).copy()
    processor.getDefaultCPUProcessor().applyRGB(reference)
    expected = np.clip(reference, 0, 1) * 255

    dv = DisplayView("ACEScg", display, view)
    assert (dv.display, dv.view) == (want_display, want_view)
    picture = _pictures(shot, view=dv)[0]
    assert picture.shape == (*SIZE, 3) and picture.dtype == np.uint8
    width = -(-SIZE[1] // len(CHART))
    for index in range(len(CHART)):
        patch = picture[:, index * width + 2:(index + 1) * width - 2].reshape(-1, 3).astype(np.float32)
        assert np.abs(patch - expected[index]).max() <= 1.0, (CHART[index], patch[0], expected[index])
    # 16-bit (the ProRes path) to 1/65535 of the same values
    deep = _pictures(shot, view=dv, bit_depth=16)[0]
    patch = deep[:, 2 * width + 2].astype(np.float64) / 65535
    assert np.abs(patch - np.clip(reference[2], 0, 1)).max() <= 1 / 65535 + 1e-6


def test_default_view_is_the_configs_default() -> None:
    config = load_config()
    dv = DisplayView("ACEScg")
    assert dv.display == config.getDefaultDisplay() == "sRGB - Display"
    assert dv.view == config.getDefaultView(dv.display)


def test_unknown_display_or_view_lists_the_valid_ones(shot: Shot, tmp_path: Path) -> None:
    before = set(tmp_path.iterdir())
    with pytest.raises(ColorError) as err:
        write_review(shot, tmp_path / "r.mov", options=ReviewOptions(display="sRGB"))
    assert "'sRGB - Display'" in str(err.value) and "'Rec.1886 Rec.709 - Display'" in str(err.value)
    with pytest.raises(ColorError) as err:
        write_review(shot, tmp_path / "r.mov", options=ReviewOptions(view="ACES SDR"))
    assert "'ACES 2.0 - SDR 100 nits (Rec.709)'" in str(err.value) and "'Un-tone-mapped'" in str(err.value)
    assert isinstance(err.value, ConfigError)
    _nothing_written(tmp_path, before)


# -------------------------------------------------------------------------------------------------- burn-ins


def test_burn_ins_are_in_their_boxes_and_nowhere_else(shot: Shot) -> None:
    clean = _pictures(shot)
    burnt = _pictures(shot, labels=_labels(shot))
    for frame, frame_clean, frame_burnt in zip(range(FIRST, FIRST + COUNT), clean, burnt, strict=True):
        labels = _labels(shot).burn_ins(frame, "hopper")
        boxes = burn_in_boxes(labels, *SIZE)
        assert len(boxes) == 6  # 256x144 holds all six labels
        inside = np.zeros(SIZE, bool)
        for y0, x0, y1, x1 in boxes:
            assert (frame_clean[y0:y1, x0:x1] != frame_burnt[y0:y1, x0:x1]).any()
            inside[y0:y1, x0:x1] = True
        np.testing.assert_array_equal(frame_clean[~inside], frame_burnt[~inside])
    # the SYNTHETIC FACE tag is white on red at the top centre
    (y0, x0, y1, x1), = [b for b, lab in zip(boxes, labels, strict=True) if lab.text == SYNTHETIC_TAG]
    tag = burnt[-1][y0:y1, x0:x1].reshape(-1, 3).astype(int)
    assert abs((x0 + x1) / 2 - SIZE[1] / 2) <= 1 and y0 < SIZE[0] // 4
    red = (tag[:, 0] > 150) & (tag[:, 1] < 60) & (tag[:, 2] < 60)
    white = tag.min(axis=1) > 150
    assert red.mean() > 0.4 and white.mean() > 0.02


def test_burn_ins_name_the_frame_and_its_timecode() -> None:
    labels = ReviewLabels(shot="sh010", version="v", first_timecode="01:00:00;00", fps=Fraction(30000, 1001),
                          first_frame=1000)
    texts = [b.text for b in labels.burn_ins(2800, "hopper")]
    assert texts == ["sh010", SYNTHETIC_TAG, "v", "persona hopper", "2800", "01:01:00;02"]


def test_tiny_pictures_keep_the_synthetic_tag() -> None:
    labels = [BurnIn("sh010", "top-left"), BurnIn(SYNTHETIC_TAG, "top", alert=True),
              BurnIn("sh010_swap 1a2b3c4d", "top-right"), BurnIn("1001", "bottom")]
    boxes = burn_in_boxes(labels, 48, 64)
    assert len(boxes) >= 1
    out = draw_burn_ins(np.full((48, 64, 3), 0.5, np.float32), labels)
    y0, x0, y1, x1 = boxes[0]
    assert (out[y0:y1, x0:x1, 0] > 0.7).mean() > 0.4  # red or white: the tag is there


# ---------------------------------------------------------------------------------------------------- codecs


CODEC_PROBES = {  # codec -> (extension, codec name, profile as ffmpeg names it, pixel format as it decodes)
    "h264": (".mp4", "h264", "High", "yuv420p"),
    "prores422hq": (".mov", "prores", "HQ", "yuv422p10le"),
    # prores_ks writes 4444 at 10 bits (yuv444p10le asked); ffmpeg's decoder reports every 4444 stream as 12-bit
    "prores4444": (".mov", "prores", "4444", "yuv444p12le"),
    "dnxhr_hq": (".mov", "dnxhd", "DNXHR HQ", "yuv422p"),
}


@pytest.mark.parametrize("codec", sorted(CODEC_PROBES))
def test_codecs_probe_as_asked_with_audio_and_exact_fps(shot: Shot, tmp_path: Path, codec: str) -> None:
    ext, name, profile, pix_fmt = CODEC_PROBES[codec]
    info = write_review(shot, tmp_path / f"r{ext}", options=ReviewOptions(codec=codec))
    probed = probe_video(tmp_path / f"r{ext}")
    assert (probed.codec, probed.profile, probed.pix_fmt) == (name, profile, pix_fmt)
    assert probed.fps == Fraction(24000, 1001) and probed.frame_count == COUNT
    assert probed.has_audio and probed.audio_codec == "pcm_s16le"
    assert probed.size == SIZE and probed.timecode == "01:00:00:00"
    assert info.codec == name
    # the decoded grey patch is still the display value (lossy codecs: within a few codes)
    with VideoReader(str(probed.path), start_frame=FIRST) as reader:
        shown = reader.read(FIRST + 1).astype(np.float32)
    expected = _pictures(shot)[1].astype(np.float32)
    rows = slice(SIZE[0] // 3, 2 * SIZE[0] // 3)  # away from the burn-ins
    assert np.abs(shown[rows] - expected[rows]).mean() < 2.5


def test_a_codec_this_ffmpeg_cannot_encode_is_refused(shot: Shot, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ff, "available_encoders", lambda exe: frozenset({"libx264", "aac"}))
    before = set(tmp_path.iterdir())
    with pytest.raises(ConfigError) as err:
        write_review(shot, tmp_path / "r.mov", options=ReviewOptions(codec="prores422hq"))
    assert "prores_ks" in str(err.value) and "h264" in str(err.value)
    _nothing_written(tmp_path, before)
    code = entrypoint(["export", str(shot.plate.path.parent.parent / "sh010.yaml"), "--review",
                       str(tmp_path / "r.mov"), "--codec", "dnxhr_hq"])
    assert code == 2
    _nothing_written(tmp_path, before)


def test_prores_and_dnxhr_need_a_mov(shot: Shot, tmp_path: Path) -> None:
    before = set(tmp_path.iterdir())
    for codec in ("prores422hq", "prores4444", "dnxhr_hq"):
        with pytest.raises(ConfigError, match=r"\.mov"):
            write_review(shot, tmp_path / "r.mp4", options=ReviewOptions(codec=codec))
    _nothing_written(tmp_path, before)


def test_dnxhr_refuses_a_picture_under_256x120(tmp_path: Path) -> None:
    from vfx.io.video import encode_video

    with pytest.raises(MediaError, match="256x120"):
        encode_video([np.zeros((48, 64, 3), np.uint8)] * 2, tmp_path / "d.mov", fps=25, codec="dnxhr_hq")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ slate, timecode


def _first_audio_time(path: Path) -> Fraction:
    proc = subprocess.run([find_ffmpeg(), "-hide_banner", "-nostdin", "-copyts", "-i", str(path), "-map", "0:a:0",
                           "-c", "copy", "-f", "framecrc", "-"], capture_output=True, check=True)
    lines = proc.stdout.decode().splitlines()
    tb = Fraction(next(x for x in lines if x.startswith("#tb")).split(":")[1].strip())
    first = next(x for x in lines if not x.startswith("#"))
    return int(first.split(",")[2]) * tb


def test_slate_comes_one_frame_before_with_timecode_and_sound_in_step(shot: Shot, tmp_path: Path) -> None:
    fps = shot.plate.fps
    plain = write_review(shot, tmp_path / "plain.mov", options=ReviewOptions(codec="prores422hq"))
    slated = write_review(shot, tmp_path / "slate.mov", options=ReviewOptions(codec="prores422hq", slate=True))
    assert slated.frame_count == plain.frame_count + 1 == COUNT + 1
    assert slated.timecode == frame_timecode(FIRST - 1, fps, start_frame=FIRST, start_timecode="01:00:00:00")
    assert slated.timecode == "00:59:59:23"
    assert _first_audio_time(plain.path) == 0
    assert abs(_first_audio_time(slated.path) - 1 / fps) < Fraction(1, 48000)  # the sound starts with picture 1
    with VideoReader(str(slated.path), start_frame=FIRST - 1) as slate_reader, \
            VideoReader(str(plain.path), start_frame=FIRST) as plain_reader:
        card = slate_reader.read(FIRST - 1).astype(np.float32)
        np.testing.assert_allclose(slate_reader.read(FIRST).astype(np.float32),
                                   plain_reader.read(FIRST).astype(np.float32), atol=2)
    assert card.mean() < 60  # a dark card ...
    assert (card.reshape(-1, 3)[:, 0] - card.reshape(-1, 3)[:, 1] > 120).sum() > 50  # ... with the red tag


@pytest.mark.parametrize(("fps", "start", "later"), [
    (Fraction(30000, 1001), "00:59:59;28", "01:00:00;00"),  # drop-frame, across the minute (no ;00 skip at 10s)
    (Fraction(30000, 1001), "01:00:59;28", "01:01:00;02"),  # drop-frame: ;00 and ;01 are skipped
    (Fraction(25), "10:00:00:00", "10:00:00:02"),
])
def test_review_timecode_round_trips(tmp_path: Path, fps: Fraction, start: str, later: str) -> None:
    shot = _make_shot(tmp_path, fps, start, review=ReviewOptions(burn_ins=False))
    info = write_review(shot, tmp_path / "r.mp4")
    assert probe_video(info.path).timecode == start
    later_info = write_review(shot, tmp_path / "later.mp4", FrameRange.parse(f"{FIRST + 2}-{FIRST + 3}"))
    assert probe_video(later_info.path).timecode == later


# ------------------------------------------------------------------------------------- hand-off and options


def test_handoff_takes_the_shots_review_block_and_the_cli_overrides_it(tmp_path: Path) -> None:
    shot = _make_shot(tmp_path, review=ReviewOptions(codec="prores422hq", slate=True))
    lines = write_handoff(shot)
    assert any("prores422hq" in line and "slate" in line for line in lines)
    probed = probe_video(shot.outputs.review)
    assert probed.codec == "prores" and probed.frame_count == COUNT + 1
    out = tmp_path / "out" / "proxy.mp4"
    code = entrypoint(["export", str(tmp_path / "sh010.yaml"), "--review", str(out), "--codec", "h264",
                       "--no-slate", "--no-burn-ins", "--view", "Un-tone-mapped"])
    assert code == 0
    probed = probe_video(out)
    assert probed.codec == "h264" and probed.frame_count == COUNT


def test_cli_refuses_an_unknown_view_with_nothing_written(shot: Shot, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    before = set(tmp_path.iterdir())
    code = entrypoint(["export", str(shot.plate.path.parent.parent / "sh010.yaml"), "--review",
                       str(tmp_path / "r.mov"), "--view", "Filmic"])
    assert code == 2
    assert "Un-tone-mapped" in capsys.readouterr().err
    _nothing_written(tmp_path, before)


def test_review_options_merge() -> None:
    shot = Shot(name="sh010", plate=PlateConfig(path=Path("p.####.exr")), review=ReviewOptions(codec="dnxhr_hq"))
    assert review_options(shot).codec == "dnxhr_hq"
    assert review_options(shot, codec="h264", slate=True).model_dump() == {
        "display": None, "view": None, "codec": "h264", "slate": True, "burn_ins": True}
    with pytest.raises(ConfigError):
        review_options(shot, codec="av1")


def test_an_overscan_plate_is_reviewed_in_its_display_window() -> None:
    from types import SimpleNamespace

    from vfx.export.review import as_delivered
    from vfx.io.image import Window

    rgb = np.arange(64 * 80 * 3, dtype=np.float32).reshape(64, 80, 3)
    overscan = SimpleNamespace(overscan=True, data_window=Window(-8, -8, 64, 80), display_window=Window(0, 0, 48, 64),
                               squeezed=False)
    np.testing.assert_array_equal(as_delivered(rgb, overscan), rgb[8:56, 8:72])
    cropped = SimpleNamespace(overscan=True, data_window=Window(4, 4, 40, 56), display_window=Window(0, 0, 48, 64),
                              squeezed=False)
    shown = as_delivered(rgb[:40, :56], cropped)
    assert shown.shape == (48, 64, 3) and not shown[:4].any() and not shown[:, :4].any()
    np.testing.assert_array_equal(shown[4:44, 4:60], rgb[:40, :56])
