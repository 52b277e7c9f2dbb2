"""Swap a shot: for every frame, crop the tracked face, swap it, blend it, paste it back, write the frame.

Frames flow through three stages that overlap: a reader thread decodes plate frames and cuts the target
crops ahead of time, the main thread runs the network and the blend on the device in batches, and writer
threads paste the faces back and write the files. So the device never waits on the disk and the disk never
waits on the device; at most a few batches are in memory at once, whatever the shot's length.

Every check (model, persona, crop size, frame range, plate size, output folders) runs before anything is
written. Frames already on disk are not rendered again, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vfx.align.similarity import warp_to_crop
from vfx.blend.methods import check_blend_method
from vfx.blend.paste import Pasted, crop_matte, empty_paste, paste_back
from vfx.errors import ConfigError
from vfx.export.frames import (
    RenderInfo,
    frame_timecode,
    plate_start_timecode,
    write_plate_format,
    write_rendered_frame,
)
from vfx.face.mask import face_polygon, rasterise_polygon
from vfx.faceset.plate_faces import plate_faces_folder, track_plate_faces
from vfx.faceset.store import FaceRecord
from vfx.utils.atomic import check_writable
from vfx.io.color import WORKING_SPACE, ColorConverter
from vfx.io.image import Image
from vfx.io.plate import Plate, check_frame_size, check_plate_size, open_plate
from vfx.shot.frames import FrameRange, SequencePattern, format_frames
from vfx.shot.schema import Shot
from vfx.swap.swapper import FaceSwapper, SwapModel, check_swap_model, open_swap_model
from vfx.utils.progress import progress as progress_bar
from vfx.utils.threads import prefetch

__all__ = ["SwapPlan", "SwapSummary", "plan_swap", "run_swap", "swap_shot"]

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class SwapSummary:
    """What a swap run did (``vfx swap`` prints it)."""

    frames: int
    rendered: int
    skipped: int
    no_face: tuple[int, ...]
    seconds: float
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.rendered / self.seconds if self.seconds > 0 else float("inf")

    def describe(self) -> str:
        lines = [f"frames {self.frames}: rendered {self.rendered}, already on disk {self.skipped}",
                 f"frames without a face (plate passed through): {format_frames(self.no_face) if self.no_face else 'none'}",
                 f"{self.seconds:.1f} s ({self.fps:.2f} frames/s)"]
        lines += [f"{name}: {path}" for name, path in self.outputs.items()]
        return "\n".join(lines)


@dataclass
class SwapPlan:
    """Everything checked and resolved for a swap, before anything is written."""

    shot: Shot
    frames: FrameRange
    persona: str
    method: str
    device: str
    resolution: int
    exr: SequencePattern | None
    plate_format: SequencePattern | None
    faces_folder: Path


@dataclass
class _Job:
    frame: int
    image: Image
    rgb: np.ndarray  # (H, W, 3) float32 in the plate's colour space
    record: FaceRecord | None
    target: np.ndarray | None = None  # (r, r, 3) working-space crop
    cover: np.ndarray | None = None  # (r, r) polygon coverage
    blended: np.ndarray | None = None


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
                          "checkpoint", fix="add `model: {checkpoint: models/RUN, resolution: R}` (see `vfx train`)")
    persona = persona or (shot.swap.persona if shot.swap else None)
    if persona is None:
        raise ConfigError(f"Shot {shot.name!r} does not say which persona to swap in", expected="`swap: {persona: "
                          "NAME}` in the shot file or --persona NAME")
    method = check_blend_method(method or shot.blend.method)
    faces_folder = plate_faces_folder(shot)
    check_swap_model(shot.model.checkpoint, persona=persona, resolution=shot.model.resolution)
    plate, wanted = open_plate(shot.plate, frames)
    try:
        check_plate_size(plate, wanted)
        plate_format = SequencePattern(str(shot.outputs.frames)) if shot.outputs.frames else None
        if plate_format is not None and plate.kind == "video" and Path(plate_format.path(0)).suffix.lower() in (".exr",):
            raise ConfigError("outputs.frames for a video plate must be an 8-bit format",
                              expected="a .png or .tif sequence", found=str(shot.outputs.frames),
                              fix="use outputs.exr for the EXR sequence")
    finally:
        plate.close()
    exr = SequencePattern(str(shot.outputs.exr)) if shot.outputs.exr else None
    for pattern in (exr, plate_format):
        if pattern is not None:
            check_writable(pattern.directory)
    return SwapPlan(shot=shot, frames=wanted, persona=persona, method=method, device=device,
                    resolution=shot.model.resolution, exr=exr, plate_format=plate_format, faces_folder=faces_folder)


def _done(plan: SwapPlan, frame: int) -> bool:
    return all(p is None or p.path(frame).is_file() for p in (plan.exr, plan.plate_format))


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
    started = time.perf_counter()
    shot = plan.shot
    plate, _ = open_plate(shot.plate, plan.frames)
    try:
        return _render(plan, plate, started, batch_size=batch_size, show_progress=show_progress, workers=workers,
                       model=model)
    finally:
        plate.close()


def _render(plan: SwapPlan, plate: Plate, started: float, *, batch_size: int | None, show_progress: bool,
            workers: int, model: SwapModel | None) -> SwapSummary:
    shot = plan.shot
    todo = [f for f in plan.frames if not _done(plan, f)]
    skipped = len(plan.frames) - len(todo)
    if not todo:  # nothing to render: no faces to read, no model to load
        return SwapSummary(frames=len(plan.frames), rendered=0, skipped=skipped, no_face=(),
                           seconds=time.perf_counter() - started, outputs=_outputs(shot))
    records = track_plate_faces(shot, plate, plan.frames, crop_size=plan.resolution,
                                track=shot.swap.track if shot.swap else 0, workers=workers)
    model = model or open_swap_model(shot.model.checkpoint, persona=plan.persona,  # type: ignore[union-attr]
                                     resolution=plan.resolution, device=plan.device)
    swapper = FaceSwapper(model, plan.persona, method=plan.method, sigma=shot.blend.mask_blur_sigma_px,
                          target_face_levels=shot.blend.target_face_levels)
    batch_size = batch_size or (8 if swapper.device.type == "cuda" else 1)
    no_face: list[int] = []
    shot_hash = shot.content_hash()
    to_working = ColorConverter(plate.colorspace, WORKING_SPACE)
    to_plate = to_working.inverse()
    start_tc, start_frame = plate_start_timecode(plate)
    r = plan.resolution

    def read(frame: int) -> _Job:
        image = plate.read(frame)
        check_frame_size(plate, frame, image.size)  # a file replaced since the plan's header check
        job = _Job(frame, image, image.rgb(), records.get(frame))
        if job.record is not None:
            job.target = to_working.apply(warp_to_crop(job.rgb, job.record.matrix, r, interpolation="area"))
            job.cover = rasterise_polygon(face_polygon(job.record.crop_landmarks), r)
        return job

    def write(job: _Job) -> int:
        rgb = job.rgb  # its own array (Image.rgb() stacks the channels): pasted into in place
        if job.record is None or job.blended is None or job.cover is None:
            pasted: Pasted = empty_paste(rgb)
        else:
            # A display-referred plate holds [0, 1]; the blend's and the warp's ringing must not reach past it
            # (a scene-linear plate keeps its range: highlights above 1 are the plate's own).
            crop = np.clip(job.blended, 0.0, 1.0) if to_plate.is_identity else job.blended
            pasted = paste_back(rgb, crop, crop_matte(job.cover), job.record.matrix,
                                to_plate=None if to_plate.is_identity else to_plate.apply, in_place=True)
        info = RenderInfo(frame=job.frame, persona=plan.persona, model=model.label, blend=plan.method,
                          matrix=None if job.record is None else job.record.matrix, crop_size=r, face_box=pasted.box)
        tc = job.image.exr_metadata.timecode or frame_timecode(job.frame, plate.fps, start_frame=start_frame,
                                                               start_timecode=start_tc)
        if plan.exr is not None:
            write_rendered_frame(plan.exr.path(job.frame), pasted.frame, pasted.matte, info, timecode=tc,
                                 fps=plate.fps, colorspace=plate.colorspace, shot_hash=shot_hash,
                                 dtype=shot.outputs.exr_dtype, compression=shot.outputs.exr_compression)
        if plan.plate_format is not None:
            write_plate_format(plan.plate_format.path(job.frame), job.image, pasted.frame)
        return job.frame

    pending: list[Future[int]] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="vfx-swap-write") as writers:
        jobs = prefetch((read(f) for f in todo), depth=2 * batch_size, name="vfx-swap-read")
        if show_progress:
            jobs = progress_bar(jobs, total=len(todo), desc="swap")
        for batch in _batches(jobs, batch_size):
            faces = [j for j in batch if j.target is not None]
            if faces:
                targets = torch.from_numpy(np.stack([j.target for j in faces]).transpose(0, 3, 1, 2).copy())
                covers = torch.from_numpy(np.stack([j.cover for j in faces])[:, None].copy())
                _, blended = swapper(targets, covers)
                blended_host = blended.permute(0, 2, 3, 1).cpu().numpy()
                for j, crop in zip(faces, blended_host):
                    j.blended = crop
            no_face += [j.frame for j in batch if j.target is None]
            pending += [writers.submit(write, j) for j in batch]
            pending = _drain(pending, keep=2 * batch_size)
        for future in pending:
            future.result()
    return SwapSummary(frames=len(plan.frames), rendered=len(todo), skipped=skipped, no_face=tuple(no_face),
                       seconds=time.perf_counter() - started, outputs=_outputs(shot))


def _outputs(shot: Shot) -> dict[str, str]:
    return {k: str(v) for k, v in (("exr", shot.outputs.exr), ("frames", shot.outputs.frames)) if v is not None}


def _batches(jobs: Iterator[_Job], size: int) -> Iterator[list[_Job]]:
    batch: list[_Job] = []
    for job in jobs:
        batch.append(job)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _drain(pending: list[Future[int]], keep: int) -> list[Future[int]]:
    """Wait for the oldest writes until at most ``keep`` are in flight (bounded memory); re-raise failures."""
    while len(pending) > keep:
        pending.pop(0).result()
    done = [f for f in pending if f.done()]
    for f in done:
        f.result()
    return [f for f in pending if not f.done()]


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
