"""Enhanced multi-band blending (Fig. 5), its baselines and paste-back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vfx.blend import (
    BLEND_METHODS,
    blend_crops,
    crop_matte,
    empty_paste,
    enhanced_blend,
    enhanced_blend_pyramid,
    inward_face_mask,
    laplacian_pyramid,
    paste_back,
    pyramid_levels,
    reconstruct,
)
from vfx.blend.pyramid import downsample_mask
from vfx.errors import ConfigError
from vfx.face.mask import rasterise_polygon
from vfx.io.image import read_image, write_image

R = 64


def _face_cover(size: int = R, batch: int = 1) -> torch.Tensor:
    """Coverage of an egg-shaped face polygon, like the outer-landmark outline in a crop."""
    t = np.linspace(0, 2 * np.pi, 27, endpoint=False)
    polygon = np.stack([size / 2 + 0.3 * size * np.cos(t), size * 0.55 + 0.38 * size * np.sin(t)], axis=1)
    cover = torch.from_numpy(rasterise_polygon(polygon, size))
    return cover[None, None].repeat(batch, 1, 1, 1)


def _images(batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, R, R, generator=g), torch.rand(batch, 3, R, R, generator=g)


def test_pyramid_has_log2_r_levels_and_reconstructs_exactly():
    x = torch.rand(2, 3, R, R, dtype=torch.float64)
    pyramid = laplacian_pyramid(x, pyramid_levels(R))
    assert [p.shape[-1] for p in pyramid] == [64, 32, 16, 8, 4, 2]
    assert torch.allclose(reconstruct(pyramid), x, atol=1e-12)


def test_pyramid_size_must_be_a_power_of_two():
    with pytest.raises(ConfigError, match="power of two"):
        pyramid_levels(48)


def test_blend_of_t_with_itself_is_t():
    _, target = _images()
    out = enhanced_blend(target, target, _face_cover(batch=2))
    assert torch.allclose(out, target, atol=1e-6)


def test_outside_the_polygon_every_level_equals_the_target():
    source, target = _images()
    cover = _face_cover(batch=2)
    levels = pyramid_levels(R)
    out = enhanced_blend_pyramid(source, target, cover, sigma=4.0, target_face_levels=2)
    for band_o, band_t, level_cover in zip(out, laplacian_pyramid(target, levels), downsample_mask(cover, levels)):
        outside = (level_cover == 0).expand_as(band_t)
        assert outside.any() or band_t.shape[-1] <= 4  # the polygon reaches every pixel of the 2x2 and 4x4 levels
        assert torch.equal(band_o[outside], band_t[outside])


def test_inside_the_face_the_fine_levels_come_from_the_source():
    source, target = _images()
    cover = _face_cover(batch=2)
    out = enhanced_blend_pyramid(source, target, cover, sigma=1.0, target_face_levels=2)
    finest_s = laplacian_pyramid(source, pyramid_levels(R))[0]
    deep_inside = inward_face_mask(cover, 1.0) > 1.0 - 1e-6
    assert deep_inside.sum() > 100
    inside = deep_inside.expand_as(finest_s)
    assert torch.allclose(out[0][inside], finest_s[inside], atol=1e-6)


def test_coarse_levels_do_not_move_when_the_source_low_frequencies_change():
    source, target = _images()
    cover = _face_cover(batch=2)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, R), torch.linspace(0, 1, R), indexing="ij")
    relit = source + 0.3 * (xs + ys)[None, None] - 0.2  # a smooth change of lighting on the swapped face
    first = enhanced_blend_pyramid(source, target, cover, target_face_levels=2)
    second = enhanced_blend_pyramid(relit, target, cover, target_face_levels=2)
    target_pyramid = laplacian_pyramid(target, pyramid_levels(R))
    for level in (-1, -2):  # the 2x2 residual and the 4x4 band, as Fig. 5 counts (i <= 2 from the coarsest)
        assert torch.equal(first[level], second[level])
        assert torch.equal(first[level], target_pyramid[level])
    assert not torch.equal(first[0], second[0])  # the finer levels do follow the source


def test_target_face_levels_counts_from_the_coarse_end():
    source, target = _images()
    cover = _face_cover(batch=2)
    out = enhanced_blend_pyramid(source, target, cover, sigma=0.5, target_face_levels=3)
    target_pyramid = laplacian_pyramid(target, pyramid_levels(R))
    assert all(torch.equal(out[level], target_pyramid[level]) for level in (-1, -2, -3))
    assert not torch.equal(out[-4], target_pyramid[-4])


def test_the_background_mask_stays_exactly_one_outside_and_smooths_inward_only():
    cover = _face_cover()
    face = inward_face_mask(cover, 4.0)
    assert torch.all(face[cover == 0] == 0)  # M = 0, so M̂ = 1 - M is exactly 1 outside the polygon
    assert torch.all(face <= cover + 1e-7)  # never spreads outward
    assert face.max() > 1.0 - 1e-6 and ((face > 0) & (face < 0.99)).sum() > 50  # a soft inner transition
    assert torch.equal(inward_face_mask(cover, 0.0), cover)


@pytest.mark.parametrize("method", BLEND_METHODS)
def test_every_method_returns_the_target_for_s_equal_t(method):
    _, target = _images()
    cover = _face_cover(batch=2)
    out = blend_crops(target, target, cover, method=method)
    # OpenCV's MultiBandBlender works in 16-bit fixed point.
    tolerance = {"poisson": 1e-5, "multiband": 4e-3}.get(method, 1e-6)
    assert out.shape == target.shape
    assert (out - target).abs().max() <= tolerance


@pytest.mark.parametrize("method", BLEND_METHODS)
def test_every_method_puts_the_source_face_in(method):
    target = torch.full((1, 3, R, R), 0.4)
    stripes = 0.3 * torch.sign(torch.sin(torch.arange(R) * 1.3))  # detail only the persona's face has
    source = target + stripes.view(1, 1, 1, R)
    cover = _face_cover()
    out = blend_crops(source, target, cover, method=method, sigma=1.0)
    change = (out - target).abs().mean(dim=1)[0]
    assert change[R // 2 - 6:R // 2 + 6, R // 2 - 6:R // 2 + 6].mean() > 0.2, method
    assert change[:4, :4].max() < 0.02, method


def test_unknown_method_is_a_config_error():
    _, target = _images()
    with pytest.raises(ConfigError, match="enhanced"):
        blend_crops(target, target, _face_cover(batch=2), method="laplace")


def test_module_wrapper_matches_function():
    from vfx.blend import EnhancedMultiBandBlend

    source, target = _images()
    cover = _face_cover(batch=2)
    module = EnhancedMultiBandBlend(sigma=3.0, target_face_levels=2)
    assert torch.equal(module(source, target, cover), enhanced_blend(source, target, cover, sigma=3.0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_blend_matches_cpu():
    source, target = _images()
    cover = _face_cover(batch=2)
    cpu = enhanced_blend(source, target, cover)
    gpu = enhanced_blend(source.cuda(), target.cuda(), cover.cuda()).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-5)


# ---------------------------------------------------------------------------------------------- inference kernels

def _reference_blend(source, target, cover, sigma, target_face_levels):
    """The enhanced blend as the reference functions compute it (what the kernels must match bit for bit)."""
    from vfx.blend.enhanced import _face_bands

    return target + reconstruct(_face_bands(source, target, cover, sigma, target_face_levels))


def _same_bits(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> bool:
    a, b = (np.ascontiguousarray(x.numpy() if isinstance(x, torch.Tensor) else x) for x in (a, b))
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _odd_covers(size: int, batch: int) -> list[torch.Tensor]:
    """Coverages that try the kernels' edge cases: a face at the border, single pixels in the corners, -0.0,
    NaN, a subnormal that pooling loses, none at all."""
    face = _face_cover(size, batch)
    shifted = torch.roll(face, shifts=(size // 3, -size // 3), dims=(2, 3))
    corners = torch.zeros(batch, 1, size, size)
    corners[..., 0, 0], corners[..., -1, -1] = 1.0, 0.3
    negative_zero = torch.full((batch, 1, size, size), -0.0)
    negative_zero[..., size // 2, size // 2] = 1.0
    nan = face.clone()
    nan[..., size // 3, size // 4] = float("nan")
    subnormal = torch.zeros(batch, 1, size, size)
    subnormal[0, 0, size // 2, 1] = 1e-42
    return [face, shifted, corners, negative_zero, nan, subnormal, torch.zeros(batch, 1, size, size)]


@pytest.mark.parametrize("size", [2, 4, 16, 64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_blend_kernels_are_bit_identical_to_the_reference(size, dtype, backend):
    from vfx.blend import kernels
    from vfx.blend.filters import gaussian_weights

    g = torch.Generator().manual_seed(size)
    for batch in (1, 2):
        source = torch.randn(batch, 3, size, size, generator=g, dtype=dtype) * 2
        target = torch.rand(batch, 3, size, size, generator=g, dtype=dtype)
        target[..., 0, :] = -0.0
        for cover in _odd_covers(size, batch):
            cover = cover.to(dtype)
            for sigma in (0.0, 0.5, 1.0, 2.5):
                weights = gaussian_weights(sigma) if sigma > 0 else None
                for levels_from_t in range(pyramid_levels(size)):
                    expected = _reference_blend(source, target, cover, sigma, levels_from_t)
                    out = kernels.enhanced_face_change(source, target, cover, weights, levels_from_t, force=backend)
                    assert _same_bits(out, expected), (batch, sigma, levels_from_t)


def test_blend_crops_is_bit_identical_to_the_reference_on_a_face():
    source, target = (torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(i)) for i in (1, 2))
    cover = _face_cover(256)
    for method_sigma in (1.0, 1.5, 4.0):
        out = blend_crops(source, target, cover, sigma=method_sigma)
        assert _same_bits(out, _reference_blend(source, target, cover, method_sigma, 2))
    with torch.inference_mode():  # as the swapper calls it
        assert _same_bits(blend_crops(source, target, cover), _reference_blend(source, target, cover, 1.0, 2))
    # inputs of any layout, and a float64 target
    layouts = [x.contiguous(memory_format=torch.channels_last) for x in (source, target, cover)]
    assert _same_bits(blend_crops(*layouts), _reference_blend(source, target, cover, 1.0, 2))
    assert _same_bits(blend_crops(source, target.double(), cover),
                      _reference_blend(source, target.double(), cover, 1.0, 2))


def test_blend_keeps_gradients_through_the_reference_path():
    source, target = _images()
    source.requires_grad_(True)
    out = enhanced_blend(source, target, _face_cover(batch=2))
    out.sum().backward()
    assert source.grad is not None and source.grad.abs().sum() > 0
    assert _same_bits(out.detach(), enhanced_blend(source.detach(), target, _face_cover(batch=2)))


def test_blend_kernels_give_each_thread_its_own_buffers():
    from concurrent.futures import ThreadPoolExecutor

    pairs = [_images(seed=i) for i in range(8)]
    cover = _face_cover(batch=2)
    expected = [enhanced_blend(s, t, cover) for s, t in pairs]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            outs = list(pool.map(lambda st: enhanced_blend(st[0], st[1], cover), pairs))
            assert all(_same_bits(o, e) for o, e in zip(outs, expected))


@pytest.mark.parametrize("sigma", [0.0, 0.7, 1.5, 4.0])
def test_crop_matte_is_bit_identical_to_inward_face_mask(sigma):
    for size in (16, 64, 256):
        for cover in _odd_covers(size, 1):
            cover = cover[0, 0].numpy()
            expected = inward_face_mask(torch.from_numpy(cover.copy())[None, None], sigma)[0, 0].numpy()
            matte = crop_matte(cover, sigma)
            assert matte.flags.c_contiguous and _same_bits(matte, expected), size
    assert _same_bits(crop_matte(np.ones((32, 32)), 1.5),  # float64 in, float32 out, as before
                      inward_face_mask(torch.ones(1, 1, 32, 32), 1.5)[0, 0])


# ---------------------------------------------------------------------------------------------- paste-back

def _plate_and_crop(size=(90, 120)) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    plate = rng.random((*size, 3)).astype(np.float32)
    crop = rng.random((32, 32, 3)).astype(np.float32)
    cover = _face_cover(32)[0, 0].numpy()
    # the 32² crop covers plate x 40..72, y 20..52 (scale 1, a small rotation)
    angle = np.deg2rad(7.0)
    linear = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    matrix = np.concatenate([linear, (-linear @ np.array([40.3, 20.6]))[:, None]], axis=1)
    return plate, crop, crop_matte(cover), matrix


def test_paste_back_touches_only_the_matte():
    plate, crop, matte, matrix = _plate_and_crop()
    pasted = paste_back(plate, crop, matte, matrix)
    outside = pasted.matte == 0
    assert outside.mean() > 0.8
    assert np.array_equal(pasted.frame[outside], plate[outside])
    assert not np.array_equal(pasted.frame[~outside], plate[~outside])
    y0, x0, y1, x1 = pasted.box
    assert 15 <= y0 and y1 <= 58 and 35 <= x0 and x1 <= 78  # the face's region only
    assert (pasted.matte[y0:y1, x0:x1] > 0).any() and pasted.matte[:y0].max() == 0


def test_a_frame_without_a_face_comes_out_identical_with_an_empty_matte():
    plate, _, _, _ = _plate_and_crop()
    pasted = empty_paste(plate)
    assert np.array_equal(pasted.frame, plate)
    assert pasted.matte.shape == plate.shape[:2] and not pasted.matte.any() and pasted.box is None


@pytest.mark.parametrize(("suffix", "dtype"), [(".png", "uint8"), (".png", "uint16"), (".tif", "uint16"),
                                               (".exr", "half")])
def test_paste_back_is_bit_identical_outside_the_matte_on_files(tmp_path, suffix, dtype):
    plate, crop, matte, matrix = _plate_and_crop()
    source = tmp_path / f"plate{suffix}"
    write_image(source, plate * (3.0 if dtype == "half" else 1.0), channels=("R", "G", "B"), dtype=dtype)
    image = read_image(source)
    to_plate = (lambda px: px * 3.0) if dtype == "half" else None  # a scene-linear plate: values past 1
    pasted = paste_back(image.rgb(), crop, matte, matrix, to_plate=to_plate)
    out = tmp_path / f"out{suffix}"
    write_image(out, pasted.frame, channels=("R", "G", "B"), dtype=dtype)
    import OpenImageIO as oiio

    def codes(path):
        inp = oiio.ImageInput.open(str(path))
        data = inp.read_image(inp.spec().format)  # the stored codes, not normalised floats
        inp.close()
        return np.asarray(data)

    before, after = codes(source), codes(out)
    outside = pasted.matte == 0
    assert before.dtype == after.dtype
    assert np.array_equal(before[outside], after[outside])
    assert not np.array_equal(before[~outside], after[~outside])


def test_paste_back_takes_a_planar_crop_view_and_frames_past_rgb():
    plate, crop, matte, matrix = _plate_and_crop()
    expected = paste_back(plate, crop, matte, matrix)
    planar = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))
    pasted = paste_back(plate, planar.permute(1, 2, 0).numpy(), matte, matrix)  # as the swap hands crops over
    assert _same_bits(pasted.frame, expected.frame) and _same_bits(pasted.matte, expected.matte)
    alpha = np.random.default_rng(4).random((*plate.shape[:2], 1), dtype=np.float32)
    rgba = paste_back(np.concatenate([plate, alpha], axis=2), crop, matte, matrix)
    assert _same_bits(rgba.frame[..., :3], expected.frame) and _same_bits(rgba.frame[..., 3:], alpha)
