"""Find, command and run the ffmpeg binary.

Everything here needs only the ``ffmpeg`` executable: imageio-ffmpeg (our fallback when no ffmpeg is on
``PATH``) ships no ``ffprobe``, so probing is done with ``ffmpeg -f framecrc`` instead (see
:mod:`vfx.io.video`).

The argv builders are pure functions (no process is started, nothing is looked up on disk) so tests can
check the exact command lines. They use ffmpeg-python to build the command graphs; the global options
are put in front of the graph because ffmpeg-python would append them after the output file, where
ffmpeg warns about trailing options.

Convention:
    Raw frames travel as packed RGB(A), top row first: ``rgb24``/``rgba`` for 8 bits per channel,
    ``rgb48le``/``rgba64le`` for 16 (little-endian). Times are seconds; rationals are
    :class:`fractions.Fraction` and reach ffmpeg as ``num/den`` strings so 30000/1001 stays exact.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import IO

import ffmpeg as ffmpeg_python

from vfx.errors import ConfigError, ExternalToolError

__all__ = [
    "CODECS",
    "CODEC_BIT_DEPTH",
    "available_encoders",
    "check_codec",
    "check_encoder",
    "SWS_FLAGS",
    "calibration_argv",
    "FfmpegProcess",
    "FfmpegResult",
    "decode_argv",
    "encode_argv",
    "encode_calibration_argv",
    "find_ffmpeg",
    "format_rational",
    "header_argv",
    "media_arg",
    "mux_audio_argv",
    "probe_argv",
    "raw_pix_fmt",
    "run_ffmpeg",
    "seconds_arg",
    "stderr_tail",
]

logger = logging.getLogger(__name__)

#: Quiet, non-interactive, and always the same order so tests can compare argv lists.
_GLOBAL_ARGS = ["-hide_banner", "-nostdin", "-nostats"]

#: Protocols an input file may use: the file itself, nothing else. A movie is opened with ffmpeg's ``file``
#: protocol; a hostile file (an HLS playlist named plate.mp4, say) cannot make ffmpeg fetch a URL or open
#: other protocols from inside it.
FILE_PROTOCOLS = "file"

#: Full-resolution chroma and correct rounding in YUV <-> RGB conversions. The default (bilinear, no
#: ``full_chroma_int``) is about 3x faster but smears chroma edges by a level or two, which shows up when
#: a swapped face is comped back over the plate. Always set on an explicit ``scale`` filter in the graph:
#: the ``-sws_flags`` option reaches ffmpeg's auto-inserted scaler only in simple ``-vf`` graphs and is
#: silently ignored in ``-filter_complex`` ones, so a seek (which needs ``select``) and a plain decode
#: would convert differently.
SWS_FLAGS = "accurate_rnd+full_chroma_int+full_chroma_inp+bicubic"

#: Encoder settings per codec name accepted by :func:`encode_argv`.
CODECS: dict[str, dict[str, str]] = {
    "h264": {
        "c:v": "libx264",
        "pix_fmt": "yuv420p",
        "crf": "18",
        "movflags": "+faststart",
        "format": "mp4",
    },
    "prores422hq": {
        "c:v": "prores_ks",
        "profile:v": "3",
        "vendor": "apl0",
        "pix_fmt": "yuv422p10le",
        "format": "mov",
    },
    "prores4444": {
        "c:v": "prores_ks",
        "profile:v": "4",
        # QuickTime and some editorial tools only trust ProRes tagged with Apple's vendor id.
        "vendor": "apl0",
        "format": "mov",
    },
    "dnxhr_hq": {
        "c:v": "dnxhd",
        "profile:v": "dnxhr_hq",
        "pix_fmt": "yuv422p",
        "format": "mov",
    },
}

#: Bits per channel each codec stores: the depth of the raw frames worth sending it (8-bit frames into a
#: 10-bit codec waste its precision and band in gradients).
CODEC_BIT_DEPTH: dict[str, int] = {"h264": 8, "prores422hq": 10, "prores4444": 10, "dnxhr_hq": 8}


def find_ffmpeg() -> str:
    """Return the path of the ffmpeg executable to run.

    ``ffmpeg`` on ``PATH`` wins (a studio build with more codecs), else the binary bundled with
    imageio-ffmpeg. Nothing is cached, so a changed ``PATH`` is honoured on the next call.

    Raises:
        ConfigError: when neither is available.
    """
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise ConfigError(
            "Cannot find ffmpeg",
            expected="an ffmpeg executable on PATH or the imageio-ffmpeg package",
            found=f"neither ({exc})",
            fix="install ffmpeg (e.g. apt-get install ffmpeg) or pip install imageio-ffmpeg",
        ) from exc
    if not os.access(exe, os.X_OK):
        raise ConfigError(
            "Cannot run ffmpeg",
            expected="an executable ffmpeg binary",
            found=f"{exe} is not executable",
            fix=f"chmod +x {exe} or put an ffmpeg on PATH",
        )
    return exe


def format_rational(value: Fraction | int) -> str:
    """Format a rate for ffmpeg: ``Fraction(30000, 1001)`` -> ``"30000/1001"``, ``25`` -> ``"25"``."""
    value = Fraction(value)
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def seconds_arg(seconds: Fraction, *, round_up: bool = False) -> str:
    """Format a time for ffmpeg's ``-ss``/``-t`` at its microsecond resolution.

    Rounding is directed, not nearest: a seek time must never land after the point it was computed for
    (round down), a duration must never cut the last bit off (``round_up``).

    Example:
        >>> seconds_arg(Fraction(1001, 30000))
        '0.033366'
        >>> seconds_arg(Fraction(1001, 30000), round_up=True)
        '0.033367'
    """
    micro = Fraction(seconds) * 1_000_000
    ticks = math.ceil(micro) if round_up else math.floor(micro)
    sign = "-" if ticks < 0 else ""
    whole, frac = divmod(abs(ticks), 1_000_000)
    return f"{sign}{whole}.{frac:06d}"


def raw_pix_fmt(bit_depth: int, channels: int) -> str:
    """Return ffmpeg's packed RGB(A) pixel format for ``bit_depth`` (8 or 16) and ``channels`` (3 or 4)."""
    try:
        return {(8, 3): "rgb24", (8, 4): "rgba", (16, 3): "rgb48le", (16, 4): "rgba64le"}[(bit_depth, channels)]
    except KeyError:
        raise ConfigError(
            "Unsupported raw frame layout",
            expected="bit depth 8 or 16 with 3 (RGB) or 4 (RGBA) channels",
            found=f"bit depth {bit_depth}, {channels} channels",
            fix="pass uint8 or uint16 frames shaped (H, W, 3) or (H, W, 4)",
        ) from None


def media_arg(path: str | os.PathLike[str]) -> str:
    """``path`` as ffmpeg must see it to open that file, never a URL, a protocol, stdin/stdout or an option.

    ffmpeg reads ``name:rest`` as protocol ``name`` whenever ``name`` is made of letters, digits, ``+-.``
    (``concat:a.mp4|b.mp4``, ``http:...``, ``pipe:1``, ``subfile,,...:``), ``-`` as stdin or stdout, and an
    output name starting with ``-`` as an option. A path that could be read so reaches ffmpeg as
    ``file:<absolute path>`` (its ``file`` protocol takes the rest literally); a plain path is passed as it is
    (what ffmpeg would open anyway), so command lines stay readable.

    Raises:
        ConfigError: an empty path or one holding a NUL character (no file can have that name).

    Example:
        >>> media_arg("plate.mp4"), media_arg("/x/concat:a.mp4")
        ('plate.mp4', '/x/concat:a.mp4')
        >>> media_arg("concat:a.mp4|b.mp4").startswith("file:/")
        True
    """
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text or "\0" in text:
        raise ConfigError("Invalid media path", expected="a file path", found=repr(text),
                          fix="pass the path of a media file")
    if text.startswith("/"):  # ffmpeg never reads an absolute POSIX path as a protocol
        return text
    # ``proto:`` needs a colon, ``subfile,,start,N,end,M,:path`` too: a relative name without one (and not an
    # option) is opened as the file it names. Stricter than ffmpeg's own rule, on purpose.
    risky = text.startswith("-") or ":" in text
    return "file:" + os.path.abspath(text) if risky else text


def header_argv(exe: str, path: str | os.PathLike[str]) -> list[str]:
    """Argv that only opens ``path`` and prints its stream description on stderr.

    ffmpeg exits with status 1 ("At least one output file must be specified"); the caller reads stderr.
    """
    return [exe, *_GLOBAL_ARGS, "-protocol_whitelist", FILE_PROTOCOLS, "-i", media_arg(path)]


def probe_argv(exe: str, path: str | os.PathLike[str]) -> list[str]:
    """Argv that lists every packet of the first video stream without decoding.

    stdout gets ``framecrc`` lines (``#tb 0: num/den`` then ``stream, dts, pts, duration, size, crc``
    per packet, in decode order); stderr gets the stream description. ``-copyts`` keeps the container's
    own timestamps so they match what :func:`decode_argv` (also ``-copyts``) sees in its ``select``.
    ``V`` (capital) skips cover-art "video" streams.
    """
    graph = ffmpeg_python.input(media_arg(path), copyts=None, protocol_whitelist=FILE_PROTOCOLS).output(
        "-", map="0:V:0", c="copy", f="framecrc")
    return graph.compile(cmd=[exe, *_GLOBAL_ARGS])


def decode_argv(
    exe: str,
    path: str | os.PathLike[str],
    *,
    pix_fmt: str,
    seek_s: Fraction | None = None,
    select_from_s: float | None = None,
) -> list[str]:
    """Argv that decodes the first video stream of ``path`` to raw frames on stdout.

    Args:
        exe: ffmpeg executable.
        path: video file.
        pix_fmt: raw output format, see :func:`raw_pix_fmt`.
        seek_s: where to start demuxing, in seconds relative to the container's start time (ffmpeg's
            ``-ss`` convention). ffmpeg jumps to the last keyframe at or before it; ``-noaccurate_seek``
            stops ffmpeg from trimming by its own (float) arithmetic so that ``select_from_s`` decides.
        select_from_s: drop every frame whose timestamp (seconds, container timeline) is below this.
            Pass the midpoint between the wanted frame and the one before it, so float rounding of
            ``t`` cannot move the cut.

    Returns:
        The argv list. ``-fps_mode passthrough`` is essential: rawvideo output otherwise defaults to
        constant frame rate and would silently duplicate or drop frames of variable-rate clips.
    """
    input_kwargs: dict[str, str | None] = {"copyts": None, "protocol_whitelist": FILE_PROTOCOLS}
    if seek_s is not None:
        input_kwargs.update(ss=seconds_arg(seek_s), noaccurate_seek=None)
    source = ffmpeg_python.input(media_arg(path), **input_kwargs)
    video = source["V:0"]
    if select_from_s is not None:
        video = video.filter("select", f"gte(t,{select_from_s!r})")
    # Selecting first means dropped frames are never converted.
    video = video.filter("scale", flags=SWS_FLAGS).filter("format", pix_fmt)
    graph = video.output("pipe:", format="rawvideo", pix_fmt=pix_fmt, fps_mode="passthrough")
    return graph.compile(cmd=[exe, *_GLOBAL_ARGS])


def check_codec(codec: str) -> None:
    """Raise :class:`~vfx.errors.ConfigError` unless ``codec`` is a key of :data:`CODECS`."""
    if codec not in CODECS:
        raise ConfigError(
            "Unknown video codec",
            expected=" or ".join(repr(c) for c in CODECS),
            found=repr(codec),
            fix="pass codec='h264' for a review proxy, 'prores422hq' or 'dnxhr_hq' for editorial, "
            "'prores4444' for a master",
        )


@functools.lru_cache(maxsize=8)
def _encoders_of(exe: str) -> frozenset[str]:
    result = run_ffmpeg([exe, *_GLOBAL_ARGS, "-encoders"], what="listing its encoders", check=False)
    names = set()
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        fields = line.split()
        # " V....D libx264   libx264 H.264 ...": capability flags, then the encoder's name
        if len(fields) >= 2 and len(fields[0]) == 6 and fields[0][0] in "VAS" and fields[1] != "=":
            names.add(fields[1])
    return frozenset(names)


def available_encoders(exe: str) -> frozenset[str]:
    """The encoder names ``exe -encoders`` lists (``libx264``, ``prores_ks``, ``dnxhd``, ...), cached per binary."""
    return _encoders_of(exe)


def check_encoder(codec: str, exe: str) -> None:
    """Raise :class:`~vfx.errors.ConfigError` unless the ffmpeg at ``exe`` can encode ``codec``.

    Convention:
        ``codec`` is a key of :data:`CODECS`; the encoder it needs is its ``c:v`` (``prores_ks``, ``dnxhd``...).
    """
    check_codec(codec)
    encoders = available_encoders(exe)
    if CODECS[codec]["c:v"] in encoders:
        return
    can = [name for name, settings in CODECS.items() if settings["c:v"] in encoders]
    raise ConfigError(
        f"This ffmpeg cannot encode {codec}",
        expected=f"an ffmpeg with the {CODECS[codec]['c:v']} encoder (listed by `ffmpeg -encoders`)",
        found=f"{exe} without it; it can encode: {', '.join(can) or 'none of ' + ', '.join(CODECS)}",
        fix=(f"choose one of {', '.join(can)} (--codec, or review.codec in the shot file), or " if can else "")
        + "put an ffmpeg build with that encoder on PATH (it wins over the bundled one)",
    )


_YUV_PREFIXES = ("yuv", "nv", "p0", "p2")
#: 8-bit RGB formats. Deeper RGB sources convert correctly, and lutrgb cannot make their exact white.
_RGB8_FORMATS = frozenset(
    {"gbrp", "gbrap", "rgb24", "bgr24", "rgba", "bgra", "argb", "abgr", "rgb0", "bgr0", "0rgb", "0bgr"}
)


def calibration_argv(exe: str, *, source_pix_fmt: str, full_range: bool, pix_fmt: str) -> list[str] | None:
    """Argv for one 16x16 full-scale frame (white, opaque) in ``source_pix_fmt``, converted to ``pix_fmt``
    by the same filters as :func:`decode_argv`; ``None`` where no exact white can be made.

    What comes out tells the converter's gain: libswscale (ffmpeg 9 included) writes white from YUV
    sources of any depth, and from 8-bit RGB, as 65283 (or 65280) instead of 65535 in 16-bit RGB: it
    widens by about 256 where 257 is right. Measuring instead of assuming a factor keeps the correction
    exact per source format and makes it vanish on an ffmpeg that gets it right.

    The white is set with lut filters, not converted from RGB white: that conversion has the same
    widening error. Limited-range YUV (in lutyuv ``maxval`` is 235 scaled to the depth, and
    ``(minval+maxval)/2`` the chroma centre), 8-bit full-range ``yuvj*`` and 8-bit RGB are covered;
    full-range high-bit-depth YUV and deeper RGB are not (``None``).

    Args:
        exe: ffmpeg executable.
        source_pix_fmt: the clip's decoded pixel format (``VideoInfo.pix_fmt``).
        full_range: the clip is full ("pc") range rather than limited ("tv").
        pix_fmt: the raw output format used for reading.
    """
    if source_pix_fmt.startswith("yuvj"):
        lut: tuple[str, dict[str, str]] = ("lutyuv", {"y": "255", "u": "128", "v": "128", "a": "maxval"})
    elif source_pix_fmt.startswith(_YUV_PREFIXES) and not full_range:
        mid = "(minval+maxval)/2"
        lut = ("lutyuv", {"y": "maxval", "u": mid, "v": mid, "a": "maxval"})
    elif source_pix_fmt in _RGB8_FORMATS:
        lut = ("lutrgb", {"r": "maxval", "g": "maxval", "b": "maxval", "a": "maxval"})
    else:
        return None
    color_range = "pc" if full_range or source_pix_fmt in _RGB8_FORMATS else "tv"
    frame = ffmpeg_python.input("color=c=white:s=16x16:r=1:d=1", f="lavfi")
    frame = frame.filter("format", source_pix_fmt).filter(lut[0], **lut[1]).filter("setparams", range=color_range)
    frame = frame.filter("scale", flags=SWS_FLAGS).filter("format", pix_fmt)
    graph = frame.output("pipe:", format="rawvideo", pix_fmt=pix_fmt, frames="1")
    return graph.compile(cmd=[exe, *_GLOBAL_ARGS])


def _rgb_to_rec709(stream: ffmpeg_python.nodes.FilterableStream, pix_fmt: str) -> ffmpeg_python.nodes.FilterableStream:
    """The encoder's colour conversion: RGB tagged as Rec.709 display RGB, to video-range ``pix_fmt``."""
    return (
        stream.filter("setparams", color_primaries="bt709", color_trc="bt709")
        .filter("scale", flags=SWS_FLAGS, out_color_matrix="bt709", out_range="tv")
        .filter("format", pix_fmt)
    )


def encode_calibration_argv(exe: str) -> list[str]:
    """Argv for one 16x16 frame of 16-bit RGB white (65535), converted by the encoder's colour filters
    to ``yuv444p16le``, whose luma then shows the input gain.

    libswscale (ffmpeg 9 included) takes 65280 (255 * 256), not 65535, as 16-bit RGB white, so 65535
    would encode 0.39 % above white (Y 943 instead of 940 in 10 bits). Correct white gives Y = 60160.
    """
    frame = ffmpeg_python.input("color=c=white:s=16x16:r=1:d=1", f="lavfi")
    frame = frame.filter("format", "rgb48le").filter("lutrgb", r="maxval", g="maxval", b="maxval")
    graph = _rgb_to_rec709(frame, "yuv444p16le").output("pipe:", format="rawvideo", frames="1")
    return graph.compile(cmd=[exe, *_GLOBAL_ARGS])


def encode_argv(
    exe: str,
    out_path: str | os.PathLike[str],
    *,
    width: int,
    height: int,
    input_pix_fmt: str,
    fps: Fraction,
    codec: str,
    has_alpha: bool = False,
    timecode: str | None = None,
) -> list[str]:
    """Argv that encodes raw frames read from stdin into ``out_path`` (picture only).

    Args:
        exe: ffmpeg executable.
        out_path: output file (its format is forced from ``codec``, so a temp suffix does not matter).
        width: frame width in pixels.
        height: frame height in pixels.
        input_pix_fmt: raw format of the piped frames, see :func:`raw_pix_fmt`.
        fps: exact frame rate; reaches ffmpeg as ``num/den`` for both the raw input and the output.
        codec: a key of :data:`CODECS`.
        has_alpha: keep the alpha channel (ProRes 4444 only, ``yuva444p10le``).
        timecode: start timecode ``HH:MM:SS:FF`` (``;`` before frames for drop-frame).

    Returns:
        The argv list.

    Raises:
        ConfigError: unknown ``codec``.
    """
    check_codec(codec)
    rate = format_rational(fps)
    frames_in = ffmpeg_python.input(
        "pipe:", format="rawvideo", pix_fmt=input_pix_fmt, s=f"{width}x{height}", framerate=rate
    )
    # Raw RGB carries no colour tags. Say it is Rec.709 display RGB so the RGB->YUV matrix and the tags
    # written in the file agree (players and our own reader then convert back with the same matrix).
    settings = dict(CODECS[codec])
    if codec == "prores4444":
        # No alpha in the input: write no alpha plane rather than a constant opaque one.
        settings["pix_fmt"] = "yuva444p10le" if has_alpha else "yuv444p10le"
    video = _rgb_to_rec709(frames_in["v:0"], settings["pix_fmt"])
    out_kwargs: dict[str, str] = {
        **settings,
        "r": rate,
        "colorspace": "bt709",
        "color_primaries": "bt709",
        "color_trc": "bt709",
    }
    if timecode is not None:
        out_kwargs["timecode"] = timecode
    graph = video.output(media_arg(out_path), **out_kwargs)
    return graph.compile(cmd=[exe, *_GLOBAL_ARGS, "-y"])


def mux_audio_argv(
    exe: str,
    video_path: str | os.PathLike[str],
    audio_from: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    codec: str,
    audio_duration_s: Fraction | None = None,
    audio_offset_s: Fraction | None = None,
    timecode: str | None = None,
) -> list[str]:
    """Argv that copies the picture of ``video_path`` and the audio of ``audio_from`` into ``out_path``.

    Nothing is re-encoded (``-c copy``). ``-map 1:a?`` takes every audio stream and none if there is none.

    Args:
        exe: ffmpeg executable.
        video_path: picture-only movie made with :func:`encode_argv`.
        audio_from: file whose audio to copy.
        out_path: output file; its format is forced from ``codec``.
        codec: the key of :data:`CODECS` the picture was encoded with (picks container and flags).
        audio_duration_s: read at most this much of ``audio_from`` so the audio does not run on past
            the picture. An input-side ``-t`` rather than ``-shortest``, which would end the picture
            early when the audio is the shorter stream.
        timecode: start timecode to write again (the muxer builds its timecode track from this).

    Raises:
        ConfigError: unknown ``codec``.
    """
    check_codec(codec)
    video = ffmpeg_python.input(media_arg(video_path), protocol_whitelist=FILE_PROTOCOLS)["v:0"]
    audio_kwargs = {"protocol_whitelist": FILE_PROTOCOLS}
    if audio_duration_s is not None:
        audio_kwargs["t"] = seconds_arg(audio_duration_s, round_up=True)
    if audio_offset_s:
        audio_kwargs["itsoffset"] = seconds_arg(audio_offset_s)
    audio = ffmpeg_python.input(media_arg(audio_from), **audio_kwargs)["a?"]
    out_kwargs: dict[str, str] = {"c": "copy", "format": CODECS[codec]["format"]}
    if "movflags" in CODECS[codec]:
        out_kwargs["movflags"] = CODECS[codec]["movflags"]
    if timecode is not None:
        out_kwargs["timecode"] = timecode
    graph = ffmpeg_python.output(video, audio, media_arg(out_path), **out_kwargs)
    return graph.compile(cmd=[exe, *_GLOBAL_ARGS, "-y"])


def stderr_tail(text: str, max_lines: int = 15) -> str:
    """Return the last ``max_lines`` non-empty lines of ffmpeg's stderr, joined with `` | ``."""
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return " | ".join(lines[-max_lines:]) or "(ffmpeg wrote nothing to stderr)"


@dataclass(frozen=True)
class FfmpegResult:
    """Outcome of :func:`run_ffmpeg`: exit status and both output streams (stderr decoded as UTF-8)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: str


def run_ffmpeg(argv: Sequence[str], *, what: str, check: bool = True, timeout_s: float | None = None) -> FfmpegResult:
    """Run ffmpeg to completion, capturing stdout and stderr.

    Args:
        argv: full command line, executable first.
        what: what the command does, for the error message (e.g. ``"listing packets of plate.mp4"``).
        check: raise on a non-zero exit status. Pass ``False`` when the caller maps failures itself
            (a probe turns them into :class:`~vfx.errors.MediaError`).
        timeout_s: kill ffmpeg after this long.

    Raises:
        ExternalToolError: ffmpeg could not start, timed out, or (with ``check``) exited non-zero.
    """
    logger.debug("running %s", " ".join(argv))
    try:
        proc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode("utf-8", "replace") if exc.stderr else ""
        raise ExternalToolError(
            f"ffmpeg timed out while {what}",
            expected=f"completion within {timeout_s} s",
            found=stderr_tail(err),
            fix="check the file is on a responsive disk; retry",
        ) from exc
    except OSError as exc:
        raise ExternalToolError(
            f"Cannot start ffmpeg while {what}",
            expected=f"a runnable ffmpeg at {argv[0]}",
            found=str(exc),
            fix="reinstall ffmpeg or imageio-ffmpeg",
        ) from exc
    result = FfmpegResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))
    if check and result.returncode != 0:
        raise ExternalToolError(
            f"ffmpeg failed while {what}",
            expected="exit status 0",
            found=f"exit status {result.returncode}; ffmpeg said: {stderr_tail(result.stderr)}",
            fix="read ffmpeg's message above; if the input plays elsewhere, retry or report it",
        )
    return result


class FfmpegProcess:
    """A running ffmpeg streaming raw frames through pipes.

    stderr goes to an anonymous temporary file, not a pipe: nobody reads stderr while frames flow, and a
    full stderr pipe (64 KiB of warnings) would otherwise block ffmpeg and deadlock us. The file also
    keeps the full log for error messages.

    Example:
        >>> proc = FfmpegProcess([find_ffmpeg(), "-version"], stdin=False, stdout=True)
        >>> proc.stdout.read().startswith(b"ffmpeg version")
        True
        >>> proc.wait()
        0
        >>> proc.close()
    """

    def __init__(self, argv: Sequence[str], *, stdin: bool, stdout: bool) -> None:
        self.argv = tuple(argv)
        self._stderr = tempfile.TemporaryFile()
        logger.debug("starting %s", " ".join(self.argv))
        try:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                stderr=self._stderr,
            )
        except OSError as exc:
            self._stderr.close()
            raise ExternalToolError(
                "Cannot start ffmpeg",
                expected=f"a runnable ffmpeg at {self.argv[0]}",
                found=str(exc),
                fix="reinstall ffmpeg or imageio-ffmpeg",
            ) from exc

    @property
    def stdin(self) -> IO[bytes]:
        """Pipe to ffmpeg's stdin (only when started with ``stdin=True``)."""
        assert self._popen.stdin is not None
        return self._popen.stdin

    @property
    def stdout(self) -> IO[bytes]:
        """Pipe from ffmpeg's stdout (only when started with ``stdout=True``)."""
        assert self._popen.stdout is not None
        return self._popen.stdout

    @property
    def pid(self) -> int:
        """Process id."""
        return self._popen.pid

    def poll(self) -> int | None:
        """Exit status, or ``None`` while running."""
        return self._popen.poll()

    def wait(self, timeout_s: float | None = None) -> int:
        """Wait for ffmpeg to exit and return its exit status."""
        return self._popen.wait(timeout_s)

    def stderr_text(self) -> str:
        """Everything ffmpeg has written to stderr so far."""
        if self._stderr.closed:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def stderr_tail(self, max_lines: int = 15) -> str:
        """The last lines of stderr, see :func:`stderr_tail`."""
        return stderr_tail(self.stderr_text(), max_lines)

    def kill(self) -> None:
        """Stop ffmpeg if still running and reap it (no zombie). stderr stays readable."""
        for pipe in (self._popen.stdin, self._popen.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    # Closing stdin flushes it; a dead ffmpeg makes that a broken pipe we do not care about.
                    pass
        if self._popen.poll() is None:
            self._popen.kill()
        self._popen.wait()

    def close(self) -> None:
        """:meth:`kill` and drop the stderr log."""
        self.kill()
        self._stderr.close()

    def __enter__(self) -> FfmpegProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

