"""The review page of a shot: one static folder a supervisor opens from disk (``review/index.html``).

What the page holds, top to bottom: a frame-accurate flipbook of plate | result | matte (a scrubber, previous /
next, play at the plate's exact fps, the frame number and timecode of the frame shown), the per-frame QC plots
(identity distance to the persona and to the actor, landmark jitter, matte area, face-region flicker against
the plate; frames without a face shaded), the contact sheets, the model card (personas with their consent
records, level, iterations, held-out SSIM), the latest training preview and loss curve, and where a farm run
of the shot stands.

Everything the page shows lives in its folder: small display-referred proxies of every frame (``frames/``),
the plots and sheets as PNG, the page's CSS and JS copied beside ``index.html``; the figures are inlined in the
page as JSON. Nothing is loaded from the network and no server is needed (``file://`` works), so the folder
can be zipped and mailed. The folder is built beside its destination and swapped in whole: a killed run
leaves the previous page as it was.

The figures are computed here from library code (:mod:`vfx.face.identity`, :mod:`vfx.blend`), except what
only a higher floor knows: a farm run's task status and the evaluation figures of :mod:`vfx.eval`, which the
CLI gathers and passes in (:class:`ReviewExtras`).

Convention:
    - Frames are the shot's (default) or those given, all rendered; series are one value per frame, NaN
      where a measure has no value (no face, the first frame of a run).
    - Proxies are display-referred sRGB (the plate's colour space through OpenColorIO to
      :data:`vfx.io.color.WORKING_SPACE`, clipped to [0, 1], 8-bit), desqueezed by the plate's pixel aspect.
    - Identity distances are dlib's 128-d descriptor distances (same person below 0.6); landmark jitter is in
      per cent of the inter-ocular distance; matte area in per cent of the frame; flicker is a ratio (1.0: the
      face changes exactly as much as the plate's).
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import vfx
from vfx.comb.preview import training_pictures
from vfx.errors import ConfigError, MediaError, VfxError
from vfx.export.review import delivered_proxy
from vfx.io.color import WORKING_SPACE, ColorConverter, DisplayView
from vfx.io.plate import Plate, open_plate
from vfx.io.timecode import frame_timecode
from vfx.render.rendered import check_rendered_frames, plate_start_timecode, read_rendered_frame
from vfx.shot.frames import FrameRange, SequencePattern, format_frames
from vfx.shot.layout import (
    Place,
    check_apart,
    persona_faceset_folder,
    plate_faces_folder,
    rendered_sequence,
    review_page_folder,
    shot_inputs,
)
from vfx.shot.schema import Shot
from vfx.utils.atomic import check_writable

__all__ = [
    "PAGE_FILE",
    "FrameSeries",
    "ModelCard",
    "PersonaCard",
    "ReviewExtras",
    "ReviewPagePlan",
    "ReviewPageSummary",
    "TaskRow",
    "model_card",
    "plan_review_page",
    "review_page_folder",
    "write_review_page",
]

log = logging.getLogger(__name__)

PAGE_FILE = "index.html"
"""The page's file inside its folder."""

ASSETS = Path(__file__).with_name("assets")
"""The page's template, stylesheet and script (package data)."""

_ASSET_FILES = ("review.css", "review.js")
_GENERATOR = '<meta name="generator" content="vfx review">'  # in the template: marks a folder as ours
_FLICKER_EPS = 1e-4  # as vfx.blend.metrics.face_region_flicker
_PERSONA_CROPS = 24  # persona crops averaged into its mean descriptor (evenly spaced over its faceset)


# ---------------------------------------------------------------------------------------------- what the page shows

@dataclass(frozen=True)
class PersonaCard:
    """One persona of the model card.

    Attributes:
        name: the decoder's name.
        consent_shot: the consent record in the shot file (``personas.NAME.consent``), or None.
        consent_model: the consent record the model was trained with, or None (``--no-consent-record``).
        facesets: the faceset folders it was trained on.
        held_out_ssim, held_out_face_ssim: SSIM of held-out crops with their reconstructions (whole crop, face
            only), or None when not measured.
        held_out_count: crops held out.
    """

    name: str
    consent_shot: str | None = None
    consent_model: str | None = None
    facesets: tuple[str, ...] = ()
    held_out_ssim: float | None = None
    held_out_face_ssim: float | None = None
    held_out_count: int = 0


@dataclass(frozen=True)
class ModelCard:
    """The shot's comb model as the review page shows it (:func:`model_card`).

    Attributes:
        checkpoint: the checkpoint folder used (a run's newest ``step_*``).
        run: the run folder (where ``preview.png`` and ``loss.png`` are).
        architecture, level: as ``vfx model info`` prints them.
        iterations: the training step.
        last_loss: the last logged loss, or None.
        personas: one card per decoder.
    """

    checkpoint: Path
    run: Path
    architecture: str
    level: str
    iterations: int
    last_loss: float | None
    personas: tuple[PersonaCard, ...]


@dataclass(frozen=True)
class TaskRow:
    """One farm task's state (what ``vfx farm status`` prints), gathered by the CLI."""

    task: str
    state: str
    frames_done: int
    frames_total: int
    attempts: int
    seconds: float | None
    host: str
    message: str = ""


@dataclass(frozen=True)
class ReviewExtras:
    """What the CLI gathers from floors above :mod:`vfx.export` and passes into the page.

    Attributes:
        model: the model card (:func:`model_card`, with held-out SSIM filled in), or None.
        farm: the farm run's task rows, or None when the shot was never run on a farm.
        figures: more headline figures, label -> text (e.g. the shot's landmark jitter from :mod:`vfx.eval`).
        notes: lines shown at the foot of the page (what was not measured, and why).
    """

    model: ModelCard | None = None
    farm: tuple[TaskRow, ...] | None = None
    figures: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class FrameSeries:
    """The per-frame QC figures of the page's frames.

    Attributes:
        frames: the frame numbers; timecodes: their SMPTE timecodes.
        has_face: (T,) bool: the rendered frame has a face (a non-empty matte).
        identity_persona, identity_actor: (T,) descriptor distance of the result's face to the persona's mean
            descriptor and to the actor's (the plate's faces); NaN without a face or a descriptor.
        jitter: (T,) landmark jitter of the tracked plate face, % of the inter-ocular distance.
        matte_area: (T,) % of the frame the matte covers (its sum over the frame's pixels).
        flicker: (T,) frame-to-frame change of the result over the plate's inside the face region of frames
            t-1 and t; NaN on the first frame and without a face.
        flicker_shot: the same pooled over the shot (as :func:`vfx.blend.metrics.face_region_flicker`), or NaN.
        notes: what could not be measured, and why.
    """

    frames: tuple[int, ...]
    timecodes: tuple[str, ...]
    has_face: np.ndarray
    identity_persona: np.ndarray
    identity_actor: np.ndarray
    jitter: np.ndarray
    matte_area: np.ndarray
    flicker: np.ndarray
    flicker_shot: float
    notes: tuple[str, ...] = ()

    def headline(self) -> dict[str, str]:
        """Shot-wide figures, label -> text."""
        faces = int(self.has_face.sum())
        missing = [f for f, h in zip(self.frames, self.has_face) if not h]
        out = {
            "frames": f"{format_frames(self.frames)} ({len(self.frames)})",
            "frames with a face": f"{faces} of {len(self.frames)}",
            "frames without a face": format_frames(missing) if missing else "none",
            "identity → persona (median)": _fmt(_median(self.identity_persona)),
            "identity → actor (median)": _fmt(_median(self.identity_actor)),
            "landmark jitter (median, % IOD)": _fmt(_median(self.jitter), 2),
            "matte area (median, % frame)": _fmt(_median(self.matte_area), 2),
            "face flicker vs plate (shot)": _fmt(self.flicker_shot, 2),
        }
        closer = np.isfinite(self.identity_persona) & np.isfinite(self.identity_actor)
        if closer.any():
            share = float((self.identity_persona[closer] < self.identity_actor[closer]).mean())
            out["frames closer to the persona"] = f"{100 * share:.0f} %"
        return out


@dataclass(frozen=True)
class ReviewPagePlan:
    """A review page checked and resolved, nothing written yet (:func:`plan_review_page`)."""

    shot: Shot
    folder: Path
    frames: FrameRange
    rendered: SequencePattern


@dataclass(frozen=True)
class ReviewPageSummary:
    """What :func:`write_review_page` wrote."""

    page: Path
    frames: int
    series: FrameSeries
    files: int
    bytes: int

    def describe(self) -> str:
        head = self.series.headline()
        return (f"review page: {self.page} ({self.frames} frames, {self.files} files, {self.bytes / 1e6:.1f} MB)\n"
                + "\n".join(f"  {k}: {v}" for k, v in head.items()))


# ---------------------------------------------------------------------------------------------- the plan

def plan_review_page(shot: Shot, *, frames: FrameRange | None = None, out: Path | None = None) -> ReviewPagePlan:
    """Check a review page can be made, before anything is written.

    Args:
        shot: the shot (loaded: its paths absolute).
        frames: the frames to show (default: the shot's, else the whole plate).
        out: the page's folder (default: :func:`review_page_folder`).

    Raises:
        ConfigError: the shot names no rendered frames, the folder is a file, not writable, or would land on one
            of the shot's inputs.
        MediaError: the plate does not open, or frames are not rendered yet (the message names them).
        FrameRangeError: frames outside the plate.
    """
    rendered = rendered_sequence(shot)
    folder = Path(out) if out is not None else review_page_folder(shot)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"The review page folder {folder} is a file", expected="a folder (made if missing)",
                          found=f"a file at {folder}", fix="remove that file, or pass --out to put the page elsewhere")
    check_apart(Place("the review page", folder, "folder"), shot_inputs(shot))
    check_writable(folder.parent)
    if folder.is_dir() and any(folder.iterdir()) and not _is_review_page(folder):
        raise ConfigError(f"The review page folder {folder} holds other files", expected="an empty folder, or a "
                          "review page written before (it is replaced whole)",
                          found=f"{sum(1 for _ in folder.iterdir())} entries and no {PAGE_FILE} of `vfx review`",
                          fix="pass --out with a new folder, or empty that one")
    plate, frames = open_plate(shot.plate, frames)
    with plate:
        if len(rendered.missing(frames)) == len(frames):
            raise MediaError(f"Shot {shot.name!r} is not rendered yet", expected=f"the rendered frames "
                             f"{rendered.pattern} for {format_frames(frames)}",
                             found="no rendered frame" + ("" if rendered.directory.is_dir() else
                                                          f" (no folder {rendered.directory})"),
                             fix=f"render it first: `vfx swap {shot.name}.yaml` (or `vfx farm run`), then `vfx review`")
        check_rendered_frames(rendered, frames)
    return ReviewPagePlan(shot=shot, folder=folder, frames=frames, rendered=rendered)


def _is_review_page(folder: Path) -> bool:
    """Whether ``folder`` holds a page this module wrote (its ``index.html`` names its generator)."""
    page = folder / PAGE_FILE
    try:
        return page.is_file() and _GENERATOR in page.read_text(encoding="utf-8", errors="replace")[:2000]
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------- the model card

def model_card(shot: Shot, *, held_out: dict[str, dict[str, float]] | None = None,
               held_out_counts: dict[str, int] | None = None) -> ModelCard | None:
    """The shot's model (``model.checkpoint``) as a card: its manifest with the shot's consent records.

    Args:
        held_out: per persona ``{"ssim": ..., "face_ssim": ...}`` (:func:`vfx.comb.train.held_out_ssim`), when
            measured; else the manifest's own ``held_out_ssim`` record where training wrote one.
        held_out_counts: per persona, how many crops were held out.

    Returns:
        None when the shot names no model.

    Raises:
        MediaError: the checkpoint is missing or its manifest does not check out.
    """
    from vfx.comb.checkpoint import checkpoint_folder, read_manifest
    from vfx.comb.train import describe

    if shot.model is None:
        return None
    folder = checkpoint_folder(shot.model.checkpoint)
    manifest = read_manifest(folder)
    info = describe(manifest)
    recorded = manifest.train.get("held_out_ssim") if isinstance(manifest.train, dict) else None
    scores = held_out if held_out is not None else (recorded if isinstance(recorded, dict) else {})
    counts = held_out_counts or {}
    personas = []
    for record in manifest.personas:
        config = shot.personas.get(record.name)
        score = scores.get(record.name) or {}
        personas.append(PersonaCard(
            name=record.name, consent_shot=None if config is None else config.consent, consent_model=record.consent,
            facesets=tuple(record.facesets), held_out_ssim=_finite_or_none(score.get("ssim")),
            held_out_face_ssim=_finite_or_none(score.get("face_ssim")), held_out_count=int(counts.get(record.name, 0))))
    run = Path(shot.model.checkpoint)
    run = run if folder != run else folder.parent
    return ModelCard(checkpoint=folder, run=run, architecture=str(info["architecture"]), level=str(info["level"]),
                     iterations=int(manifest.step),
                     last_loss=float(manifest.losses[-1][2]) if manifest.losses else None, personas=tuple(personas))


def _finite_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# ---------------------------------------------------------------------------------------------- measuring

class _Identity:
    """Descriptors of the result's and the plate's faces; the persona's mean from its faceset."""

    def __init__(self, shot: Shot, model: ModelCard | None) -> None:
        from vfx.face.identity import FaceDescriber

        self.describer = FaceDescriber()
        self.persona: np.ndarray | None = None
        self.note = ""
        persona = shot.swap.persona if shot.swap is not None else None
        folders: list[Path] = []
        if model is not None and persona is not None:
            card = next((p for p in model.personas if p.name == persona), None)
            folders = [Path(f) for f in (card.facesets if card else ())]
        if persona is not None and not any(Path(f).is_dir() for f in folders) and persona in shot.personas:
            folders = [persona_faceset_folder(shot, persona)]  # where the shot's footage is extracted to
        self.persona, self.note = self._persona_mean(persona, folders)

    def _persona_mean(self, persona: str | None, folders: list[Path]) -> tuple[np.ndarray | None, str]:
        from vfx.face.identity import mean_descriptor
        from vfx.faceset.store import Faceset
        from vfx.io.image import read_image

        present = [f for f in folders if (f / Faceset.INFO_FILE).is_file()]
        if persona is None or not present:
            listed = ", ".join(map(str, folders)) or "none"
            return None, f"identity → persona not measured: the persona's faceset was not found (listed: {listed})"
        faces = [(folder, r) for folder in present for r in Faceset.open(folder).faces() if r.crop is not None]
        if not faces:
            return None, f"identity → persona not measured: no faces in {', '.join(map(str, present))}"
        if len(faces) > _PERSONA_CROPS:
            faces = [faces[i] for i in np.linspace(0, len(faces) - 1, _PERSONA_CROPS).round().astype(int)]
        descriptors = [self.describer.describe(read_image(folder / r.crop).rgb(), r.crop_landmarks)
                       for folder, r in faces]
        return mean_descriptor(descriptors), ""


def _tracked_landmarks(shot: Shot, frames: FrameRange) -> tuple[dict[int, np.ndarray], str]:
    """The tracked plate face's landmarks by frame, read from the plate's faces the render kept (never re-tracked)."""
    from vfx.faceset.store import Faceset

    folder = plate_faces_folder(shot)
    if not (folder / Faceset.INDEX_FILE).is_file():
        return {}, f"landmark jitter and identity not measured: no tracked plate faces at {folder}"
    track = shot.swap.track if shot.swap is not None else 0
    wanted = set(frames)
    points = {r.frame: np.asarray(r.landmarks, np.float64) for r in Faceset.open(folder).records()
              if r.frame in wanted and r.track == track and r.quality != "no_face" and r.landmarks is not None}
    return points, ""


def _jitter(frames: Sequence[int], landmarks: dict[int, np.ndarray]) -> np.ndarray:
    """Per frame: RMS over the 68 points of the second temporal difference, scaled to the noise it stands for
    (÷√6 for white noise), in % of the inter-ocular distance; NaN where a neighbour frame has no face.

    The second difference cancels steady motion (a head turning at constant speed), so what is left is
    frame-to-frame shimmer: the alignment of the crop follows it and the face boils."""
    out = np.full(len(frames), np.nan)
    for i in range(1, len(frames) - 1):
        trio = [landmarks.get(f) for f in frames[i - 1:i + 2]]
        if any(p is None for p in trio) or frames[i + 1] - frames[i - 1] != 2:
            continue
        second = trio[0] - 2 * trio[1] + trio[2]
        rms = math.sqrt(float(np.mean(np.sum(second**2, axis=1)))) / math.sqrt(6.0)
        eyes = trio[1][42:48].mean(axis=0) - trio[1][36:42].mean(axis=0)
        iod = float(np.linalg.norm(eyes))
        if iod > 0:
            out[i] = 100.0 * rms / iod
    return out


def _proxy(rgb: np.ndarray, height: int, plate: Plate, view: DisplayView | None) -> np.ndarray:
    """(h, w, 3) uint8 proxy of a plate-space frame, ``height`` lines high (:func:`delivered_proxy`)."""
    return (delivered_proxy(rgb, plate, height, view) * 255 + 0.5).astype(np.uint8)

def _write_jpeg(path: Path, rgb8: np.ndarray, quality: int = 88) -> None:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb8, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # an internal failure: OpenCV always encodes a uint8 image
        raise RuntimeError(f"JPEG encoding failed for {path}")
    path.write_bytes(data.tobytes())


def _write_png(path: Path, gray8: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", gray8)
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {path}")
    path.write_bytes(data.tobytes())


def _measure(plan: ReviewPagePlan, plate: Plate, folder: Path, *, proxy_height: int, identity: bool,
             model: ModelCard | None) -> FrameSeries:
    """Read every frame once: write its three proxies into ``folder/frames`` and measure it."""
    shot, frames = plan.shot, list(plan.frames)
    convert = ColorConverter(plate.colorspace, WORKING_SPACE)
    view = DisplayView(plate.colorspace, shot.review.display, shot.review.view)  # the dailies' look
    start_tc, start_frame = plate_start_timecode(plate)
    landmarks, note = _tracked_landmarks(shot, plan.frames)
    notes = [note] if note else []
    describer = None
    if identity and landmarks:
        try:
            describer = _Identity(shot, model)
            if describer.note:
                notes.append(describer.note)
        except VfxError as err:  # no dlib descriptor model here: the page goes on without identity
            notes.append(f"identity not measured: {err}")
    elif not identity:
        notes.append("identity not measured (--no-identity)")
    count = len(frames)
    has_face = np.zeros(count, bool)
    id_persona, id_actor, area, flicker = (np.full(count, np.nan) for _ in range(4))
    actor: list[np.ndarray] = []
    result_descriptors: dict[int, np.ndarray] = {}
    timecodes = []
    sums = [0.0, 0.0, 0]
    previous: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        done = read_rendered_frame(plan.rendered.path(frame))
        timecodes.append(done.metadata.timecode or frame_timecode(frame, plate.fps, start_frame=start_frame,
                                                                   start_timecode=start_tc))
        plate_rgb = plate.read(frame).rgb()
        before = convert.apply(plate_rgb)
        after = convert.apply(done.rgb)
        matte = np.clip(done.matte, 0.0, 1.0)
        if before.shape != after.shape:  # e.g. an overscan plate read at another window: measure on the result's
            before = cv2.resize(before, (after.shape[1], after.shape[0]), interpolation=cv2.INTER_AREA)
        has_face[i] = bool((matte > 0).any())
        area[i] = 100.0 * float(matte.mean())
        face = matte > 0.5
        if previous is not None and previous[0] == frame - 1:
            region = face | previous[3]
            n = int(region.sum())
            if n:
                d_out = float(np.abs(after[region] - previous[1][region]).sum())
                d_ref = float(np.abs(before[region] - previous[2][region]).sum())
                if has_face[i]:  # a pair into a frame without a face is pooled, not shown as that frame's
                    flicker[i] = (d_out / (3 * n) + _FLICKER_EPS) / (d_ref / (3 * n) + _FLICKER_EPS)
                sums[0] += d_out
                sums[1] += d_ref
                sums[2] += 3 * n
        previous = (frame, after, before, face)
        if describer is not None and frame in landmarks and has_face[i]:
            points = landmarks[frame]
            shown_after, shown_before = np.clip(after, 0, 1), np.clip(before, 0, 1)
            result_descriptors[frame] = describer.describer.describe(shown_after, points)
            actor.append(describer.describer.describe(shown_before, points))
        _write_jpeg(folder / "frames" / f"plate.{frame}.jpg", _proxy(plate_rgb, proxy_height, plate, view))
        _write_jpeg(folder / "frames" / f"result.{frame}.jpg", _proxy(done.rgb, proxy_height, plate, view))
        _write_png(folder / "frames" / f"matte.{frame}.png",
                   _proxy(np.repeat(matte[:, :, None], 3, axis=2), proxy_height, plate, None)[:, :, 0])
    if describer is not None and result_descriptors:
        from vfx.face.identity import descriptor_distance, mean_descriptor

        actor_mean = mean_descriptor(actor)
        for i, frame in enumerate(frames):
            if frame in result_descriptors:
                id_actor[i] = float(descriptor_distance(result_descriptors[frame], actor_mean))
                if describer.persona is not None:
                    id_persona[i] = float(descriptor_distance(result_descriptors[frame], describer.persona))
    pooled = (sums[0] / sums[2] + _FLICKER_EPS) / (sums[1] / sums[2] + _FLICKER_EPS) if sums[2] else float("nan")
    return FrameSeries(frames=tuple(frames), timecodes=tuple(timecodes), has_face=has_face,
                       identity_persona=id_persona, identity_actor=id_actor, jitter=_jitter(frames, landmarks),
                       matte_area=area, flicker=flicker, flicker_shot=pooled, notes=tuple(notes))


# ---------------------------------------------------------------------------------------------- plots

_PLOTS = (  # attribute, title, unit, colour
    ("identity", "Identity distance (dlib, same person < 0.6)", "distance", None),
    ("jitter", "Landmark jitter of the tracked plate face", "% IOD", "#c77c11"),
    ("matte_area", "Matte area", "% frame", "#3a8f5c"),
    ("flicker", "Face-region flicker against the plate (1.0 = as the plate)", "ratio", "#8a4fbf"),
)


def _plot_qc(series: FrameSeries, path: Path) -> dict[str, Any]:
    """The four QC plots stacked on one frame axis, as a PNG; returns where the frame axis lies in the image
    (fractions of its width) for the page's cursor."""
    from vfx.face.identity import SAME_PERSON_DISTANCE
    from vfx.utils.plots import pyplot, save_figure

    plt = pyplot()
    frames = np.asarray(series.frames, np.float64)
    lo, hi = frames[0] - 0.5, frames[-1] + 0.5
    fig, axes = plt.subplots(len(_PLOTS), 1, figsize=(10, 8.4), sharex=True)
    fig.patch.set_facecolor("#1b1d21")
    missing = [f for f, h in zip(series.frames, series.has_face) if not h]
    for axis, (name, title, unit, colour) in zip(axes, _PLOTS):
        axis.set_facecolor("#23262b")
        for spine in axis.spines.values():
            spine.set_color("#555a62")
        axis.tick_params(colors="#c9ccd1", labelsize=8)
        axis.set_title(title, color="#e6e8eb", fontsize=9.5, loc="left")
        axis.set_ylabel(unit, color="#c9ccd1", fontsize=8)
        axis.grid(alpha=0.18, color="#9aa0a8")
        for index, frame in enumerate(missing):
            axis.axvspan(frame - 0.5, frame + 0.5, color="#d04545", alpha=0.22, lw=0,
                         label="no face" if index == 0 and axis is axes[0] else None)
        if name == "identity":
            axis.plot(frames, series.identity_persona, "o-", ms=3, lw=1.4, color="#3b8fd9", label="→ persona")
            axis.plot(frames, series.identity_actor, "o-", ms=3, lw=1.4, color="#e0893a", label="→ actor")
            axis.axhline(SAME_PERSON_DISTANCE, color="#9aa0a8", lw=0.8, ls="--")
            values = np.concatenate([series.identity_persona, series.identity_actor])
        else:
            values = getattr(series, name)
            axis.plot(frames, values, "o-", ms=3, lw=1.4, color=colour)
            if name == "flicker":
                axis.axhline(1.0, color="#9aa0a8", lw=0.8, ls="--")
        if not np.isfinite(values).any():
            axis.text(0.5, 0.5, "not measured", transform=axis.transAxes, ha="center", va="center",
                      color="#8b9098", fontsize=9)
            axis.set_ylim(0, 1)
        elif name in ("identity", "matte_area", "jitter"):
            axis.set_ylim(bottom=0)
        handles, labels = axis.get_legend_handles_labels()
        if labels:
            axis.legend(fontsize=7.5, loc="best", facecolor="#23262b", edgecolor="#555a62",
                        labelcolor="#e6e8eb", ncol=len(labels))
    axes[-1].set_xlim(lo, hi)
    axes[-1].set_xlabel("frame", color="#c9ccd1", fontsize=8.5)
    axes[-1].xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout(h_pad=1.1)
    box = axes[-1].get_position()  # the same x extent for every axis (sharex, one column)
    top = axes[0].get_position()
    save_figure(fig, path, dpi=100)
    return {"x0": box.x0, "x1": box.x1, "y0": 1.0 - top.y1, "y1": 1.0 - box.y0, "lo": lo, "hi": hi}


# ---------------------------------------------------------------------------------------------- the page

def _median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _json_list(values: np.ndarray) -> list[float | None]:
    return [round(float(v), 5) if math.isfinite(float(v)) else None for v in values]


def _table(rows: Sequence[tuple[str, str]], *, cls: str = "facts") -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="{cls}">{body}</table>'


def _model_section(model: ModelCard | None, images: dict[str, str]) -> str:
    if model is None:
        return '<p class="muted">The shot names no model (model.checkpoint).</p>'
    rows = [("checkpoint", str(model.checkpoint)), ("architecture", model.architecture), ("level", model.level),
            ("iterations", str(model.iterations)), ("last loss", _fmt(model.last_loss, 4))]
    head = ("<tr><th>persona</th><th>consent (shot file)</th><th>consent (model)</th><th>held-out SSIM</th>"
            "<th>face only</th><th>facesets</th></tr>")
    body = []
    for p in model.personas:
        def consent(text: str | None) -> str:
            return html.escape(text) if text else '<span class="warn">NONE RECORDED</span>'
        held = _fmt(p.held_out_ssim, 4) + (f" ({p.held_out_count} crops)" if p.held_out_count else "")
        body.append(f"<tr><td>{html.escape(p.name)}</td><td>{consent(p.consent_shot)}</td>"
                    f"<td>{consent(p.consent_model)}</td><td>{html.escape(held)}</td>"
                    f"<td>{html.escape(_fmt(p.held_out_face_ssim, 4))}</td>"
                    f"<td class=\"path\">{html.escape(', '.join(p.facesets) or '-')}</td></tr>")
    pictures = []
    strips = sorted((k for k in images if k.startswith("timelapse_level")), key=lambda k: int(k[len("timelapse_level"):]))
    for key, caption in (("preview", "Latest training preview (held-out inputs, then each decoder)"),
                         ("loss", "Loss curve"),
                         *((k, f"Timelapse of level {k[len('timelapse_level'):]}: one row per checkpoint, "
                            "newest at the bottom") for k in strips)):
        if key in images:
            pictures.append(f'<figure><a href="{images[key]}"><img id="train-{key}" src="{images[key]}" '
                            f'alt="{html.escape(caption)}"></a><figcaption>{html.escape(caption)}</figcaption></figure>')
        else:
            pictures.append(f'<p class="muted">No {key}.png in {html.escape(str(model.run))} yet.</p>')
    return (_table(rows) + f'<table class="grid" id="personas">{head}{"".join(body)}</table>'
            + '<div class="pictures">' + "".join(pictures) + "</div>")


def _farm_section(rows: tuple[TaskRow, ...] | None) -> str:
    if rows is None:
        return '<p class="muted" id="farm-none">No farm run of this shot (no task records).</p>'
    head = "<tr><th>task</th><th>state</th><th>frames</th><th>tries</th><th>seconds</th><th>host</th></tr>"
    body = []
    for r in rows:
        message = f'<div class="muted">{html.escape(r.message)}</div>' if r.message else ""
        seconds = f"{r.seconds:.1f}" if r.seconds is not None else "-"
        body.append(f'<tr class="state-{html.escape(r.state)}"><td>{html.escape(r.task)}{message}</td>'
                    f'<td><span class="badge">{html.escape(r.state)}</span></td>'
                    f"<td>{r.frames_done}/{r.frames_total}</td><td>{r.attempts}</td><td>{seconds}</td>"
                    f"<td>{html.escape(r.host or '-')}</td></tr>")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    summary = ", ".join(f"{state} {n}" for state, n in counts.items())
    return f'<p>{html.escape(summary)}</p><table class="grid" id="farm">{head}{"".join(body)}</table>'


def _render_html(plan: ReviewPagePlan, plate: Plate, series: FrameSeries, extras: ReviewExtras,
                 axis: dict[str, Any], images: dict[str, str], sheets: list[tuple[str, str]]) -> str:
    shot = plan.shot
    first = read_rendered_frame(plan.rendered.path(series.frames[0])).info
    persona = first.persona or (shot.swap.persona if shot.swap is not None else "")
    data = {
        "shot": shot.name, "fps": [plate.fps.numerator, plate.fps.denominator],
        "frames": list(series.frames), "timecodes": list(series.timecodes),
        "face": [bool(v) for v in series.has_face],
        "series": {"identity_persona": _json_list(series.identity_persona),
                   "identity_actor": _json_list(series.identity_actor), "jitter": _json_list(series.jitter),
                   "matte_area": _json_list(series.matte_area), "flicker": _json_list(series.flicker)},
        "axis": axis,
    }
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    figures = list(series.headline().items()) + list(extras.figures.items())
    notes = [n for n in (*series.notes, *extras.notes) if n]
    sheet_html = "".join(f'<figure><a href="{src}"><img class="sheet" src="{src}" alt="{html.escape(caption)}"></a>'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>" for src, caption in sheets)
    facts = [("shot", shot.name), ("plate", str(shot.plate.path)), ("rendered", plan.rendered.pattern),
             ("persona", persona or "-"), ("model", first.model or "-"), ("blend", first.blend or "-"),
             ("fps", f"{plate.fps.numerator}/{plate.fps.denominator}" if plate.fps.denominator != 1
              else str(plate.fps.numerator)),
             ("colour", f"{plate.colorspace} → {WORKING_SPACE} (proxies)")]
    template = (ASSETS / "review.html").read_text(encoding="utf-8")
    values = {
        "TITLE": html.escape(f"{shot.name} review"),
        "SHOT": html.escape(shot.name),
        "SUBTITLE": html.escape(f"{persona or 'no persona'} · {format_frames(series.frames)} · "
                                f"{len(series.frames)} frames"),
        "FACTS": _table(facts),
        "FIGURES": _table(figures, cls="facts figures"),
        "SHEETS": sheet_html or '<p class="muted">No contact sheets.</p>',
        "MODEL": _model_section(extras.model, images),
        "FARM": _farm_section(extras.farm),
        "NOTES": "".join(f"<li>{html.escape(n)}</li>" for n in notes) or "<li>Every figure measured.</li>",
        "GENERATED": html.escape(f"vfx {vfx.__version__} · {time.strftime('%Y-%m-%d %H:%M:%S')}"),
        "FIRST_FRAME": str(series.frames[0]),
        "FIRST_TC": html.escape(series.timecodes[0]),
        "DATA": payload,
    }
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def write_review_page(plan: ReviewPagePlan, *, extras: ReviewExtras | None = None, proxy_height: int = 360,
                      identity: bool = True) -> ReviewPageSummary:
    """Write the review page folder of a planned shot (:func:`plan_review_page`), replacing any earlier one whole.

    Args:
        plan: the checked plan.
        extras: what the CLI gathered (model card, farm status, evaluation figures).
        proxy_height: lines of the flipbook's proxies (never more than the plate's).
        identity: measure identity distances (dlib descriptors on every frame: about 20 ms a frame).

    Returns:
        The page's path, the figures and what was written.

    Raises:
        ConfigError: ``proxy_height`` below 16.
        MediaError: a rendered frame or the plate unreadable.
    """
    from vfx.export.sheet import write_swap_sheet

    if not isinstance(proxy_height, int) or proxy_height < 16:
        raise ConfigError("Invalid proxy height", expected="16 lines or more", found=repr(proxy_height),
                          fix="pass --proxy-height 360 (the default)")
    extras = extras or ReviewExtras()
    folder = plan.folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        plate, frames = open_plate(plan.shot.plate, plan.frames)
        with plate:
            series = _measure(plan, plate, work, proxy_height=proxy_height, identity=identity, model=extras.model)
            axis = _plot_qc(series, work / "qc.png")
            sheets = [("contact_sheet.png", "Plate | result | matte, frames spread over the shot")]
            write_swap_sheet(plate, plan.rendered.pattern, frames, work / "contact_sheet.png")
            sheets += _copy_faceset_sheets(plan.shot, extras.model, work)
            images = _copy_training_pictures(extras.model, work)
            for name in _ASSET_FILES:
                shutil.copyfile(ASSETS / name, work / name)
            (work / PAGE_FILE).write_text(_render_html(plan, plate, series, extras, axis, images, sheets),
                                          encoding="utf-8")
        files = [p for p in work.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        _swap_in(work, folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return ReviewPageSummary(page=folder / PAGE_FILE, frames=len(series.frames), series=series, files=len(files),
                             bytes=size)


def _copy_faceset_sheets(shot: Shot, model: ModelCard | None, work: Path) -> list[tuple[str, str]]:
    """The contact sheets ``vfx extract`` left in the personas' facesets and the plate's faces, copied in."""
    found: list[tuple[str, Path]] = [("plate faces", plate_faces_folder(shot))]
    for name, config in shot.personas.items():
        if config.faceset is not None:
            found.append((f"persona {name}", Path(config.faceset)))
    for card in model.personas if model is not None else ():
        found += [(f"persona {card.name}", Path(f)) for f in card.facesets]
    out, seen = [], set()
    for label, folder in found:
        sheet = folder / "contact_sheet.png"
        if sheet.is_file() and sheet.resolve() not in seen:
            seen.add(sheet.resolve())
            name = f"faceset_{len(seen)}.png"
            shutil.copyfile(sheet, work / name)
            out.append((name, f"Faceset contact sheet: {label} ({folder.name})"))
    return out


def _copy_training_pictures(model: ModelCard | None, work: Path) -> dict[str, str]:
    """The training run's pictures (:func:`vfx.comb.preview.training_pictures`: ``preview.png``, ``loss.png``
    and the ``timelapse_level<N>.png`` strips, refreshed at every checkpoint), copied in."""
    images: dict[str, str] = {}
    if model is None:
        return images
    for folder in (model.checkpoint, model.run):
        for key, source in training_pictures(folder).items():
            if key not in images:
                shutil.copyfile(source, work / f"train_{key}.png")
                images[key] = f"train_{key}.png"
    return images


def _swap_in(work: Path, folder: Path) -> None:
    """Put the finished folder ``work`` in place of ``folder`` (two renames; the old one removed after)."""
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(folder, old)
    try:
        os.replace(work, folder)
    except BaseException:
        if old is not None:
            os.replace(old, folder)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
