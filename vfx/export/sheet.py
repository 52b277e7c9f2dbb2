"""Review stills: a contact sheet of rendered frames, one row per frame: plate | swap | matte."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from vfx.export.review import delivered_proxy
from vfx.io.color import DisplayView
from vfx.io.image import write_image
from vfx.io.plate import Plate
from vfx.render.rendered import read_rendered_frame
from vfx.shot.frames import SequencePattern

__all__ = ["write_swap_sheet"]


def write_swap_sheet(plate: Plate, rendered: str | os.PathLike[str], frames: Sequence[int],
                     path: str | os.PathLike[str], *, max_rows: int = 6, row_px: int = 256,
                     view: DisplayView | None = None) -> Path:
    """Write a PNG with, for up to ``max_rows`` frames spread over ``frames``: the plate, the rendered
    frame and its matte side by side, as the dailies show them (the plate's format, desqueezed, through the
    show's display/view; 8-bit).

    Args:
        plate: the shot's plate.
        rendered: the rendered EXR sequence pattern (``out/sh010_swap.####.exr``).
        frames: the frames to choose from.
        path: the PNG to write.
        view: the display/view (default: the config's default display and view for the plate).
    """
    view = view or DisplayView(plate.colorspace)
    frames = list(frames)
    if len(frames) > max_rows:
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, max_rows).round().astype(int)]
    pattern = SequencePattern(str(rendered))
    rows = []
    for frame in frames:
        done = read_rendered_frame(pattern.path(frame))
        before = delivered_proxy(plate.read(frame).rgb(), plate, row_px, view)
        after = delivered_proxy(done.rgb, plate, row_px, view)
        matte = delivered_proxy(np.repeat(done.matte[:, :, None], 3, axis=2), plate, row_px, None)
        tiles = [before, after, matte]
        row = np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=0.12) for t in tiles], axis=1)
        row = np.ascontiguousarray((row * 255 + 0.5).astype(np.uint8))
        cv2.putText(row, str(frame), (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append(row)
    sheet = np.concatenate(rows, axis=0)
    path = Path(path)
    write_image(path, sheet, channels=("R", "G", "B"), dtype="uint8")
    return path
