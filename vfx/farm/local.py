"""The local engine (the default): a shot's task graph on one machine, each task a ``vfx task run`` process.

Running the very command a farm runs (a subprocess each, not a function call) keeps a task's failure, its
memory and its exit code its own, and makes a local run the test of what the farm will do. Tasks start when
every task they wait for is done, at most ``workers`` at once, GPU tasks at most one per GPU (each process
sees only its GPU through ``CUDA_VISIBLE_DEVICES``). Each task gets ``cores / workers`` CPU threads, so two
tasks on two cores do not fight over them.

Under a farm manager's signals: each task runs in a process group of its own, so SIGTERM or SIGINT to the
runner (how a manager cancels a job; Ctrl-C) is forwarded by it to every running task's whole group (the
task and whatever it started: the plate's extraction workers, ffmpeg). The runner waits up to
:data:`GRACE_S` for them to stop (a task finishes the frame it is writing, records itself ``killed``, exits
128 + the signal's number), SIGKILLs the group of any still there, records each as ``killed``, starts
nothing more and returns a summary whose exit code is 128 + the signal's number (143 for SIGTERM, 130 for
SIGINT). A second signal during the wait SIGKILLs at once. Should the runner itself be killed outright
(SIGKILL, out of memory), the kernel sends each task SIGTERM (Linux's parent-death signal), so no task runs
on unsupervised; a later run or ``vfx farm status`` finds them recorded ``killed``.

A failed task's one-line reason (the error its record holds, else the ``vfx: error:`` line of its log) is
in its report line and in the summary.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from vfx.farm.graph import Task, TaskGraph
from vfx.farm.task import TaskRecord, read_record

__all__ = ["GRACE_S", "EngineSummary", "TaskResult", "pending_tasks", "run_local", "signals_to", "task_command"]

log = logging.getLogger(__name__)

GRACE_S = 10.0
"""How long the runner waits for its tasks to stop after forwarding a signal, before it SIGKILLs them."""
LOG_TAIL_BYTES = 16 * 1024


@dataclass(frozen=True)
class TaskResult:
    task: str
    exit_code: int
    seconds: float
    attempts: int
    reason: str = ""
    """Why it failed, in one line (its record's message; else its log's ``vfx: error:`` line); empty when done."""
    log: str = ""
    """Its log file, when the engine keeps one."""


@dataclass
class EngineSummary:
    """What an engine run did (``vfx farm run`` prints it)."""

    engine: str
    tasks: int
    ran: list[TaskResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stopped_by: int | None = None
    """The signal (SIGTERM, SIGINT) that stopped the run, or None."""
    killed: list[TaskResult] = field(default_factory=list)
    """The tasks that were running when it came, stopped and recorded ``killed``."""

    @property
    def failed(self) -> list[TaskResult]:
        return [r for r in self.ran if r.exit_code != 0]

    @property
    def exit_code(self) -> int:
        """0 all done; 128 + the signal's number when a signal stopped the run (143: SIGTERM); 2 when a task
        met bad input (do not retry); else 1."""
        if self.stopped_by is not None:
            return 128 + int(self.stopped_by)
        codes = {r.exit_code for r in self.failed}
        return 0 if not codes and not self.not_run else 2 if 2 in codes else 1

    def describe(self) -> str:
        lines = [f"{self.engine} engine: {self.tasks} tasks, ran {len(self.ran)}, already done {len(self.skipped)}, "
                 f"{self.seconds:.1f} s"]
        for r in self.failed:
            where = f"; log: {r.log}" if r.log else ""
            lines.append(f"  FAILED {r.task} (exit {r.exit_code} after {r.attempts} attempt(s)): "
                         f"{r.reason or 'no reason recorded, see its log'}{where}")
        if self.stopped_by is not None:
            name = signal.Signals(self.stopped_by).name
            killed = ", ".join(r.task for r in self.killed) or "none"
            lines.append(f"  stopped by {name}: tasks killed (recorded as killed, a rerun redoes them): {killed}")
        if self.not_run:
            why = "the run was stopped" if self.stopped_by is not None else "waiting on failed tasks"
            lines.append(f"  not run ({why}): {', '.join(self.not_run)}")
        return "\n".join(lines)


def task_command(graph: TaskGraph, task: Task, *, device: str, threads: int, deterministic: bool,
                 python: str | None = None) -> list[str]:
    """The ``vfx task run`` command line of ``task``, through this Python (``python -m vfx``). (A train task on
    several GPUs starts torchrun itself.)"""
    command = [python or sys.executable, "-m", "vfx", *task.args(graph.shot_file), "--device", device,
               "--threads", str(threads)]
    return command + (["--deterministic"] if deterministic else [])


def pending_tasks(graph: TaskGraph) -> tuple[list[Task], list[Task]]:
    """(tasks to run, tasks already done): done means a ``done`` record of this very shot (its content hash),
    so an edited shot file renders again."""
    shot_hash = graph.shot.content_hash()
    todo, done = [], []
    for task in graph.tasks:
        record = read_record(graph.folder / f"{task.id}.json")
        (done if record is not None and record.state == "done" and record.shot_hash == shot_hash else todo).append(task)
    return todo, done


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken CUDA install: run on the CPU
        return 0


def _gpus_wanted(graph: TaskGraph, task: Task) -> int:
    """GPUs a task runs on when there are GPUs: 0 for CPU stages, the training's ``gpus`` for train, else 1."""
    if not task.gpu:
        return 0
    training = graph.shot.model.training if graph.shot.model is not None else None
    return training.gpus if task.stage == "train" and training is not None else 1


def _log_reason(path: Path) -> str:
    """The last ``vfx: error:`` line of a task's log (its error, when it could not record it), else ''."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    for line in reversed(tail.splitlines()):
        if line.startswith("vfx: error: "):
            return line[len("vfx: error: "):].strip()[:500]
        if line.startswith("vfx: internal error"):
            return line[len("vfx: "):].strip()[:500]
    return ""


def _reason(graph: TaskGraph, ident: str, pid: int, log_file: Path) -> str:
    record = read_record(graph.folder / f"{ident}.json")
    if record is not None and record.pid == pid and record.state != "running" and record.message:
        return record.message
    return _log_reason(log_file) or (record.message if record is not None and record.pid == pid else "")


@contextmanager
def signals_to(stop: list[int]) -> Iterator[None]:
    """SIGTERM and SIGINT append themselves to ``stop`` (the run loop acts on them) instead of ending the
    process; only in the main thread (elsewhere Python cannot take signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = (signal.SIGTERM, signal.SIGINT)
    previous = {s: signal.signal(s, lambda signum, frame: stop.append(signum)) for s in wanted}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


_PR_SET_PDEATHSIG = 1
_libc: object | None = None


def _orphan_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send the task SIGTERM when the runner dies, however it dies (kill
    -9 included): a task never runs on unsupervised (Linux; elsewhere None)."""
    global _libc
    if not sys.platform.startswith("linux"):
        return None
    if _libc is None:
        import ctypes

        try:
            _libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            return None
    prctl = _libc.prctl  # type: ignore[attr-defined]

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return preexec


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)  # the task is its group's leader: its group id is its pid
    except (ProcessLookupError, PermissionError):
        pass


def _stop_tasks(processes: list[subprocess.Popen[bytes]], signum: int, grace_s: float, stop: list[int]) -> None:
    """Forward ``signum`` to each task's process group, wait up to ``grace_s`` for them to end (a second
    signal cuts the wait short), SIGKILL the groups still there, and reap; then SIGKILL whatever a task left
    running in its group (a child that ignored the signal)."""
    signalled = len(stop)
    for process in processes:
        if process.poll() is None:
            _signal_group(process.pid, signum)
    deadline = time.monotonic() + grace_s
    while any(p.poll() is None for p in processes) and time.monotonic() < deadline and len(stop) == signalled:
        time.sleep(0.05)
    for process in processes:
        if process.poll() is None:
            log.warning("task process %d did not stop within %.0f s; killing it", process.pid, grace_s)
            _signal_group(process.pid, signal.SIGKILL)
        process.wait()
        _signal_group(process.pid, signal.SIGKILL)  # its group's survivors, if any


def _record_killed(graph: TaskGraph, task: Task, process: subprocess.Popen[bytes], attempt: int, started: float,
                   signum: int) -> TaskResult:
    """Record a task the runner stopped as ``killed`` (unless it recorded itself, or finished first), and
    remove its lock when its stopped process still holds it."""
    path = graph.folder / f"{task.id}.json"
    record = read_record(path)
    code = 128 + signum
    name = signal.Signals(signum).name
    message = f"stopped by {name} (forwarded by vfx farm run): its run was cancelled; a rerun redoes it"
    if record is not None and record.pid == process.pid and record.state in ("done", "killed"):
        code = 0 if record.state == "done" else code
    elif record is not None and record.pid == process.pid:
        replace(record, state="killed", finished=time.time(), exit_code=code, message=message).write(path)
    else:  # stopped before it wrote its record
        TaskRecord(task=task.id, stage=task.stage, frames=None if task.frames is None else str(task.frames),
                   state="killed", host=socket.gethostname(), pid=process.pid, attempt=attempt, started=started,
                   finished=time.time(), exit_code=code, message=message,
                   shot_hash=graph.shot.content_hash()).write(path)
    lock = graph.folder / f"{task.id}.lock"
    try:
        owner = json.loads(lock.read_text())
        if isinstance(owner, dict) and owner.get("pid") == process.pid and owner.get("host") == socket.gethostname():
            lock.unlink(missing_ok=True)
    except (OSError, ValueError):
        pass
    record = read_record(path)
    return TaskResult(task.id, code, time.time() - started, attempt, record.message if record is not None else message,
                      str(graph.folder / "logs" / f"{task.id}.log"))


def run_local(graph: TaskGraph, *, workers: int | None = None, gpus: int | None = None, retries: int = 2,
              deterministic: bool = False, report: Callable[[str], None] | None = None,
              poll_s: float = 0.2, grace_s: float = GRACE_S) -> EngineSummary:
    """Run every task of ``graph`` not done yet, respecting dependencies, and wait for them.

    Args:
        workers: tasks at once (default: one per CPU core).
        gpus: GPUs to use (default: every visible one); GPU stages run on them, one task per GPU.
        retries: further attempts of a task that failed (exit 1); bad input (exit 2) is never retried.
        deterministic: tasks run with deterministic algorithms (bit-identical frames however the shot is cut).
        report: called with one line per finished task (and per retry), a failure's reason included.
        grace_s: after SIGTERM / SIGINT, how long the tasks get to stop before they are SIGKILLed.

    SIGTERM or SIGINT (in the main thread) stops the run: see the module's notes; the summary's
    ``stopped_by`` and ``killed`` say so and its exit code is 128 + the signal's number.
    """
    started = time.perf_counter()
    cores = os.cpu_count() or 1
    workers = max(1, workers or cores)
    gpus = _gpu_count() if gpus is None else gpus
    threads = max(1, cores // workers)
    todo, done_tasks = pending_tasks(graph)
    summary = EngineSummary("local", len(graph.tasks), skipped=[t.id for t in done_tasks])
    done = {t.id for t in done_tasks}
    failed: set[str] = set()
    waiting = list(todo)
    running: dict[str, tuple[subprocess.Popen[bytes], Task, float, int, list[int]]] = {}
    wall_started: dict[str, float] = {}
    stop: list[int] = []
    orphan_signal = _orphan_signal()
    attempts: dict[str, int] = {}
    free_gpus = list(range(gpus))
    logs = graph.folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def start(task: Task) -> None:
        wanted = _gpus_wanted(graph, task) if free_gpus else 0
        taken = [free_gpus.pop(0) for _ in range(min(wanted, len(free_gpus)))]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), VFX_NO_PROGRESS="1")
        if taken or gpus:  # a CPU task sees no GPU, so it cannot grab one another task holds
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, taken))
        command = task_command(graph, task, device="cuda" if taken else "cpu", threads=threads,
                               deterministic=deterministic)
        attempts[task.id] = attempts.get(task.id, 0) + 1
        with (logs / f"{task.id}.log").open("ab") as handle:
            handle.write(f"\n=== attempt {attempts[task.id]}: {' '.join(command)}\n".encode())
            # A group of its own: the runner's signals reach the task only through the runner, and a
            # forwarded one reaches everything the task started.
            process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                       start_new_session=True, preexec_fn=orphan_signal)
        running[task.id] = (process, task, time.perf_counter(), attempts[task.id], taken)
        wall_started[task.id] = time.time()

    try:
        with signals_to(stop):
            while (waiting or running) and not stop:
                for ident, (process, task, since, attempt, taken) in list(running.items()):
                    code = process.poll()
                    if code is None:
                        continue
                    del running[ident]
                    free_gpus.extend(taken)
                    log_file = logs / f"{ident}.log"
                    reason = "" if code == 0 else _reason(graph, ident, process.pid, log_file)
                    if code == 0:
                        done.add(ident)
                    elif code != 2 and attempt <= retries:
                        log.warning("task %s failed (exit %d): %s; retrying", ident, code, reason or "see its log")
                        if report is not None:
                            report(f"  {ident} failed (exit {code}): {reason or 'see its log'}; retrying "
                                   f"(attempt {attempt + 1} of {retries + 1})")
                        waiting.insert(0, task)
                        continue
                    else:
                        failed.add(ident)
                    result = TaskResult(ident, code, time.perf_counter() - since, attempt, reason,
                                        "" if code == 0 else str(log_file))
                    summary.ran.append(result)
                    if report is not None:
                        line = (f"[{len(done) + len(failed)}/{len(graph.tasks)}] {ident} "
                                f"{'done' if code == 0 else f'FAILED (exit {code})'} in {result.seconds:.1f} s")
                        report(line + (f": {reason or 'see its log'} (log: {log_file})" if code else ""))
                if stop:
                    break
                if failed:  # stop starting work; let what runs finish
                    summary.not_run = [t.id for t in waiting]
                    waiting = []
                for task in list(waiting):
                    if len(running) >= workers:
                        break
                    if not all(a in done for a in task.after):
                        continue
                    if min(_gpus_wanted(graph, task), gpus) > len(free_gpus):
                        continue  # wait for its GPU(s)
                    waiting.remove(task)
                    start(task)
                time.sleep(poll_s)
            if stop:
                signum = stop[0]
                log.warning("%s: stopping %d running task(s)", signal.Signals(signum).name, len(running))
                _stop_tasks([p for p, *_ in running.values()], signum, grace_s, stop)
                for ident, (process, task, _, attempt, _) in running.items():
                    result = _record_killed(graph, task, process, attempt, wall_started[ident], signum)
                    (summary.ran if result.exit_code == 0 else summary.killed).append(result)
                    if report is not None:
                        report(f"  {ident} {'done' if result.exit_code == 0 else 'killed'} "
                               f"({signal.Signals(signum).name})")
                running = {}
                summary.stopped_by = signum
                summary.not_run = summary.not_run + [t.id for t in waiting]
    except BaseException:
        processes = [p for p, *_ in running.values()]
        for process in processes:
            _signal_group(process.pid, signal.SIGKILL)
        for process in processes:
            process.wait()
        raise
    summary.seconds = time.perf_counter() - started
    return summary

