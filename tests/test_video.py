"""Tests for vfx.io.ffmpeg and vfx.io.video.

Real clips live outside the repo in ``../shared/data/clips`` (never committed); tests that need them skip
when that folder is missing. Synthetic clips are made by ffmpeg's lavfi sources into temporary folders.
"""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vfx.errors import ConfigError, ExternalToolError, FrameRangeError, MediaError
from vfx.io import ffmpeg as ff
from vfx.io.video import VideoInfo, VideoReader, encode_video, probe_video
from vfx.io.video import probe as video_mod

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLIPS = DATA / "clips"
needs_clips = pytest.mark.skipif(
    not CLIPS.is_dir(), reason=f"real test clips not found at {CLIPS} (shared data folder is not on this machine)"
)

#: name -> (frames, fps, (height, width), codec)
REAL_CLIPS = {
    "persona_a_d6.mp4": (1008, Fraction(30), (480, 480), "h264"),
    "persona_b_d14.mp4": (536, Fraction(30), (512, 512), "h264"),
    "pair_x_aoc.mp4": (200, Fraction(25), (512, 512), "mpeg4"),
    "pair_y_kh.mp4": (200, Fraction(25), (512, 512), "mpeg4"),
}
SEED = 20240611
N_SEEKS = 20


# ----------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def exe() -> str:
    return ff.find_ffmpeg()


def _ffmpeg(exe: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([exe, "-hide_banner", "-nostdin", "-nostats", "-y", *args], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return proc


def _packet_lines(exe: str, path: Path, stream: str) -> list[list[str]]:
    """framecrc packet lines (fields) of one stream, stream-copied (no decode)."""
    out = _ffmpeg(exe, "-i", str(path), "-map", stream, "-c", "copy", "-f", "framecrc", "-").stdout.decode()
    return [[f.strip() for f in line.split(",")] for line in out.splitlines() if line and not line.startswith("#")]


def _audio_seconds(exe: str, path: Path) -> float:
    out = _ffmpeg(exe, "-i", str(path), "-map", "0:a:0", "-c", "copy", "-f", "framecrc", "-").stdout.decode()
    tb = Fraction(next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("#tb")))
    pk = [[int(f) for f in line.split(",")[1:4]] for line in out.splitlines() if line and not line.startswith("#")]
    return float((max(p[1] + p[2] for p in pk) - min(p[1] for p in pk)) * tb)


def _decoded_frame_count(exe: str, path: Path) -> int:
    """Frames a plain ffmpeg decode returns, counted independently of vfx.io.video."""
    out = _ffmpeg(exe, "-i", str(path), "-map", "0:V:0", "-fps_mode", "passthrough", "-f", "framemd5", "-").stdout
    return sum(1 for line in out.decode().splitlines() if line and not line.startswith("#"))


def _assert_seeks_exact(path: Path, n: int = N_SEEKS, seed: int = SEED) -> list[int]:
    """Frame k by seeking == frame k of a full sequential decode, bit for bit, for n random k."""
    info = probe_video(path)
    rng = random.Random(seed)
    ks = sorted(rng.sample(range(info.frame_count), min(n, info.frame_count)))
    wanted = set(ks)
    reference: dict[int, np.ndarray] = {}
    count = 0
    with VideoReader(path, start_frame=0) as reader:
        for number, image in reader.frames():
            count += 1
            if number in wanted:
                reference[number] = image  # only the sampled frames stay in memory
    assert count == info.frame_count
    order = ks[:]
    rng.shuffle(order)  # backwards and forwards jumps, far and near, on one reader
    with VideoReader(path, start_frame=0) as reader:
        for k in order:
            np.testing.assert_array_equal(reader.read(k), reference[k], err_msg=f"{path.name} frame {k}")
    # and each from a cold start
    for k in ks[:5]:
        with VideoReader(path, start_frame=0) as reader:
            np.testing.assert_array_equal(reader.read(k), reference[k], err_msg=f"{path.name} frame {k} (cold)")
    return ks


def _gradient_frames(
    n: int, height: int, width: int, *, alpha: bool = False, dtype: type = np.uint8
) -> list[np.ndarray]:
    top = 255 if dtype is np.uint8 else 65535
    yy, xx = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(n):
        r = (xx * top // max(width - 1, 1) + i * 7 * (top // 255)) % (top + 1)
        g = yy * top // max(height - 1, 1)
        b = np.full_like(xx, (i * 31 * (top // 255)) % (top + 1))
        channels = [r, g, b]
        if alpha:
            channels.append((xx + yy) * top // (width + height - 2))
        frames.append(np.stack(channels, axis=-1).astype(dtype))
    return frames


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory, exe: str) -> dict[str, Path]:
    """Small synthetic clips: H.264 with B-frames and short GOPs at 30000/1001, sine audio, timecode."""
    root = tmp_path_factory.mktemp("synth")
    clip = root / "synth.mp4"
    _ffmpeg(
        exe,
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30000/1001",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", "3", "-c:v", "libx264", "-g", "12", "-bf", "3", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-timecode", "01:00:00:00", str(clip),
    )  # fmt: skip
    # Stream-copy cut at a non-keyframe: the mp4 gets an edit list and packets the decoder must discard.
    cut = root / "cut_editlist.mp4"
    _ffmpeg(exe, "-ss", "0.5", "-i", str(clip), "-c", "copy", str(cut))
    tone = root / "tone_1s.m4a"
    _ffmpeg(exe, "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=44100:duration=1", "-c:a", "aac", str(tone))
    empty = root / "no_video_packets.mkv"
    _ffmpeg(
        exe,
        "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=1",
        "-f", "lavfi", "-i", "sine=duration=1",
        "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "aac", "-bsf:v", "noise=drop=1", str(empty),
    )  # fmt: skip
    ts = root / "remux.ts"  # MPEG-TS starts at 1.4 s: -ss counts from the container start
    _ffmpeg(exe, "-i", str(clip), "-c", "copy", str(ts))
    mkv = root / "remux.mkv"  # 1/1000 time base, 33 ms stored on every 29.97 fps frame
    _ffmpeg(exe, "-i", str(clip), "-c", "copy", str(mkv))
    rotated = root / "rotated.mp4"
    _ffmpeg(exe, "-display_rotation", "90", "-i", str(clip), "-map", "0:v", "-c", "copy", str(rotated))
    return {"clip": clip, "cut": cut, "ts": ts, "mkv": mkv, "tone": tone, "empty": empty, "rotated": rotated}


# ------------------------------------------------------------------------- argv builders (no binary)


def test_probe_argv_lists_packets_without_decoding() -> None:
    argv = ff.probe_argv("ffmpeg", Path("/x/plate.mp4"))
    assert argv[0] == "ffmpeg"
    assert argv[argv.index("-i") + 1] == "/x/plate.mp4"
    assert "-copyts" in argv and argv.index("-copyts") < argv.index("-i")
    assert argv[argv.index("-map") + 1] == "0:V:0"
    assert argv[argv.index("-c") + 1] == "copy"
    assert argv[argv.index("-f") + 1] == "framecrc"
    assert argv[-1] == "-"


def test_decode_argv_plain_and_seeking() -> None:
    plain = ff.decode_argv("ffmpeg", "a.mp4", pix_fmt="rgb24")
    assert "-ss" not in plain and "select" not in " ".join(plain)
    graph = plain[plain.index("-filter_complex") + 1]
    assert f"scale=flags={ff.SWS_FLAGS}" in graph and "format=rgb24" in graph
    assert plain[plain.index("-fps_mode") + 1] == "passthrough"
    assert plain[plain.index("-f") + 1] == "rawvideo"
    assert plain[-1] == "pipe:"

    seek = ff.decode_argv("ffmpeg", "a.mp4", pix_fmt="rgb48le", seek_s=Fraction(8, 3), select_from_s=8.35)
    i = seek.index("-i")
    assert seek.index("-ss") < i and seek.index("-noaccurate_seek") < i and seek.index("-copyts") < i
    assert seek[seek.index("-ss") + 1] == "2.666666"  # rounded down: never past the keyframe
    graph = seek[seek.index("-filter_complex") + 1]
    # select before scale so dropped frames are never converted
    assert graph.index("select=gte(t\\,8.35)") < graph.index("scale=") < graph.index("format=rgb48le")


def test_encode_argv_h264_review_proxy() -> None:
    argv = ff.encode_argv(
        "ffmpeg", "o.mp4", width=640, height=360, input_pix_fmt="rgb24", fps=Fraction(30000, 1001), codec="h264"
    )
    first_input = argv.index("-i")
    assert argv[first_input + 1] == "pipe:"
    assert argv[argv.index("-framerate") + 1] == "30000/1001" and argv.index("-framerate") < first_input
    assert argv[argv.index("-s") + 1] == "640x360"
    assert argv[argv.index("-pix_fmt") + 1] == "rgb24"  # input side
    assert argv[argv.index("-r") + 1] == "30000/1001"
    assert argv[argv.index("-c:v") + 1] == "libx264"
    assert argv[argv.index("-crf") + 1] == "18"
    assert argv[argv.index("-movflags") + 1] == "+faststart"
    assert "format=yuv420p" in argv[argv.index("-filter_complex") + 1]
    assert "-y" in argv and "-shortest" not in argv and "-timecode" not in argv
    assert argv[-1] == "o.mp4"


def test_encode_argv_prores_alpha_and_timecode() -> None:
    argv = ff.encode_argv(
        "ffmpeg", "o.mov", width=8, height=8, input_pix_fmt="rgba64le", fps=Fraction(25), codec="prores4444",
        has_alpha=True, timecode="01:00:00:00",
    )  # fmt: skip
    assert argv[argv.index("-c:v") + 1] == "prores_ks"
    assert argv[argv.index("-profile:v") + 1] == "4"
    assert "format=yuva444p10le" in argv[argv.index("-filter_complex") + 1]
    assert argv[argv.index("-timecode") + 1] == "01:00:00:00"
    assert argv[argv.index("-r") + 1] == "25"
    opaque = ff.encode_argv(
        "ffmpeg", "o.mov", width=8, height=8, input_pix_fmt="rgb24", fps=Fraction(25), codec="prores4444"
    )
    assert "format=yuv444p10le" in opaque[opaque.index("-filter_complex") + 1]


def test_mux_audio_argv_copies_and_cuts_audio_at_input() -> None:
    argv = ff.mux_audio_argv("ffmpeg", "v.mp4", "plate.mov", "o.mp4", codec="h264", audio_duration_s=Fraction(10, 3))
    inputs = [i for i, a in enumerate(argv) if a == "-i"]
    assert [argv[i + 1] for i in inputs] == ["v.mp4", "plate.mov"]
    assert inputs[0] < argv.index("-t") < inputs[1]  # -t limits the audio input only
    assert argv[argv.index("-t") + 1] == "3.333334"  # rounded up: never cut audio short
    maps = [argv[i + 1] for i, a in enumerate(argv) if a == "-map"]
    assert maps == ["0:v:0", "1:a?"]
    assert argv[argv.index("-c") + 1] == "copy"
    assert "-shortest" not in argv


def test_calibration_argv_sets_exact_white() -> None:
    argv = ff.calibration_argv("ffmpeg", source_pix_fmt="yuv422p10le", full_range=False, pix_fmt="rgb48le")
    assert argv is not None
    graph = argv[argv.index("-filter_complex") + 1]
    assert "format=yuv422p10le" in graph and "lutyuv=" in graph and "y=maxval" in graph
    assert graph.index("lutyuv") < graph.index(f"scale=flags={ff.SWS_FLAGS}") < graph.index("format=rgb48le")
    rgb = ff.calibration_argv("ffmpeg", source_pix_fmt="rgb24", full_range=True, pix_fmt="rgb48le")
    assert rgb is not None and "lutrgb=" in " ".join(rgb)
    assert ff.calibration_argv("ffmpeg", source_pix_fmt="yuv420p10le", full_range=True, pix_fmt="rgb48le") is None


def test_builders_reject_unknown_codec() -> None:
    with pytest.raises(ConfigError, match="prores4444"):
        ff.encode_argv("ffmpeg", "o.mp4", width=2, height=2, input_pix_fmt="rgb24", fps=Fraction(24), codec="dnxhd")


def test_small_formatters() -> None:
    assert ff.format_rational(Fraction(30000, 1001)) == "30000/1001"
    assert ff.format_rational(25) == "25"
    assert ff.seconds_arg(Fraction(1001, 30000)) == "0.033366"
    assert ff.seconds_arg(Fraction(1001, 30000), round_up=True) == "0.033367"
    assert ff.seconds_arg(Fraction(-1, 3)) == "-0.333334"
    assert ff.raw_pix_fmt(16, 4) == "rgba64le"
    with pytest.raises(ConfigError):
        ff.raw_pix_fmt(10, 3)
    assert ff.stderr_tail("a\n\nb\rc\n", 2) == "b | c"


def test_find_ffmpeg_prefers_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ff.shutil, "which", lambda name: "/opt/studio/bin/ffmpeg")
    assert ff.find_ffmpeg() == "/opt/studio/bin/ffmpeg"
    monkeypatch.setattr(ff.shutil, "which", lambda name: None)
    import imageio_ffmpeg

    assert ff.find_ffmpeg() == imageio_ffmpeg.get_ffmpeg_exe()


# ------------------------------------------------------------------------------ parsers (no binary)

_STDERR = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mov':
  Metadata:
    major_brand     : qt
    timecode        : 01:00:10:05
  Duration: 00:00:33.62, start: -0.021333, bitrate: 468 kb/s
  Stream #0:0[0x1](eng): Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 300x300, 90k tbr, 90k tbn (attached pic)
  Stream #0:1[0x2](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 1920x1080 [SAR 1:1 DAR 16:9], 330 kb/s, 29.97 fps, 29.97 tbr, 30k tbn (default)
    Metadata:
      handler_name    : Core Media Video
    Side data:
      Display Matrix: rotation of -90.00 degrees
  Stream #0:2[0x3](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo, fltp, 128 kb/s (default)
Stream mapping:
  Stream #0:1 -> #0:0 (copy)
Output #0, framecrc, to 'pipe:':
  Stream #0:0(und): Video: vp9, yuv444p, 16x16, q=2-31
"""


def test_parse_stream_header() -> None:
    h = video_mod._parse_stream_header(_STDERR)
    assert h.video_codec == "h264"  # the attached picture is skipped, like -map 0:V:0 does
    assert h.pix_fmt == "yuv420p"
    assert (h.width, h.height) == (1920, 1080)  # not fooled by "0x31637661"
    assert h.rotation == 270
    assert h.audio_codecs == ("aac",)
    assert h.timecode == "01:00:10:05"
    assert h.container_start == Fraction(-21333, 1_000_000)


def test_parse_framecrc_flags_and_side_data() -> None:
    text = (
        "#tb 0: 1/15360\n#codec_id 0: h264\n#dimensions 0: 480x270\n"
        "0,      -1024,      -512,      512,     8487, 0x6f553868, F=0x5\n"
        "0,       -512,       0,      512,     1191, 0x397f34ec, F=0x0, S=1,        8, 0x0c8a0d2a\n"
        "0,          0,       512,      512,      296, 0x72a49335\n"
    )
    listing = video_mod._parse_framecrc(text)
    assert listing.time_base == Fraction(1, 15360)
    assert (listing.width, listing.height, listing.codec) == (480, 270, "h264")
    assert [p.flags for p in listing.packets] == [0x5, 0x0, 0x1]
    assert [p.pts for p in listing.packets] == [-512, 0, 512]


def test_frame_rate_from_durations_and_jitter() -> None:
    P = video_mod._Packet
    tb = Fraction(1, 15360)
    exact = [P(i * 512, i * 512, 512, 0) for i in range(10)]
    assert video_mod._frame_rate(exact, [p.pts for p in exact], tb) == 30
    # 29.97 fps in a 1/15360 time base: durations alternate 512/513 ticks
    pts = [round(i * Fraction(15360 * 1001, 30000)) for i in range(300)]
    jitter = [P(a, a, b - a, 0) for a, b in zip(pts, pts[1:], strict=False)]
    assert video_mod._frame_rate(jitter, pts[:-1], tb) == Fraction(30000, 1001)
    # Matroska: 1/1000 time base, every packet claims 33 ms, timestamps say 29.97
    ms = [round(i * Fraction(1001, 30)) for i in range(90)]
    mkv = [P(t, t, 33, 0) for t in ms]
    assert video_mod._frame_rate(mkv, ms, Fraction(1, 1000)) == Fraction(30000, 1001)
    assert video_mod._frame_rate([P(0, 0, 1001, 0)], [0], Fraction(1, 24000)) == Fraction(24000, 1001)


# ------------------------------------------------------------------------------------- probing


@needs_clips
@pytest.mark.parametrize("name", sorted(REAL_CLIPS))
def test_probe_real_clips(name: str) -> None:
    frames, fps, size, codec = REAL_CLIPS[name]
    info = probe_video(CLIPS / name)
    assert info.frame_count == frames
    assert info.fps == fps and isinstance(info.fps, Fraction)
    assert info.size == size
    assert info.codec == codec
    assert info.pix_fmt == "yuv420p"
    assert info.has_audio and info.audio_codec == "aac"
    assert info.timecode is None
    assert len(info.pts) == frames and list(info.pts) == sorted(info.pts)
    assert info.duration_s == pytest.approx(frames / fps)
    assert info.seek_points[0][0] == 0


def test_probe_synthetic(synth: dict[str, Path], exe: str) -> None:
    info = probe_video(synth["clip"])
    assert info.fps == Fraction(30000, 1001)
    assert info.size == (120, 160)
    assert info.timecode == "01:00:00:00"
    assert info.has_audio and info.audio_codec == "aac"
    assert info.frame_count == _decoded_frame_count(exe, synth["clip"])
    assert len(info.seek_points) > 3  # -g 12: several GOPs to seek between


def test_probe_counts_edit_list_frames_like_the_decoder(synth: dict[str, Path], exe: str) -> None:
    packets = _packet_lines(exe, synth["cut"], "0:v:0")
    assert any(f.startswith("F=") and int(f[2:], 16) & 0x4 for p in packets for f in p[6:]), "no discarded packets"
    info = probe_video(synth["cut"])
    assert info.frame_count == _decoded_frame_count(exe, synth["cut"]) < len(packets)


def test_probe_rotated_clip_reports_displayed_size(synth: dict[str, Path]) -> None:
    info = probe_video(synth["rotated"])
    assert info.rotation in (90, 270)
    assert info.size == (160, 120)
    with VideoReader(synth["rotated"]) as reader:
        assert reader.read(1001).shape == (160, 120, 3)


# ------------------------------------------------------------------------------------- reading


def test_reader_basics(synth: dict[str, Path]) -> None:
    with VideoReader(synth["clip"]) as reader:
        n = reader.info.frame_count
        assert len(reader) == n
        assert reader.frame_range == (1001, 1000 + n)
        image = reader.read(1001)
        assert image.shape == (120, 160, 3) and image.dtype == np.uint8 and image.flags.writeable
        numbers = [number for number, _ in reader.frames(1005, 1009)]
        assert numbers == [1005, 1006, 1007, 1008, 1009]
    with VideoReader(synth["clip"], start_frame=1) as reader:
        assert reader.frame_range == (1, n)


def test_frame_out_of_range(synth: dict[str, Path]) -> None:
    with VideoReader(synth["clip"]) as reader:
        last = reader.frame_range[1]
        for bad in (1000, last + 1, 0):
            with pytest.raises(FrameRangeError, match=f"1001-{last}"):
                reader.read(bad)
        with pytest.raises(FrameRangeError):
            list(reader.frames(1010, 1005))
        with pytest.raises(FrameRangeError):
            list(reader.frames(1001, last + 5))


@pytest.mark.parametrize("kind", ["clip", "cut", "ts"])
def test_seek_exact_synthetic(synth: dict[str, Path], kind: str) -> None:
    """B-frames and 12-frame GOPs; an edit list with discarded packets; a non-zero container start."""
    _assert_seeks_exact(synth[kind])


def test_probe_other_containers(synth: dict[str, Path]) -> None:
    for kind in ("ts", "mkv"):
        info = probe_video(synth[kind])
        assert info.fps == Fraction(30000, 1001), kind
        assert info.frame_count == probe_video(synth["clip"]).frame_count, kind
    assert probe_video(synth["ts"]).container_start > 1


@needs_clips
def test_seek_exact_short_real_clip() -> None:
    _assert_seeks_exact(CLIPS / "pair_x_aoc.mp4")


@needs_clips
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REAL_CLIPS))
def test_seek_exact_real_clips_full(name: str, exe: str) -> None:
    path = CLIPS / name
    assert probe_video(path).frame_count == _decoded_frame_count(exe, path) == REAL_CLIPS[name][0]
    _assert_seeks_exact(path)


def test_read_16bit(synth: dict[str, Path]) -> None:
    with VideoReader(synth["clip"], bit_depth=16) as r16, VideoReader(synth["clip"]) as r8:
        for frame in (1001, 1030, 1002):
            deep, shallow = r16.read(frame), r8.read(frame)
            assert deep.dtype == np.uint16 and deep.shape == shallow.shape
            diff = deep.astype(np.int32) / 257.0 - shallow
            # same picture, no gain error: only the 8-bit rounding separates them
            assert np.abs(diff).max() <= 1.0 and abs(diff.mean()) < 0.05 and np.abs(diff).mean() < 0.3
        assert len(np.unique(deep)) > len(np.unique(shallow))  # more than 256 levels survive
    with pytest.raises(ConfigError):
        VideoReader(synth["clip"], bit_depth=10)


def test_read_16bit_white_is_full_scale(tmp_path: Path) -> None:
    # libswscale alone gives 65283 here (it widens by 256, not 257); the reader measures and corrects it
    white = np.full((32, 32, 3), 255, np.uint8)
    out = tmp_path / "white.mp4"
    encode_video([white] * 3, out, fps=25)
    with VideoReader(out, bit_depth=16) as reader:
        assert reader.read(1001).min() == 65535
    assert _read_all(out)[0].min() == 255


def test_close_reaps_ffmpeg(synth: dict[str, Path]) -> None:
    reader = VideoReader(synth["clip"])
    reader.read(1010)
    proc = reader._proc
    assert proc is not None and proc.poll() is None
    reader.close()
    assert proc.poll() is not None  # exited and waited for: no zombie
    if Path("/proc").is_dir():
        assert not Path(f"/proc/{proc.pid}").exists()
    assert reader.read(1001).shape == (120, 160, 3)  # usable again after close
    reader.read(reader.frame_range[1])
    assert reader._proc is None  # stream finished: process already gone
    reader.close()


# ------------------------------------------------------------------------------------ bad input


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not found"):
        probe_video(tmp_path / "nope.mp4")
    with pytest.raises(MediaError):
        VideoReader(tmp_path / "nope.mp4")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="directory"):
        VideoReader(tmp_path)


def test_text_file_named_mp4(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a movie\n")
    with pytest.raises(MediaError, match="cannot read as video") as err:
        probe_video(fake)
    assert not isinstance(err.value, ExternalToolError)


def test_truncated_mp4(tmp_path: Path, synth: dict[str, Path]) -> None:
    source = CLIPS / "pair_x_aoc.mp4" if CLIPS.is_dir() else synth["clip"]
    data = source.read_bytes()
    half = tmp_path / "half.mp4"
    half.write_bytes(data[: len(data) // 2])  # moov at the end: index gone
    with pytest.raises(MediaError, match="moov atom"):
        probe_video(half)


def test_truncated_faststart_mp4(tmp_path: Path, synth: dict[str, Path], exe: str) -> None:
    faststart = tmp_path / "fs.mp4"
    _ffmpeg(exe, "-i", str(synth["clip"]), "-c", "copy", "-movflags", "+faststart", str(faststart))
    data = faststart.read_bytes()
    half = tmp_path / "fs_half.mp4"
    half.write_bytes(data[: len(data) // 2])  # index intact, packets missing: ffmpeg exits 0
    with pytest.raises(MediaError, match="truncated"):
        probe_video(half)


def test_no_video_packets(synth: dict[str, Path]) -> None:
    with pytest.raises(MediaError, match="no frames"):
        probe_video(synth["empty"])


def test_audio_only_file(synth: dict[str, Path]) -> None:
    with pytest.raises(MediaError, match="no video stream"):
        probe_video(synth["tone"])


# ------------------------------------------------------------------------------------- encoding


def _read_all(path: Path, **kwargs: int | bool) -> list[np.ndarray]:
    with VideoReader(path, **kwargs) as reader:  # type: ignore[arg-type]
        return [image for _, image in reader.frames()]


def test_encode_h264_ntsc_rate_with_synthetic_audio(tmp_path: Path, synth: dict[str, Path], exe: str) -> None:
    frames = _gradient_frames(40, 64, 96)
    out = tmp_path / "review.mp4"
    info = encode_video(iter(frames), out, fps=Fraction(30000, 1001), audio_from=synth["clip"], timecode="01:00:00:00")
    assert isinstance(info, VideoInfo) and info.path == out
    back = probe_video(out)
    assert back.frame_count == 40
    assert back.fps == Fraction(30000, 1001)
    assert back.codec == "h264" and back.pix_fmt == "yuv420p" and back.size == (64, 96)
    assert back.has_audio and back.audio_codec == "aac"
    assert back.timecode == "01:00:00:00"
    # audio cut to the picture (to within one AAC frame), not left at the source's 3 s
    assert _audio_seconds(exe, out) == pytest.approx(40 * 1001 / 30000, abs=0.05)
    # copied, not re-encoded: packet checksums match the source
    src = [p[5] for p in _packet_lines(exe, synth["clip"], "0:a:0")]
    dst = [p[5] for p in _packet_lines(exe, out, "0:a:0")]
    assert dst == src[: len(dst)]
    decoded = _read_all(out)
    assert len(decoded) == 40
    err = np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(frames, decoded, strict=True)])
    assert err < 2.0
    assert [p.name for p in tmp_path.iterdir()] == ["review.mp4"]  # no temp files left


@needs_clips
def test_encode_25fps_with_real_audio(tmp_path: Path) -> None:
    frames = _gradient_frames(30, 48, 64)
    out = tmp_path / "proxy.mp4"
    encode_video(frames, out, fps=25, audio_from=CLIPS / "pair_x_aoc.mp4")
    info = probe_video(out)
    assert (info.frame_count, info.fps, info.audio_codec) == (30, Fraction(25), "aac")
    assert info.duration_s == pytest.approx(1.2)


def test_encode_keeps_all_frames_when_audio_is_shorter(tmp_path: Path, synth: dict[str, Path], exe: str) -> None:
    out = tmp_path / "long.mp4"
    encode_video(_gradient_frames(50, 32, 32), out, fps=25, audio_from=synth["tone"])  # 2 s picture, 1 s audio
    info = probe_video(out)
    assert info.frame_count == 50 and info.has_audio
    assert _audio_seconds(exe, out) == pytest.approx(1.0, abs=0.05)


def test_encode_without_audio_source_audio(tmp_path: Path, synth: dict[str, Path]) -> None:
    silent = tmp_path / "silent.mp4"
    encode_video(_gradient_frames(5, 32, 32), silent, fps=25)
    out = tmp_path / "again.mp4"
    encode_video(_gradient_frames(5, 32, 32), out, fps=25, audio_from=silent)  # logged, not fatal
    assert not probe_video(out).has_audio


def test_prores4444_alpha_round_trip(tmp_path: Path) -> None:
    frames = _gradient_frames(6, 48, 64, alpha=True)
    out = tmp_path / "master.mov"
    info = encode_video(frames, out, fps=Fraction(24000, 1001), codec="prores4444", timecode="00:59:59:00")
    assert info.codec == "prores" and info.pix_fmt.startswith("yuva444")
    assert info.fps == Fraction(24000, 1001) and info.frame_count == 6
    assert info.timecode == "00:59:59:00"
    back = _read_all(out, with_alpha=True)
    assert back[0].shape == (48, 64, 4)
    for a, b in zip(frames, back, strict=True):
        assert np.abs(a[..., 3].astype(int) - b[..., 3]).max() <= 1  # alpha comes back
        assert np.abs(a[..., :3].astype(int) - b[..., :3]).mean() < 1.0
    assert _read_all(out)[0].shape == (48, 64, 3)


def test_prores_16bit_round_trip(tmp_path: Path) -> None:
    # libswscale takes 65280 as 16-bit white on the way in and writes 65283 on the way out; both are
    # measured and corrected, so full scale survives and the mean error stays far below one 8-bit step
    frames = _gradient_frames(3, 32, 48, dtype=np.uint16)
    frames[0][:] = 65535  # a whole white frame: an edge would ring in ProRes's DCT blocks
    out = tmp_path / "deep.mov"
    info = encode_video(frames, out, fps=24, codec="prores4444", bit_depth=16)
    assert info.pix_fmt.startswith("yuv444")  # RGB in: no alpha plane
    back = _read_all(out, bit_depth=16)
    assert back[0].dtype == np.uint16
    assert back[0].min() >= 65535 - 64  # white stays white (10-bit ProRes: one code is 64)
    err = np.mean([np.abs(a.astype(np.int64) - b).mean() for a, b in zip(frames, back, strict=True)])
    assert err < 65535 / 1000  # well inside one 8-bit step (257)


def test_encode_rejects_bad_arguments(tmp_path: Path) -> None:
    frames = _gradient_frames(2, 16, 16)
    with pytest.raises(ConfigError, match=r"\.mov"):
        encode_video(frames, tmp_path / "m.mp4", fps=24, codec="prores4444")
    with pytest.raises(ConfigError, match="Fraction"):
        encode_video(frames, tmp_path / "a.mp4", fps=29.97)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="timecode"):
        encode_video(frames, tmp_path / "a.mp4", fps=25, timecode="1:00:00")
    with pytest.raises(ConfigError, match="codec"):
        encode_video(frames, tmp_path / "a.mp4", fps=25, codec="av1")
    with pytest.raises(MediaError, match="not found"):
        encode_video(frames, tmp_path / "a.mp4", fps=25, audio_from=tmp_path / "missing.wav")
    assert list(tmp_path.iterdir()) == []


def test_encode_bad_frames_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "x.mp4"
    with pytest.raises(MediaError, match="even"):
        encode_video(_gradient_frames(2, 15, 16), out, fps=25)
    with pytest.raises(MediaError, match="No frames"):
        encode_video([], out, fps=25)
    with pytest.raises(MediaError, match="pixel type"):
        encode_video(_gradient_frames(2, 16, 16, dtype=np.uint16), out, fps=25)  # bit_depth=8

    def changing() -> Iterator[np.ndarray]:
        yield from _gradient_frames(3, 16, 16)
        yield from _gradient_frames(1, 32, 32)

    with pytest.raises(MediaError, match="changes size"):
        encode_video(changing(), out, fps=25)

    def failing() -> Iterator[np.ndarray]:
        yield from _gradient_frames(3, 16, 16)
        raise RuntimeError("render node died")

    with pytest.raises(RuntimeError, match="render node died"):
        encode_video(failing(), out, fps=25)
    assert list(tmp_path.iterdir()) == []


def test_encode_ffmpeg_failure_keeps_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "shot.mp4"
    out.write_bytes(b"previous version")
    real = ff.encode_argv

    def broken(*args: object, **kwargs: object) -> list[str]:
        argv = real(*args, **kwargs)  # type: ignore[arg-type]
        argv[argv.index("libx264")] = "no_such_encoder"
        return argv

    monkeypatch.setattr(ff, "encode_argv", broken)
    with pytest.raises(ExternalToolError, match="no_such_encoder"):
        encode_video(_gradient_frames(30, 256, 256), out, fps=25)
    assert out.read_bytes() == b"previous version"
    assert [p.name for p in tmp_path.iterdir()] == ["shot.mp4"]


def test_no_stray_ffmpeg_processes(synth: dict[str, Path]) -> None:
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc to list child processes")

    def children() -> set[int]:
        me = str(os.getpid())
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                found.add(int(stat.parent.name))
        return found

    before = children()
    for _ in range(3):
        with VideoReader(synth["clip"]) as reader:
            reader.read(1040)
            reader.read(1003)
    assert children() - before == set()


def test_ffmpeg_process_reports_stderr() -> None:
    argv = [ff.find_ffmpeg(), "-hide_banner", "-i", "/nonexistent/x.mp4"]
    with ff.FfmpegProcess(argv, stdin=False, stdout=True) as p:
        assert p.wait() != 0
        assert "No such file" in p.stderr_tail()
    with pytest.raises(ExternalToolError, match="exit status"):
        ff.run_ffmpeg([ff.find_ffmpeg(), "-hide_banner", "-i", "/nonexistent/x.mp4"], what="testing")


# ------------------------------------------------------------------------- pixel aspect, profile, timecode


def test_sample_aspect_from_the_stream_line() -> None:
    parse = video_mod._sample_aspect
    assert parse("h264 (High), yuv420p(progressive), 64x48 [SAR 1:1 DAR 4:3], 25 fps") == 1
    assert parse("prores (HQ), yuv422p10le, 64x48, SAR 2:1 DAR 8:3, 24 fps") == 2
    # the codec's (in brackets) then the container's where they differ: the container's wins, as in ffprobe
    assert parse("h264, yuv420p, 64x48 [SAR 1:1 DAR 4:3], SAR 2:1 DAR 8:3, 25 fps") == 2
    assert parse("h264, yuv420p, 64x48 [SAR 0:1 DAR 0:1], 25 fps") == 1
    assert parse("rawvideo, rgb24, 64x48, 25 fps") == 1
    assert video_mod._profile("prores (HQ) (apch / 0x68637061)") == "HQ"
    assert video_mod._profile("dnxhd (DNXHR HQ) (AVdh / 0x68645641)") == "DNXHR HQ"
    assert video_mod._profile("rawvideo (RGB[24] / 0x18424752)") is None


def test_probe_reads_an_anamorphic_squeeze(tmp_path: Path, exe: str) -> None:
    squeezed, square = tmp_path / "squeezed.mov", tmp_path / "square.mov"
    _ffmpeg(exe, "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24", "-frames:v", "3", "-vf", "setsar=2",
            "-c:v", "prores_ks", "-profile:v", "3", str(squeezed))
    _ffmpeg(exe, "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24", "-frames:v", "3", "-c:v", "prores_ks",
            "-profile:v", "3", str(square))
    assert probe_video(squeezed).sample_aspect == Fraction(2)
    assert probe_video(square).sample_aspect == Fraction(1)
    assert probe_video(squeezed).profile == "HQ"


def test_probe_timecode_goes_through_vfx_io_timecode(caplog: pytest.LogCaptureFixture) -> None:
    check = video_mod._checked_timecode
    assert check("01:00:00;00", Fraction(30000, 1001), Path("a.mov")) == "01:00:00;00"
    assert check("01:00:00:00", Fraction(30000, 1001), Path("a.mov")) == "01:00:00:00"  # non-drop kept
    assert check(None, Fraction(25), Path("a.mov")) is None
    with caplog.at_level("WARNING"):
        # drop-frame on a 25 fps clip, and a frame number past the rate: not timecodes of that rate
        assert check("01:00:00;00", Fraction(25), Path("a.mov")) is None
        assert check("01:00:00:27", Fraction(25), Path("a.mov")) is None
    assert caplog.text.count("ignoring the timecode of a.mov") == 2
