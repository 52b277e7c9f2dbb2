"""Random, frame-accurate access to a movie's frames through one streaming ffmpeg process."""

from __future__ import annotations

import bisect
import logging
import math
import os
from collections.abc import Iterator
from fractions import Fraction
from types import TracebackType

import numpy as np

from vfx.errors import ConfigError, ExternalToolError, FrameRangeError
from vfx.io import ffmpeg as ff
from vfx.io.video.probe import VideoInfo, probe_video
from vfx.shot.frames import DEFAULT_START_FRAME

logger = logging.getLogger(__name__)

__all__ = ["VideoReader"]

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


