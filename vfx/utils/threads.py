"""Threads that keep a pipeline's stages overlapping."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

__all__ = ["prefetch"]

T = TypeVar("T")


def prefetch(make: Iterator[T], depth: int, *, name: str = "vfx-read") -> Iterator[T]:
    """Run ``make`` in a thread, ``depth`` items ahead of the consumer."""
    items: queue.Queue[object] = queue.Queue(maxsize=depth)
    end = object()
    stop = threading.Event()

    def fill() -> None:
        try:
            for item in make:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(end)
        except BaseException as err:  # noqa: BLE001 -- handed to the consumer and raised there
            items.put(err)

    thread = threading.Thread(target=fill, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
