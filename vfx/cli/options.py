"""Options that several commands take, each spelled once: one flag, one type, one help text.

A command takes one as ``device: Device = "auto"``; the default stays at the command, so each keeps its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["Chunk", "Deterministic", "Device", "Frames", "Persona", "ShotFile", "StartFrame", "Workers"]

Device = Annotated[str, typer.Option(
    "--device", help="Where the networks run: auto (the GPU when there is one), cpu, cuda or cuda:N (the Nth GPU).")]
"""``--device``: resolved by :func:`vfx.cli.common.resolve_device`."""

Frames = Annotated[Optional[str], typer.Option(
    "--frames", help="Frames to work on, e.g. 1001-1020 or 1001-1020x2 (default: the shot's frame range, or the "
                     "whole clip).")]
"""``--frames``: a frame range for :meth:`vfx.shot.FrameRange.parse`, or None for the command's default."""

Workers = Annotated[int, typer.Option(
    "--workers", help="Processes that find and track the faces in the plate (0: one per CPU core).")]
"""``--workers`` of the commands that track a plate's faces (not ``farm run``'s, which counts tasks)."""

Persona = Annotated[Optional[str], typer.Option(
    "--persona", help="Which persona's face to use: its decoder in the shot's model (default: the shot's swap.persona).")]
"""``--persona`` of the commands that decode a face through one persona's decoder."""

StartFrame = Annotated[int, typer.Option(
    "--start-frame", help="Frame number given to a video's first frame.")]
"""``--start-frame`` for media without frame numbers of their own."""

Chunk = Annotated[Optional[int], typer.Option(
    "--chunk", min=1, help="Frames per farm task (default: the shot's farm.chunk_size); keep the size the shot was "
                           "run with.")]
"""``--chunk`` of the farm commands."""

Deterministic = Annotated[bool, typer.Option(
    "--deterministic", help="Deterministic algorithms: the same pixels however the shot is cut into tasks.")]
"""``--deterministic`` of the farm commands."""

ShotFile = Annotated[Path, typer.Argument(help="Shot file (YAML).")]
"""The shot file argument of the commands that need nothing more said about it."""
