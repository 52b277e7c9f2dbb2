"""Subcommands. Each parses its options, calls the library and prints the result; nothing more."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from vfx.utils.logging import configure_logging

app = typer.Typer(
    name="vfx",
    help="Face swap, blending, retouch and farm hand-off for film shots.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
shot_app = typer.Typer(help="Check and print shot files (schema vfx.Shot/1).", no_args_is_help=True)
app.add_typer(shot_app, name="shot")
model_app = typer.Typer(help="Inspect trained comb models (schema vfx.CombModel/1).", no_args_is_help=True)
app.add_typer(model_app, name="model")
edit_app = typer.Typer(help="Segmentation-driven latent edits: learn an edit vector on a keyframe, apply it to a "
                       "shot (schema vfx.EditVector/1).", no_args_is_help=True)
app.add_typer(edit_app, name="edit")
task_app = typer.Typer(help="One farm task of a shot (what every engine and farm manager runs).", no_args_is_help=True)
app.add_typer(task_app, name="task")
farm_app = typer.Typer(help="A shot as farm tasks: run them (local or Ray), show where they stand, export them to "
                       "OpenCue, OpenJD or Deadline.", no_args_is_help=True)
app.add_typer(farm_app, name="farm")

ENGINES = ("local", "ray")


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-v info, -vv debug).")] = 0,
    log_json: Annotated[bool, typer.Option("--log-json", help="Log as JSON lines, for farm managers.")] = False,
) -> None:
    configure_logging({0: None, 1: "info"}.get(verbose, "debug"), json_lines=log_json)


@shot_app.command("validate")
def shot_validate(
    file: Annotated[Path, typer.Argument(help="Shot file (YAML).")],
    schema_only: Annotated[bool, typer.Option("--schema-only", help="Check the YAML only, not the media it names.")] = False,
    frames: Annotated[Optional[str], typer.Option("--frames", help="Frames to check instead of the shot's, e.g. 1001-1020.")] = None,
) -> None:
    """Check a shot file: its fields, and (unless --schema-only) that its plate exists and holds its frames."""
    from vfx.io.plate import check_shot_media
    from vfx.shot import FrameRange, load_shot

    wanted = FrameRange.parse(frames) if frames else None
    shot = load_shot(file)
    checked = "" if schema_only else f", frames {check_shot_media(shot, wanted)} present"
    typer.echo(f"{file}: valid {shot.schema_} shot {shot.name!r} (hash {shot.content_hash()}){checked}")


@shot_app.command("show")
def shot_show(file: Annotated[Path, typer.Argument(help="Shot file (YAML).")]) -> None:
    """Print the resolved shot as YAML: absolute paths, every default filled in."""
    from vfx.shot import dump_shot, load_shot

    typer.echo(dump_shot(load_shot(file)), nl=False)


@app.command("probe")
def probe(
    media: Annotated[str, typer.Argument(help="A video file, an image, or an image sequence pattern (plate.####.exr).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    start_frame: Annotated[int, typer.Option("--start-frame", help="Number of a video's first frame.")] = 1001,
) -> None:
    """Describe media: size, frames, fps, pixel format, audio, timecode."""
    from vfx.io.plate import probe_media

    info = probe_media(media, start_frame=start_frame)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    width = max(len(key) for key in info)
    for key, value in info.items():
        typer.echo(f"{key:<{width}}  {value}")


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's media, shot file and outputs.")] = Path("vfx_demo"),
    frames: Annotated[int, typer.Option("--frames", min=8, help="Frames per clip.")] = 48,
    size: Annotated[int, typer.Option("--size", min=64, help="Clip height and width in pixels (even).")] = 256,
    start_frame: Annotated[Optional[int], typer.Option("--start-frame", help="First frame number.")] = None,
    iters_per_level: Annotated[int, typer.Option("--iters-per-level", min=1, help="Training iterations per level (a few minutes on a 2-core CPU).")] = 100,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Run the whole pipeline on the demo shot, made from two public-domain portraits (Grace Hopper, the NASA
    astronaut): extract both personas, train a small comb model, swap hopper onto the astronaut, blend, and
    write the EXR sequence, review video, compositor package and a contact sheet."""
    from vfx.demo import build_demo, extract_demo_facesets, swap_demo, train_demo_model
    from vfx.shot import DEFAULT_START_FRAME

    chosen = resolve_device(device)
    result = build_demo(out, num_frames=frames, size=size, start_frame=start_frame or DEFAULT_START_FRAME)
    result = extract_demo_facesets(result)
    result = train_demo_model(result, iters_per_level=iters_per_level, device=chosen)
    result = swap_demo(result, device=chosen)
    typer.echo(result.summary())


@app.command("extract")
def extract(
    source: Annotated[str, typer.Argument(help="A shot file (its plate, or --persona's footage), a video, or an image sequence pattern.")],
    out: Annotated[Path, typer.Option("--out", help="Faceset folder (made, or resumed when it holds this source).")],
    frames: Annotated[Optional[str], typer.Option("--frames", help="Frames to extract, e.g. 1001-1020 (default: all, or the shot's).")] = None,
    landmarker: Annotated[str, typer.Option("--landmarker", help="dlib (offline default) or fan (face-alignment).")] = "dlib",
    size: Annotated[int, typer.Option("--size", help="Aligned crop size, a power of two up to 1024.")] = 256,
    track: Annotated[Optional[int], typer.Option("--track", help="Only this face track (0 = the main face).")] = None,
    persona: Annotated[Optional[str], typer.Option("--persona", help="With a shot file: extract this persona's footage.")] = None,
    models_dir: Annotated[Optional[Path], typer.Option("--models-dir", help="Folder with landmark model weights (FAN).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    start_frame: Annotated[int, typer.Option("--start-frame", help="Number of a video's first frame.")] = 1001,
    colorspace: Annotated[Optional[str], typer.Option("--colorspace", help="Colour space of the media (default: sRGB, or the shot's).")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Processes (0: one per CPU core).")] = 0,
    jitter_beta: Annotated[float, typer.Option("--jitter-beta", help="Box shift for landmark averaging, as a fraction of the box width.")] = 0.05,
    jitter_shifts: Annotated[int, typer.Option("--jitter-shifts", help="Shifted boxes averaged per face (8 principal directions; 0: single pass).")] = 8,
    smooth_window: Annotated[int, typer.Option("--smooth-window", help="Longest window (frames, odd) of the zero-lag temporal filter; 1: off.")] = 11,
    min_face_px: Annotated[Optional[float], typer.Option("--min-face-px", help="Smallest face width to find, in pixels (slower detection below ~160 px).")] = None,
    qc: Annotated[bool, typer.Option("--qc", help="Also plot each track's landmark jitter over time (qc_jitter.png).")] = False,
) -> None:
    """Detect, landmark, track and align faces into a faceset, with a contact sheet of sample crops."""
    from vfx.faceset.extract import ExtractConfig, extract_faceset
    from vfx.faceset.qc import write_contact_sheet, write_jitter_plot
    from vfx.faceset.store import Faceset
    from vfx.shot import FrameRange

    media, shot_frames = _media_source(source, persona=persona, start_frame=start_frame, colorspace=colorspace)
    config = ExtractConfig(landmarker=_choice("--landmarker", landmarker, ("dlib", "fan")), models_dir=models_dir,
                           device=resolve_device(device), crop_size=size, track=track, workers=workers,
                           jitter_beta=jitter_beta, jitter_shifts=jitter_shifts, smooth_window=smooth_window,
                           min_face_px=min_face_px)
    wanted = FrameRange.parse(frames) if frames else shot_frames
    summary = extract_faceset(media, out, frames=wanted, config=config)
    faceset = Faceset.open(out)
    typer.echo(summary.describe())
    typer.echo(f"  contact sheet: {write_contact_sheet(faceset, out / 'contact_sheet.png')}")
    if qc:
        typer.echo(f"  jitter plot: {write_jitter_plot(faceset, out / 'qc_jitter.png')}")


@app.command("train")
def train(
    shot: Annotated[Optional[Path], typer.Argument(help="A shot file: its personas (facesets, or footage it extracts) and model settings (model.training).")] = None,
    persona: Annotated[Optional[list[str]], typer.Option("--persona", help="NAME=FACESET_FOLDER; repeat for each persona (instead of, or added to, the shot's).")] = None,
    consent: Annotated[Optional[list[str]], typer.Option("--consent", help="NAME=TEXT: who agreed, to what use, until when.")] = None,
    no_consent_record: Annotated[bool, typer.Option("--no-consent-record", help="Train personas that have no consent record (logged).")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run folder for checkpoints and previews (default: the shot's model.checkpoint).")] = None,
    res: Annotated[Optional[int], typer.Option("--res", help="Final crop resolution, a power of two (default: the shot's, else 64).")] = None,
    width: Annotated[Optional[float], typer.Option("--width", help="Channel-width multiplier (1.0: the patent's network; default: the shot's, else 0.25).")] = None,
    iters_per_level: Annotated[Optional[int], typer.Option("--iters-per-level", help="Iterations per level (default: the shot's model.training, else 1000; the patent: 100000).")] = None,
    fine_tune_iters: Annotated[Optional[int], typer.Option("--fine-tune-iters", help="Iterations at lr 1e-5 after the last level (default: the shot's, else 0).")] = None,
    batch: Annotated[Optional[int], typer.Option("--batch", help="Crops per step (default: the shot's, else 8).")] = None,
    mask: Annotated[Optional[str], typer.Option("--mask", help="target (Eq. 1: mask the target) or both (Eq. 2) (default: the shot's, else target).")] = None,
    holdout: Annotated[Optional[float], typer.Option("--holdout", help="Fraction of each faceset (its last frames) kept out of training for the previews (default: the shot's, else 0.1).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of the weights, batches and augmentation (default: the shot's, else 0).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    amp: Annotated[str, typer.Option("--amp", help="CUDA autocast: bf16, fp16 or off.")] = "bf16",
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the network (CUDA).")] = False,
    checkpoint_every: Annotated[Optional[int], typer.Option("--checkpoint-every", help="Iterations between checkpoints (default: the shot's, else min(500, iterations per level)).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the run folder's newest checkpoint.")] = False,
    base: Annotated[Optional[Path], typer.Option("--base", help="Add the --persona(s) to this trained model (run folder): new decoders start from its first decoder; only the final level trains.")] = None,
    shared_lr_scale: Annotated[float, typer.Option("--shared-lr-scale", help="Learning-rate factor of the encoder and tied levels (0 freezes them; for --base).")] = 1.0,
) -> None:
    """Train a comb model (shared encoder, one decoder per persona) progressively from 4² up to --res: the
    shot's training plan (the one the farm's train task runs), with these options as overrides. Personas
    given as footage are extracted first."""
    from vfx.comb.plan import TrainingOverrides, extract_personas, plan_training
    from vfx.comb.preview import write_loss_curve, write_preview
    from vfx.comb.train import held_out_ssim, train_comb
    from vfx.shot import load_shot

    overrides = TrainingOverrides(
        personas=tuple((name, Path(folder)) for name, folder in (_key_value("--persona", p) for p in persona or [])),
        consent=tuple(_key_value("--consent", c) for c in consent or []), no_consent_record=no_consent_record,
        out=out, resolution=res, width=width, iters_per_level=iters_per_level, fine_tune_iters=fine_tune_iters,
        batch_size=batch, mask=_choice("--mask", mask, ("target", "both")) if mask is not None else None,
        holdout=holdout, seed=seed, checkpoint_every=checkpoint_every, amp=amp, compile=compile_,
        shared_lr_scale=shared_lr_scale, base=base, resume=resume)
    plan = plan_training(load_shot(shot) if shot is not None else None, overrides)
    chosen = resolve_device(device)
    for summary in extract_personas(plan, device=chosen).values():
        if summary is not None:
            typer.echo(summary.describe(), err=True)
    data = plan.persona_data()
    typer.echo(f"training {', '.join(f'{n} ({len(d)} crops)' for n, d in data.items())} at {plan.resolution}², width "
               f"{plan.width}, {plan.config.iters_per_level} iterations per level -> {plan.run}", err=True)
    net, manifest = train_comb(data, plan.run, resolution=plan.resolution, width=plan.width, config=plan.config,
                               records=plan.records, device=chosen, resume=plan.resume, base=plan.base,
                               report=lambda p: typer.echo(p.line(), err=True))
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun, process 0 reports and draws
    preview = write_preview(net, data, plan.run / "preview.png")
    curve = write_loss_curve(manifest.losses, plan.run / "loss.png")
    typer.echo(f"model {plan.run} (iteration {manifest.step}, level {manifest.level}, last loss "
               f"{manifest.losses[-1][2] if manifest.losses else float('nan'):.4f})")
    for name, persona_data in data.items():
        scores = held_out_ssim(net, persona_data)
        typer.echo(f"  {name}: held-out SSIM {scores['ssim']:.4f} (face only {scores['face_ssim']:.4f}) "
                   f"on {len(persona_data.held_out[0])} crops")
    typer.echo(f"  preview (held-out inputs, then each decoder): {preview}\n  loss curve: {curve}")


@app.command("swap")
def swap(
    shot: Annotated[Path, typer.Argument(help="Shot file: plate, model, persona, blend and outputs.")],
    frames: Annotated[Optional[str], typer.Option("--frames", help="Frames to render, e.g. 1001-1020 (default: the shot's).")] = None,
    persona: Annotated[Optional[str], typer.Option("--persona", help="Persona to swap in (default: the shot's swap.persona).")] = None,
    blend: Annotated[Optional[str], typer.Option("--blend", help="enhanced (Fig. 5), multiband, poisson or alpha (default: the shot's).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    batch: Annotated[Optional[int], typer.Option("--batch", min=1, help="Crops per network call (default: 8 on CUDA, 1 on CPU).")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Processes for tracking the plate's faces (0: one per CPU core).")] = 0,
) -> None:
    """Swap the shot's face for a persona and write the frames (only those not on disk yet); with the whole
    shot rendered, also the review video and the compositor package the shot asks for."""
    from vfx.blend import BLEND_METHODS
    from vfx.export.handoff import write_handoff
    from vfx.shot import FrameRange, load_shot
    from vfx.swap import plan_swap, run_swap

    loaded = load_shot(shot)
    method = _choice("--blend", blend, BLEND_METHODS) if blend else None
    plan = plan_swap(loaded, frames=FrameRange.parse(frames) if frames else None, persona=persona, method=method,
                     device=resolve_device(device))
    summary = run_swap(plan, batch_size=batch, workers=workers)
    typer.echo(summary.describe())
    for line in write_handoff(loaded):
        typer.echo(line)


@app.command("retouch")
def retouch(
    shot: Annotated[Path, typer.Argument(help="Shot file with a `retouch:` list of edits.")],
    frames: Annotated[Optional[str], typer.Option("--frames", help="Frames to retouch, e.g. 1001-1020 (default: the shot's).")] = None,
    edit: Annotated[Optional[list[str]], typer.Option("--edit", help="Apply only this edit (by name; repeat for several).")] = None,
    preview: Annotated[bool, typer.Option("--preview", help="Also write a preview PNG (original | edited layout | warp | refined).")] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    workers: Annotated[int, typer.Option("--workers", help="Processes for tracking the plate's faces (0: one per CPU core).")] = 0,
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


@edit_app.command("labels")
def edit_labels(
    shot: Annotated[Path, typer.Argument(help="Shot file: plate, model and persona.")],
    keyframe: Annotated[int, typer.Option("--keyframe", help="Frame whose segmentation to write.")],
    out: Annotated[Path, typer.Option("--out", help="PNG to write (layout colours); the decoded face goes beside it.")],
    persona: Annotated[Optional[str], typer.Option("--persona", help="Decoder to use (default: the shot's swap persona).")] = None,
    scale: Annotated[int, typer.Option("--scale", min=1, help="Enlarge the map this many times for painting.")] = 4,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    workers: Annotated[int, typer.Option("--workers", help="Processes for tracking the plate's faces (0: one per CPU core).")] = 0,
) -> None:
    """Write a keyframe's decoded segmentation for the artist to paint the edit on (trains the persona's
    segmentation head first when the model has none)."""
    from vfx.edit.pipeline import write_keyframe_labels
    from vfx.shot import load_shot

    labels, face = write_keyframe_labels(load_shot(shot), keyframe=keyframe, out=out, persona=persona, scale=scale,
                                         device=resolve_device(device), workers=workers)
    typer.echo(f"segmentation: {labels}\ndecoded face: {face}")


@edit_app.command("learn")
def edit_learn(
    shot: Annotated[Path, typer.Argument(help="Shot file: plate, model and persona.")],
    keyframe: Annotated[int, typer.Option("--keyframe", help="The frame the edited labels were painted on.")],
    labels: Annotated[Path, typer.Option("--labels", help="The edited label map (PNG of label values or layout colours).")],
    persona: Annotated[Optional[str], typer.Option("--persona", help="Decoder to learn through (default: the shot's swap persona).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Vector folder to write (default: edits/<shot>_<keyframe>.vfxedit beside the outputs).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    workers: Annotated[int, typer.Option("--workers", help="Processes for tracking the plate's faces (0: one per CPU core).")] = 0,
) -> None:
    """Turn an edited segmentation of one keyframe into an edit vector: optimise a latent offset so the
    decoded segmentation shows the edit while the face outside the edited region stays put."""
    from vfx.edit.pipeline import learn_shot_edit
    from vfx.shot import load_shot

    summary = learn_shot_edit(load_shot(shot), keyframe=keyframe, labels=labels, persona=persona, out=out,
                              device=resolve_device(device), workers=workers)
    typer.echo(summary.describe())


@edit_app.command("apply")
def edit_apply(
    shot: Annotated[Path, typer.Argument(help="Shot file whose swapped frames (outputs.exr) to edit.")],
    vector: Annotated[Optional[list[Path]], typer.Option("--vector", help="Edit vector folder (repeat to add several; default: the shot's edit_vectors).")] = None,
    strength: Annotated[Optional[list[str]], typer.Option("--strength", help="Strength per --vector: 0.5, or keys 1001:0,1010:1 (default 1).")] = None,
    frames: Annotated[Optional[str], typer.Option("--frames", help="Frames to edit, e.g. 1001-1020 (default: the shot's).")] = None,
    refine_steps: Annotated[Optional[int], typer.Option("--refine-steps", min=0, help="Self-supervised refinement steps per frame (default: the shot's edit_options; 0: the vector alone).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    workers: Annotated[int, typer.Option("--workers", help="Processes for tracking the plate's faces (0: one per CPU core).")] = 0,
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
                              f"--vector ({len(vector)})", found=f"{len(curves)} strengths")
        pairs = [(v, curves[i] if len(curves) > 1 else (curves[0] if curves else 1.0)) for i, v in enumerate(vector)]
    elif strength:
        raise ConfigError("--strength needs --vector", expected="--vector V --strength CURVE",
                          fix="or set the strength in the shot file's edit_vectors")
    plan = plan_edit_apply(loaded, frames=FrameRange.parse(frames) if frames else None, vectors=pairs,
                           refine_steps=refine_steps, device=resolve_device(device))
    typer.echo(run_edit_apply(plan, workers=workers).describe())
    if loaded.edit_vectors and not vector:
        for line in write_handoff(loaded):
            typer.echo(line)


@app.command("export")
def export(
    shot: Annotated[Path, typer.Argument(help="Shot file whose rendered frames (outputs.exr) to hand on.")],
    comp: Annotated[Optional[Path], typer.Option("--comp", help="Write the compositor package here (default: the shot's outputs.comp_package).")] = None,
    review: Annotated[Optional[Path], typer.Option("--review", help="Write the H.264 review video here (default: the shot's outputs.review).")] = None,
    side_by_side: Annotated[Optional[bool], typer.Option("--side-by-side/--no-side-by-side", help="Also a review with the plate beside the swap.")] = None,
    frames: Annotated[Optional[str], typer.Option("--frames", help="Frames to export (default: the shot's).")] = None,
) -> None:
    """Hand a rendered shot on: the compositor package (RGBA face patches, mattes, matrices, a Nuke script)
    and the review video, from the frames `vfx swap` wrote."""
    from vfx.export.handoff import write_handoff
    from vfx.shot import FrameRange, load_shot

    for line in write_handoff(load_shot(shot), comp=comp, review=review, side_by_side=side_by_side,
                              frames=FrameRange.parse(frames) if frames else None, require=True):
        typer.echo(line)


@task_app.command("run")
def task_run(
    shot: Annotated[Path, typer.Argument(help="Shot file.")],
    stage: Annotated[str, typer.Option("--stage", help="extract, track, train, swap, seghead, edit, refiner, retouch or package.")],
    frames: Annotated[Optional[str], typer.Option("--frames", help="The chunk, for extract, swap, edit and retouch (default: the whole shot).")] = None,
    frame_syntax: Annotated[str, typer.Option("--frame-syntax", help="vfx (fileseq: 1001-1010x2) or openjd (1001-1010:2).")] = "vfx",
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads for torch (default: torch's).")] = None,
    deterministic: Annotated[bool, typer.Option("--deterministic", help="Deterministic algorithms: the same frames however the shot is cut.")] = False,
    progress: Annotated[str, typer.Option("--progress", help="Progress lines: alf (ALF_PROGRESS 40%), openjd or json.")] = "alf",
) -> None:
    """Run one task: skip what is already written, write atomically, record the task's state in
    <shot>_farm/<task>.json. Exit 0 done, 2 bad input (do not retry), 1 failure (retry)."""
    from vfx.farm.graph import STAGES
    from vfx.farm.task import PROGRESS_FORMATS, TaskOptions, run_task
    from vfx.shot import FrameRange

    stage = _choice("--stage", stage, tuple(STAGES))
    syntax = _choice("--frame-syntax", frame_syntax, ("vfx", "openjd"))
    chunk = None if frames is None else FrameRange.parse_openjd(frames) if syntax == "openjd" else FrameRange.parse(frames)
    options = TaskOptions(device=resolve_device(device), threads=threads, deterministic=deterministic,
                          progress=_choice("--progress", progress, PROGRESS_FORMATS))
    record = run_task(shot, stage, chunk, options=options)
    typer.echo(f"task {record.task}: {record.message}", err=True)


@farm_app.command("run")
def farm_run(
    shot: Annotated[Path, typer.Argument(help="Shot file.")],
    engine: Annotated[str, typer.Option("--engine", help="local (processes on this machine) or ray (a Ray cluster).")] = "local",
    chunk: Annotated[Optional[int], typer.Option("--chunk", min=1, help="Frames per task (default: the shot's farm.chunk_size).")] = None,
    frames: Annotated[Optional[str], typer.Option("--frames", help="Frames to render (default: the shot's).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Local engine: tasks at once (default: one per core).")] = None,
    address: Annotated[Optional[str], typer.Option("--address", help="Ray: a running cluster (host:port or auto); default: start a local one.")] = None,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Further attempts of a failed task (bad input is never retried).")] = 2,
    deterministic: Annotated[bool, typer.Option("--deterministic", help="Deterministic algorithms in every task.")] = False,
) -> None:
    """Run the shot's task graph (extract, track, train, swap, edit, retouch, package) with its dependencies;
    tasks already done are skipped, so a rerun finishes what is missing."""
    from vfx.farm.graph import build_graph
    from vfx.shot import FrameRange

    engine = _choice("--engine", engine, ENGINES)
    graph = build_graph(shot, chunk=chunk, frames=FrameRange.parse(frames) if frames else None)
    report = lambda line: typer.echo(line, err=True)  # noqa: E731
    if engine == "ray":
        from vfx.farm.ray_engine import run_ray

        summary = run_ray(graph, address=address, retries=retries, deterministic=deterministic, report=report)
    else:
        from vfx.farm.local import run_local

        summary = run_local(graph, workers=workers, retries=retries, deterministic=deterministic, report=report)
    typer.echo(summary.describe())
    if summary.exit_code:
        raise typer.Exit(summary.exit_code)


@farm_app.command("status")
def farm_status_command(
    shot: Annotated[Path, typer.Argument(help="Shot file.")],
    chunk: Annotated[Optional[int], typer.Option("--chunk", min=1, help="The chunk size the shot was run with (default: farm.chunk_size).")] = None,
) -> None:
    """A table of the shot's tasks: done, running, failed, killed or pending, with frame counts."""
    from vfx.farm.graph import build_graph
    from vfx.farm.status import farm_status, format_status

    typer.echo(format_status(farm_status(build_graph(shot, chunk=chunk))))


@farm_app.command("export")
def farm_export(
    shot: Annotated[Path, typer.Argument(help="Shot file.")],
    to: Annotated[str, typer.Option("--to", help="opencue (job XML), openjd (job template) or deadline (job and plugin info files).")],
    out: Annotated[Path, typer.Argument(help="Folder for the job files.")],
    chunk: Annotated[Optional[int], typer.Option("--chunk", min=1, help="Frames per task (default: farm.chunk_size).")] = None,
    executable: Annotated[str, typer.Option("--executable", help="The vfx command on the farm's nodes.")] = "vfx",
) -> None:
    """Write the shot's task graph as a farm manager's job; every task calls `vfx task run`."""
    from vfx.farm.export import EXPORT_TARGETS, export_graph
    from vfx.farm.graph import build_graph

    target = _choice("--to", to, EXPORT_TARGETS)
    for path in export_graph(build_graph(shot, chunk=chunk), target, out, executable=executable):
        typer.echo(str(path))


@model_app.command("info")
def model_info(checkpoint: Annotated[Path, typer.Argument(help="A run folder of vfx train, or one of its step_* folders.")]) -> None:
    """Print a comb model's architecture, personas (with their consent records), level and training state."""
    from vfx.comb.checkpoint import read_manifest
    from vfx.comb.train import describe

    info = describe(read_manifest(checkpoint))
    width = max(len(key) for key in info)
    for key, value in info.items():
        typer.echo(f"{key:<{width}}  {value}")


# ------------------------------------------------------------------------------------------------ helpers


def _key_value(option: str, item: str) -> tuple[str, str]:
    from vfx.errors import ConfigError

    name, sep, value = item.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ConfigError(f"Invalid {option} {item!r}", expected=f"{option} NAME=VALUE", found=item)
    return name.strip(), value.strip()


def resolve_device(spec: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` as given."""
    from vfx.errors import ConfigError

    if spec == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu" or spec == "cuda" or (spec.startswith("cuda:") and spec[5:].isdigit()):
        return spec
    raise ConfigError(f"Unknown device {spec!r}", expected="auto, cpu, cuda or cuda:N", found=spec)


def _choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    import difflib

    from vfx.errors import ConfigError

    if value in choices:
        return value
    hint = difflib.get_close_matches(value, choices, n=1)
    raise ConfigError(f"Invalid {option} {value!r}", expected=" or ".join(choices), found=value,
                      fix=f"did you mean {hint[0]!r}?" if hint else f"use one of {', '.join(choices)}")


def _media_source(source: str, *, persona: str | None, start_frame: int, colorspace: str | None):  # type: ignore[no-untyped-def]
    """The footage a command works on, and its default frames: a shot's plate (or persona footage), or media."""
    from vfx.errors import ConfigError
    from vfx.faceset.extract import MediaSource
    from vfx.io.color import WORKING_SPACE
    from vfx.shot import load_shot

    if Path(source).suffix.lower() in (".yaml", ".yml"):
        shot = load_shot(source)
        if persona is None:
            media = MediaSource(str(shot.plate.path), shot.plate.start_frame, colorspace or shot.plate.colorspace,
                                shot=shot.name)
            return media, shot.plate.frames
        if persona not in shot.personas:
            raise ConfigError(f"Shot {shot.name!r} has no persona {persona!r}",
                              expected=f"one of {', '.join(sorted(shot.personas)) or '(none declared)'}", found=persona)
        config = shot.personas[persona]
        if config.footage is None:
            raise ConfigError(f"Persona {persona!r} has a faceset, not footage", expected="personas.NAME.footage",
                              found=f"faceset {config.faceset}", fix="its faceset is already extracted")
        return MediaSource(str(config.footage), config.start_frame, colorspace or WORKING_SPACE, shot=shot.name), None
    if persona is not None:
        raise ConfigError("--persona needs a shot file", expected="a .yaml shot file as SOURCE", found=source)
    return MediaSource(source, start_frame, colorspace or WORKING_SPACE), None
