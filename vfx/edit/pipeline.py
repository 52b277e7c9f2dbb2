"""Latent edits on a shot: learn an edit vector on a keyframe, apply it to every frame of the swap.

``vfx edit labels`` writes a keyframe's decoded segmentation for the artist to paint on; ``vfx edit learn``
turns the painted map into an edit vector (:func:`vfx.edit.vectors.learn_edit`) stored with the persona's
model fingerprint; ``vfx edit apply`` renders every frame of the swap with ``z_t + Σ s_i(t) δ_i`` decoded by the
persona, refined per frame (004 [0037]), and composited into the swapped frame inside the frame's own region
of interest only: outside it every pixel keeps the swapped frame's bits.

The persona's segmentation head is trained on first use from its faceset's landmark layouts and kept under
the model's run folder (:func:`vfx.edit.segment.seg_head_path`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vfx.align.similarity import warp_to_crop
from vfx.blend.paste import crop_matte, paste_change
from vfx.comb.checkpoint import check_checkpoint, checkpoint_folder, load_checkpoint
from vfx.edit.segment import (
    JointDecoder,
    SegHeadInfo,
    faceset_layouts,
    load_seg_head,
    save_seg_head,
    train_seg_head,
)
from vfx.edit.vectors import (
    EditSettings,
    EditVector,
    apply_vector,
    buffer_pixels,
    check_edit_vector,
    combine_edits,
    label_area,
    learn_edit,
    load_edit_vector,
    refine_edit,
    region_iou,
    save_edit_vector,
)
from vfx.errors import ConfigError, FrameRangeError, MediaError
from vfx.face.layout import LABEL_NAMES, colourise_layout, read_painted_map
from vfx.faceset.plate_faces import track_plate_faces
from vfx.faceset.store import FaceRecord
from vfx.io.color import WORKING_SPACE, ColorConverter
from vfx.io.image import write_image
from vfx.io.plate import Plate, open_plate
from vfx.render.loop import (
    FrameJob,
    FrameOutput,
    FrameStage,
    RenderContext,
    RenderPlan,
    RenderSummary,
    plan_render,
    render,
    to_plate_fn,
    to_working_fn,
)
from vfx.render.rendered import EDIT_MATTE_CHANNEL, RenderInfo
from vfx.shot.frames import FrameRange
from vfx.shot.layout import Place, check_apart, edit_vector_folder, seg_head_path, shot_inputs
from vfx.shot.schema import ModelConfig, Shot, StrengthKey
from vfx.utils.atomic import check_writable
from vfx.utils.device import resolve_device
from vfx.utils.psnr import image_psnr

__all__ = [
    "EditApplyPlan",
    "EditModel",
    "EditSummary",
    "LearnSummary",
    "apply_shot_edits",
    "learn_shot_edit",
    "open_edit_model",
    "parse_strength",
    "plan_edit_apply",
    "run_edit_apply",
    "strength_at",
    "write_keyframe_labels",
]

log = logging.getLogger(__name__)

SEG_HOLDOUT = 0.1
"""Fraction of a persona's faceset (its last frames) kept out of the segmentation head's training and scored."""
EDIT_MATTE_SIGMA_PX = 1.0
"""Inward feather of the edit matte in crop pixels: zero outside the region, so the frame keeps its bits there."""


# ---------------------------------------------------------------------------------------------- strength

def strength_at(strength: float | list[StrengthKey], frame: int) -> float:
    """s(t): a constant, or keys interpolated linearly and held before the first and after the last."""
    if isinstance(strength, int | float):
        return float(strength)
    frames = [k.frame for k in strength]
    return float(np.interp(frame, frames, [k.value for k in strength]))


def parse_strength(text: str) -> float | list[StrengthKey]:
    """``--strength``: ``0.5`` or ``1001:0,1010:1`` (frame:value keys).

    Raises:
        ConfigError: anything else.
    """
    try:
        if ":" not in text:
            return float(text)
        keys = [StrengthKey(frame=int(f), value=float(v)) for f, v in (part.split(":") for part in text.split(","))]
    except (ValueError, TypeError):
        raise ConfigError("Invalid strength curve", expected="a number (0.5) or frame:value keys (1001:0,1010:1)",
                          found=repr(text),
                          fix="write --strength 0.5, or frame:value keys separated by commas: 1001:0,1010:1") from None
    frames = [k.frame for k in keys]
    if frames != sorted(set(frames)):
        raise ConfigError("Invalid strength curve", expected="keys on increasing, distinct frames", found=repr(text),
                          fix="list each frame once, in increasing order, e.g. 1001:0,1010:1")
    return keys


# ---------------------------------------------------------------------------------------------- model

@dataclass(frozen=True)
class EditModel:
    """The persona's frozen image + segmentation decoder, and what identifies it."""

    joint: JointDecoder
    fingerprint: str
    label: str
    head: SegHeadInfo

    @property
    def resolution(self) -> int:
        return self.joint.size

    @property
    def latent_channels(self) -> int:
        return self.joint.net.config.latent_channels


def _persona_facesets(shot: Shot, persona: str, recorded: tuple[str, ...]) -> list[Path]:
    config = shot.personas.get(persona)
    if config is not None and config.faceset is not None:
        return [Path(config.faceset)]
    return [Path(p) for p in recorded if Path(p).is_dir()]


def _require_model(shot: Shot) -> ModelConfig:
    if shot.model is None:
        raise ConfigError(f"Shot {shot.name!r} has no model", expected="a `model:` section naming a trained checkpoint",
                          fix="add `model: {checkpoint: models/RUN, resolution: R}` (see `vfx train`)",
                          found="no `model:` section")
    return shot.model


def _checked_model(shot: Shot, persona: str) -> Path:
    """The shot's checkpoint folder, its manifest and weights' header checked and ``persona`` among its
    decoders (no weights read)."""
    folder = checkpoint_folder(_require_model(shot).checkpoint)
    manifest = check_checkpoint(folder)
    if persona not in manifest.config.personas:
        raise ConfigError(f"The model has no persona {persona!r}", expected=f"one of its personas: "
                          f"{', '.join(manifest.config.personas)}", found=repr(persona),
                          fix="pass --persona with one of the model's personas, or train a model with this one")
    return folder


def open_edit_model(shot: Shot, persona: str, *, device: str = "cpu", seg_steps: int | None = None,
                    show_progress: bool = False) -> EditModel:
    """The shot's model as persona ``persona``'s image + segmentation decoder, training the segmentation head
    (encoder and decoder frozen) when this model has none yet.

    Raises:
        ConfigError: no model, a persona the model lacks, no faceset to learn the segmentation from.
        MediaError: an unreadable checkpoint or faceset.
    """
    folder = _checked_model(shot, persona)
    net, manifest, _ = load_checkpoint(folder, device=device, with_optimizer=False)
    net.eval().requires_grad_(False)
    fingerprint = net.fingerprint(persona)
    path = seg_head_path(folder.parent, persona, fingerprint)
    if path.with_name(path.name + ".json").is_file():
        head, info = load_seg_head(path, fingerprint=fingerprint, device=device)
    else:
        record = next(p for p in manifest.personas if p.name == persona)
        facesets = _persona_facesets(shot, persona, record.facesets)
        if not facesets:
            raise ConfigError(f"No faceset of persona {persona!r} to learn its segmentation from",
                              expected=f"personas.{persona}.faceset in the shot file, or the model's training faceset",
                              found=", ".join(record.facesets) or "none recorded",
                              fix=f"extract the persona's footage (`vfx extract`) and set personas.{persona}.faceset")
        images, labels = zip(*(faceset_layouts(f, net.size)[:2] for f in facesets))
        x, y = torch.cat(images), torch.cat(labels)
        held = max(1, round(SEG_HOLDOUT * len(x))) if len(x) > 4 else 0
        log.info("training the segmentation head of persona %s on %d frames (%d held out)", persona,
                 len(x) - held, held)
        steps = seg_steps if seg_steps is not None else shot.edit_options.seg_head_steps
        head, info = train_seg_head(net, persona, x[:len(x) - held], y[:len(x) - held], held_images=x[len(x) - held:],
                                    held_labels=y[len(x) - held:], steps=steps, show_progress=show_progress)
        save_seg_head(path, head, info)
        log.info("segmentation head %s: held-out mIoU %.3f (%s)", persona, info.held_miou,
                 ", ".join(f"{k} {v:.2f}" for k, v in info.held_iou.items()))
    return EditModel(joint=JointDecoder(net, persona, head), fingerprint=fingerprint,
                     label=f"{folder}@{manifest.step}", head=info)


def _crop_tensor(crop: np.ndarray, device: torch.device | str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None].to(device).clamp(0.0, 1.0)


def _shot_faces(shot: Shot, plate: Plate, frames: FrameRange, size: int, *, workers: int) -> dict[int, FaceRecord]:
    """The tracked face of every frame of the shot and of ``frames`` (cached beside its outputs), at crop size
    ``size``: the same track the swap rendered."""
    return track_plate_faces(shot, plate, frames, crop_size=size, track=shot.swap.track if shot.swap else 0,
                             workers=workers)


def _keyframe(shot: Shot, model: EditModel, keyframe: int, *, workers: int) -> tuple[torch.Tensor, FaceRecord]:
    """The keyframe's aligned plate crop (1, 3, r, r) in the working space, and its face record.

    Raises:
        ConfigError: the keyframe is outside the plate, or has no face.
    """
    plate, frames = open_plate(shot.plate, None)
    try:
        if keyframe not in frames:
            raise ConfigError(f"Keyframe {keyframe} is outside the plate", expected=f"a frame of {frames}",
                              found=str(keyframe), fix=f"pick a --keyframe within {frames}")
        record = _shot_faces(shot, plate, FrameRange.from_bounds(keyframe, keyframe), model.resolution,
                             workers=workers).get(keyframe)
        if record is None or record.matrix is None:
            raise ConfigError(f"No face on keyframe {keyframe}", expected="a keyframe where the face is tracked",
                              fix="pick a frame with the face (vfx extract's QC sheet shows which have one)",
                              found=f"no tracked face on frame {keyframe}")
        image = plate.read(keyframe)
        to_working = ColorConverter(plate.colorspace, WORKING_SPACE)
    finally:
        plate.close()
    crop = to_working.apply(warp_to_crop(image.rgb(), record.matrix, model.resolution, interpolation="area"))
    return _crop_tensor(crop, next(model.joint.parameters()).device), record


def read_edited_labels(path: str | Path, size: int) -> torch.Tensor:
    """The artist's edited label map: ``size``² (the model's crop), or an integer multiple of it (painted on an
    enlarged map; each block's centre pixel is taken).

    Raises:
        MediaError: unreadable, not square, not a multiple of the crop, or values that are no label.
    """
    import cv2

    path = Path(path)
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None
    if pixels is None:
        raise MediaError(f"Cannot read the edited label map {path}", expected="a PNG label map",
                         found="no file there" if not path.exists() else "a file that is not a readable image",
                         fix="paint on the map `vfx edit labels SHOT --keyframe F` writes")
    h, w = pixels.shape[:2]
    if h != w or h % size:
        raise MediaError(f"Edited label map {path} is the wrong size", expected=f"{size}x{size} (the model's crop) "
                         f"or a multiple of it", found=f"{w}x{h}",
                         fix="paint on the map `vfx edit labels SHOT --keyframe F` writes")
    labels = read_painted_map(path, (h, w))
    step = h // size
    return torch.from_numpy(labels[step // 2::step, step // 2::step].astype(np.int64).copy())


def write_keyframe_labels(shot: Shot, *, keyframe: int, out: Path, persona: str | None = None, scale: int = 4,
                          device: str = "cpu", workers: int = 0) -> tuple[Path, Path]:
    """Write the keyframe's decoded segmentation (layout colours, ``scale`` x the model's crop) for the artist to
    paint on, and the decoded face beside it (``<out>_face.png``). Returns both paths."""
    persona = _shot_persona(shot, persona)
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"The label map {out} is not a PNG", expected="--out NAME.png", found=out.name or str(out),
                          fix=f"--out {out.with_suffix('.png').name}")
    device = _check_keyframe_plan(shot, persona, keyframe, device, writes=[out, out.with_name(out.stem + "_face.png")])
    model = open_edit_model(shot, persona, device=device)
    crop, _ = _keyframe(shot, model, keyframe, workers=workers)
    with torch.no_grad():
        z = model.joint.encode(crop)
        image, logits = model.joint(z)
    labels = logits.argmax(1)[0].cpu().numpy().astype(np.uint8)
    big = np.repeat(np.repeat(colourise_layout(labels), scale, axis=0), scale, axis=1)
    face = np.repeat(np.repeat(image[0].permute(1, 2, 0).cpu().numpy(), scale, axis=0), scale, axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    face_path = out.with_name(out.stem + "_face.png")
    write_image(out, big.astype(np.float32) / 255.0, channels=("R", "G", "B"), dtype="uint8")
    write_image(face_path, np.clip(face, 0.0, 1.0).astype(np.float32), channels=("R", "G", "B"), dtype="uint8")
    return out, face_path


def _check_keyframe_plan(shot: Shot, persona: str, keyframe: int, device: str, *, writes: list[Path]) -> str:
    """What a keyframe command needs, checked before the segmentation head trains or anything is written: the
    device, the model's weights and persona (header reads), the keyframe inside the plate, the files it writes
    writable and apart from the shot's inputs. Returns the resolved device."""
    device = resolve_device(device)
    _checked_model(shot, persona)
    plate, frames = open_plate(shot.plate, None)
    plate.close()
    if keyframe not in frames:
        raise FrameRangeError(f"Keyframe {keyframe} is outside the plate", expected=f"a frame of {frames}",
                              found=str(keyframe), fix=f"--keyframe {frames.first} ... {frames.last}")
    inputs = shot_inputs(shot)
    for path in writes:
        if path.is_dir():
            raise ConfigError(f"{path} is a folder", expected="a file path to write", found="a folder",
                              fix=f"name a file inside it, e.g. {path / path.name}.png")
        check_writable(path.parent)
        check_apart(Place(str(path), path, "folder" if path.suffix == ".vfxedit" else "file"), inputs)
    return device


def _shot_persona(shot: Shot, persona: str | None) -> str:
    persona = persona or (shot.swap.persona if shot.swap else None)
    if persona is None:
        raise ConfigError(f"Shot {shot.name!r} does not say which persona to edit", expected="--persona NAME or "
                          "`swap: {persona: NAME}` in the shot file", found="no --persona and no `swap:` section",
                          fix="pass --persona NAME, or add `swap: {persona: NAME}` to the shot file")
    return persona


# ---------------------------------------------------------------------------------------------- learn

@dataclass(frozen=True)
class LearnSummary:
    """What ``vfx edit learn`` did."""

    vector: Path
    preview: Path
    classes: tuple[str, ...]
    iou: float
    outside_psnr: float
    seconds: float
    head_miou: float

    def describe(self) -> str:
        return "\n".join([
            f"edit vector: {self.vector}",
            f"labels edited: {', '.join(self.classes)}",
            (f"keyframe: IoU with the edited labels inside the region {self.iou:.3f}, image outside it "
             f"{self.outside_psnr:.1f} dB from the unedited decode"),
            f"segmentation head held-out mIoU {self.head_miou:.3f}",
            f"{self.seconds:.1f} s", f"preview: {self.preview}"])


def learn_shot_edit(shot: Shot, *, keyframe: int, labels: str | Path, persona: str | None = None,
                    out: str | Path | None = None, device: str = "cpu", workers: int = 0,
                    settings: EditSettings | None = None) -> LearnSummary:
    """Learn an edit vector from an edited label map on one keyframe and save it (with a preview PNG inside).

    Args:
        shot: the shot (its model, plate and persona).
        keyframe: the frame the labels were painted on.
        labels: the edited label map (:func:`read_edited_labels`).
        persona: the decoder (default: the shot's swap persona).
        out: the vector folder (default ``edits/<shot>_<keyframe>.vfxedit`` beside the shot's outputs).
        settings: default from the shot's ``edit_options``.

    Raises:
        ConfigError / MediaError: no model or persona, a keyframe with no face, a label map of the wrong size
            or with unknown labels, a map that changes nothing.
    """
    started = time.perf_counter()
    persona = _shot_persona(shot, persona)
    options = shot.edit_options
    settings = settings or EditSettings(steps=options.keyframe_steps, buffer=options.buffer)
    edited = read_edited_labels(labels, _require_model(shot).resolution)  # before any heavy work
    out = Path(out) if out is not None else edit_vector_folder(shot, keyframe)
    device = _check_keyframe_plan(shot, persona, keyframe, device, writes=[out])
    model = open_edit_model(shot, persona, device=device)
    crop, _ = _keyframe(shot, model, keyframe, workers=workers)
    with torch.no_grad():
        z = model.joint.encode(crop)
        reference, _ = model.joint(z)
    result = learn_edit(model.joint, crop, edited.to(crop.device), settings)
    iou = region_iou(result.labels, edited.to(result.labels.device), result.region, result.classes)
    psnr = image_psnr(result.image, reference, ~result.region)
    vector = EditVector(delta=result.delta.cpu(), persona=persona, fingerprint=model.fingerprint,
                        classes=result.classes, resolution=model.resolution, buffer=settings.buffer,
                        settings=settings.__dict__.copy(),
                        source={"shot": shot.name, "keyframe": keyframe, "labels": str(labels), "model": model.label},
                        metrics={"iou": round(iou, 4), "outside_psnr": round(psnr, 2),
                                 "delta_norm": round(float(result.delta.norm()), 4), **{
                                     k: round(v, 5) for k, v in result.losses.items()}})
    save_edit_vector(out, vector)
    preview = _write_learn_preview(out / "preview.png", crop, reference, result.image, edited, result.labels,
                                   result.region)
    return LearnSummary(vector=out, preview=preview, classes=tuple(LABEL_NAMES[c] for c in result.classes), iou=iou,
                        outside_psnr=psnr, seconds=time.perf_counter() - started, head_miou=model.head.held_miou)


def _write_learn_preview(path: Path, crop: torch.Tensor, before: torch.Tensor, after: torch.Tensor,
                         edited: torch.Tensor, labels: torch.Tensor, region: torch.Tensor) -> Path:
    """crop | decoded | edited decode | edited labels | labels of the edited decode | region."""
    def rgb(t: torch.Tensor) -> np.ndarray:
        return np.clip(t[0].permute(1, 2, 0).detach().cpu().numpy(), 0.0, 1.0)

    def lab(t: torch.Tensor) -> np.ndarray:
        return colourise_layout(t.cpu().numpy().astype(np.uint8)).astype(np.float32) / 255.0

    mask = np.repeat(region.cpu().numpy()[:, :, None].astype(np.float32), 3, axis=2)
    sheet = np.concatenate([rgb(crop), rgb(before), rgb(after), lab(edited), lab(labels), mask], axis=1)
    sheet = np.repeat(np.repeat(sheet, max(1, 256 // sheet.shape[0]), axis=0), max(1, 256 // sheet.shape[0]), axis=1)
    write_image(path, sheet.astype(np.float32), channels=("R", "G", "B"), dtype="uint8")
    return path


# ---------------------------------------------------------------------------------------------- apply

@dataclass(frozen=True)
class AppliedVector:
    """One vector of an apply run: the vector, its strength curve, its name in logs and metadata."""

    vector: EditVector
    strength: float | list[StrengthKey]
    name: str


@dataclass(kw_only=True)
class EditApplyPlan(RenderPlan):
    """Everything checked and resolved for ``vfx edit apply``, before anything is written."""

    persona: str
    vectors: list[AppliedVector]
    refine_steps: int
    model: EditModel

    @property
    def swap_frames(self):  # type: ignore[no-untyped-def]
        """The swapped frames the edit is composited into."""
        return self.source_frames


EditSummary = RenderSummary
"""What an apply run did (``vfx edit apply`` prints it)."""


def plan_edit_apply(shot: Shot, *, frames: FrameRange | None = None,
                    vectors: list[tuple[Path, float | list[StrengthKey]]] | None = None,
                    refine_steps: int | None = None, device: str = "cpu", model: EditModel | None = None) -> EditApplyPlan:
    """Check an apply run can go and resolve it; writes nothing (may train the persona's segmentation head).

    Args:
        vectors: (vector folder, strength) pairs; default the shot's ``edit_vectors``.
        refine_steps: per-frame refinement steps; default the shot's ``edit_options.refine_steps``.
        model: the persona's edit model, already open (a farm worker keeps it between chunks).

    Raises:
        ConfigError: no vectors, vectors of other personas or another model (fingerprint), no swap.
        MediaError: unreadable vectors, missing swapped frames.
        FrameRangeError / MissingFramesError: frames outside the plate.
    """
    pairs = vectors if vectors is not None else [(Path(v.vector), v.strength) for v in shot.edit_vectors]
    if not pairs:
        raise ConfigError(f"Shot {shot.name!r} has no edit vectors to apply", expected="--vector V or an "
                          "`edit_vectors:` list in the shot file", found="neither", fix="learn one with `vfx edit learn`")
    loaded = [AppliedVector(load_edit_vector(path), strength, Path(path).name.removesuffix(".vfxedit"))
              for path, strength in pairs]
    persona = shot.swap.persona if shot.swap else loaded[0].vector.persona
    resolution = model.resolution if model is not None else _require_model(shot).resolution
    base = plan_render(shot, "edit", frames=frames, resolution=resolution, device=device, source=True,
                       crop_from="plate")
    try:
        model = model or open_edit_model(shot, persona, device=device)
        for applied in loaded:
            check_edit_vector(applied.vector, persona=persona, fingerprint=model.fingerprint,
                              latent_channels=model.latent_channels, name=f"edit vector {applied.name!r}")
    except BaseException:
        base.close()
        raise
    base.resolution = model.resolution
    steps = shot.edit_options.refine_steps if refine_steps is None else refine_steps
    return EditApplyPlan(**vars(base), persona=persona, vectors=loaded, refine_steps=steps, model=model)


class EditStage(FrameStage):
    """Encode the plate's face, decode it with the summed edit vectors (refined per frame, warm-started from the
    previous frame), composite the change into the swapped frame inside the frame's edit region only."""

    describe_verb = "edited"

    def __init__(self, plan: EditApplyPlan) -> None:
        self.plan = plan
        joint = plan.model.joint
        self.device = next(joint.parameters()).device
        self.classes = tuple(sorted({c for a in plan.vectors for c in a.vector.classes}))
        self.settings = EditSettings(buffer=max(a.vector.buffer for a in plan.vectors)).for_refinement(plan.refine_steps)
        self.buffer = buffer_pixels(self.settings.buffer, plan.model.resolution)
        self.names = ",".join(a.name for a in plan.vectors)
        self.correction: torch.Tensor | None = None
        self.previous: int | None = None
        self.psnrs: list[float] = []
        self.growth: list[float] = []

    def process(self, batch: list[FrameJob], context: RenderContext) -> None:
        plan, joint = self.plan, self.plan.model.joint
        for job in batch:
            frame = job.frame
            strengths = [strength_at(a.strength, frame) for a in plan.vectors]
            job.data["strengths"] = strengths
            offset = combine_edits([(a.vector.delta, s) for a, s in zip(plan.vectors, strengths)])
            if self.previous is not None and frame != self.previous + 1:
                self.correction = None  # a gap (a resumed run): nothing to warm-start from
            self.previous = frame
            if job.crop is None or offset is None:
                continue
            with torch.no_grad():
                z = joint.encode(_crop_tensor(job.crop, self.device))
                before, logits = joint(z)
            unedited = (before, logits.argmax(1)[0])
            offset = offset.to(self.device)
            if plan.refine_steps > 0:
                result = refine_edit(joint, z, offset, self.classes, self.settings, init=self.correction,
                                     unedited=unedited)
                self.correction = result.delta - offset
            else:
                result = apply_vector(joint, z, offset, self.classes, self.buffer, unedited=unedited)
            if job.warm:
                continue  # a halo frame: only its correction is carried on
            self.psnrs.append(image_psnr(result.image, before, ~result.region))
            self.growth.append(label_area(result.labels, self.classes) / max(label_area(unedited[1], self.classes), 1))
            job.data["change"] = (result.image - before)[0].permute(1, 2, 0).cpu().numpy()
            job.data["matte"] = crop_matte(result.region.cpu().numpy().astype(np.float32), EDIT_MATTE_SIGMA_PX)

    def finish(self, job: FrameJob, context: RenderContext) -> FrameOutput:
        swapped = job.source
        assert swapped is not None  # an edit always starts from the swapped frames
        if "change" not in job.data:
            rgb, edit_matte, box = swapped.rgb, np.zeros_like(swapped.matte), None
        else:
            pasted = paste_change(swapped.rgb, job.data["change"], job.data["matte"], job.record.matrix,  # type: ignore[union-attr]
                                  to_working=to_working_fn(context), to_plate=to_plate_fn(context),
                                  limit=swapped.matte, in_place=True)  # never past the swapped face
            rgb, edit_matte, box = pasted.frame, pasted.matte, pasted.box
        info = swapped.info
        extra = {**info.extra, "edit": self.names, "edit_strength": ",".join(f"{s:g}" for s in job.data["strengths"]),
                 "edit_refine_steps": int(self.plan.refine_steps)}
        info = RenderInfo(frame=job.frame, persona=info.persona, model=info.model, blend=info.blend, matrix=info.matrix,
                          crop_size=info.crop_size, face_box=info.face_box or box, extra=extra)
        return FrameOutput(rgb=rgb, matte=np.maximum(swapped.matte, edit_matte), info=info,
                           layers={**swapped.layers, EDIT_MATTE_CHANNEL: edit_matte})

    def metrics(self) -> dict[str, float]:
        return {"outside_psnr": float(np.mean(self.psnrs)) if self.psnrs else float("nan"),
                "grown": float(np.mean(self.growth)) if self.growth else float("nan")}

    def summary_lines(self) -> list[str]:
        m = self.metrics()
        return [f"decoded face outside the edit region: mean {m['outside_psnr']:.1f} dB from the unedited decode",
                f"edited labels' area: {m['grown']:.2f}x the unedited (mean over frames)"]


def run_edit_apply(plan: EditApplyPlan, *, show_progress: bool = True, workers: int = 0,
                   warmup: tuple[int, ...] = ()) -> EditSummary:
    """Render the planned frames not on disk yet, in frame order (each frame's refinement starts from the
    previous frame's correction).

    Args:
        warmup: frames just before the first frame to render that are refined but never written, so the
            warm start arrives there as an uninterrupted run's would (a farm chunk's halo); their swapped
            frames must be on disk.
    """
    return render(plan, EditStage(plan), show_progress=show_progress, workers=workers, warmup=warmup,
                  outputs={"edit exr": plan.exr.pattern})  # type: ignore[union-attr]


def apply_shot_edits(shot: Shot, *, frames: FrameRange | None = None,
                     vectors: list[tuple[Path, float | list[StrengthKey]]] | None = None,
                     refine_steps: int | None = None, device: str = "cpu", show_progress: bool = True,
                     workers: int = 0) -> EditSummary:
    """Apply edit vectors to a shot's swapped frames: :func:`plan_edit_apply` then :func:`run_edit_apply`."""
    plan = plan_edit_apply(shot, frames=frames, vectors=vectors, refine_steps=refine_steps, device=device)
    return run_edit_apply(plan, show_progress=show_progress, workers=workers)
