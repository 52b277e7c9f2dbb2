"""One error hierarchy for the whole toolkit.

Every error a user can cause is a :class:`VfxError`. Its message says what was expected, what was found
and how to fix it, so a compositor reading a farm log knows what to change without reading code. The CLI
maps ``exit_code`` to the process exit status: 2 means bad input or configuration (a farm must not retry),
1 means an internal failure (a retry may help).
"""

from __future__ import annotations

__all__ = [
    "VfxError",
    "ConfigError",
    "ShotFileError",
    "FrameRangeError",
    "MediaError",
    "MissingFramesError",
    "InvalidPixelsError",
    "ColorError",
    "ExternalToolError",
    "ShapeError",
    "InternalError",
]


class VfxError(Exception):
    """Base class. Build messages with ``expected``/``found``/``fix`` so they read the same everywhere.

    Example:
        >>> str(VfxError("Cannot read plate", expected="an EXR file", found="a directory", fix="pass a file"))
        'Cannot read plate. Expected: an EXR file. Found: a directory. Fix: pass a file.'
    """

    exit_code: int = 2

    def __init__(
        self,
        message: str,
        *,
        expected: str | None = None,
        found: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.expected = expected
        self.found = found
        self.fix = fix
        parts = [message.rstrip(".") + "."]
        if expected:
            parts.append(f"Expected: {expected.rstrip('.')}.")
        if found:
            parts.append(f"Found: {found.rstrip('.')}.")
        if fix:
            parts.append(f"Fix: {fix.rstrip('.')}.")
        super().__init__(" ".join(parts))


class ConfigError(VfxError):
    """A setting, option or name that is not valid (unknown persona, bad option value, ...)."""


class ShotFileError(ConfigError):
    """A shot file that is missing, empty, not YAML, or does not match the ``vfx.Shot`` schema."""


class FrameRangeError(ConfigError):
    """A frame range that cannot be parsed or lies outside the plate."""


class MediaError(VfxError):
    """Media that cannot be read: missing, a directory, truncated, not the format its name says."""


class MissingFramesError(MediaError):
    """An image sequence with holes in the requested frame range."""

    def __init__(self, message: str, *, missing: list[int], **kwargs: str | None) -> None:
        self.missing = missing
        super().__init__(message, **kwargs)


class InvalidPixelsError(MediaError):
    """Pixels that no later stage can use: NaN or infinite values."""


class ColorError(ConfigError):
    """An unknown colour space or an OpenColorIO config that cannot be loaded."""


class ExternalToolError(VfxError):
    """An external program (ffmpeg) failed on input we believed valid: an internal failure, retryable."""

    exit_code = 1


class ShapeError(VfxError, ValueError):
    """An array or tensor of the wrong shape, type or range handed to a library function (a caller's mistake
    with the Python API: the message names the expected layout and how to convert)."""


class InternalError(VfxError):
    """An invariant of the toolkit itself broke (a bug, not the user's input): exit 1, the traceback kept."""

    exit_code = 1
