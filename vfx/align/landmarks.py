"""The 68-point landmark scheme (iBUG 300-W): how many points, which indices form which part of the face.

Every landmarker, aligner, mask and edit in vfx speaks this scheme; it lives here, at the bottom of the
house, so that alignment (:mod:`vfx.align.similarity`) and the face package above it share one table.

Convention:
    - Landmarks are (68, 2) float64 plate pixels, (x, y), in the iBUG 300-W order: 0-16 jaw, 17-21 right
      brow, 22-26 left brow, 27-35 nose, 36-41 right eye, 42-47 left eye, 48-67 mouth. "Right" is the
      subject's right, which is the left side of the image.
"""

from __future__ import annotations

__all__ = ["LANDMARK_GROUPS", "NUM_LANDMARKS", "RIGID_LANDMARKS"]

NUM_LANDMARKS = 68

LANDMARK_GROUPS: dict[str, tuple[int, ...]] = {
    "jaw": tuple(range(0, 17)),
    "right_brow": tuple(range(17, 22)),
    "left_brow": tuple(range(22, 27)),
    "nose": tuple(range(27, 36)),
    "right_eye": tuple(range(36, 42)),
    "left_eye": tuple(range(42, 48)),
    "mouth": tuple(range(48, 68)),
    "outer_lips": tuple(range(48, 60)),
    "inner_lips": tuple(range(60, 68)),
}
"""Index groups of the 68-point scheme; "right" is the subject's right (the left side of the image)."""

RIGID_LANDMARKS: tuple[int, ...] = (0, 1, 2, 3, 13, 14, 15, 16, *range(27, 36), 36, 39, 42, 45)
"""Landmarks that move with the skull rather than with expression: the upper jaw line (ear to cheek, above
the part that drops when the mouth opens), the nose, and the four eye corners (not the lids, which blink).
The rigid (similarity) motion is fitted to these 21 alone so that speech or a blink does not register as a
head move; the wide upper-jaw pairs keep roll and scale precise, which matters because their noise is
multiplied by the distance to the chin."""
