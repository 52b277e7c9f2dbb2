"""Atomic writes: a killed process never leaves a half-written output.

Write to a hidden temporary file in the destination folder, fsync it, then ``os.replace`` it over the
destination (atomic on POSIX within one filesystem) and fsync the folder so the rename survives a crash.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vfx.errors import ConfigError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "check_writable", "fsync_path",
           "remove_stale_temps"]

TEMP_MARKER = ".vfxtmp"


def fsync_path(path: Path) -> None:
    """Flush a file (or folder) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The temporary name keeps the destination's extension so that writers which pick a format from the
    file name (OpenImageIO, ffmpeg) still do. On an exception the temporary file is removed and the
    destination is left as it was.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> with atomic_path(out) as tmp:
        ...     _ = tmp.write_text("hello")
        >>> out.read_text()
        'hello'
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f"{TEMP_MARKER}{dest.suffix}", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, dest)
        fsync_path(dest.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temps(path: str | os.PathLike[str], *, under: bool = False) -> int:
    """Remove the temporary files killed writers left of ``path`` (or, with ``under``, anywhere in the folder
    ``path``); returns how many. Only the owner of those outputs may call it: a live writer's temporary file
    is removed just the same.
    """
    path = Path(path)
    if under:
        found = path.rglob(f".*{TEMP_MARKER}*") if path.is_dir() else iter(())
    else:
        found = path.parent.glob(f".{path.stem}.*{TEMP_MARKER}{path.suffix}") if path.parent.is_dir() else iter(())
    count = 0
    for temp in list(found):
        if temp.is_dir() and not temp.is_symlink():  # a checkpoint folder a kill left half-written
            shutil.rmtree(temp, ignore_errors=True)
        else:
            temp.unlink(missing_ok=True)
        count += 1
    return count


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def check_writable(folder: Path) -> None:
    """Check files can be written in ``folder`` without making it: a plan checks before anything is written,
    so a missing folder is tried at its nearest existing parent (where it would be made)."""
    folder = Path(folder).absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"Cannot write to output folder {folder}", expected="a folder (or a path where one can be made)",
                          found=f"a file at {existing}",
                          fix="remove or rename that file, or point the output at a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".vfx_write_test_"):
            pass
    except OSError as err:
        raise ConfigError(f"Cannot write to output folder {folder}", expected="a writable folder",
                          found=f"{type(err).__name__}: {err.strerror or err}",
                          fix="fix the folder's permissions or point the shot's outputs elsewhere") from None
