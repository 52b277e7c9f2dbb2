"""Frames, frame ranges, frame rates and image-sequence patterns.

Convention:
    - Frames are integers; ranges are inclusive (``1001-1100`` is 100 frames), in the farm grammar that
      fileseq and OpenCue share: ``1001-1100``, ``1001-1100x2`` (step), ``1001,1005,1010-1020``.
    - Frame rates are :class:`fractions.Fraction` (``24000/1001``), never floats.
    - Sequence patterns: ``name.####.exr`` (one ``#`` per digit, as in Nuke), ``name.%04d.exr``,
      ``name.@.exr`` (one ``@`` per digit), Houdini's ``$F4``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import fileseq

from vfx.errors import ConfigError, FrameRangeError

__all__ = [
    "DEFAULT_START_FRAME",
    "FrameRange",
    "SequencePattern",
    "parse_fps",
    "is_sequence_pattern",
    "format_frames",
]

DEFAULT_START_FRAME = 1001
"""First frame number of a clip, by VFX convention: it leaves room for pre-roll and 1001-1100 is 100 frames."""

# Rates people write as decimals; the true rates are NTSC rationals, and 23.976 != 24000/1001.
_NTSC_DECIMALS = {
    "23.976": Fraction(24000, 1001),
    "23.98": Fraction(24000, 1001),
    "29.97": Fraction(30000, 1001),
    "47.952": Fraction(48000, 1001),
    "59.94": Fraction(60000, 1001),
    "119.88": Fraction(120000, 1001),
}


def parse_fps(value: str | int | float | Fraction) -> Fraction:
    """Parse a frame rate into an exact fraction.

    Accepts ``24``, ``"25"``, ``"30000/1001"``, a :class:`Fraction`, and the NTSC decimals people type
    (``23.976``, ``29.97``, ``59.94``), which become their exact ``/1001`` rationals.

    Raises:
        ConfigError: for anything that is not a positive rate.

    Example:
        >>> parse_fps("24000/1001"), parse_fps(25), parse_fps("29.97")
        (Fraction(24000, 1001), Fraction(25, 1), Fraction(30000, 1001))
    """
    if isinstance(value, bool):
        raise ConfigError("Invalid frame rate", expected="a positive number or fraction such as 24 or 24000/1001",
                          found=repr(value), fix="write the rate as a number, e.g. fps: 24 or fps: 24000/1001")
    text = str(value).strip()
    try:
        fps = _NTSC_DECIMALS.get(text) or Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ConfigError("Invalid frame rate", expected="a positive number or fraction such as 24 or 24000/1001",
                          found=repr(value), fix="write the rate as a fraction, e.g. fps: 24000/1001") from None
    if fps <= 0:
        raise ConfigError("Invalid frame rate", expected="a rate above 0", found=str(fps),
                          fix="write a rate above 0, e.g. fps: 24 or fps: 24000/1001")
    if fps.denominator > 1001 * 1000:
        raise ConfigError("Frame rate is not exact", expected="an integer or a fraction such as 24000/1001",
                          found=repr(value), fix="write NTSC rates as fractions, e.g. 30000/1001")
    return fps


@dataclass(frozen=True)
class FrameRange:
    """An ordered set of integer frames, parsed from the farm grammar.

    ``first`` and ``last`` are inclusive. A range may have holes (``1001-1010x2``, ``1001,1005``);
    ``frames`` lists exactly the frames it holds, in ascending order.

    Example:
        >>> r = FrameRange.parse("1001-1010x3")
        >>> r.frames, r.first, r.last, len(r)
        ((1001, 1004, 1007, 1010), 1001, 1010, 4)
        >>> str(FrameRange.parse("1001,1005,1010-1012"))
        '1001,1005,1010-1012'
    """

    frames: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.frames:
            raise FrameRangeError("Empty frame range", expected="at least one frame", found="no frames",
                                  fix="give at least one frame, e.g. --frames 1001-1100")
        if list(self.frames) != sorted(set(self.frames)):
            object.__setattr__(self, "frames", tuple(sorted(set(self.frames))))

    @classmethod
    def parse(cls, spec: str | int | FrameRange) -> FrameRange:
        """Parse ``1001-1100``, ``1001-1100x2``, ``1001,1005,1010-1020`` or a single frame ``1001``.

        Raises:
            FrameRangeError: if the text is not a frame range of integer frames.
        """
        if isinstance(spec, FrameRange):
            return spec
        if isinstance(spec, bool):
            spec = str(spec)
        text = str(spec).strip().replace(" ", "")
        _check_bounds(text, str(spec))
        try:
            frame_set = fileseq.FrameSet(text)
            frames = [int(f) for f in frame_set]
            if any(f != float(g) for f, g in zip(frames, frame_set)):
                raise ValueError("sub-frames")
        except (fileseq.ParseException, ValueError, TypeError, ArithmeticError) as err:
            raise FrameRangeError(
                f"Cannot parse frame range {str(spec)!r}",
                expected="integer frames such as 1001-1100, 1001-1100x2 or 1001,1005,1010-1020 (inclusive)",
                found=str(err).splitlines()[0] if str(err) else repr(spec),
                fix="write the first and last frame with a dash, e.g. --frames 1001-1100",
            ) from None
        if not frames:
            raise FrameRangeError(f"Frame range {str(spec)!r} holds no frames", expected="at least one frame",
                                  found=repr(spec), fix="e.g. 1001-1100")
        return cls(tuple(frames))

    @classmethod
    def parse_openjd(cls, spec: str) -> FrameRange:
        """Parse an Open Job Description range expression, where ``:`` is the step (``1001-1010:2``); in the
        farm grammar of :meth:`parse` (and OpenCue's) it is an interleave, so it is translated, not passed on.

        Example:
            >>> FrameRange.parse_openjd("1001-1007:3,1010").frames
            (1001, 1004, 1007, 1010)
        """
        parts = [p.strip() for p in str(spec).split(",")]
        if any(p.count(":") > 1 or ("x" in p or "y" in p) for p in parts):
            raise FrameRangeError(f"Cannot parse OpenJD range {spec!r}",
                                  expected="an OpenJD range expression such as 1001-1010 or 1001-1010:2",
                                  found=repr(spec),
                                  fix="write first-last:step, e.g. 1001-1010:2, with single frames separated by commas")
        return cls.parse(",".join(p.replace(":", "x") for p in parts))

    @classmethod
    def from_bounds(cls, first: int, last: int) -> FrameRange:
        """The contiguous range ``first``..``last`` inclusive."""
        if last < first:
            raise FrameRangeError("Frame range ends before it starts", expected=f"last >= first ({first})",
                                  found=f"last = {last}", fix="give the first frame before the last one")
        return cls(tuple(range(first, last + 1)))

    @property
    def first(self) -> int:
        return self.frames[0]

    @property
    def last(self) -> int:
        return self.frames[-1]

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[int]:
        return iter(self.frames)

    def __contains__(self, frame: object) -> bool:
        return frame in set(self.frames)

    def __str__(self) -> str:
        return str(fileseq.FrameSet.from_iterable(self.frames))

    def chunks(self, size: int) -> Iterator[FrameRange]:
        """Split into consecutive pieces of at most ``size`` frames (the farm's unit of work)."""
        if size < 1:
            raise ConfigError("Invalid chunk size", expected="1 or more frames", found=str(size),
                              fix="set farm.chunk_size in the shot file, or pass --chunk, to 1 or more")
        for i in range(0, len(self.frames), size):
            yield FrameRange(self.frames[i : i + size])

    def check_within(self, available: FrameRange, what: str = "the plate") -> None:
        """Raise :class:`FrameRangeError` unless every frame lies in ``available``."""
        outside = sorted(set(self.frames) - set(available.frames))
        if outside:
            raise FrameRangeError(
                f"Frame range {self} lies outside {what}",
                expected=f"frames within {available}",
                found=f"{len(outside)} frame(s) outside, e.g. {format_frames(outside)}",
                fix=f"pick frames inside {available} (--frames or the shot file's plate.frames)",
            )


_TOKEN = re.compile(r"(#+|@+|%0?(\d*)d|\$F(\d*))")


MAX_FRAMES = 1_000_000
"""The most frames a range may hold (a feature film at 24 fps is under 300 000)."""

_SPAN = re.compile(r"^(-?\d+)-(-?\d+)(?:[x:y](-?\d+))?$")


def _check_bounds(text: str, spec: str) -> None:
    """Refuse a range written backwards or too long to hold, before it is expanded into frames."""
    if any(len(digits) > 9 for digits in re.findall(r"\d+", text)):
        raise FrameRangeError(f"Frame range {spec!r} has a frame number that is too large",
                              expected="frame numbers of at most 9 digits", found=text[:40],
                              fix="check the frame numbers for a typo")
    total = 0
    for part in text.split(","):
        match = _SPAN.match(part)
        if match is None:
            total += 1
            continue
        first, last = int(match.group(1)), int(match.group(2))
        if first > last:
            raise FrameRangeError(f"Frame range {spec!r} runs backwards", expected="the first frame, a dash, then the "
                                  "last frame", found=f"{first}-{last}: the first frame is after the last",
                                  fix=f"write {last}-{first}")
        total += last - first + 1
        if total > MAX_FRAMES:
            raise FrameRangeError(f"Frame range {spec!r} is too long", expected=f"at most {MAX_FRAMES:,} frames",
                                  found=f"{total:,} frames or more", fix="check the frame numbers for a typo")


def is_sequence_pattern(path: str | Path) -> bool:
    """True when ``path`` holds a frame-number token (``####``, ``@``, ``%04d``, ``$F4``) in its file name."""
    return bool(_TOKEN.search(Path(path).name))


@dataclass(frozen=True)
class SequencePattern:
    """An image-sequence path pattern such as ``plates/sh010.####.exr``.

    Example:
        >>> p = SequencePattern("plates/sh010.####.exr")
        >>> p.path(1001).as_posix(), p.padding
        ('plates/sh010.1001.exr', 4)
        >>> SequencePattern("sh010.%04d.exr").path(7).name
        'sh010.0007.exr'
    """

    pattern: str

    def __post_init__(self) -> None:
        name = Path(self.pattern).name
        if len(_TOKEN.findall(name)) > 1:
            raise ConfigError(
                f"Image-sequence pattern {self.pattern!r} has more than one frame-number token",
                expected="one frame token in the file name: name.####.exr, name.%04d.exr, name.@.exr or name.$F4.exr",
                found=f"{len(_TOKEN.findall(name))} tokens in {name!r}",
                fix="keep one token for the frame number; write any other '#' or '@' in the name another way",
            )
        if not is_sequence_pattern(self.pattern):
            raise ConfigError(
                f"Not an image-sequence pattern: {self.pattern!r}",
                expected="a frame token in the file name: name.####.exr, name.%04d.exr, name.@.exr or name.$F4.exr",
                found=repr(self.pattern),
                fix="name the frames like shot.####.exr (one # per digit of the frame number)",
            )
        try:
            self._sequence.zfill()
        except fileseq.ParseException:
            raise ConfigError(
                f"Cannot read image-sequence pattern {self.pattern!r}",
                expected="one frame token, in the file name only: folder/name.####.exr",
                found=f"a frame token outside the file name ({Path(self.pattern).parent})",
                fix="rename the folder so no part of it reads as a frame number token ('#', '@', %04d)",
            ) from None

    @property
    def _sequence(self) -> fileseq.FileSequence:
        # HASH1: one '#' per digit, the Nuke convention, not fileseq's default of four digits per '#'.
        return fileseq.FileSequence(str(self.pattern), pad_style=fileseq.PAD_STYLE_HASH1)

    @property
    def padding(self) -> int:
        return int(self._sequence.zfill())

    @property
    def directory(self) -> Path:
        return Path(self.pattern).parent

    def path(self, frame: int) -> Path:
        """The file of one frame."""
        return Path(self._sequence.frame(int(frame)))

    @property
    def name_parts(self) -> tuple[str, str]:
        """The file name before and after the frame number: ``sh010.####.exr`` -> ``("sh010.", ".exr")``."""
        seq = self._sequence
        return seq.basename(), seq.extension()

    def frame_of(self, name: str) -> int | None:
        """The frame number of a file name of this sequence, or None when the name is not one of its frames."""
        prefix, suffix = self.name_parts
        match = re.match(re.escape(prefix) + r"(-?\d+)" + re.escape(suffix) + r"\Z", name)
        # Honour the padding: with '####', 'a.01001.exr' belongs to another sequence.
        if match is None or len(match.group(1).lstrip("-")) < self.padding:
            return None
        number = int(match.group(1))
        return number if self.path(number).name == name else None

    def frames_on_disk(self) -> list[int]:
        """Frame numbers whose files exist, ascending."""
        directory = self.directory
        if not directory.is_dir():
            return []
        frames = []
        for entry in directory.iterdir():
            number = self.frame_of(entry.name)
            if number is not None and entry.is_file():
                frames.append(number)
        return sorted(frames)

    def missing(self, frames: Iterable[int]) -> list[int]:
        """The frames of ``frames`` whose file does not exist."""
        return [f for f in frames if not self.path(f).is_file()]

    def with_directory(self, directory: Path) -> SequencePattern:
        return SequencePattern(str(Path(directory) / Path(self.pattern).name))


def format_frames(frames: Iterable[int], limit: int = 6) -> str:
    """A short text for a list of frames, for messages: ``1001-1003,1007`` or the first few then ``...``."""
    frames = sorted(frames)
    text = str(fileseq.FrameSet.from_iterable(frames))
    return text if len(text) < 80 else ",".join(map(str, frames[:limit])) + ",..."
