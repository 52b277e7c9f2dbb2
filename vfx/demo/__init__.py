"""The demo shot and its synthetic media: two public-domain portraits that "perform" (see :mod:`vfx.demo.build`).

Floor 8, beside :mod:`vfx.cli`: it drives every stage below it. The synthetic head motion itself lives in
:mod:`vfx.align.motion` (evaluation uses it too) and is re-exported here.
"""

from vfx.demo.build import (
    DEMO_FPS,
    DEMO_ITERS_PER_LEVEL,
    DEMO_MODEL_RESOLUTION,
    DEMO_MODEL_WIDTH,
    PLATE_COLORSPACE,
    PORTRAITS,
    WORKING_COLORSPACE,
    DemoResult,
    build_demo,
    extract_demo_facesets,
    head_motion_matrix,
    load_portrait,
    performance_frames,
    render_motion,
    swap_demo,
    train_demo_model,
)

__all__ = [
    "DEMO_FPS",
    "DEMO_ITERS_PER_LEVEL",
    "DEMO_MODEL_RESOLUTION",
    "DEMO_MODEL_WIDTH",
    "PLATE_COLORSPACE",
    "PORTRAITS",
    "WORKING_COLORSPACE",
    "DemoResult",
    "build_demo",
    "extract_demo_facesets",
    "head_motion_matrix",
    "load_portrait",
    "performance_frames",
    "render_motion",
    "swap_demo",
    "train_demo_model",
]
