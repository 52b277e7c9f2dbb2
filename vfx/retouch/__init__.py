"""Semantic retouch: edits on the face layout, sparse-attention layout warping, the per-shot refiner; and
segmentation-driven latent edits with edit vectors (:mod:`vfx.retouch.latent`)."""

from vfx.retouch.edits import EDIT_GROUPS, edits_from_shot
from vfx.retouch.latent import (
           EditSettings,
           EditVector,
           apply_edits,
           learn_edit,
           load_edit_vector,
           save_edit_vector,
)
from vfx.retouch.latent_pipeline import apply_shot_edits, learn_shot_edit
from vfx.retouch.pipeline import (
           RetouchPlan,
           RetouchSummary,
           plan_retouch,
           retouch_shot,
           run_retouch,
)
from vfx.retouch.segment import JointDecoder, SegHead, train_seg_head
from vfx.retouch.warp import LayoutWarp, WarpConfig, layout_warp

__all__ = ["EDIT_GROUPS", "EditSettings", "EditVector", "JointDecoder", "LayoutWarp", "RetouchPlan", "RetouchSummary",
           "SegHead", "WarpConfig", "apply_edits", "apply_shot_edits", "edits_from_shot", "layout_warp", "learn_edit",
           "learn_shot_edit", "load_edit_vector", "plan_retouch", "retouch_shot", "run_retouch", "save_edit_vector",
           "train_seg_head"]
