"""`vfx extract`: faces from footage into a faceset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vfx.cli.common import choice, media_source, resolve_device
from vfx.cli.options import Device, Frames, StartFrame, Workers


def extract(
    source: Annotated[str, typer.Argument(help="A shot file (its plate, or --persona's footage), a video, or an image sequence pattern.")],
    out: Annotated[Path, typer.Option("--out", help="Faceset folder (made, or resumed when it holds this source).")],
    frames: Frames = None,
    landmarker: Annotated[str, typer.Option("--landmarker", help="dlib (offline default) or fan (face-alignment).")] = "dlib",
    size: Annotated[int, typer.Option("--size", help="Aligned crop size, a power of two up to 1024.")] = 256,
    track: Annotated[Optional[int], typer.Option("--track", help="Only this face track (0 = the main face).")] = None,
    persona: Annotated[Optional[str], typer.Option("--persona", help="With a shot file: extract this persona's footage.")] = None,
    models_dir: Annotated[Optional[Path], typer.Option("--models-dir", help="Folder with landmark model weights (FAN).")] = None,
    device: Device = "auto",
    start_frame: StartFrame = 1001,
    colorspace: Annotated[Optional[str], typer.Option("--colorspace", help="Colour space of the media (default: sRGB, or the shot's).")] = None,
    workers: Workers = 0,
    jitter_beta: Annotated[float, typer.Option("--jitter-beta", help="Box shift for landmark averaging, as a fraction of the box width.")] = 0.05,
    jitter_shifts: Annotated[int, typer.Option("--jitter-shifts", help="Shifted boxes averaged per face (8 principal directions; 0: single pass).")] = 8,
    smooth_window: Annotated[int, typer.Option("--smooth-window", help="Longest window (frames, odd) of the zero-lag temporal filter; 1: off.")] = 11,
    min_face_px: Annotated[Optional[float], typer.Option("--min-face-px", help="Smallest face width to find, in pixels (slower detection below ~160 px).")] = None,
    qc: Annotated[bool, typer.Option("--qc", help="Also plot each track's landmark jitter over time (qc_jitter.png).")] = False,
    cuts: Annotated[Optional[str], typer.Option("--cuts", help="Frames where a new camera shot starts (1025,1049), or 'none'; no track or smoothing crosses them. Default: found by PySceneDetect.")] = None,
) -> None:
    """Detect, landmark, track and align faces into a faceset, with a contact sheet of sample crops."""
    from vfx.faceset.extract import ExtractConfig, extract_faceset
    from vfx.faceset.qc import write_contact_sheet, write_jitter_plot
    from vfx.faceset.store import Faceset
    from vfx.shot import FrameRange

    media, shot_frames = media_source(source, persona=persona, start_frame=start_frame, colorspace=colorspace)
    config = ExtractConfig(landmarker=choice("--landmarker", landmarker, ("dlib", "fan")), models_dir=models_dir,
                           device=resolve_device(device), crop_size=size, track=track, workers=workers,
                           jitter_beta=jitter_beta, jitter_shifts=jitter_shifts, smooth_window=smooth_window,
                           min_face_px=min_face_px,
                           cuts=None if cuts is None else () if cuts.strip().lower() == "none"
                           else tuple(FrameRange.parse(cuts)))
    wanted = FrameRange.parse(frames) if frames else shot_frames
    summary = extract_faceset(media, out, frames=wanted, config=config)
    faceset = Faceset.open(out)
    typer.echo(summary.describe())
    typer.echo(f"  contact sheet: {write_contact_sheet(faceset, out / 'contact_sheet.png')}")
    if qc:
        typer.echo(f"  jitter plot: {write_jitter_plot(faceset, out / 'qc_jitter.png')}")

