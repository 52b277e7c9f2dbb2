"""The one task command every engine runs: ``vfx task run SHOT --stage swap --frames 1001-1010``.

A task is idempotent: its stage skips what is already written (outputs are written atomically, so a file
that exists is complete), removes the temporary files a killed attempt left of its own outputs, and records
its state in a small JSON file, ``<shot>_farm/<task>.json``, that ``vfx farm status`` reads. A lock file
beside it keeps two attempts of one task from running at once; the running attempt touches it every few
seconds, so a lock left by a killed run is recognised (its process is gone on this host, or its heartbeat
is old) and taken over.

Exit codes, as farm managers expect: 0 done, 2 bad input (do not retry), 1 failure (retry).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

from vfx.errors import ConfigError, MediaError, VfxError
from vfx.farm.graph import STAGES, farm_folder, task_id
from vfx.shot.file import load_shot
from vfx.shot.frames import FrameRange
from vfx.utils.stamped import read_stamped, write_stamped

__all__ = [
    "PROGRESS_FORMATS",
    "RECORD_SCHEMA",
    "TaskBusyError",
    "TaskLock",
    "TaskRecord",
    "read_record",
    "read_records",
    "run_task",
]

log = logging.getLogger(__name__)

RECORD_SCHEMA = "vfx.TaskRecord/1"
HEARTBEAT_S = 5.0
"""How often a running task touches its lock and reports progress."""
STALE_AFTER_S = 120.0
"""A lock untouched this long belongs to a dead attempt (on another host, where its process cannot be checked)."""
PROGRESS_FORMATS = ("alf", "openjd", "json")
"""Progress lines: ``ALF_PROGRESS 40%`` (Tractor, and the regex Deadline plugins use), ``openjd_progress: 40``
(Open Job Description), or JSON lines."""

State = Literal["running", "done", "failed", "bad_input"]


class TaskBusyError(VfxError):
    """Another live attempt holds the task's lock: retry later (exit 1)."""

    exit_code = 1


@dataclass
class TaskRecord:
    """What ``<shot>_farm/<task>.json`` holds (schema ``vfx.TaskRecord/1``)."""

    task: str
    stage: str
    frames: str | None
    state: State
    host: str
    pid: int
    attempt: int
    started: float
    finished: float | None = None
    frames_total: int = 0
    frames_done: int = 0
    frames_skipped: int = 0
    exit_code: int | None = None
    message: str = ""
    shot_hash: str = ""
    schema: str = RECORD_SCHEMA

    @property
    def alive(self) -> bool:
        """False for a ``running`` record whose process is gone (a killed attempt): only checkable on its host."""
        if self.state != "running":
            return False
        return self.host != socket.gethostname() or _pid_alive(self.pid)

    def write(self, path: Path) -> None:
        write_stamped(path, RECORD_SCHEMA, asdict(self))


def read_record(path: Path) -> TaskRecord | None:
    """A task record, or None when there is none (or it is unreadable: it is rewritten by the next attempt)."""
    try:
        data = read_stamped(path, RECORD_SCHEMA, what="task record")
    except MediaError:
        return None
    try:
        return TaskRecord(**data)
    except TypeError:
        return None


def read_records(folder: Path) -> dict[str, TaskRecord]:
    """Every task record in a shot's farm folder, by task id."""
    records = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        record = read_record(path)
        if record is not None:
            records[record.task] = record
    return records


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) still answers; it runs nothing.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


class TaskLock:
    """An exclusive lock file (``O_CREAT | O_EXCL``) naming its holder's host and process, with a heartbeat."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.held = False

    def acquire(self) -> None:
        """Take the lock, taking over a stale one.

        Raises:
            TaskBusyError: a live attempt holds it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and not self._stale(owner):
                    raise TaskBusyError(f"Task lock {self.path} is held", expected="no other attempt of this task "
                                        "running", found=f"process {owner.get('pid')} on {owner.get('host')}",
                                        fix="wait for it (a farm retries); a lock of a killed run is taken over by "
                                        f"itself after {STALE_AFTER_S:.0f} s") from None
                log.warning("taking over the stale lock %s (%s)", self.path, owner or "unreadable")
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}, handle)
            self.held = True
            return
        raise TaskBusyError(f"Cannot take the task lock {self.path}", expected="a lock file this process can create",
                            found="it reappeared three times", fix="retry")

    def _owner(self) -> dict[str, object] | None:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            return None  # written by a process killed between create and write: stale if old

    def _stale(self, owner: dict[str, object]) -> bool:
        try:
            age = time.time() - self.path.stat().st_mtime
        except OSError:
            return True
        if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
            return not _pid_alive(owner["pid"])  # type: ignore[arg-type]
        return age > STALE_AFTER_S

    def heartbeat(self) -> None:
        if self.held:
            try:
                os.utime(self.path)
            except OSError:
                pass

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


@dataclass
class TaskOptions:
    """How one task runs (the engines and the CLI fill it in)."""

    device: str = "cpu"
    threads: int | None = None
    """CPU threads for torch (None: torch's default). Engines give each of N concurrent tasks cores / N."""
    deterministic: bool = False
    progress: str = "alf"
    stream: object = field(default=None, repr=False)
    """Where progress lines go (default: stdout)."""


def run_task(shot_file: str | Path, stage: str, frames: FrameRange | None = None, *,
             options: TaskOptions | None = None, cache: dict[object, object] | None = None) -> TaskRecord:
    """Run one task, record it, and return its record (``state`` done; errors propagate after recording).

    Args:
        shot_file: the shot file.
        stage: one of :data:`vfx.farm.graph.STAGES`.
        frames: the chunk, for a chunked stage (default: the whole shot); None for the others.
        options: device, threads, determinism, progress format.
        cache: models kept between tasks run by one process (a Ray worker); None: loaded per task.

    Raises:
        VfxError: bad input (exit 2): a shot that does not validate, an unknown stage, frames outside the
            plate, frames for a stage that takes none. Recorded as ``bad_input`` where a record can be written.
        TaskBusyError: another live attempt holds the task (exit 1).
        Exception: a failure (exit 1), recorded as ``failed``.
    """
    from vfx.farm.stages import StageContext, run_stage

    options = options or TaskOptions()
    if options.progress not in PROGRESS_FORMATS:
        raise ConfigError(f"Unknown progress format {options.progress!r}", expected=", ".join(PROGRESS_FORMATS))
    if stage not in STAGES:
        raise ConfigError(f"Unknown stage {stage!r}", expected=f"one of {', '.join(STAGES)}", found=stage)
    shot = load_shot(shot_file)
    if frames is not None and not STAGES[stage].chunked:
        raise ConfigError(f"Stage {stage!r} runs once for the whole shot", expected="no --frames",
                          found=f"--frames {frames}")
    training = shot.model.training if shot.model is not None else None
    if stage == "train" and training is not None and training.gpus > 1 and "RANK" not in os.environ:
        from vfx.farm.stages import check_training

        check_training(shot)  # bad input exits 2 here: torchrun reports every failure of its processes as 1
        return _torchrun(shot_file, training.gpus, options)
    _configure_torch(options)
    context = StageContext(shot=shot, shot_file=Path(shot_file).absolute(), stage=stage, frames=frames,
                           device=options.device, threads=options.threads or 1, cache=cache)
    if int(os.environ.get("RANK", "0")) != 0:  # a torchrun process other than the first: process 0 records
        outcome = run_stage(context)
        return TaskRecord(task=task_id(stage, frames), stage=stage, frames=None if frames is None else str(frames),
                          state="done", host=socket.gethostname(), pid=os.getpid(), attempt=1, started=time.time(),
                          message=outcome.message)
    folder = farm_folder(shot)
    ident = task_id(stage, frames)
    lock = TaskLock(folder / f"{ident}.lock")
    record_file = folder / f"{ident}.json"
    lock.acquire()
    previous = read_record(record_file)
    record = TaskRecord(task=ident, stage=stage, frames=None if frames is None else str(frames), state="running",
                        host=socket.gethostname(), pid=os.getpid(), attempt=(previous.attempt + 1) if previous else 1,
                        started=time.time(), shot_hash=shot.content_hash())
    reporter = _Progress(options.progress, options.stream or sys.stdout, ident)
    try:
        record.write(record_file)
        with _heartbeat(lock, context, reporter):
            outcome = run_stage(context)
        record = replace(record, state="done", finished=time.time(), exit_code=0, frames_total=outcome.total,
                         frames_done=outcome.done, frames_skipped=outcome.skipped, message=outcome.message)
        record.write(record_file)
        reporter.report(outcome.total, outcome.total, force=True)
        return record
    except BaseException as err:
        code = err.exit_code if isinstance(err, VfxError) else 1
        state: State = "bad_input" if code == 2 else "failed"
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            state, code = "failed", 1
        record = replace(record, state=state, finished=time.time(), exit_code=code,
                         message=str(err).splitlines()[0][:500] if str(err) else type(err).__name__)
        record.write(record_file)
        raise
    finally:
        lock.release()


class _LaunchFailed(VfxError):
    """torchrun's processes failed; carries their exit code (2: bad input, else a failure)."""


def _torchrun(shot_file: str | Path, gpus: int, options: TaskOptions) -> TaskRecord:
    """Run this train task again under torchrun, one process per GPU of the node; its first process locks
    and records the task. Every engine and farm manager thus gets multi-GPU training from the one command.
    (On the CPU, for tests, the processes share the cores through gloo.)"""
    import subprocess

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}", "-m",
               "vfx", "task", "run", str(shot_file), "--stage", "train", "--device", options.device,
               "--progress", options.progress, *(["--threads", str(options.threads)] if options.threads else []),
               *(["--deterministic"] if options.deterministic else [])]
    code = subprocess.call(command)
    if code != 0:
        error = _LaunchFailed(f"torchrun of the train task exited {code}", expected="exit 0",
                              fix="see the log lines above from its processes")
        error.exit_code = 2 if code == 2 else 1
        raise error
    record = read_record(farm_folder(load_shot(shot_file)) / "train.json")
    if record is None:
        raise _LaunchFailed("The train task left no record", expected="train.json written by torchrun's process 0")
    return record


def _configure_torch(options: TaskOptions) -> None:
    import torch

    if options.threads:
        torch.set_num_threads(options.threads)
    if options.deterministic:
        # cuBLAS needs a fixed workspace for deterministic GEMMs; set before CUDA starts.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


class _Progress:
    """Progress lines a farm manager parses, written only when the percentage changes."""

    def __init__(self, fmt: str, stream: object, ident: str) -> None:
        self.fmt, self.stream, self.ident = fmt, stream, ident
        self.last = -1

    def report(self, done: int, total: int, *, force: bool = False) -> None:
        percent = 100 if total <= 0 else min(100, 100 * done // total)
        if percent == self.last and not force:
            return
        self.last = percent
        if self.fmt == "openjd":
            line = f"openjd_progress: {percent}"
        elif self.fmt == "json":
            line = json.dumps({"task": self.ident, "done": done, "total": total, "progress": percent})
        else:
            line = f"ALF_PROGRESS {percent}%"
        self.stream.write(line + "\n")  # type: ignore[attr-defined]
        self.stream.flush()  # type: ignore[attr-defined]


@contextmanager
def _heartbeat(lock: TaskLock, context: object, reporter: _Progress) -> Iterator[None]:
    """Touch the lock and report progress (frames on disk) every few seconds while the stage runs."""
    from vfx.farm.stages import count_done

    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            lock.heartbeat()
            try:
                counts = count_done(context)  # type: ignore[arg-type]
            except Exception:  # a progress count must never fail the task
                continue
            if counts is not None:
                reporter.report(*counts)

    thread = threading.Thread(target=beat, name="vfx-task-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()

