"""What each stage of a farm task does: a thin call into the library stage it names.

Each runner skips what is on disk already (the library stages resume), first removing the temporary files a
killed attempt left of the outputs this task owns, and returns what it did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vfx.errors import ConfigError
from vfx.farm.graph import plate_crop_size
from vfx.io.plate import open_plate
from vfx.shot.frames import FrameRange, SequencePattern
from vfx.shot.schema import Shot
from vfx.utils.atomic import remove_stale_temps

if TYPE_CHECKING:
    from vfx.comb.plan import TrainingPlan

__all__ = ["StageContext", "StageOutcome", "check_training", "count_done", "run_stage"]

log = logging.getLogger(__name__)


@dataclass
class StageContext:
    """One task's inputs."""

    shot: Shot
    shot_file: Path
    stage: str
    frames: FrameRange | None
    device: str
    threads: int = 1
    cache: dict[object, object] | None = None
    """Models kept across the tasks one process runs (a Ray worker); None: nothing is kept."""

    def cached(self, key: object, load: Callable[[], object]) -> object:
        if self.cache is None:
            return load()
        if key not in self.cache:
            self.cache[key] = load()
        return self.cache[key]


@dataclass(frozen=True)
class StageOutcome:
    total: int
    done: int
    skipped: int
    message: str


def _track(shot: Shot) -> int:
    return shot.swap.track if shot.swap else 0


def _frames(context: StageContext) -> FrameRange:
    """The task's frames, checked against the plate (bad input, exit 2, when outside)."""
    plate, frames = open_plate(context.shot.plate, context.frames)
    plate.close()
    return frames


def _clean(patterns: list[SequencePattern | None], frames: FrameRange) -> int:
    return sum(remove_stale_temps(p.path(f)) for p in patterns if p is not None for f in frames)


# ---------------------------------------------------------------------------------------------- stages

def _extract(context: StageContext) -> StageOutcome:
    from vfx.faceset.plate_faces import extract_plate_landmarks
    from vfx.shot.layout import plate_faces_folder

    shot = context.shot
    remove_stale_temps(plate_faces_folder(shot) / "cache", under=True)  # other extract tasks only rename
    plate, frames = open_plate(shot.plate, context.frames)
    with plate:
        landmarked = extract_plate_landmarks(shot, plate, frames, crop_size=plate_crop_size(shot), track=_track(shot))
    return StageOutcome(len(frames), landmarked, len(frames) - landmarked, f"landmarked {landmarked} frames")


def _track_stage(context: StageContext) -> StageOutcome:
    from vfx.faceset.plate_faces import track_plate_faces
    from vfx.shot.layout import plate_faces_folder

    shot = context.shot
    remove_stale_temps(plate_faces_folder(shot), under=True)
    plate, frames = open_plate(shot.plate)
    with plate:
        records = track_plate_faces(shot, plate, frames, crop_size=plate_crop_size(shot), track=_track(shot),
                                    workers=context.threads, reuse=False)
    return StageOutcome(len(frames), len(frames), 0, f"{len(records)} faces tracked on {len(frames)} frames")


def _personas(context: StageContext) -> StageOutcome:
    from vfx.comb.plan import extract_personas

    plan = check_training(context.shot)
    done = extract_personas(plan, device=context.device, workers=context.threads)
    extracted = [name for name, summary in done.items() if summary is not None]
    lines = [f"{p.name}: {'extracted' if p.name in extracted else 'already extracted'} into {p.facesets[0]}"
             for p in plan.footage]
    return StageOutcome(len(done), len(extracted), len(done) - len(extracted), "; ".join(lines))


def _train(context: StageContext) -> StageOutcome:
    from vfx.comb.checkpoint import latest_checkpoint, read_manifest
    from vfx.comb.plan import extract_personas
    from vfx.comb.train import train_comb

    plan = check_training(context.shot)
    total = plan.total_iterations
    newest = latest_checkpoint(plan.run)
    start = read_manifest(newest).step if newest is not None else 0
    if start >= total:
        return StageOutcome(total, 0, total, f"model {plan.run} already trained ({start} iterations)")
    remove_stale_temps(plan.run, under=True)
    extract_personas(plan, device=context.device, workers=context.threads)  # done by the personas task already
    _, manifest = train_comb(plan.persona_data(), plan.run, resolution=plan.resolution, width=plan.width,
                             config=plan.config, records=plan.records, device=context.device,
                             resume=newest is not None, base=plan.base)
    return StageOutcome(total, manifest.step - start, start, f"model {plan.run}: iteration {manifest.step} of {total}")


def check_training(shot: Shot) -> TrainingPlan:
    """The training plan of the shot's ``personas`` and ``train`` tasks, checked before anything starts (also
    before torchrun, whose processes' exit codes it does not pass on): the one plan ``vfx train SHOT`` makes,
    without command-line overrides (so without ``--no-consent-record``: the farm always refuses a persona
    without a consent record).

    Raises:
        ConfigError: no ``model.training``, or what :func:`vfx.comb.plan.plan_training` refuses (a persona
            without a consent record, a missing faceset or unreadable footage, ...).
    """
    from vfx.comb.plan import plan_training

    model = shot.model
    if model is None or model.training is None:
        raise ConfigError(f"Shot {shot.name!r} does not train its model", expected="model.training in the shot file",
                          found="no `model:` section" if model is None else "no `training:` under `model:`",
                          fix="add `training: {}` under `model:` in the shot file, or train beforehand with `vfx train`")
    return plan_training(shot)


def _swap(context: StageContext) -> StageOutcome:
    from vfx.swap import plan_swap, run_swap
    from vfx.swap.swapper import open_swap_model

    plan = plan_swap(context.shot, frames=context.frames, device=context.device)
    _clean(plan.outputs, plan.frames)
    model = context.cached(("swap", str(plan.checkpoint), plan.persona, context.device),
                           lambda: open_swap_model(plan.checkpoint, persona=plan.persona, resolution=plan.resolution,
                                                   device=plan.device, checked=True))
    summary = run_swap(plan, workers=1, show_progress=False, model=model)  # type: ignore[arg-type]
    return StageOutcome(summary.frames, summary.rendered, summary.skipped, summary.describe().splitlines()[0])


def _edit_persona(shot: Shot) -> str:
    from vfx.edit.vectors import load_edit_vector

    if shot.swap is not None:
        return shot.swap.persona
    if not shot.edit_vectors:
        raise ConfigError(f"Shot {shot.name!r} has no edit vectors", expected="an `edit_vectors:` list",
                          found="no `swap:` section and no `edit_vectors:`",
                          fix="add `edit_vectors: [{vector: edits/NAME.vfxedit}]` (from `vfx edit learn`) to the shot file")
    return load_edit_vector(shot.edit_vectors[0].vector).persona


def _edit_model(context: StageContext):  # type: ignore[no-untyped-def]
    from vfx.edit.pipeline import open_edit_model

    persona = _edit_persona(context.shot)
    return context.cached(("edit", str(context.shot.model.checkpoint if context.shot.model else ""), persona,
                           context.device), lambda: open_edit_model(context.shot, persona, device=context.device))


def _seghead(context: StageContext) -> StageOutcome:
    from vfx.edit.pipeline import checkpoint_folder

    shot = context.shot
    if shot.model is not None:
        remove_stale_temps(checkpoint_folder(shot.model.checkpoint).parent / "segmentation", under=True)
    model = _edit_model(context)
    return StageOutcome(1, 1, 0, f"segmentation head: held-out mIoU {model.head.held_miou:.3f}")


def _edit(context: StageContext) -> StageOutcome:
    from vfx.edit.pipeline import plan_edit_apply, run_edit_apply
    from vfx.shot.layout import edit_sequence

    shot = context.shot
    frames = context.frames or _frames(context)  # the plan checks them against the plate
    if all(edit_sequence(shot).path(f).is_file() for f in frames):  # nothing to do: no model to open
        return StageOutcome(len(frames), 0, len(frames), f"frames {len(frames)}: all on disk")
    plan = plan_edit_apply(shot, frames=frames, device=context.device, model=_edit_model(context))
    _clean(plan.outputs, frames)
    # The halo: the shot's frames just before this chunk, and the chunk's frames already written before the
    # first missing one (a resumed chunk), are refined again, not written, so the warm start arrives at the
    # first frame to write as it would in one uninterrupted run.
    everything = shot.plate.frames or plan.plate.frame_range
    before = [f for f in everything if f < frames.first][-shot.farm.halo:] if shot.farm.halo else []
    first_missing = next(f for f in frames if not plan.done(f))
    prefix = [f for f in frames if f < first_missing]
    summary = run_edit_apply(plan, show_progress=False, workers=1, warmup=tuple(before + prefix))
    return StageOutcome(summary.frames, summary.rendered, summary.skipped, summary.describe().splitlines()[0])


def _refiner(context: StageContext) -> StageOutcome:
    from vfx.retouch import plan_retouch, run_retouch
    from vfx.shot.layout import refiner_folder

    shot = context.shot
    remove_stale_temps(refiner_folder(shot), under=True)
    plan = plan_retouch(shot, device=context.device)
    run_retouch(plan, show_progress=False, workers=context.threads, refiner_only=True)
    return StageOutcome(1, 1, 0, f"refiner {refiner_folder(shot)}")


def _retouch(context: StageContext) -> StageOutcome:
    from vfx.retouch import plan_retouch, run_retouch

    plan = plan_retouch(context.shot, frames=context.frames, device=context.device)
    _clean(plan.outputs, plan.frames)
    summary = run_retouch(plan, show_progress=False, workers=1)
    return StageOutcome(summary.frames, summary.rendered, summary.skipped, summary.describe().splitlines()[0])


def _package(context: StageContext) -> StageOutcome:
    from vfx.export.handoff import write_handoff
    from vfx.shot.layout import side_by_side_path

    shot = context.shot
    for path in (shot.outputs.review, shot.outputs.review and side_by_side_path(shot.outputs.review)):
        if path is not None:
            remove_stale_temps(path)
    if shot.outputs.comp_package is not None:
        remove_stale_temps(shot.outputs.comp_package, under=True)
    lines = write_handoff(shot, require=True)
    return StageOutcome(1, 1, 0, "; ".join(lines))


_RUNNERS: dict[str, Callable[[StageContext], StageOutcome]] = {
    "personas": _personas, "extract": _extract, "track": _track_stage, "train": _train, "swap": _swap, "seghead": _seghead,
    "edit": _edit, "refiner": _refiner, "retouch": _retouch, "package": _package,
}


def run_stage(context: StageContext) -> StageOutcome:
    """Run the task's stage and say what it did."""
    return _RUNNERS[context.stage](context)


def _outputs(context: StageContext) -> list[SequencePattern]:
    from vfx.shot.layout import FRAME_STAGES, stage_output

    if context.stage not in FRAME_STAGES or (context.stage == "swap" and context.shot.outputs.exr is None):
        return []
    return [stage_output(context.shot, context.stage)]


def count_done(context: StageContext) -> tuple[int, int] | None:
    """(frames written, frames of the task) of a frame-rendering task, for progress lines; None for a task
    that writes no frames (it is done as a whole)."""
    patterns = _outputs(context)
    if not patterns or context.frames is None:
        return None
    frames = list(context.frames)
    return sum(all(p.path(f).is_file() for p in patterns) for f in frames), len(frames)
