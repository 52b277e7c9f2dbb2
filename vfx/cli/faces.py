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



def faceset_report(
    faceset: Annotated[Path, typer.Argument(help="A faceset folder (made by vfx extract).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for faceset_report.png and .json (default: the faceset folder).")] = None,
    identity: Annotated[bool, typer.Option("--identity/--no-identity", help="Check every face is the same person (dlib descriptors, ~20 ms a face).")] = True,
    identity_threshold: Annotated[Optional[float], typer.Option("--identity-threshold", help="Distance to the faceset's median face descriptor over which a face is flagged (default 0.6, dlib's same-person rule).")] = None,
    blur_fraction: Annotated[float, typer.Option("--blur-fraction", help="Flag a face as blurred under this fraction of the faceset's median sharpness.")] = 0.35,
    duplicate_rms: Annotated[float, typer.Option("--duplicate-rms", help="Flag a face as a near-duplicate when its 32x32 grey thumbnail differs from an earlier face by less than this RMS (0-1).")] = 0.012,
) -> None:
    """Check a faceset before training: pose coverage (yaw/pitch), sharpness, faces of someone else, near-duplicate
    frames and faces per track, as a picture and a JSON, with a summary here."""
    from vfx.faceset.curate import check_report_folder, measure_faceset, write_report
    from vfx.faceset.store import Faceset

    opened = Faceset.open(faceset)
    folder = out if out is not None else faceset
    check_report_folder(folder)
    report = measure_faceset(opened, identity=identity, identity_threshold=identity_threshold,
                             blur_fraction=blur_fraction, duplicate_rms=duplicate_rms)
    json_path, png_path = write_report(report, folder)
    typer.echo(report.describe())
    typer.echo(f"  report: {png_path}\n  figures: {json_path}")


def faceset_exclude(
    faceset: Annotated[Path, typer.Argument(help="A faceset folder (made by vfx extract).")],
    frames: Annotated[Optional[list[str]], typer.Argument(help="Frames to leave out of training: 1001-1010,1020 (several allowed).")] = None,
    track: Annotated[Optional[int], typer.Option("--track", help="Only this face track (default: every face on those frames).")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the next artist (e.g. \"blurred\", \"mic over the mouth\").")] = "",
    clear: Annotated[bool, typer.Option("--clear", help="Put the frames back into training (every excluded frame when none are given).")] = False,
) -> None:
    """Leave frames of a faceset out of training. The list (exclude.json in the faceset) survives a re-extract."""
    from vfx.errors import ConfigError
    from vfx.faceset.curate import clear_excludes, exclude_faces
    from vfx.faceset.store import Faceset
    from vfx.shot import FrameRange

    opened = Faceset.open(faceset)
    wanted = None
    if frames:
        wanted = FrameRange(tuple(f for spec in frames for f in FrameRange.parse(spec)))
    if clear:
        change = clear_excludes(opened, wanted, track=track)
    else:
        if wanted is None:
            raise ConfigError("No frames to exclude", expected="one or more frames, e.g. 1001-1010,1020",
                              found="none", fix="name the frames, or use --clear to put excluded frames back")
        change = exclude_faces(opened, wanted, track=track, reason=reason)
    typer.echo(change.describe())
