"""`vfx review SHOT`: the shot's review page, a static folder a supervisor opens in a browser from disk.

The page itself is :mod:`vfx.export.review_page`; this command gathers what only the top floors know and passes
it in: a farm run's task status (:mod:`vfx.farm`), the shot's landmark jitter as :mod:`vfx.eval` measures it,
and the model's held-out SSIM (which needs the network loaded).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import numpy as np
import typer

from vfx.cli.options import Frames

if TYPE_CHECKING:
    from vfx.export.review_page import ModelCard, TaskRow
    from vfx.shot.schema import Shot

log = logging.getLogger(__name__)

_JITTER_CUTOFF_FRAMES = 6.0  # motion faster than 4 Hz at 24 fps counts as jitter (as vfx.eval.stability)
_MIN_JITTER_RUN = 10  # the zero-phase high-pass needs runs longer than its padding (9 frames)


def review(
    shot: Annotated[Path, typer.Argument(help="Shot file whose rendered frames to review.")],
    frames: Frames = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder of the page (default: review/ beside the rendered frames); replaced whole.")] = None,
    proxy_height: Annotated[int, typer.Option("--proxy-height", min=16, help="Lines of the flipbook's proxy frames (never more than the plate's).")] = 360,
    identity: Annotated[bool, typer.Option("--identity/--no-identity", help="Measure whose face each frame shows (dlib descriptors: persona vs actor).")] = True,
    ssim: Annotated[bool, typer.Option("--ssim/--no-ssim", help="Measure the model's held-out SSIM for the model card (loads the model and its facesets).")] = True,
) -> None:
    """Write the shot's review page: a flipbook of plate | result | matte with a frame scrubber, frame and
    timecode; per-frame QC plots (identity to persona and actor, landmark jitter, matte area, flicker against
    the plate, frames without a face); the contact sheets; the model card with consent records; the latest
    training preview; and the farm run's status. Open review/index.html in any browser, no server needed."""
    from vfx.export.review_page import ReviewExtras, model_card, plan_review_page, write_review_page
    from vfx.shot import FrameRange, load_shot

    loaded = load_shot(shot)
    # Every check (rendered frames, the folder, the model) before anything is written.
    plan = plan_review_page(loaded, frames=FrameRange.parse(frames) if frames else None, out=out)
    notes: list[str] = []
    card = model_card(loaded)
    if card is not None and ssim:
        card = _with_held_out_ssim(loaded, card, notes)
    figures = _shot_jitter(loaded, plan.frames, notes)
    farm = _farm_rows(shot, loaded, notes)
    extras = ReviewExtras(model=card, farm=farm, figures=figures, notes=tuple(notes))
    summary = write_review_page(plan, extras=extras, proxy_height=proxy_height, identity=identity)
    typer.echo(summary.describe())
    typer.echo(f"  open: {summary.page.absolute().as_uri()}")


def _with_held_out_ssim(shot: Shot, card: ModelCard, notes: list[str]) -> ModelCard:
    """The card with each persona's held-out SSIM (:func:`vfx.comb.train.held_out_ssim`) where its facesets are here."""
    from dataclasses import replace

    from vfx.comb.checkpoint import load_checkpoint
    from vfx.comb.data import PersonaData
    from vfx.comb.train import held_out_ssim
    from vfx.errors import VfxError
    from vfx.faceset.store import Faceset
    from vfx.shot.schema import ModelTraining

    holdout = shot.model.training.holdout if shot.model is not None and shot.model.training is not None \
        else ModelTraining().holdout
    if any(p.held_out_ssim is not None for p in card.personas):
        return card  # recorded by training
    if holdout <= 0:
        notes.append("held-out SSIM not measured: the shot holds nothing out (model.training.holdout 0)")
        return card
    net, manifest, _ = load_checkpoint(card.checkpoint, device="cpu", with_optimizer=False)
    net.eval()
    personas = []
    for persona in card.personas:
        folders = [f for f in persona.facesets if (Path(f) / Faceset.INFO_FILE).is_file()]
        if not folders:
            notes.append(f"held-out SSIM of {persona.name!r} not measured: its facesets are not here "
                         f"({', '.join(persona.facesets) or 'none recorded'})")
            personas.append(persona)
            continue
        try:
            data = PersonaData(persona.name, folders, manifest.config.resolution, holdout=holdout)
        except VfxError as err:
            notes.append(f"held-out SSIM of {persona.name!r} not measured: {err}")
            personas.append(persona)
            continue
        scores = held_out_ssim(net, data)
        count = len(data.held_out[0])
        personas.append(replace(persona, held_out_ssim=scores["ssim"] if math.isfinite(scores["ssim"]) else None,
                                held_out_face_ssim=scores["face_ssim"] if math.isfinite(scores["face_ssim"]) else None,
                                held_out_count=count))
    return replace(card, personas=tuple(personas))


def _shot_jitter(shot: Shot, frames, notes: list[str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The tracked plate face's jitter over the shot (:func:`vfx.eval.stability.jitter_residual`), before and
    after the temporal filter, in % of the inter-ocular distance."""
    from vfx.eval.stability import jitter_residual
    from vfx.face.smooth import valid_runs
    from vfx.faceset.store import Faceset
    from vfx.shot.layout import plate_faces_folder

    folder = plate_faces_folder(shot)
    if not (folder / Faceset.INDEX_FILE).is_file():
        return {}
    track = shot.swap.track if shot.swap is not None else 0
    index = {f: i for i, f in enumerate(frames)}
    raw, smooth = (np.full((len(index), 68, 2), np.nan) for _ in range(2))
    for record in Faceset.open(folder).records():
        i = index.get(record.frame)
        if i is None or record.track != track or record.quality == "no_face" or record.landmarks is None:
            continue
        smooth[i] = record.landmarks
        raw[i] = record.landmarks_raw if record.landmarks_raw is not None else record.landmarks
    valid = np.isfinite(smooth).all(axis=(1, 2))
    if not any(stop - start >= _MIN_JITTER_RUN for start, stop in valid_runs(valid)):
        notes.append(f"shot landmark jitter (high-pass) not measured: no run of {_MIN_JITTER_RUN} consecutive "
                     "frames with a face")
        return {}
    eyes = smooth[valid, 42:48].mean(axis=1) - smooth[valid, 36:42].mean(axis=1)
    iod = float(np.median(np.linalg.norm(eyes, axis=-1)))
    parts = {kind: 100 * jitter_residual(track_, cutoff_frames=_JITTER_CUTOFF_FRAMES, valid=valid) / iod
             for kind, track_ in (("raw", raw), ("filtered", smooth))}
    return {"landmark jitter, shot (high-pass, % IOD)": f"{parts['raw']:.2f} raw → {parts['filtered']:.2f} filtered"}


def _farm_rows(shot_file: Path, shot: Shot, notes: list[str]) -> tuple[TaskRow, ...] | None:
    """The farm run's task rows (``vfx farm status``), or None when the shot has no task records."""
    from vfx.errors import VfxError
    from vfx.export.review_page import TaskRow
    from vfx.farm.graph import build_graph
    from vfx.farm.status import farm_status
    from vfx.shot.layout import farm_folder

    folder = farm_folder(shot)
    if not folder.is_dir() or not any(folder.glob("*.json")):
        return None
    try:
        rows = farm_status(build_graph(shot_file, shot=shot))
    except VfxError as err:
        notes.append(f"farm status not shown: {err}")
        return None
    return tuple(TaskRow(r.task, r.state, r.frames_done, r.frames_total, r.attempts, r.seconds, r.host, r.message)
                 for r in rows)
