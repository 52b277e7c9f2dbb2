"""A shot as a graph of farm tasks: which stages it needs, how they are cut into frame chunks, what waits
for what.

Every engine (local, Ray) and every farm-manager export (OpenCue, OpenJD, Deadline) is built from the one
graph this module makes, and every task runs the one command :func:`Task.args` names
(``vfx task run SHOT --stage swap --frames 1001-1010``), so a shot gives the same frames every way.

Dependencies are between stages (a stage's tasks wait for every task of the stages before it): a farm
manager's layer-on-layer dependency, which all of them express.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from vfx.errors import ConfigError
from vfx.io.plate import open_plate
from vfx.shot.file import load_shot
from vfx.shot.frames import FrameRange
from vfx.shot.layout import STAGES, Stage, farm_folder, stage_prerequisites, wanted_stages
from vfx.shot.schema import Shot

__all__ = ["STAGES", "Stage", "Task", "TaskGraph", "build_graph", "farm_folder", "plate_crop_size", "task_id"]


def task_id(stage: str, frames: FrameRange | None) -> str:
    """The id of a task: ``swap.1001-1005`` for a chunk, the stage's name for a single task."""
    return stage if frames is None else f"{stage}.{frames.first}-{frames.last}"


@dataclass(frozen=True)
class Task:
    """One unit of farm work: a stage, on a chunk of frames for chunked stages."""

    stage: str
    frames: FrameRange | None
    after: tuple[str, ...]
    """Ids of the tasks this one waits for."""

    @property
    def id(self) -> str:
        """``swap.1001-1005`` for a chunk, the stage's name for a single task; safe as a file name."""
        return task_id(self.stage, self.frames)

    @property
    def gpu(self) -> bool:
        return STAGES[self.stage].gpu

    def args(self, shot_file: str | Path) -> list[str]:
        """The task command's arguments after ``vfx``."""
        frames = [] if self.frames is None else ["--frames", str(self.frames)]
        return ["task", "run", str(shot_file), "--stage", self.stage, *frames]


@dataclass(frozen=True)
class TaskGraph:
    """The tasks of one shot, in an order that respects their dependencies."""

    shot_file: Path
    shot: Shot
    frames: FrameRange
    chunk: int
    stages: tuple[str, ...]
    stage_after: dict[str, tuple[str, ...]]
    """Each stage's prerequisite stages (within this graph)."""
    tasks: tuple[Task, ...]

    def of_stage(self, stage: str) -> list[Task]:
        return [t for t in self.tasks if t.stage == stage]

    def task(self, task_id: str) -> Task:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise ConfigError(f"No task {task_id!r} in shot {self.shot.name!r}", expected=", ".join(t.id for t in self.tasks),
                          found=repr(task_id), fix="pass one of the task ids listed under Expected")

    def stage_chunk(self, stage: str) -> int:
        """Frames per task of a chunked stage (extract rounds up to whole landmark chunks)."""
        return _stage_chunk(stage, self.chunk)

    @property
    def folder(self) -> Path:
        return farm_folder(self.shot)


def _stage_chunk(stage: str, chunk: int) -> int:
    if stage == "extract":
        from vfx.faceset.extract import ExtractConfig  # lazily: light commands build graphs too

        grid = ExtractConfig.chunk_frames
        return grid * math.ceil(chunk / grid)
    return chunk


def plate_crop_size(shot: Shot) -> int:
    """The crop side the plate's faces are cut at: the first stage that reads them (the swap's model, else the
    retouch) decides, so a farm extract task and a local run make the same faceset."""
    if shot.swap is not None and shot.model is not None:
        return shot.model.resolution
    return shot.retouch_options.resolution


def build_graph(shot_file: str | Path, *, chunk: int | None = None, frames: FrameRange | None = None,
                shot: Shot | None = None) -> TaskGraph:
    """The task graph of a shot file.

    Args:
        shot_file: the shot file (tasks name it in their command).
        chunk: frames per task of the chunked stages (default: the shot's ``farm.chunk_size``).
        frames: the frames to cut into chunks (default: the shot's, else the whole plate).
        shot: the loaded shot, when the caller has it.

    Raises:
        ShotFileError: the shot file does not validate.
        ConfigError: the shot renders nothing, or an invalid chunk size.
        FrameRangeError / MediaError: frames outside the plate, an unreadable plate.
    """
    shot_file = Path(shot_file).absolute()
    shot = shot or load_shot(shot_file)
    chunk = chunk or shot.farm.chunk_size
    if chunk < 1:
        raise ConfigError("Invalid chunk size", expected="1 or more frames per task", found=str(chunk),
                          fix="set farm.chunk_size in the shot file, or pass --chunk, to 1 or more")
    stages = wanted_stages(shot)
    if not stages:
        raise ConfigError(f"Shot {shot.name!r} has nothing to render",
                          expected="a `swap:` section with outputs.exr, `retouch:` edits or `edit_vectors`",
                          found="no `swap:` section, `retouch:` edits or `edit_vectors:`",
                          fix="add `swap: {persona: NAME}` and `outputs: {exr: out/" + shot.name + "_swap.####.exr}`")
    plate, wanted = open_plate(shot.plate, frames)
    plate.close()
    stage_after = {s: stage_prerequisites(s, stages) for s in stages}
    tracked = FrameRange(tuple(shot.plate.frames or plate.frame_range) + tuple(wanted))
    tasks: list[Task] = []
    ids: dict[str, list[str]] = {}
    for stage in stages:
        after = tuple(i for p in stage_after[stage] for i in ids[p])
        if stage == "extract":
            # Whole landmark chunks, cut from the same grid as a whole-shot extraction (see extract_landmarks).
            made = [Task(stage, piece, after) for piece in tracked.chunks(_stage_chunk(stage, chunk))
                    if set(piece).intersection(wanted)]
        elif STAGES[stage].chunked:
            made = [Task(stage, piece, after) for piece in wanted.chunks(_stage_chunk(stage, chunk))]
        else:
            made = [Task(stage, None, after)]
        tasks += made
        ids[stage] = [t.id for t in made]
    return TaskGraph(shot_file=shot_file, shot=shot, frames=wanted, chunk=chunk, stages=tuple(stages),
                     stage_after=stage_after, tasks=tuple(tasks))
