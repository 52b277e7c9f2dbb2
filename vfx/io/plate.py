"""Plates: a shot's source footage, image sequence or video, read by frame number.

One interface for both, so every later stage reads ``plate.read(1042)`` and never asks what the footage
is. Reads stream: one frame in memory at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from vfx.errors import ConfigError, MediaError, MissingFramesError
from vfx.io.color import resolve_colorspace, to_working
from vfx.io.image import Image, ImageHeader, Window, read_image, read_image_header
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

__all__ = ["Plate", "borrow_plate", "check_cuts", "header_pixel_aspect", "check_frame_size", "check_plate_size", "check_shot_media", "open_media", "open_plate",
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
        - ``size`` is (height, width) of the pixels (an EXR's data window); ``frame_range`` holds the frames
          that exist
        - ``data_window``/``display_window``: where the pixels sit and the plate's format (an overscan plate's
          data window is larger than its display window and starts at negative coordinates); for a video
          both are (0, 0, H, W)
        - ``pixel_aspect``: width of a pixel over its height (2.0: a 2x anamorphic squeeze)
    """

    path: str
    kind: Literal["sequence", "video"]
    frame_range: FrameRange
    fps: Fraction
    size: tuple[int, int]
    colorspace: str
    video: VideoReader | None = field(default=None, repr=False)
    data_window: Window | None = None
    display_window: Window | None = None
    pixel_aspect: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict, repr=False)
    """The first frame's header attributes (camera, lens, owner...; empty for a video)."""

    opened: ClassVar[int] = 0
    """Plates opened in this process so far (a task opens its plate once: the tests count)."""

    def __post_init__(self) -> None:
        type(self).opened += 1
        if self.data_window is None:
            self.data_window = Window(0, 0, *self.size)
        if self.display_window is None:
            self.display_window = self.data_window

    @property
    def overscan(self) -> bool:
        """The pixels do not cover exactly the display window (an overscan or cropped plate)."""
        return self.data_window != self.display_window

    @property
    def squeezed(self) -> bool:
        """The pixels are not square (an anamorphic plate)."""
        return abs(self.pixel_aspect - 1.0) > 1e-6

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
                     fps=parse_fps(fps), size=first.size, colorspace=colorspace, data_window=first.data_window,
                     display_window=first.display_window, pixel_aspect=header_pixel_aspect(first),
                     attributes=dict(first.metadata))
    reader = VideoReader(text, start_frame=start_frame, bit_depth=bit_depth)
    info = reader.info
    return Plate(path=text, kind="video", frame_range=FrameRange.from_bounds(*reader.frame_range),
                 fps=fps or info.fps, size=(info.height, info.width), colorspace=colorspace, video=reader,
                 pixel_aspect=float(info.sample_aspect))


def header_pixel_aspect(header: ImageHeader) -> float:
    """An image file's pixel aspect ratio (OpenImageIO's ``PixelAspectRatio``; 1 when absent or unusable)."""
    value = header.metadata.get("PixelAspectRatio", 1.0)
    try:
        aspect = float(value)
    except (TypeError, ValueError):
        return 1.0
    return aspect if 0.0 < aspect <= 4.0 else 1.0


def check_cuts(cuts: Sequence[int], plate_frames: FrameRange, source: str) -> tuple[int, ...]:
    """An editor's cut list (the first frame of each new camera shot), checked to lie inside the plate.

    Raises:
        ConfigError: a cut outside the plate's frames.
    """
    outside = [c for c in cuts if c not in plate_frames]
    if outside:
        raise ConfigError(f"Cut list of {source} lies outside the plate", expected=f"cuts inside the plate's "
                          f"frames {plate_frames}", found=f"cuts at {format_frames(outside)}",
                          fix="correct plate.cuts (the first frame of each new camera shot), or remove it to have "
                          "the cuts found")
    return tuple(sorted(set(cuts)))


def _apply_pixel_aspect(plate: Plate, config: PlateConfig) -> None:
    """The shot's ``plate.pixel_aspect`` over the plate's own.

    An image sequence takes the shot's value (an EXR writer stores 1.0 unless told otherwise, so a header of
    1.0 often means "not set"). A movie's container states its sample aspect ratio: the container wins, and a
    shot that says otherwise is refused rather than silently overriding either.
    """
    wanted = config.pixel_aspect
    if wanted is None:
        return
    if plate.kind == "video" and abs(wanted - plate.pixel_aspect) > 1e-3:
        raise MediaError(f"The shot's pixel aspect disagrees with the movie {plate.path}",
                         expected=f"plate.pixel_aspect equal to the movie's sample aspect ratio "
                         f"{plate.pixel_aspect:g} (for a movie, its container's value wins)",
                         found=f"plate.pixel_aspect: {wanted:g}, the container says {plate.pixel_aspect:g}",
                         fix="remove plate.pixel_aspect from the shot file, or re-wrap the movie with the right "
                         "sample aspect ratio (e.g. `ffmpeg -i in.mov -c copy -bsf:v h264_metadata="
                         "sample_aspect_ratio=2/1 out.mov` for H.264)")
    if plate.kind == "sequence" and abs(wanted - plate.pixel_aspect) > 1e-3:
        log.info("plate %s: pixel aspect %g from the shot file (the header says %g)", plate.path, wanted,
                 plate.pixel_aspect)
    plate.pixel_aspect = float(wanted)


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
        _apply_pixel_aspect(plate, config)
        check_cuts(config.cut_list or (), plate.frame_range, f"shot plate {config.path}")
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
        "pixel_aspect": float(info.sample_aspect),
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
    data = image.data_window or Window(0, 0, *image.size)
    display = image.display_window or data
    details["display_window"] = _window_text(display)
    if data != display:
        details["data_window"] = f"{_window_text(data)} (overscan)"
    details["pixel_aspect"] = float(image.metadata.get("PixelAspectRatio", 1.0) or 1.0)
    return details


def check_frame_size(plate: Plate, frame: int, size: tuple[int, int], windows: tuple[Window, Window] | None = None) -> None:
    if windows is not None and size == plate.size and windows != (plate.data_window, plate.display_window):
        data, display = windows
        raise MediaError(f"Plate {plate.path} changes its windows mid-sequence",
                         expected=f"every frame with frame {plate.frame_range.first}'s data window "
                         f"{_window_text(plate.data_window)} and display window {_window_text(plate.display_window)}",
                         found=f"frame {frame}: data window {_window_text(data)}, display window "
                         f"{_window_text(display)}",
                         fix="conform the plate to one format and overscan before working on it")
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
        header = read_image_header(pattern.path(frame))
        check_frame_size(plate, frame, header.size, (header.data_window, header.display_window))


def _window_text(window: Window | None) -> str:
    """An OpenEXR box as oiiotool prints it: (xmin, ymin) - (xmax, ymax)."""
    if window is None:
        return "none"
    return f"({window.x}, {window.y}) - ({window.x + window.width - 1}, {window.y + window.height - 1})"
