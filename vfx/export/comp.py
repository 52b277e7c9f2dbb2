"""The compositor package, schema ``vfx.CompPackage/1``: the swapped face as an element a compositor lays
over the plate, rather than a finished frame.

Built from the rendered frames (``outputs.exr``, the one source of truth) and the plate. Layout::

    <package>/
      package.json                      what the package holds (schema, shot, hash, frames, file patterns)
      transforms.json                   per-frame plate <-> crop matrices and face boxes
      <shot>.nk                         Nuke script: patch over plate -> render/
      patch/<shot>_patch.####.exr       premultiplied RGBA face patch, float, data window = matte box
      matte/<shot>_matte.####.exr       the matte of everything changed (swap and retouch), one channel ``A``,
                                        same data window
      retouch_matte/<shot>_retouch_matte.####.exr   (retouched shots)
      edit_matte/<shot>_edit_matte.####.exr         (shots with latent edit vectors)
                                        each stage's own matte (same channel and window)
      render/                           where the Nuke script writes <shot>_comp.####.exr

The patch is what the swap added to the plate, premultiplied: ``rgb = beauty - plate * (1 - A)`` and
``alpha = A``, so a plain ``Merge(over)`` of patch on plate, ``patch.rgb + plate * (1 - patch.a)``, gives the
rendered frame back (:func:`rebuild_frame` is that graph in numpy). Both files hold only the matte's
bounding box as their EXR data window inside the plate-sized display window; a frame without a face gets
a 1x1 window of zeros, so the sequences have no gaps. Pixels are in the plate's own colour space and the
Nuke script reads and writes them raw.

Every file is written atomically. A rerun skips frames whose patch and matte are no older than their
rendered frame and rewrites the JSON and the script only when their content changes, so an unchanged
package is left exactly as it was; frames packaged by earlier runs (other frame ranges of the same shot)
stay listed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import fileseq
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import vfx
from vfx.align.similarity import compose, invert_affine
from vfx.errors import ConfigError, MediaError, ShapeError
from vfx.io.image import ExrMetadata, Window, read_image, write_image
from vfx.io.plate import Plate, borrow_plate
from vfx.render.rendered import (
    EDIT_MATTE_CHANNEL,
    RETOUCH_MATTE_CHANNEL,
    RenderInfo,
    check_rendered_frames,
    read_rendered_frame,
)
from vfx.shot.frames import FrameRange, SequencePattern, format_frames
from vfx.shot.layout import rendered_sequence
from vfx.shot.schema import Shot
from vfx.utils.atomic import atomic_write_text
from vfx.utils.progress import progress as progress_bar
from vfx.utils.stamped import read_stamped, schema_error, write_stamped

LAYER_MATTES = {RETOUCH_MATTE_CHANNEL: ("retouch_matte", "retouch matte"),
                EDIT_MATTE_CHANNEL: ("edit_matte", "latent edit matte")}
"""Layers of a rendered frame handed on as their own matte sequences: channel -> (package folder, element)."""

__all__ = [
    "MATTE_CHANNEL",
    "PACKAGE_NOTICE",
    "SCHEMA",
    "TRANSFORMS_SCHEMA",
    "CompPackageLayout",
    "CompPackageSummary",
    "cut_patch",
    "matte_window",
    "nuke_script",
    "rebuild_frame",
    "write_comp_package",
]

log = logging.getLogger(__name__)

SCHEMA = "vfx.CompPackage/1"
"""Schema of ``package.json``."""
TRANSFORMS_SCHEMA = "vfx.CompTransforms/1"
"""Schema of ``transforms.json``."""
MATTE_CHANNEL = "A"
"""The matte files' one channel. Nuke reads a lone ``A`` as ``rgba.alpha``."""
PACKAGE_NOTICE = (
    "The face patches in this package contain a synthetic face made by vfx (comb autoencoder face swap); "
    "it is not a photograph of the person it depicts."
)
"""Written into ``package.json`` and onto the Nuke script's sticky note."""

EMPTY_WINDOW = Window(0, 0, 1, 1)
"""Data window of a frame whose matte is empty: one pixel of zeros at the plate's top-left corner."""

_PATCH_DTYPE = "float"
_COMPRESSION = "zip"  # lossless, and Nuke's fastest EXR read for small scanline images
_NUKE_VERSION = "13.0 v1"
_NUKE_FILE_TYPES = {".exr": "exr", ".dpx": "dpx", ".tif": "tiff", ".tiff": "tiff", ".png": "png",
                    ".jpg": "jpeg", ".jpeg": "jpeg"}
_NUKE_DATATYPES = {"half": "16 bit half", "float": "32 bit float"}
_NUKE_COMPRESSIONS = {"piz": "PIZ Wavelet (32 scanlines)", "zip": "Zip (16 scanlines)"}


# --------------------------------------------------------------------------------------------------------------
# Layout and results


@dataclass(frozen=True)
class CompPackageLayout:
    """Where each file of a shot's package lives.

    Attributes:
        folder: the package folder.
        name: the shot name, the prefix of every file.
    """

    folder: Path
    name: str

    @property
    def patch_rel(self) -> str:
        """Patch sequence relative to the package (as the Nuke script and ``package.json`` name it)."""
        return f"patch/{self.name}_patch.####.exr"

    @property
    def matte_rel(self) -> str:
        return f"matte/{self.name}_matte.####.exr"

    def layer_matte_rel(self, element: str) -> str:
        """A stage's own matte sequence (``retouch_matte``, ``edit_matte``), relative to the package."""
        return f"{element}/{self.name}_{element}.####.exr"

    def layer_matte(self, element: str) -> SequencePattern:
        return SequencePattern(str(self.folder / self.layer_matte_rel(element)))

    @property
    def render_rel(self) -> str:
        """Where the Nuke script renders the comp."""
        return f"render/{self.name}_comp.####.exr"

    @property
    def patch(self) -> SequencePattern:
        return SequencePattern(str(self.folder / self.patch_rel))

    @property
    def matte(self) -> SequencePattern:
        return SequencePattern(str(self.folder / self.matte_rel))

    @property
    def render(self) -> SequencePattern:
        return SequencePattern(str(self.folder / self.render_rel))

    @property
    def nuke_script(self) -> Path:
        return self.folder / f"{self.name}.nk"

    @property
    def transforms(self) -> Path:
        return self.folder / "transforms.json"

    @property
    def manifest(self) -> Path:
        return self.folder / "package.json"


@dataclass(frozen=True)
class CompPackageSummary:
    """What :func:`write_comp_package` did.

    Attributes:
        layout: the package's files.
        frames: every frame the package holds (this run's and earlier runs').
        written: frames whose patch and matte this run wrote.
        skipped: frames of this run already packaged and up to date.
        no_face: frames of the package without a swapped face (1x1 empty patch).
        seconds: wall time of the run.
    """

    layout: CompPackageLayout
    frames: FrameRange
    written: int
    skipped: int
    no_face: tuple[int, ...]
    seconds: float

    @property
    def folder(self) -> Path:
        return self.layout.folder

    def describe(self) -> str:
        no_face = format_frames(self.no_face) if self.no_face else "none"
        return "\n".join([
            f"comp package {self.layout.folder}: frames {self.frames}",
            f"patches written {self.written}, already up to date {self.skipped}",
            f"frames without a face (empty patch): {no_face}",
            f"Nuke script: {self.layout.nuke_script}",
            f"{self.seconds:.1f} s",
        ])


# --------------------------------------------------------------------------------------------------------------
# Pixels


def matte_window(matte: np.ndarray) -> Window | None:
    """The bounding box of ``matte > 0`` as a :class:`~vfx.io.image.Window`, or ``None`` for an empty matte.

    Convention:
        - matte: (H, W) float32; window (y, x, height, width) in plate pixels
    """
    rows = np.flatnonzero(matte.max(axis=1) > 0)
    if rows.size == 0:
        return None
    cols = np.flatnonzero(matte.max(axis=0) > 0)
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return Window(y0, x0, y1 - y0, x1 - x0)


def cut_patch(beauty: np.ndarray, plate: np.ndarray, matte: np.ndarray) -> tuple[np.ndarray, np.ndarray, Window]:
    """The premultiplied face patch that turns ``plate`` into ``beauty`` under a Merge(over).

    Inside the matte's box ``rgb = beauty - plate * (1 - A)`` and ``alpha = A``; where ``A`` is 0 the patch
    is 0 (the beauty is the plate there, up to its storage precision). An empty matte gives a 1x1 patch of
    zeros at :data:`EMPTY_WINDOW`.

    Args:
        beauty: (H, W, 3) float32 rendered frame, plate colour space, not premultiplied.
        plate: (H, W, 3) float32 plate frame, same colour space.
        matte: (H, W) float32 swap matte in [0, 1].

    Returns:
        ``(patch, matte_roi, window)``: (h, w, 4) float32 RGBA, (h, w) float32, and where they sit.

    Convention:
        - all (H, W[, C]) float32 in the plate's own colour space; window (y, x, height, width)
    """
    if beauty.shape != plate.shape or beauty.shape[:2] != matte.shape or beauty.ndim != 3 or beauty.shape[2] != 3:
        raise MediaError("Rendered frame and plate do not line up", expected="beauty and plate (H, W, 3) and "
                         "matte (H, W) of one size", found=f"beauty {beauty.shape}, plate {plate.shape}, "
                         f"matte {matte.shape}", fix="re-render the shot with `vfx swap` for this plate")
    window = matte_window(matte)
    if window is None:
        return np.zeros((1, 1, 4), np.float32), np.zeros((1, 1), np.float32), EMPTY_WINDOW
    box = np.s_[window.y:window.y + window.height, window.x:window.x + window.width]
    alpha = np.asarray(matte[box], np.float32)
    rgb = np.asarray(beauty[box], np.float32) - np.asarray(plate[box], np.float32) * (1 - alpha)[:, :, None]
    rgb[alpha <= 0] = 0.0
    return np.concatenate([rgb, alpha[:, :, None]], axis=2), alpha.copy(), window


def rebuild_frame(plate_rgb: np.ndarray, patch_rgba: np.ndarray, data_window: Window,
                  plate_window: Window | None = None) -> np.ndarray:
    """What the package's Nuke graph computes: the patch, placed by its data window, over the plate.

    ``out = patch.rgb + plate * (1 - patch.a)`` inside the data window, the plate everywhere else
    (premultiplied over, Nuke's ``Merge2 { operation over }``).

    Args:
        plate_rgb: (H, W, 3) float32 plate.
        patch_rgba: (h, w, 4) float32 premultiplied patch.
        data_window: where the patch sits, in the plate's display space (its size is the patch's); parts
            outside the plate are ignored.
        plate_window: where ``plate_rgb`` sits in that space (an overscan plate's data window, or its
            display window after :meth:`~vfx.io.image.Image.in_display_window`); default: at the origin.

    Returns:
        (H, W, 3) float32, a new array.

    Convention:
        - plate colour space throughout, no colour conversion (the script reads and writes raw)
    """
    if patch_rgba.ndim != 3 or patch_rgba.shape[2] != 4 or patch_rgba.shape[:2] != data_window.size:
        raise ShapeError(f"patch must be (h, w, 4) matching its data window {data_window.size}, "
                         f"got {patch_rgba.shape}")
    out = np.array(plate_rgb[:, :, :3], dtype=np.float32, copy=True)
    height, width = out.shape[:2]
    if plate_window is not None:  # the patch's window relative to the plate array's top-left pixel
        data_window = Window(data_window.y - plate_window.y, data_window.x - plate_window.x, *data_window.size)
    y0, x0 = max(data_window.y, 0), max(data_window.x, 0)
    y1 = min(data_window.y + data_window.height, height)
    x1 = min(data_window.x + data_window.width, width)
    if y1 > y0 and x1 > x0:
        patch = np.asarray(patch_rgba[y0 - data_window.y:y1 - data_window.y, x0 - data_window.x:x1 - data_window.x],
                           np.float32)
        region = out[y0:y1, x0:x1]
        out[y0:y1, x0:x1] = patch[:, :, :3] + region * (1 - patch[:, :, 3])[:, :, None]
    return out


# --------------------------------------------------------------------------------------------------------------
# Nuke script


def _tcl(value: str) -> str:
    """A knob value as Nuke writes it: a bare word when safe, else double-quoted with TCL escapes."""
    if re.fullmatch(r"[A-Za-z0-9_./:#%+,@-]+", value):
        return value
    # ``[`` and ``$`` would substitute, braces are escaped as Nuke itself writes them; ``]`` alone is literal.
    return '"' + re.sub(r'([\\"\[${}])', r"\\\1", value).replace("\n", "\\n") + '"'


def _node(cls: str, knobs: list[tuple[str, str]]) -> str:
    return cls + " {\n" + "".join(f" {key} {value}\n" for key, value in knobs) + "}\n"


def _nuke_pattern(pattern: str) -> str:
    """An absolute, forward-slashed sequence pattern with Nuke's ``####`` frame token."""
    seq = fileseq.FileSequence(os.path.abspath(pattern), pad_style=fileseq.PAD_STYLE_HASH1)
    return Path(f"{seq.dirname()}{seq.basename()}{'#' * int(seq.zfill())}{seq.extension()}").as_posix()


def _nuke_fps(fps: Fraction) -> str:
    return str(fps.numerator) if fps.denominator == 1 else f"{float(fps):.10g}"


def nuke_script(name: str, plate: Plate, frames: FrameRange, *, exr_dtype: str = "half",
                compression: str = "piz") -> str:
    """The package's Nuke script: the patch (A) over the plate (B), written to ``render/``.

    Paths inside the package are relative to the script's folder (``project_directory`` is the script's
    directory), so the package can be moved; the plate's path is absolute. Every Read and the Write are
    raw: the patch is in the plate's colour space and the over happens there, as :func:`rebuild_frame` does.

    Args:
        name: shot name (file prefix, format name).
        plate: the shot's plate (path, kind, size, fps, colour space and its own frame range are used).
        frames: the package's frames (the script's and the Write's range).
        exr_dtype: ``"half"`` or ``"float"``, the render's pixel type (the rendered frames' type).
        compression: ``"piz"`` or ``"zip"``, the render's EXR compression.

    Returns:
        The ``.nk`` text. Node order follows Nuke's stack: the patch Read is pushed first and the plate
        Read last, so ``Merge2 { inputs 2 }`` takes the plate as input 0 (B) and the patch as input 1 (A).
    """
    layout = CompPackageLayout(Path("."), name)
    display = plate.display_window or Window(0, 0, *plate.size)
    height, width = display.size
    # Nuke's format is the display window; an overscan plate's extra pixels come in as the Read's bbox.
    fmt = _tcl(f"{width} {height} 0 0 {width} {height} {plate.pixel_aspect:g} {name}_plate")
    first, last = str(frames.first), str(frames.last)
    colorspace = plate.colorspace
    note = (f"vfx comp package {SCHEMA}, shot {name}, frames {frames}. {PACKAGE_NOTICE} "
            f"A: premultiplied patch, B: plate; everything raw, in the plate's colour space ({colorspace}).")
    text = [
        "#! nuke -nx\n",
        f"version {_NUKE_VERSION}\n",
        _node("Root", [
            ("inputs", "0"),
            ("project_directory", _tcl("[python {nuke.script_directory()}]")),
            ("frame", first),
            ("first_frame", first),
            ("last_frame", last),
            ("lock_range", "true"),
            ("format", fmt),
            ("fps", _nuke_fps(plate.fps)),
        ]),
        _node("Read", [
            ("inputs", "0"),
            ("file_type", "exr"),
            ("file", _tcl(layout.patch_rel)),
            ("format", fmt),
            ("first", first),
            ("last", last),
            ("origfirst", first),
            ("origlast", last),
            ("origset", "true"),
            ("raw", "true"),
            ("name", "Read_patch"),
            ("label", _tcl("A: face patch (synthetic), premultiplied")),
            ("xpos", "-150"),
            ("ypos", "-130"),
        ]),
    ]
    if plate.kind == "video":
        count = str(len(plate.frame_range))
        plate_knobs = [("file_type", "mov"), ("file", _tcl(Path(os.path.abspath(plate.path)).as_posix())),
                       ("format", fmt), ("first", "1"), ("last", count), ("origfirst", "1"), ("origlast", count),
                       ("origset", "true"), ("frame_mode", _tcl("start at")), ("frame", str(plate.frame_range.first))]
    else:
        file_type = _NUKE_FILE_TYPES.get(Path(plate.path).suffix.lower())
        plate_knobs = ([("file_type", file_type)] if file_type else []) + [
            ("file", _tcl(_nuke_pattern(plate.path))), ("format", fmt), ("first", first), ("last", last),
            ("origfirst", first), ("origlast", last), ("origset", "true")]
    text += [
        _node("Read", [("inputs", "0"), *plate_knobs, ("raw", "true"), ("name", "Read_plate"),
                       ("label", _tcl(f"B: plate ({colorspace}, read raw)")), ("xpos", "0"), ("ypos", "-130")]),
        _node("Merge2", [("inputs", "2"), ("operation", "over"), ("name", "Merge_patch_over_plate"),
                         ("xpos", "0"), ("ypos", "0")]),
        _node("Write", [
            ("channels", "rgba"),
            ("file", _tcl(layout.render_rel)),
            ("file_type", "exr"),
            ("raw", "true"),
            ("datatype", _tcl(_NUKE_DATATYPES.get(exr_dtype, _NUKE_DATATYPES["half"]))),
            ("compression", _tcl(_NUKE_COMPRESSIONS.get(compression, _NUKE_COMPRESSIONS["piz"]))),
            ("metadata", _tcl("all metadata")),
            ("first", first),
            ("last", last),
            ("use_limit", "true"),
            ("name", "Write_comp"),
            ("xpos", "0"),
            ("ypos", "80"),
        ]),
        _node("StickyNote", [("inputs", "0"), ("name", "Note_package"), ("label", _tcl(note)),
                             ("note_font_size", "14"), ("xpos", "150"), ("ypos", "-130")]),
    ]
    return "".join(text)


# --------------------------------------------------------------------------------------------------------------
# The package


def _matrix_list(matrix: np.ndarray | None) -> list[list[float]] | None:
    return None if matrix is None else np.asarray(matrix, np.float64).tolist()


def _window_dict(window: Window) -> dict[str, int]:
    return {"x": window.x, "y": window.y, "width": window.width, "height": window.height}


def in_display_space(info: RenderInfo, data_window: Window) -> RenderInfo:
    """A rendered frame's matrix and face box moved from its pixel array's coordinates into the plate's
    display space (the same for a plate without overscan; an overscan plate's array starts at the data
    window's origin, e.g. (-8, -8))."""
    if data_window.y == 0 and data_window.x == 0:
        return info
    matrix = None
    if info.matrix is not None:  # display -> array (shift by the origin), then array -> crop
        matrix = compose(np.array([[1.0, 0.0, -data_window.x], [0.0, 1.0, -data_window.y]]), info.matrix)
    box = None if info.face_box is None else (
        info.face_box[0] + data_window.y, info.face_box[1] + data_window.x,
        info.face_box[2] + data_window.y, info.face_box[3] + data_window.x)
    return replace(info, matrix=matrix, face_box=box)


def _transform_entry(info: RenderInfo) -> dict[str, Any] | None:
    """One frame of ``transforms.json``: the matrices and face box, or ``None`` for a frame without a face."""
    if info.matrix is None:
        return None
    return {"plate_to_crop": _matrix_list(info.matrix), "crop_to_plate": _matrix_list(invert_affine(info.matrix)),
            "face_box": None if info.face_box is None else [int(v) for v in info.face_box]}


def _up_to_date(layout: CompPackageLayout, source: Path, frame: int) -> bool:
    try:
        rendered = source.stat().st_mtime_ns
        return all(p.path(frame).stat().st_mtime_ns >= rendered for p in (layout.patch, layout.matte))
    except FileNotFoundError:
        return False


def _write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` atomically unless the file already holds exactly it; True when written."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)
    return True


_Finite = Annotated[float, Field(allow_inf_nan=False)]
_Row = tuple[_Finite, _Finite, _Finite]


class _TransformEntry(BaseModel):
    """One frame of ``transforms.json`` as read back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plate_to_crop: tuple[_Row, _Row]
    crop_to_plate: tuple[_Row, _Row]
    face_box: tuple[int, int, int, int] | None = None


class _Transforms(BaseModel):
    """The parts of ``transforms.json`` a later export reads back (the rest it writes anew)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    shot_hash: Annotated[str, Field(max_length=256)]
    crop_size: int = Field(default=0, ge=0, le=8192)
    frames: Annotated[dict[Annotated[str, Field(pattern=r"^-?\d{1,9}$")], _TransformEntry | None],
                      Field(max_length=10_000_000)] = Field(default_factory=dict)


def _previous_transforms(path: Path, shot_hash: str) -> dict[str, Any]:
    """The frames an earlier run packaged for the same shot recipe (nothing when the recipe changed or there is
    no earlier package).

    Raises:
        MediaError: a ``transforms.json`` that is not JSON, not ``vfx.CompTransforms``, or whose fields are wrong
            (the entries of frames this run does not package would be lost silently otherwise).
    """
    if not path.is_file() and not path.is_symlink():
        return {}
    fix = f"delete {path} and export the whole shot again (`vfx export SHOT`), which writes it anew"
    data = read_stamped(path, TRANSFORMS_SCHEMA, what="comp transforms", fix=fix)
    if data.get("shot_hash") != shot_hash:
        return {}
    try:
        _Transforms.model_validate(data)
    except ValidationError as err:
        raise schema_error(err, f"Comp transforms {path}", fix) from None
    return data  # as written (checked above): a rewrite of unchanged entries keeps their bytes


def _package_frame(layout: CompPackageLayout, source: Path, plate: Plate, frame: int, shot_hash: str) -> RenderInfo:
    """Cut and write one frame's patch and matte; return how the frame was made."""
    done = read_rendered_frame(source)
    image = plate.read(frame)
    if done.rgb.shape[:2] != plate.size:
        raise MediaError(f"Rendered frame {source} is not the plate's size",
                         expected=f"{plate.size[1]}x{plate.size[0]} (width x height), like the plate",
                         found=f"{done.rgb.shape[1]}x{done.rgb.shape[0]}",
                         fix="re-render the shot with `vfx swap` for this plate")
    patch, matte, window = cut_patch(done.rgb, image.rgb(), done.matte)
    # Windows in the plate's display space (an overscan plate's pixels start left of and above its format):
    # the matte box moves by the data window's origin, the display window is the plate's format.
    data = plate.data_window or Window(0, 0, *plate.size)
    display = plate.display_window or data
    if window != EMPTY_WINDOW:
        window = Window(window.y + data.y, window.x + data.x, window.height, window.width)
    info = in_display_space(done.info, data)
    extra = dict(info.to_extra())
    inverse = None if info.matrix is None else invert_affine(info.matrix)
    extra.update({
        "element": "face patch (premultiplied RGBA)",
        "plate_to_crop": "" if info.matrix is None else json.dumps(_matrix_list(info.matrix)),
        "crop_to_plate": "" if inverse is None else json.dumps(_matrix_list(inverse)),
    })
    metadata = ExrMetadata(timecode=done.metadata.timecode, fps=plate.fps, colorspace=plate.colorspace,
                           shot_hash=shot_hash, extra=extra)
    write_image(layout.patch.path(frame), patch, channels=("R", "G", "B", "A"), dtype=_PATCH_DTYPE,
                compression=_COMPRESSION, metadata=metadata, data_window=window, display_window=display)
    write_image(layout.matte.path(frame), matte, channels=(MATTE_CHANNEL,), dtype=_PATCH_DTYPE,
                compression=_COMPRESSION, metadata=ExrMetadata(
                    timecode=done.metadata.timecode, fps=plate.fps, shot_hash=shot_hash,
                    extra={**extra, "element": "swap matte"}),
                data_window=window, display_window=display)
    for channel, (element, what) in LAYER_MATTES.items():
        layer = done.layers.get(channel)
        if layer is None:
            continue
        if window == EMPTY_WINDOW:
            roi = np.zeros((1, 1), np.float32)
        else:
            roi = np.ascontiguousarray(layer[window.y - data.y:window.y - data.y + window.height,
                                             window.x - data.x:window.x - data.x + window.width], np.float32)
        write_image(layout.layer_matte(element).path(frame), roi, channels=(MATTE_CHANNEL,), dtype=_PATCH_DTYPE,
                    compression=_COMPRESSION, metadata=ExrMetadata(
                        timecode=done.metadata.timecode, fps=plate.fps, shot_hash=shot_hash,
                        extra={**extra, "element": what}),
                    data_window=window, display_window=display)
    return info


def write_comp_package(shot: Shot, out_dir: str | os.PathLike[str] | None = None, frames: FrameRange | None = None,
                       *, progress: bool = True, plate: Plate | None = None) -> CompPackageSummary:
    """Build (or bring up to date) the shot's compositor package from its rendered frames and its plate.

    Args:
        shot: the shot; its rendered frames (``outputs.exr``) must exist for every frame packaged.
        out_dir: the package folder. Default: the shot's ``outputs.comp_package``.
        frames: frames to package. Default: the shot's frames, else the whole plate.
        plate: the shot's plate when the caller has it open (it stays open); default: opened here.
        progress: report progress per frame on stderr.

    Returns:
        What was written and skipped, and the package's files.

    Raises:
        ConfigError: no package folder or no rendered sequence in the shot.
        MediaError: rendered frames missing (run ``vfx swap`` first), unreadable, or not the plate's size.
        FrameRangeError / MissingFramesError: frames outside the plate, or plate frames missing.

    Convention:
        - patch and matte pixels in the plate's colour space, float32; see the module docstring for the layout
    """
    started = time.perf_counter()
    folder = out_dir if out_dir is not None else shot.outputs.comp_package
    if folder is None:
        raise ConfigError(f"Shot {shot.name!r} names no compositor package folder",
                          expected="outputs.comp_package in the shot file, or a folder argument",
                          found="neither", fix="add e.g. `outputs: {comp_package: out/" + shot.name + "_comp}` to the shot file")
    layout = CompPackageLayout(Path(folder), shot.name)
    rendered = rendered_sequence(shot)
    shot_hash = shot.content_hash()
    with borrow_plate(shot.plate, frames, plate) as (plate, frames):
        check_rendered_frames(rendered, frames)
        todo = [f for f in frames if not _up_to_date(layout, rendered.path(f), f)]
        infos: dict[int, RenderInfo] = {}
        frame_iter = progress_bar(todo, total=len(todo), desc="comp package") if progress and todo else todo
        for frame in frame_iter:
            infos[frame] = _package_frame(layout, rendered.path(frame), plate, frame, shot_hash)
        for frame in frames:
            if frame not in infos:  # up to date: how it was made is in the patch's own metadata
                infos[frame] = RenderInfo.from_extra(dict(read_image(layout.patch.path(frame)).exr_metadata.extra))

        previous = _previous_transforms(layout.transforms, shot_hash)
        entries: dict[int, dict[str, Any] | None] = {int(k): v for k, v in previous.get("frames", {}).items()}
        entries.update({frame: _transform_entry(info) for frame, info in infos.items()})
        everything = FrameRange(tuple(sorted(entries)))
        crop_sizes = {info.crop_size for info in infos.values() if info.matrix is not None}
        crop_size = max(crop_sizes, default=int(previous.get("crop_size", 0)))
        if len(crop_sizes) > 1:
            log.warning("%s: rendered frames use several crop sizes %s", shot.name, sorted(crop_sizes))
        no_face = tuple(f for f, entry in sorted(entries.items()) if entry is None)
        fps = f"{plate.fps.numerator}/{plate.fps.denominator}"
        transforms = {
            "schema": TRANSFORMS_SCHEMA,
            "shot": shot.name,
            "shot_hash": shot_hash,
            "plate_size": {"height": plate.size[0], "width": plate.size[1]},
            "display_window": _window_dict(plate.display_window or Window(0, 0, *plate.size)),
            "data_window": _window_dict(plate.data_window or Window(0, 0, *plate.size)),
            "pixel_aspect": plate.pixel_aspect,
            "fps": fps,
            "crop_size": crop_size,
            "convention": "2x3 affine matrices on pixel centres, origin top-left, x right, y down; plate_to_crop "
                          "maps plate pixels to the crop_size x crop_size face crop; face_box is "
                          "[y0, x0, y1, x1] in plate pixels, ends exclusive; null: no face on that frame",
            "frames": {str(f): entries[f] for f in everything},
        }
        manifest = {
            "schema": SCHEMA,
            "shot": shot.name,
            "shot_hash": shot_hash,
            "vfx_version": vfx.__version__,
            "notice": PACKAGE_NOTICE,
            "frames": str(everything),
            "frame_count": len(everything),
            "frames_without_face": format_frames(no_face) if no_face else "",
            "plate": {"path": str(Path(os.path.abspath(plate.path))), "kind": plate.kind,
                      "colorspace": plate.colorspace, "height": plate.size[0], "width": plate.size[1], "fps": fps},
            "files": {
                "patch": layout.patch_rel,
                "matte": layout.matte_rel,
                "transforms": layout.transforms.name,
                "nuke_script": layout.nuke_script.name,
                "render": layout.render_rel,
                **({"retouch_matte": layout.layer_matte_rel("retouch_matte")} if shot.retouch else {}),
                **({"edit_matte": layout.layer_matte_rel("edit_matte")} if shot.edit_vectors and not shot.retouch
                   else {}),
            },
            "patch": "premultiplied RGBA (R G B A), float32, in the plate's colour space: rgb = beauty - plate * "
                     "(1 - A), alpha = A; EXR data window = the matte's bounding box inside the plate-sized display "
                     "window (1x1 zeros on frames without a face); comp = patch over plate",
            "matte": f"the matte of everything the frames change (the swap's and the retouch's), one float32 channel "
                     f"{MATTE_CHANNEL!r} (Nuke: rgba.alpha), same data window",
            "retouch_matte": "the retouch's own matte (retouched shots only), same channel and data window",
            "edit_matte": "the latent edit's own matte (shots with edit vectors only), same channel and data window",
            "metadata": "each patch and matte carries vfx/plate_to_crop and vfx/crop_to_plate (JSON 2x3), "
                        "vfx/face_box, vfx/frame, vfx/persona, vfx/model, vfx/synthetic",
        }
        layout.folder.joinpath("render").mkdir(parents=True, exist_ok=True)
        write_stamped(layout.transforms, TRANSFORMS_SCHEMA, transforms, if_changed=True)
        _write_if_changed(layout.nuke_script, nuke_script(shot.name, plate, everything,
                                                          exr_dtype=shot.outputs.exr_dtype,
                                                          compression=shot.outputs.exr_compression))
        write_stamped(layout.manifest, SCHEMA, manifest, if_changed=True)
    return CompPackageSummary(layout=layout, frames=everything, written=len(todo),
                              skipped=len(frames) - len(todo), no_face=no_face,
                              seconds=time.perf_counter() - started)
