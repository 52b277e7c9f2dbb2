"""vfx.blend.filters: the Gaussian kernels, blurs and SSIM statistics, bit for bit what they replaced."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vfx.blend.filters import (
    SSIM_C1,
    SSIM_C2,
    SSIM_RADIUS,
    gaussian_blur,
    gaussian_blur_image,
    gaussian_radius,
    gaussian_weights,
    gaussian_window,
    ssim_fractions,
    ssim_statistics,
)
from vfx.comb.losses import ms_ssim, ssim
from vfx.errors import ConfigError
from vfx.retouch.refiner import masked_ssim_loss

# The implementations the filters replaced, verbatim: the blend's blur (vfx/blend/enhanced.py), the comb losses'
# SSIM (vfx/comb/losses.py) and the refiner's masked SSIM (vfx/retouch/refiner.py).

def _old_blend_blur(x, sigma):
    def blur_1d(x, weights, dim):
        radius = len(weights) // 2
        padding = [0, 0] * (x.ndim - 1 - dim) + [radius, radius]
        p = F.pad(x, padding)
        n = x.shape[dim]
        out = p.narrow(dim, radius, n) * weights[radius]
        for offset in range(1, radius + 1):
            out = out + (p.narrow(dim, radius - offset, n) + p.narrow(dim, radius + offset, n)) * weights[radius + offset]
        return out

    if sigma <= 0:
        return x
    radius = max(1, math.ceil(3.0 * sigma))
    taps = [math.exp(-0.5 * (t / sigma) ** 2) for t in range(-radius, radius + 1)]
    total = sum(taps)
    weights = [t / total for t in taps]
    return blur_1d(blur_1d(x, weights, 3), weights, 2)


def _old_comb_ssim_parts(x, y):
    coords = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    g = (g / g.sum()).to(device=x.device, dtype=x.dtype)
    window = g.view(1, 1, 1, -1).expand(x.shape[1], 1, 1, 11).contiguous()

    def blur(t):
        t = F.conv2d(t, window, groups=t.shape[1])
        return F.conv2d(t, window.transpose(2, 3), groups=t.shape[1])

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (luminance * cs).flatten(1).mean(1), cs.flatten(1).mean(1)


def _old_masked_ssim_loss(output, target, mask):
    x, y, mask = output.float(), target.float(), mask.float()
    coords = torch.arange(-5, 6, dtype=torch.float32, device=x.device)
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    g = g / g.sum()
    channels = x.shape[1]
    gx = g.view(1, 1, 1, -1).expand(channels, 1, 1, -1).contiguous()
    gy = gx.transpose(2, 3)

    def blur(t):
        t = F.pad(t, (5,) * 4, mode="replicate")
        return F.conv2d(F.conv2d(t, gx, groups=channels), gy, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + 0.01**2) * (2 * cov + 0.03**2)) / (
        (mu_x**2 + mu_y**2 + 0.01**2) * (var_x + var_y + 0.03**2))
    return ((1 - ssim_map.mean(1, keepdim=True)) * mask).sum() / mask.sum().clamp_min(1e-6)


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.detach().numpy().tobytes() == b.detach().numpy().tobytes()


def _pair(shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(*shape, generator=g, dtype=torch.float64)
    y = (0.7 * x + 0.3 * torch.rand(*shape, generator=g, dtype=torch.float64))
    return x.to(dtype), y.to(dtype)


def test_the_blend_kernel_is_normalised_symmetric_and_3_sigma_wide():
    for sigma in (0.2, 0.5, 1.0, 1.5, 4.0):
        weights = gaussian_weights(sigma)
        assert len(weights) == 2 * gaussian_radius(sigma) + 1 == 2 * max(1, math.ceil(3 * sigma)) + 1
        assert weights == weights[::-1] and math.isclose(sum(weights), 1.0, rel_tol=1e-12)
        assert all(isinstance(w, float) for w in weights)


def test_the_ssim_window_is_skimages():
    from scipy.ndimage import gaussian_filter1d

    impulse = np.zeros(11)
    impulse[5] = 1.0
    expected = gaussian_filter1d(impulse, 1.5, truncate=3.5, mode="constant")
    assert SSIM_RADIUS == 5
    np.testing.assert_allclose(gaussian_window().numpy(), expected, rtol=1e-12)
    assert gaussian_window(dtype=torch.float32).dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zero_border_blur_is_the_blends_bit_for_bit_with_gradients(dtype):
    for shape in ((2, 3, 16, 16), (1, 1, 64, 40), (1, 3, 7, 5)):
        x, y = _pair(shape, dtype)
        for sigma in (0.0, 0.3, 1.0, 1.5, 2.2, 4.0):
            assert _same_bits(gaussian_blur(x, sigma), _old_blend_blur(x, sigma))
            if sigma > 0:
                a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
                (gaussian_blur(a, sigma) * y).sum().backward()
                (_old_blend_blur(b, sigma) * y).sum().backward()
                assert _same_bits(a.grad, b.grad)
    assert gaussian_blur(x, 0.0) is x


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_comb_ssim_is_bit_for_bit_what_it_was_with_gradients(dtype):
    from vfx.comb.losses import _ssim_parts

    for shape in ((2, 3, 16, 16), (1, 3, 64, 48), (3, 1, 11, 11)):
        x, y = _pair(shape, dtype, seed=shape[-1])
        a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        new, old = _ssim_parts(a, y), _old_comb_ssim_parts(b, y)
        assert all(_same_bits(n, o) for n, o in zip(new, old))
        (new[0].sum() + new[1].sum()).backward()
        (old[0].sum() + old[1].sum()).backward()
        assert _same_bits(a.grad, b.grad)


def test_the_refiner_ssim_is_bit_for_bit_what_it_was_with_gradients():
    for shape in ((2, 3, 16, 16), (1, 3, 40, 24)):
        x, y = _pair(shape, seed=3)
        mask = (torch.rand(shape[0], 1, *shape[2:], generator=torch.Generator().manual_seed(4)) > 0.5).float()
        a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        new, old = masked_ssim_loss(a, y, mask), _old_masked_ssim_loss(b, y, mask)
        assert _same_bits(new, old)
        new.backward()
        old.backward()
        assert _same_bits(a.grad, b.grad)


def test_ssim_statistics_borders_and_fractions():
    x, y = _pair((2, 3, 20, 24))
    valid = ssim_statistics(x, y, border="valid")
    same = ssim_statistics(x, y, border="replicate")
    assert valid.mu_x.shape == (2, 3, 10, 14) and same.mu_x.shape == (2, 3, 20, 24)
    assert torch.allclose(same.mu_x[..., 5:-5, 5:-5], valid.mu_x, atol=1e-6)  # away from the border they agree
    luminance, cs = ssim_fractions(ssim_statistics(x, x))
    assert torch.allclose(luminance, torch.ones_like(luminance)) and torch.allclose(cs, torch.ones_like(cs))
    assert (SSIM_C1, SSIM_C2) == (0.01**2, 0.03**2)
    assert float(ssim(x, x).min()) == pytest.approx(1.0) and float(ms_ssim(x, y).max()) < 1.0


def test_unknown_border_is_a_config_error():
    with pytest.raises(ConfigError, match="border"):
        gaussian_blur(torch.zeros(1, 1, 12, 12), 1.5, border="reflect")


def test_host_blur_is_opencvs():
    import cv2

    image = np.random.default_rng(0).random((30, 40, 3), dtype=np.float32)
    for border, mode in (("zero", cv2.BORDER_CONSTANT), ("reflect", cv2.BORDER_REFLECT_101)):
        expected = cv2.GaussianBlur(image, (0, 0), 2.5, borderType=mode)
        assert np.array_equal(gaussian_blur_image(image, 2.5, border=border), expected)
    strided = image[:, ::2, 0]  # made contiguous for OpenCV
    assert np.array_equal(gaussian_blur_image(strided, 1.0, border="reflect"),
                          cv2.GaussianBlur(np.ascontiguousarray(strided), (0, 0), 1.0))
    with pytest.raises(ConfigError, match="border"):
        gaussian_blur_image(image, 1.0, border="replicate")
