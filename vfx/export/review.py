"""Dailies review movies: the rendered frames through the show's OCIO display/view, with burn-ins, an optional
slate, the plate's sound in sync and its exact frame rate, as H.264, ProRes 422 HQ, ProRes 4444 or DNxHR HQ.

Frames are read, converted, burnt in and encoded one at a time, so a shot of any length uses the memory of
one frame.

What a review shows (``shot.review``, overridden by ``vfx export`` options):

- **display / view**: OCIO's ``DisplayViewTransform`` from the plate's colour space (``$OCIO``, else the
  built-in ACES studio config; default the config's default display and that display's default view), the
  processor RV and Nuke's viewer apply, so the movie matches what the supervisor sees there.
- **burn-ins** (``burn_ins``): shot (top left), ``SYNTHETIC FACE`` (top centre, white on red), version
  (top right), persona (bottom left), frame number (bottom centre), timecode (bottom right). The *version* is
  the rendered sequence's name and the first 8 characters of the shot hash stamped into the rendered frames
  (``sh010_swap 1a2b3c4d``): it names the exact recipe (shot file, model, blend) that made the pictures,
  which is what a note must refer to.
- **slate** (``slate``): one extra frame before the first picture naming shot, version, frames, timecode,
  fps, persona and model, the view, the date and the synthetic-face notice. The slate takes the timecode one
  frame before the first picture (so every picture keeps its own timecode) and the sound starts one frame
  later (an edit-list offset, the audio's bits are still copied), so picture and sound stay in sync.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import pydantic

import vfx
from vfx.align.similarity import desqueeze
from vfx.errors import ConfigError
from vfx.export.burnin import BurnIn, draw_burn_ins, slate_frame
from vfx.io.color import DisplayView
from vfx.io.ffmpeg import (
    CODEC_BIT_DEPTH,
    FILE_PROTOCOLS,
    find_ffmpeg,
    format_rational,
    media_arg,
    run_ffmpeg,
    seconds_arg,
    stderr_tail,
)
from vfx.io.image import place_in_window
from vfx.io.plate import Plate, borrow_plate
from vfx.io.video import VideoInfo, encode_video
from vfx.io.video.encode import check_movie_output, check_movie_size
from vfx.render.rendered import (
    SYNTHETIC_NOTICE,
    check_rendered_frames,
    frame_timecode,
    read_rendered_frame,
)
from vfx.shot.frames import FrameRange, SequencePattern, format_frames
from vfx.shot.layout import rendered_sequence, side_by_side_path
from vfx.shot.schema import ReviewOptions, Shot

__all__ = [
    "ReviewLabels",
    "check_review",
    "as_delivered",
    "delivered_proxy",
    "review_frames",
    "review_options",
    "side_by_side_path",
    "to_display_codes",
    "to_display_uint8",
    "write_review",
]

log = logging.getLogger(__name__)


class _Transform(Protocol):
    def apply(self, pixels: np.ndarray) -> np.ndarray: ...


def to_display_codes(rgb: np.ndarray, transform: _Transform, *, bit_depth: int = 8,
                     labels: list[BurnIn] | None = None) -> np.ndarray:
    """Plate pixels to display code values, padded by edge pixels to an even height and width, burnt in.

    Args:
        rgb: (H, W, 3) float32 in the transform's source space (the plate's).
        transform: a :class:`~vfx.io.color.DisplayView` (or any converter to display values).
        bit_depth: 8 (uint8) or 16 (uint16, 65535 = white) codes.
        labels: burn-ins drawn after the view transform, on the padded picture.

    Returns:
        (H', W', 3) uint8 or uint16 with H' and W' even.

    Convention:
        - display values clipped to [0, 1], then rounded to the nearest code
    """
    shown = np.clip(transform.apply(rgb), 0.0, 1.0)
    pad = ((0, shown.shape[0] % 2), (0, shown.shape[1] % 2), (0, 0))
    if any(p[1] for p in pad):
        shown = np.pad(shown, pad, mode="edge")
    if labels:
        shown = draw_burn_ins(shown, labels)
    return _quantise(shown, bit_depth)


def _quantise(shown: np.ndarray, bit_depth: int) -> np.ndarray:
    top = 255.0 if bit_depth == 8 else 65535.0
    return (np.clip(shown, 0.0, 1.0) * top + 0.5).astype(np.uint8 if bit_depth == 8 else np.uint16)


def to_display_uint8(rgb: np.ndarray, converter: _Transform) -> np.ndarray:
    """Plate pixels to 8-bit display codes, padded to an even size; see :func:`to_display_codes`.

    Convention:
        - rgb (H, W, 3) float32 in the converter's source space; returns (H', W', 3) uint8, H' and W' even
    """
    return to_display_codes(rgb, converter, bit_depth=8)


# ------------------------------------------------------------------------------------------------ options


def review_options(shot: Shot, **overrides: Any) -> ReviewOptions:
    """The shot's ``review:`` block with the given options (``display``, ``view``, ``codec``, ``slate``,
    ``burn_ins``) replacing its values; ``None`` keeps the shot's.

    Raises:
        ConfigError: an override the schema refuses (an unknown codec, an unknown option).
    """
    values = shot.review.model_dump()
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ReviewOptions.model_validate(values)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError("Invalid review option", expected=f"{'.'.join(str(p) for p in first['loc'])}: "
                          f"{first['msg']}", found=repr(first.get("input")),
                          fix="codec is one of h264, prores422hq, prores4444, dnxhr_hq; slate and burn-ins are "
                          "on/off") from None


@dataclass(frozen=True)
class _Checked:
    path: Path
    options: ReviewOptions
    view: DisplayView


def check_review(shot: Shot, path: str | os.PathLike[str] | None = None, options: ReviewOptions | None = None, *,
                 side_by_side: bool = False, colorspace: str | None = None) -> _Checked:
    """Everything about a review that can be refused before a frame is read: where it goes, the codec (and
    that this ffmpeg can encode it, in a container that fits), the display and view. Writes nothing.

    Args:
        shot: the shot.
        path: the movie; default ``outputs.review`` (beside it :func:`side_by_side_path` when ``side_by_side``).
        options: default ``shot.review``.
        side_by_side: the plate | result review.
        colorspace: the plate's colour space; default ``shot.plate.colorspace``.

    Returns:
        The path, options and display/view transform, resolved.

    Raises:
        ConfigError: no path; a codec this ffmpeg cannot encode or a container that does not fit it; an
            unknown display or view (:class:`~vfx.errors.ColorError`, listing the valid ones).
    """
    options = options or shot.review
    if path is None:
        if shot.outputs.review is None:
            raise ConfigError(f"Shot {shot.name!r} names no review video", expected="outputs.review in the shot "
                              "file, or a path argument", fix="add e.g. `outputs: {review: out/" + shot.name
                              + "_review.mp4}` to the shot file", found="no outputs.review and no path")
        path = side_by_side_path(shot.outputs.review) if side_by_side else shot.outputs.review
    path = Path(path)
    check_movie_output(path, options.codec)
    view = DisplayView(colorspace or shot.plate.colorspace, options.display, options.view)
    return _Checked(path, options, view)


# ------------------------------------------------------------------------------------------------- pictures


@dataclass(frozen=True)
class ReviewLabels:
    """What the burn-ins and the slate say about the whole review.

    Attributes:
        shot: shot name.
        version: the rendered sequence's name and the shot hash of its frames (``sh010_swap 1a2b3c4d``).
        first_timecode: timecode of the first picture.
        fps: the plate's exact rate.
    """

    shot: str
    version: str
    first_timecode: str
    fps: Fraction
    first_frame: int

    def timecode(self, frame: int) -> str:
        """The frame's timecode, counted from the first picture's (drop-frame aware)."""
        return frame_timecode(frame, self.fps, start_frame=self.first_frame, start_timecode=self.first_timecode)

    def burn_ins(self, frame: int, persona: str) -> list[BurnIn]:
        """The six labels of one frame."""
        return [
            BurnIn(self.shot, "top-left"),
            BurnIn("SYNTHETIC FACE", "top", alert=True),
            BurnIn(self.version, "top-right"),
            BurnIn(f"persona {persona}" if persona else "no persona", "bottom-left"),
            BurnIn(str(frame), "bottom"),
            BurnIn(self.timecode(frame), "bottom-right"),
        ]


def review_frames(plate: Plate, rendered: SequencePattern, frames: FrameRange, *, side_by_side: bool = False,
                  view: DisplayView | None = None, labels: ReviewLabels | None = None,
                  bit_depth: int = 8) -> Iterator[np.ndarray]:
    """Yield the review's pictures one by one: the rendered frame, or plate | rendered frame, through the
    display/view, with burn-ins when ``labels`` are given. An overscan plate's review shows its display window
    (the format), not the overscan.

    Args:
        view: default the plate's colour space to the config's default display and view.
        labels: burn-ins; ``None`` for a clean picture.
        bit_depth: 8 (uint8) or 16 (uint16).

    Convention:
        - yields (H, W, 3) display codes (W doubled side by side), H and W even
    """
    view = view or DisplayView(plate.colorspace)
    for frame in frames:
        result = read_rendered_frame(rendered.path(frame))
        picture = as_delivered(result.rgb, plate)
        if side_by_side:
            picture = np.concatenate([as_delivered(plate.read(frame).rgb(), plate), picture], axis=1)
        burn = labels.burn_ins(frame, result.info.persona) if labels is not None else None
        yield to_display_codes(picture, view, bit_depth=bit_depth, labels=burn)


def as_delivered(rgb: np.ndarray, plate: Plate) -> np.ndarray:
    """The picture as the plate is meant to be seen: its format out of pixels covering its data window
    (overscan cut away, black where the data window does not reach, as Nuke's viewer shows it), desqueezed
    for an anamorphic plate (a dailies movie has square pixels).

    Convention:
        - rgb (H, W, 3) covering ``plate.data_window``; returns (h, round(w * pixel aspect), 3) covering
          ``plate.display_window``
    """
    data, shown = plate.data_window, plate.display_window
    if plate.overscan and data is not None and shown is not None and rgb.shape[:2] == data.size:
        rgb = place_in_window(rgb, data, shown)
    return desqueeze(rgb, plate.pixel_aspect) if plate.squeezed else rgb

def delivered_proxy(rgb: np.ndarray, plate: Plate, height: int, view: DisplayView | None) -> np.ndarray:
    """A small picture of a plate-space frame as the dailies show it: :func:`as_delivered`, scaled to ``height``
    lines in the plate's own space (area filter, never enlarged), then through the show's display/view
    (``None``: values shown as they are, e.g. a matte). The review page's proxies and the contact sheet use it.

    Convention:
        - rgb (H, W, C) float32 covering ``plate.data_window``; returns (h, w, C) float32 clipped to [0, 1]
    """
    rgb = as_delivered(rgb, plate)
    h, w = rgb.shape[:2]
    height = max(2, min(height, h))
    width = max(2, round(w * height / h))
    small = cv2.resize(np.ascontiguousarray(rgb, np.float32), (width, height), interpolation=cv2.INTER_AREA)
    if small.ndim == 2:
        small = small[:, :, np.newaxis]
    if view is not None:
        small = view.apply(small)
    return np.clip(small, 0.0, 1.0)


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


def _slate(labels: ReviewLabels, frames: FrameRange, persona: str, model: str, view: DisplayView,
           size: tuple[int, int], codec: str, bit_depth: int) -> np.ndarray:
    last = labels.timecode(frames.last)
    fields = [
        ("SHOT", labels.shot),
        ("VERSION", f"{labels.version}  (vfx {vfx.__version__})"),
        ("FRAMES", f"{format_frames(frames)}  ({len(frames)} frames)"),
        ("TIMECODE", f"{labels.first_timecode} - {last}"),
        ("FPS", format_rational(labels.fps)),
        ("PERSONA", f"{persona}  (model {model})" if model else persona),
        ("VIEW", f"{view.display} / {view.view}"),
        ("CODEC", codec),
        ("DATE", datetime.date.today().isoformat()),
    ]
    card = slate_frame(size[0], size[1], fields, SYNTHETIC_NOTICE)
    return _quantise(card, bit_depth)


def write_review(shot: Shot, path: str | os.PathLike[str] | None = None, frames: FrameRange | None = None, *,
                 side_by_side: bool = False, plate: Plate | None = None,
                 options: ReviewOptions | None = None) -> VideoInfo:
    """Encode the shot's rendered frames as a dailies review at the plate's exact fps, with its audio.

    Args:
        shot: the shot; its rendered frames (``outputs.exr``) must exist for every frame.
        path: the ``.mp4``/``.mov`` to write (ProRes and DNxHR: ``.mov``). Default: ``outputs.review``, or
            beside it :func:`side_by_side_path` when ``side_by_side``.
        frames: frames to encode. Default: the shot's frames, else the whole plate.
        side_by_side: the plate on the left, the result on the right, at the same height.
        plate: the shot's plate when the caller has it open (it stays open); default: opened here.
        options: display, view, codec, slate, burn-ins; default ``shot.review`` (see :func:`review_options`).

    Returns:
        The probe of the written movie (frame count including the slate, fps, audio, timecode, codec).

    Raises:
        ConfigError: no path and no ``outputs.review``; a codec this ffmpeg cannot encode or the wrong
            container for it; an unknown display or view; no rendered sequence in the shot. Nothing is written.
        MediaError: rendered frames missing (run ``vfx swap`` first) or unreadable; a picture the codec
            cannot hold (DNxHR under 256x120).
        ExternalToolError: ffmpeg failed.

    Convention:
        - pictures are the plate's colour space through the OCIO display/view, clipped, 8-bit (h264,
          dnxhr_hq) or 16-bit into the 10-bit ProRes codecs; the movie's start timecode is the first
          picture's (one frame earlier with a slate)
    """
    checked = check_review(shot, path, options, side_by_side=side_by_side)
    options = checked.options
    rendered = rendered_sequence(shot)
    bit_depth = 16 if CODEC_BIT_DEPTH[options.codec] > 8 else 8
    with borrow_plate(shot.plate, frames, plate) as (plate, frames):
        check_rendered_frames(rendered, frames)
        shown = plate.display_window.size if plate.display_window is not None else plate.size
        shown = (shown[0], round(shown[1] * plate.pixel_aspect) if plate.squeezed else shown[1])
        height, width = shown[0], shown[1] * (2 if side_by_side else 1)
        size = (height + height % 2, width + width % 2)  # the pictures are padded to an even size
        check_movie_size(options.codec, *size)
        view = DisplayView(plate.colorspace, checked.view.display, checked.view.view)
        first = read_rendered_frame(rendered.path(frames.first))
        timecode = first.metadata.timecode or frame_timecode(frames.first, plate.fps)
        version = f"{rendered.path(frames.first).name.split('.')[0]} {(first.metadata.shot_hash or '')[:8]}".strip()
        labels = ReviewLabels(shot=shot.name, version=version, first_timecode=timecode, fps=plate.fps,
                              first_frame=frames.first)
        pictures = review_frames(plate, rendered, frames, side_by_side=side_by_side, view=view,
                                 labels=labels if options.burn_ins else None, bit_depth=bit_depth)
        start_timecode, audio_offset = labels.timecode(frames.first), None
        if options.slate:
            slate = _slate(labels, frames, first.info.persona, first.info.model, view, size, options.codec, bit_depth)
            pictures = _prepend(slate, pictures)
            start_timecode = frame_timecode(frames.first - 1, plate.fps, start_frame=frames.first,
                                            start_timecode=timecode)
            audio_offset = Fraction(1) / plate.fps
        with tempfile.TemporaryDirectory(prefix="vfx_review_") as work:
            audio = _audio_for(shot, plate, frames, Path(work))
            info = encode_video(pictures, checked.path, fps=plate.fps, codec=options.codec, audio_from=audio,
                                timecode=start_timecode, bit_depth=bit_depth, audio_offset_s=audio_offset)
    log.info("review %s: %s / %s, %s%s%s", checked.path, view.display, view.view, options.codec,
             ", slate" if options.slate else "", ", burn-ins" if options.burn_ins else "")
    return dataclasses.replace(info, path=checked.path)


def _prepend(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest
