"""Measuring landmarks: accuracy against hand labels, and stability under a known motion.

A landmarker that is accurate on stills can still shimmer on video. The stability measure takes a face
photo, moves it with a known sub-pixel motion, and compares each frame's landmarks with frame 0's mapped
through that motion: whatever differs is jitter (or lag), not the face moving.
"""

from __future__ import annotations

import numpy as np

__all__ = ["known_motion", "map_points", "motion_reference", "stability_error", "normalised_mean_error"]


def known_motion(
    num_frames: int,
    portrait_size: tuple[int, int],
    size: int,
    *,
    zoom: float = 1.15,
    sudden_frame: int | None = None,
    sudden_shift_px: tuple[float, float] = (40.0, 0.0),
    sudden_frames: int = 2,
) -> list[np.ndarray]:
    """3x3 portrait -> frame matrices of a smooth head-like motion, optionally with a sudden move.

    The sudden move adds ``sudden_shift_px`` spread over ``sudden_frames`` frames from ``sudden_frame`` on
    (a whip of the head that a lagging filter would trail behind).
    """
    from vfx.demo import head_motion_matrix

    matrices = []
    for index in range(num_frames):
        matrix = head_motion_matrix(index / num_frames, portrait_size, size, zoom=zoom)
        if sudden_frame is not None and index >= sudden_frame:
            progress = min(1.0, (index - sudden_frame + 1) / sudden_frames)
            matrix[:2, 2] += np.asarray(sudden_shift_px) * progress
        matrices.append(matrix)
    return matrices


def map_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3x3 (or 2x3) affine matrix to (N, 2) points."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def motion_reference(first: np.ndarray, matrices: list[np.ndarray]) -> np.ndarray:
    """Frame 0's landmarks carried to every frame by the known motion: (T, 68, 2)."""
    to_portrait = np.linalg.inv(matrices[0])
    return np.stack([map_points(first, matrix @ to_portrait) for matrix in matrices])


def stability_error(track: np.ndarray, reference: np.ndarray, *, skip_first: bool = True) -> float:
    """Mean distance in pixels between a landmark track (T, 68, 2) and its reference (T, 68, 2).

    Frame 0 is left out by default: there the reference is the track itself.
    """
    distances = np.linalg.norm(track - reference, axis=-1)
    return float(distances[1:].mean() if skip_first else distances.mean())


def normalised_mean_error(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean point error divided by the outer-eye-corner distance (points 36 and 45), the 300-W measure."""
    scale = np.linalg.norm(truth[45] - truth[36])
    return float(np.linalg.norm(predicted - truth, axis=-1).mean() / scale)
