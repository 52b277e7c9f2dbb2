"""A shot on a farm: `vfx task run` (one task) and `vfx farm run/status/export` (the task graph)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vfx.cli.common import choice, resolve_device
from vfx.cli.options import Chunk, Deterministic, Device, Frames, ShotFile
from vfx.shot.layout import STAGES

ENGINES = ("local", "ray")

_STAGE_LIST = f"{', '.join(list(STAGES)[:-1])} or {list(STAGES)[-1]}"


def task_run(
    shot: ShotFile,
    stage: Annotated[str, typer.Option("--stage", help=f"The step of the shot to run: {_STAGE_LIST}.")],
    frames: Annotated[Optional[str], typer.Option("--frames", help="The chunk, for extract, swap, edit and retouch (default: the whole shot).")] = None,
    frame_syntax: Annotated[str, typer.Option("--frame-syntax", help="vfx (fileseq: 1001-1010x2) or openjd (1001-1010:2).")] = "vfx",
    device: Device = "auto",
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads for torch (default: torch's).")] = None,
    deterministic: Deterministic = False,
    progress: Annotated[str, typer.Option("--progress", help="Progress lines: alf (ALF_PROGRESS 40%), openjd or json.")] = "alf",
) -> None:
    """Run one task: skip what is already written, write atomically, record the task's state in
    <shot>_farm/<task>.json. Exit 0 done, 2 bad input (do not retry), 1 failure (retry), 143 (130) stopped
    by SIGTERM (SIGINT): the frame in flight is finished, the task recorded as killed."""
    from vfx.farm.task import PROGRESS_FORMATS, TaskOptions, run_task, stop_on_signals, terminated_by
    from vfx.shot import FrameRange

    stage = choice("--stage", stage, tuple(STAGES))
    syntax = choice("--frame-syntax", frame_syntax, ("vfx", "openjd"))
    chunk = None if frames is None else FrameRange.parse_openjd(frames) if syntax == "openjd" else FrameRange.parse(frames)
    options = TaskOptions(device=resolve_device(device), threads=threads, deterministic=deterministic,
                          progress=choice("--progress", progress, PROGRESS_FORMATS))
    try:
        with stop_on_signals():
            record = run_task(shot, stage, chunk, options=options)
    except BaseException as err:
        stopped = terminated_by(err)
        if stopped is None:
            raise
        typer.echo(f"vfx: task {stopped}; recorded as killed", err=True)
        raise typer.Exit(stopped.exit_code) from None
    typer.echo(f"task {record.task}: {record.message}", err=True)


def farm_run(
    shot: ShotFile,
    engine: Annotated[str, typer.Option("--engine", help="local (processes on this machine) or ray (a Ray cluster).")] = "local",
    chunk: Chunk = None,
    frames: Frames = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Local engine: tasks at once (default: one per core).")] = None,
    address: Annotated[Optional[str], typer.Option("--address", help="Ray: a running cluster (host:port or auto); default: start a local one.")] = None,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Further attempts of a failed task (bad input is never retried).")] = 2,
    deterministic: Deterministic = False,
) -> None:
    """Run the shot's task graph (extract, track, train, swap, edit, retouch, package) with its dependencies;
    tasks already done are skipped, so a rerun finishes what is missing."""
    from vfx.farm.graph import build_graph
    from vfx.shot import FrameRange

    engine = choice("--engine", engine, ENGINES)
    graph = build_graph(shot, chunk=chunk, frames=FrameRange.parse(frames) if frames else None)
    report = lambda line: typer.echo(line, err=True)  # noqa: E731
    if engine == "ray":
        from vfx.farm.ray_engine import run_ray

        summary = run_ray(graph, address=address, retries=retries, deterministic=deterministic, report=report)
    else:
        from vfx.farm.local import run_local

        summary = run_local(graph, workers=workers, retries=retries, deterministic=deterministic, report=report)
    typer.echo(summary.describe())
    if summary.exit_code:
        raise typer.Exit(summary.exit_code)


def farm_status_command(
    shot: ShotFile,
    chunk: Chunk = None,
) -> None:
    """A table of the shot's tasks: done, running, failed, killed or pending, with frame counts."""
    from vfx.farm.graph import build_graph
    from vfx.farm.status import farm_status, format_status

    typer.echo(format_status(farm_status(build_graph(shot, chunk=chunk))))


def farm_export(
    shot: ShotFile,
    to: Annotated[str, typer.Option("--to", help="opencue (job XML), openjd (job template) or deadline (job and plugin info files).")],
    out: Annotated[Path, typer.Argument(help="Folder for the job files.")],
    chunk: Chunk = None,
    executable: Annotated[str, typer.Option("--executable", help="The vfx command on the farm's nodes.")] = "vfx",
    pool: Annotated[Optional[str], typer.Option("--pool", help="Farm pool the jobs run in (Deadline pool, OpenCue facility; default: the shot's farm.pool).")] = None,
    group: Annotated[Optional[str], typer.Option("--group", help="Group of the CPU stages: extract, track, package (Deadline group, OpenCue service and tags; default: farm.group).")] = None,
    gpu_group: Annotated[Optional[str], typer.Option("--gpu-group", help="Group of the GPU stages: train, swap, edit, retouch (default: farm.gpu_group, else the group).")] = None,
    priority: Annotated[Optional[int], typer.Option("--priority", min=0, max=100, help="Job priority 0-100, higher first (default: farm.priority, 50).")] = None,
) -> None:
    """Write the shot's task graph as a farm manager's job; every task calls `vfx task run`. GPU stages go
    to the GPU group, the others to the group; OpenJD templates carry the groups as host requirements."""
    from vfx.farm.export import EXPORT_TARGETS, FarmPlacement, export_graph
    from vfx.farm.graph import build_graph

    target = choice("--to", to, EXPORT_TARGETS)
    graph = build_graph(shot, chunk=chunk)
    placement = FarmPlacement.of(graph.shot, pool=pool, group=group, gpu_group=gpu_group, priority=priority)
    for path in export_graph(graph, target, out, executable=executable, placement=placement):
        typer.echo(str(path))

