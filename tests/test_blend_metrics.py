"""Blend quality metrics on synthetic skin: colour step at the matte edge, seam gradient and face flicker."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vfx.blend.metrics import (
    edge_gradient_jump,
    face_region_flicker,
    skin_colour_difference,
)
from vfx.errors import ConfigError, MediaError

SIZE = 192
SKIN = (0.78, 0.58, 0.48)
YY, XX = np.mgrid[:SIZE, :SIZE]


def _skin(seed: int, base: tuple[float, float, float] = SKIN) -> np.ndarray:
    """Skin-coloured (SIZE, SIZE, 3) float32 with fine pore-like noise."""
    noise = np.random.default_rng(seed).normal(0.0, 0.03, (SIZE, SIZE, 3)).astype(np.float32)
    return np.clip(np.float32(base) + cv2.GaussianBlur(noise, (0, 0), 1.5), 0.0, 1.0)


def _disc(radius: float = 50.0, feather_px: float = 0.0, centre: tuple[float, float] = (96.0, 96.0)) -> np.ndarray:
    """A (SIZE, SIZE) float32 face matte: a disc, hard or with a linear feather of ``feather_px``."""
    signed = np.hypot(XX - centre[0], YY - centre[1]) - radius
    if feather_px == 0:
        return (signed <= 0).astype(np.float32)
    return np.clip(0.5 - signed / feather_px, 0.0, 1.0).astype(np.float32)


def _paste(face: np.ndarray, plate: np.ndarray, matte: np.ndarray) -> np.ndarray:
    return (face * matte[..., None] + plate * (1.0 - matte[..., None])).astype(np.float32)


# ------------------------------------------------------------------------------------------------ skin colour


@pytest.mark.parametrize("feather_px", [0.0, 8.0])
def test_colour_offset_shows_as_a_larger_skin_difference(feather_px: float) -> None:
    plate, face, matte = _skin(1), _skin(2), _disc(feather_px=feather_px)
    matched = skin_colour_difference(_paste(face, plate, matte), matte)
    offset = skin_colour_difference(_paste(np.clip(face + [0.08, -0.03, -0.03], 0, 1), plate, matte), matte)
    assert matched < 1.0  # below the just-noticeable difference
    assert offset > 4.0
    assert offset > 5 * matched


def test_identical_skin_gives_zero_difference() -> None:
    flat = np.full((SIZE, SIZE, 3), SKIN, np.float32)
    assert skin_colour_difference(flat, _disc()) == pytest.approx(0.0, abs=1e-3)
    assert skin_colour_difference(_skin(1), _disc()) < 0.75  # only the texture's residual after the low-pass
    assert skin_colour_difference((_skin(1) * 255).round().astype(np.uint8), _disc()) < 0.75


def test_skin_difference_is_local_along_the_edge() -> None:
    """Dark hair above the face and a side light do not count against a face that matches its skin."""
    matte = _disc()
    ramp = (XX / SIZE).astype(np.float32)[..., None]
    plate = _skin(1, (0.55, 0.4, 0.33)) * (1 - ramp) + _skin(3, (0.85, 0.65, 0.55)) * ramp
    plate[YY < 45] = (0.1, 0.07, 0.05)  # hair covering the top of the outer band
    assert skin_colour_difference(plate, matte) < 1.5
    # A face of the right mean colour but flat misses both sides of the light: local means see it.
    flat = np.broadcast_to(plate[matte > 0.5].mean(axis=0), plate.shape)
    assert skin_colour_difference(_paste(flat, plate, matte), matte) > 4.0


def test_skin_difference_options_and_errors() -> None:
    plate, matte = _skin(1), _disc()
    offset = _paste(np.clip(plate + 0.06, 0, 1), plate, matte)
    assert skin_colour_difference(offset, matte, band_px=4, blur_sigma_px=3) > 3.0
    with pytest.raises(MediaError, match="matte"):
        skin_colour_difference(plate, np.zeros((SIZE, SIZE), np.float32))
    with pytest.raises(MediaError):
        skin_colour_difference(plate, np.ones((SIZE, SIZE), np.float32))
    with pytest.raises(MediaError, match="does not fit"):
        skin_colour_difference(plate, matte[:-1])
    with pytest.raises(MediaError, match="shape"):
        skin_colour_difference(plate[..., 0], matte)
    with pytest.raises(ConfigError):
        skin_colour_difference(plate, matte, band_px=0)


# ------------------------------------------------------------------------------------------------ seam gradient


def test_hard_paste_of_a_mismatched_patch_jumps() -> None:
    plate, matte = _skin(1), _disc()
    patch = _skin(2, (0.62, 0.45, 0.38))
    assert edge_gradient_jump(_paste(patch, plate, matte), plate, matte) > 1.5
    assert edge_gradient_jump(plate, plate, matte) == pytest.approx(1.0)
    assert edge_gradient_jump(plate, plate, _disc(feather_px=10.0), band_px=0) == pytest.approx(1.0)


def test_seam_of_a_flat_plate_is_one_when_invisible() -> None:
    flat = np.full((SIZE, SIZE, 3), SKIN, np.float32)
    matte = _disc(feather_px=6.0)
    assert edge_gradient_jump(flat, flat, matte) == pytest.approx(1.0)
    stepped = _paste(np.full_like(flat, 0.3), flat, _disc())
    assert edge_gradient_jump(stepped, flat, _disc()) > 100.0


def test_gradient_jump_errors() -> None:
    plate, matte = _skin(1), _disc()
    with pytest.raises(MediaError, match="no edge"):
        edge_gradient_jump(plate, plate, np.zeros((SIZE, SIZE), np.float32))
    with pytest.raises(MediaError, match="differ in size"):
        edge_gradient_jump(plate[:-1], plate, matte)
    with pytest.raises(ConfigError):
        edge_gradient_jump(plate, plate, matte, band_px=-1)


# ------------------------------------------------------------------------------------------------ flicker


def _moving_plate(num_frames: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A plate drifting one pixel a frame, and its face matte following."""
    base = _skin(1)
    plates = [np.roll(base, t, axis=1) for t in range(num_frames)]
    mattes = [_disc(centre=(80.0 + t, 96.0)) for t in range(num_frames)]
    return plates, mattes


def test_output_equal_to_plate_has_flicker_one() -> None:
    plates, mattes = _moving_plate(6)
    assert face_region_flicker(plates, plates, mattes) == pytest.approx(1.0)
    still = [_skin(1)] * 4  # a static plate and a static output: 0 / 0 is 1 too
    assert face_region_flicker(still, still, [_disc()] * 4) == pytest.approx(1.0)


def test_jittering_face_flickers() -> None:
    plates, mattes = _moving_plate(8)
    face = _skin(2)
    rng = np.random.default_rng(0)
    frames = []
    for t, (plate, matte) in enumerate(zip(plates, mattes, strict=True)):
        dx, dy = rng.integers(-2, 3, size=2)
        frames.append(_paste(np.roll(face, (int(dy), t + int(dx)), axis=(0, 1)), plate, matte))
    pairs = enumerate(zip(plates, mattes, strict=True))
    steady = [_paste(np.roll(face, t, axis=1), plate, matte) for t, (plate, matte) in pairs]
    jitter, stable = face_region_flicker(frames, plates, mattes), face_region_flicker(steady, plates, mattes)
    assert jitter > 1.3
    assert stable == pytest.approx(1.0, abs=0.1)  # the face moves with the plate
    # Generators work as well as lists (frames are read one at a time).
    assert face_region_flicker(iter(frames), iter(plates), iter(mattes)) == pytest.approx(jitter)


def test_flicker_errors() -> None:
    plates, mattes = _moving_plate(3)
    with pytest.raises(MediaError, match="at least two"):
        face_region_flicker(plates[:1], plates[:1], mattes[:1])
    with pytest.raises(MediaError, match="differ in number"):
        face_region_flicker(plates, plates[:2], mattes)
    with pytest.raises(MediaError, match="no face"):
        face_region_flicker(plates, plates, [np.zeros((SIZE, SIZE), np.float32)] * 3)
    with pytest.raises(MediaError, match="differs in size"):
        face_region_flicker([plates[0], plates[1][:-1]], plates[:2], mattes[:2])
