"""Frame-accurate video reading and writing through the ffmpeg binary.

Three pieces:

* :func:`probe_video` lists every packet of the video stream (``ffmpeg -c copy -f framecrc``, no
  decoding: 25-50 ms for a 30 s clip) and returns a :class:`VideoInfo` with the exact frame count,
  the exact rational frame rate and every frame's presentation timestamp.
* :class:`VideoReader` streams decoded frames from one ffmpeg process. Reading the next frame continues
  the pipe; reading elsewhere restarts ffmpeg at the keyframe before the wanted frame and drops frames
  with a ``select`` on the exact timestamps from the probe, so frame N is the same pixels whether reached
  by seeking or by decoding from the start.
* :func:`encode_video` pipes numpy frames into an H.264 review proxy or a ProRes 4444 master, written
  atomically, and checks the result's frame count and frame rate before it replaces the destination.

Convention:
    Frames are numpy arrays (H, W, 3) RGB, or (H, W, 4) RGBA, top row first; uint8 for 8-bit and uint16
    (full 0..65535 range) for 16-bit. Sizes are (height, width). Frame numbers are VFX frame numbers:
    the first frame of a clip is ``start_frame`` (1001 by default); "index" means the 0-based position
    in presentation order. Timestamps are integers in ``time_base`` units (seconds = ts * time_base).
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from numbers import Rational
from pathlib import Path
from types import TracebackType

import numpy as np

from vfx.errors import ConfigError, ExternalToolError, FrameRangeError, MediaError
from vfx.io import ffmpeg as ff
from vfx.utils.atomic import atomic_path
from vfx.shot.frames import DEFAULT_START_FRAME

__all__ = ["VideoInfo", "VideoReader", "encode_video", "probe_video"]

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


_STREAM_RE = re.compile(r"^\s*Stream #0:\d+\S*: (Video|Audio|Data|Subtitle|Attachment): (.*)$")
_DURATION_RE = re.compile(r"^\s*Duration: .*?, start: (-?)(\d+)\.(\d{6})")
_TIMECODE_RE = re.compile(r"^\s*timecode\s*: (\S+)\s*$")
_ROTATION_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_SIZE_RE = re.compile(r"^(\d+)x(\d+)\b")


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
        video_codec, pix_fmt, full_range, width, height, rotation, tuple(audio), timecode, container_start
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
    if not path.exists():
        raise MediaError(
            "Video file not found",
            expected="an existing video file",
            found=f"nothing at {path}",
            fix="check the path and that the disk is mounted",
        )
    if path.is_dir():
        raise MediaError(
            "Cannot read a folder as a video",
            expected="a video file",
            found=f"{path} is a directory",
            fix="pass the movie file inside it, or use the image-sequence reader for frame folders",
        )
    if path.stat().st_size == 0:
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
        timecode=header.timecode,
        duration_s=duration_s,
        time_base=tb,
        pts=tuple(pts),
        seek_points=tuple(seek_points),
        container_start=header.container_start,
        rotation=header.rotation,
        full_range=header.full_range,
    )
    logger.debug("probed %s: %s", path, info)
    return info


# -------------------------------------------------------------------------------------------- reader


class VideoReader:
    """Random access to the frames of a movie, streaming through one ffmpeg process.

    Reading frame N+1 after frame N continues the running decode. Reading anywhere else restarts ffmpeg
    at the last keyframe before the wanted frame (``-ss`` with ``-noaccurate_seek``) and lets a
    ``select`` filter drop frames up to it by their exact probed timestamps; short jumps forward with no
    keyframe in between just read on. Either way a frame has the same pixels as in a full decode from
    the start. Only one frame is in memory at a time.

    16-bit reads are corrected so white is 65535: libswscale alone delivers 65283 (see
    :meth:`_measure_gain`), one more short ffmpeg run when the reader opens.

    Not thread-safe: use one reader per thread.

    Convention:
        ``read`` returns (H, W, 3) RGB (or (H, W, 4) RGBA with ``with_alpha``), uint8 for
        ``bit_depth=8`` and uint16 for ``bit_depth=16``. Frame numbers start at ``start_frame``.

    Args:
        path: video file.
        start_frame: frame number of the first frame (VFX convention 1001).
        bit_depth: 8 (``rgb24``) or 16 (``rgb48le``; 10/12-bit sources keep their precision).
        with_alpha: return RGBA; a source without alpha comes back fully opaque.

    Raises:
        MediaError: the file cannot be probed, see :func:`probe_video`.
        ConfigError: ``bit_depth`` not 8 or 16.

    Example:
        >>> with VideoReader("plate.mp4") as reader:  # doctest: +SKIP
        ...     first = reader.read(1001)
        ...     for number, image in reader.frames(1010, 1020):
        ...         ...
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        start_frame: int = DEFAULT_START_FRAME,
        bit_depth: int = 8,
        with_alpha: bool = False,
    ) -> None:
        if bit_depth not in (8, 16):
            raise ConfigError(
                "Unsupported bit depth for reading video",
                expected="8 or 16",
                found=repr(bit_depth),
                fix="pass bit_depth=8 (uint8) or bit_depth=16 (uint16)",
            )
        self._info = probe_video(path)
        self._exe = ff.find_ffmpeg()
        self._start_frame = int(start_frame)
        self._bit_depth = bit_depth
        channels = 4 if with_alpha else 3
        self._pix_fmt = ff.raw_pix_fmt(bit_depth, channels)
        self._dtype = np.dtype(np.uint8) if bit_depth == 8 else np.dtype("<u2")
        self._shape = (self._info.height, self._info.width, channels)
        self._frame_bytes = math.prod(self._shape) * self._dtype.itemsize
        self._gain = self._measure_gain() if bit_depth == 16 else None
        self._proc: ff.FfmpegProcess | None = None
        self._next_index = 0  # index of the frame the running process delivers next
        self._seek_indices = [index for index, _ in self._info.seek_points]

    # ------------------------------------------------------------------ public

    @property
    def info(self) -> VideoInfo:
        """The probe of the file."""
        return self._info

    @property
    def frame_range(self) -> tuple[int, int]:
        """(first, last) frame numbers, both inclusive."""
        return (self._start_frame, self._start_frame + self._info.frame_count - 1)

    @property
    def bit_depth(self) -> int:
        """8 or 16."""
        return self._bit_depth

    def __len__(self) -> int:
        return self._info.frame_count

    def read(self, frame: int) -> np.ndarray:
        """Return frame number ``frame``.

        Raises:
            FrameRangeError: ``frame`` outside :attr:`frame_range`.
            ExternalToolError: ffmpeg stopped before delivering the frame.
        """
        index = self._index(frame)
        if self._proc is None or index < self._next_index or self._seek_is_cheaper(index):
            self._restart(index)
        while self._next_index < index:
            self._read_next()
        image = self._read_next()
        if self._next_index == self._info.frame_count:
            # Nothing left to stream: reap ffmpeg now rather than leave it waiting for us.
            self._stop()
        return image

    def frames(self, first: int | None = None, last: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(frame_number, image)`` for ``first..last`` inclusive (default: the whole clip).

        Streams: one ffmpeg process, one frame in memory (plus whatever the caller keeps).

        Raises:
            FrameRangeError: the range is empty or outside :attr:`frame_range`.
        """
        lo, hi = self.frame_range
        first = lo if first is None else first
        last = hi if last is None else last
        self._index(first)
        self._index(last)
        if last < first:
            raise FrameRangeError(
                f"Empty frame range {first}-{last} in {self._info.path.name}",
                expected="first <= last",
                found=f"first={first}, last={last}",
                fix="swap the two frame numbers",
            )
        for number in range(first, last + 1):
            yield number, self.read(number)

    def close(self) -> None:
        """Stop the ffmpeg process, if any (killed and reaped). The reader can still be read again."""
        self._stop()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # A forgotten close() must not leave an ffmpeg blocked on a full pipe for the life of the program.
        if getattr(self, "_proc", None) is not None:
            self._stop()

    def __repr__(self) -> str:
        first, last = self.frame_range
        return f"VideoReader({str(self._info.path)!r}, frames {first}-{last}, {self._bit_depth}-bit)"

    # ----------------------------------------------------------------- private

    def _index(self, frame: int) -> int:
        first, last = self.frame_range
        if not first <= frame <= last:
            raise FrameRangeError(
                f"Frame {frame} is outside {self._info.path.name}",
                expected=f"a frame number in {first}-{last} ({self._info.frame_count} frames)",
                found=str(frame),
                fix=f"ask for frames {first}-{last}, or open the reader with the right start_frame",
            )
        return frame - first

    def _seek_point(self, index: int) -> tuple[int, int]:
        return self._info.seek_points[bisect.bisect_right(self._seek_indices, index) - 1]

    def _seek_is_cheaper(self, index: int) -> bool:
        """True when a keyframe lies between the stream position and ``index``: restarting there
        decodes fewer frames than reading on."""
        return index > self._next_index and self._seek_point(index)[0] > self._next_index

    def _restart(self, index: int) -> None:
        self._stop()
        info = self._info
        seek_s: Fraction | None = None
        key_index, key_ts = self._seek_point(index)
        if key_index > 0:
            seek_s = key_ts * info.time_base - info.container_start
            if seek_s <= 0:
                seek_s = None
        select_from_s = None
        if index > 0:
            # Midpoint to the previous frame: a float `t` a hair off either timestamp still lands right.
            select_from_s = float((info.pts[index - 1] + info.pts[index]) * info.time_base / 2)
        argv = ff.decode_argv(self._exe, info.path, pix_fmt=self._pix_fmt, seek_s=seek_s, select_from_s=select_from_s)
        self._proc = ff.FfmpegProcess(argv, stdin=False, stdout=True)
        self._next_index = index

    def _read_next(self) -> np.ndarray:
        assert self._proc is not None
        image = np.empty(self._shape, dtype=self._dtype)
        view = memoryview(image).cast("B")
        filled = 0
        while filled < self._frame_bytes:
            got = self._proc.stdout.readinto(view[filled:])
            if not got:
                break
            filled += got
        if filled < self._frame_bytes:
            proc = self._proc
            proc.kill()
            tail = proc.stderr_tail()
            proc.close()
            self._proc = None
            number = self._start_frame + self._next_index
            raise ExternalToolError(
                f"ffmpeg stopped decoding {self._info.path.name} before frame {number}",
                expected=f"{self._info.frame_count} frames as probed",
                found=f"end of stream after {filled} of {self._frame_bytes} bytes; ffmpeg said: {tail}",
                fix="check the file is not being rewritten; if it plays elsewhere, report it with this message",
            )
        self._next_index += 1
        if self._gain is not None:
            scaled = image.astype(np.float32)
            scaled *= self._gain
            np.rint(scaled, out=scaled)
            np.minimum(scaled, 65535.0, out=scaled)
            image = scaled.astype(np.uint16)
        return image

    def _measure_gain(self) -> np.ndarray | None:
        """Per-channel factor that puts ffmpeg's 16-bit white at 65535, or ``None`` when it already is.

        See :func:`vfx.io.ffmpeg.calibration_argv`: libswscale widens to 16 bits by about 256 rather than
        257, leaving white at 65283 (-0.39 %), a one-code error at the top of an 8-bit scale. Measured
        on one synthetic frame in this clip's pixel format through the same filters (one extra ffmpeg
        run, a few ms), so the correction is exact for this ffmpeg and this source.
        """
        info = self._info
        argv = ff.calibration_argv(
            self._exe, source_pix_fmt=info.pix_fmt, full_range=info.full_range, pix_fmt=self._pix_fmt
        )
        if argv is None:
            logger.info("16-bit reads of %s (%s) are not gain-checked", info.path.name, info.pix_fmt)
            return None
        result = ff.run_ffmpeg(argv, what="measuring the 16-bit conversion gain", check=False)
        channels = self._shape[2]
        if result.returncode != 0 or len(result.stdout) != 16 * 16 * channels * 2:
            logger.warning(
                "could not measure ffmpeg's 16-bit gain for %s: %s", info.pix_fmt, ff.stderr_tail(result.stderr, 3)
            )
            return None
        white = np.frombuffer(result.stdout, dtype="<u2").reshape(-1, channels).astype(np.float64).mean(axis=0)
        if np.all(white == 65535.0):
            return None
        if np.any(white < 65535 * 0.99):
            # Not the known rounding error: something else is going on, and guessing would be worse.
            logger.warning("ffmpeg's 16-bit white for %s is %s; not correcting", info.pix_fmt, white)
            return None
        logger.debug("16-bit gain for %s: white at %s", info.pix_fmt, white)
        return (65535.0 / white).astype(np.float32)

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.close()
            self._proc = None


# ------------------------------------------------------------------------------------------- encoder

_TIMECODE_FORMAT = re.compile(r"^(\d{2}):([0-5]\d):([0-5]\d)([:;])(\d{2})$")
_EXTENSIONS = {"h264": (".mp4", ".mov"), "prores4444": (".mov",)}


def _check_timecode(timecode: str, fps: Fraction) -> None:
    m = _TIMECODE_FORMAT.match(timecode)
    nominal = math.ceil(fps)
    if m is None or int(m.group(5)) >= nominal:
        raise ConfigError(
            "Invalid timecode",
            expected=(
                f"HH:MM:SS:FF with FF below {nominal} at {ff.format_rational(fps)} fps"
                " (';' before FF for drop-frame)"
            ),
            found=repr(timecode),
            fix="pass e.g. '01:00:00:00'",
        )
    if m.group(4) == ";" and fps not in (Fraction(30000, 1001), Fraction(60000, 1001)):
        raise ConfigError(
            "Drop-frame timecode needs an NTSC rate",
            expected="fps 30000/1001 or 60000/1001 with HH:MM:SS;FF",
            found=f"{timecode!r} at {ff.format_rational(fps)} fps",
            fix="use ':' before the frames field",
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


def _audio_codec_of(path: Path, exe: str) -> str | None:
    """First audio codec of ``path`` from its stream description (the file need not contain video)."""
    if not path.is_file():
        raise MediaError(
            "Audio source not found",
            expected="an existing media file to copy audio from",
            found=f"nothing at {path}" if not path.exists() else f"{path} is not a file",
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
) -> VideoInfo:
    """Encode frames into a movie, atomically, and check what was written.

    ``codec="h264"``: review proxy, libx264 yuv420p crf 18, ``+faststart``, ``.mp4`` (or ``.mov``);
    needs even width and height; an alpha channel is dropped. ``codec="prores4444"``: master, ProRes
    4444 (prores_ks profile 4), ``.mov``; RGBA input is written as ``yuva444p10le`` and keeps its
    alpha, RGB input as ``yuv444p10le``. Both are tagged Rec.709 and converted with that matrix.

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
        codec: ``"h264"`` or ``"prores4444"``.
        audio_from: file whose audio streams to copy, e.g. the source plate; a file without audio
            is logged and ignored.
        timecode: start timecode ``HH:MM:SS:FF`` written into the file.
        bit_depth: 8 or 16, the dtype of ``frames``.

    Returns:
        The probe of the written file (``path`` is ``out_path``).

    Raises:
        ConfigError: bad codec, extension, fps, timecode or bit depth.
        MediaError: no frames, a frame of the wrong type or size, odd size for H.264, unreadable
            ``audio_from``.
        ExternalToolError: ffmpeg failed or the written file does not have the frames sent; nothing is
            left at ``out_path`` (a previous file there is kept).
    """
    out = Path(out_path)
    ff.check_codec(codec)
    if out.suffix.lower() not in _EXTENSIONS[codec]:
        raise ConfigError(
            f"Wrong file extension for {codec}",
            expected=" or ".join(_EXTENSIONS[codec]),
            found=repr(out.suffix or out.name),
            fix=f"name the output {out.stem}{_EXTENSIONS[codec][0]}",
        )
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
        _check_timecode(timecode, fps)

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
    if codec == "h264" and (width % 2 or height % 2):
        raise MediaError(
            "H.264 (yuv420p) needs an even frame size",
            expected="even width and height",
            found=f"{width}x{height} (width x height)",
            fix=f"crop or pad to {width - width % 2}x{height - height % 2}, or use codec='prores4444'",
        )
    if codec == "h264" and channels == 4:
        logger.warning("H.264 has no alpha: dropping the alpha channel of frames for %s", out.name)

    with atomic_path(out) as tmp:
        # With audio, the picture goes to a second temp first: the audio is cut to the picture's length,
        # which a frame generator only reveals at its end.
        picture = tmp if audio_path is None else tmp.with_name(tmp.name.replace(".vfxtmp", ".video.vfxtmp"))
        try:
            written = _pipe_frames(
                exe, picture, first, iterator, fps=fps, codec=codec, bit_depth=bit_depth, timecode=timecode
            )
            if audio_path is not None:
                argv = ff.mux_audio_argv(
                    exe, picture, audio_path, tmp, codec=codec, audio_duration_s=written / fps, timecode=timecode
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
