"""Subcommands. Each parses its options, calls the library and prints the result; nothing more."""

from __future__ import annotations

import json
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
) -> None:
    """Build the demo shot from two public-domain portraits (Grace Hopper, the NASA astronaut) and probe it."""
    from vfx.demo import build_demo
    from vfx.shot import DEFAULT_START_FRAME

    result = build_demo(out, num_frames=frames, size=size, start_frame=start_frame or DEFAULT_START_FRAME)
    typer.echo(result.summary())
