"""Review videos: the rendered frames as an H.264 movie for dailies, at the plate's exact frame rate and
with the plate's sound, optionally with the plate beside the swap.

Frames are read, converted from the plate's colour space to display sRGB and encoded one at a time, so a
shot of any length uses the memory of one frame.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vfx.errors import ConfigError
from vfx.io.color import WORKING_SPACE, ColorConverter
from vfx.io.ffmpeg import FILE_PROTOCOLS, find_ffmpeg, media_arg, run_ffmpeg, seconds_arg, stderr_tail
from vfx.io.plate import Plate, borrow_plate
from vfx.io.video import VideoInfo, encode_video
from vfx.render.rendered import (
    check_rendered_frames,
    frame_timecode,
    read_rendered_frame,
)
from vfx.shot.frames import FrameRange, SequencePattern
from vfx.shot.layout import rendered_sequence, side_by_side_path
from vfx.shot.schema import Shot

__all__ = ["review_frames", "side_by_side_path", "to_display_uint8", "write_review"]

log = logging.getLogger(__name__)


def to_display_uint8(rgb: np.ndarray, converter: ColorConverter) -> np.ndarray:
    """Plate pixels to 8-bit display sRGB, padded by edge pixels to an even height and width (H.264 4:2:0).

    Args:
        rgb: (H, W, 3) float32 in the converter's source space (the plate's).
        converter: plate colour space -> :data:`~vfx.io.color.WORKING_SPACE` (display sRGB).

    Returns:
        (H', W', 3) uint8 with H' and W' even.
    """
    shown = np.clip(converter.apply(rgb), 0.0, 1.0)
    codes = (shown * 255.0 + 0.5).astype(np.uint8)
    pad = ((0, codes.shape[0] % 2), (0, codes.shape[1] % 2), (0, 0))
    return np.pad(codes, pad, mode="edge") if any(p[1] for p in pad) else codes


def review_frames(plate: Plate, rendered: SequencePattern, frames: FrameRange, *,
                  side_by_side: bool = False) -> Iterator[np.ndarray]:
    """Yield the review's pictures one by one: the rendered frame, or plate | rendered frame.

    Convention:
        - yields (H, W, 3) uint8 display sRGB (W doubled side by side), H and W even
    """
    converter = ColorConverter(plate.colorspace, WORKING_SPACE)
    for frame in frames:
        swap = read_rendered_frame(rendered.path(frame)).rgb
        if side_by_side:
            swap = np.concatenate([plate.read(frame).rgb(), swap], axis=1)
        yield to_display_uint8(swap, converter)


def _audio_for(shot: Shot, plate: Plate, frames: FrameRange, workdir: Path) -> Path | None:
    """The audio to copy, cut so it starts with the review's first frame.

    The audio source starts with the plate's first frame; for a review that starts later, the sound is cut
    at the first frame's time (stream copy: to the audio packet, ~20 ms for AAC).
    """
    source = shot.plate.audio_source
    if source is None:
        return None
    if list(frames) != list(range(frames.first, frames.last + 1)):
        log.warning("review frames %s have gaps: the audio will drift against the picture", frames)
    offset = frames.first - plate.frame_range.first
    if offset <= 0:
        return Path(source)
    cut = workdir / "audio.mka"
    result = run_ffmpeg([find_ffmpeg(), "-hide_banner", "-nostdin", "-y", "-ss", seconds_arg(offset / plate.fps),
                         "-protocol_whitelist", FILE_PROTOCOLS, "-i", media_arg(source), "-map", "0:a?", "-vn", "-c", "copy",
                         media_arg(cut)],
                        what=f"cutting the audio of {Path(source).name} at frame {frames.first}", check=False)
    if result.returncode != 0 or not cut.is_file():
        # Most often a source without audio; encode_video would only warn about that too.
        log.warning("no audio for the review from %s: %s", source, stderr_tail(result.stderr, 3))
        return None
    return cut


def write_review(shot: Shot, path: str | os.PathLike[str] | None = None, frames: FrameRange | None = None, *,
                 side_by_side: bool = False, plate: Plate | None = None) -> VideoInfo:
    """Encode the shot's rendered frames as an H.264 review at the plate's exact fps, with its audio.

    Args:
        shot: the shot; its rendered frames (``outputs.exr``) must exist for every frame.
        path: the ``.mp4``/``.mov`` to write. Default: ``outputs.review``, or beside it
            :func:`side_by_side_path` when ``side_by_side``.
        frames: frames to encode. Default: the shot's frames, else the whole plate.
        side_by_side: the plate on the left, the swap on the right, at the same height.
        plate: the shot's plate when the caller has it open (it stays open); default: opened here.

    Returns:
        The probe of the written movie (frame count, fps, audio, timecode).

    Raises:
        ConfigError: no path and no ``outputs.review``, or no rendered sequence in the shot.
        MediaError: rendered frames missing (run ``vfx swap`` first) or unreadable.
        ExternalToolError: ffmpeg failed.

    Convention:
        - the plate's colour space is converted to display sRGB (:func:`vfx.io.color.to_working`), 8-bit;
          the start timecode is the first rendered frame's
    """
    if path is None:
        if shot.outputs.review is None:
            raise ConfigError(f"Shot {shot.name!r} names no review video", expected="outputs.review in the shot "
                              "file, or a path argument", fix="add e.g. `outputs: {review: out/" + shot.name
                              + "_review.mp4}` to the shot file", found="no outputs.review and no path")
        path = side_by_side_path(shot.outputs.review) if side_by_side else shot.outputs.review
    rendered = rendered_sequence(shot)
    with borrow_plate(shot.plate, frames, plate) as (plate, frames):
        check_rendered_frames(rendered, frames)
        first = read_rendered_frame(rendered.path(frames.first)).metadata
        timecode = first.timecode or frame_timecode(frames.first, plate.fps)
        with tempfile.TemporaryDirectory(prefix="vfx_review_") as work:
            audio = _audio_for(shot, plate, frames, Path(work))
            return encode_video(review_frames(plate, rendered, frames, side_by_side=side_by_side), path,
                                fps=plate.fps, codec="h264", audio_from=audio, timecode=timecode)
