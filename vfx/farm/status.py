"""``vfx farm status``: where each task of a shot stands, from the task records and the frames on disk."""

from __future__ import annotations

from dataclasses import dataclass

from vfx.farm.graph import TaskGraph
from vfx.farm.stages import StageContext, count_done
from vfx.farm.task import TaskRecordError, load_record

__all__ = ["TaskStatus", "farm_status", "format_status"]


@dataclass(frozen=True)
class TaskStatus:
    task: str
    state: str
    """pending, running, done, failed, bad_input, killed (stopped by a signal, or a running record whose
    process is gone) or corrupt (a record that is not a valid one: ``message`` says what is wrong and the fix;
    the task's next attempt writes a new record)."""
    frames_done: int
    frames_total: int
    attempts: int
    seconds: float | None
    host: str
    message: str


def farm_status(graph: TaskGraph) -> list[TaskStatus]:
    """One row per task of the graph, in graph order."""
    shot_hash = graph.shot.content_hash()
    rows = []
    for task in graph.tasks:
        try:
            record = load_record(graph.folder / f"{task.id}.json", task=task.id)
        except TaskRecordError as err:
            rows.append(TaskStatus(task.id, "corrupt", 0, len(task.frames) if task.frames is not None else 1, 0,
                                   None, "", str(err)))
            continue
        context = StageContext(shot=graph.shot, shot_file=graph.shot_file, stage=task.stage, frames=task.frames,
                               device="cpu")
        counts = count_done(context)
        state = "pending" if record is None else record.state
        message = record.message if record is not None else ""
        if record is not None and state == "running" and not record.alive:
            state = "killed"
            message = f"process {record.pid} on {record.host} is gone (killed); a rerun redoes the task"
        elif record is not None and state == "done" and record.shot_hash != shot_hash:
            state = "pending"  # done for an earlier version of the shot file
        if counts is None:  # a task that writes no frames: done as a whole
            total = len(task.frames) if task.frames is not None else 1
            counts = (total if state == "done" else 0, total)
        if record is None:
            rows.append(TaskStatus(task.id, state, *counts, 0, None, "", ""))
            continue
        seconds = (record.finished - record.started) if record.finished else None
        rows.append(TaskStatus(task.id, state, *counts, record.attempt, seconds, record.host, message))
    return rows


def format_status(rows: list[TaskStatus]) -> str:
    """A plain table (it reads the same in a terminal and a farm log), then the count of each state."""
    width = max([len(r.task) for r in rows] + [4])
    lines = [f"{'task':<{width}}  {'state':<9}  {'frames':>9}  {'tries':>5}  {'seconds':>7}  host"]
    for r in rows:
        seconds = f"{r.seconds:.1f}" if r.seconds is not None else "-"
        lines.append(f"{r.task:<{width}}  {r.state:<9}  {f'{r.frames_done}/{r.frames_total}':>9}  {r.attempts:>5}  "
                     f"{seconds:>7}  {r.host or '-'}")
        if r.state in ("failed", "bad_input", "killed", "corrupt") and r.message:
            lines.append(f"{'':<{width}}  └ {r.message}")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    lines.append(", ".join(f"{state} {n}" for state, n in counts.items()))
    return "\n".join(lines)
