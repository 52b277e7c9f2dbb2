"""Encoding numpy frames into an H.264 review proxy, ProRes 422 HQ / DNxHR HQ editorial media or a ProRes 4444
master, atomically and checked."""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from fractions import Fraction
from numbers import Rational
from pathlib import Path

import numpy as np

from vfx.errors import ConfigError, ExternalToolError, MediaError
from vfx.io import ffmpeg as ff
from vfx.io.timecode import check_timecode
from vfx.io.video.probe import VideoInfo, _describe_unreadable, _parse_stream_header, probe_video
from vfx.utils.atomic import TEMP_MARKER, atomic_path

logger = logging.getLogger(__name__)

__all__ = ["check_movie_output", "check_movie_size", "encode_video"]

# ------------------------------------------------------------------------------------------- encoder

_EXTENSIONS = {"h264": (".mp4", ".mov"), "prores422hq": (".mov",), "prores4444": (".mov",), "dnxhr_hq": (".mov",)}

#: Smallest picture (height, width) the dnxhd encoder accepts for DNxHR (it refuses anything smaller).
DNXHR_MIN_SIZE = (120, 256)


def check_movie_output(out_path: str | os.PathLike[str], codec: str) -> None:
    """Refuse, before any work, a codec this ffmpeg cannot encode or a container that does not fit the codec.

    ProRes and DNxHR go in QuickTime ``.mov``; H.264 in ``.mp4`` or ``.mov``.

    Raises:
        ConfigError: unknown codec, a codec missing from ``ffmpeg -encoders``, or a wrong extension.
    """
    out = Path(out_path)
    ff.check_codec(codec)
    if out.suffix.lower() not in _EXTENSIONS[codec]:
        family = {"h264": "H.264", "prores422hq": "ProRes", "prores4444": "ProRes", "dnxhr_hq": "DNxHR"}[codec]
        raise ConfigError(
            f"Wrong file extension for {codec}",
            expected=f"{family} in a " + " or ".join(_EXTENSIONS[codec]) + " file",
            found=repr(out.suffix or out.name),
            fix=f"name the output {out.stem}{_EXTENSIONS[codec][0]}"
            + (" (or choose codec h264 for an .mp4)" if codec != "h264" else ""),
        )
    ff.check_encoder(codec, ff.find_ffmpeg())


def check_movie_size(codec: str, height: int, width: int) -> None:
    """Refuse a picture size the codec cannot store.

    H.264 (4:2:0) needs an even width and height, ProRes 422 HQ (4:2:2) an even width, DNxHR an even width
    and height and at least 256x120.

    Raises:
        MediaError: the size does not fit; the message says the size to crop or pad to.
    """
    if codec == "dnxhr_hq" and (height < DNXHR_MIN_SIZE[0] or width < DNXHR_MIN_SIZE[1]):
        raise MediaError(
            "DNxHR needs a picture of at least 256x120",
            expected=f"width >= {DNXHR_MIN_SIZE[1]} and height >= {DNXHR_MIN_SIZE[0]}",
            found=f"{width}x{height} (width x height)",
            fix="choose codec prores422hq for small pictures, or scale the frames up",
        )
    needs = {"h264": (True, True), "prores422hq": (False, True), "dnxhr_hq": (True, True)}.get(codec, (False, False))
    odd_h, odd_w = needs[0] and height % 2, needs[1] and width % 2
    if odd_h or odd_w:
        what = {"h264": "H.264 (yuv420p)", "prores422hq": "ProRes 422 (4:2:2)", "dnxhr_hq": "DNxHR (4:2:2)"}[codec]
        raise MediaError(
            f"{what} needs an even frame {'size' if needs[0] else 'width'}",
            expected="even width and height" if needs[0] else "an even width",
            found=f"{width}x{height} (width x height)",
            fix=f"crop or pad to {width - width % 2}x{height - (height % 2 if needs[0] else 0)}, "
            "or use codec='prores4444'",
        )


def _check_frame(frame: object, number: int, *, dtype: np.dtype, shape: tuple[int, ...] | None) -> np.ndarray:
    """Validate one input frame; ``shape`` is the first frame's shape (``None`` for the first)."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] not in (3, 4):
        found = f"{type(frame).__name__} shaped {getattr(frame, 'shape', '?')}"
        raise MediaError(
            f"Frame {number} cannot be encoded",
            expected="a numpy array shaped (H, W, 3) RGB or (H, W, 4) RGBA",
            found=found,
            fix="convert frames to numpy arrays in HWC channel order",
        )
    if frame.dtype.kind != "u" or frame.dtype.itemsize != dtype.itemsize:
        raise MediaError(
            f"Frame {number} has the wrong pixel type",
            expected=f"{dtype.name} for bit_depth={8 if dtype.itemsize == 1 else 16}",
            found=str(frame.dtype),
            fix="convert the frames, or pass the bit_depth that matches them",
        )
    if shape is not None and frame.shape != shape:
        raise MediaError(
            f"Frame {number} changes size mid-clip",
            expected=f"every frame shaped {shape} like the first",
            found=str(frame.shape),
            fix="resize or crop all frames to one size before encoding",
        )
    return frame


def _check_output(out: Path) -> None:
    """Refuse, before any work, an output whose folder is missing or whose name (and so its temporary file's
    name beside it) is too long for the file system: ffmpeg and the atomic write would fail only at the end."""
    parent = out.parent
    try:
        is_dir = stat.S_ISDIR(parent.stat().st_mode)
        name_max = os.pathconf(parent, "PC_NAME_MAX") if is_dir else 255
    except (OSError, ValueError) as err:
        is_dir, name_max = False, 255
        if not isinstance(err, FileNotFoundError):
            raise ConfigError(f"Cannot write a movie into {str(parent)[:200]}", expected="an existing, writable folder",
                              found=f"{type(err).__name__}: {str(err)[:200]}", fix="choose another output path") from None
    if not is_dir:
        raise ConfigError(f"No folder {str(parent)[:200]} to write {out.name[:100]} into", expected="an existing folder",
                          found="no such folder" if not parent.exists() else "not a folder",
                          fix="create the folder first, or choose another output path")
    temp_name = f".{out.stem}.XXXXXXXX{TEMP_MARKER}.video{TEMP_MARKER}{out.suffix}"  # the longest temporary name
    if len(os.fsencode(temp_name)) > name_max:
        raise ConfigError(f"Output file name too long: {out.name[:60]}...", expected=f"a name of at most "
                          f"{name_max - len(temp_name) + len(out.name)} bytes (the file system's limit is {name_max}, "
                          "less room for the temporary file written first)", found=f"{len(os.fsencode(out.name))} bytes",
                          fix="choose a shorter name")


def _audio_codec_of(path: Path, exe: str) -> str | None:
    """First audio codec of ``path`` from its stream description (the file need not contain video)."""
    try:
        regular = stat.S_ISREG(path.stat().st_mode)
        found = f"{path} is not a file"
    except (OSError, ValueError) as err:  # missing, a name too long, a loop of links
        regular = False
        found = f"nothing at {path}" if isinstance(err, FileNotFoundError) else f"{type(err).__name__}: {err}"
    if not regular:
        raise MediaError(
            "Audio source not found",
            expected="an existing media file to copy audio from",
            found=found,
            fix="check audio_from, or pass audio_from=None",
        )
    result = ff.run_ffmpeg(ff.header_argv(exe, path), what=f"reading the streams of {path}", check=False)
    if "Input #0" not in result.stderr:
        found, fix = _describe_unreadable(path, result.stderr)
        raise MediaError(f"Cannot read audio source {path}", expected="a readable media file", found=found, fix=fix)
    codecs = _parse_stream_header(result.stderr).audio_codecs
    return codecs[0] if codecs else None


def encode_video(
    frames: Iterable[np.ndarray],
    out_path: str | os.PathLike[str],
    *,
    fps: Fraction | int,
    codec: str = "h264",
    audio_from: str | os.PathLike[str] | None = None,
    timecode: str | None = None,
    bit_depth: int = 8,
    audio_offset_s: Fraction | None = None,
) -> VideoInfo:
    """Encode frames into a movie, atomically, and check what was written.

    ``codec="h264"``: review proxy, libx264 yuv420p crf 18, ``+faststart``, ``.mp4`` (or ``.mov``);
    needs even width and height; an alpha channel is dropped. ``codec="prores422hq"``: editorial, ProRes
    422 HQ (prores_ks profile 3, ``yuv422p10le``), ``.mov``, even width. ``codec="dnxhr_hq"``: editorial,
    DNxHR HQ (dnxhd, ``yuv422p``), ``.mov``, even size of at least 256x120. ``codec="prores4444"``:
    master, ProRes 4444 (prores_ks profile 4), ``.mov``; RGBA input is written as ``yuva444p10le`` and
    keeps its alpha, RGB input as ``yuv444p10le``. All are tagged Rec.709 and converted with that matrix.
    Pass 16-bit frames to the 10-bit ProRes codecs to use their depth (:data:`vfx.io.ffmpeg.CODEC_BIT_DEPTH`).

    Frames are streamed to ffmpeg as they come, so a generator of any length uses constant memory.
    16-bit frames are scaled so 65535 encodes as white (libswscale alone takes 65280 as white; the
    factor is measured on each call, see :func:`vfx.io.ffmpeg.encode_calibration_argv`).
    Audio from ``audio_from`` is copied bit for bit (no re-encode) and cut to the picture's duration
    at its input; the picture is never shortened to the audio.

    Convention:
        ``frames`` yields (H, W, 3) RGB or (H, W, 4) RGBA arrays, all the same shape, uint8 when
        ``bit_depth=8`` and uint16 when ``bit_depth=16``.

    Args:
        frames: the pictures, first to last.
        out_path: destination; written through a temporary file beside it and renamed when complete.
        fps: exact rate, e.g. ``Fraction(30000, 1001)`` or ``25``. Floats are refused (29.97 is not
            30000/1001).
        codec: ``"h264"``, ``"prores422hq"``, ``"prores4444"`` or ``"dnxhr_hq"``.
        audio_from: file whose audio streams to copy, e.g. the source plate; a file without audio
            is logged and ignored.
        timecode: start timecode ``HH:MM:SS:FF`` written into the file.
        bit_depth: 8 or 16, the dtype of ``frames``.
        audio_offset_s: start the audio this long after the first picture (a slate frame's duration), so
            the sound stays in sync with the pictures after it; the audio then runs to the picture's end.

    Returns:
        The probe of the written file (``path`` is ``out_path``).

    Raises:
        ConfigError: bad codec (or one this ffmpeg cannot encode), extension, fps, timecode or bit depth.
        MediaError: no frames, a frame of the wrong type or size, odd size for H.264, unreadable
            ``audio_from``.
        ExternalToolError: ffmpeg failed or the written file does not have the frames sent; nothing is
            left at ``out_path`` (a previous file there is kept).
    """
    out = Path(out_path)
    check_movie_output(out, codec)
    if isinstance(fps, bool) or not isinstance(fps, Rational) or fps <= 0:
        raise ConfigError(
            "Frame rate must be an exact positive rational",
            expected="a Fraction or int, e.g. Fraction(30000, 1001) or 25",
            found=repr(fps),
            fix="pass fractions.Fraction(30000, 1001) for 29.97, Fraction(24000, 1001) for 23.976",
        )
    fps = Fraction(fps)
    if bit_depth not in (8, 16):
        raise ConfigError(
            "Unsupported bit depth for encoding",
            expected="8 (uint8 frames) or 16 (uint16 frames)",
            found=repr(bit_depth),
            fix="pass bit_depth=8 or bit_depth=16",
        )
    if timecode is not None:
        check_timecode(timecode, fps)
    _check_output(out)

    exe = ff.find_ffmpeg()
    audio_path = None if audio_from is None else Path(audio_from)
    if audio_path is not None:
        audio_codec = _audio_codec_of(audio_path, exe)
        if audio_codec is None:
            logger.warning("%s has no audio stream; writing %s without audio", audio_path, out.name)
            audio_path = None
        elif audio_codec.startswith("pcm_") and out.suffix.lower() == ".mp4":
            # ffmpeg writes it (ISO "ipcm"), but QuickTime and browsers do not play PCM in MP4.
            logger.warning("copying %s audio into %s: few players support PCM in MP4; .mov does", audio_codec, out.name)

    dtype = np.dtype(np.uint8) if bit_depth == 8 else np.dtype("<u2")
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise MediaError(
            f"No frames to encode into {out.name}",
            expected="at least one frame",
            found="an empty sequence",
            fix="check the frame range that produced the frames",
        )
    first = _check_frame(first, 0, dtype=dtype, shape=None)
    height, width, channels = first.shape
    check_movie_size(codec, height, width)
    if codec != "prores4444" and channels == 4:
        logger.warning("%s has no alpha: dropping the alpha channel of frames for %s", codec, out.name)

    with atomic_path(out) as tmp:
        # With audio, the picture goes to a second temp first: the audio is cut to the picture's length,
        # which a frame generator only reveals at its end.
        picture = tmp if audio_path is None else tmp.with_name(tmp.name.replace(".vfxtmp", ".video.vfxtmp"))
        try:
            written = _pipe_frames(
                exe, picture, first, iterator, fps=fps, codec=codec, bit_depth=bit_depth, timecode=timecode
            )
            if audio_path is not None:
                offset = Fraction(audio_offset_s or 0)
                argv = ff.mux_audio_argv(
                    exe, picture, audio_path, tmp, codec=codec, audio_duration_s=max(written / fps - offset, Fraction(0)),
                    audio_offset_s=offset or None, timecode=timecode,
                )
                ff.run_ffmpeg(argv, what=f"adding the audio of {audio_path.name} to {out.name}")
        finally:
            if picture != tmp:
                picture.unlink(missing_ok=True)
        try:
            info = probe_video(tmp)
        except MediaError as exc:
            raise ExternalToolError(
                f"ffmpeg wrote an unreadable {out.name}",
                expected="a movie that probes cleanly",
                found=str(exc),
                fix="report this with the ffmpeg version; the output was not kept",
            ) from exc
        if info.frame_count != written or info.fps != fps:
            raise ExternalToolError(
                f"ffmpeg wrote a different movie than asked for {out.name}",
                expected=f"{written} frames at {ff.format_rational(fps)} fps",
                found=f"{info.frame_count} frames at {ff.format_rational(info.fps)} fps",
                fix="report this with the ffmpeg version; the output was not kept",
            )
    logger.info("wrote %s: %d frames, %s fps, %s", out, written, ff.format_rational(fps), codec)
    return dataclasses.replace(info, path=out)


def _encode_gain(exe: str) -> float | None:
    """Factor for 16-bit RGB so ffmpeg encodes 65535 as white, or ``None`` when it already does.

    See :func:`vfx.io.ffmpeg.encode_calibration_argv`; measured, not assumed, like the reader's gain.
    """
    result = ff.run_ffmpeg(ff.encode_calibration_argv(exe), what="measuring the 16-bit encode gain", check=False)
    if result.returncode != 0 or len(result.stdout) != 16 * 16 * 3 * 2:
        logger.warning("could not measure ffmpeg's 16-bit encode gain: %s", ff.stderr_tail(result.stderr, 3))
        return None
    luma = float(np.frombuffer(result.stdout, dtype="<u2")[: 16 * 16].mean())
    white = (luma - 4096.0) / (60160.0 - 4096.0)  # video-range 16-bit luma: 16 << 8 .. 235 << 8
    if abs(white - 1.0) < 1e-5:
        return None
    if not 1.0 < white < 1.01:
        logger.warning("ffmpeg encodes 16-bit white at %.5f of white; not correcting", white)
        return None
    return 1.0 / white


def _pipe_frames(
    exe: str,
    dest: Path,
    first: np.ndarray,
    rest: Iterator[np.ndarray],
    *,
    fps: Fraction,
    codec: str,
    bit_depth: int,
    timecode: str | None,
) -> int:
    """Encode ``first`` and then ``rest`` into ``dest``; return the number of frames written."""
    height, width, channels = first.shape
    argv = ff.encode_argv(
        exe,
        dest,
        width=width,
        height=height,
        input_pix_fmt=ff.raw_pix_fmt(bit_depth, channels),
        fps=fps,
        codec=codec,
        has_alpha=channels == 4,
        timecode=timecode,
    )
    gain = _encode_gain(exe) if bit_depth == 16 else None
    written = 0
    with ff.FfmpegProcess(argv, stdin=True, stdout=False) as proc:
        frame = first
        while True:
            if gain is not None:
                scaled = frame.astype(np.float32)
                scaled[..., :3] *= gain  # alpha is widened correctly; only colour needs it
                np.rint(scaled, out=scaled)
                frame = scaled.astype("<u2")
            try:
                # Little-endian for rgb48le whatever the host; a no-op view on x86 and ARM.
                proc.stdin.write(memoryview(np.ascontiguousarray(frame, dtype=frame.dtype.newbyteorder("<"))).cast("B"))
            except (BrokenPipeError, ConnectionResetError) as exc:
                proc.kill()
                raise ExternalToolError(
                    f"ffmpeg stopped accepting frames for {dest.name}",
                    expected=f"ffmpeg to encode {codec}",
                    found=f"the pipe broke at frame {written}; ffmpeg said: {proc.stderr_tail()}",
                    fix="read ffmpeg's message; if it is about the machine (disk full, memory), retry",
                ) from exc
            written += 1
            nxt = next(rest, None)
            if nxt is None:
                break
            frame = _check_frame(nxt, written, dtype=first.dtype, shape=first.shape)
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass  # reported below through the exit status
        returncode = proc.wait()
        if returncode != 0:
            raise ExternalToolError(
                f"ffmpeg failed writing {dest.name}",
                expected="exit status 0",
                found=f"exit status {returncode}; ffmpeg said: {proc.stderr_tail()}",
                fix="read ffmpeg's message; if it is about the machine (disk full, memory), retry",
            )
    return written
