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
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vfx.align.similarity import warp_to_crop
from vfx.blend.paste import crop_matte, empty_paste, paste_back
from vfx.errors import ConfigError
from vfx.export.frames import (
    RETOUCH_MATTE_CHANNEL,
    RenderInfo,
    check_rendered_frames,
    edit_sequence,
    frame_timecode,
    plate_start_timecode,
    read_rendered_frame,
    retouch_sequence,
    swap_sequence,
    write_plate_format,
    write_rendered_frame,
)
from vfx.face.mask import colourise_layout
from vfx.faceset.plate_faces import plate_faces_folder, track_plate_faces
from vfx.faceset.store import FaceRecord
from vfx.utils.atomic import atomic_write_text, check_writable
from vfx.io.color import WORKING_SPACE, ColorConverter
from vfx.io.image import Image, write_image
from vfx.io.plate import Plate, check_frame_size, check_plate_size, open_plate
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
from vfx.shot.frames import FrameRange, SequencePattern, format_frames
from vfx.shot.schema import Shot
from vfx.utils.progress import progress as progress_bar

__all__ = [
    "RetouchPlan",
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


@dataclass(frozen=True)
class RetouchSummary:
    """What a retouch run did (``vfx retouch`` prints it)."""

    frames: int
    rendered: int
    skipped: int
    no_face: tuple[int, ...]
    seconds: float
    warnings: tuple[str, ...] = ()
    outputs: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"frames {self.frames}: retouched {self.rendered}, already on disk {self.skipped}",
                 f"frames without a face (passed through): {format_frames(self.no_face) if self.no_face else 'none'}",
                 f"{self.seconds:.1f} s"]
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"{name}: {path}" for name, path in self.outputs.items()]
        return "\n".join(lines)


@dataclass
class RetouchPlan:
    """Everything checked and resolved for a retouch, before anything is written."""

    shot: Shot
    frames: FrameRange
    edits: list[Edit]
    source: str  # "plate" or "swap"
    resolution: int
    exr: SequencePattern
    plate_format: SequencePattern | None
    swap_frames: SequencePattern | None
    painted: dict[str, np.ndarray]
    device: str
    warp: WarpConfig = field(default_factory=WarpConfig)


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


def refiner_folder(shot: Shot) -> Path:
    """Where the shot's trained refiner is kept: beside the retouched frames."""
    return retouch_sequence(shot).directory / f"{shot.name}_retouch_refiner"


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
                          fix="add e.g. `retouch: [{name: smile, group: mouth, scale: [1.1, 1.0]}]`")
    chosen = select_edits(edits_from_shot(shot.retouch), edits)
    options = shot.retouch_options
    source = options.source if options.source != "auto" else ("swap" if shot.swap is not None else "plate")
    if source == "swap" and shot.outputs.exr is None:
        raise ConfigError(f"Shot {shot.name!r} retouches the swap but renders none",
                          expected="outputs.exr (the swapped frames `vfx swap` renders)",
                          fix="add outputs.exr, or set `retouch_options: {source: plate}`")
    exr = retouch_sequence(shot)
    plate_faces_folder(shot)  # the shot must name a frame output to keep the plate's faces beside
    plate, wanted = open_plate(shot.plate, frames)
    try:
        check_plate_size(plate, wanted)
        for edit in chosen:
            if isinstance(edit, PaintEdit) and edit.keyframe not in plate.frame_range:
                raise ConfigError(f"Paint edit {edit.name!r} is keyed on frame {edit.keyframe}, outside the plate",
                                  expected=f"a frame of {plate.frame_range}")
    finally:
        plate.close()
    # the swap's frames, or the latent-edited ones when the shot lists edit vectors: the two edits chain
    swap_frames = (edit_sequence(shot) if shot.edit_vectors else swap_sequence(shot)) if source == "swap" else None
    if swap_frames is not None:
        check_rendered_frames(swap_frames, wanted)
    size = (options.resolution, options.resolution)
    painted = {e.name: read_painted_map(e.map, size) for e in chosen if isinstance(e, PaintEdit)}
    plate_format = SequencePattern(_beside(str(shot.outputs.frames), "_retouch")) if shot.outputs.frames else None
    for pattern in (exr, plate_format):
        if pattern is not None:
            check_writable(pattern.directory)
    return RetouchPlan(shot=shot, frames=wanted, edits=chosen, source=source, resolution=options.resolution,
                       exr=exr, plate_format=plate_format, swap_frames=swap_frames, painted=painted, device=device)


def _beside(pattern: str, suffix: str) -> str:
    """``out/sh010_swap.####.png`` -> ``out/sh010_swap_retouch.####.png``."""
    path = Path(pattern)
    stem, _, frame_part = path.name.partition(".")
    return str(path.with_name(f"{stem}{suffix}.{frame_part}"))


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

def _done(plan: RetouchPlan, frame: int) -> bool:
    return all(p is None or p.path(frame).is_file() for p in (plan.exr, plan.plate_format))


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
    started = time.perf_counter()
    shot = plan.shot
    plate, _ = open_plate(shot.plate, plan.frames)
    try:
        return _render(plan, plate, started, show_progress=show_progress, workers=workers, preview=preview,
                       refiner_only=refiner_only)
    finally:
        plate.close()


def _render(plan: RetouchPlan, plate: Plate, started: float, *, show_progress: bool, workers: int,
            preview: Path | None, refiner_only: bool) -> RetouchSummary:
    shot = plan.shot
    r = plan.resolution
    records = track_plate_faces(shot, plate, plan.frames, crop_size=r, track=shot.swap.track if shot.swap else 0,
                                workers=workers)
    to_working = ColorConverter(plate.colorspace, WORKING_SPACE)
    to_plate = to_working.inverse()

    def read_plate(frame: int) -> Image:
        image = plate.read(frame)
        check_frame_size(plate, frame, image.size)
        return image

    def read_source(frame: int) -> tuple[np.ndarray, np.ndarray | None, RenderInfo | None, str | None, Image | None]:
        """The frame to retouch in the plate's colour space, its swap matte, how it was made, its timecode, and
        the plate frame when that is what it is (None for a swapped frame)."""
        if plan.swap_frames is not None:
            done = read_rendered_frame(plan.swap_frames.path(frame))
            return done.rgb, done.matte, done.info, done.metadata.timecode, None
        image = read_plate(frame)
        return image.rgb(), None, None, image.exr_metadata.timecode, image

    def read_crop(frame: int) -> tuple[np.ndarray, np.ndarray]:
        record = records[frame]
        rgb = read_source(frame)[0]
        return to_working.apply(warp_to_crop(rgb, record.matrix, r, interpolation="area")), record.crop_landmarks

    painted = {}
    for edit in plan.edits:
        if isinstance(edit, PaintEdit):
            record = records.get(edit.keyframe)
            if record is None or record.matrix is None:
                raise ConfigError(f"Paint edit {edit.name!r}: no face on its keyframe {edit.keyframe}",
                                  expected="a keyframe where the face is tracked",
                                  fix="paint on a frame with the face and set `keyframe:` to it")
            own, _, _ = edited_layout(record.crop_landmarks, (r, r), [], edit.keyframe)
            changes = np.where(plan.painted[edit.name] != own, plan.painted[edit.name], 255).astype(np.uint8)
            painted[edit.name] = PaintedMap(changes=changes, landmarks=record.crop_landmarks)

    todo = [] if refiner_only else [f for f in plan.frames if not _done(plan, f)]
    refiner = None
    if shot.retouch_options.refiner and (todo or refiner_only):
        refiner = _shot_refiner(plan, records, read_crop, show_progress)
    shot_hash = shot.content_hash()
    start_tc, start_frame = plate_start_timecode(plate)
    no_face: list[int] = []
    warnings: dict[str, str] = {}
    edit_names = ",".join(e.name for e in plan.edits)
    frames = progress_bar(todo, total=len(todo), desc="retouch") if show_progress else todo
    for frame in frames:
        rgb, swap_matte, swap_info, timecode, plate_image = read_source(frame)
        record = records.get(frame)
        retouched = None
        if record is None or record.matrix is None:
            no_face.append(frame)
            pasted = empty_paste(rgb)
        else:
            crop = to_working.apply(warp_to_crop(rgb, record.matrix, r, interpolation="area"))
            retouched = retouch_crop(crop, record.crop_landmarks, plan.edits, frame, painted=painted,
                                     refiner=refiner, warp=plan.warp, device=plan.device)
            for region, fraction in retouched.unfilled.items():
                if fraction > UNFILLED_WARNING and region not in warnings:
                    warnings[region] = (f"frame {frame}: the warp found nothing to copy for {fraction:.0%} of "
                                        f"region {region!r} (the source has too little of it); the refiner paints it")
                    log.warning(warnings[region])
            out = np.clip(retouched.refined, 0.0, 1.0) if to_plate.is_identity else retouched.refined
            pasted = paste_back(rgb.copy(), out, crop_matte(retouched.mask.astype(np.float32)), record.matrix,
                                to_plate=None if to_plate.is_identity else to_plate.apply)
            if preview is not None and (retouched.mask.any() or frame == todo[-1]):
                write_preview(preview, retouched)  # the first frame the edits change
                preview = None
        matte = pasted.matte if swap_matte is None else np.maximum(swap_matte, pasted.matte)
        info = _render_info(frame, record, r, pasted.box, swap_info, edit_names)
        timecode = timecode or frame_timecode(frame, plate.fps, start_frame=start_frame, start_timecode=start_tc)
        write_rendered_frame(plan.exr.path(frame), pasted.frame, matte, info, timecode=timecode, fps=plate.fps,
                             colorspace=plate.colorspace, shot_hash=shot_hash, dtype=shot.outputs.exr_dtype,
                             compression=shot.outputs.exr_compression, layers={RETOUCH_MATTE_CHANNEL: pasted.matte})
        if plan.plate_format is not None:
            write_plate_format(plan.plate_format.path(frame), plate_image if plate_image is not None else read_plate(frame),
                               pasted.frame)
    outputs = {"retouch exr": plan.exr.pattern}
    if plan.plate_format is not None:
        outputs["retouch frames"] = plan.plate_format.pattern
    return RetouchSummary(frames=len(plan.frames), rendered=len(todo), skipped=len(plan.frames) - len(todo),
                          no_face=tuple(no_face), seconds=time.perf_counter() - started,
                          warnings=tuple(warnings.values()), outputs=outputs)


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

