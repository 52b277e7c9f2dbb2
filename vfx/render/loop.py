"""The one frame loop every frame stage (swap, latent edit, layout retouch) runs in.

A stage is a plan (:class:`RenderPlan`: checks everything, writes nothing, keeps what it resolved) and a
:class:`FrameStage` (what it does to a batch of frames). The loop does the rest, once for all stages:

- the plate, opened once by the plan (a header-only read) and used by the run;
- the shot's tracked faces (:func:`vfx.faceset.plate_faces.track_plate_faces`, shared by every stage);
- skipping the frames already on disk, so a killed run resumes where it stopped;
- a reader thread ahead (plate or rendered source frame, the face crop in the working space), the stage's
  batches on the main thread, writer threads behind (paste-back, the rendered EXR, the plate-format copy),
  so the device never waits on the disk and the disk never waits on the device, with a bounded number of
  frames in memory whatever the shot's length;
- the rendered-EXR format and its metadata (:mod:`vfx.render.rendered`), and the run's summary.

Frames are processed in frame order (a latent edit's warm start relies on it); warm-up frames (a farm
chunk's halo) go through the stage but are never written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from vfx.align.similarity import warp_to_crop
from vfx.faceset.plate_faces import track_plate_faces
from vfx.faceset.store import FaceRecord
from vfx.io.color import WORKING_SPACE, ColorConverter, DisplayView
from vfx.io.image import Image
from vfx.io.plate import Plate, check_frame_size, check_plate_size, open_plate
from vfx.io.video import check_movie_output
from vfx.render.rendered import (
    PlateHeader,
    RenderedFrame,
    RenderInfo,
    check_rendered_frames,
    frame_timecode,
    plate_start_timecode,
    read_rendered_frame,
    write_plate_format,
    write_rendered_frame,
)
from vfx.shot.frames import FrameRange, SequencePattern, format_frames
from vfx.shot.layout import (
    check_handoff_destinations,
    plate_faces_folder,
    plate_format_sequence,
    source_sequence,
    stage_output,
)
from vfx.shot.schema import Shot
from vfx.utils.atomic import check_writable
from vfx.utils.device import resolve_device
from vfx.utils.progress import progress as progress_bar
from vfx.utils.threads import prefetch

__all__ = ["FrameJob", "FrameOutput", "FrameStage", "RenderContext", "RenderPlan", "RenderSummary", "plan_render",
           "render"]

log = logging.getLogger(__name__)

WRITERS = 2
"""Writer threads behind the stage."""


@dataclass(kw_only=True)
class RenderPlan:
    """What every frame stage's plan resolves before anything is written; the run uses exactly this.

    Attributes:
        shot: the shot.
        stage: ``swap``, ``edit`` or ``retouch`` (its line in :data:`vfx.shot.layout.STAGES`).
        frames: the frames to render, checked against the plate.
        plate: the plate, opened once by the plan (header only) and closed by the run.
        resolution: the face crop's side r the stage works at.
        track: the face track the stage changes.
        exr: the rendered EXR sequence it writes (None: a swap that writes only the plate-format copy).
        plate_format: the copy in the plate's own format it writes, or None.
        source_frames: the rendered frames it starts from (an earlier stage's), or None for the plate.
        crop_from: where the face crop is cut: the plate, the source frame, or nowhere (``none``).
        device: the torch device.
    """

    shot: Shot
    stage: str
    frames: FrameRange
    plate: Plate
    resolution: int
    track: int
    exr: SequencePattern | None
    plate_format: SequencePattern | None = None
    source_frames: SequencePattern | None = None
    crop_from: Literal["plate", "source", "none"] = "plate"
    device: str = "cpu"

    @property
    def outputs(self) -> list[SequencePattern]:
        return [p for p in (self.exr, self.plate_format) if p is not None]

    def done(self, frame: int) -> bool:
        """Every output of ``frame`` is on disk."""
        return all(p.path(frame).is_file() for p in self.outputs)

    def todo(self) -> list[int]:
        return [f for f in self.frames if not self.done(f)]

    def close(self) -> None:
        self.plate.close()


def plan_render(shot: Shot, stage: str, *, frames: FrameRange | None, resolution: int, device: str = "cpu",
                source: bool | None = None, crop_from: Literal["plate", "source", "none"] = "plate") -> RenderPlan:
    """The part of a frame stage's plan every stage shares; writes nothing.

    Opens the plate (headers only) and checks the frames lie in it with none missing and one size, resolves
    the stage's outputs and its source frames from :mod:`vfx.shot.layout` and checks they can be written and
    are all on disk.

    Args:
        source: start from the earlier stage's rendered frames (True), the plate (False), or as the stage chain
            says (None).

    Raises:
        ConfigError: the shot names no output for the stage; an output folder cannot be written.
        FrameRangeError / MissingFramesError / MediaError: frames outside the plate, missing plate or source
            frames, a plate whose size changes mid-sequence.
    """
    device = resolve_device(device)
    plate_faces_folder(shot)  # the shot must name a frame output to keep the plate's faces beside
    check_handoff_destinations(shot)  # the review and package a finished run writes, and outputs apart from inputs
    if shot.outputs.review is not None:  # the review a finished run writes: its codec, container and view now
        check_movie_output(shot.outputs.review, shot.review.codec)
        DisplayView(shot.plate.colorspace, shot.review.display, shot.review.view)
    exr = None if stage == "swap" and shot.outputs.exr is None else stage_output(shot, stage)
    plate_format = plate_format_sequence(shot, stage)
    source_frames = None if source is False else source_sequence(shot, stage)
    plate, wanted = open_plate(shot.plate, frames)
    try:
        check_plate_size(plate, wanted)
        if source_frames is not None:
            check_rendered_frames(source_frames, wanted)
        for pattern in (exr, plate_format):
            if pattern is not None:
                check_writable(pattern.directory)
    except BaseException:
        plate.close()
        raise
    return RenderPlan(shot=shot, stage=stage, frames=wanted, plate=plate, resolution=resolution,
                      track=shot.swap.track if shot.swap else 0, exr=exr, plate_format=plate_format,
                      source_frames=source_frames, crop_from=crop_from, device=device)


@dataclass
class FrameJob:
    """One frame through the loop.

    Convention:
        - rgb: (H, W, 3) float32, the frame to change in the plate's colour space (its own array: pasted into)
        - crop: (r, r, 3) float32 working-space face crop, or None (no face, or the stage cuts none)
    """

    frame: int
    rgb: np.ndarray
    record: FaceRecord | None
    image: Image | None = None
    """The plate frame, when it was read."""
    source: RenderedFrame | None = None
    """The rendered frame the stage starts from."""
    crop: np.ndarray | None = None
    warm: bool = False
    """A warm-up frame: processed, never written."""
    data: dict[str, Any] = field(default_factory=dict)
    """The stage's own per-frame values, from :meth:`FrameStage.read` and :meth:`FrameStage.process`."""

    @property
    def has_face(self) -> bool:
        return self.record is not None and self.record.matrix is not None


@dataclass
class FrameOutput:
    """What a stage makes of a frame: the finished beauty, its matte, extra matte layers, how it was made."""

    rgb: np.ndarray
    matte: np.ndarray
    info: RenderInfo
    layers: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class RenderContext:
    """What the loop resolved for a run, handed to the stage."""

    plan: RenderPlan
    records: dict[int, FaceRecord]
    to_working: ColorConverter
    to_plate: ColorConverter
    todo: list[int]

    def read_plate(self, frame: int) -> Image:
        """A plate frame, checked to have the plate's size (a file replaced since the plan's header check)."""
        plate = self.plan.plate
        image = plate.read(frame)
        check_frame_size(plate, frame, image.size,
                         (image.data_window, image.display_window) if plate.kind == "sequence" else None)
        return image

    def cut_crop(self, rgb: np.ndarray, record: FaceRecord) -> np.ndarray:
        """The (r, r, 3) working-space face crop of a plate-space frame."""
        return self.to_working.apply(warp_to_crop(rgb, record.matrix, self.plan.resolution, interpolation="area"))

    def read_crop(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """The crop of ``frame`` the stage works on, and its crop landmarks (refiner samples, keyframes)."""
        record = self.records[frame]
        rgb = self._crop_source(frame)
        return self.cut_crop(rgb, record), record.crop_landmarks

    def _crop_source(self, frame: int) -> np.ndarray:
        if self.plan.crop_from == "source" and self.plan.source_frames is not None:
            return read_rendered_frame(self.plan.source_frames.path(frame)).rgb
        return self.read_plate(frame).rgb()


class FrameStage:
    """What a frame stage does; the loop calls it in this order. Override what the stage needs."""

    batch_size: int = 1
    describe_verb: str = "rendered"

    def prepare(self, context: RenderContext) -> None:
        """Before the first frame, once the faces are known and only when there is work: load a model, train a
        refiner, resolve keyframes."""

    def read(self, job: FrameJob, context: RenderContext) -> None:
        """In the reader thread, after the frame and its crop are read: per-frame inputs (a polygon's cover)."""

    def process(self, batch: list[FrameJob], context: RenderContext) -> None:
        """On the main thread, frames in order: the stage's work on the batch (results into ``job.data``)."""

    def finish(self, job: FrameJob, context: RenderContext) -> FrameOutput:
        """In a writer thread: the finished frame (paste-back) and how it was made."""
        raise NotImplementedError

    def summary_lines(self) -> list[str]:
        """Stage figures for the summary."""
        return []

    def metrics(self) -> dict[str, float]:
        return {}

    def warnings(self) -> list[str]:
        return []


@dataclass(frozen=True)
class RenderSummary:
    """What a frame stage's run did (the CLI prints :meth:`describe`)."""

    stage: str
    frames: int
    rendered: int
    skipped: int
    no_face: tuple[int, ...]
    seconds: float
    warnings: tuple[str, ...] = ()
    outputs: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    lines: tuple[str, ...] = ()
    verb: str = "rendered"

    @property
    def fps(self) -> float:
        return self.rendered / self.seconds if self.seconds > 0 else float("inf")

    @property
    def outside_psnr(self) -> float:
        return self.metrics.get("outside_psnr", float("nan"))

    @property
    def grown(self) -> float:
        return self.metrics.get("grown", float("nan"))

    def describe(self) -> str:
        through = " (plate passed through)" if self.stage == "swap" else " (passed through)"
        lines = [f"frames {self.frames}: {self.verb} {self.rendered}, already on disk {self.skipped}",
                 f"frames without a face{through}: {format_frames(self.no_face) if self.no_face else 'none'}",
                 *self.lines,
                 f"{self.seconds:.1f} s ({self.fps:.2f} frames/s)" if self.stage == "swap" else f"{self.seconds:.1f} s"]
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"{name}: {path}" for name, path in self.outputs.items()]
        return "\n".join(lines)


def render(plan: RenderPlan, stage: FrameStage, *, show_progress: bool = True, workers: int = 0,
           warmup: tuple[int, ...] = (), outputs: dict[str, str] | None = None,
           prepare_always: bool = False, render_frames: bool = True) -> RenderSummary:
    """Run a frame stage over its plan's frames not on disk yet, and close the plan's plate.

    Args:
        plan: the stage's plan.
        stage: the stage.
        show_progress: report progress per frame on stderr.
        workers: processes for the plate's face extraction (0: one per core).
        warmup: frames processed before the first frame to render and never written (a farm chunk's halo);
            ignored when nothing is to be rendered.
        outputs: the summary's output lines (default: the EXR sequence).
        prepare_always: prepare the stage even with no frame to render (a farm task that only trains).
        render_frames: False renders nothing (with ``prepare_always``: only prepare).
    """
    started = time.perf_counter()
    try:
        return _render(plan, stage, started, show_progress=show_progress, workers=workers, warmup=warmup,
                       outputs=outputs, prepare_always=prepare_always, render_frames=render_frames)
    finally:
        plan.close()


def _render(plan: RenderPlan, stage: FrameStage, started: float, *, show_progress: bool, workers: int,
            warmup: tuple[int, ...], outputs: dict[str, str] | None, prepare_always: bool,
            render_frames: bool) -> RenderSummary:
    shot = plan.shot
    todo = plan.todo() if render_frames else []
    outputs = outputs if outputs is not None else {"exr": plan.exr.pattern} if plan.exr is not None else {}

    def summary(rendered: int, no_face: tuple[int, ...]) -> RenderSummary:
        return RenderSummary(stage=plan.stage, frames=len(plan.frames), rendered=rendered,
                             skipped=len(plan.frames) - len(todo), no_face=no_face,
                             seconds=time.perf_counter() - started, warnings=tuple(stage.warnings()), outputs=outputs,
                             metrics=stage.metrics(), lines=tuple(stage.summary_lines()), verb=stage.describe_verb)

    if not todo and not prepare_always:  # nothing to render: no faces to read, no model to load
        return summary(0, ())
    plate = plan.plate
    records = track_plate_faces(shot, plate, plan.frames, crop_size=plan.resolution, track=plan.track,
                                workers=workers)
    to_working = ColorConverter(plate.colorspace, WORKING_SPACE)
    context = RenderContext(plan=plan, records=records, to_working=to_working, to_plate=to_working.inverse(),
                            todo=todo)
    stage.prepare(context)
    if not todo:
        return summary(0, ())
    warm = sorted(set(warmup))  # only when there is something to render (returned above otherwise)
    start_tc, start_frame = plate_start_timecode(plate)
    shot_hash = shot.content_hash()

    def read(frame: int, is_warm: bool) -> FrameJob:
        record = records.get(frame)
        image = source = None
        if plan.source_frames is not None:
            source = read_rendered_frame(plan.source_frames.path(frame))
            rgb = source.rgb
        else:
            image = context.read_plate(frame)
            rgb = image.rgb()
        job = FrameJob(frame=frame, rgb=rgb, record=record, image=image, source=source, warm=is_warm)
        if job.has_face and plan.crop_from != "none":
            if plan.crop_from == "plate" and job.image is None:
                job.image = context.read_plate(frame)
            # the plate's face (an edit re-encodes the plate, not the swap), else the frame being changed
            crop_rgb = job.image.rgb() if plan.crop_from == "plate" and source is not None else rgb  # type: ignore[union-attr]
            job.crop = context.cut_crop(crop_rgb, record)  # type: ignore[arg-type]
        stage.read(job, context)
        return job

    def write(job: FrameJob) -> int:
        out = stage.finish(job, context)
        frame = job.frame
        timecode = ((job.source.metadata.timecode if job.source is not None else None)
                    or (job.image.exr_metadata.timecode if job.image is not None else None)
                    or frame_timecode(frame, plate.fps, start_frame=start_frame, start_timecode=start_tc))
        fps: Fraction = plate.fps
        if job.source is not None and job.source.metadata.fps:
            fps = job.source.metadata.fps
        if plan.exr is not None:
            # the plate's windows (overscan), pixel aspect and attributes, carried on through every stage
            header = job.source.header if job.source is not None else PlateHeader.of(plate, job.image)
            write_rendered_frame(plan.exr.path(frame), out.rgb, out.matte, out.info, timecode=timecode, fps=fps,
                                 colorspace=plate.colorspace, shot_hash=shot_hash, dtype=shot.outputs.exr_dtype,
                                 compression=shot.outputs.exr_compression, layers=out.layers or None,
                                 header=header)
        if plan.plate_format is not None:
            image = job.image if job.image is not None else context.read_plate(frame)
            write_plate_format(plan.plate_format.path(frame), image, out.rgb)
        return frame

    run = [(f, True) for f in warm] + [(f, False) for f in todo]
    no_face: list[int] = []
    pending: list[Future[int]] = []
    batch_size = max(1, stage.batch_size)
    with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix=f"vfx-{plan.stage}-write") as writers:
        jobs: Iterator[FrameJob] = prefetch((read(f, w) for f, w in run), depth=2 * batch_size,
                                            name=f"vfx-{plan.stage}-read")
        if show_progress:
            jobs = progress_bar(jobs, total=len(run), desc=plan.stage)
        for batch in _batches(jobs, batch_size):
            stage.process(batch, context)
            for job in batch:
                if job.warm:
                    continue
                if not job.has_face:
                    no_face.append(job.frame)
                pending.append(writers.submit(write, job))
            pending = _drain(pending, keep=2 * batch_size)
        for future in pending:
            future.result()
    return summary(len(todo), tuple(no_face))


def _batches(jobs: Iterator[FrameJob], size: int) -> Iterator[list[FrameJob]]:
    batch: list[FrameJob] = []
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
    for f in [f for f in pending if f.done()]:
        f.result()
    return [f for f in pending if not f.done()]


def plate_space_crop(crop: np.ndarray, context: RenderContext) -> np.ndarray:
    """A working-space result crop ready to paste into a plate-space frame: a display-referred plate holds
    [0, 1], so the blend's and the warp's ringing must not reach past it (a scene-linear plate keeps its range:
    highlights above 1 are the plate's own)."""
    return np.clip(crop, 0.0, 1.0) if context.to_plate.is_identity else crop


def to_plate_fn(context: RenderContext):  # type: ignore[no-untyped-def]
    """The working -> plate conversion for paste-back, None when it is the identity."""
    return None if context.to_plate.is_identity else context.to_plate.apply


def to_working_fn(context: RenderContext):  # type: ignore[no-untyped-def]
    return None if context.to_plate.is_identity else context.to_working.apply

