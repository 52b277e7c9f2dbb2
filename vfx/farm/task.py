"""The one task command every engine runs: ``vfx task run SHOT --stage swap --frames 1001-1010``.

A task is idempotent: its stage skips what is already written (outputs are written atomically, so a file
that exists is complete), removes the temporary files a killed attempt left of its own outputs, and records
its state in a small JSON file, ``<shot>_farm/<task>.json``, that ``vfx farm status`` reads. A lock file
beside it keeps two attempts of one task from running at once; the running attempt touches it every few
seconds, so a lock left by a killed run is recognised (its process is gone on this host, or its heartbeat
is old) and taken over.

A task refuses to start before the stages it reads are done (``--stage swap`` before ``--stage track``):
bad input, exit 2, naming the stage to run first. Under ``vfx task run`` a SIGTERM or SIGINT (a farm manager
cancelling the job, or ``vfx farm run`` forwarding its own) stops the task cleanly: the frame being written is
finished (writes are atomic), the lock is released, the record says ``killed``, and the exit code is 128 plus
the signal's number (143 for SIGTERM, 130 for SIGINT).

Records are read back validated (:func:`load_record`): a corrupt, foreign or oversized record is a
:class:`TaskRecordError` naming the file, the field and the fix, never a traceback.

Exit codes, as farm managers expect: 0 done, 2 bad input (do not retry), 1 failure (retry), 128 + N stopped
by signal N.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
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
from vfx.shot.schema import Shot
from vfx.utils.stamped import read_stamped, write_stamped
from vfx.utils.threads import configure_torch

__all__ = [
    "PROGRESS_FORMATS",
    "RECORD_SCHEMA",
    "RECORD_MAX_BYTES",
    "STATES",
    "PrerequisiteError",
    "TaskBusyError",
    "TaskLock",
    "TaskRecord",
    "TaskRecordError",
    "TaskTerminated",
    "check_prerequisites",
    "load_record",
    "read_record",
    "read_records",
    "run_task",
    "stop_on_signals",
    "terminated_by",
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

RECORD_MAX_BYTES = 64 * 1024
"""A task record is a few hundred bytes; anything over this is not one (and is not read)."""
MESSAGE_MAX_CHARS = 2000

State = Literal["running", "done", "failed", "bad_input", "killed"]
STATES: tuple[str, ...] = ("running", "done", "failed", "bad_input", "killed")
"""``killed``: stopped by a signal (its farm run or manager cancelled it); the next run redoes it."""


class TaskBusyError(VfxError):
    """Another live attempt holds the task's lock: retry later (exit 1)."""

    exit_code = 1


class TaskRecordError(MediaError):
    """A task record that is not one: unreadable, too big, not JSON, another schema, a missing or mistyped
    field (exit 2)."""


class PrerequisiteError(ConfigError):
    """A task started before a stage it reads is done (exit 2: run that stage's task first)."""


class TaskTerminated(BaseException):
    """SIGTERM or SIGINT reached a task under :func:`stop_on_signals`: raised in the main thread, so the task's
    clean-up runs (writes in flight finish, the lock is released, the record says ``killed``)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process a signal ended (143 for SIGTERM)."""
        return 128 + self.signum


def terminated_by(err: BaseException | None) -> TaskTerminated | None:
    """The :class:`TaskTerminated` behind ``err`` (itself, or what it was raised while handling: a worker
    pool that broke as the signal reached its processes), or None."""
    for _ in range(8):
        if err is None or isinstance(err, TaskTerminated):
            return err
        err = err.__cause__ or err.__context__
    return None


@contextmanager
def stop_on_signals(signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
    """Turn the first of ``signals`` into :class:`TaskTerminated` in the main thread; later ones are ignored
    while the task cleans up (whoever sent them escalates to SIGKILL if it will not wait). Forked workers
    (the plate's face extraction) that inherit the handler end on the signal as they would without it.
    Outside the main thread (a Ray worker's task) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()

    def handler(signum: int, frame: object) -> None:
        if os.getpid() != owner:  # a forked child: the default action
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        for s in signals:
            signal.signal(s, signal.SIG_IGN)
        raise TaskTerminated(signum)

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


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


_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    # field: (JSON types it may have, required)
    "task": ((str,), True), "stage": ((str,), True), "frames": ((str, type(None)), True),
    "state": ((str,), True), "host": ((str,), True), "pid": ((int,), True), "attempt": ((int,), True),
    "started": ((int, float), True), "finished": ((int, float, type(None)), False),
    "frames_total": ((int,), False), "frames_done": ((int,), False), "frames_skipped": ((int,), False),
    "exit_code": ((int, type(None)), False), "message": ((str,), False), "shot_hash": ((str,), False),
    "schema": ((str,), False),
}


def load_record(path: Path, task: str | None = None) -> TaskRecord | None:
    """A task record, validated; None when there is none.

    Args:
        path: the record file.
        task: the task id it must be the record of (a record copied from another task's is refused).

    Raises:
        TaskRecordError: the file is not a task record (bigger than :data:`RECORD_MAX_BYTES`, not a file, not
            JSON, another schema, an unknown, missing or mistyped field, another task's): the message names
            the file, the field and the fix.
    """
    path = Path(path)
    fix = f"delete it (rm '{path}'); the task's next attempt writes a new one"

    def bad(found: str, expected: str = f"a task record (JSON, schema {RECORD_SCHEMA})") -> TaskRecordError:
        return TaskRecordError(f"Unreadable task record {path}", expected=expected, found=found, fix=fix)

    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise bad(f"{type(err).__name__}: {err.strerror or err}") from None
    if not path.is_file():
        raise bad("not a regular file")
    if info.st_size > RECORD_MAX_BYTES:
        raise bad(f"{info.st_size} bytes", expected=f"a task record of at most {RECORD_MAX_BYTES} bytes")
    try:
        data = read_stamped(path, RECORD_SCHEMA, what="task record")
    except MediaError as err:
        raise bad(err.found or err.message, expected=err.expected or RECORD_SCHEMA) from None
    except (UnicodeDecodeError, RecursionError, ValueError) as err:
        raise bad(f"{type(err).__name__}: {str(err)[:200]}") from None
    for name in data:
        if name not in _FIELDS:
            raise bad(f"an unknown field {str(name)[:80]!r}", expected=f"only the fields {', '.join(_FIELDS)}")
    for name, (types, required) in _FIELDS.items():
        if name not in data:
            if required:
                raise bad(f"no field {name!r}", expected=f"field {name!r}")
            continue
        value = data[name]
        if not isinstance(value, types) or (isinstance(value, bool)) or (
                isinstance(value, float) and not math.isfinite(value)):
            kinds = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise bad(f"field {name!r} = {str(value)[:80]!r} ({type(value).__name__})",
                      expected=f"field {name!r}: {kinds}")
    checks = {
        "state": (data["state"] in STATES, f"one of {', '.join(STATES)}"),
        "stage": (data["stage"] in STAGES, f"one of {', '.join(STAGES)}"),
        "task": (task is None or data["task"] == task, f"the record of task {task!r}"),
        "pid": (data["pid"] > 0, "a process id above 0"),
        "attempt": (data["attempt"] >= 1, "1 or more"),
        "message": (len(data.get("message", "")) <= MESSAGE_MAX_CHARS, f"at most {MESSAGE_MAX_CHARS} characters"),
    }
    checks |= {n: (data[n] >= 0, "0 or more") for n in ("frames_total", "frames_done", "frames_skipped") if n in data}
    for name, (ok, expected) in checks.items():
        if not ok:
            shown = data[name] if name != "message" else f"{len(data[name])} characters"
            raise bad(f"field {name!r} = {str(shown)[:80]!r}", expected=f"field {name!r}: {expected}")
    return TaskRecord(**data)


def read_record(path: Path) -> TaskRecord | None:
    """A task record, or None when there is none or it is not a valid one (logged; the next attempt of the
    task rewrites it). :func:`load_record` says what is wrong with it."""
    try:
        return load_record(path)
    except TaskRecordError as err:
        log.warning("%s", err)
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
        PrerequisiteError: a stage the task reads is not done (exit 2), recorded as ``bad_input``.
        TaskBusyError: another live attempt holds the task (exit 1).
        TaskTerminated: SIGTERM / SIGINT under :func:`stop_on_signals`, recorded as ``killed``.
        Exception: a failure (exit 1), recorded as ``failed``.
    """
    from vfx.farm.stages import StageContext, run_stage

    options = options or TaskOptions()
    if options.progress not in PROGRESS_FORMATS:
        raise ConfigError(f"Unknown progress format {options.progress!r}", expected=", ".join(PROGRESS_FORMATS),
                          found=repr(options.progress), fix=f"pass --progress {' or '.join(PROGRESS_FORMATS)}")
    if stage not in STAGES:
        raise ConfigError(f"Unknown stage {stage!r}", expected=f"one of {', '.join(STAGES)}", found=stage,
                          fix=f"pass --stage with one of {', '.join(STAGES)}")
    shot = load_shot(shot_file)
    if frames is not None and not STAGES[stage].chunked:
        raise ConfigError(f"Stage {stage!r} runs once for the whole shot", expected="no --frames",
                          found=f"--frames {frames}", fix="leave out --frames for this stage")
    training = shot.model.training if shot.model is not None else None
    if stage == "train" and training is not None and training.gpus > 1 and "RANK" not in os.environ:
        from vfx.farm.stages import check_training

        check_training(shot)  # bad input exits 2 here: torchrun reports every failure of its processes as 1
        return _torchrun(shot_file, training.gpus, options)
    configure_torch(threads=options.threads, deterministic=options.deterministic)
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
    try:  # a signal here must not leave the lock behind
        previous = read_record(record_file)
        record = TaskRecord(task=ident, stage=stage, frames=None if frames is None else str(frames), state="running",
                            host=socket.gethostname(), pid=os.getpid(),
                            attempt=(previous.attempt + 1) if previous else 1, started=time.time(),
                            shot_hash=shot.content_hash())
        reporter = _Progress(options.progress, options.stream or sys.stdout, ident)
    except BaseException:
        lock.release()
        raise
    try:
        record.write(record_file)
        check_prerequisites(shot, stage, frames)
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
        stopped = terminated_by(err)
        if stopped is not None:
            state, code = "killed", stopped.exit_code
            err = stopped
        elif isinstance(err, KeyboardInterrupt):
            state, code = "killed", 128 + signal.SIGINT
        elif isinstance(err, SystemExit):
            state, code = "failed", 1
        record = replace(record, state=state, finished=time.time(), exit_code=code, message=failure_reason(err))
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
                              fix="see the log lines above from its processes", found=f"exit code {code}")
        error.exit_code = 2 if code == 2 else 1
        raise error
    record = read_record(farm_folder(load_shot(shot_file)) / "train.json")
    if record is None:
        raise _LaunchFailed("The train task left no record", expected="train.json written by torchrun's process 0",
                            found="no train.json in the shot's farm folder",
                            fix="see the log lines above from torchrun's processes")
    return record


def failure_reason(err: BaseException) -> str:
    """The one line a task's record, ``vfx farm run`` and ``vfx farm status`` give for why it did not finish."""
    if isinstance(err, TaskTerminated):
        return f"{err}: its run was cancelled; a rerun redoes it"
    if isinstance(err, KeyboardInterrupt):
        return "stopped by SIGINT: its run was cancelled; a rerun redoes it"
    text = str(err).strip()
    line = text.splitlines()[0] if text else ""
    if not isinstance(err, VfxError):
        line = f"{type(err).__name__}: {line}" if line else type(err).__name__
    return line[:500]


# ---------------------------------------------------------------------------------------------- prerequisites

_SELF_MADE = ("personas", "extract", "seghead")
"""Prerequisites whose work the stage that reads them finishes itself when it is missing (train extracts the
personas' footage, track landmarks what no extract task did, edit trains the segmentation head): not checked."""


def _record_done(shot: Shot, ident: str) -> bool:
    record = read_record(farm_folder(shot) / f"{ident}.json")
    return record is not None and record.state == "done" and record.shot_hash == shot.content_hash()


def _stage_done(shot: Shot, stage: str, frames: FrameRange | None) -> bool:
    """Whether ``stage``'s outputs a later task reads are there: its task's ``done`` record for this very shot,
    or its outputs on disk (made by hand, or by a run of an earlier version of the shot file)."""
    from vfx.shot.layout import FRAME_STAGES, plate_faces_folder, plate_format_sequence, refiner_folder, stage_output

    if stage in FRAME_STAGES:
        try:
            pattern = stage_output(shot, stage)
        except ConfigError:  # a swap that writes only the plate's format
            pattern = plate_format_sequence(shot, stage)  # type: ignore[assignment]
            if pattern is None:
                return True  # nothing it writes to check: the stage that reads it says what it misses
        if frames is None:
            from vfx.io.plate import open_plate

            plate, frames = open_plate(shot.plate)
            plate.close()
        return all(pattern.path(f).is_file() for f in frames)
    if _record_done(shot, stage):
        return True
    if stage == "track":
        return (plate_faces_folder(shot) / "index.jsonl").is_file()
    if stage == "refiner":
        return (refiner_folder(shot) / "refiner.json").is_file()
    if stage == "train":
        from vfx.comb.checkpoint import latest_checkpoint, read_manifest
        from vfx.farm.stages import check_training

        plan = check_training(shot)
        newest = latest_checkpoint(plan.run)
        return newest is not None and read_manifest(newest).step >= plan.total_iterations
    return True


def check_prerequisites(shot: Shot, stage: str, frames: FrameRange | None = None) -> None:
    """Refuse a task whose stage reads a stage that is not done (``vfx task run --stage swap`` before
    ``--stage track``), by the stage chain of :mod:`vfx.shot.layout`: the prerequisites of ``stage`` among
    the stages the shot has.

    Raises:
        FrameRangeError: ``frames`` outside the plate.
        PrerequisiteError: naming the stage to run first and the command that runs it.
    """
    from vfx.shot.layout import stage_prerequisites, wanted_stages

    if frames is not None:  # frames outside the plate: that bad input first
        from vfx.io.plate import open_plate

        plate, frames = open_plate(shot.plate, frames)
        plate.close()
    for before in stage_prerequisites(stage, wanted_stages(shot)):
        if before in _SELF_MADE or _stage_done(shot, before, frames if STAGES[before].chunked else None):
            continue
        chunk = f" --frames {frames}" if frames is not None and STAGES[before].chunked else ""
        raise PrerequisiteError(
            f"The {stage} task of shot {shot.name!r} runs before its {before} stage is done",
            expected=f"the {before} stage done first (the {stage} stage reads its "
                     f"{'frames' if STAGES[before].chunked else 'output'})",
            found=f"no done {before} task for this shot file, and its output is not on disk",
            fix=f"run `vfx task run SHOT --stage {before}{chunk}` first (or `vfx farm run SHOT`, which runs the "
                "stages in order)")


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

