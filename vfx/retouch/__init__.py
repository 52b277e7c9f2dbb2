"""Semantic retouch: edits on the face layout, sparse-attention layout warping, the per-shot refiner, and the
retouch frame stage (:mod:`vfx.retouch.pipeline`). Latent edits with edit vectors are their own sibling
package, :mod:`vfx.edit`."""

from vfx.retouch.edits import EDIT_GROUPS, edits_from_shot
from vfx.retouch.pipeline import (
    RetouchPlan,
    RetouchStage,
    RetouchSummary,
    plan_retouch,
    retouch_shot,
    run_retouch,
)
from vfx.retouch.warp import LayoutWarp, WarpConfig, layout_warp

__all__ = ["EDIT_GROUPS", "LayoutWarp", "RetouchPlan", "RetouchStage", "RetouchSummary", "WarpConfig",
           "edits_from_shot", "layout_warp", "plan_retouch", "retouch_shot", "run_retouch"]
