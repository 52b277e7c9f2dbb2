"""Swap a shot: for every frame, crop the tracked face, swap it, blend it, paste it back, write the frame.

The swap is a frame stage of :mod:`vfx.render`: :func:`plan_swap` checks everything (model, persona, crop
size, frames, plate size, output folders) before anything is written and keeps the exact checkpoint it
checked; :class:`SwapStage` runs the network and the blend on batches of target crops on the device, and
pastes each blended crop back in a writer thread. The render loop reads ahead, writes behind and skips the
frames on disk, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vfx.blend.methods import check_blend_method
from vfx.blend.paste import Pasted, crop_matte, empty_paste, paste_back
from vfx.errors import ConfigError
from vfx.face.mask import face_polygon, rasterise_polygon
from vfx.faceset.cuts import read_cuts
from vfx.faceset.quality import QUALITY_FLAGS, FaceQuality, face_quality
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
from vfx.render.rendered import RenderInfo
from vfx.shot.frames import FrameRange
from vfx.shot.layout import plate_faces_folder
from vfx.shot.schema import Shot
from vfx.swap.swapper import FaceSwapper, SwapModel, check_swap_model, open_swap_model

__all__ = ["SwapPlan", "SwapStage", "SwapSummary", "plan_swap", "run_swap", "swap_shot"]

log = logging.getLogger(__name__)

SwapSummary = RenderSummary
"""What a swap run did (``vfx swap`` prints it)."""


@dataclass(kw_only=True)
class SwapPlan(RenderPlan):
    """Everything checked and resolved for a swap, before anything is written."""

    persona: str
    method: str
    checkpoint: Path
    """The exact checkpoint folder checked (a run folder's newest step when planned); the run loads this one."""


def plan_swap(shot: Shot, *, frames: FrameRange | None = None, persona: str | None = None,
              method: str | None = None, device: str = "cpu") -> SwapPlan:
    """Check a swap can run and resolve its settings; writes nothing.

    Raises:
        ConfigError: no model or persona in the shot, a persona the model lacks, another crop size, no
            outputs, an output folder that cannot be written.
        FrameRangeError / MissingFramesError / MediaError: frames outside the plate, missing frames, a plate
            whose size changes mid-sequence, an unreadable model.
    """
    if shot.model is None:
        raise ConfigError(f"Shot {shot.name!r} has no model", expected="a `model:` section naming a trained "
                          "checkpoint", found="no `model:` section", fix="add `model: {checkpoint: models/RUN, resolution: R}` (see `vfx train`)")
    persona = persona or (shot.swap.persona if shot.swap else None)
    if persona is None:
        raise ConfigError(f"Shot {shot.name!r} does not say which persona to swap in", expected="`swap: {persona: "
                          "NAME}` in the shot file or --persona NAME", found="no --persona and no `swap:` section",
                          fix="pass --persona NAME, or add `swap: {persona: NAME}` to the shot file")
    method = check_blend_method(method or shot.blend.method)
    checkpoint, _ = check_swap_model(shot.model.checkpoint, persona=persona, resolution=shot.model.resolution)
    base = plan_render(shot, "swap", frames=frames, resolution=shot.model.resolution, device=device)
    try:
        if base.plate_format is not None and base.plate.kind == "video" and \
                Path(base.plate_format.path(0)).suffix.lower() == ".exr":
            raise ConfigError("outputs.frames for a video plate must be an 8-bit format",
                              expected="a .png or .tif sequence", found=str(shot.outputs.frames),
                              fix="use outputs.exr for the EXR sequence")
    except BaseException:
        base.close()
        raise
    return SwapPlan(**vars(base), persona=persona, method=method, checkpoint=checkpoint)


class SwapStage(FrameStage):
    """Encode the target crops, decode them as the persona, blend them into the targets; paste back."""

    def __init__(self, plan: SwapPlan, model: SwapModel | None = None, batch_size: int | None = None) -> None:
        self.plan = plan
        self.model = model
        self.requested_batch = batch_size
        self.swapper: FaceSwapper | None = None
        self.skip = frozenset(plan.shot.swap.skip if plan.shot.swap else ())
        self.cuts: frozenset[int] = frozenset()
        self.flagged: dict[str, int] = {}
        self._lock = threading.Lock()

    def prepare(self, context: RenderContext) -> None:
        plan, shot = self.plan, self.plan.shot
        self.model = self.model or open_swap_model(plan.checkpoint, persona=plan.persona, resolution=plan.resolution,
                                                   device=plan.device, checked=True)
        self.swapper = FaceSwapper(self.model, plan.persona, method=plan.method, sigma=shot.blend.mask_blur_sigma_px,
                                   target_face_levels=shot.blend.target_face_levels)
        self.batch_size = self.requested_batch or (8 if self.swapper.device.type == "cuda" else 1)
        kept = read_cuts(plate_faces_folder(shot))
        self.cuts = frozenset(kept.cuts if kept is not None else ())

    def read(self, job: FrameJob, context: RenderContext) -> None:
        quality = face_quality(job.record if job.has_face else None, job.crop,
                               pixel_aspect=context.plan.plate.pixel_aspect, cut=job.frame in self.cuts)
        job.data["quality"] = quality
        if not job.warm:
            with self._lock:
                for flag in quality.flags:
                    self.flagged[flag] = self.flagged.get(flag, 0) + 1
        if quality.skipped(self.skip):  # swap.skip: this face passes through untouched
            job.crop = None
        if job.crop is not None:
            job.data["cover"] = rasterise_polygon(face_polygon(job.record.crop_landmarks), self.plan.resolution)  # type: ignore[union-attr]

    def process(self, batch: list[FrameJob], context: RenderContext) -> None:
        faces = [j for j in batch if j.crop is not None]
        if not faces:
            return
        targets = torch.from_numpy(np.stack([j.crop for j in faces]).transpose(0, 3, 1, 2).copy())
        covers = torch.from_numpy(np.stack([j.data["cover"] for j in faces])[:, None].copy())
        _, blended = self.swapper(targets, covers)  # type: ignore[misc]
        for job, crop in zip(faces, blended.permute(0, 2, 3, 1).cpu().numpy()):
            job.data["blended"] = crop

    def finish(self, job: FrameJob, context: RenderContext) -> FrameOutput:
        if job.crop is None or "blended" not in job.data:
            pasted: Pasted = empty_paste(job.rgb)
        else:
            pasted = paste_back(job.rgb, plate_space_crop(job.data["blended"], context), crop_matte(job.data["cover"]),
                                job.record.matrix, to_plate=to_plate_fn(context), in_place=True)  # type: ignore[union-attr]
        quality: FaceQuality = job.data["quality"]
        info = RenderInfo(frame=job.frame, persona=self.plan.persona, model=self.model.label,  # type: ignore[union-attr]
                          blend=self.plan.method, matrix=None if job.record is None else job.record.matrix,
                          crop_size=self.plan.resolution, face_box=pasted.box,
                          extra={**quality.to_extra(), "skipped": "yes" if quality.skipped(self.skip) else "no"})
        return FrameOutput(rgb=pasted.frame, matte=pasted.matte, info=info)

    def summary_lines(self) -> list[str]:
        flagged = {k: v for k, v in self.flagged.items() if k not in ("ok", "no_face")}
        if not flagged:
            return []
        counts = ", ".join(f"{flag} {flagged[flag]}" for flag in QUALITY_FLAGS if flag in flagged)
        verb = f"passed through untouched ({', '.join(sorted(self.skip))})" if self.skip else "swapped and flagged"
        return [f"faces flagged: {counts}; {verb}"]


def run_swap(plan: SwapPlan, *, batch_size: int | None = None, show_progress: bool = True,
             workers: int = 0, model: SwapModel | None = None) -> SwapSummary:
    """Render the planned frames (those not on disk yet) and return what was done.

    Args:
        plan: from :func:`plan_swap`.
        batch_size: crops per network call; default 8 on CUDA, 1 on CPU (streaming).
        show_progress: report progress per frame on stderr.
        workers: processes for the plate's face extraction (0: one per core).
        model: the plan's model, already loaded (a farm worker keeps it between chunks); default: loaded here.
    """
    shot = plan.shot
    outputs = {k: str(v) for k, v in (("exr", shot.outputs.exr), ("frames", shot.outputs.frames)) if v is not None}
    return render(plan, SwapStage(plan, model, batch_size), show_progress=show_progress, workers=workers,
                  outputs=outputs)


def swap_shot(shot: Shot, *, frames: FrameRange | None = None, persona: str | None = None, method: str | None = None,
              device: str = "cpu", batch_size: int | None = None, show_progress: bool = True,
              workers: int = 0) -> SwapSummary:
    """Swap a shot's face for a persona and write its frames: :func:`plan_swap` then :func:`run_swap`.

    Example:
        >>> from vfx.shot import load_shot  # doctest: +SKIP
        >>> print(swap_shot(load_shot("shots/sh010.yaml"), frames=FrameRange.parse("1001-1010")).describe())
    """
    plan = plan_swap(shot, frames=frames, persona=persona, method=method, device=device)
    return run_swap(plan, batch_size=batch_size, show_progress=show_progress, workers=workers)
