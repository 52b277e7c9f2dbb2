"""Review stills: a contact sheet of rendered frames, one row per frame: plate | swap | matte."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from vfx.io.color import to_working
from vfx.io.image import write_image
from vfx.io.plate import Plate
from vfx.render.rendered import read_rendered_frame
from vfx.shot.frames import SequencePattern

__all__ = ["write_swap_sheet"]


def _display(rgb: np.ndarray, colorspace: str, height: int) -> np.ndarray:
    shown = np.clip(to_working(rgb, colorspace), 0.0, 1.0)
    width = max(1, round(rgb.shape[1] * height / rgb.shape[0]))
    return cv2.resize(shown, (width, height), interpolation=cv2.INTER_AREA)


def write_swap_sheet(plate: Plate, rendered: str | os.PathLike[str], frames: Sequence[int],
                     path: str | os.PathLike[str], *, max_rows: int = 6, row_px: int = 256) -> Path:
    """Write a PNG with, for up to ``max_rows`` frames spread over ``frames``: the plate, the rendered
    frame and its matte side by side, the face's box outlined on the swap (display sRGB, 8-bit).

    Args:
        plate: the shot's plate.
        rendered: the rendered EXR sequence pattern (``out/sh010_swap.####.exr``).
        frames: the frames to choose from.
        path: the PNG to write.
    """
    frames = list(frames)
    if len(frames) > max_rows:
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, max_rows).round().astype(int)]
    pattern = SequencePattern(str(rendered))
    rows = []
    for frame in frames:
        done = read_rendered_frame(pattern.path(frame))
        before = _display(plate.read(frame).rgb(), plate.colorspace, row_px)
        after = _display(done.rgb, plate.colorspace, row_px)
        matte = cv2.resize(done.matte, (after.shape[1], row_px), interpolation=cv2.INTER_AREA)
        tiles = [before, after, np.repeat(matte[:, :, None], 3, axis=2)]
        row = np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=0.12) for t in tiles], axis=1)
        row = np.ascontiguousarray((row * 255 + 0.5).astype(np.uint8))
        cv2.putText(row, str(frame), (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append(row)
    sheet = np.concatenate(rows, axis=0)
    path = Path(path)
    write_image(path, sheet, channels=("R", "G", "B"), dtype="uint8")
    return path
