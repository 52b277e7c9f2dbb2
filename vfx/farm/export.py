"""A shot's task graph as a farm manager's job: an OpenCue job spec, an Open Job Description template, or
Deadline 10 job files.

Every export is made from the one :class:`~vfx.farm.graph.TaskGraph`, so a farm runs exactly the tasks the
local and Ray engines run: one job layer (OpenCue), step (OpenJD) or job (Deadline) per stage, cut into the
graph's own chunks, each waiting for the stages the graph says it waits for, and every task running the one
command ``vfx task run SHOT --stage STAGE [--frames F]``. Same chunks means same task ids, so the records
``vfx farm status`` reads line up whichever engine ran the shot.

Frame ranges are written in each manager's own grammar, because ``:`` differs between them:

============  ======================  ========================================================
manager       stepped range            chunk handed to the task
============  ======================  ========================================================
OpenCue       ``1001-1047x2``          ``--frames #FRAME_START#-#FRAME_END#x2``
Deadline 10   ``1001-1047x2``          ``--frames <STARTFRAME>-<ENDFRAME>x2``
OpenJD        ``1001-1047:2``          ``--frames 1001-1005:2 --frame-syntax openjd``
============  ======================  ========================================================

(OpenCue's and our own grammar are fileseq's: ``x`` is a step, ``:`` an interleave; in an OpenJD range
expression ``:`` is the step.) A stage's frames must therefore be one contiguous or stepped range; an
arbitrary list of frames has no chunk-bounds form in OpenCue or Deadline and is refused.

OpenJD note: a ``CHUNK[INT]`` task parameter does not cut a range into consecutive groups of
``defaultTaskCount``: the reference implementation (openjd-model, which ``openjd run`` uses) balances the
chunks, so 1001-1007 by 3 runs 1001-1003, 1004-1005, 1006-1007 and 1001-1048 by 10 puts an extract chunk at
1021-1029, off the 10-frame landmark grid; with ``rangeConstraint: CONTIGUOUS`` a stepped range even falls
apart into single frames. The template therefore lists the graph's chunks themselves as the values of a
``Frames`` task parameter (OpenJD range expressions, passed with ``--frame-syntax openjd``): every manager
then runs the same tasks, and no extension is needed.

Where the jobs run (``farm.pool``, ``farm.group``, ``farm.gpu_group``, ``farm.priority`` of the shot, or
``vfx farm export --pool --group --gpu-group --priority``; :class:`FarmPlacement`):

==========  ===================================  ==========================================  ===========
manager     pool                                 group (GPU stages: the GPU group)           priority
==========  ===================================  ==========================================  ===========
Deadline    ``Pool=`` of every stage's job       ``Group=`` of each stage's job (a group is  ``Priority=``
                                                 per job, and the export is one job a stage)  (0-100)
OpenCue     the job's ``facility``               each layer's ``service`` (a cuebot service   the job's
                                                 names the host tags it runs on and its       ``priority``
                                                 cores/memory defaults)                       (same number)
OpenJD      none: a template has no pool (a      each step's ``hostRequirements`` attribute   none (set
            Deadline Cloud queue and its fleets  ``attr.custom.group`` (``anyOf`` the group)  on the
            decide)                              and, for GPU steps, ``amount.worker.gpu``    queue)
==========  ===================================  ==========================================  ===========

GPU stages are those :data:`~vfx.shot.layout.STAGES` marks ``gpu`` (train, swap, seghead, edit, refiner,
retouch); the others (extract, track, package) go to the CPU group.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from vfx.errors import ConfigError, VfxError
from vfx.farm.graph import STAGES, TaskGraph
from vfx.shot.frames import FrameRange
from vfx.shot.layout import Place, check_apart, shot_inputs
from vfx.shot.schema import Shot
from vfx.utils.atomic import atomic_write_text, check_writable

__all__ = ["EXPORT_TARGETS", "OPENCUE_SPEC_VERSION", "OPENJD_GROUP_ATTRIBUTE", "OPENJD_SPECIFICATION", "FarmPlacement",
           "export_graph"]

EXPORT_TARGETS = ("opencue", "openjd", "deadline")
"""The farm managers a shot can be exported to (``vfx farm export --to``)."""

OPENCUE_SPEC_VERSION = "1.15"
"""The CJSL version written (the DTD the export is checked against; cuebot accepts older specs)."""

OPENJD_SPECIFICATION = "jobtemplate-2023-09"

_OPENCUE_CHUNK = "#FRAME_START#-#FRAME_END#"
"""Cuebot's tokens for a chunk's first and last frame, substituted before the command runs."""
_DEADLINE_CHUNK = "<STARTFRAME>-<ENDFRAME>"

OPENJD_GROUP_ATTRIBUTE = "attr.custom.group"
"""The host-requirement attribute an OpenJD step names its farm group with (a fleet's custom capability)."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
"""Pool and group names every manager can carry (Deadline, OpenCue tags, OpenJD attribute values)."""


@dataclass(frozen=True)
class FarmPlacement:
    """Where a shot's jobs run on the farm and how urgently.

    Attributes:
        pool: the farm pool (Deadline ``Pool``, OpenCue facility); None: the manager's default.
        group: the group of the CPU stages (Deadline ``Group``, OpenCue service and tags, OpenJD attribute).
        gpu_group: the group of the GPU stages; None: ``group``.
        priority: 0-100, Deadline's scale (50 its default); higher runs first.
    """

    pool: str | None = None
    group: str | None = None
    gpu_group: str | None = None
    priority: int = 50

    @classmethod
    def of(cls, shot: Shot, *, pool: str | None = None, group: str | None = None, gpu_group: str | None = None,
           priority: int | None = None) -> FarmPlacement:
        """The shot's ``farm`` settings, each overridden by the option given here (``vfx farm export --pool``).

        Raises:
            ConfigError: a name no manager can carry (spaces, ``=``, a leading digit), a priority outside 0-100.
        """
        farm = shot.farm
        placement = cls(pool=pool if pool is not None else farm.pool,
                        group=group if group is not None else farm.group,
                        gpu_group=gpu_group if gpu_group is not None else farm.gpu_group,
                        priority=priority if priority is not None else farm.priority)
        for option, value in (("--pool", placement.pool), ("--group", placement.group),
                              ("--gpu-group", placement.gpu_group)):
            if value is not None and (len(value) > 128 or not _NAME.match(value)):
                raise ConfigError(f"Invalid farm {option.removeprefix('--')} name {value!r}",
                                  expected="letters, digits, '_' and '-', starting with a letter or '_', at most 128 "
                                  "characters (the names Deadline, OpenCue and OpenJD all accept)", found=repr(value),
                                  fix=f"{option} gpu_farm (or the shot file's farm.{option[2:].replace('-', '_')})")
        if not 0 <= placement.priority <= 100:
            raise ConfigError(f"Invalid farm priority {placement.priority}", expected="0-100 (Deadline's scale; 50 "
                              "is the default)", found=str(placement.priority), fix="--priority 50")
        return placement

    def group_of(self, stage: str) -> str | None:
        """The group a stage runs in: the GPU group (else the group) for stages that want a GPU."""
        if STAGES[stage].gpu:
            return self.gpu_group or self.group
        return self.group


@dataclass(frozen=True)
class _StagePlan:
    """One stage as every manager sees it: the frames it covers, how they are cut, what it waits for."""

    name: str
    frames: FrameRange
    """The union of the stage's chunks; a single-task stage has the shot's first frame (managers want one)."""
    step: int
    chunk: int
    """Frames per task (1 for a single-task stage)."""
    chunks: tuple[FrameRange, ...]
    """The graph's chunks; empty for a single-task stage."""
    after: tuple[str, ...]
    gpus: int

    @property
    def chunked(self) -> bool:
        return bool(self.chunks)


def export_graph(graph: TaskGraph, target: str, out: Path, *, executable: str = "vfx",
                 extra_args: list[str] | None = None, placement: FarmPlacement | None = None) -> list[Path]:
    """Write the shot's task graph as ``target``'s job description in the folder ``out``.

    Args:
        graph: the shot's tasks (:func:`~vfx.farm.graph.build_graph`).
        target: ``opencue`` (``<shot>.opencue.xml``), ``openjd`` (``<shot>.openjd.yaml``) or ``deadline``
            (``NN_<stage>.job_info.job`` and ``NN_<stage>.plugin_info.job`` per stage, and ``submit.sh``).
        out: the folder the files go in (created).
        executable: the ``vfx`` command as the farm's nodes find it (an absolute path is safest: Deadline's
            CommandLine plugin does not search ``PATH`` on every platform).
        extra_args: options appended to every task command, after the task's own (``["--device", "cuda"]``).
        placement: pool, groups and priority (default: the shot's ``farm`` settings, :meth:`FarmPlacement.of`).

    Returns:
        The files written, in the order a reader would open them.

    Raises:
        ConfigError: an unknown target; a frame range that is neither contiguous nor stepped; a stage whose
            tasks are not consecutive chunks of its frames; a path or option no manager's file can carry;
            OpenCue export without pyoutline installed.
    """
    if target not in EXPORT_TARGETS:
        raise ConfigError(f"Unknown export target {target!r}", expected="one of " + ", ".join(EXPORT_TARGETS),
                          found=str(target), fix="--to opencue, openjd or deadline")
    extra = [str(a) for a in extra_args or []]
    placement = placement or FarmPlacement.of(graph.shot)
    plans = _plan(graph)
    out = Path(out)
    check_writable(out)  # a file where the job's folder goes is refused before anything is written
    check_apart(Place("the job folder", out, "folder"), shot_inputs(graph.shot))
    out.mkdir(parents=True, exist_ok=True)
    if target == "opencue":
        return _export_opencue(graph, plans, out, executable, extra, placement)
    if target == "openjd":
        return _export_openjd(graph, plans, out, executable, extra, placement)
    return _export_deadline(graph, plans, out, executable, extra, placement)


# ---------------------------------------------------------------------------------------------------------
# The graph, cut the way managers cut frames


def _plan(graph: TaskGraph) -> list[_StagePlan]:
    """Each stage's frames, step and chunks, checked to be what a manager's range-and-chunk cutting makes."""
    _step_of(graph.frames, "the shot's frames")
    plans = []
    for stage in graph.stages:
        tasks = graph.of_stage(stage)
        gpus = _gpus(graph, stage)
        if not STAGES[stage].chunked:
            plans.append(_StagePlan(stage, FrameRange((graph.frames.first,)), 1, 1, (), graph.stage_after[stage],
                                    gpus))
            continue
        chunks = tuple(t.frames for t in tasks if t.frames is not None)
        frames = FrameRange(tuple(f for c in chunks for f in c))
        step = _step_of(frames, f"the {stage} stage's frames")
        size = graph.stage_chunk(stage)
        if tuple(frames.chunks(size)) != chunks:
            # A manager cuts range + chunk size into consecutive groups; anything else would run other tasks.
            raise ConfigError(f"The {stage} tasks of shot {graph.shot.name!r} are not consecutive chunks of "
                              f"{size} frames", expected=f"chunks of {frames} by {size}",
                              found=", ".join(str(c) for c in chunks),
                              fix="export the shot's whole frame range (plate.frames) rather than a part of it")
        plans.append(_StagePlan(stage, frames, step, size, chunks, graph.stage_after[stage], gpus))
    return plans


def _step_of(frames: FrameRange, what: str) -> int:
    """The step of a contiguous (1) or stepped range."""
    steps = {b - a for a, b in zip(frames.frames, frames.frames[1:])}
    if len(steps) <= 1:
        return steps.pop() if steps else 1
    raise ConfigError(f"Cannot export {what} to a farm manager", expected="a contiguous (1001-1048) or stepped "
                      "(1001-1048x2) frame range, the forms every manager can cut into chunks",
                      found=str(frames), fix="set plate.frames to one range, or export each part as its own shot")


def _gpus(graph: TaskGraph, stage: str) -> int:
    if not STAGES[stage].gpu:
        return 0
    model = graph.shot.model
    if stage == "train" and model is not None and model.training is not None:
        return model.training.gpus
    return 1


def _x_range(frames: FrameRange, step: int) -> str:
    """fileseq / OpenCue / Deadline syntax: ``1001``, ``1001-1048``, ``1001-1047x2``."""
    if len(frames) == 1:
        return str(frames.first)
    return f"{frames.first}-{frames.last}" + (f"x{step}" if step > 1 else "")


def _openjd_range(frames: FrameRange, step: int) -> str:
    """OpenJD range-expression syntax: ``1001``, ``1001-1048``, ``1001-1047:2``."""
    if len(frames) == 1:
        return str(frames.first)
    return f"{frames.first}-{frames.last}" + (f":{step}" if step > 1 else "")


def _command(graph: TaskGraph, stage: str, executable: str, frame_args: Sequence[str],
             extra: Sequence[str]) -> list[str]:
    """The task command: options go after ``task run SHOT`` (the CLI's own options come before ``task``)."""
    return [executable, "task", "run", str(graph.shot_file), "--stage", stage, *frame_args, *extra]


def _check_plain(args: Sequence[str], where: str, forbidden: str = "\n\r") -> None:
    for arg in args:
        bad = [c for c in forbidden if c in arg]
        if bad:
            raise ConfigError(f"Cannot write {arg!r} into {where}", expected="paths and options without "
                              + " or ".join(repr(c) for c in bad), found=arg,
                              fix="rename the file or folder, or drop the option")


# ---------------------------------------------------------------------------------------------------------
# OpenCue


def _export_opencue(graph: TaskGraph, plans: list[_StagePlan], out: Path, executable: str,
                    extra: list[str], placement: FarmPlacement) -> list[Path]:
    """An OpenCue job spec made by pyoutline offline: ``serialize_simple`` writes the CJSL XML cuebot
    launches, with each layer's command run as it is (no pycuerun wrapper), and needs no cuebot.

    The pool is the job's facility, the priority the job's (OpenCue's priority is an integer, higher first,
    like Deadline's: the same number is written); a layer's group is its service (``<services>``): the
    cuebot's service of that name says which host tags run it and with what cores and memory. Layer
    ``<tags>`` are not written: they override the service's and OpenCue keeps only alphanumeric tags."""
    try:
        import outline
        import outline.backend.cue
        import outline.cuerun
        import outline.modules.shell
        import outline.util
    except ImportError as err:
        raise ConfigError("OpenCue export needs pyoutline", expected="the opencue-pyoutline package (module "
                          "outline) and packaging", found=f"{type(err).__name__}: {err}",
                          fix="pip install opencue-pyoutline packaging") from None

    # No frame_range on the outline: pyoutline intersects each layer's range with it, and the stages' ranges
    # differ (extract covers whole landmark chunks, a single-task stage one frame).
    ol = outline.Outline(graph.shot.name, shot=graph.shot.name, show=outline.util.get_show(),
                         user=outline.util.get_user(), facility=placement.pool)
    layers = {}
    for plan in plans:
        frame_args = ["--frames", _OPENCUE_CHUNK + (f"x{plan.step}" if plan.step > 1 else "")] if plan.chunked else []
        args = _command(graph, plan.name, executable, frame_args, extra)
        _check_plain(args, "an OpenCue command")
        # RQD runs the command through a shell: quote every word but the chunk token (cuebot substitutes it
        # before the shell sees it).
        words = [a if a in frame_args[1:] else shlex.quote(a) for a in args]
        options: dict[str, object] = {"command": words, "range": _x_range(plan.frames, plan.step),
                                      "chunk": plan.chunk}
        if plan.gpus:
            options["gpus"] = plan.gpus
        group = placement.group_of(plan.name)
        if group is not None:
            options["service"] = group
        layer = outline.modules.shell.Shell(plan.name, **options)
        ol.add_layer(layer)
        for before in plan.after:
            layer.depend_all(layers[before])  # LAYER_ON_LAYER: every frame of `before` first
        layers[plan.name] = layer
    with _outline_spec_version(OPENCUE_SPEC_VERSION):
        # Straight to the backend: OutlineLauncher.serialize() would first run setup(), which makes a session
        # folder on disk and exports $SHOT into this process.
        launcher = outline.cuerun.OutlineLauncher(ol, nomail=True, priority=placement.priority)
        xml = outline.backend.cue.serialize_simple(launcher)
    path = out / f"{graph.shot.name}.opencue.xml"
    atomic_write_text(path, _indent_spec(xml))
    _readable(path)
    return [path]


@contextmanager
def _outline_spec_version(version: str) -> Iterator[None]:
    """Pin pyoutline's spec version for one serialisation (a studio's outline.cfg may name another)."""
    from outline.config import config

    before = config.get("outline", "spec_version")
    config.set("outline", "spec_version", version)
    try:
        yield
    finally:
        config.set("outline", "spec_version", before)


def _indent_spec(spec: str) -> str:
    """pyoutline's one-line XML, indented for people; text (the commands) is left exactly as it was."""
    import xml.etree.ElementTree as ET

    start = spec.index("<spec")
    root = ET.fromstring(spec[start:])
    ET.indent(root, space="  ")
    header = spec[:start].replace("?><!DOCTYPE", "?>\n<!DOCTYPE")
    return header + "\n" + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------------------------------------------------
# Open Job Description


def _export_openjd(graph: TaskGraph, plans: list[_StagePlan], out: Path, executable: str,
                   extra: list[str], placement: FarmPlacement) -> list[Path]:
    """An OpenJD job template (``openjd run`` runs it locally; AWS Deadline Cloud runs it on a farm).

    Chunked stages list the graph's chunks as the ``Frames`` task parameter (see the module's note on
    ``CHUNK[INT]``). Host requirements only where the shot names a group: the step then asks for the
    attribute :data:`OPENJD_GROUP_ATTRIBUTE` with the group's name (and a GPU step for one GPU,
    ``amount.worker.gpu``); ``openjd run`` ignores them, a Deadline Cloud fleet matches them. OpenJD has no
    pool or priority in a template (a queue has them), so those are not written."""
    steps = []
    for plan in plans:
        frame_args = ["--frames", "{{Task.Param.Frames}}", "--frame-syntax", "openjd"] if plan.chunked else []
        args = _command(graph, plan.name, executable, [*frame_args, "--progress", "openjd"], extra)
        for arg in (a for a in args if a not in frame_args):
            if "{{" in arg:
                raise ConfigError(f"Cannot write {arg!r} into an OpenJD template", expected="no '{{' (it opens an "
                                  "OpenJD format string)", found=arg, fix="rename the file or folder")
        step: dict[str, object] = {"name": plan.name, "description": STAGES[plan.name].description}
        if plan.after:
            step["dependencies"] = [{"dependsOn": before} for before in plan.after]
        if plan.chunked:
            step["parameterSpace"] = {"taskParameterDefinitions": [{
                "name": "Frames", "type": "STRING",
                "range": [_openjd_range(c, plan.step) for c in plan.chunks],
            }]}
        group = placement.group_of(plan.name)
        if group is not None:
            requirements: dict[str, object] = {"attributes": [{"name": OPENJD_GROUP_ATTRIBUTE, "anyOf": [group]}]}
            if plan.gpus:
                requirements["amounts"] = [{"name": "amount.worker.gpu", "min": plan.gpus}]
            step["hostRequirements"] = requirements
        step["script"] = {"actions": {"onRun": {"command": args[0], "args": args[1:]}}}
        steps.append(step)
    template = {
        "specificationVersion": OPENJD_SPECIFICATION,
        "name": graph.shot.name,
        "description": f"vfx shot {graph.shot.name}, frames {graph.frames}: every task runs `vfx task run`.",
        "steps": steps,
    }
    path = out / f"{graph.shot.name}.openjd.yaml"
    atomic_write_text(path, yaml.safe_dump(template, sort_keys=False, width=1000))
    _readable(path)
    return [path]


# ---------------------------------------------------------------------------------------------------------
# Deadline 10


def _export_deadline(graph: TaskGraph, plans: list[_StagePlan], out: Path, executable: str,
                     extra: list[str], placement: FarmPlacement) -> list[Path]:
    """Deadline 10 CommandLine-plugin jobs, one per stage, and a ``submit.sh`` that submits them as a chain
    (``-dependent``: each job waits for the one before; the stages are in an order that respects the graph).

    Every job carries ``Priority``, and ``Pool`` where one is given; ``Group`` is per job, so each stage's
    job names its own: the GPU group for the GPU stages, the group for the others."""
    written: list[Path] = []
    jobs: list[tuple[str, str]] = []
    for number, plan in enumerate(plans, start=1):
        stem = f"{number:02d}_{plan.name}"
        frame_args = ["--frames", _DEADLINE_CHUNK + (f"x{plan.step}" if plan.step > 1 else "")] if plan.chunked else []
        args = _command(graph, plan.name, executable, frame_args, extra)
        _check_plain(args, "a Deadline job file", forbidden='\n\r"')
        job_info = {
            "Plugin": "CommandLine",
            "Name": f"{graph.shot.name} {plan.name}",
            "BatchName": graph.shot.name,
            "Comment": STAGES[plan.name].description,
            "Frames": _x_range(plan.frames, plan.step),
            "ChunkSize": str(plan.chunk),
            "MachineLimit": "0",
            "Priority": str(placement.priority),
        }
        if placement.pool is not None:
            job_info["Pool"] = placement.pool
        group = placement.group_of(plan.name)
        if group is not None:
            job_info["Group"] = group
        output = _output_directory(graph, plan.name)
        if output is not None:
            job_info["OutputDirectory0"] = output
        plugin_info = {
            "Executable": args[0],
            "Arguments": " ".join(_deadline_quote(a) for a in args[1:]),
            "Shell": "default",
            "ShellExecute": "False",
            "SingleFramesOnly": "False",
        }
        for name, entries in (("job_info", job_info), ("plugin_info", plugin_info)):
            _check_plain(list(entries.values()), "a Deadline job file")
            path = out / f"{stem}.{name}.job"
            atomic_write_text(path, "".join(f"{key}={value}\n" for key, value in entries.items()))
            _readable(path)
            written.append(path)
        jobs.append((f"{stem}.job_info.job", f"{stem}.plugin_info.job"))
    script = out / "submit.sh"
    atomic_write_text(script, _submit_script(graph, jobs))
    _readable(script, executable=True)
    return [*written, script]


def _deadline_quote(arg: str) -> str:
    """Deadline's ``<QUOTE>`` token around a word with spaces (the plugin puts a double quote there)."""
    return f"<QUOTE>{arg}<QUOTE>" if not arg or any(c.isspace() for c in arg) else arg


def _output_directory(graph: TaskGraph, stage: str) -> str | None:
    """Where a stage writes, for the Monitor's "explore output"; None for stages that write no frames."""
    from vfx.shot.layout import edit_sequence, retouch_sequence

    shot = graph.shot
    try:
        if stage == "swap":
            pattern = shot.outputs.exr or shot.outputs.frames
            return None if pattern is None else str(Path(pattern).parent)
        if stage == "edit":
            return str(edit_sequence(shot).directory)
        if stage == "retouch":
            return str(retouch_sequence(shot).directory)
        if stage == "package":
            if shot.outputs.comp_package is not None:
                return str(shot.outputs.comp_package)
            return None if shot.outputs.review is None else str(Path(shot.outputs.review).parent)
    except VfxError:
        return None
    return None


def _submit_script(graph: TaskGraph, jobs: list[tuple[str, str]]) -> str:
    lines = [
        "#!/bin/sh",
        f"# Submit shot {graph.shot.name} to Deadline 10: one CommandLine job per stage, in dependency order;",
        "# -dependent makes each job wait for the one before it.",
        "# Every task runs `vfx task run`, which exits 0 when done, 2 on bad input (a shot file or option to fix:",
        "# a retry cannot help) and 1 on a failure a retry may cure. Deadline retries failed tasks whatever the",
        "# exit code, so a task that failed with exit 2 fails again: read its log before requeueing.",
        "# DEADLINECOMMAND names the deadlinecommand binary if it is not on PATH.",
        "set -e",
        'cd "$(dirname "$0")"',
        'exec "${DEADLINECOMMAND:-deadlinecommand}" -SubmitMultipleJobs -dependent \\',
    ]
    lines += [f"  -job {job} {plugin}" + (" \\" if i < len(jobs) - 1 else "") for i, (job, plugin) in enumerate(jobs)]
    return "\n".join(lines) + "\n"


def _readable(path: Path, *, executable: bool = False) -> None:
    """Atomic writes land with the temporary file's owner-only mode; job files are read by the farm's
    submitter and workers, so give them the usual modes."""
    path.chmod(0o755 if executable else 0o644)
