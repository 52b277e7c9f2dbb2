"""The 68-point landmark scheme (:mod:`vfx.align.landmarks`), similarity alignment of faces (eyes level, fixed
inter-ocular distance), crop and uncrop (:mod:`vfx.align.similarity`), and synthetic head motion
(:mod:`vfx.align.motion`).

Floor 2: imports nothing of vfx but :mod:`vfx.errors`.
"""

from vfx.align.similarity import (
    AlignTemplate,
    Border,
    Interpolation,
    PlatePatch,
    affine_scale,
    compose,
    estimate_alignment,
    eye_centres,
    invert_affine,
    parse_size,
    plate_roi,
    transform_points,
    warp_to_crop,
    warp_to_crop_torch,
    warp_to_plate,
)

__all__ = [
    "AlignTemplate",
    "Border",
    "Interpolation",
    "PlatePatch",
    "affine_scale",
    "compose",
    "estimate_alignment",
    "eye_centres",
    "invert_affine",
    "parse_size",
    "plate_roi",
    "transform_points",
    "warp_to_crop",
    "warp_to_crop_torch",
    "warp_to_plate",
]
