"""`vfx demo`: the whole pipeline on a shot made from two public-domain portraits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vfx.cli.common import resolve_device
from vfx.cli.options import Device


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's media, shot file and outputs.")] = Path("vfx_demo"),
    frames: Annotated[int, typer.Option("--frames", min=8, help="Frames per clip.")] = 48,
    size: Annotated[int, typer.Option("--size", min=64, help="Clip height and width in pixels (even).")] = 256,
    start_frame: Annotated[Optional[int], typer.Option("--start-frame", help="First frame number.")] = None,
    iters_per_level: Annotated[int, typer.Option("--iters-per-level", min=1, help="Training iterations per level (a few minutes on a 2-core CPU).")] = 100,
    device: Device = "auto",
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

