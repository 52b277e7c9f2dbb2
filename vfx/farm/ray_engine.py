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

import json
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from vfx.errors import ConfigError
from vfx.farm.graph import TaskGraph
from vfx.farm.local import EngineSummary, TaskResult, pending_tasks, signals_to
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
        stop: list[int] = []
        with signals_to(stop):
            while pending and not stop:
                ready, pending = ray.wait(pending, num_returns=1, timeout=0.2)
                if ready:
                    _finished(ray, graph, summary, refs[ready[0]], ready[0], report)
            if stop:
                _stop(ray, graph, summary, pending, refs, stop[0], report)
    finally:
        if shutdown if shutdown is not None else connected_here:
            ray.shutdown()
    summary.seconds = time.perf_counter() - started
    return summary


def _finished(ray: Any, graph: TaskGraph, summary: EngineSummary, ident: str, ref: Any,
              report: Callable[[str], None] | None) -> None:
    """Take in one finished task: its exit code, its reason when it failed, a report line."""
    try:
        _, code, seconds = ray.get(ref)
    except Exception as err:  # retries spent (or a task it waits for spent them)
        log.error("task %s failed: %s", ident, str(err).splitlines()[0] if str(err) else err)
        code, seconds = 1, 0.0
    if code == _SKIPPED:
        summary.not_run.append(ident)
        return
    record = read_record(graph.folder / f"{ident}.json")  # its attempts, Ray's retries included
    reason = "" if code == 0 else (record.message if record is not None and record.message else
                                   "no reason recorded (a lost worker?); see the Ray logs")
    summary.ran.append(TaskResult(ident, code, seconds, record.attempt if record is not None else 1, reason))
    if report is not None:
        report(f"[{len(summary.ran) + len(summary.skipped)}/{len(graph.tasks)}] {ident} "
               f"{'done' if code == 0 else f'FAILED (exit {code})'} in {seconds:.1f} s" + (f": {reason}" if code else ""))


def _stop(ray: Any, graph: TaskGraph, summary: EngineSummary, pending: list[Any], refs: dict[Any, str], signum: int,
          report: Callable[[str], None] | None) -> None:
    """A farm manager's SIGTERM (or a Ctrl-C): cancel every task not finished (a running one's worker process is
    killed, with what it started), record the tasks that had started as ``killed``, and say so in ``summary``."""
    name = signal.Signals(signum).name
    log.warning("%s: cancelling %d unfinished task(s)", name, len(pending))
    for ref in pending:
        try:
            ray.cancel(ref, force=True, recursive=True)
        except Exception as err:  # already finished, or its worker already gone
            log.debug("cancel %s: %s", refs[ref], err)
    summary.stopped_by = signum
    for ref in pending:
        ident = refs[ref]
        path = graph.folder / f"{ident}.json"
        record = read_record(path)
        if record is None or record.state != "running":
            summary.not_run.append(ident)  # cancelled before it started (or it finished as the signal came)
            continue
        code = 128 + signum
        message = f"stopped by {name} (forwarded by vfx farm run --engine ray): its run was cancelled; a rerun redoes it"
        replace(record, state="killed", finished=time.time(), exit_code=code, message=message).write(path)
        _release_lock(graph.folder / f"{ident}.lock", record.pid, record.host)
        summary.killed.append(TaskResult(ident, code, time.time() - record.started, record.attempt, message))
        if report is not None:
            report(f"  {ident} killed ({name})")


def _release_lock(lock: Path, pid: int, host: str) -> None:
    """Remove a task's lock when the killed attempt ``pid`` on ``host`` holds it."""
    try:
        owner = json.loads(lock.read_text())
    except (OSError, ValueError):
        return
    if isinstance(owner, dict) and owner.get("pid") == pid and owner.get("host") == host:
        lock.unlink(missing_ok=True)
