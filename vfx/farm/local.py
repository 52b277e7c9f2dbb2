"""The local engine (the default): a shot's task graph on one machine, each task a ``vfx task run`` process.

Running the very command a farm runs (a subprocess each, not a function call) keeps a task's failure, its
memory and its exit code its own, and makes a local run the test of what the farm will do. Tasks start when
every task they wait for is done, at most ``workers`` at once, GPU tasks at most one per GPU (each process
sees only its GPU through ``CUDA_VISIBLE_DEVICES``). Each task gets ``cores / workers`` CPU threads, so two
tasks on two cores do not fight over them.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vfx.farm.graph import Task, TaskGraph
from vfx.farm.task import read_record

__all__ = ["EngineSummary", "TaskResult", "pending_tasks", "run_local", "task_command"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskResult:
    task: str
    exit_code: int
    seconds: float
    attempts: int


@dataclass
class EngineSummary:
    """What an engine run did (``vfx farm run`` prints it)."""

    engine: str
    tasks: int
    ran: list[TaskResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[TaskResult]:
        return [r for r in self.ran if r.exit_code != 0]

    @property
    def exit_code(self) -> int:
        """0 all done, 2 when a task met bad input (do not retry), else 1."""
        codes = {r.exit_code for r in self.failed}
        return 0 if not codes and not self.not_run else 2 if 2 in codes else 1

    def describe(self) -> str:
        lines = [f"{self.engine} engine: {self.tasks} tasks, ran {len(self.ran)}, already done {len(self.skipped)}, "
                 f"{self.seconds:.1f} s"]
        lines += [f"  FAILED {r.task} (exit {r.exit_code} after {r.attempts} attempt(s)); see its log" for r in self.failed]
        if self.not_run:
            lines.append(f"  not run (waiting on failed tasks): {', '.join(self.not_run)}")
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


def run_local(graph: TaskGraph, *, workers: int | None = None, gpus: int | None = None, retries: int = 2,
              deterministic: bool = False, report: Callable[[str], None] | None = None,
              poll_s: float = 0.2) -> EngineSummary:
    """Run every task of ``graph`` not done yet, respecting dependencies, and wait for them.

    Args:
        workers: tasks at once (default: one per CPU core).
        gpus: GPUs to use (default: every visible one); GPU stages run on them, one task per GPU.
        retries: further attempts of a task that failed (exit 1); bad input (exit 2) is never retried.
        deterministic: tasks run with deterministic algorithms (bit-identical frames however the shot is cut).
        report: called with one line per finished task.
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
            process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        running[task.id] = (process, task, time.perf_counter(), attempts[task.id], taken)

    try:
        while waiting or running:
            for ident, (process, task, since, attempt, taken) in list(running.items()):
                code = process.poll()
                if code is None:
                    continue
                del running[ident]
                free_gpus.extend(taken)
                if code == 0:
                    done.add(ident)
                elif code != 2 and attempt <= retries:
                    log.warning("task %s failed (exit %d); retrying", ident, code)
                    waiting.insert(0, task)
                    continue
                else:
                    failed.add(ident)
                result = TaskResult(ident, code, time.perf_counter() - since, attempt)
                summary.ran.append(result)
                if report is not None:
                    report(f"[{len(done) + len(failed)}/{len(graph.tasks)}] {ident} "
                           f"{'done' if code == 0 else f'FAILED (exit {code})'} in {result.seconds:.1f} s")
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
    except BaseException:
        for process, *_ in running.values():
            process.kill()
        raise
    summary.seconds = time.perf_counter() - started
    return summary

