"""Similarity alignment of faces (eyes level, fixed inter-ocular distance), crop and uncrop (filled by the faces issue)."""

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
