"""An editorial cut setting a shot's frames: ``plate.edit`` (an OTIO timeline, or a CMX 3600 EDL read through
OpenTimelineIO's ``cmx_3600`` adapter), ``plate.edit_clip`` and ``plate.handles``.

The shot's clip in the cut (named ``edit_clip``, default the shot's name) has a source range: the frames of
the plate the editor used. It is mapped to plate frame numbers through the plate's clock, in this order:

1. the plate has a start timecode (a sequence's first-frame EXR ``timeCode``, a video's ``timecode`` tag):
   ``frame = first frame + (source start - plate start timecode)``, counted in frames of timecode;
2. else the clip's media in the cut has an available range (an OTIO file such as ``vfx export --otio``
   writes): ``frame = first frame + (source start - available start)``;
3. else the source range *is* frame numbers counted from ``00:00:00:00`` (frame 1001 at 24 fps is
   ``00:00:41:17``, the convention of :func:`vfx.io.timecode.frame_timecode` for plates without timecode).

The frames are the source range plus ``handles`` either side; they must lie inside the plate. A clip used
more than once in the cut (the editor cut away and back) gives the span from its earliest to its latest
frame. ``plate.frames`` and ``plate.edit`` together are refused: both would set the frames.

Timecode is counted, never parsed here: the cut's times are OpenTimelineIO ``RationalTime`` frame counts,
and the plate's start timecode arrives as a count from the plate layer (:mod:`vfx.io.plate_clock` reads it
with :mod:`vfx.io.timecode`). This module sits below :mod:`vfx.io`, so the plate layer registers its reader
with :func:`use_plate_clock`; :func:`vfx.shot.load_shot` applies the cut through it.

Convention:
    - Frames are integers, ranges inclusive; a cut's rate must have the plate's nominal rate (24 and
      24000/1001 both count 24 frames a second of timecode: their counts are compared as they are).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vfx.errors import ConfigError, FrameRangeError, InternalError
from vfx.shot.frames import FrameRange
from vfx.shot.schema import PlateConfig, Shot

__all__ = ["CUT_SUFFIXES", "CutClip", "PlateClock", "apply_cut", "check_cut_fields", "cut_frames", "find_clips", "read_cut",
           "use_plate_clock"]

CUT_SUFFIXES = (".otio", ".otioz", ".otiod", ".edl")
"""The cut files read: OpenTimelineIO's own, and CMX 3600 EDLs (through the ``otio-cmx3600-adapter`` plug-in)."""


@dataclass(frozen=True)
class PlateClock:
    """A plate's frames and where its timecode starts, as the plate layer reads them.

    Attributes:
        fps: the plate's frame rate.
        frames: the frames the plate holds.
        start_count: the timecode of ``frames.first`` as frames since ``00:00:00:00`` (drop-frame counted as
            the SMPTE frames it names), or None where the plate has no timecode.
        timecode: that timecode as written (for messages), or None.
    """

    fps: Fraction
    frames: FrameRange
    start_count: int | None = None
    timecode: str | None = None


@dataclass(frozen=True)
class CutClip:
    """One clip of a cut, in the cut's own time.

    Attributes:
        name: the clip's name (an EDL's ``* FROM CLIP NAME``, else its reel).
        start, duration: the source range, in frames at ``rate``.
        rate: the cut's rate.
        available_start: the start of the clip media's available range (frames at ``rate``), where the cut
            gives one (OTIO files; never an EDL).
    """

    name: str
    start: int
    duration: int
    rate: float
    available_start: int | None = None


_reader: Callable[[PlateConfig], PlateClock] | None = None


def use_plate_clock(reader: Callable[[PlateConfig], PlateClock]) -> None:
    """Register the plate layer's reader of a plate's :class:`PlateClock` (:mod:`vfx.io.plate_clock` calls
    this when it is imported, as every import of :mod:`vfx.io` does)."""
    global _reader
    _reader = reader


def read_cut(path: str | Path, *, rate: Fraction) -> list[CutClip]:
    """The clips of an OTIO file or a CMX 3600 EDL (read at ``rate``, the plate's: an EDL has none).

    Raises:
        ConfigError: the file is missing, of another kind, unreadable, holds no clips, or its EDL adapter
            (``otio-cmx3600-adapter``) is not installed.
    """
    import opentimelineio as otio

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CUT_SUFFIXES:
        raise ConfigError(f"Cannot read editorial cut {str(path)!r}", expected="an OpenTimelineIO file (.otio) or a "
                          "CMX 3600 EDL (.edl)", found=f"a {suffix or 'suffix-less'} file",
                          fix="export the cut from the editorial system as OTIO or CMX 3600 EDL")
    if not path.is_file():
        raise ConfigError(f"Editorial cut {str(path)!r} not found", expected="the cut file plate.edit names",
                          found="no such file" if not path.exists() else "not a file",
                          fix="check plate.edit (a relative path is taken from the shot file's folder)")
    if suffix == ".edl" and "cmx_3600" not in {a.name for a in otio.plugins.ActiveManifest().adapters}:
        raise ConfigError("Reading an EDL needs OpenTimelineIO's cmx_3600 adapter", expected="the "
                          "otio-cmx3600-adapter package (a plug-in since OpenTimelineIO 0.17)",
                          found="no cmx_3600 adapter", fix="pip install otio-cmx3600-adapter, or export the cut as .otio")
    try:
        if suffix == ".edl":
            timeline = otio.adapters.read_from_file(str(path), adapter_name="cmx_3600", rate=float(rate))
        else:
            timeline = otio.adapters.read_from_file(str(path))
        found = list(timeline.find_clips()) if hasattr(timeline, "find_clips") else []
    except Exception as err:  # noqa: BLE001  (adapters raise anything: ValueError, OTIOError, EDLParseError...)
        raise ConfigError(f"Cannot read editorial cut {str(path)!r}", expected="a valid OTIO file or CMX 3600 EDL",
                          found=f"{type(err).__name__}: {str(err)[:300]}",
                          fix="re-export the cut from the editorial system") from None
    clips = []
    for clip in found:
        source = clip.source_range or clip.available_range()
        if source is None:
            continue
        available = clip.media_reference.available_range if clip.media_reference is not None else None
        rate_ = source.start_time.rate
        clips.append(CutClip(
            name=clip.name or "", start=round(source.start_time.value),
            duration=round(source.duration.rescaled_to(rate_).value), rate=rate_,
            available_start=None if available is None else round(available.start_time.rescaled_to(rate_).value)))
    if not clips:
        raise ConfigError(f"Editorial cut {str(path)!r} holds no clips", expected="a timeline with the shot's clip",
                          found="no clip with a source range", fix="check that this is the cut of the shot's sequence")
    return clips


def find_clips(clips: list[CutClip], name: str, source: str) -> list[CutClip]:
    """Every clip of the cut named ``name`` (exactly, else ignoring case).

    Raises:
        ConfigError: none is; the message lists the clips the cut has.
    """
    named = [c for c in clips if c.name == name] or [c for c in clips if c.name.lower() == name.lower()]
    if named:
        return named
    names = sorted({c.name for c in clips})
    hint = difflib.get_close_matches(name, names, n=1)
    shown = ", ".join(repr(n) for n in names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    raise ConfigError(f"Editorial cut {source!r} has no clip {name!r}", expected="the shot's clip (plate.edit_clip, "
                      "default the shot's name)", found=f"clips {shown}",
                      fix=f"set plate.edit_clip: {hint[0]!r}" if hint else "set plate.edit_clip to the shot's clip name")


def cut_frames(clips: list[CutClip], clock: PlateClock, *, handles: int = 0, source: str = "the cut") -> FrameRange:
    """The plate frames of the clip(s), plus ``handles`` either side (see the module's mapping rules).

    Example:
        >>> clock = PlateClock(Fraction(24), FrameRange.from_bounds(1001, 1100), 86400, "01:00:00:00")
        >>> str(cut_frames([CutClip("sh010", 86410, 48, 24.0)], clock, handles=4))
        '1007-1062'

    Raises:
        ConfigError: the cut's rate is not the plate's.
        FrameRangeError: the frames lie outside the plate (the message says by how many frames).
    """
    firsts, lasts = [], []
    for clip in clips:
        if round(clip.rate) != round(float(clock.fps)):
            raise ConfigError(f"Editorial cut {source!r} runs at another rate than the plate",
                              expected=f"{float(clock.fps):g} fps, the plate's", found=f"{clip.rate:g} fps on clip "
                              f"{clip.name!r}", fix="conform the cut to the plate's rate, or set plate.fps")
        if clock.start_count is not None:
            first = clock.frames.first + clip.start - clock.start_count
        elif clip.available_start is not None:
            first = clock.frames.first + clip.start - clip.available_start
        else:
            first = clip.start
        firsts.append(first)
        lasts.append(first + max(clip.duration, 1) - 1)
    first, last = min(firsts) - handles, max(lasts) + handles
    before = clock.frames.first - first
    after = last - clock.frames.last
    if before > 0 or after > 0:
        side = " and ".join(
            ([f"{before} frames before the plate's first frame {clock.frames.first}"] if before > 0 else [])
            + ([f"{after} frames after its last frame {clock.frames.last}"] if after > 0 else []))
        how = (f"the plate's timecode {clock.timecode} at frame {clock.frames.first}" if clock.start_count is not None
               else "the clip's available range" if clips[0].available_start is not None
               else "frame numbers (the plate has no timecode)")
        raise FrameRangeError(f"Clip {clips[0].name!r} of editorial cut {source!r} lies outside the plate",
                              expected=f"frames inside {clock.frames}",
                              found=f"{first}-{last} (with {handles} handles; mapped through {how}): {side}",
                              fix="check plate.edit_clip, plate.handles and that the cut belongs to this plate")
    return FrameRange.from_bounds(first, last)


def check_cut_fields(plate: PlateConfig) -> None:
    """``plate.frames`` with ``plate.edit``, or ``edit_clip``/``handles`` without it, refused.

    Raises:
        ConfigError: the conflict, and which field to remove.
    """
    if plate.edit is not None and plate.frames is not None:
        raise ConfigError("plate.frames and plate.edit both set the shot's frames", expected="one of them",
                          found=f"frames {plate.frames} and edit {str(plate.edit)!r}",
                          fix="remove plate.frames (the cut's clip sets them, plus plate.handles), or remove plate.edit")
    if plate.edit is None and (plate.edit_clip is not None or plate.handles):
        raise ConfigError("plate.edit_clip and plate.handles need plate.edit", expected="an editorial cut in plate.edit",
                          found=f"edit_clip {plate.edit_clip!r}, handles {plate.handles}, and no edit",
                          fix="add plate.edit (cut.otio or cut.edl), or remove edit_clip and handles")


def apply_cut(shot: Shot, reader: Callable[[PlateConfig], PlateClock] | None = None) -> Shot:
    """The shot with ``plate.frames`` set from its editorial cut (unchanged without ``plate.edit``).

    Args:
        reader: reads the plate's clock (default: the plate layer's, :func:`use_plate_clock`).

    Raises:
        ConfigError: see :func:`check_cut_fields`, :func:`read_cut`, :func:`find_clips`, :func:`cut_frames`.
        MediaError: the plate cannot be read.
    """
    plate = shot.plate
    check_cut_fields(plate)
    if plate.edit is None:
        return shot
    reader = reader or _reader
    if reader is None:
        raise InternalError("No plate clock reader is registered", expected="vfx.io imported before a shot with "
                            "plate.edit is loaded", found="vfx.shot alone", fix="import vfx.io first")
    clock = reader(plate)
    clips = find_clips(read_cut(plate.edit, rate=clock.fps), plate.edit_clip or shot.name, str(plate.edit))
    frames = cut_frames(clips, clock, handles=plate.handles, source=str(plate.edit))
    return shot.model_copy(update={"plate": plate.model_copy(update={"frames": frames})})
