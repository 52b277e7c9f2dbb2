"""One progress helper that suits both an artist's terminal and a render farm's log.

On a terminal it draws a rich bar. When stderr is not a terminal (a farm worker, a CI log, a pipe) or
``VFX_NO_PROGRESS=1`` is set, it writes one plain line per item instead, ``swap: frame 1042/1096 (95%)``,
because carriage-return bars turn farm logs into unreadable walls and farm managers parse plain lines.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

__all__ = ["progress", "progress_enabled"]

T = TypeVar("T")


def progress_enabled(stream: TextIO | None = None) -> bool:
    """True when an interactive bar should be drawn on ``stream`` (default: stderr)."""
    stream = stream or sys.stderr
    if os.environ.get("VFX_NO_PROGRESS", "") not in ("", "0"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def progress(
    items: Iterable[T],
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "frame",
    stream: TextIO | None = None,
) -> Iterator[T]:
    """Yield ``items`` while reporting progress on ``stream`` (default: stderr).

    Args:
        items: what to iterate over.
        total: number of items, when ``items`` has no ``len``.
        desc: what is being done (``"decode"``, ``"swap"``).
        unit: the word for one item in plain lines (``frame 12/48``).
        stream: where to report; stderr by default.

    Example:
        >>> import io
        >>> buf = io.StringIO()
        >>> list(progress(range(2), desc="demo", stream=buf))
        [0, 1]
        >>> print(buf.getvalue().strip())
        demo: frame 1/2 (50%)
        demo: frame 2/2 (100%)
    """
    stream = stream or sys.stderr
    if total is None:
        total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
    if progress_enabled(stream):
        yield from _rich_progress(items, total=total, desc=desc, stream=stream)
        return
    prefix = f"{desc}: " if desc else ""
    for index, item in enumerate(items, start=1):
        yield item
        if total:
            stream.write(f"{prefix}{unit} {index}/{total} ({100 * index // total}%)\n")
        else:
            stream.write(f"{prefix}{unit} {index}\n")
        stream.flush()


def _rich_progress(items: Iterable[T], *, total: int | None, desc: str, stream: TextIO) -> Iterator[T]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(file=stream), transient=False) as bar:
        task = bar.add_task(desc or "working", total=total)
        for item in items:
            yield item
            bar.advance(task)
