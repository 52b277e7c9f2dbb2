"""SMPTE timecode in one place, on OpenTimelineIO's ``opentime``.

Drop-frame at the NTSC rates 30000/1001 and 60000/1001 (``HH:MM:SS;FF``: frame numbers 0 and 1, or 0-3 at
59.94, are skipped at the start of every minute except every tenth), non-drop elsewhere (23.976 counts 24 a
second, like a 24 fps clock). A timecode written with ``:`` at an NTSC rate is non-drop and stays so. EXR
metadata, the video probe and encoder, and the render loop all go through here, so a frame's timecode is the
same string in every file the toolkit writes.

Convention:
    - ``fps`` is an exact :class:`~fractions.Fraction` (``Fraction(30000, 1001)``).
    - Counts are frames since ``00:00:00:00`` at that rate, wrapped at 24 hours.
"""

from __future__ import annotations

import re
from fractions import Fraction

from opentimelineio import opentime

from vfx.errors import ConfigError

__all__ = ["DROP_FRAME_RATES", "check_timecode", "frame_timecode", "frames_to_timecode", "is_drop_frame_rate",
           "timecode_to_frames"]

DROP_FRAME_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))
"""The rates whose timecode is drop-frame by default (29.97 and 59.94)."""

_FORMAT = re.compile(r"^(\d{2}):([0-5]\d):([0-5]\d)([:;.])(\d{2})$")


def is_drop_frame_rate(fps: Fraction) -> bool:
    """Whether ``fps`` counts drop-frame timecode by default (29.97, 59.94)."""
    return Fraction(fps) in DROP_FRAME_RATES


def _nominal(fps: Fraction) -> int:
    return max(1, round(float(fps)))


def _day(fps: Fraction, drop: bool) -> int:
    """Frames in 24 hours of timecode at ``fps``."""
    nominal = _nominal(fps)
    if not drop:
        return 24 * 3600 * nominal
    skipped = 2 * nominal // 30  # 2 numbers a minute at 29.97, 4 at 59.94
    return 24 * (3600 * nominal - 54 * skipped)


def check_timecode(timecode: str, fps: Fraction | None = None) -> str:
    """``timecode`` checked: ``HH:MM:SS:FF`` (``;`` or ``.`` before FF for drop-frame), hours below 24, FF below
    the nominal rate, drop-frame only at 29.97 or 59.94 and never a skipped number. Returns it stripped.

    Raises:
        ConfigError: any of those broken; the message says which.
    """
    text = timecode.strip() if isinstance(timecode, str) else ""
    m = _FORMAT.match(text)
    limit = _nominal(fps) if fps is not None else 60
    if m is None or int(m[1]) >= 24 or int(m[5]) >= limit:
        rate = f" at {fps} fps" if fps is not None else ""
        raise ConfigError(f"Invalid timecode {timecode!r}",
                          expected=f"SMPTE HH:MM:SS:FF (HH:MM:SS;FF for drop-frame), hours below 24, FF below {limit}"
                          + rate, found=repr(timecode), fix="write it like '01:00:00:00'")
    if m[4] in ";." and fps is not None:
        if not is_drop_frame_rate(fps):
            raise ConfigError("Drop-frame timecode needs an NTSC rate", expected="fps 30000/1001 or 60000/1001 with "
                              "HH:MM:SS;FF", found=f"{timecode!r} at {fps} fps",
                              fix="write the timecode with ':' (non-drop), or set the plate's fps to 30000/1001")
        if int(m[3]) == 0 and int(m[2]) % 10 and int(m[5]) < 2 * _nominal(fps) // 30:
            raise ConfigError(f"Timecode {timecode!r} does not exist in drop-frame", expected="no frame numbers "
                              f"below {2 * _nominal(fps) // 30} at the start of a minute not divisible by 10",
                              found=repr(timecode), fix=f"use {m[1]}:{m[2]}:00;{2 * _nominal(fps) // 30:02d}")
    return text


def timecode_to_frames(timecode: str, fps: Fraction) -> int:
    """Frames since ``00:00:00:00`` at ``fps`` (drop-frame when written with ``;``)."""
    text = check_timecode(timecode, fps).replace(".", ";")
    return round(opentime.from_timecode(text, float(fps)).value)


def frames_to_timecode(count: int, fps: Fraction, *, drop: bool | None = None) -> str:
    """The timecode ``count`` frames after ``00:00:00:00`` at ``fps``, wrapped at 24 hours.

    Args:
        drop: drop-frame (default: at 29.97 and 59.94).

    Example:
        >>> frames_to_timecode(107892 + 1800, Fraction(30000, 1001))
        '01:01:00;02'
        >>> frames_to_timecode(1001, Fraction(24))
        '00:00:41:17'
    """
    drop = is_drop_frame_rate(fps) if drop is None else bool(drop and is_drop_frame_rate(fps))
    count = int(count) % _day(fps, drop)
    return opentime.to_timecode(opentime.RationalTime(count, float(fps)), float(fps), drop)


def frame_timecode(frame: int, fps: Fraction, *, start_frame: int = 0, start_timecode: str | None = None) -> str:
    """SMPTE timecode of ``frame``: ``start_timecode`` at ``start_frame`` plus the frames since.

    Drop-frame at 29.97 and 59.94 unless ``start_timecode`` is written non-drop (``:``), which is kept. Without a
    start timecode the frame number itself is counted from 00:00:00:00 (frame 1001 at 24 fps is 00:00:41:17),
    the convention of sequences that carry no timecode of their own.

    Example:
        >>> frame_timecode(1001, Fraction(24))
        '00:00:41:17'
        >>> frame_timecode(1010, Fraction(25), start_frame=1001, start_timecode="01:00:00:00")
        '01:00:00:09'
        >>> frame_timecode(2800, Fraction(30000, 1001), start_frame=1000, start_timecode="01:00:00;00")
        '01:01:00;02'
    """
    count = int(frame) - int(start_frame)
    drop = None
    if start_timecode:
        text = check_timecode(start_timecode, fps)
        drop = text[8] in ";." and is_drop_frame_rate(fps)
        count += timecode_to_frames(text, fps)
    return frames_to_timecode(count, fps, drop=drop)
