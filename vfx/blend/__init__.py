"""Laplacian pyramids, enhanced multi-band blending (Fig. 5 of the comb-network patent), the baselines it is
compared with, and paste-back into the plate, shared by the swap and retouch stages; and the toolkit's Gaussian
kernels, blurs and SSIM (:mod:`vfx.blend.filters`)."""

from vfx.blend.enhanced import (
    EnhancedMultiBandBlend,
    enhanced_blend,
    enhanced_blend_pyramid,
    inward_face_mask,
)
from vfx.blend.methods import BLEND_METHODS, BlendMethod, blend_crops
from vfx.blend.paste import Pasted, crop_matte, empty_paste, paste_back
from vfx.blend.pyramid import laplacian_pyramid, pyramid_levels, reconstruct

__all__ = [
    "BLEND_METHODS",
    "BlendMethod",
    "EnhancedMultiBandBlend",
    "Pasted",
    "blend_crops",
    "crop_matte",
    "empty_paste",
    "enhanced_blend",
    "enhanced_blend_pyramid",
    "inward_face_mask",
    "laplacian_pyramid",
    "paste_back",
    "pyramid_levels",
    "reconstruct",
]
