"""Latent edits: a persona decoder's segmentation head (:mod:`vfx.edit.segment`), edit vectors learned on a
keyframe by latent optimisation (:mod:`vfx.edit.vectors`), and the edit frame stage that applies them to every
swapped frame (:mod:`vfx.edit.pipeline`). A sibling of :mod:`vfx.swap` and :mod:`vfx.retouch`: the CLI verb
(`vfx edit`), the farm stage (`edit`) and this package share one name."""

from vfx.edit.pipeline import (
    EditApplyPlan,
    EditStage,
    EditSummary,
    apply_shot_edits,
    learn_shot_edit,
    open_edit_model,
    plan_edit_apply,
    run_edit_apply,
)
from vfx.edit.segment import JointDecoder, SegHead, train_seg_head
from vfx.edit.vectors import EditSettings, EditVector, apply_edits, learn_edit, load_edit_vector, save_edit_vector

__all__ = ["EditApplyPlan", "EditSettings", "EditStage", "EditSummary", "EditVector", "JointDecoder", "SegHead",
           "apply_edits", "apply_shot_edits", "learn_edit", "learn_shot_edit", "load_edit_vector", "open_edit_model",
           "plan_edit_apply", "run_edit_apply", "save_edit_vector", "train_seg_head"]
