"""Rendered frames: the swapped (or retouched) plate as an EXR sequence with its matte and metadata.

Every rendered frame is one EXR holding the beauty ``R G B`` in the plate's own colour space and the swap
matte as ``A`` (0 exactly wherever the plate was left untouched), with metadata that names the recipe
(frame, timecode, shot hash, model, persona, the plate -> crop matrix) and says plainly that the frame
contains a synthetic face. The compositor package and the review video are built from these files, so
the EXR sequence is the one source of truth for everything handed on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vfx.errors import MediaError
from vfx.io.image import ExrMetadata, Image, Window, read_image, write_image
from vfx.io.plate import Plate
from vfx.io.timecode import frame_timecode
from vfx.shot.frames import SequencePattern, format_frames

__all__ = [
    "EDIT_MATTE_CHANNEL",
    "RETOUCH_MATTE_CHANNEL",
    "SYNTHETIC_NOTICE",
    "PlateHeader",
    "carried_attributes",
    "RenderInfo",
    "RenderedFrame",
    "check_rendered_frames",
    "frame_timecode",
    "plate_start_timecode",
    "read_rendered_frame",
    "write_plate_format",
    "write_rendered_frame",
]

RETOUCH_MATTE_CHANNEL = "retouch.A"
"""A retouched frame's channel holding the retouch's own matte (``A`` is the union of the swap's and the retouch's)."""

EDIT_MATTE_CHANNEL = "edit.A"
"""An edited frame's channel holding the latent edit's own matte (``A`` is the union of the swap's and the edit's)."""

SYNTHETIC_NOTICE = (
    "This frame contains a synthetic face made by vfx (comb autoencoder face swap); "
    "the face shown is not a photograph of the person it depicts."
)
"""Written as ``vfx/synthetic`` on every frame with a swapped face, and on the frames around it."""


@dataclass(frozen=True)
class RenderInfo:
    """What a rendered frame records about how it was made (EXR ``vfx/...`` attributes).

    Attributes:
        frame: frame number.
        persona: persona whose decoder rendered the face.
        model: the checkpoint folder used, and its training step (``runs/sh010@2600``).
        blend: blend method (``enhanced``, ``multiband``, ``poisson``, ``alpha``).
        matrix: (2, 3) plate -> crop matrix of the swapped face, or ``None`` when the frame has no face.
        crop_size: the face crop's side r in pixels.
        face_box: (y0, x0, y1, x1) plate pixels the matte covers (ends exclusive), or ``None``.
    """

    frame: int
    persona: str
    model: str
    blend: str
    matrix: np.ndarray | None = None
    crop_size: int = 0
    face_box: tuple[int, int, int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_extra(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "frame": int(self.frame),
            "persona": self.persona,
            "model": self.model,
            "blend": self.blend,
            "synthetic": SYNTHETIC_NOTICE,
            "crop_size": int(self.crop_size),
            "matrix": "" if self.matrix is None else json.dumps(np.asarray(self.matrix, float).round(9).tolist()),
            "face_box": "" if self.face_box is None else ",".join(str(int(v)) for v in self.face_box),
        }
        data.update(self.extra)
        return data

    @classmethod
    def from_extra(cls, extra: dict[str, Any]) -> RenderInfo:
        matrix = extra.get("matrix") or ""
        box = extra.get("face_box") or ""
        known = {"frame", "persona", "model", "blend", "synthetic", "crop_size", "matrix", "face_box"}
        return cls(
            frame=int(extra.get("frame", 0)),
            persona=str(extra.get("persona", "")),
            model=str(extra.get("model", "")),
            blend=str(extra.get("blend", "")),
            matrix=np.array(json.loads(matrix), dtype=np.float64) if matrix else None,
            crop_size=int(extra.get("crop_size", 0)),
            face_box=tuple(int(v) for v in str(box).split(",")) if box else None,  # type: ignore[arg-type]
            extra={k: v for k, v in extra.items() if k not in known},
        )


@dataclass(frozen=True)
class PlateHeader:
    """What a rendered frame keeps of the plate frame it was made from: its windows and its attributes.

    Attributes:
        attributes: the plate frame's header attributes (camera, lens, capture date, owner, the studio's own
            keys...) as :func:`vfx.io.image.read_image` returns them; :func:`carried_attributes` picks the
            ones a rendered frame carries on.
        data_window: where the pixels sit (an overscan plate's is larger than the display window).
        display_window: the plate's format.
        pixel_aspect: width of a pixel over its height, written as ``PixelAspectRatio``.
    """

    attributes: dict[str, Any] = field(default_factory=dict)
    data_window: Window | None = None
    display_window: Window | None = None
    pixel_aspect: float = 1.0

    @classmethod
    def of(cls, plate: Plate, image: Image | None = None) -> PlateHeader:
        """The header of ``image`` (a plate frame as read), else of the plate's first frame."""
        if image is not None and image.file_format:
            return cls(dict(image.metadata), image.data_window, image.display_window, plate.pixel_aspect)
        return cls(dict(plate.attributes), plate.data_window, plate.display_window, plate.pixel_aspect)


_NOT_CARRIED_PREFIXES = ("oiio:", "openexr:", "vfx/")
_NOT_CARRIED = frozenset({"compression", "planarconfig", "smpte:TimeCode", "framesPerSecond", "FramesPerSecond",
                          "colorInteropID", "PixelAspectRatio"})


def carried_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """The plate attributes a rendered frame keeps: all but those describing how the file stores its pixels
    (compression, chunking, OpenImageIO's own bookkeeping) and those the toolkit writes itself (timecode, frame
    rate, colour space, ``vfx/...``), which :class:`~vfx.io.image.ExrMetadata` sets."""
    return {k: v for k, v in attributes.items()
            if k not in _NOT_CARRIED and not k.startswith(_NOT_CARRIED_PREFIXES)}


@dataclass(frozen=True)
class RenderedFrame:
    """One rendered frame read back: beauty, matte and how it was made.

    Convention:
        - rgb (H, W, 3) float32 in the plate's colour space; matte (H, W) float32 in [0, 1]
    """

    rgb: np.ndarray
    matte: np.ndarray
    info: RenderInfo
    metadata: ExrMetadata
    layers: dict[str, np.ndarray] = field(default_factory=dict)
    header: PlateHeader = field(default_factory=PlateHeader)
    """The frame's windows and attributes, as written (the plate's, carried on)."""


def write_rendered_frame(path: str | os.PathLike[str], rgb: np.ndarray, matte: np.ndarray, info: RenderInfo, *,
                         timecode: str | None, fps: Fraction, colorspace: str, shot_hash: str,
                         dtype: str = "half", compression: str = "piz",
                         layers: dict[str, np.ndarray] | None = None, header: PlateHeader | None = None) -> Path:
    """Write one rendered frame: ``R G B`` beauty plus the matte as ``A``, atomically.

    The beauty is not premultiplied by the matte: it is the finished plate, and ``A`` says where it was
    changed. Half stores a half-float plate's values exactly, so pixels outside the matte keep their bits.
    With the plate's ``header`` the frame keeps the plate's data and display windows (overscan), its pixel
    aspect and every attribute of its own (:func:`carried_attributes`); the toolkit's keys go under ``vfx/``.

    Args:
        path: the frame's file (``out/sh010_swap.1001.exr``).
        rgb: (H, W, 3) float32 beauty in the plate's colour space.
        matte: (H, W) float32 in [0, 1].
        info: how the frame was made (written as ``vfx/...`` attributes).
        timecode, fps, colorspace, shot_hash: standard metadata of the frame.
        dtype: ``"half"`` or ``"float"``.
        compression: lossless EXR codec (``"piz"`` or ``"zip"``).
        layers: more single-channel (H, W) mattes by channel name (the retouch's ``retouch.A``).
    """
    extra = dict(layers or {})
    pixels = np.concatenate([rgb, matte[:, :, np.newaxis], *(m[:, :, np.newaxis] for m in extra.values())],
                            axis=2).astype(np.float32, copy=False)
    metadata = ExrMetadata(timecode=timecode, fps=fps, colorspace=colorspace, shot_hash=shot_hash,
                           extra=info.to_extra())
    header = header or PlateHeader()
    attributes = {**carried_attributes(header.attributes), **metadata.to_attributes()}
    if header.pixel_aspect != 1.0 or "PixelAspectRatio" in header.attributes:
        attributes["PixelAspectRatio"] = float(header.pixel_aspect)
    data_window = header.data_window if header.data_window is not None and header.data_window.size == rgb.shape[:2] \
        else None
    return write_image(path, pixels, channels=("R", "G", "B", "A", *extra), dtype=dtype, compression=compression,
                       metadata=attributes, data_window=data_window,
                       display_window=header.display_window if data_window is not None else None)


def read_rendered_frame(path: str | os.PathLike[str]) -> RenderedFrame:
    """Read a frame written by :func:`write_rendered_frame`.

    Raises:
        MediaError: the file is missing, unreadable, or not a vfx rendered frame (no ``A`` or no ``vfx/frame``).
    """
    image: Image = read_image(path)
    metadata = image.exr_metadata
    if "A" not in image.channels or "frame" not in metadata.extra:
        raise MediaError(f"Not a vfx rendered frame: {path}", expected="an EXR written by `vfx swap` (R G B A with "
                         "vfx/frame metadata)", found=f"channels {', '.join(image.channels)}",
                         fix="render the shot with `vfx swap` first")
    layers = {name: image.channel(name).copy() for name in image.channels if name not in ("R", "G", "B", "A")}
    header = PlateHeader(dict(image.metadata), image.data_window, image.display_window,
                         float(image.metadata.get("PixelAspectRatio", 1.0) or 1.0))
    return RenderedFrame(rgb=image.rgb(), matte=image.channel("A").copy(), info=RenderInfo.from_extra(dict(metadata.extra)),
                         metadata=metadata, layers=layers, header=header)




def check_rendered_frames(pattern: SequencePattern, frames: Iterable[int]) -> None:
    """Check every frame of ``frames`` has been rendered.

    Raises:
        MediaError: some rendered frames are missing; the message names them.
    """
    frames = list(frames)
    missing = pattern.missing(frames)
    if missing:
        raise MediaError(f"{len(missing)} of {len(frames)} rendered frames are missing from {pattern.pattern}",
                         expected=f"a rendered frame for every frame of {format_frames(frames)}",
                         found=f"no file for frames {format_frames(missing)}",
                         fix="run `vfx swap` first for those frames (or narrow the frame range)")


def plate_start_timecode(plate: Plate) -> tuple[str | None, int]:
    """The plate's own start timecode and the frame it belongs to (a video's), else none."""
    if plate.video is not None and plate.video.info.timecode:
        return plate.video.info.timecode, plate.frame_range.first
    return None, 0


def write_plate_format(path: Path, image: Image, rgb: np.ndarray) -> None:
    """The frame in the plate's own file format and channel types: only R, G, B change, and only in the matte."""
    pixels = image.pixels.copy()
    for index, name in enumerate(("R", "G", "B")):
        pixels[:, :, image.channels.index(name) if name in image.channels else index] = rgb[:, :, index]
    dtype = image.channel_types or ("uint8",) * len(image.channels)  # a video plate's frames: 8-bit
    write_image(path, Image(pixels=pixels, channels=image.channels, metadata=dict(image.metadata),
                            channel_types=dtype, file_format=image.file_format,
                            data_window=image.data_window, display_window=image.display_window))
