"""`vfx shot validate/show` and `vfx probe`: check and describe shots and media."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from vfx.cli.options import Frames, ShotFile, StartFrame


def shot_validate(
    file: ShotFile,
    schema_only: Annotated[bool, typer.Option("--schema-only", help="Check the YAML only, not the media it names.")] = False,
    frames: Frames = None,
) -> None:
    """Check a shot file: its fields, and (unless --schema-only) that its plate exists and holds its frames."""
    from vfx.io.plate import check_shot_media
    from vfx.shot import FrameRange, load_shot

    wanted = FrameRange.parse(frames) if frames else None
    shot = load_shot(file)
    checked = "" if schema_only else f", frames {check_shot_media(shot, wanted)} present"
    typer.echo(f"{file}: valid {shot.schema_} shot {shot.name!r} (hash {shot.content_hash()}){checked}")


def shot_show(file: ShotFile) -> None:
    """Print the resolved shot as YAML: absolute paths, every default filled in."""
    from vfx.shot import dump_shot, load_shot

    typer.echo(dump_shot(load_shot(file)), nl=False)


def probe(
    media: Annotated[str, typer.Argument(help="A video file, an image, or an image sequence pattern (plate.####.exr).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    start_frame: StartFrame = 1001,
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

