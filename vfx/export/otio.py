"""The editorial hand-off: a shot as an OpenTimelineIO timeline (``vfx export --otio FILE``).

What the timeline holds, bottom track first (OTIO's order, Nuke Studio's and RV's V1, V2, ...):

========  =====================================================================================
track     clip
========  =====================================================================================
plate     the plate: an ``ImageSequenceReference`` (a sequence) or an ``ExternalReference`` (a video)
swap      ``outputs.exr``, where frames of it are on disk
edit      the latent-edited sequence, where on disk
retouch   the retouched sequence, where on disk
review    each review movie on disk (``ExternalReference``), on its own track, disabled
========  =====================================================================================

One track per version, newest on top, because that is how a supervisor compares versions in Nuke Studio,
Hiero and RV: the top enabled track is what plays, and soloing or wiping tracks flips between plate, swap
and retouch on the same frames. The review movies sit above as disabled tracks (a click shows them): they
are the burnt-in dailies, not a version to conform.

Time: every clip's media time is the plate's timecode. A clip's available range starts at the timecode of
its first frame on disk, counted in frames at the plate's rate (``RationalTime(86400, 24)`` is
``01:00:00:00``), and an ``ImageSequenceReference`` maps that time to its ``start_frame``, so a conform
by timecode finds the plate frames the render was made from. A plate without timecode counts its frame
numbers from ``00:00:00:00`` (frame 1001 at 24 fps is ``00:00:41:17``, as :mod:`vfx.io.timecode` does
everywhere). The rate is the plate's exact fraction as a float (``24000/1001`` is ``23.976023976023978``);
at 29.97 and 59.94 OTIO reads the counts as drop-frame timecode. The timeline's ``global_start_time`` is
the first frame's timecode; its metadata ``vfx`` says the rate as a fraction, the start timecode as
written and whether it is drop-frame. Each version's clip starts on the timeline where its first frame
falls under the plate (a gap before it), so the tracks line up frame for frame.

A version rendered only in part (holes in its frames) is listed from its first to its last frame on disk,
the holes shown black (``MissingFramePolicy.black``).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

from vfx.errors import ConfigError, VfxError
from vfx.io.plate import Plate, open_plate
from vfx.io.plate_clock import plate_clock
from vfx.io.timecode import frames_to_timecode, is_drop_frame_rate, timecode_to_frames
from vfx.shot.cut import PlateClock
from vfx.shot.frames import FrameRange, SequencePattern
from vfx.shot.layout import Place, check_apart, edit_sequence, retouch_sequence, review_paths, shot_inputs
from vfx.shot.schema import Shot
from vfx.utils.atomic import atomic_write_text, check_writable

__all__ = ["OTIO_TRACKS", "check_otio_path", "write_otio"]

OTIO_TRACKS = ("plate", "swap", "edit", "retouch")
"""The version tracks, bottom first."""


def write_otio(shot: Shot, path: str | os.PathLike[str], frames: FrameRange | None = None) -> Path:
    """Write the shot's timeline: the plate and each rendered version on disk, and the review movies.

    Args:
        shot: the shot.
        path: the ``.otio`` file to write (atomically).
        frames: the frames the timeline covers (default: the shot's, else the whole plate).

    Returns:
        The file written.

    Raises:
        ConfigError: ``path`` is not an ``.otio`` file, is a folder, cannot be written or would overwrite
            one of the shot's inputs.
        FrameRangeError, MediaError: the frames lie outside the plate, or it cannot be read.
    """
    import opentimelineio as otio

    path = check_otio_path(shot, path)
    plate, frames = open_plate(shot.plate, frames)
    with plate:
        clock = plate_clock(plate)
        timeline = _timeline(shot, plate, clock, frames, otio)
    atomic_write_text(path, otio.adapters.write_to_string(timeline, "otio_json"))
    path.chmod(0o644)  # an editorial file: readable by the editors' and the farm's accounts
    return path


def check_otio_path(shot: Shot, path: str | os.PathLike[str]) -> Path:
    """``path`` checked as the destination of a timeline, before any work (``vfx export --otio`` calls it
    before the review and the compositor package are written).

    Raises:
        ConfigError: not an ``.otio`` name, a folder, not writable, or one of the shot's inputs.
    """
    path = Path(path)
    if path.suffix.lower() != ".otio":
        raise ConfigError(f"Cannot write an OTIO timeline to {str(path)!r}", expected="a file ending in .otio",
                          found=f"a {path.suffix or 'suffix-less'} name", fix=f"--otio {path.with_suffix('.otio').name}")
    if path.is_dir():
        raise ConfigError(f"Cannot write an OTIO timeline to {str(path)!r}", expected="a file", found="a folder",
                          fix=f"--otio {path / (shot.name + '.otio')}")
    check_writable(path.parent)
    check_apart(Place("the OTIO timeline", path, "file"), shot_inputs(shot))
    return path


def _count(clock: PlateClock, frame: int) -> int:
    """Frames since 00:00:00:00 of ``frame``: the plate's timecode, else the frame number itself."""
    if clock.start_count is None:
        return int(frame)
    return clock.start_count + int(frame) - clock.frames.first


def _timeline(shot: Shot, plate: Plate, clock: PlateClock, frames: FrameRange, otio):  # type: ignore[no-untyped-def]
    rate = float(plate.fps)
    rt = otio.opentime.RationalTime
    drop = is_drop_frame_rate(plate.fps) and (clock.timecode is None or clock.timecode[8] in ";.")
    start = _count(clock, frames.first)
    timeline = otio.schema.Timeline(name=shot.name, global_start_time=rt(start, rate))
    timeline.metadata["vfx"] = {
        "shot": shot.name, "fps": _fraction(plate.fps), "frames": str(frames),
        "timecode": frames_to_timecode(start, plate.fps, drop=drop), "drop_frame": drop,
        "plate_timecode": clock.timecode,
    }
    stack = timeline.tracks
    versions = [("plate", None)] + [(name, _version_sequence(shot, name)) for name in OTIO_TRACKS[1:]]
    for name, sequence in versions:
        if name == "plate":
            clip = _plate_clip(shot, plate, clock, frames, otio)
            first = frames.first
        else:
            if sequence is None:
                continue
            on_disk = [f for f in frames if sequence.path(f).is_file()]
            if not on_disk:
                continue
            first = on_disk[0]
            held = FrameRange.from_bounds(on_disk[0], on_disk[-1])
            clip = _sequence_clip(f"{shot.name} {name}", sequence, clock, held, rate, otio,
                                  holes=len(on_disk) < len(held))
        track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Video)
        if first > frames.first:
            track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(rt(0, rate), rt(first - frames.first,
                                                                                           rate))))
        clip.metadata["vfx"] = {"version": name, "frames": str(FrameRange.from_bounds(
            first, first + round(clip.source_range.duration.value) - 1))}
        track.append(clip)
        stack.append(track)
    for index, movie in enumerate(review_paths(shot)):
        clip = _movie_clip(movie, plate.fps, clock, frames, otio)
        if clip is None:
            continue
        track = otio.schema.Track(name="review" if index == 0 else "review side by side",
                                  kind=otio.schema.TrackKind.Video)
        track.enabled = False
        track.append(clip)
        stack.append(track)
    return timeline


def _fraction(fps: Fraction) -> str:
    fps = Fraction(fps)
    return str(fps.numerator) if fps.denominator == 1 else f"{fps.numerator}/{fps.denominator}"


def _version_sequence(shot: Shot, name: str) -> SequencePattern | None:
    """The rendered sequence of a version, or None where the shot names none."""
    try:
        if name == "swap":
            return None if shot.outputs.exr is None else SequencePattern(str(shot.outputs.exr))
        if name == "edit":
            return edit_sequence(shot) if shot.outputs.exr is not None or shot.outputs.edit is not None else None
        return retouch_sequence(shot)
    except VfxError:
        return None


def _url(path: Path) -> str:
    return Path(os.path.abspath(path)).as_uri()


def _sequence_reference(sequence: SequencePattern, clock: PlateClock, held: FrameRange, rate: float, otio):  # type: ignore[no-untyped-def]
    prefix, suffix = sequence.name_parts
    rt = otio.opentime.RationalTime
    return otio.schema.ImageSequenceReference(
        target_url_base=_url(sequence.directory) + "/", name_prefix=prefix, name_suffix=suffix,
        start_frame=held.first, frame_step=1, rate=rate, frame_zero_padding=sequence.padding,
        available_range=otio.opentime.TimeRange(rt(_count(clock, held.first), rate), rt(len(held), rate)))


def _sequence_clip(name: str, sequence: SequencePattern, clock: PlateClock, held: FrameRange, rate: float, otio,  # type: ignore[no-untyped-def]
                   *, holes: bool = False):
    reference = _sequence_reference(sequence, clock, held, rate, otio)
    if holes:
        reference.missing_frame_policy = otio.schema.ImageSequenceReference.MissingFramePolicy.black
    return otio.schema.Clip(name=name, media_reference=reference, source_range=reference.available_range)


def _plate_clip(shot: Shot, plate: Plate, clock: PlateClock, frames: FrameRange, otio):  # type: ignore[no-untyped-def]
    """The plate's clip: its whole frame range available, the shot's frames used."""
    rate = float(plate.fps)
    rt = otio.opentime.RationalTime
    used = otio.opentime.TimeRange(rt(_count(clock, frames.first), rate),
                                   rt(frames.last - frames.first + 1, rate))
    if plate.kind == "sequence":
        reference = _sequence_reference(SequencePattern(plate.path), clock, plate.frame_range, rate, otio)
    else:
        available = otio.opentime.TimeRange(rt(_count(clock, plate.frame_range.first), rate),
                                            rt(len(plate.frame_range), rate))
        reference = otio.schema.ExternalReference(target_url=_url(Path(plate.path)), available_range=available)
    return otio.schema.Clip(name=f"{shot.name} plate", media_reference=reference, source_range=used)


def _movie_clip(movie: Path, fps: Fraction, clock: PlateClock, frames: FrameRange, otio):  # type: ignore[no-untyped-def]
    """A review movie on disk as an ``ExternalReference`` clip: its own timecode (else the first frame's) and
    frame count; the clip uses its last frames, the shot's (a slate, where there is one, comes first)."""
    from vfx.io.video import probe_video

    if not movie.is_file():
        return None
    info = probe_video(movie)
    rate = float(fps)
    rt = otio.opentime.RationalTime
    count = max(1, int(info.frame_count))
    slate = max(0, count - len(frames))
    try:
        start = timecode_to_frames(info.timecode, fps) if info.timecode else None
    except ConfigError:
        start = None
    if start is None:
        start = _count(clock, frames.first) - slate
    available = otio.opentime.TimeRange(rt(start, rate), rt(count, rate))
    reference = otio.schema.ExternalReference(target_url=_url(movie), available_range=available)
    used = otio.opentime.TimeRange(rt(start + slate, rate), rt(count - slate, rate))
    clip = otio.schema.Clip(name=movie.stem, media_reference=reference, source_range=used)
    clip.metadata["vfx"] = {"version": "review", "slate_frames": slate}
    return clip
