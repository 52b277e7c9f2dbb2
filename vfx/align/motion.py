"""Synthetic head motion: a portrait moved as a head would (a slow drift, a nod, a tilt, a push-in), sub-pixel.

The demo shot (:mod:`vfx.demo`) films its "performances" with it, and evaluation (:mod:`vfx.eval`) uses the
same known motion to measure landmark stability: every frame's true transform is known exactly, so whatever
a landmarker's track does beyond it is jitter or lag.

Convention:
    - Motions are 3x3 matrices portrait -> frame, (x, y) pixel centres, origin top-left; ``t`` in [0, 1]
      runs over the clip.
    - Portraits and frames are (H, W, 3) float32 in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

__all__ = ["head_motion_matrix", "performance_frames", "render_motion"]


def _head_motion(t: float) -> tuple[float, float, float, float]:
    """Smooth head-like motion at time ``t`` in [0, 1]: (dx, dy) in output pixels per 256, degrees, scale."""
    dx = 6.0 * math.sin(2 * math.pi * t) + 1.7 * math.sin(6 * math.pi * t + 0.4)
    dy = 3.0 * math.sin(4 * math.pi * t + 1.1)  # a nod
    angle = 4.0 * math.sin(2 * math.pi * t + 0.7)  # a tilt
    scale = 1.0 + 0.06 * (1 - math.cos(2 * math.pi * t)) / 2  # a slow push-in and back
    return dx, dy, angle, scale


def head_motion_matrix(t: float, portrait_size: tuple[int, int], size: int, *, zoom: float = 1.15) -> np.ndarray:
    """The 3x3 portrait -> frame transform at time ``t`` in [0, 1]: (x, y) pixel centres, origin top-left.

    The portrait fills the frame zoomed in by ``zoom`` (1.15: no border ever shows), then moves as a head would.
    """
    height, width = portrait_size
    dx, dy, angle, scale = _head_motion(t)
    zoom = size / min(height, width) * zoom * scale
    cos, sin = zoom * math.cos(math.radians(angle)), zoom * math.sin(math.radians(angle))
    centre_in = np.array([width / 2, height / 2])
    centre_out = np.array([size / 2, size / 2]) + np.array([dx, dy]) * size / 256
    linear = np.array([[cos, -sin], [sin, cos]])
    matrix = np.eye(3)
    matrix[:2, :2] = linear
    matrix[:2, 2] = centre_out - linear @ centre_in
    return matrix


def render_motion(
    portrait: np.ndarray, matrices: Iterator[np.ndarray] | list[np.ndarray], size: int
) -> Iterator[np.ndarray]:
    """Warp ``portrait`` by each 3x3 portrait -> frame matrix (cubic, sub-pixel exact).

    Convention:
        - portrait: (H, W, 3) float32 in [0, 1]; yields (size, size, 3) float32 in [0, 1]
    """
    from skimage.transform import AffineTransform, warp

    for matrix in matrices:
        frame = warp(portrait, AffineTransform(matrix=matrix).inverse, output_shape=(size, size), order=3, mode="edge")
        yield np.clip(frame, 0.0, 1.0).astype(np.float32)


def performance_frames(portrait: np.ndarray, num_frames: int, size: int) -> Iterator[np.ndarray]:
    """Yield ``num_frames`` frames of ``size``x``size`` with the portrait moving like a head
    (a drift, a nod, a tilt, a push-in; sub-pixel positions).

    Convention:
        - portrait: (H, W, 3) float32 in [0, 1]; yields (size, size, 3) float32 in [0, 1]
    """
    matrices = [head_motion_matrix(i / num_frames, portrait.shape[:2], size) for i in range(num_frames)]
    yield from render_motion(portrait, matrices, size)
