"""vfx: face swap, multi-band blending, semantic retouch and farm hand-off for film shots."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vfx")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
