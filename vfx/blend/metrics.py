"""Blend quality metrics: does the pasted face match the plate's skin, is its seam visible, does it flicker?

Three numbers a swap evaluation (``tools/eval_swap.py``) reports per shot, each defined so that a perfect
blend scores the value of the plate itself:

* :func:`skin_colour_difference`: CIEDE2000 between the low-passed skin just inside the matte edge and the
  plate just outside it, compared locally along the edge (0 = no colour step at the seam; ~1 is at the
  threshold of visibility, > 3 is obvious).
* :func:`edge_gradient_jump`: luma gradient on the matte's edge in the output relative to the plate's own
  gradient there (1.0 = the seam adds no edges to the plate's texture).
* :func:`face_region_flicker`: frame-to-frame change inside the face region relative to the plate's
  (1.0 = as stable as the plate).

Convention:
    - images and plates: (H, W, 3) float32 display-referred sRGB in [0, 1] (uint8 is accepted and divided by
      255; other floats are taken as they are).
    - mattes: (H, W) float32 in [0, 1], 1 = face. A matte value below 1/255 (:data:`MATTE_ZERO`) counts as
      outside: the output there differs from the plate by less than one 8-bit code.
    - sizes (height, width); pixel centres at integer coordinates, origin top-left.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import cv2
import numpy as np
from scipy import ndimage

from vfx.blend.filters import gaussian_blur_image
from vfx.errors import ConfigError, InvalidPixelsError, MediaError

__all__ = [
    "MATTE_ZERO",
    "edge_gradient_jump",
    "face_region_flicker",
    "skin_colour_difference",
]

MATTE_ZERO = 1.0 / 255.0
"""Matte values below this count as outside the face (a feathered matte's tails never reach exactly 0)."""

_LUMA_REC709 = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
_EPS = 1e-4
"""Added to both sides of the ratios, so a flat or static plate gives 1.0 instead of 0 / 0
(about 1/40 of an 8-bit code per pixel)."""
_MIN_WEIGHT = 1e-3
"""Least Gaussian weight of band pixels an edge point needs on each side to be compared."""


# --------------------------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------------------------


def _check_image(image: np.ndarray, name: str) -> np.ndarray:
    """``image`` as (H, W, 3) float32, or a MediaError saying what is wrong with it."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise MediaError(
            f"Cannot measure the blend: {name} has the wrong shape",
            expected="(H, W, 3) RGB pixels as a numpy array",
            found=f"shape {getattr(image, 'shape', None)}" if isinstance(image, np.ndarray) else type(image).__name__,
            fix="pass one frame (not a batch), without alpha",
        )
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if not np.issubdtype(image.dtype, np.floating):
        raise MediaError(
            f"Cannot measure the blend: {name} has an unsupported dtype",
            expected="float32 in [0, 1] or uint8",
            found=f"dtype {image.dtype}",
            fix="convert with .astype(np.float32) / 65535 (16-bit) or read it with vfx.io",
        )
    pixels = image.astype(np.float32, copy=False)
    if not np.isfinite(pixels).all():
        raise InvalidPixelsError(f"Cannot measure the blend: {name} has NaN or infinite pixels",
                                 expected="finite pixel values", found="NaN or Inf",
                                 fix=f"render the {name} again, or clean it with np.nan_to_num before measuring")
    return pixels


def _check_matte(matte: np.ndarray, shape: tuple[int, ...], name: str = "matte") -> np.ndarray:
    """``matte`` as (H, W) float32 of the image's size, or a MediaError."""
    if isinstance(matte, np.ndarray) and matte.ndim == 3 and matte.shape[2] == 1:
        matte = matte[..., 0]
    if not isinstance(matte, np.ndarray) or matte.shape != tuple(shape[:2]):
        raise MediaError(
            f"Cannot measure the blend: {name} does not fit the image",
            expected=f"an (H, W) = {tuple(shape[:2])} numpy array",
            found=f"shape {matte.shape}" if isinstance(matte, np.ndarray) else type(matte).__name__,
            fix="pass the single-channel face matte the blend used, at the plate's size",
        )
    out = matte.astype(np.float32) / 255.0 if matte.dtype == np.uint8 else matte.astype(np.float32, copy=False)
    if not np.isfinite(out).all():
        raise InvalidPixelsError(f"Cannot measure the blend: {name} has NaN or infinite values",
                                 expected="finite matte values, 0 to 1", found="NaN or Inf",
                                 fix="pass a matte without NaN or infinite values (np.nan_to_num clears them)")
    return out


def _check_pixels_option(value: float | None, name: str, *, minimum: float) -> float | None:
    if value is None:
        return None
    if not (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            and value >= minimum):
        raise ConfigError(f"Invalid {name}", expected=f"a number of pixels >= {minimum:g}, or None", found=repr(value),
                          fix=f"pass {name} as a number of pixels >= {minimum:g}, or None for the default")
    return float(value)


def _crop_around(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """Row and column slices of ``mask``'s bounding box grown by ``margin`` pixels (clipped to the frame)."""
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    height, width = mask.shape
    return (
        slice(max(0, rows[0] - margin), min(height, rows[-1] + 1 + margin)),
        slice(max(0, cols[0] - margin), min(width, cols[-1] + 1 + margin)),
    )


def _luma(image: np.ndarray) -> np.ndarray:
    """Rec.709 luma Y' of sRGB-encoded pixels (weights on the encoded values, as video luma)."""
    return np.ascontiguousarray(image @ _LUMA_REC709)


def _gradient_magnitude(luma: np.ndarray) -> np.ndarray:
    """|Sobel gradient| of a luma image, in luma units per pixel (the 3x3 kernels divided by 8)."""
    gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    return np.hypot(gx, gy) / 8.0


# --------------------------------------------------------------------------------------------------------------
# Skin colour
# --------------------------------------------------------------------------------------------------------------


def skin_colour_difference(
    image: np.ndarray,
    matte: np.ndarray,
    *,
    band_px: float | None = None,
    blur_sigma_px: float | None = None,
) -> float:
    """Low-frequency colour step (CIEDE2000) between the face just inside the matte edge and the plate just outside.

    The face size is ``s = sqrt(area of matte > 0.5)``. Two bands are compared:

    * inside: pixels with matte > 0.5 within ``band_px`` of the first pixel with matte <= 0.5;
    * outside: pixels with matte < :data:`MATTE_ZERO` within ``band_px`` of the matte (> 0) region, so a
      feathered transition is in neither band.

    The image is converted to CIE Lab (sRGB, D65). For every edge point (a pixel with matte > 0.5 next to
    one with matte <= 0.5) the Gaussian-weighted mean Lab of the inner band and of the outer band around
    it are taken (a normalised convolution: each band is low-passed on its own, so colours never bleed
    across the seam), and their CIEDE2000 computed; the result is the median over the edge points. Local
    means instead of one mean per band, so a face whose surroundings vary (a shadowed side, a collar, hair)
    is not penalised for matching each of them; the median so a short stretch of the edge against hair or
    background does not dominate. Edge points with too little band weight on either side (at the frame
    border) are skipped.

    Args:
        image: the blended frame.
        matte: the face matte the blend used.
        band_px: width of each band; default ``s / 10``.
        blur_sigma_px: sigma of the Gaussian that low-passes each band, and so the size of an edge point's
            neighbourhood; default ``s / 20``. An edge point reaches the outer band only when the matte's
            feather is narrower than about 3 sigma.

    Returns:
        The median CIEDE2000 (0 = no step; about 1 is just noticeable, above 3 clearly visible).

    Raises:
        MediaError: images or mattes of the wrong shape or dtype; a matte with no face (nothing > 0.5), no
            outside (nothing < :data:`MATTE_ZERO`) or no edge point with both bands around it.
        ConfigError: ``band_px`` < 1 or ``blur_sigma_px`` < 0.5.

    Convention:
        image (H, W, 3) float32 sRGB [0, 1]; matte (H, W) float32 [0, 1].
    """
    from skimage.color import deltaE_ciede2000, rgb2lab

    pixels = _check_image(image, "image")
    alpha = _check_matte(matte, pixels.shape)
    band = _check_pixels_option(band_px, "band_px", minimum=1.0)
    sigma = _check_pixels_option(blur_sigma_px, "blur_sigma_px", minimum=0.5)

    inside, outside = alpha > 0.5, alpha < MATTE_ZERO
    area = int(inside.sum())
    if area == 0 or not outside.any():
        raise MediaError(
            "Cannot measure the skin colour at the matte edge",
            expected="a matte with a face (values > 0.5) and an outside (values 0)",
            found=f"{area} face pixels and {int(outside.sum())} outside pixels",
            fix="pass the face matte of a frame where a face was pasted",
        )
    size = math.sqrt(area)
    band = band if band is not None else max(1.0, size / 10.0)
    sigma = sigma if sigma is not None else max(0.5, size / 20.0)

    # Work in the edge's neighbourhood only: a 4K plate is not converted to Lab whole.
    rows, cols = _crop_around(~outside, math.ceil(band + 4 * sigma) + 2)
    inside, outside = inside[rows, cols], outside[rows, cols]
    lab = rgb2lab(np.clip(pixels[rows, cols], 0.0, 1.0)).astype(np.float32)

    depth_in = ndimage.distance_transform_edt(inside)  # 1 on the edge, growing inwards
    depth_out = ndimage.distance_transform_edt(outside)  # 1 next to the matte, growing outwards
    inner = (inside & (depth_in <= band)).astype(np.float32)
    outer = (outside & (depth_out <= band)).astype(np.float32)
    edge = inside & (depth_in <= 1.0)

    def blur(x: np.ndarray) -> np.ndarray:
        # Zero outside the frame: a normalised convolution, frame-border pixels have less weight, not fake ones.
        return gaussian_blur_image(x, sigma, border="zero")

    def local_mean(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        total = blur(weights)[edge]
        sums = np.stack([blur(lab[..., c] * weights)[edge] for c in range(3)], axis=-1)
        return sums / np.maximum(total, 1e-12)[:, None], total

    mean_in, weight_in = local_mean(inner)
    mean_out, weight_out = local_mean(outer)
    usable = (weight_in >= _MIN_WEIGHT) & (weight_out >= _MIN_WEIGHT)
    if not usable.any():
        raise MediaError(
            "Cannot measure the skin colour at the matte edge",
            expected="plate pixels outside the matte near its edge",
            found="no edge point has both a face band and a plate band within reach",
            fix="pass a larger blur_sigma_px (the feather may be wider than the neighbourhood) or check the matte",
        )
    return float(np.median(deltaE_ciede2000(mean_in[usable], mean_out[usable])))


# --------------------------------------------------------------------------------------------------------------
# Seam gradient
# --------------------------------------------------------------------------------------------------------------


def edge_gradient_jump(image: np.ndarray, plate: np.ndarray, matte: np.ndarray, *, band_px: int = 2) -> float:
    """How much the seam adds to the image's edges: mean luma gradient on the matte edge, output over plate.

    The edge region ``E`` is the matte's transition (pixels with :data:`MATTE_ZERO` <= matte <= 1 - MATTE_ZERO)
    plus the boundary of ``matte > 0.5`` (the pixels on either side of it, for a hard matte), dilated by
    ``band_px`` pixels (a (2 band_px + 1)² square). With ``G(x)`` the magnitude of the 3x3 Sobel gradient of
    Rec.709 luma Y' (luma units per pixel)::

        jump = (mean_E G(image) + eps) / (mean_E G(plate) + eps),   eps = 1e-4

    1.0: the edge region is as textured as the plate's own skin there, the seam is invisible; > 1: the paste
    added an edge (a colour or brightness step, a hard cut through texture); < 1: the blend smoothed the
    plate's texture there (a soft, smeary seam). ``eps`` makes a flat plate with a flat output 1.0.

    Args:
        image: the blended frame.
        plate: the original plate frame.
        matte: the face matte the blend used.
        band_px: dilation of the edge region in pixels (>= 0).

    Returns:
        The ratio, >= 0.

    Raises:
        MediaError: images or mattes of the wrong shape or dtype, or a matte without an edge (all 0 or all 1).
        ConfigError: a negative or non-integer ``band_px``.

    Convention:
        image, plate (H, W, 3) float32 sRGB [0, 1] of one size; matte (H, W) float32 [0, 1].
    """
    output = _check_image(image, "image")
    reference = _check_image(plate, "plate")
    if reference.shape != output.shape:
        raise MediaError(
            "Cannot measure the seam: image and plate differ in size",
            expected=f"the plate's shape {reference.shape}",
            found=f"image shape {output.shape}",
            fix="pass the output frame and the plate frame it was rendered over, at one size",
        )
    alpha = _check_matte(matte, output.shape)
    if not (isinstance(band_px, int) and not isinstance(band_px, bool) and band_px >= 0):
        raise ConfigError("Invalid band_px", expected="an integer number of pixels >= 0", found=repr(band_px),
                          fix="pass band_px as a whole number of pixels, e.g. band_px=8")

    region = _edge_region(alpha, band_px)
    if not region.any():
        raise MediaError(
            "Cannot measure the seam: the matte has no edge",
            expected="a matte with both face (> 0.5) and outside (<= 0.5) pixels",
            found=f"matte values from {float(alpha.min()):.3g} to {float(alpha.max()):.3g}",
            fix="pass the face matte the blend used (white face on black), not an empty or solid one",
        )
    rows, cols = _crop_around(region, 2)  # the 3x3 Sobel reads one pixel beyond the region
    region = region[rows, cols]
    g_out = float(_gradient_magnitude(_luma(output[rows, cols]))[region].mean())
    g_ref = float(_gradient_magnitude(_luma(reference[rows, cols]))[region].mean())
    return (g_out + _EPS) / (g_ref + _EPS)


def _edge_region(alpha: np.ndarray, band_px: int) -> np.ndarray:
    """The transition of the matte plus both sides of the ``alpha > 0.5`` boundary, dilated by ``band_px``."""
    transition = (alpha >= MATTE_ZERO) & (alpha <= 1.0 - MATTE_ZERO)
    inside = alpha > 0.5
    cross = np.ones((3, 3), bool)
    boundary = ndimage.binary_dilation(inside, cross) & ~ndimage.binary_erosion(inside, cross, border_value=1)
    region = transition | boundary
    if band_px > 0:
        region = ndimage.binary_dilation(region, np.ones((2 * band_px + 1, 2 * band_px + 1), bool))
    return region


# --------------------------------------------------------------------------------------------------------------
# Flicker
# --------------------------------------------------------------------------------------------------------------


def face_region_flicker(
    frames: Iterable[np.ndarray], plates: Iterable[np.ndarray], mattes: Iterable[np.ndarray]
) -> float:
    """Temporal stability of the face: frame-to-frame change in the face region, output over plate.

    For each pair of consecutive frames ``t - 1, t`` the face region is ``R_t = (matte[t-1] > 0.5) |
    (matte[t] > 0.5)``; the sum over ``R_t`` and the three channels of ``|frame[t] - frame[t-1]|`` is
    accumulated over the shot, and the same for the plate::

        flicker = (sum_t sum_R |dframe| / n + eps) / (sum_t sum_R |dplate| / n + eps),   eps = 1e-4

    with ``n`` the total number of region samples. 1.0: the face changes exactly as much as the plate's
    face does (its real motion); > 1: the swap adds change (jitter, flicker, boiling texture). Pooling over
    the shot, rather than averaging per-frame ratios, keeps almost static frames from dominating.

    Args:
        frames: the output frames, in order (any iterable: frames are read one at a time).
        plates: the plate frames, as many as ``frames``.
        mattes: the face mattes, as many as ``frames``.

    Returns:
        The ratio, >= 0.

    Raises:
        MediaError: fewer than two frames, sequences of different lengths, frames of different shapes, or
            no face pixel in any pair of frames.

    Convention:
        frames, plates (H, W, 3) float32 sRGB [0, 1]; mattes (H, W) float32 [0, 1]; all of one size.
    """
    total_out = total_ref = 0.0
    samples = count = 0
    shape: tuple[int, ...] | None = None
    previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    try:
        for frame, plate, matte in zip(frames, plates, mattes, strict=True):
            output = _check_image(frame, f"frame {count}")
            reference = _check_image(plate, f"plate {count}")
            shape = shape or output.shape
            if output.shape != shape or reference.shape != shape:
                raise MediaError(
                    f"Cannot measure flicker: frame {count} differs in size",
                    expected=f"every frame and plate of the first frame's shape {shape}",
                    found=f"frame {output.shape}, plate {reference.shape}",
                    fix="pass frames and plates of one shot, all at the plate's size",
                )
            face = _check_matte(matte, output.shape, f"matte {count}") > 0.5
            if previous is not None:
                region = face | previous[2]
                n = int(region.sum())
                if n:
                    total_out += float(np.abs(output[region] - previous[0][region]).sum())
                    total_ref += float(np.abs(reference[region] - previous[1][region]).sum())
                    samples += 3 * n
            previous = (output, reference, face)
            count += 1
    except ValueError as exc:
        if "zip()" not in str(exc):  # only zip(strict=True)'s length check is the caller's fault
            raise
        raise MediaError(
            "Cannot measure flicker: frames, plates and mattes differ in number",
            expected="one plate and one matte per output frame",
            found=str(exc),
            fix="pass as many plates and mattes as output frames, in the same order",
        ) from exc
    if count < 2:
        raise MediaError("Cannot measure flicker", expected="at least two frames", found=f"{count} frame(s)",
                         fix="pass two or more consecutive frames (flicker is a change between frames)")
    if samples == 0:
        raise MediaError(
            "Cannot measure flicker: no face in the mattes",
            expected="mattes with face pixels (> 0.5) in at least one pair of consecutive frames",
            found=f"{count} empty mattes",
            fix="pass the face mattes the blend used; mattes with no face pixels give nothing to measure",
        )
    return (total_out / samples + _EPS) / (total_ref / samples + _EPS)
