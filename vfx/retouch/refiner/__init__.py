"""The layout-conditioned refiner of a face retouch: it repairs the warped crop inside the hole, trained per shot.

A retouch warps a face crop towards an edited semantic layout (:class:`vfx.face.mask.FaceLabel`, 8 classes); the
warp leaves artefacts and holes. :class:`LayoutRefiner` takes (edited layout, warped image, hole mask) and repaints
the hole; everything outside it is the warped input, bit for bit (Eq. 12 of seed 001:
``y = G(x, c, m) * m + x * (1 - m)``).

The package, by concern:
    - :mod:`.network`: :class:`RefinerConfig`, the generator :class:`LayoutRefiner` (seed 000's multi-resolution
      generator) and the discriminator :class:`MultiScaleDiscriminator` (pix2pixHD, seed 003), plus
      :func:`layout_onehot`, :class:`TrainedRefiner` and :func:`refine` (inference).
    - :mod:`.losses`: hinge adversarial, feature matching (standing in for a VGG loss), KL, masked L1 and 1 - SSIM.
    - :mod:`.training`: :func:`train_refiner`, self-supervised on one shot's :class:`RefinerSample` list.
    - :mod:`.storage`: :func:`save_refiner` / :func:`load_refiner`, a ``vfx.Refiner/1`` folder via
      :mod:`vfx.utils.stamped`.

Convention:
    - Images (B, 3, H, W) float in [0, 1], RGB; holes (B, 1, H, W) in [0, 1], 1 = repaint.
    - Layouts (B, L, H, W) float one-hot for the networks, (H, W) or (B, H, W) integer labels elsewhere
      (:func:`layout_onehot` converts); L = ``config.num_labels`` (8 = ``len(FaceLabel)``).
    - H and W must be multiples of ``config.size_multiple`` = 2**(depth + bottom_up_levels) (32 by default).
    - Sizes are (height, width).
    - Works on the CPU in float32; on CUDA the helpers run channels-last under bf16 autocast.
"""

from vfx.retouch.refiner.losses import (
    feature_matching_loss,
    hinge_d_loss,
    hinge_g_loss,
    kl_divergence,
    masked_l1,
    masked_ssim_loss,
)
from vfx.retouch.refiner.network import (
    DiscriminatorOutput,
    LayoutRefiner,
    MultiScaleDiscriminator,
    RefinerConfig,
    RefinerOutput,
    TrainedRefiner,
    layout_onehot,
    refine,
)
from vfx.retouch.refiner.storage import (
    HISTORY_TAIL,  # noqa: F401 (re-exported outside __all__)
    MANIFEST_FILE,  # noqa: F401 (re-exported outside __all__)
    REFINER_SCHEMA,
    WEIGHTS_FILE,  # noqa: F401 (re-exported outside __all__)
    load_refiner,
    save_refiner,
)
from vfx.retouch.refiner.training import RefinerSample, train_refiner

__all__ = [
    "REFINER_SCHEMA",
    "DiscriminatorOutput",
    "LayoutRefiner",
    "MultiScaleDiscriminator",
    "RefinerConfig",
    "RefinerOutput",
    "RefinerSample",
    "TrainedRefiner",
    "feature_matching_loss",
    "hinge_d_loss",
    "hinge_g_loss",
    "kl_divergence",
    "layout_onehot",
    "load_refiner",
    "masked_l1",
    "masked_ssim_loss",
    "refine",
    "save_refiner",
    "train_refiner",
]
# HISTORY_TAIL, MANIFEST_FILE and WEIGHTS_FILE stay importable from here too, outside __all__ as before.
