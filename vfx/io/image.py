"""Still-image I/O through OpenImageIO: EXR (half/float), DPX, TIFF, PNG and JPEG.

Every image comes back as float32 with all its channels (alpha, ``matte.A``, ``stmap.red``...). Integer formats
are normalised to [0, 1] by this module rather than by OpenImageIO, so an 8-, 10- or 16-bit code ``k`` reads
as exactly ``float32(k / (2**bits - 1))`` and writes back as ``k``. Pixels are what the file stores: this module
never premultiplies or unpremultiplies (OpenImageIO's PNG default would).

Writes go through :func:`vfx.utils.atomic.atomic_path`, so a killed render never leaves half an EXR behind, and
NaN/Inf pixels are refused before anything touches the disk.

EXR metadata follows the OpenEXR standard names (``timeCode``, ``framesPerSecond``, ``colorInteropID``) so Nuke
and ``oiiotool`` read it; the toolkit's own keys live under ``vfx/``. See :class:`ExrMetadata`.

Convention:
    Images are numpy arrays shaped (H, W, C), float32. Sizes are (height, width). Windows are
    :class:`Window` (y, x, height, width) in pixels, y down, like OpenEXR's data/display windows.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, get_args

import numpy as np
import OpenImageIO as oiio

from vfx.errors import ConfigError, InvalidPixelsError, MediaError, ShapeError
from vfx.io.exr_metadata import ExrMetadata, decode_timecode, encode_timecode
from vfx.utils.atomic import atomic_path

if TYPE_CHECKING:
    pass

__all__ = [
    "EXR_COMPRESSIONS",
    "HALF_MAX",
    "SUPPORTED_EXTENSIONS",
    "ExrMetadata",
    "Image",
    "ImageHeader",
    "PixelType",
    "Window",
    "place_in_window",
    "read_image",
    "read_image_header",
    "read_image_size",
    "write_image",
]

logger = logging.getLogger(__name__)

PixelType: TypeAlias = Literal["uint8", "uint10", "uint16", "half", "float"]

HALF_MAX = 65504.0
"""Largest finite half value; larger floats become +Inf when stored as half."""

EXR_COMPRESSIONS: tuple[str, ...] = (
    "none", "rle", "zips", "zip", "piz", "pxr24", "b44", "b44a", "dwaa", "dwab", "htj2k256", "htj2k32", "zstd",
)  # fmt: skip
"""EXR codecs OpenImageIO 3.2 writes. ``zip``/``dwaa``/``dwab``/``zstd`` take a level, e.g. ``"dwaa:45"``."""

_LOSSY_EXR = {"pxr24", "b44", "b44a", "dwaa", "dwab"}


@dataclass(frozen=True)
class _Format:
    name: str  # OpenImageIO format name
    types: tuple[PixelType, ...]
    default: PixelType
    channel_counts: tuple[int, ...] | None  # None: any count
    named_channels: bool  # stores arbitrary channel names (only EXR does)


_EXR = _Format("openexr", ("half", "float"), "half", None, True)
_TIFF = _Format("tiff", ("uint8", "uint16", "float"), "uint16", None, False)
_FORMATS: dict[str, _Format] = {
    ".exr": _EXR,
    ".dpx": _Format("dpx", ("uint8", "uint10", "uint16"), "uint10", (1, 3, 4), False),
    ".tif": _TIFF,
    ".tiff": _TIFF,
    # More than 4 channels crashes OpenImageIO 3.2.2's PNG writer (segfault), hence the strict counts.
    ".png": _Format("png", ("uint8", "uint16"), "uint8", (1, 2, 3, 4), False),
    ".jpg": _Format("jpeg", ("uint8",), "uint8", (1, 3), False),
    ".jpeg": _Format("jpeg", ("uint8",), "uint8", (1, 3), False),
}
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(_FORMATS)
"""File extensions :func:`write_image` accepts (lower case). :func:`read_image` reads anything OIIO reads."""

_OIIO_TYPES: dict[str, Any] = {
    "uint8": oiio.UINT8,
    "uint10": oiio.UINT16,  # stored as 16-bit in memory; oiio:BitsPerSample=10 makes the DPX writer pack it
    "uint16": oiio.UINT16,
    "half": oiio.HALF,
    "float": oiio.FLOAT,
}
_INT_MAX: dict[str, int] = {"uint8": 255, "uint10": 1023, "uint16": 65535}

# Attributes that describe a file's layout rather than its content; copying them from a read image into a
# write would fight the dtype/compression arguments or is simply ignored by the writer.
_LAYOUT_KEYS = frozenset(
    {
        "compression",
        "oiio:subimages",
        "oiio:RowsPerChunk",
        "oiio:BitsPerSample",
        "oiio:UnassociatedAlpha",
        "planarconfig",
        "tiff:Compression",
        "tiff:RowsPerStrip",
        "tiff:PhotometricInterpretation",
        "tiff:PlanarConfiguration",
        "openexr:dwaCompressionLevel",
        "openexr:chunkCount",
    }
)



# --------------------------------------------------------------------------------------------------------------
# Data types


@dataclass(frozen=True)
class Window:
    """A pixel rectangle: OpenEXR's data or display window.

    Attributes:
        y: Top row (OpenEXR ``ymin``); may be negative for overscan.
        x: Left column (``xmin``).
        height: Rows.
        width: Columns.

    Convention:
        (y, x, height, width), y down, like numpy indexing. The OpenEXR box is
        ``(x, y) - (x + width - 1, y + height - 1)``.
    """

    y: int
    x: int
    height: int
    width: int

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)


@dataclass(frozen=True, eq=False)
class Image:
    """Pixels and everything read with them.

    Attributes:
        pixels: (H, W, C) float32 covering :attr:`data_window`.
        channels: One name per channel, e.g. ``("R", "G", "B", "A", "matte.A")``.
        metadata: File attributes as plain Python values, under OpenImageIO's names: ``"smpte:TimeCode"``
            (``"HH:MM:SS:FF"``, ``;`` before the frames when drop-frame), ``"framesPerSecond"`` (Fraction),
            ``"oiio:ColorSpace"``/``"colorInteropID"`` (str), ``"vfx/..."`` keys, and format-specific ones.
            :attr:`exr_metadata` gives the toolkit's fields typed.
        channel_types: Stored type per channel (``"half"``, ``"float"``, ``"uint8"``, ``"uint10"``, ``"uint16"``).
            Empty for images built in memory.
        file_format: OpenImageIO format name (``"openexr"``, ``"dpx"``, ``"tiff"``, ``"png"``, ``"jpeg"``), or
            ``""`` for images built in memory.
        data_window: Where the pixels sit; ``None`` means (0, 0, H, W).
        display_window: The image format (plate size); ``None`` means the data window.

    Convention:
        (H, W, C) float32; integer formats normalised to [0, 1]; alpha as stored (EXR/TIFF/DPX premultiplied by
        convention, PNG straight).
    """

    pixels: np.ndarray = field(repr=False)
    channels: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    channel_types: tuple[str, ...] = ()
    file_format: str = ""
    data_window: Window | None = None
    display_window: Window | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        px = self.pixels
        if not isinstance(px, np.ndarray) or px.ndim != 3 or px.dtype != np.float32:
            shape = getattr(px, "shape", None)
            raise ShapeError(f"Image.pixels must be an (H, W, C) float32 array, got {shape} {getattr(px, 'dtype', '')}")
        if len(self.channels) != px.shape[2]:
            raise ShapeError(f"Image has {px.shape[2]} channels but {len(self.channels)} names: {self.channels}")

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of :attr:`pixels`."""
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))

    @property
    def pixel_type(self) -> str:
        """The widest stored channel type (``"float"`` for images built in memory)."""
        if not self.channel_types:
            return "float"
        order = ["uint8", "uint10", "uint16", "half", "float"]
        return max(self.channel_types, key=lambda t: order.index(t) if t in order else len(order))

    @property
    def bit_depth(self) -> int:
        """Bits per sample of :attr:`pixel_type`: 8, 10, 16 (uint16 and half) or 32."""
        return {"uint8": 8, "uint10": 10, "uint16": 16, "half": 16}.get(self.pixel_type, 32)

    @property
    def exr_metadata(self) -> ExrMetadata:
        """The toolkit's metadata fields parsed from :attr:`metadata`."""
        return ExrMetadata.from_attributes(self.metadata)

    def channel(self, name: str) -> np.ndarray:
        """Return one channel as an (H, W) view.

        Raises:
            ConfigError: No channel of that name; the message lists the channels and the closest one.
        """
        if name not in self.channels:
            raise ConfigError(
                f"Image has no channel {name!r}",
                expected=f"one of {', '.join(self.channels)}",
                found=repr(name),
                fix=_did_you_mean(name, self.channels) or "pick a channel the file has",
            )
        return self.pixels[:, :, self.channels.index(name)]

    def rgb(self) -> np.ndarray:
        """The colour as (H, W, 3) float32: the ``R G B`` channels, or a grey image's one channel (``Y``) three times.

        Raises:
            ConfigError: neither R, G and B nor a single grey channel (``Y``, or a lone channel with alpha).
        """
        if all(name in self.channels for name in ("R", "G", "B")):
            return np.stack([self.channel(name) for name in ("R", "G", "B")], axis=-1)
        colour = [name for name in self.channels if name not in ("A", "alpha") and "." not in name]
        if len(colour) == 1:
            return np.repeat(self.channel(colour[0])[:, :, np.newaxis], 3, axis=2)
        raise ConfigError(
            "Image has no RGB colour",
            expected="channels R, G and B, or one grey channel (Y)",
            found=", ".join(self.channels),
            fix="convert the plate to RGB (or grey) images",
        )

    def in_display_window(self) -> np.ndarray:
        """Return the pixels placed on the display window, zero outside the data window.

        Returns:
            (display height, display width, C) float32. The pixels array itself when both windows agree.
        """
        data = self.data_window or Window(0, 0, *self.size)
        return place_in_window(self.pixels, data, self.display_window or data)


def place_in_window(pixels: np.ndarray, data: Window, window: Window) -> np.ndarray:
    """Pixels covering the ``data`` window, placed on ``window`` (an EXR's display window): what lies outside
    ``window`` is cut away (overscan), what ``data`` does not reach is zero.

    Returns:
        (window height, window width, C) array of the pixels' dtype; ``pixels`` itself when the windows agree.

    Convention:
        - pixels (H, W, C) with (H, W) == data.size; windows (y, x, height, width) in one pixel space
    """
    if data == window:
        return pixels
    out = np.zeros((window.height, window.width, *pixels.shape[2:]), pixels.dtype)
    y0, x0 = max(data.y, window.y), max(data.x, window.x)
    y1 = min(data.y + data.height, window.y + window.height)
    x1 = min(data.x + data.width, window.x + window.width)
    if y1 > y0 and x1 > x0:
        out[y0 - window.y : y1 - window.y, x0 - window.x : x1 - window.x] = pixels[
            y0 - data.y : y1 - data.y, x0 - data.x : x1 - data.x
        ]
    return out


# --------------------------------------------------------------------------------------------------------------
# Reading


def read_image(path: str | os.PathLike[str], *, check_finite: bool = True) -> Image:
    """Read a still image with all its channels as float32.

    Args:
        path: EXR, DPX, TIFF, PNG, JPEG, or anything else OpenImageIO reads. Multi-part EXRs give part 0.
        check_finite: Refuse NaN/Inf pixels. Turn off only to inspect a broken frame.

    Returns:
        The :class:`Image`. Integer formats are normalised to [0, 1] exactly (code / max code); alpha is as
        stored; pixels cover the data window.

    Raises:
        MediaError: Missing path, a directory, an unreadable, truncated or deep file.
        InvalidPixelsError: NaN or Inf pixels (when ``check_finite``), naming the count and first position.

    Example:
        >>> img = read_image("plate.1001.exr")  # doctest: +SKIP
        >>> img.channels, img.exr_metadata.fps  # doctest: +SKIP
        (('R', 'G', 'B', 'A'), Fraction(24000, 1001))

    Convention:
        (H, W, C) float32.
    """
    p = Path(path)
    _check_readable(p)
    config = oiio.ImageSpec()
    # Ask for the stored values; OIIO would otherwise premultiply PNG and unassociated-alpha TIFF on read.
    config.attribute("oiio:UnassociatedAlpha", 1)
    inp = oiio.ImageInput.open(str(p), config)
    if inp is None:
        raise MediaError(
            f"Cannot read image {p}",
            expected="a readable image file (EXR, DPX, TIFF, PNG, JPEG)",
            found=_oiio_error() or "a file OpenImageIO does not recognise",
            fix="re-export or re-copy the file; check it is not truncated or mis-named",
        )
    try:
        spec = inp.spec()
        file_format = str(inp.format_name())
        if spec.deep:
            raise MediaError(
                f"Cannot read image {p}",
                expected="a flat (non-deep) image",
                found="a deep EXR",
                fix="flatten it first, e.g. `oiiotool in.exr --flatten -o flat.exr`",
            )
        types = _channel_types(spec)
        native = types[0] if len(set(types)) == 1 and types[0] in _INT_MAX else None
        data = inp.read_image(_OIIO_TYPES[native] if native else oiio.FLOAT)
        if data is None:
            raise MediaError(
                f"Cannot read the pixels of {p}",
                expected="a complete image file",
                found=_one_line(inp.geterror()) or _oiio_error() or "a read error",
                fix="the file is truncated or corrupt; re-render or re-copy it",
            )
        metadata = _read_metadata(spec)
    finally:
        inp.close()
        _oiio_error()  # drain, so OIIO does not print a pending error at exit

    data = np.asarray(data).reshape(spec.height, spec.width, spec.nchannels)
    if native is not None:
        pixels = _normalise_int(data, native)
    else:
        pixels = np.ascontiguousarray(data, dtype=np.float32)
        if check_finite:
            _check_finite(pixels, tuple(spec.channelnames), f"Image {p} has non-finite pixels", reading=True)
    return Image(
        pixels=pixels,
        channels=tuple(str(c) for c in spec.channelnames),
        metadata=metadata,
        channel_types=types,
        file_format=file_format,
        data_window=Window(spec.y, spec.x, spec.height, spec.width),
        display_window=Window(spec.full_y, spec.full_x, spec.full_height, spec.full_width),
    )


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says, read without its pixels.

    Attributes:
        size: (height, width) of the data window.
        channels, metadata, channel_types, file_format, data_window, display_window: as in :class:`Image`.
    """

    size: tuple[int, int]
    channels: tuple[str, ...]
    metadata: dict[str, Any]
    channel_types: tuple[str, ...]
    file_format: str
    data_window: Window
    display_window: Window

    @property
    def exr_metadata(self) -> ExrMetadata:
        return ExrMetadata.from_attributes(self.metadata)


def read_image_header(path: str | os.PathLike[str]) -> ImageHeader:
    """An image's header: size, channels, windows and metadata; no pixels are read.

    Raises:
        MediaError: Missing path, a directory, or a file OpenImageIO cannot open.
    """
    p = Path(path)
    _check_readable(p)
    inp = oiio.ImageInput.open(str(p))
    if inp is None:
        raise MediaError(f"Cannot read image {p}", expected="a readable image file (EXR, DPX, TIFF, PNG, JPEG)",
                         found=_oiio_error() or "a file OpenImageIO does not recognise",
                         fix="re-export or re-copy the file; check it is not truncated or mis-named")
    try:
        spec = inp.spec()
        return ImageHeader(size=(int(spec.height), int(spec.width)), channels=tuple(str(c) for c in spec.channelnames),
                           metadata=_read_metadata(spec), channel_types=_channel_types(spec),
                           file_format=str(inp.format_name()), data_window=Window(spec.y, spec.x, spec.height, spec.width),
                           display_window=Window(spec.full_y, spec.full_x, spec.full_height, spec.full_width))
    finally:
        inp.close()
        _oiio_error()


def read_image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(height, width) of an image's pixels (its data window), from the header only: no pixels are read.

    Raises:
        MediaError: Missing path, a directory, or a file OpenImageIO cannot open.
    """
    return read_image_header(path).size


def _check_readable(p: Path) -> None:
    if p.is_dir():
        raise MediaError(
            f"Cannot read image {p}",
            expected="an image file",
            found="a directory",
            fix="pass one frame's file, or the sequence pattern to the sequence reader",
        )
    if not p.exists():
        hint = ""
        try:
            if p.parent.is_dir():
                hint = _did_you_mean(p.name, [e.name for e in os.scandir(p.parent)])
        except OSError:
            pass
        raise MediaError(
            f"Cannot read image {p}",
            expected="an existing image file",
            found="nothing at that path",
            fix=hint or "check the path, frame number and padding",
        )


def _channel_types(spec: Any) -> tuple[str, ...]:
    formats = list(spec.channelformats) or [spec.format] * spec.nchannels
    bits = spec.get_int_attribute("oiio:BitsPerSample", 0)
    names = []
    for f in formats:
        name = str(f)
        if name == "uint16" and bits == 10:
            name = "uint10"
        names.append(name)
    return tuple(names)


def _normalise_int(data: np.ndarray, ptype: str) -> np.ndarray:
    if ptype == "uint10":
        # OIIO widens 10-bit DPX codes to 16 bits by bit replication (k << 6 | k >> 4); the top bits are k.
        data = data >> 6
    # Division in float32 rounds k/max correctly; OIIO's own conversion is up to 1 ulp off.
    return data.astype(np.float32) / np.float32(_INT_MAX[ptype])


def _read_metadata(spec: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in spec.extra_attribs:
        out[str(p.name)] = _plain_value(p.type, p.value)
    return out


def _plain_value(t: Any, value: Any) -> Any:
    if t == oiio.TypeTimeCode:
        return decode_timecode(int(value[0]))
    if t == oiio.TypeRational or t == oiio.TypeURational:
        num, den = int(value[0]), int(value[1])
        return Fraction(num, den) if den else (num, den)
    if isinstance(value, tuple | list):
        if t.basetype == oiio.UINT8 and t.arraylen > 1:
            return bytes(int(v) & 0xFF for v in value)
        return tuple(_plain_scalar(v) for v in value)
    if isinstance(value, np.ndarray):
        return tuple(value.tolist())
    return _plain_scalar(value)


def _plain_scalar(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


# --------------------------------------------------------------------------------------------------------------
# Writing


def write_image(
    path: str | os.PathLike[str],
    pixels: np.ndarray | Image,
    *,
    channels: Sequence[str] | None = None,
    dtype: PixelType | Sequence[PixelType] | None = None,
    compression: str | None = None,
    metadata: ExrMetadata | Mapping[str, Any] | None = None,
    data_window: Window | None = None,
    display_window: Window | None = None,
) -> Path:
    """Write an image atomically; the format comes from the extension.

    Args:
        path: Destination; its extension is one of :data:`SUPPORTED_EXTENSIONS`.
        pixels: (H, W, C) or (H, W) array, float (any precision) or uint8/uint16 codes; or an :class:`Image`,
            whose channels, metadata, windows and (where the format allows) channel types are the defaults.
        channels: Channel names, e.g. ``("R", "G", "B", "A", "matte.A")``. Default: the image's, else OIIO's
            (``Y``; ``R,G``; ``R,G,B``; ``R,G,B,A``). Only EXR stores arbitrary names.
        dtype: Stored type: ``"half"``/``"float"`` (EXR; TIFF float), ``"uint8"``, ``"uint16"``, ``"uint10"``
            (DPX). EXR also takes one type per channel, e.g. half RGBA plus float ``stmap.red/green``.
            ``None``: EXR half, DPX uint10, TIFF uint16, PNG/JPEG uint8.
        compression: EXR codec from :data:`EXR_COMPRESSIONS` (default ``"piz"``), optionally with a level
            (``"zip:6"``, ``"dwaa:45"``); PNG ``"zip:N"``, the zlib level 0-9 (default 6; ``"zip:1"`` writes 4x faster);
            passed through for other formats (``"lzw"`` for TIFF, ``"jpeg:95"``).
        metadata: :class:`ExrMetadata`, or a dict of OpenImageIO attributes as :func:`read_image` returns them
            (``"smpte:TimeCode"`` strings and Fractions are converted to timecode/rational attributes).
        data_window: EXR only: where the pixels sit (its size must be the pixels' size).
        display_window: EXR only: the plate format, e.g. ``Window(0, 0, 1080, 1920)``.

    Returns:
        The written path.

    Raises:
        InvalidPixelsError: NaN/Inf pixels, or values beyond ±65504 for half channels. Nothing is written.
        ConfigError: Unsupported extension, dtype, compression, channel count or names, or bad metadata.
        ColorError: ``metadata.colorspace`` unknown to the OCIO config.
        MediaError: OpenImageIO or the filesystem failed to write; no partial file is left.

    Example:
        >>> write_image("out/sh010.1001.exr", rgba, channels=("R", "G", "B", "A"),  # doctest: +SKIP
        ...             metadata=ExrMetadata(timecode="01:00:41:17", fps=Fraction(24000, 1001)))

    Convention:
        (H, W, C); float values for integer formats are clipped to [0, 1] and rounded to the nearest code
        (a warning is logged when clipping changes values).
    """
    dest = Path(path)
    fmt = _format_for(dest)
    image = pixels if isinstance(pixels, Image) else None
    arr = np.asarray(image.pixels if image is not None else pixels)
    if arr.ndim == 2:
        arr = arr[:, :, np.newaxis]
    if arr.ndim != 3 or 0 in arr.shape:
        raise ConfigError(
            f"Cannot write {dest}",
            expected="pixels shaped (H, W, C) or (H, W) with no empty axis",
            found=f"shape {arr.shape}",
            fix="reshape the array to (height, width, channels)",
        )
    height, width, nch = (int(s) for s in arr.shape)

    if channels is None and image is not None:
        channels = image.channels
    names = _check_channels(dest, fmt, nch, channels)
    types = _resolve_types(dest, fmt, nch, dtype, image, arr.dtype)
    if metadata is None and image is not None:
        metadata = image.metadata
    attrs = metadata.to_attributes() if isinstance(metadata, ExrMetadata) else dict(metadata or {})
    if image is not None:
        data_window = data_window or image.data_window
        display_window = display_window or image.display_window
    _check_windows(dest, fmt, (height, width), data_window, display_window)
    comp = _check_compression(dest, fmt, compression)

    buffer = _to_buffer(dest, arr, names, types)

    spec = oiio.ImageSpec(width, height, nch, _OIIO_TYPES[_widest(types)])
    if names is not None:
        spec.channelnames = names
    if len(set(types)) > 1:
        spec.channelformats = tuple(oiio.TypeDesc(_OIIO_TYPES[t]) for t in types)
    final_names = tuple(spec.channelnames)
    spec.alpha_channel = final_names.index("A") if "A" in final_names else -1
    if data_window is not None:
        spec.y, spec.x = data_window.y, data_window.x
    if display_window is not None:
        spec.full_y, spec.full_x = display_window.y, display_window.x
        spec.full_height, spec.full_width = display_window.height, display_window.width
    for key, value in attrs.items():
        if key not in _LAYOUT_KEYS:
            _set_attribute(spec, key, value)
    if comp is not None and fmt.name == "png":
        level = int(comp.partition(":")[2] or 6)
        spec.attribute("png:compressionLevel", level)
        if level <= 3:
            # libpng's adaptive filter choice costs as much as a fast deflate; the "up" filter alone keeps
            # nearly all of its gain (measured on face crops: 3.6 ms vs 7 ms per 256² crop, 3 % larger).
            spec.attribute("png:filter", _PNG_FILTER_UP)
    elif comp is not None:
        spec.attribute("compression", comp)
    if "uint10" in types:
        spec.attribute("oiio:BitsPerSample", 10)
    if fmt.name == "png" and spec.alpha_channel >= 0:
        spec.attribute("oiio:UnassociatedAlpha", 1)  # our pixels are already what PNG stores: no unpremultiply
    if fmt.name == "tiff":
        # Without this OIIO 3.2.2 reports "failed TIFFWriteCustomDirectory() of the Exif data" on close.
        spec.attribute("tiff:write_exif", 0)

    try:
        with atomic_path(dest) as tmp:
            _oiio_write(tmp, dest, spec, buffer)
    except OSError as exc:
        raise MediaError(
            f"Cannot write image {dest}",
            expected="a writable destination folder with free space",
            found=f"{type(exc).__name__}: {exc}",
            fix="check the folder's permissions and free disk space",
        ) from exc
    logger.debug("wrote %s (%dx%d, %s, %s)", dest, width, height, ",".join(final_names), ",".join(types))
    return dest


def _oiio_write(tmp: Path, dest: Path, spec: Any, buffer: np.ndarray) -> None:
    out = oiio.ImageOutput.create(str(tmp))
    if out is None:
        raise MediaError(
            f"Cannot write image {dest}",
            expected="an image format OpenImageIO can write",
            found=_oiio_error() or "no writer",
            fix=f"use one of {', '.join(SUPPORTED_EXTENSIONS)}",
        )
    ok = out.open(str(tmp), spec)
    if ok:
        ok = out.write_image(buffer)
        ok = out.close() and ok
    else:
        out.close()
    err = _one_line(out.geterror())
    _oiio_error()
    if not ok:
        raise MediaError(
            f"Cannot write image {dest}",
            expected="OpenImageIO to accept the pixels and attributes",
            found=err or "a write error",
            fix="check free disk space and that the channel count and types suit the format",
        )
    if err:
        logger.warning("OpenImageIO reported while writing %s: %s", dest, err)


def _format_for(dest: Path) -> _Format:
    ext = dest.suffix.lower()
    if ext not in _FORMATS:
        raise ConfigError(
            f"Cannot write {dest}: unsupported file extension {ext or '(none)'!r}",
            expected=f"one of {', '.join(SUPPORTED_EXTENSIONS)}",
            found=repr(ext or dest.name),
            fix=_did_you_mean(ext, SUPPORTED_EXTENSIONS) or "use .exr for renders, .png/.jpg for previews",
        )
    return _FORMATS[ext]


def _check_channels(dest: Path, fmt: _Format, nch: int, channels: Sequence[str] | None) -> tuple[str, ...] | None:
    if fmt.channel_counts is not None and nch not in fmt.channel_counts:
        raise ConfigError(
            f"Cannot write {nch} channels to {dest}",
            expected=f"{' or '.join(map(str, fmt.channel_counts))} channels for {fmt.name.upper()}",
            found=f"{nch} channels",
            fix="write EXR for extra channels (mattes, layers), or drop them",
        )
    if channels is None:
        return None
    names = tuple(str(c) for c in channels)
    if len(names) != nch or len(set(names)) != nch or not all(names):
        raise ConfigError(
            f"Bad channel names for {dest}",
            expected=f"{nch} unique non-empty names, one per channel",
            found=repr(names),
            fix="pass one name per channel of the pixels' last axis, e.g. ('R', 'G', 'B', 'A', 'matte.A')",
        )
    if not fmt.named_channels:
        default = tuple(oiio.ImageSpec(1, 1, nch, oiio.UINT8).channelnames)
        if nch in (1, 2) and fmt.name == "png":
            default = ("Y", "A")[:nch]
        if names != default:
            logger.warning(
                "%s stores no channel names; %s will read back as %s", fmt.name.upper(), names, default
            )
    return names


def _resolve_types(
    dest: Path,
    fmt: _Format,
    nch: int,
    dtype: PixelType | Sequence[PixelType] | None,
    image: Image | None,
    array_dtype: np.dtype[Any],
) -> tuple[str, ...]:
    if dtype is None:
        if image is not None and image.channel_types and all(t in fmt.types for t in image.channel_types):
            if fmt.named_channels or len(set(image.channel_types)) == 1:
                return tuple(image.channel_types)
        native = {np.dtype(np.uint8): "uint8", np.dtype(np.uint16): "uint16"}.get(np.dtype(array_dtype))
        return ((native if native in fmt.types else fmt.default),) * nch
    requested = (dtype,) * nch if isinstance(dtype, str) else tuple(dtype)
    valid = get_args(PixelType)
    for t in requested:
        if t not in fmt.types:
            raise ConfigError(
                f"Cannot write {dest} as {t!r}",
                expected=f"one of {', '.join(fmt.types)} for {fmt.name.upper()}",
                found=repr(t),
                fix=_did_you_mean(str(t), fmt.types) or (
                    f"pick a type {fmt.name.upper()} stores" if t in valid else f"types are {', '.join(valid)}"
                ),
            )
    if len(requested) != nch:
        raise ConfigError(
            f"Cannot write {dest}",
            expected=f"one dtype or {nch} (one per channel)",
            found=f"{len(requested)} dtypes",
            fix="pass a single dtype or one per channel",
        )
    if len(set(requested)) > 1 and not fmt.named_channels:
        raise ConfigError(
            f"Cannot write {dest} with mixed channel types",
            expected="one dtype for all channels outside EXR",
            found=", ".join(requested),
            fix="write EXR for per-channel types, or pass a single dtype",
        )
    return requested


def _check_windows(
    dest: Path, fmt: _Format, size: tuple[int, int], data: Window | None, display: Window | None
) -> None:
    if data is not None and data.size != size:
        raise ConfigError(
            f"Data window does not match the pixels for {dest}",
            expected=f"a data window of size {size} (height, width)",
            found=f"{data.size}",
            fix="pass the pixels that cover the data window, or drop data_window",
        )
    if fmt is _EXR:
        return
    trivial = Window(0, 0, *size)
    if (data is not None and data != trivial) or (display is not None and display != (data or trivial)):
        raise ConfigError(
            f"Cannot store data/display windows in {dest}",
            expected="windows at the origin covering the whole image, outside EXR",
            found=f"data_window={data}, display_window={display}",
            fix="write EXR, or call Image.in_display_window() and write the result",
        )


_PNG_FILTER_UP = 32  # libpng's PNG_FILTER_UP bit, as OpenImageIO's "png:filter" takes it


def _check_compression(dest: Path, fmt: _Format, compression: str | None) -> str | None:
    if fmt.name == "png" and compression is not None:
        base, _, level = compression.lower().partition(":")
        if base != "zip" or not re.fullmatch(r"[0-9]?", level):
            raise ConfigError(
                f"Unknown PNG compression {compression!r} for {dest}",
                expected="'zip' or 'zip:N' with a zlib level N from 0 (none, fastest) to 9 (smallest)",
                found=repr(compression),
                fix="use 'zip:1' for fast writes, or leave it out for the default (6)",
            )
        return compression.lower()
    if fmt is not _EXR:
        return compression
    if compression is None:
        return "piz"
    base, _, level = compression.lower().partition(":")
    if base not in EXR_COMPRESSIONS or (level and not re.fullmatch(r"\d+(\.\d+)?", level)):
        raise ConfigError(
            f"Unknown EXR compression {compression!r} for {dest}",
            expected=f"one of {', '.join(EXR_COMPRESSIONS)}, optionally with ':level'",
            found=repr(compression),
            # OIIO would silently fall back to zip, so this is refused rather than passed through.
            fix=_did_you_mean(base, EXR_COMPRESSIONS) or "use 'piz' or 'zip' for deliveries",
        )
    if base in _LOSSY_EXR:
        logger.info("%s: %s is lossy; deliveries usually require piz or zip", dest, base)
    return compression.lower()


def _to_buffer(dest: Path, arr: np.ndarray, names: tuple[str, ...] | None, types: tuple[str, ...]) -> np.ndarray:
    chan_names = names or tuple(oiio.ImageSpec(1, 1, arr.shape[2], oiio.UINT8).channelnames)
    if np.issubdtype(arr.dtype, np.integer):
        return _int_buffer(dest, arr, types)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ConfigError(
            f"Cannot write {dest}",
            expected="float pixels, or uint8/uint16 codes",
            found=f"dtype {arr.dtype}",
            fix="convert the pixels to float32",
        )
    px = np.ascontiguousarray(arr, dtype=np.float32)
    _check_finite(px, chan_names, f"Refusing to write non-finite pixels to {dest}", reading=False)
    half = [i for i, t in enumerate(types) if t == "half"]
    if half:
        sub = px if len(half) == px.shape[2] else px[:, :, half]
        # Two reductions allocate nothing; the mask is built only on the error path (saves ~10 ms per 1080p).
        if float(sub.max()) > HALF_MAX or float(sub.min()) < -HALF_MAX:
            over = np.abs(sub) > HALF_MAX
            y, x, c = (int(v) for v in np.argwhere(over)[0])
            raise InvalidPixelsError(
                f"Refusing to write {dest}: values beyond the half range",
                expected=f"|value| <= {HALF_MAX:g} for half channels",
                found=f"{int(over.sum())} values, first {float(px[y, x, half[c]]):g} at row {y}, column {x}, "
                f"channel {chan_names[half[c]]!r}",
                fix="clamp the highlights or write dtype='float'",
            )
    int_types = [t for t in types if t in _INT_MAX]
    if not int_types:
        return px
    ptype = int_types[0]
    clipped = int(np.count_nonzero((px < 0.0) | (px > 1.0)))
    if clipped:
        logger.warning("%s: %d values outside [0, 1] clipped for %s", dest, clipped, ptype)
    codes = np.rint(np.clip(px, 0.0, 1.0) * np.float32(_INT_MAX[ptype]))
    return _int_buffer(dest, codes.astype(np.uint16 if ptype != "uint8" else np.uint8), types)


def _int_buffer(dest: Path, codes: np.ndarray, types: tuple[str, ...]) -> np.ndarray:
    ptype = types[0]
    if ptype not in _INT_MAX:
        raise ConfigError(
            f"Cannot write integer pixels to {dest} as {ptype}",
            expected="float pixels for half/float files",
            found=f"dtype {codes.dtype}",
            fix="divide the codes by their maximum and pass float32",
        )
    maxv = _INT_MAX[ptype]
    if codes.size and int(codes.max()) > maxv:
        raise ConfigError(
            f"Cannot write {dest} as {ptype}",
            expected=f"codes in [0, {maxv}]",
            found=f"max code {int(codes.max())} ({codes.dtype})",
            fix=f"pass float pixels in [0, 1] or codes that fit {ptype}",
        )
    if ptype == "uint8":
        return np.ascontiguousarray(codes, dtype=np.uint8)
    wide = np.ascontiguousarray(codes, dtype=np.uint16)
    if ptype == "uint10":
        # OIIO takes the top 10 bits of a 16-bit buffer; replicating the low bits keeps k exact both ways.
        wide = (wide << 6) | (wide >> 4)
    return wide


def _widest(types: tuple[str, ...]) -> str:
    order = ["uint8", "uint10", "uint16", "half", "float"]
    return max(types, key=order.index)


def _set_attribute(spec: Any, key: str, value: Any) -> None:
    if key in ("smpte:TimeCode", "timeCode") and isinstance(value, str):
        spec.attribute("smpte:TimeCode", oiio.TypeTimeCode, (encode_timecode(value), 0))
    elif isinstance(value, Fraction):
        spec.attribute(key, oiio.TypeRational, (_int32(key, value.numerator), _int32(key, value.denominator)))
    elif isinstance(value, bool):
        spec.attribute(key, int(value))
    elif isinstance(value, int | np.integer):
        spec.attribute(key, _int32(key, int(value)))
    elif isinstance(value, float | np.floating):
        spec.attribute(key, float(value))
    elif isinstance(value, str):
        spec.attribute(key, value)
    elif isinstance(value, bytes | bytearray):
        spec.attribute(key, oiio.TypeDesc(f"uint8[{len(value)}]"), tuple(value))
    elif isinstance(value, tuple | list) and value and all(isinstance(v, int | float) for v in value):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            spec.attribute(key, oiio.TypeDesc(f"int[{len(value)}]"), tuple(value))
        else:
            spec.attribute(key, oiio.TypeDesc(f"float[{len(value)}]"), tuple(float(v) for v in value))
    elif isinstance(value, tuple | list) and value and all(isinstance(v, str) for v in value):
        spec.attribute(key, oiio.TypeDesc(f"string[{len(value)}]"), tuple(value))
    else:
        raise ConfigError(
            f"Cannot store metadata {key!r}",
            expected="a str, int, float, Fraction, bytes or a tuple of numbers/strings",
            found=f"{type(value).__name__} {value!r}"[:200],
            fix="convert the value to a string",
        )


def _int32(key: str, v: int) -> int:
    if not -(2**31) <= v < 2**31:
        raise ConfigError(
            f"Metadata {key!r} does not fit a 32-bit integer",
            expected="a value in [-2**31, 2**31)",
            found=str(v),
            fix="store it as a string",
        )
    return v


# --------------------------------------------------------------------------------------------------------------
# Helpers


def _check_finite(px: np.ndarray, names: Sequence[str], message: str, *, reading: bool) -> None:
    finite = np.isfinite(px)
    if finite.all():
        return
    bad = ~finite
    n_nan = int(np.count_nonzero(np.isnan(px)))
    n_bad = int(np.count_nonzero(bad))
    y, x, c = (int(v) for v in np.argwhere(bad)[0])
    name = names[c] if c < len(names) else str(c)
    fix = (
        "re-render or repair the frame upstream (read_image(..., check_finite=False) loads it for inspection)"
        if reading
        else "clean the pixels first, e.g. np.nan_to_num(pixels, nan=0.0, posinf=1.0, neginf=0.0)"
    )
    raise InvalidPixelsError(
        message,
        expected="finite pixel values",
        found=f"{n_bad} non-finite values ({n_nan} NaN, {n_bad - n_nan} Inf), first {px[y, x, c]} at row {y}, "
        f"column {x}, channel {name!r}",
        fix=fix,
    )


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _oiio_error() -> str:
    """Return and clear OpenImageIO's global error message, on one line for logs."""
    return _one_line(str(oiio.geterror()))


def _one_line(message: str) -> str:
    # OpenEXR repeats the same line several times for one failure; keep each once.
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    return "; ".join(dict.fromkeys(lines))[:500]
