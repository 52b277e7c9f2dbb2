"""Semantic retouch: edits on the face layout, sparse-attention layout warping, the per-shot refiner."""

from vfx.retouch.edits import EDIT_GROUPS, edits_from_shot
from vfx.retouch.pipeline import (
           RetouchPlan,
           RetouchSummary,
           plan_retouch,
           retouch_shot,
           run_retouch,
)
from vfx.retouch.warp import LayoutWarp, WarpConfig, layout_warp

__all__ = ["EDIT_GROUPS", "LayoutWarp", "RetouchPlan", "RetouchSummary", "WarpConfig", "edits_from_shot",
           "layout_warp", "plan_retouch", "retouch_shot", "run_retouch"]
