"""Plates: a shot's source footage, image sequence or video, read by frame number.

One interface for both, so every later stage reads ``plate.read(1042)`` and never asks what the footage
is. Reads stream: one frame in memory at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from vfx.errors import MediaError, MissingFramesError
from vfx.io.color import resolve_colorspace, to_working
from vfx.io.image import Image, read_image, read_image_header, read_image_size
from vfx.io.video import VideoInfo, VideoReader, probe_video
from vfx.shot.frames import (
    DEFAULT_START_FRAME,
    FrameRange,
    SequencePattern,
    format_frames,
    is_sequence_pattern,
    parse_fps,
)
from vfx.shot.schema import PlateConfig, Shot

__all__ = ["Plate", "borrow_plate", "check_frame_size", "check_plate_size", "check_shot_media", "open_media", "open_plate",
           "probe_media"]

log = logging.getLogger(__name__)

DEFAULT_SEQUENCE_FPS = Fraction(24)


@dataclass
class Plate:
    """Footage addressed by frame number.

    Convention:
        - ``read`` returns an :class:`~vfx.io.image.Image` with (H, W, C) float32 pixels in the plate's own
          colour space (video: RGB in [0, 1]; EXR: scene-linear values as stored), channels named
          (``R G B`` plus ``A`` and extra layers where the files have them)
        - ``size`` is (height, width); ``frame_range`` holds the frames that exist
    """

    path: str
    kind: Literal["sequence", "video"]
    frame_range: FrameRange
    fps: Fraction
    size: tuple[int, int]
    colorspace: str
    video: VideoReader | None = field(default=None, repr=False)

    opened: ClassVar[int] = 0
    """Plates opened in this process so far (a task opens its plate once: the tests count)."""

    def __post_init__(self) -> None:
        type(self).opened += 1

    def read(self, frame: int) -> Image:
        """The pixels of one frame.

        Raises:
            FrameRangeError: the frame is not in the plate.
            MediaError: the frame's file is missing or unreadable.
        """
        FrameRange((int(frame),)).check_within(self.frame_range, f"plate {self.path}")
        if self.video is not None:
            rgb = self.video.read(frame)
            scale = np.float32(1.0 / np.iinfo(rgb.dtype).max)
            return Image(pixels=rgb.astype(np.float32) * scale, channels=("R", "G", "B"), metadata={"frame": frame})
        return read_image(SequencePattern(self.path).path(frame))

    def read_working(self, frame: int) -> np.ndarray:
        """One frame's RGB in the network's working space (display-referred sRGB, [0, 1] in gamut).

        Convention:
            - returns (H, W, 3) float32; :func:`vfx.io.color.from_working` with :attr:`colorspace` undoes it
        """
        return to_working(self.read(frame).rgb(), self.colorspace)

    def frames(self, frame_range: FrameRange | None = None) -> Iterator[tuple[int, Image]]:
        """Yield ``(frame, image)`` over ``frame_range`` (default: the whole plate), streaming."""
        frame_range = frame_range or self.frame_range
        frame_range.check_within(self.frame_range, f"plate {self.path}")
        for frame in frame_range:
            yield frame, self.read(frame)

    def close(self) -> None:
        if self.video is not None:
            self.video.close()

    def __enter__(self) -> Plate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_media(
    path: str | Path,
    *,
    start_frame: int = DEFAULT_START_FRAME,
    fps: Fraction | None = None,
    colorspace: str = "sRGB Encoded Rec.709 (sRGB)",
    bit_depth: Literal[8, 16] = 8,
) -> Plate:
    """Open a video file or an image-sequence pattern as a :class:`Plate`.

    A sequence's frame range is the frames on disk from the first to the last; holes are reported when
    frames are requested (see :func:`open_plate`). Its fps is ``fps``, else the first frame's
    ``framesPerSecond`` metadata, else 24.

    Raises:
        MediaError: nothing readable at ``path``.
    """
    text = str(path)
    if is_sequence_pattern(text):
        pattern = SequencePattern(text)
        on_disk = pattern.frames_on_disk()
        if not on_disk:
            raise MediaError(f"No frames of image sequence {text!r} found",
                             expected=f"files such as {pattern.path(DEFAULT_START_FRAME)}",
                             found=f"nothing matching in {pattern.directory}" if pattern.directory.is_dir()
                             else f"no folder {pattern.directory}",
                             fix="check the path and the padding (#### is four digits)")
        first = read_image_header(pattern.path(on_disk[0]))  # the header: no pixels decoded to open a plate
        fps = fps or first.exr_metadata.fps or DEFAULT_SEQUENCE_FPS
        return Plate(path=text, kind="sequence", frame_range=FrameRange.from_bounds(on_disk[0], on_disk[-1]),
                     fps=parse_fps(fps), size=first.size, colorspace=colorspace)
    reader = VideoReader(text, start_frame=start_frame, bit_depth=bit_depth)
    info = reader.info
    return Plate(path=text, kind="video", frame_range=FrameRange.from_bounds(*reader.frame_range),
                 fps=fps or info.fps, size=(info.height, info.width), colorspace=colorspace, video=reader)


def open_plate(config: PlateConfig, frames: FrameRange | None = None) -> tuple[Plate, FrameRange]:
    """Open a shot's plate and check the frames to work on (``frames``, else the shot's, else all).

    Returns:
        The plate and the frame range to process.

    Raises:
        FrameRangeError: the frames lie outside the plate.
        MissingFramesError: a sequence has holes in those frames.
    """
    plate = open_media(config.path, start_frame=config.start_frame, fps=config.fps, colorspace=config.colorspace)
    try:
        wanted = frames or config.frames or plate.frame_range
        wanted.check_within(plate.frame_range, f"plate {config.path}")
        if plate.kind == "sequence":
            missing = SequencePattern(plate.path).missing(wanted)
            if missing:
                raise MissingFramesError(
                    f"Image sequence {plate.path} is missing {len(missing)} of {len(wanted)} frames",
                    missing=missing, expected=f"every frame of {wanted}", found=f"missing {format_frames(missing)}",
                    fix="render or copy the missing frames, or narrow the frame range")
    except BaseException:
        plate.close()
        raise
    return plate, wanted


@contextmanager
def borrow_plate(config: PlateConfig, frames: FrameRange | None = None,
                 plate: Plate | None = None) -> Iterator[tuple[Plate, FrameRange]]:
    """The plate a caller already has open (left open), else :func:`open_plate` (closed on exit): a task opens
    its plate once and hands it to every step.

    Raises:
        FrameRangeError: ``frames`` lie outside the plate.
    """
    if plate is not None:
        wanted = frames or config.frames or plate.frame_range
        wanted.check_within(plate.frame_range, f"plate {config.path}")
        yield plate, wanted
        return
    opened, wanted = open_plate(config, frames)
    try:
        yield opened, wanted
    finally:
        opened.close()


def check_shot_media(shot: Shot, frames: FrameRange | None = None) -> FrameRange:
    """Check that a shot's media exist: the plate holds ``frames`` (default: the shot's), with none
    missing, every frame's header readable and of one size; every persona's footage opens; and no output
    resolves onto an input. Returns the frames checked."""
    from vfx.shot.layout import check_outputs_apart

    check_outputs_apart(shot)
    resolve_colorspace(shot.plate.colorspace)  # a name the colour config knows, before any frame is read
    plate, frames = open_plate(shot.plate, frames)
    try:
        check_plate_size(plate, frames)
    finally:
        plate.close()
    for name, persona in shot.personas.items():
        if persona.footage is not None:
            open_media(persona.footage, start_frame=persona.start_frame).close()
        elif persona.faceset is not None and not persona.faceset.is_dir():
            raise MediaError(f"Faceset of persona {name!r} not found", expected="a faceset folder",
                             found=f"nothing at {persona.faceset}", fix="run `vfx extract` or fix the path")
    return frames


def probe_media(path: str | Path, *, start_frame: int = DEFAULT_START_FRAME) -> dict[str, Any]:
    """Describe a video, an image or an image sequence as plain data (what `vfx probe` prints).

    Raises:
        MediaError: the media cannot be read.
    """
    text = str(path)
    if is_sequence_pattern(text):
        plate = open_media(text)
        first = read_image(SequencePattern(text).path(plate.frame_range.first))
        missing = SequencePattern(text).missing(plate.frame_range)
        return {
            "path": text,
            "kind": "image sequence",
            "width": plate.size[1],
            "height": plate.size[0],
            "frames": str(plate.frame_range),
            "frame_count": len(plate.frame_range) - len(missing),
            "missing_frames": format_frames(missing) if missing else "none",
            "fps": str(plate.fps),
            "channels": " ".join(first.channels),
            **_image_details(first),
        }
    if Path(text).suffix.lower() in _IMAGE_SUFFIXES:
        image = read_image(text)
        return {"path": text, "kind": "image", "width": image.pixels.shape[1], "height": image.pixels.shape[0],
                "channels": " ".join(image.channels), **_image_details(image)}
    info: VideoInfo = probe_video(text)
    return {
        "path": text,
        "kind": "video",
        "width": info.width,
        "height": info.height,
        "frame_count": info.frame_count,
        "frames": str(FrameRange.from_bounds(start_frame, start_frame + info.frame_count - 1)),
        "fps": str(info.fps),
        "duration_s": round(info.duration_s, 3),
        "codec": info.codec,
        "pix_fmt": info.pix_fmt,
        "audio": info.audio_codec if info.has_audio else "none",
        "timecode": info.timecode or "none",
    }


_IMAGE_SUFFIXES = {".exr", ".dpx", ".tif", ".tiff", ".png", ".jpg", ".jpeg"}


def _image_details(image: Image) -> dict[str, Any]:
    exr = image.exr_metadata
    details: dict[str, Any] = {"format": image.file_format, "pixel_type": image.pixel_type}
    if "compression" in image.metadata:
        details["compression"] = image.metadata["compression"]
    details["timecode"] = exr.timecode or "none"
    if exr.colorspace:
        details["colorspace"] = exr.colorspace
    return details


def check_frame_size(plate: Plate, frame: int, size: tuple[int, int]) -> None:
    if size != plate.size:
        raise MediaError(f"Plate {plate.path} changes size mid-sequence", expected=f"every frame "
                         f"{plate.size[1]}x{plate.size[0]} (width x height), like frame {plate.frame_range.first}",
                         found=f"frame {frame} is {size[1]}x{size[0]}",
                         fix="conform the plate to one resolution before swapping")


def check_plate_size(plate: Plate, frames: FrameRange) -> None:
    """Every frame of a sequence must have the first frame's size (checked from headers, no pixels read)."""
    if plate.kind != "sequence":
        return
    pattern = SequencePattern(plate.path)
    for frame in frames:
        check_frame_size(plate, frame, read_image_size(pattern.path(frame)))
