"""Probing a movie: every packet of its video stream, the exact frame count, rational frame rate and each
frame's timestamp (``ffmpeg -c copy -f framecrc``, no decoding). See :mod:`vfx.io.video` for the conventions."""

from __future__ import annotations

import bisect
import dataclasses
import logging
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vfx.errors import ConfigError, MediaError
from vfx.io import ffmpeg as ff
from vfx.io.timecode import check_timecode

__all__ = ["VideoInfo", "probe_video"]

logger = logging.getLogger(__name__)


#: Rates a camera or editorial system actually produces; a measured average within 0.1 % of one of
#: these is that rate (per-frame timestamps rounded to a coarse time base wobble around it).
_STANDARD_RATES = tuple(
    Fraction(r)
    for r in ("24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001", "60", "100", "120")
)

#: Packet flags printed by framecrc (libavcodec's AV_PKT_FLAG_*).
_FLAG_KEY = 0x1
_FLAG_DISCARD = 0x4  # an edit list hides this packet: the decoder drops its frame

#: First-box types of an ISO-BMFF (mp4/mov) file, to tell "truncated mp4" from "not an mp4 at all".
_ISO_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"}



@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` found out about the first video stream of a file.

    Convention:
        ``width``/``height`` are the displayed size (after the rotation a phone clip's display matrix
        asks for, which the decoder applies); :attr:`size` is (height, width). ``pts`` are sorted, one
        per decoded frame, in ``time_base`` units on the container timeline (``-copyts``).

    Attributes:
        path: the probed file.
        width: frame width in pixels.
        height: frame height in pixels.
        frame_count: number of frames a full decode returns (packets counted, edit-list drops excluded).
        fps: exact frame rate, e.g. ``Fraction(30000, 1001)``.
        pix_fmt: stored pixel format as ffmpeg names it (``yuv420p``, ``yuva444p12le``, ...).
        codec: video codec name (``h264``, ``prores``, ``mpeg4``, ...).
        has_audio: whether the file has at least one audio stream.
        audio_codec: codec of the first audio stream, or ``None``.
        timecode: start timecode from stream or container metadata (``01:00:00:00``), or ``None``.
        duration_s: duration of the video stream (first frame start to last frame end), seconds.
        time_base: seconds per timestamp tick.
        pts: presentation timestamps of all frames, ascending.
        seek_points: ``(index, ts)`` pairs, ascending: decoding that reaches frame ``index`` can start
            by asking the demuxer for time ``ts`` (a keyframe's smaller of pts and dts).
        container_start: the container's start time in seconds; ffmpeg's ``-ss`` counts from it.
        rotation: display rotation in degrees the decoder applies (0, 90, 180, 270).
        full_range: the pixels use the full code range ("pc", ``yuvj*``) instead of video range ("tv").
        sample_aspect: pixel aspect ratio (ffprobe's ``sample_aspect_ratio``): width / height of one pixel,
            ``Fraction(2)`` for a 2x anamorphic squeeze. The container's value wins over the codec's, as in
            ffprobe; 1 when neither says or when it is 0:1 ("unknown").
        profile: the codec profile ffmpeg names (``High``, ``HQ`` for ProRes 422 HQ, ``4444``,
            ``DNXHR HQ``), or ``None``.

    Timecode:
        Read from the file's ``timecode`` tag and checked by :func:`vfx.io.timecode.check_timecode` against
        ``fps`` (``;`` drop-frame only at 29.97/59.94); a tag that does not pass is logged and dropped.
    """

    path: Path
    width: int
    height: int
    frame_count: int
    fps: Fraction
    pix_fmt: str
    codec: str
    has_audio: bool
    audio_codec: str | None
    timecode: str | None
    duration_s: float
    time_base: Fraction
    pts: tuple[int, ...] = dataclasses.field(repr=False)
    seek_points: tuple[tuple[int, int], ...] = dataclasses.field(repr=False)
    container_start: Fraction = Fraction(0)
    rotation: int = 0
    full_range: bool = False
    sample_aspect: Fraction = Fraction(1)
    profile: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)

    def frame_time(self, index: int) -> Fraction:
        """Exact presentation time in seconds of the frame at 0-based ``index``."""
        return self.pts[index] * self.time_base

    @property
    def timestamps_s(self) -> tuple[float, ...]:
        """Presentation times of all frames in seconds (floats; use :meth:`frame_time` for exact ones)."""
        return tuple(float(p * self.time_base) for p in self.pts)


# --------------------------------------------------------------------------------------------- probe


@dataclass(frozen=True)
class _StreamHeader:
    """The parts of ffmpeg's stderr stream description that framecrc does not give."""

    video_codec: str | None
    pix_fmt: str | None
    full_range: bool
    width: int | None
    height: int | None
    rotation: int
    audio_codecs: tuple[str, ...]
    timecode: str | None
    container_start: Fraction
    sample_aspect: Fraction = Fraction(1)
    profile: str | None = None


_STREAM_RE = re.compile(r"^\s*Stream #0:\d+\S*: (Video|Audio|Data|Subtitle|Attachment): (.*)$")
_DURATION_RE = re.compile(r"^\s*Duration: .*?, start: (-?)(\d+)\.(\d{6})")
_TIMECODE_RE = re.compile(r"^\s*timecode\s*: (\S+)\s*$")
_ROTATION_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_SIZE_RE = re.compile(r"^(\d+)x(\d+)\b")
_SAR_RE = re.compile(r"\bSAR (\d+):(\d+)")
_PROFILE_RE = re.compile(r"\(([^()]*)\)")


def _profile(codec_part: str) -> str | None:
    """``prores (HQ) (apch / 0x68637061)`` -> ``HQ``: the first parenthesised word that is not a codec tag."""
    for text in _PROFILE_RE.findall(codec_part):
        if " / 0x" not in text and text.strip():
            return text.strip()
    return None


def _sample_aspect(desc: str) -> Fraction:
    """The last ``SAR a:b`` of a stream line (ffmpeg prints the codec's in brackets, then the container's when
    it differs, which wins as in ffprobe); 1 when absent or ``0:b``."""
    found = _SAR_RE.findall(desc)
    if not found:
        return Fraction(1)
    num, den = (int(v) for v in found[-1])
    return Fraction(num, den) if num > 0 and den > 0 else Fraction(1)


def _split_top_level(text: str) -> list[str]:
    """Split ffmpeg's ``a (x, y), b, c`` stream description at commas outside parentheses/brackets."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts


def _parse_stream_header(stderr: str) -> _StreamHeader:
    """Parse the ``Input #0`` section of ffmpeg's stderr (the output section repeats stream lines)."""
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Input #0")), None)
    if start is None:
        return _StreamHeader(None, None, False, None, None, 0, (), None, Fraction(0))
    section: list[str] = []
    for line in lines[start + 1 :]:
        if not line.startswith(" "):  # "Stream mapping:", "Output #0", "At least one output ..."
            break
        section.append(line)

    video_codec = pix_fmt = None
    full_range = False
    width = height = None
    rotation = 0
    audio: list[str] = []
    timecode = None
    container_start = Fraction(0)
    sample_aspect = Fraction(1)
    profile = None
    in_first_video = False
    for line in section:
        if m := _DURATION_RE.match(line):
            sign, whole, micro = m.groups()
            container_start = (int(whole) + Fraction(int(micro), 1_000_000)) * (-1 if sign else 1)
            continue
        if m := _STREAM_RE.match(line):
            kind, desc = m.groups()
            in_first_video = False
            if kind == "Video" and video_codec is None and "(attached pic)" not in desc:
                parts = _split_top_level(desc)
                video_codec = parts[0].split()[0] if parts[0] else None
                profile = _profile(parts[0])
                sample_aspect = _sample_aspect(desc)
                size_index = next((i for i, p in enumerate(parts) if _SIZE_RE.match(p)), None)
                if size_index is not None:
                    sm = _SIZE_RE.match(parts[size_index])
                    assert sm is not None
                    width, height = int(sm.group(1)), int(sm.group(2))
                if len(parts) > 1 and size_index != 1:
                    pix_fmt = parts[1].split("(")[0].strip() or None
                    full_range = "(pc" in parts[1] or (pix_fmt or "").startswith("yuvj")
                in_first_video = True
            elif kind == "Audio":
                audio.append(desc.split(",")[0].split()[0])
            continue
        if (m := _TIMECODE_RE.match(line)) and timecode is None:
            timecode = m.group(1)
            continue
        if in_first_video and (m := _ROTATION_RE.search(line)):
            rotation = round(float(m.group(1))) % 360
    return _StreamHeader(
        video_codec, pix_fmt, full_range, width, height, rotation, tuple(audio), timecode, container_start,
        sample_aspect, profile,
    )


@dataclass(frozen=True)
class _Packet:
    dts: int
    pts: int
    duration: int
    flags: int


@dataclass(frozen=True)
class _PacketList:
    time_base: Fraction
    width: int | None
    height: int | None
    codec: str | None
    packets: tuple[_Packet, ...]


_NOPTS = -(2**63)


def _parse_framecrc(text: str) -> _PacketList:
    """Parse ``ffmpeg -f framecrc`` output (one stream, as :func:`vfx.io.ffmpeg.probe_argv` maps)."""
    time_base: Fraction | None = None
    width = height = None
    codec = None
    packets: list[_Packet] = []
    for line in text.splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            value = value.strip()
            if key.startswith("tb "):
                time_base = Fraction(value)
            elif key.startswith("dimensions ") and (m := _SIZE_RE.match(value)):
                width, height = int(m.group(1)), int(m.group(2))
            elif key.startswith("codec_id "):
                codec = value
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 6 or not fields[0].isdigit():
            continue
        flags = _FLAG_KEY  # framecrc prints F= only when the flags are not exactly "key"
        for extra in fields[6:]:
            if extra.startswith("F="):
                flags = int(extra[2:], 16)
        packets.append(_Packet(int(fields[1]), int(fields[2]), int(fields[3]), flags))
    if time_base is None:
        time_base = Fraction(1, 1)
    return _PacketList(time_base, width, height, codec, tuple(packets))


def _frame_rate(packets: list[_Packet], pts: list[int], time_base: Fraction) -> Fraction | None:
    """Exact frame rate from packet durations, else from timestamp spacing; ``None`` if undeterminable."""
    durations = {p.duration for p in packets if p.duration > 0}
    if len(pts) < 2:
        # A single frame: its duration is the only evidence.
        return 1 / (max(durations) * time_base) if durations else None
    span = pts[-1] - pts[0]
    if len(durations) == 1 and next(iter(durations)) * (len(pts) - 1) == span:
        return 1 / (next(iter(durations)) * time_base)
    # Durations alone can lie: Matroska stores 33 ms on every frame of a 29.97 clip (1/1000 time base).
    deltas = Counter(b - a for a, b in zip(pts, pts[1:], strict=False))
    if len(deltas) == 1:
        return 1 / (next(iter(deltas)) * time_base)
    mean = 1 / (Fraction(span, len(pts) - 1) * time_base)
    for rate in _STANDARD_RATES:
        if abs(mean - rate) / rate < Fraction(1, 1000):
            return rate
    return mean.limit_denominator(1001)


def _describe_unreadable(path: Path, stderr: str) -> tuple[str, str]:
    """Say, from ffmpeg's complaint and the file's first bytes, what is wrong and how to fix it."""
    with path.open("rb") as fh:
        head = fh.read(12)
    looks_iso = len(head) >= 8 and head[4:8] in _ISO_BOXES
    tail = ff.stderr_tail(stderr, 4)
    if "moov atom not found" in stderr and looks_iso:
        return (
            f"a truncated or unfinished MP4/MOV: its index (moov atom) is missing; ffmpeg said: {tail}",
            "re-copy or re-render the file; an interrupted render or copy leaves no moov atom",
        )
    if "matches no streams" in stderr:
        return (
            "a media file with no video stream (audio only?)",
            "pass a file that contains video",
        )
    return (
        f"a file ffmpeg cannot read as video; ffmpeg said: {tail}",
        "check that the file is a video (mp4, mov, mkv, ...) and not a text, image or partial download",
    )


def _checked_timecode(timecode: str | None, fps: Fraction, path: Path) -> str | None:
    """The file's timecode tag through :func:`vfx.io.timecode.check_timecode`, or ``None`` (logged) if it fails."""
    if timecode is None:
        return None
    try:
        return check_timecode(timecode, fps)
    except ConfigError as exc:
        logger.warning("ignoring the timecode of %s: %s", path, exc)
        return None


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Describe the first video stream of ``path`` exactly, without decoding it.

    Runs ``ffmpeg -copyts -i FILE -map 0:V:0 -c copy -f framecrc -``: stdout lists every packet with its
    timestamps and flags, stderr the stream description (codec, pixel format, audio, timecode). Nothing
    is cached; each call reads the file again.

    Args:
        path: video file (mp4, mov, mkv, ...).

    Returns:
        The :class:`VideoInfo`.

    Raises:
        MediaError: missing file, a directory, an empty or non-video file, a truncated file (moov atom
            missing, or packets cut off), no video stream, no frames, or duplicate timestamps.

    Example:
        >>> info = probe_video("plate.mp4")  # doctest: +SKIP
        >>> info.frame_count, info.fps, info.size  # doctest: +SKIP
        (1008, Fraction(30, 1), (480, 480))
    """
    path = Path(path)
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        info = None
    except (OSError, ValueError) as err:  # a name too long for the file system, a loop of links, a NUL
        raise MediaError(
            "Cannot open video file",
            expected="a video file path the file system accepts",
            found=f"{type(err).__name__}: {str(err)[:200]}",
            fix="check the path (its length, its links)",
        ) from None
    if info is None:
        raise MediaError(
            "Video file not found",
            expected="an existing video file",
            found=f"nothing at {path}",
            fix="check the path and that the disk is mounted",
        )
    if stat.S_ISDIR(info.st_mode):
        raise MediaError(
            "Cannot read a folder as a video",
            expected="a video file",
            found=f"{path} is a directory",
            fix="pass the movie file inside it, or use the image-sequence reader for frame folders",
        )
    if not stat.S_ISREG(info.st_mode):
        raise MediaError(
            "Cannot read a device, pipe or socket as a video",
            expected="a video file",
            found=f"{path} is not a regular file",
            fix="pass the movie file itself",
        )
    if info.st_size == 0:
        raise MediaError(
            "Video file is empty",
            expected="a video file",
            found=f"{path} has 0 bytes",
            fix="re-copy or re-render it",
        )

    exe = ff.find_ffmpeg()
    result = ff.run_ffmpeg(ff.probe_argv(exe, path), what=f"listing the packets of {path}", check=False)
    if result.returncode != 0:
        found, fix = _describe_unreadable(path, result.stderr)
        raise MediaError(f"Cannot read video {path}", expected="a readable video file", found=found, fix=fix)
    for symptom in ("partial file", "Packet corrupt", "corrupt input packet"):
        if symptom in result.stderr:
            raise MediaError(
                f"Video {path} is truncated or corrupt",
                expected="every packet its index lists",
                found=f"ffmpeg reported: {ff.stderr_tail(result.stderr, 4)}",
                fix="re-copy or re-render the file; it was probably cut off",
            )

    header = _parse_stream_header(result.stderr)
    listing = _parse_framecrc(result.stdout.decode("ascii", "replace"))
    shown = [p for p in listing.packets if not p.flags & _FLAG_DISCARD]
    if not shown:
        raise MediaError(
            f"Video {path} has no frames",
            expected="a video stream with at least one frame",
            found=f"a {listing.codec or header.video_codec or 'video'} stream with 0 packets",
            fix="re-export the clip; the render or transcode that made it wrote no pictures",
        )
    if any(p.pts == _NOPTS for p in shown):
        raise MediaError(
            f"Video {path} has frames without timestamps",
            expected="a timestamp on every frame (mp4, mov, mkv)",
            found="packets with no presentation time",
            fix=f"remux it: ffmpeg -fflags +genpts -i {path.name} -c copy fixed.mov",
        )
    pts = sorted(p.pts for p in shown)
    if len(set(pts)) != len(pts):
        raise MediaError(
            f"Video {path} has frames with identical timestamps",
            expected="one presentation time per frame",
            found=f"{len(pts) - len(set(pts))} repeated timestamps",
            fix=f"re-encode it: ffmpeg -i {path.name} -fps_mode cfr fixed.mov",
        )

    tb = listing.time_base
    fps = _frame_rate(list(shown), pts, tb)
    if fps is None:
        raise MediaError(
            f"Cannot tell the frame rate of {path}",
            expected="frame durations or at least two frames",
            found="a single frame without a duration",
            fix="re-export it as a clip of more than one frame",
        )

    width = listing.width or header.width
    height = listing.height or header.height
    if width is None or height is None:
        raise MediaError(
            f"Cannot tell the frame size of {path}",
            expected="a video stream with known dimensions",
            found=ff.stderr_tail(result.stderr, 4),
            fix="re-encode it with ffmpeg",
        )
    if header.rotation in (90, 270):
        # The decoder turns the picture for us (autorotate), so the frames we get are this way round.
        width, height = height, width

    last = max(shown, key=lambda p: p.pts)
    last_duration = last.duration if last.duration > 0 else 1 / (fps * tb)
    duration_s = float((pts[-1] + last_duration - pts[0]) * tb)

    seek_points = sorted(
        {(bisect.bisect_left(pts, p.pts), min(p.pts, p.dts)) for p in listing.packets if p.flags & _FLAG_KEY}
    )
    if not seek_points or seek_points[0][0] != 0:
        # Whatever the index says, decoding from the start of the file reaches every frame.
        seek_points.insert(0, (0, min(min(p.pts, p.dts) for p in listing.packets)))

    info = VideoInfo(
        path=path,
        width=width,
        height=height,
        frame_count=len(pts),
        fps=fps,
        pix_fmt=header.pix_fmt or "unknown",
        codec=listing.codec or header.video_codec or "unknown",
        has_audio=bool(header.audio_codecs),
        audio_codec=header.audio_codecs[0] if header.audio_codecs else None,
        timecode=_checked_timecode(header.timecode, fps, path),
        duration_s=duration_s,
        time_base=tb,
        pts=tuple(pts),
        seek_points=tuple(seek_points),
        container_start=header.container_start,
        rotation=header.rotation,
        full_range=header.full_range,
        sample_aspect=header.sample_aspect,
        profile=header.profile,
    )
    logger.debug("probed %s: %s", path, info)
    return info


