"""Threads: those that keep a pipeline's stages overlapping, and torch's (one set-up every command uses)."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

__all__ = ["DETERMINISTIC_THREADS", "configure_torch", "prefetch"]

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


DETERMINISTIC_THREADS = 1
"""CPU threads torch runs on in deterministic mode, whatever ``--threads`` or ``OMP_NUM_THREADS`` say."""


def configure_torch(*, threads: int | None = None, deterministic: bool = False) -> None:
    """The one torch set-up of every command that runs networks (``vfx task run``, ``vfx swap``, ...).

    Args:
        threads: CPU threads for torch's operators (None: torch's default, one per core or ``OMP_NUM_THREADS``).
        deterministic: deterministic algorithms, and torch's CPU operators on :data:`DETERMINISTIC_THREADS`
            thread(s) whatever ``threads`` says: a CPU convolution's sums are split by thread, so the last bit
            of a frame would otherwise depend on the thread count (a hand-run task on torch's default threads
            against a farm task on ``--threads 1``). On CUDA, cuBLAS gets a fixed workspace and cuDNN no
            autotuning. Frames are then bit-identical whatever the thread count (same device and batch size).
    """
    import torch

    if deterministic:
        threads = DETERMINISTIC_THREADS
        # cuBLAS needs a fixed workspace for deterministic GEMMs; set before CUDA starts.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    if threads:
        torch.set_num_threads(threads)
