"""`vfx train` and `vfx model info`: comb models."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from vfx.cli.common import choice, key_value, resolve_device
from vfx.cli.options import Device


def train(
    shot: Annotated[Optional[Path], typer.Argument(help="A shot file: its personas (facesets, or footage it extracts) and model settings (model.training).")] = None,
    persona: Annotated[Optional[list[str]], typer.Option("--persona", help="NAME=FACESET_FOLDER; repeat for each persona (instead of, or added to, the shot's).")] = None,
    consent: Annotated[Optional[list[str]], typer.Option("--consent", help="NAME=TEXT: who agreed, to what use, until when.")] = None,
    no_consent_record: Annotated[bool, typer.Option("--no-consent-record", help="Train personas that have no consent record (logged).")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run folder for checkpoints and previews (default: the shot's model.checkpoint).")] = None,
    res: Annotated[Optional[int], typer.Option("--res", help="Final crop resolution, a power of two (default: the shot's, else 64).")] = None,
    # --width 1.0 and 100000 iterations per level are the patent's network and schedule; --mask target and both
    # are its Eq. 1 and Eq. 2.
    width: Annotated[Optional[float], typer.Option("--width", help="Channel-width multiplier (1.0: full size, smaller trains faster; default: the shot's, else 0.25).")] = None,
    iters_per_level: Annotated[Optional[int], typer.Option("--iters-per-level", help="Iterations per level (default: the shot's model.training, else 1000).")] = None,
    fine_tune_iters: Annotated[Optional[int], typer.Option("--fine-tune-iters", help="Iterations at lr 1e-5 after the last level (default: the shot's, else 0).")] = None,
    batch: Annotated[Optional[int], typer.Option("--batch", help="Crops per step (default: the shot's, else 8).")] = None,
    mask: Annotated[Optional[str], typer.Option("--mask", help="Face mask in the training loss: target (the decoder learns the masked face, black around it) or both (only the pixels inside the mask count) (default: the shot's, else target).")] = None,
    holdout: Annotated[Optional[float], typer.Option("--holdout", help="Fraction of each faceset (its last frames) kept out of training for the previews (default: the shot's, else 0.1).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of the weights, batches and augmentation (default: the shot's, else 0).")] = None,
    device: Device = "auto",
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
    from vfx.comb.preview import training_pictures
    from vfx.comb.train import held_out_ssim, train_comb
    from vfx.shot import load_shot

    overrides = TrainingOverrides(
        personas=tuple((name, Path(folder)) for name, folder in (key_value("--persona", p) for p in persona or [])),
        consent=tuple(key_value("--consent", c) for c in consent or []), no_consent_record=no_consent_record,
        out=out, resolution=res, width=width, iters_per_level=iters_per_level, fine_tune_iters=fine_tune_iters,
        batch_size=batch, mask=choice("--mask", mask, ("target", "both")) if mask is not None else None,
        holdout=holdout, seed=seed, checkpoint_every=checkpoint_every, amp=amp, compile=compile_,
        shared_lr_scale=shared_lr_scale, base=base, resume=resume, device=resolve_device(device))
    # Every check before any work or write: settings, device, facesets, run folder, checkpoints (plan_training).
    plan = plan_training(load_shot(shot) if shot is not None else None, overrides)
    chosen = plan.device
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
    typer.echo(f"model {plan.run} (iteration {manifest.step}, level {manifest.level}, last loss "
               f"{manifest.losses[-1][2] if manifest.losses else float('nan'):.4f})")
    for name, persona_data in data.items():
        scores = held_out_ssim(net, persona_data)
        typer.echo(f"  {name}: held-out SSIM {scores['ssim']:.4f} (face only {scores['face_ssim']:.4f}) "
                   f"on {len(persona_data.held_out[0])} crops")
    # Drawn by train_comb at every checkpoint (the last one included), as the farm's train task gets them.
    pictures = training_pictures(plan.run)
    if "preview" in pictures:
        typer.echo(f"  preview (held-out inputs, then each decoder): {pictures['preview']}")
    if "loss" in pictures:
        typer.echo(f"  loss curve: {pictures['loss']}")
    strips = [str(path) for key, path in pictures.items() if key.startswith("timelapse_level")]
    if strips:
        typer.echo(f"  timelapse (a row per checkpoint, one strip per level): {', '.join(strips)}")


def model_info(checkpoint: Annotated[Path, typer.Argument(help="A run folder of vfx train, or one of its step_* folders.")]) -> None:
    """Print a comb model's architecture, personas (with their consent records), level and training state, once
    its manifest and every tensor's name, shape and dtype are checked; and the run's training pictures
    (preview, loss curve, timelapse strips) where it has them."""
    from vfx.comb.checkpoint import check_checkpoint
    from vfx.comb.train import describe

    info = describe(check_checkpoint(checkpoint), run=checkpoint)
    width = max(len(key) for key in info)
    for key, value in info.items():
        typer.echo(f"{key:<{width}}  {value}")

