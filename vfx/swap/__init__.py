"""The per-frame face swap ([0053]-[0056] of the comb-network patent): crop the tracked face, encode it,
decode it as the chosen persona, blend it (Fig. 5) and paste it back into the plate."""

from vfx.swap.pipeline import SwapPlan, SwapSummary, plan_swap, run_swap, swap_shot
from vfx.swap.swapper import FaceSwapper, SwapModel, open_swap_model

__all__ = ["FaceSwapper", "SwapModel", "SwapPlan", "SwapSummary", "open_swap_model", "plan_swap", "run_swap", "swap_shot"]
