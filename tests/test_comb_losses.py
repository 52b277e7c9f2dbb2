"""SSIM and MS-SSIM against scikit-image and an independent reference; the masked level loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity

from vfx.comb.losses import MS_SSIM_WEIGHTS, level_loss, masked_loss, ms_ssim, ms_ssim_scales, ssim
from vfx.errors import ConfigError


def _pair(size: int, seed: int = 0, channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = gaussian_filter(rng.random((channels, size, size)), (0, 1.5, 1.5))
    x = (x - x.min()) / (x.max() - x.min())
    y = np.clip(x + rng.normal(0, 0.08, x.shape) + 0.05 * np.sin(np.arange(size) / 3.0), 0, 1)
    return x, y


def _skimage_ssim(x: np.ndarray, y: np.ndarray) -> float:
    return structural_similarity(x, y, channel_axis=0, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)


@pytest.mark.parametrize("size", [11, 16, 37, 64, 128])
def test_ssim_matches_skimage(size):
    x, y = _pair(size, seed=size)
    ours = ssim(torch.from_numpy(x)[None].float(), torch.from_numpy(y)[None].float())
    assert abs(float(ours[0]) - _skimage_ssim(x, y)) < 1e-3


def test_ssim_is_per_image_and_one_for_equal_images():
    x, y = _pair(32)
    a, b = torch.from_numpy(x).float(), torch.from_numpy(y).float()
    batch = ssim(torch.stack([a, a]), torch.stack([a, b]))
    assert batch.shape == (2,) and float(batch[0]) == pytest.approx(1.0, abs=1e-6) and float(batch[1]) < 0.99


def _reference_ms_ssim(x: np.ndarray, y: np.ndarray, scales: int) -> float:
    """MS-SSIM from scratch in numpy (Wang et al. 2003), for the comparison."""
    c1, c2 = 0.01**2, 0.03**2
    weights = np.array(MS_SSIM_WEIGHTS[:scales]) / np.sum(MS_SSIM_WEIGHTS[:scales])
    value = 1.0
    for scale in range(scales):
        blur = lambda a: gaussian_filter(a, (0, 1.5, 1.5), truncate=3.5)[:, 5:-5, 5:-5]  # noqa: E731
        mx, my = blur(x), blur(y)
        vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        cs = (2 * cov + c2) / (vx + vy + c2)
        term = cs if scale < scales - 1 else cs * (2 * mx * my + c1) / (mx**2 + my**2 + c1)
        value *= max(term.mean(), 0.0) ** weights[scale]
        h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
        x = x[:, :h, :w].reshape(x.shape[0], h // 2, 2, w // 2, 2).mean(axis=(2, 4))
        y = y[:, :h, :w].reshape(y.shape[0], h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    return value


@pytest.mark.parametrize(("size", "scales"), [(32, 2), (64, 3), (128, 4), (256, 5)])
def test_ms_ssim_uses_the_scales_the_size_allows_and_matches_a_reference(size, scales):
    assert ms_ssim_scales(size) == scales
    x, y = _pair(size, seed=3)
    ours = float(ms_ssim(torch.from_numpy(x)[None], torch.from_numpy(y)[None])[0])
    assert abs(ours - _reference_ms_ssim(x, y, scales)) < 1e-6


def test_one_scale_ms_ssim_is_ssim():
    x, y = (torch.from_numpy(a)[None].float() for a in _pair(24))
    assert torch.allclose(ms_ssim(x, y, scales=1), ssim(x, y))
    with pytest.raises(ConfigError, match="scale count"):
        ms_ssim(x, y, scales=3)
    with pytest.raises(ConfigError, match="too small"):
        ssim(x[..., :8, :8], y[..., :8, :8])


def test_eq1_ignores_the_background_of_the_target_eq2_of_both():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 32, 32)
    output = 0.7 * target + 0.3 * torch.rand(2, 3, 32, 32)  # a fair reconstruction: MS-SSIM well above 0
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1.0
    changed_target = target.clone()
    changed_target[..., :4, :] = torch.rand(2, 3, 4, 32)  # background only
    changed_output = output.clone()
    changed_output[..., :4, :] = 0.0
    for mode in ("target", "both"):
        base = masked_loss(target, output, mask, mode=mode)
        assert torch.allclose(base, masked_loss(changed_target, output, mask, mode=mode))
    # Eq. 2 also ignores the reconstruction's background; Eq. 1 asks it to be black there.
    assert torch.allclose(masked_loss(target, output, mask, mode="both"),
                          masked_loss(target, changed_output, mask, mode="both"))
    assert not torch.allclose(masked_loss(target, output, mask, mode="target"),
                              masked_loss(target, changed_output, mask, mode="target"))


def test_level_loss_upsamples_small_levels_to_16_and_is_zero_for_a_perfect_output():
    for level, size in ((0, 4), (1, 8), (2, 16), (3, 32)):
        x = torch.rand(2, 3, size, size)
        assert float(level_loss(x, x, None, level)) == pytest.approx(0.0, abs=1e-5)
        assert float(level_loss(x, torch.rand_like(x), torch.ones(2, 1, size, size), level)) > 0.1
