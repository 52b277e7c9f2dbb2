"""The Ray engine: a shot's task graph on a Ray cluster, for scale-out (``pip install 'vfx[ray]'``).

Each task is a Ray task that runs :func:`vfx.farm.task.run_task` in the worker process. Ray reuses its worker
processes, and the models a task loads stay in that process's cache, so the next chunk on the same worker
starts without loading the model again. Dependencies are Ray's own: a task is handed the results of the
tasks it waits for, so Ray starts it once they are done. GPU stages ask for ``num_gpus=1`` when the cluster
has GPUs (Ray then sets ``CUDA_VISIBLE_DEVICES``); a task lost with its worker or node is retried by Ray,
and a task that failed (exit 1) is retried too; bad input (exit 2) is returned, not raised, so it is never
retried and the tasks after it are skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from vfx.errors import ConfigError
from vfx.farm.graph import TaskGraph
from vfx.farm.local import EngineSummary, TaskResult, pending_tasks
from vfx.farm.task import read_record

__all__ = ["run_ray"]

log = logging.getLogger(__name__)

_SKIPPED = 3
"""Result code of a task not run because a task it waits for failed."""

_WORKER_CACHE: dict[object, object] = {}
"""Models loaded by the tasks of this (Ray worker) process, kept for the next chunk it runs."""


class TaskFailed(Exception):
    """A task that exited 1 in a Ray worker: raised so Ray retries it."""


def _execute(shot_file: str, stage: str, frames: str | None, device: str, threads: int, deterministic: bool,
             *after: tuple[str, int, float]) -> tuple[str, int, float]:
    """Run one task in this worker (Ray calls it); returns (task id, exit code, seconds)."""
    from vfx.errors import VfxError
    from vfx.farm.graph import task_id
    from vfx.farm.task import TaskOptions, run_task
    from vfx.shot.frames import FrameRange

    chunk = FrameRange.parse(frames) if frames else None
    ident = task_id(stage, chunk)
    if any(code != 0 for _, code, _ in after):
        return ident, _SKIPPED, 0.0
    started = time.perf_counter()
    try:
        run_task(shot_file, stage, chunk, cache=_WORKER_CACHE,
                 options=TaskOptions(device=device, threads=threads, deterministic=deterministic))
    except VfxError as err:
        if err.exit_code == 2:
            return ident, 2, time.perf_counter() - started
        raise TaskFailed(str(err)) from None
    except Exception as err:
        raise TaskFailed(f"{type(err).__name__}: {err}") from None
    return ident, 0, time.perf_counter() - started


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("The Ray engine needs the ray package", expected="ray installed",
                          found="no module named ray", fix="pip install 'vfx[ray]', or use --engine local") from None
    return ray


def run_ray(graph: TaskGraph, *, address: str | None = None, num_cpus: int | None = None, retries: int = 2,
            deterministic: bool = False, report: Callable[[str], None] | None = None,
            shutdown: bool | None = None, init_options: dict[str, Any] | None = None) -> EngineSummary:
    """Run every task of ``graph`` not done yet on Ray and wait for them.

    Args:
        address: a running cluster (``host:port``, ``auto``); None starts a local one (``num_cpus`` cores).
        retries: further attempts of a failed or lost task (bad input is never retried).
        deterministic: tasks run with deterministic algorithms.
        report: called with one line per finished task.
        shutdown: disconnect from Ray at the end (default: when this call connected).
        init_options: more ``ray.init`` arguments (a local cluster's ``object_store_memory``, ...).
    """
    ray = _ray()
    started = time.perf_counter()
    connected_here = not ray.is_initialized()
    if connected_here:
        options = {"include_dashboard": False, "log_to_driver": False, **(init_options or {})}
        if address is not None:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=num_cpus, **options)
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        remote = ray.remote(max_retries=retries, retry_exceptions=[TaskFailed])(_execute)
        todo, done = pending_tasks(graph)
        summary = EngineSummary("ray", len(graph.tasks), skipped=[t.id for t in done])
        finished = {t.id: ray.put((t.id, 0, 0.0)) for t in done}
        refs: dict[Any, str] = {}
        for task in todo:  # graph order: every task's prerequisites are submitted before it
            gpu = task.gpu and gpus > 0
            ref = remote.options(num_cpus=1, num_gpus=1 if gpu else 0, name=task.id).remote(
                str(graph.shot_file), task.stage, None if task.frames is None else str(task.frames),
                "cuda" if gpu else "cpu", 1, deterministic, *(finished[a] for a in task.after))
            finished[task.id] = ref  # dependants get its (id, code, seconds) and skip unless the code is 0
            refs[ref] = task.id
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            ident = refs[ready[0]]
            try:
                _, code, seconds = ray.get(ready[0])
            except Exception as err:  # retries spent (or a task it waits for spent them)
                log.error("task %s failed: %s", ident, str(err).splitlines()[0] if str(err) else err)
                code, seconds = 1, 0.0
            if code == _SKIPPED:
                summary.not_run.append(ident)
                continue
            record = read_record(graph.folder / f"{ident}.json")  # its attempts, Ray's retries included
            reason = "" if code == 0 else (record.message if record is not None and record.message else
                                           "no reason recorded (a lost worker?); see the Ray logs")
            summary.ran.append(TaskResult(ident, code, seconds, record.attempt if record is not None else 1, reason))
            if report is not None:
                report(f"[{len(summary.ran) + len(summary.skipped)}/{len(graph.tasks)}] {ident} "
                       f"{'done' if code == 0 else f'FAILED (exit {code})'} in {seconds:.1f} s"
                       + (f": {reason}" if code else ""))
    finally:
        if shutdown if shutdown is not None else connected_here:
            ray.shutdown()
    summary.seconds = time.perf_counter() - started
    return summary

