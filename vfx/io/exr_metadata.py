"""The metadata the toolkit writes on every EXR (timecode, frame rate, colour space, ``vfx/...`` keys) and the
SMPTE timecode word OpenEXR stores it in.

Convention:
    Timecodes are SMPTE ``"HH:MM:SS:FF"`` strings (``;`` before the frames for drop-frame); frame rates are
    :class:`~fractions.Fraction` (``Fraction(24000, 1001)``), never floats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import vfx
from vfx.errors import ConfigError
from vfx.io.timecode import check_timecode

if TYPE_CHECKING:
    from vfx.io.color import ConfigLike

__all__ = ["ExrMetadata", "decode_timecode", "encode_timecode"]



@dataclass(frozen=True)
class ExrMetadata:
    """The metadata the toolkit writes on every EXR it hands to compositing.

    Attributes:
        timecode: SMPTE ``"HH:MM:SS:FF"`` (``"HH:MM:SS;FF"`` for drop-frame); written as EXR ``timeCode``.
        fps: Frame rate as a Fraction (``Fraction(24000, 1001)``); written as EXR ``framesPerSecond``.
            Ints and ``"24000/1001"`` strings are accepted; floats are refused because 23.976 is not 24000/1001.
        colorspace: Any colour-space spelling the OCIO config resolves (``"ACEScg"``, ``"lin_ap1_scene"``).
            Written as the standard ``colorInteropID`` (e.g. ``lin_ap1_scene``), as ``oiio:ColorSpace``, and as
            the exact config name under ``vfx/colorspace``.
        vfx_version: Toolkit version, as ``vfx/version``; defaults to the running version.
        shot_hash: Hash of the shot settings that produced the frame, as ``vfx/shot_hash``.
        extra: Further keys, each written as ``vfx/<key>``; values str, int, float or Fraction.

    Example:
        >>> md = ExrMetadata(timecode="01:00:00:01", fps=Fraction(24000, 1001), vfx_version="0.1.0")
        >>> md.to_attributes()["framesPerSecond"]
        Fraction(24000, 1001)

    Convention:
        Read back with ``read_image(path).exr_metadata``. A file tagged only with ``colorInteropID`` by another
        tool comes back with that ID (e.g. ``"lin_ap1_scene"``), which OCIO resolves as an alias.
    """

    timecode: str | None = None
    fps: Fraction | None = None
    colorspace: str | None = None
    vfx_version: str | None = field(default_factory=lambda: vfx.__version__)
    shot_hash: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _RESERVED = ("version", "shot_hash", "colorspace")

    def __post_init__(self) -> None:
        if self.timecode is not None:
            encode_timecode(self.timecode)  # validates
        object.__setattr__(self, "fps", _to_fraction(self.fps))
        for key, value in self.extra.items():
            if not isinstance(key, str) or not key or key in self._RESERVED:
                raise ConfigError(
                    f"Invalid ExrMetadata.extra key {key!r}",
                    expected=f"a non-empty string other than {', '.join(self._RESERVED)}",
                    found=repr(key),
                    fix="use the dedicated field for version/shot_hash/colorspace, or rename the key",
                )
            if isinstance(value, bool) or not isinstance(value, str | int | float | Fraction):
                raise ConfigError(
                    f"Invalid value for ExrMetadata.extra[{key!r}]",
                    expected="a str, int, float or Fraction",
                    found=f"{type(value).__name__} {value!r}",
                    fix="convert the value to a string",
                )

    def to_attributes(self, *, config: ConfigLike = None) -> dict[str, Any]:
        """Return the OpenImageIO attributes to write, as plain values.

        Args:
            config: OCIO config used to resolve :attr:`colorspace` (see :func:`vfx.io.color.load_config`).

        Raises:
            ColorError: :attr:`colorspace` is not in the OCIO config.
        """
        attrs: dict[str, Any] = {}
        if self.timecode is not None:
            attrs["smpte:TimeCode"] = self.timecode
        if self.fps is not None:
            attrs["framesPerSecond"] = self.fps
        if self.colorspace is not None:
            from vfx.io import (
                color,  # deferred: only metadata with a colour space needs OCIO loaded
            )

            name = color.resolve_colorspace(self.colorspace, config)
            # OIIO maps only its own built-in config's names to colorInteropID and silently drops the rest
            # (e.g. "ARRI LogC4"), so the ID from our config is written explicitly; it takes precedence.
            attrs["oiio:ColorSpace"] = name
            iid = color.interop_id(name, config)
            if iid:
                attrs["colorInteropID"] = iid
            attrs["vfx/colorspace"] = name
        if self.vfx_version is not None:
            attrs["vfx/version"] = self.vfx_version
        if self.shot_hash is not None:
            attrs["vfx/shot_hash"] = self.shot_hash
        for key, value in self.extra.items():
            attrs[f"vfx/{key}"] = value
        return attrs

    @classmethod
    def from_attributes(cls, metadata: Mapping[str, Any]) -> ExrMetadata:
        """Build from a metadata dict as :func:`read_image` returns it."""
        fps = metadata.get("framesPerSecond", metadata.get("FramesPerSecond"))
        colorspace = metadata.get("vfx/colorspace") or metadata.get("colorInteropID") or metadata.get("oiio:ColorSpace")
        extra = {
            k[4:]: v
            for k, v in metadata.items()
            if k.startswith("vfx/") and k[4:] not in cls._RESERVED and k[4:]
        }
        tc = metadata.get("smpte:TimeCode")
        return cls(
            timecode=tc if isinstance(tc, str) else None,
            fps=fps if isinstance(fps, Fraction) else None,
            colorspace=str(colorspace) if colorspace else None,
            vfx_version=_opt_str(metadata.get("vfx/version")),
            shot_hash=_opt_str(metadata.get("vfx/shot_hash")),
            extra=extra,
        )


def encode_timecode(tc: str) -> int:
    """'HH:MM:SS:FF' (';' for drop-frame) to the SMPTE 12M time-and-flags word of OpenEXR's ``timeCode``.

    Raises:
        ConfigError: not a timecode (:func:`vfx.io.timecode.check_timecode`), or frames of 40 and above, which the
            word's frame field cannot hold.
    """
    text = check_timecode(tc)
    hh, mm, ss, ff = int(text[0:2]), int(text[3:5]), int(text[6:8]), int(text[9:11])
    if ff >= 40:
        raise ConfigError(f"Invalid timecode {tc!r}", expected="frames below 40 (the EXR timeCode word's limit)",
                          found=repr(tc), fix="write it like '01:00:00:01'")
    drop = text[8] in ";."

    def bcd(v: int) -> int:
        return ((v // 10) << 4) | (v % 10)

    return (bcd(hh) << 24) | (bcd(mm) << 16) | (bcd(ss) << 8) | bcd(ff) | (0x40 if drop else 0)


def decode_timecode(value: int) -> str:
    """SMPTE 12M time-and-flags word (OpenEXR ``timeCode``) to 'HH:MM:SS:FF'."""

    def unbcd(v: int) -> int:
        return (v >> 4) * 10 + (v & 0xF)

    ff = unbcd(value & 0x3F)
    ss = unbcd((value >> 8) & 0x7F)
    mm = unbcd((value >> 16) & 0x7F)
    hh = unbcd((value >> 24) & 0x3F)
    sep = ";" if value & 0x40 else ":"
    return f"{hh:02d}:{mm:02d}:{ss:02d}{sep}{ff:02d}"


def _to_fraction(v: Any) -> Fraction | None:
    if v is None or isinstance(v, Fraction):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return Fraction(v)
    if isinstance(v, str):
        try:
            return Fraction(v.strip())
        except (ValueError, ZeroDivisionError):
            pass
    raise ConfigError(
        f"Invalid frame rate {v!r}",
        expected="a Fraction, an int or a string like '24000/1001'",
        found=f"{type(v).__name__} {v!r}",
        fix="pass Fraction(24000, 1001) for 23.976 and Fraction(30000, 1001) for 29.97",
    )


def _opt_str(v: Any) -> str | None:
    return None if v is None else str(v)
