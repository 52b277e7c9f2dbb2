"""The refiner's losses: hinge adversarial, feature matching, KL on z, and L1 and 1 - SSIM inside the hole.

Hinge adversarial loss (as Eq. 14 of seed 001, sign corrected), pix2pixHD's feature-matching loss (Eq. 4), L1 and
1 - SSIM inside the hole, and the KL term of seed 000 (weight 0.01, [0071]).

No pretrained network exists here or can be downloaded, so there is no VGG perceptual loss (seed 000 [0071], seed
001 Eq. 13): the feature-matching loss on the discriminators' own features stands in for it, as pix2pixHD allows
(its full objective is GAN + feature matching; VGG is an optional extra).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from vfx.blend.filters import SSIM_C1, SSIM_C2, SSIM_RADIUS, SSIM_SIGMA, gaussian_window, ssim_statistics
from vfx.errors import ConfigError
from vfx.retouch.refiner.network import DiscriminatorOutput

__all__ = ["feature_matching_loss", "hinge_d_loss", "hinge_g_loss", "kl_divergence", "masked_l1", "masked_ssim_loss"]


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)): ``-1/2 sum_j (1 + logvar - mu**2 - exp(logvar))``, mean over the batch."""
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(1).mean()


def feature_matching_loss(fake: Sequence[DiscriminatorOutput], real: Sequence[DiscriminatorOutput]) -> Tensor:
    """pix2pixHD's feature-matching loss (Eq. 4), with its weights.

    ``sum_k sum_i 1/S * 4/(n+1) * mean|D_k^i(fake) - D_k^i(real)|`` over the S scales and each scale's n + 1
    intermediate layers (the logits excluded); the real features are detached.
    """
    if len(fake) != len(real):
        raise ConfigError("Feature matching needs one output per scale for both images",
                          expected=f"{len(fake)} real outputs", found=str(len(real)),
                          fix="pass the one discriminator's outputs for the fake and for the real image")
    total = torch.zeros((), device=fake[0].logits.device)
    for f, r in zip(fake, real, strict=True):
        weight = 1.0 / len(fake) * 4.0 / len(f.features)
        for a, b in zip(f.features, r.features, strict=True):
            total = total + weight * (a.float() - b.detach().float()).abs().mean()
    return total


def hinge_d_loss(real: Sequence[DiscriminatorOutput], fake: Sequence[DiscriminatorOutput]) -> Tensor:
    """Hinge loss of the discriminator, mean over scales: ``relu(1 - D(real)) + relu(1 + D(fake))``."""
    losses = [F.relu(1 - r.logits.float()).mean() + F.relu(1 + f.logits.float()).mean()
              for r, f in zip(real, fake, strict=True)]
    return torch.stack(losses).mean()


def hinge_g_loss(fake: Sequence[DiscriminatorOutput]) -> Tensor:
    """Hinge loss of the generator, mean over scales: ``-D(fake)``."""
    return torch.stack([-f.logits.float().mean() for f in fake]).mean()


def masked_l1(output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean absolute error weighted by ``mask`` (B, 1, H, W) over the whole batch; 0 for an empty mask."""
    mask = mask.float()
    error = (output.float() - target.float()).abs() * mask
    return error.sum() / (mask.sum() * output.shape[1]).clamp_min(1e-6)


def masked_ssim_loss(output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """``1 - SSIM`` averaged over the pixels inside ``mask`` (weighted by it); 0 for an empty mask.

    The same SSIM as :func:`vfx.comb.losses.ssim` (:mod:`vfx.blend.filters`: 11-tap Gaussian window, sigma 1.5,
    K1 = 0.01, K2 = 0.03, data range 1), but as a per-pixel map with replicated borders, averaged under the mask.
    ``vfx.comb.losses.ssim`` returns one value per image over the window-valid pixels, so the unchanged pixels
    outside a small hole (SSIM 1) would swamp it, and it drops the 5-pixel border where holes can lie.
    """
    x, y, mask = output.float(), target.float(), mask.float()
    window = gaussian_window(SSIM_SIGMA, SSIM_RADIUS, dtype=torch.float32, device=x.device)  # its own rounding
    mu_x, mu_y, var_x, var_y, cov = ssim_statistics(x, y, border="replicate", window=window)
    ssim_map = ((2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)) / (
        (mu_x**2 + mu_y**2 + SSIM_C1) * (var_x + var_y + SSIM_C2))
    return ((1 - ssim_map.mean(1, keepdim=True)) * mask).sum() / mask.sum().clamp_min(1e-6)
