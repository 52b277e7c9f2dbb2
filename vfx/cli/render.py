"""The commands that render frames and hand them on: `vfx swap`, `vfx retouch`, `vfx edit labels/learn/apply`,
`vfx export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vfx.cli.common import choice, resolve_device
from vfx.cli.options import Deterministic, Device, Frames, Persona, Workers


def swap(
    shot: Annotated[Path, typer.Argument(help="Shot file: plate, model, persona, blend and outputs.")],
    frames: Frames = None,
    persona: Persona = None,
    # --blend enhanced is the patent's Fig. 5 blend.
    blend: Annotated[Optional[str], typer.Option("--blend", help="How the new face is blended into the plate: enhanced, multiband, poisson or alpha (default: the shot's).")] = None,
    device: Device = "auto",
    batch: Annotated[Optional[int], typer.Option("--batch", min=1, help="Crops per network call (default: 8 on CUDA, 1 on CPU).")] = None,
    workers: Workers = 0,
    deterministic: Deterministic = False,
) -> None:
    """Swap the shot's face for a persona and write the frames (only those not on disk yet); with the whole
    shot rendered, also the review video and the compositor package the shot asks for. With --deterministic
    the frames are bit-identical to a farm task's in --deterministic mode, whatever the thread counts."""
    from vfx.blend import BLEND_METHODS
    from vfx.export.handoff import write_handoff
    from vfx.shot import FrameRange, load_shot
    from vfx.swap import plan_swap, run_swap
    from vfx.utils.threads import configure_torch

    configure_torch(deterministic=deterministic)
    loaded = load_shot(shot)
    method = choice("--blend", blend, BLEND_METHODS) if blend else None
    plan = plan_swap(loaded, frames=FrameRange.parse(frames) if frames else None, persona=persona, method=method,
                     device=resolve_device(device))
    summary = run_swap(plan, batch_size=batch, workers=workers)
    typer.echo(summary.describe())
    for line in write_handoff(loaded):
        typer.echo(line)


def retouch(
    shot: Annotated[Path, typer.Argument(help="Shot file with a `retouch:` list of edits.")],
    frames: Frames = None,
    edit: Annotated[Optional[list[str]], typer.Option("--edit", help="Apply only this edit (by name; repeat for several).")] = None,
    preview: Annotated[bool, typer.Option("--preview", help="Also write a preview PNG (original | edited layout | warp | refined).")] = False,
    device: Device = "auto",
    workers: Workers = 0,
) -> None:
    """Retouch the shot's face with the edits declared on its semantic layout (landmark-group moves, relabels,
    painted label maps) and write the frames (only those not on disk yet); with the whole shot done, also
    the review video and the compositor package, made from the retouched frames."""
    from vfx.export.handoff import write_handoff
    from vfx.retouch import plan_retouch, run_retouch
    from vfx.shot import FrameRange, load_shot
    from vfx.shot.layout import retouch_preview_path

    loaded = load_shot(shot)
    plan = plan_retouch(loaded, frames=FrameRange.parse(frames) if frames else None, edits=edit or None,
                        device=resolve_device(device))
    preview_path = retouch_preview_path(loaded) if preview else None
    summary = run_retouch(plan, workers=workers, preview=preview_path)
    typer.echo(summary.describe())
    if preview_path is not None and preview_path.is_file():
        typer.echo(f"preview: {preview_path}")
    for line in write_handoff(loaded):
        typer.echo(line)


def edit_labels(
    shot: Annotated[Path, typer.Argument(help="Shot file: plate, model and persona.")],
    keyframe: Annotated[int, typer.Option("--keyframe", help="Frame whose segmentation to write.")],
    out: Annotated[Path, typer.Option("--out", help="PNG to write (layout colours); the decoded face goes beside it.")],
    persona: Persona = None,
    scale: Annotated[int, typer.Option("--scale", min=1, help="Enlarge the map this many times for painting.")] = 4,
    device: Device = "auto",
    workers: Workers = 0,
) -> None:
    """Write a keyframe's decoded segmentation for the artist to paint the edit on (trains the persona's
    segmentation head first when the model has none)."""
    from vfx.edit.pipeline import write_keyframe_labels
    from vfx.shot import load_shot

    labels, face = write_keyframe_labels(load_shot(shot), keyframe=keyframe, out=out, persona=persona, scale=scale,
                                         device=resolve_device(device), workers=workers)
    typer.echo(f"segmentation: {labels}\ndecoded face: {face}")


def edit_learn(
    shot: Annotated[Path, typer.Argument(help="Shot file: plate, model and persona.")],
    keyframe: Annotated[int, typer.Option("--keyframe", help="The frame the edited labels were painted on.")],
    labels: Annotated[Path, typer.Option("--labels", help="The edited label map (PNG of label values or layout colours).")],
    persona: Persona = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Vector folder to write (default: edits/<shot>_<keyframe>.vfxedit beside the outputs).")] = None,
    device: Device = "auto",
    workers: Workers = 0,
) -> None:
    """Turn an edited segmentation of one keyframe into an edit vector: optimise a latent offset so the
    decoded segmentation shows the edit while the face outside the edited region stays put."""
    from vfx.edit.pipeline import learn_shot_edit
    from vfx.shot import load_shot

    summary = learn_shot_edit(load_shot(shot), keyframe=keyframe, labels=labels, persona=persona, out=out,
                              device=resolve_device(device), workers=workers)
    typer.echo(summary.describe())


def edit_apply(
    shot: Annotated[Path, typer.Argument(help="Shot file whose swapped frames (outputs.exr) to edit.")],
    vector: Annotated[Optional[list[Path]], typer.Option("--vector", help="Edit vector folder (repeat to add several; default: the shot's edit_vectors).")] = None,
    strength: Annotated[Optional[list[str]], typer.Option("--strength", help="Strength per --vector: 0.5, or keys 1001:0,1010:1 (default 1).")] = None,
    frames: Frames = None,
    refine_steps: Annotated[Optional[int], typer.Option("--refine-steps", min=0, help="Self-supervised refinement steps per frame (default: the shot's edit_options; 0: the vector alone).")] = None,
    device: Device = "auto",
    workers: Workers = 0,
) -> None:
    """Apply edit vectors to every frame of the swap (z_t + s(t)·δ, refined per frame) and write the edited
    frames (only those not on disk yet); outside each frame's edit region they keep the swap's bits."""
    from vfx.edit.pipeline import parse_strength, plan_edit_apply, run_edit_apply
    from vfx.errors import ConfigError
    from vfx.export.handoff import write_handoff
    from vfx.shot import FrameRange, load_shot

    loaded = load_shot(shot)
    pairs = None
    if vector:
        curves = [parse_strength(s) for s in strength or []]
        if len(curves) > 1 and len(curves) != len(vector):
            raise ConfigError("--strength does not pair with --vector", expected=f"one --strength, or one per "
                              f"--vector ({len(vector)})", found=f"{len(curves)} strengths",
                              fix="give one --strength for all vectors, or one --strength after each --vector")
        pairs = [(v, curves[i] if len(curves) > 1 else (curves[0] if curves else 1.0)) for i, v in enumerate(vector)]
    elif strength:
        raise ConfigError("--strength needs --vector", expected="--vector V --strength CURVE",
                          found=f"--strength {strength[0]} alone", fix="or set the strength in the shot file's edit_vectors")
    plan = plan_edit_apply(loaded, frames=FrameRange.parse(frames) if frames else None, vectors=pairs,
                           refine_steps=refine_steps, device=resolve_device(device))
    typer.echo(run_edit_apply(plan, workers=workers).describe())
    if loaded.edit_vectors and not vector:
        for line in write_handoff(loaded):
            typer.echo(line)


def export(
    shot: Annotated[Path, typer.Argument(help="Shot file whose rendered frames (outputs.exr) to hand on.")],
    comp: Annotated[Optional[Path], typer.Option("--comp", help="Write the compositor package here (default: the shot's outputs.comp_package).")] = None,
    review: Annotated[Optional[Path], typer.Option("--review", help="Write the dailies review movie here (default: the shot's outputs.review); ProRes and DNxHR need a .mov.")] = None,
    side_by_side: Annotated[Optional[bool], typer.Option("--side-by-side/--no-side-by-side", help="Also a review with the plate beside the result.")] = None,
    frames: Frames = None,
    display: Annotated[Optional[str], typer.Option("--display", help="OCIO display the review is graded for, e.g. 'sRGB - Display' (default: the shot's review.display, else the config's default display).")] = None,
    view: Annotated[Optional[str], typer.Option("--view", help="OCIO view (the show look), e.g. 'ACES 2.0 - SDR 100 nits (Rec.709)' (default: the shot's review.view, else the display's default view).")] = None,
    codec: Annotated[Optional[str], typer.Option("--codec", help="Review codec: h264 (proxy), prores422hq, prores4444 or dnxhr_hq (default: the shot's review.codec, h264).")] = None,
    slate: Annotated[Optional[bool], typer.Option("--slate/--no-slate", help="Start the review with a slate frame (shot, version, frames, timecode, persona, date).")] = None,
    burn_ins: Annotated[Optional[bool], typer.Option("--burn-ins/--no-burn-ins", help="Burn shot, version, frame, timecode, persona and a SYNTHETIC FACE tag into the review.")] = None,
    otio_file: Annotated[Optional[Path], typer.Option("--otio", help="Also write an OpenTimelineIO timeline (.otio) for Nuke Studio, Hiero or RV: the plate and each rendered version as image-sequence tracks in the plate's timecode, the review movie(s) as clips.")] = None,
) -> None:
    """Hand a rendered shot on: the compositor package (RGBA face patches, mattes, matrices, a Nuke script),
    the dailies review (the show's OCIO view, burn-ins, optional slate, the plate's sound) and an OTIO timeline
    for editorial, from the frames `vfx swap` wrote."""
    from vfx.export.handoff import write_handoff
    from vfx.export.review import review_options
    from vfx.shot import FrameRange, load_shot

    loaded = load_shot(shot)
    options = review_options(loaded, display=display, view=view,
                             codec=choice("--codec", codec, ("h264", "prores422hq", "prores4444", "dnxhr_hq"))
                             if codec else None, slate=slate, burn_ins=burn_ins)
    wanted = FrameRange.parse(frames) if frames else None
    if otio_file is not None:
        from vfx.export.otio import check_otio_path, write_otio

        check_otio_path(loaded, otio_file)  # refused before anything is written
    if otio_file is None or comp or review or loaded.outputs.comp_package or loaded.outputs.review:
        for line in write_handoff(loaded, comp=comp, review=review, side_by_side=side_by_side, frames=wanted,
                                  require=True, review_options=options):
            typer.echo(line)
    if otio_file is not None:
        typer.echo(f"OTIO timeline: {write_otio(loaded, otio_file, frames=wanted)}")
