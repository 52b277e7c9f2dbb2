"""Retouch a shot: for every frame, warp the face crop to the edited layout, refine it, paste it back.

For each frame the tracked (temporally filtered) landmarks give the crop and the frame's own layout; the
shot's edits, keyed over the shot, give the edited layout; the sparse-attention layout warp moves the
crop's pixels to it (outside the edit mask nothing moves), the per-shot refiner repaints the edit mask, and
only the edit mask (feathered inward) is pasted back, so every pixel outside it keeps the source's bits.
The source is the plate actor or the swapped frames. Frames without a face pass through untouched.

The refiner trains once per shot on the shot's own frames (perturbed and warped back, see
:mod:`vfx.retouch.perturb`) and is kept beside the outputs; a rerun reuses it and renders only the frames
that are missing, so a killed run resumes where it stopped. Every check runs before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vfx.blend.paste import crop_matte, empty_paste, paste_back
from vfx.errors import ConfigError
from vfx.face.layout import colourise_layout
from vfx.faceset.store import FaceRecord
from vfx.io.image import write_image
from vfx.render.loop import (
    FrameJob,
    FrameOutput,
    FrameStage,
    RenderContext,
    RenderPlan,
    RenderSummary,
    plan_render,
    plate_space_crop,
    render,
    to_plate_fn,
)
from vfx.render.rendered import RETOUCH_MATTE_CHANNEL, RenderInfo
from vfx.retouch.edits import (
    Edit,
    PaintEdit,
    PaintedMap,
    edited_layout,
    edits_from_shot,
    read_painted_map,
    select_edits,
)
from vfx.retouch.perturb import hole_window, perturbed_sample, window_sample
from vfx.retouch.refiner import (
    RefinerConfig,
    TrainedRefiner,
    load_refiner,
    refine,
    save_refiner,
    train_refiner,
)
from vfx.retouch.warp import WarpConfig, layout_warp
from vfx.shot.frames import FrameRange, SequencePattern
from vfx.shot.layout import refiner_folder
from vfx.shot.schema import Shot
from vfx.utils.atomic import atomic_write_text
from vfx.utils.progress import progress as progress_bar

__all__ = [
    "RetouchPlan",
    "RetouchStage",
    "RetouchSummary",
    "RetouchedFrame",
    "plan_retouch",
    "refiner_folder",
    "retouch_crop",
    "retouch_shot",
    "run_retouch",
]

log = logging.getLogger(__name__)

UNFILLED_WARNING = 0.5
"""A region of the edited layout whose pixels the warp could mostly not fill from the source is reported."""
RETOUCH_NOTICE = ("This frame contains a face retouched by vfx (semantic layout edit); the face shown is "
                  "not an unaltered photograph of the person it depicts.")
"""``vfx/synthetic`` on a retouched plate (a retouched swap keeps the swap's notice)."""
REFINER_MANIFEST = "refiner.json"
REFINER_WINDOW = 96
"""Side of the windows around the hole the refiner trains on (at most the crop's side)."""
REFINER_MARGIN = 16
"""Context the refiner sees around the edit mask at inference, in crop pixels."""
REFINER_LR = 5e-4


RetouchSummary = RenderSummary
"""What a retouch run did (``vfx retouch`` prints it)."""


@dataclass(kw_only=True)
class RetouchPlan(RenderPlan):
    """Everything checked and resolved for a retouch, before anything is written."""

    edits: list[Edit]
    source: str  # "plate" or "swap"
    painted: dict[str, np.ndarray]
    warp: WarpConfig = field(default_factory=WarpConfig)

    @property
    def swap_frames(self) -> SequencePattern | None:
        """The rendered frames retouched (the latent edit's, else the swap's), None for the plate."""
        return self.source_frames


@dataclass
class RetouchedFrame:
    """One crop through the retouch (the preview shows these)."""

    crop: np.ndarray  # (r, r, 3) working space
    layout: np.ndarray
    edited: np.ndarray
    warped: np.ndarray
    refined: np.ndarray
    mask: np.ndarray  # (r, r) bool
    unfilled: dict[str, float]


def plan_retouch(shot: Shot, *, frames: FrameRange | None = None, edits: list[str] | None = None,
                 device: str = "cpu") -> RetouchPlan:
    """Check a retouch can run and resolve its settings; writes nothing.

    Raises:
        ConfigError: no edits, an invalid edit (unknown group or region: the valid names are listed), an
            unknown ``--edit``, a swap source without a swap, an output folder that cannot be written.
        MediaError: a painted map that is missing, the wrong size or not a label map; missing swapped frames.
        FrameRangeError / MissingFramesError: frames outside the plate, or missing.
    """
    if not shot.retouch:
        raise ConfigError(f"Shot {shot.name!r} has no retouch edits", expected="a `retouch:` list in the shot file",
                          found="an empty or missing `retouch:` list", fix="add e.g. `retouch: [{name: smile, group: mouth, scale: [1.1, 1.0]}]`")
    chosen = select_edits(edits_from_shot(shot.retouch), edits)
    options = shot.retouch_options
    source = options.source if options.source != "auto" else ("swap" if shot.swap is not None else "plate")
    if source == "swap" and shot.outputs.exr is None:
        raise ConfigError(f"Shot {shot.name!r} retouches the swap but renders none",
                          expected="outputs.exr (the swapped frames `vfx swap` renders)",
                          fix="add outputs.exr, or set `retouch_options: {source: plate}`", found="no outputs.exr")
    base = plan_render(shot, "retouch", frames=frames, resolution=options.resolution, device=device,
                       source=source == "swap", crop_from="source")
    try:
        for edit in chosen:
            if isinstance(edit, PaintEdit) and edit.keyframe not in base.plate.frame_range:
                raise ConfigError(f"Paint edit {edit.name!r} is keyed on frame {edit.keyframe}, outside the plate",
                                  expected=f"a frame of {base.plate.frame_range}", found=f"frame {edit.keyframe}",
                                  fix=f"set the edit's `keyframe:` to a frame of {base.plate.frame_range}")
        size = (options.resolution, options.resolution)
        painted = {e.name: read_painted_map(e.map, size) for e in chosen if isinstance(e, PaintEdit)}
    except BaseException:
        base.close()
        raise
    return RetouchPlan(**vars(base), edits=chosen, source=source, painted=painted)


def retouch_crop(crop: np.ndarray, landmarks: np.ndarray, edits: list[Edit], frame: int, *,
                 painted: dict[str, PaintedMap] | None = None, refiner: TrainedRefiner | None = None,
                 warp: WarpConfig | None = None, device: str = "cpu") -> RetouchedFrame:
    """Retouch one aligned crop: layouts, layout warp, refiner (when given).

    Args:
        crop: (r, r, 3) float32 working-space crop.
        landmarks: (68, 2) its crop landmarks (filtered track).
        edits, frame, painted: the edits and the frame they are evaluated at.
        refiner: the shot's refiner, or None for the warp alone.
    """
    size = crop.shape[:2]
    layout, edited, _ = edited_layout(landmarks, size, edits, frame, painted=painted)
    image = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).to(device)
    result = layout_warp(image, torch.from_numpy(layout), torch.from_numpy(edited), config=warp)
    warped = result.image
    refined = warped
    if refiner is not None and bool(result.mask.any()):
        # The refiner sees a window around the edit (as it was trained), not the whole crop.
        y0, x0, y1, x1 = hole_window(result.mask, refiner.config.size_multiple, margin=REFINER_MARGIN)
        window = np.s_[y0:y1, x0:x1]
        refined = warped.clone()
        refined[(slice(None), *window)] = refine(
            refiner, torch.from_numpy(edited)[window][None].to(device), warped[(slice(None), *window)][None],
            result.mask[window][None, None].float())[0].to(warped.dtype)
    return RetouchedFrame(crop=crop, layout=layout, edited=edited, warped=warped.cpu().numpy().transpose(1, 2, 0),
                          refined=refined.cpu().numpy().transpose(1, 2, 0), mask=result.mask.cpu().numpy(),
                          unfilled=result.unfilled_fraction)


# ---------------------------------------------------------------------------------------------- refiner

def _refiner_key(plan: RetouchPlan, frames: list[int]) -> str:
    options = plan.shot.retouch_options
    recipe = {"plate": str(plan.shot.plate.path), "source": plan.source, "resolution": plan.resolution,
              "frames": frames, "width": options.refiner_width, "seconds": options.refiner_seconds,
              "samples": options.refiner_samples}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def _shot_refiner(plan: RetouchPlan, records: dict[int, FaceRecord], read_crop, show_progress: bool) -> TrainedRefiner:
    """The shot's refiner: loaded when one trained on the same recipe is on disk, else trained and saved."""
    options = plan.shot.retouch_options
    with_face = sorted(f for f, r in records.items() if r.matrix is not None)
    count = min(options.refiner_samples, len(with_face))
    picks = [with_face[round(i * (len(with_face) - 1) / max(count - 1, 1))] for i in range(count)]
    key = _refiner_key(plan, picks)
    folder = refiner_folder(plan.shot)
    manifest = folder / REFINER_MANIFEST
    if manifest.is_file() and json.loads(manifest.read_text()).get("retouch_key") == key:
        return load_refiner(folder, plan.device)
    rng = np.random.default_rng(0)
    frames = progress_bar(picks, total=len(picks), desc="refiner samples") if show_progress else picks
    samples = []
    for frame in frames:
        crop, landmarks = read_crop(frame)
        sample = perturbed_sample(crop, landmarks, rng, warp=plan.warp, device=plan.device)
        samples.append(window_sample(sample, min(REFINER_WINDOW, plan.resolution)))
    log.info("training the shot's refiner on %d samples for %.0f s", len(samples), options.refiner_seconds)
    trained = train_refiner(samples, RefinerConfig(width=options.refiner_width, lr=REFINER_LR), device=plan.device,
                            seconds=options.refiner_seconds)
    save_refiner(folder, trained)
    data = json.loads(manifest.read_text())
    data["retouch_key"] = key
    atomic_write_text(manifest, json.dumps(data, indent=2) + "\n")
    return trained


# ---------------------------------------------------------------------------------------------- run

class RetouchStage(FrameStage):
    """Warp each crop to its edited layout, refine it, paste the edit mask back over the source frame."""

    describe_verb = "retouched"

    def __init__(self, plan: RetouchPlan, *, show_progress: bool, preview: Path | None, refiner_only: bool) -> None:
        self.plan = plan
        self.show_progress = show_progress
        self.preview = preview
        self.refiner_only = refiner_only
        self.refiner: TrainedRefiner | None = None
        self.painted: dict[str, PaintedMap] = {}
        self.found: dict[str, str] = {}
        self.edit_names = ",".join(e.name for e in plan.edits)

    def prepare(self, context: RenderContext) -> None:
        plan, r = self.plan, self.plan.resolution
        for edit in plan.edits:
            if isinstance(edit, PaintEdit):
                record = context.records.get(edit.keyframe)
                if record is None or record.matrix is None:
                    raise ConfigError(f"Paint edit {edit.name!r}: no face on its keyframe {edit.keyframe}",
                                      expected="a keyframe where the face is tracked",
                                      fix="paint on a frame with the face and set `keyframe:` to it",
                                      found=f"no tracked face on frame {edit.keyframe}")
                own, _, _ = edited_layout(record.crop_landmarks, (r, r), [], edit.keyframe)
                changes = np.where(plan.painted[edit.name] != own, plan.painted[edit.name], 255).astype(np.uint8)
                self.painted[edit.name] = PaintedMap(changes=changes, landmarks=record.crop_landmarks)
        if plan.shot.retouch_options.refiner and (context.todo or self.refiner_only):
            self.refiner = _shot_refiner(plan, context.records, context.read_crop, self.show_progress)

    def process(self, batch: list[FrameJob], context: RenderContext) -> None:
        for job in batch:
            if job.crop is None:
                continue
            retouched = retouch_crop(job.crop, job.record.crop_landmarks, self.plan.edits, job.frame,  # type: ignore[union-attr]
                                     painted=self.painted, refiner=self.refiner, warp=self.plan.warp,
                                     device=self.plan.device)
            for region, fraction in retouched.unfilled.items():
                if fraction > UNFILLED_WARNING and region not in self.found:
                    self.found[region] = (f"frame {job.frame}: the warp found nothing to copy for {fraction:.0%} of "
                                          f"region {region!r} (the source has too little of it); the refiner paints it")
                    log.warning(self.found[region])
            if self.preview is not None and (retouched.mask.any() or job.frame == context.todo[-1]):
                write_preview(self.preview, retouched)  # the first frame the edits change
                self.preview = None
            job.data["retouched"] = retouched

    def finish(self, job: FrameJob, context: RenderContext) -> FrameOutput:
        retouched: RetouchedFrame | None = job.data.get("retouched")
        if retouched is None:
            pasted = empty_paste(job.rgb)
        else:
            pasted = paste_back(job.rgb, plate_space_crop(retouched.refined, context),
                                crop_matte(retouched.mask.astype(np.float32)), job.record.matrix,  # type: ignore[union-attr]
                                to_plate=to_plate_fn(context), in_place=True)
        source = job.source
        matte = pasted.matte if source is None else np.maximum(source.matte, pasted.matte)
        info = _render_info(job.frame, job.record, self.plan.resolution, pasted.box,
                            None if source is None else source.info, self.edit_names)
        return FrameOutput(rgb=pasted.frame, matte=matte, info=info, layers={RETOUCH_MATTE_CHANNEL: pasted.matte})

    def warnings(self) -> list[str]:
        return list(self.found.values())


def run_retouch(plan: RetouchPlan, *, show_progress: bool = True, workers: int = 0,
                preview: Path | None = None, refiner_only: bool = False) -> RetouchSummary:
    """Render the planned frames (those not on disk yet) and return what was done.

    Args:
        plan: from :func:`plan_retouch`.
        show_progress: report progress on stderr.
        workers: processes for the plate's face extraction (0: one per core).
        preview: also write a preview PNG (original | edited layout | warp | refined) here, of the first
            rendered frame the edits change.
        refiner_only: train (or find) the shot's refiner and render nothing: a farm's refiner task, run
            once before the retouch tasks, which then all load it.
    """
    outputs = {"retouch exr": plan.exr.pattern}  # type: ignore[union-attr]
    if plan.plate_format is not None:
        outputs["retouch frames"] = plan.plate_format.pattern
    stage = RetouchStage(plan, show_progress=show_progress, preview=preview, refiner_only=refiner_only)
    return render(plan, stage, show_progress=show_progress, workers=workers, outputs=outputs,
                  prepare_always=refiner_only, render_frames=not refiner_only)


def _render_info(frame: int, record: FaceRecord | None, size: int, box: tuple[int, int, int, int] | None,
                 swap: RenderInfo | None, edits: str) -> RenderInfo:
    """How a retouched frame was made: the swap's record when it retouches a swap, plus the retouch's own."""
    extra = {"retouch": edits}
    if swap is not None:
        if box is not None and swap.face_box is not None:
            box = (min(box[0], swap.face_box[0]), min(box[1], swap.face_box[1]),
                   max(box[2], swap.face_box[2]), max(box[3], swap.face_box[3]))
        return RenderInfo(frame=frame, persona=swap.persona, model=swap.model, blend=swap.blend, matrix=swap.matrix,
                          crop_size=swap.crop_size, face_box=box or swap.face_box, extra={**swap.extra, **extra})
    matrix = None if record is None else record.matrix
    extra["synthetic"] = RETOUCH_NOTICE
    return RenderInfo(frame=frame, persona="", model="", blend="retouch", matrix=matrix,
                      crop_size=size if matrix is not None else 0, face_box=box, extra=extra)


def write_preview(path: Path, frame: RetouchedFrame) -> Path:
    """The preview PNG: original crop | edited layout | warp | refined, the edit mask outlined on the last two."""
    import cv2

    def tile(image: np.ndarray) -> np.ndarray:
        return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

    outline = cv2.morphologyEx(frame.mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    warp, refined = tile(frame.warped), tile(frame.refined)
    for image in (warp, refined):
        image[outline] = (0, 255, 0)
    sheet = np.concatenate([tile(frame.crop), colourise_layout(frame.edited), warp, refined], axis=1)
    write_image(path, sheet.astype(np.float32) / 255.0, channels=("R", "G", "B"))
    return path


def retouch_shot(shot: Shot, *, frames: FrameRange | None = None, edits: list[str] | None = None,
                 device: str = "cpu", show_progress: bool = True, workers: int = 0,
                 preview: Path | None = None) -> RetouchSummary:
    """Retouch a shot and write its frames: :func:`plan_retouch` then :func:`run_retouch`.

    Example:
        >>> from vfx.shot import load_shot  # doctest: +SKIP
        >>> print(retouch_shot(load_shot("shots/sh010.yaml"), edits=["smile"]).describe())
    """
    plan = plan_retouch(shot, frames=frames, edits=edits, device=device)
    return run_retouch(plan, show_progress=show_progress, workers=workers, preview=preview)

