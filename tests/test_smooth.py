"""Landmark temporal filtering on synthetic faces: a fixed 68-point shape moved by a known motion plus jitter."""

import numpy as np
import pytest

from vfx.errors import ConfigError
from vfx.eval.stability import jitter_residual, measure_lag
from vfx.face.smooth import (
    OneEuroFilter,
    smooth_landmarks,
    smooth_landmarks_streaming,
    valid_runs,
)

FRAMES = np.arange(1001, 1097)  # a 96-frame shot
SIGMA = 0.5  # landmark jitter, px, on a face about 260 px wide


def face_shape(width: float = 260.0) -> np.ndarray:
    """A plausible (68, 2) iBUG-ordered face centred on the origin, ``width`` pixels from ear to ear."""
    s = width / 2
    a = np.linspace(np.pi, 0, 17)  # jaw: subject's right ear (image left), chin, left ear
    jaw = np.stack([s * np.cos(a), s * (1.15 * np.sin(a) - 0.15)], 1)
    right_brow = np.stack([np.linspace(-0.8, -0.2, 5) * s, -s * (0.55 + 0.08 * np.sin(np.linspace(0, np.pi, 5)))], 1)
    left_brow = right_brow[::-1] * [-1, 1]
    bridge = np.stack([np.zeros(4), np.linspace(-0.4, -0.05, 4) * s], 1)
    base = np.stack([np.linspace(-0.18, 0.18, 5) * s, s * (0.05 + 0.03 * np.cos(np.linspace(-1.2, 1.2, 5)))], 1)

    def eye(cx: float) -> np.ndarray:  # outer/inner corner first, then upper lid, far corner, lower lid
        t = np.pi - np.arange(6) * np.pi / 3
        return np.stack([cx + 0.15 * s * np.cos(t), -s * (0.3 + 0.06 * np.sin(t))], 1)

    def lips(rx: float, ry: float, n: int) -> np.ndarray:  # left corner, upper lip, right corner, lower lip
        t = np.pi - np.arange(n) * 2 * np.pi / n
        return np.stack([rx * s * np.cos(t), s * (0.45 - ry * np.sin(t))], 1)

    shape = np.concatenate([jaw, right_brow, left_brow, bridge, base, eye(-0.4 * s), eye(0.4 * s),
                            lips(0.38, 0.12, 12), lips(0.26, 0.05, 8)])
    assert shape.shape == (68, 2)
    return shape


def move(shape: np.ndarray, tx, ty, scale=1.0, roll=0.0) -> np.ndarray:
    """(T, 68, 2): ``shape`` (68, 2) or (T, 68, 2) scaled, rolled (radians) and moved to (tx, ty) per frame."""
    tx = np.asarray(tx, float)
    n = len(tx)
    scale, roll, ty = (np.broadcast_to(np.asarray(v, float), (n,)) for v in (scale, roll, ty))
    c, s = np.cos(roll) * scale, np.sin(roll) * scale
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    shapes = np.broadcast_to(shape, (n, 68, 2))
    return np.einsum("tij,tnj->tni", rot, shapes) + np.stack([tx, ty], -1)[:, None, :]


def smooth_truth() -> np.ndarray:
    """A head swaying on a 96-frame shot: translation, scale and roll, all smooth."""
    t = FRAMES - FRAMES[0]
    return move(face_shape(), 960 + 60 * np.sin(2 * np.pi * t / 80), 540 + 20 * np.sin(2 * np.pi * t / 50 + 1),
                1 + 0.05 * np.sin(2 * np.pi * t / 70), 0.08 * np.sin(2 * np.pi * t / 90))


def sudden_truth(kind: str) -> np.ndarray:
    """A still head that moves 40 px right at frame 1048: in one frame (step) or over three (fast)."""
    t = FRAMES - 1048
    offset = np.where(t >= 0, 40.0, 0.0) if kind == "step" else np.clip((t + 1) / 3, 0, 1) * 40.0
    return move(face_shape(), 960 + offset, 540.0)


def jitter(truth: np.ndarray, seed: int = 0) -> np.ndarray:
    return truth + np.random.default_rng(seed).normal(0, SIGMA, truth.shape)


def mean_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean landmark distance, px."""
    return float(np.linalg.norm(a - b, axis=-1).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_smoother_cuts_error_to_a_third_of_raw(seed):
    truth = smooth_truth()
    raw = jitter(truth, seed)
    smoothed = smooth_landmarks(raw)
    assert mean_error(smoothed, truth) <= 0.3 * mean_error(raw, truth)
    assert abs(measure_lag(truth, smoothed)) < 0.1


def test_rigid_and_expression_split_beats_per_coordinate():
    truth = smooth_truth()
    raw = jitter(truth)
    split = mean_error(smooth_landmarks(raw), truth)
    joint = mean_error(smooth_landmarks(raw, decompose=False), truth)
    assert split < 0.7 * joint


@pytest.mark.parametrize("kind", ["step", "fast"])
def test_sudden_move_has_no_lag_and_no_smear(kind):
    truth = sudden_truth(kind)
    raw = jitter(truth, seed=3)
    smoothed = smooth_landmarks(raw)
    assert abs(measure_lag(truth, smoothed)) < 0.5
    assert abs(measure_lag(raw, smoothed)) < 0.5
    # Right at and after the move the error stays at the noise level: a smear over a 7-frame window
    # would put several pixels of error on these frames.
    around = slice(1048 - 1001 - 2, 1048 - 1001 + 8)
    per_frame = np.linalg.norm(smoothed - truth, axis=-1).mean(axis=1)
    raw_level = mean_error(raw, truth)
    assert per_frame[around].max() < raw_level
    # No overshoot: along the move (x), the smoothed face never goes past the true path by more than the noise.
    beyond = (smoothed[..., 0] - truth[..., 0]).mean(axis=1)
    assert np.abs(beyond).max() < 0.5


def test_fast_blink_is_followed():
    """Expression is smoothed over a long window, but a two-frame blink must not be flattened."""
    shape = face_shape()
    shapes = np.repeat(shape[None], len(FRAMES), axis=0)
    closing = np.zeros(len(FRAMES))
    closing[40:46] = [0.5, 1, 1, 1, 0.5, 0]
    for upper, lower in [((37, 38), (41, 40)), ((43, 44), (47, 46))]:
        for u, lo in zip(upper, lower):
            shapes[:, u, 1] += closing * (shape[lo, 1] - shape[u, 1])  # upper lid down onto the lower
    truth = move(shapes, np.full(len(FRAMES), 960.0), 540.0)
    raw = jitter(truth, seed=4)
    smoothed = smooth_landmarks(raw)
    lids = [37, 38, 43, 44]
    blink = slice(38, 48)
    lid_error = [mean_error(x[blink][:, lids], truth[blink][:, lids]) for x in (smoothed, raw)]
    assert lid_error[0] < lid_error[1]
    assert mean_error(smoothed, truth) < 0.4 * mean_error(raw, truth)


def test_gaps_are_never_smoothed_across():
    truth = smooth_truth()
    raw = jitter(truth)
    valid = np.ones(len(raw), dtype=bool)
    valid[40:44] = False
    raw[40:44] = np.nan
    smoothed = smooth_landmarks(raw, valid=valid)
    assert np.isnan(smoothed[40:44]).all()
    # Move the face after the gap far away: a filter that bridged the gap would pull the frames before it.
    moved = raw.copy()
    moved[44:] += 300.0
    smoothed_moved = smooth_landmarks(moved, valid=valid)
    np.testing.assert_allclose(smoothed_moved[:40], smoothed[:40], atol=1e-9)
    np.testing.assert_allclose(smoothed_moved[44:], smoothed[44:] + 300.0, atol=1e-6)


def test_valid_defaults_to_finite_frames():
    raw = jitter(smooth_truth())
    raw[10] = np.nan
    smoothed = smooth_landmarks(raw)
    assert np.isnan(smoothed[10]).all() and np.isfinite(np.delete(smoothed, 10, axis=0)).all()


def test_short_runs_are_handled():
    truth = smooth_truth()
    raw = jitter(truth)
    valid = np.zeros(len(raw), dtype=bool)
    runs = [(0, 1), (3, 5), (8, 11), (14, 19), (22, 96)]  # runs of 1, 2, 3, 5 and 74 frames
    for a, b in runs:
        valid[a:b] = True
    assert valid_runs(valid) == runs
    smoothed = smooth_landmarks(raw, valid=valid)
    assert np.isfinite(smoothed[valid]).all()
    np.testing.assert_array_equal(smoothed[0:1], raw[0:1])  # one frame: nothing to fit
    np.testing.assert_array_equal(smoothed[3:5], raw[3:5])  # two frames: nothing to fit either
    assert mean_error(smoothed[14:19], truth[14:19]) < mean_error(raw[14:19], truth[14:19])
    assert mean_error(smoothed[22:], truth[22:]) < 0.35 * mean_error(raw[22:], truth[22:])


def test_tiny_tracks_come_back_unchanged():
    raw = jitter(smooth_truth())
    for length in (1, 2, 3):
        np.testing.assert_array_equal(smooth_landmarks(raw[:length]), raw[:length])
    assert np.isfinite(smooth_landmarks(raw[:6])).all()
    assert smooth_landmarks(np.full((5, 68, 2), np.nan)).shape == (5, 68, 2)


def test_windows_of_one_give_back_the_input():
    """With smoothing off, splitting into rigid motion and expression and back is exact."""
    raw = jitter(smooth_truth())
    np.testing.assert_allclose(smooth_landmarks(raw, window=1, expression_window=1), raw, atol=1e-9)


def test_bad_settings_and_shapes_are_refused():
    raw = jitter(smooth_truth())
    with pytest.raises(ConfigError, match="odd"):
        smooth_landmarks(raw, window=8)
    with pytest.raises(ConfigError, match="order"):
        smooth_landmarks(raw, window=3, order=2)
    with pytest.raises(ConfigError, match="threshold"):
        smooth_landmarks(raw, threshold=0)
    with pytest.raises(ValueError, match=r"\(T, 68, 2\)"):
        smooth_landmarks(raw[:, :5])
    with pytest.raises(ValueError, match="valid"):
        smooth_landmarks(raw, valid=np.ones(3, bool))


def test_one_euro_reduces_jitter_on_a_slow_move_but_lags():
    t = FRAMES - FRAMES[0]
    truth = move(face_shape(), 960 + 0.2 * t, 540 + 0.1 * t)
    raw = jitter(truth)
    filtered = smooth_landmarks_streaming(raw, fps=24)
    assert jitter_residual(filtered, cutoff_frames=8) < 0.5 * jitter_residual(raw, cutoff_frames=8)
    assert mean_error(filtered[24:], truth[24:]) < mean_error(raw[24:], truth[24:])
    # On a sudden move the causal filter is late where the offline smoother is not.
    sudden = sudden_truth("fast")
    raw = jitter(sudden)
    streamed, offline = smooth_landmarks_streaming(raw, fps=24), smooth_landmarks(raw)
    assert measure_lag(sudden, streamed) > 0.1 > abs(measure_lag(sudden, offline))
    worst = [np.linalg.norm(x - sudden, axis=-1).mean(axis=1).max() for x in (streamed, offline)]
    assert worst[0] > 3 * worst[1]


def test_one_euro_streaming_behaviour():
    one_euro = OneEuroFilter(fps=24, min_cutoff=1.0, beta=0.0)
    np.testing.assert_array_equal(one_euro(np.array([5.0, 1.0]), 1001), [5.0, 1.0])  # the first value passes
    step = one_euro(np.array([6.0, 1.0]), 1002)
    assert 5.0 < step[0] < 6.0 and step[1] == 1.0
    # A skipped frame is a longer time step, so the filter moves further towards the new value.
    other = OneEuroFilter(fps=24, min_cutoff=1.0, beta=0.0)
    other(np.array([5.0, 1.0]), 1001)
    assert other(np.array([6.0, 1.0]), 1003)[0] > step[0]
    with pytest.raises(ValueError, match="increase"):
        one_euro(np.array([6.0, 1.0]), 1002)
    with pytest.raises(ValueError, match="shape"):
        one_euro(np.zeros(3), 1003)
    one_euro.reset()
    np.testing.assert_array_equal(one_euro(np.zeros(3), 1010), np.zeros(3))
    with pytest.raises(ConfigError):
        OneEuroFilter(fps=0)


def test_measure_lag_finds_known_shifts():
    truth = sudden_truth("fast")
    for shift in (0, 1, 2, -1):
        assert measure_lag(truth, np.roll(truth, shift, axis=0)) == pytest.approx(shift, abs=1e-9)
    # A half-frame delay (the mean of two neighbouring frames) reads as about half a frame.
    half = truth.copy()
    half[1:] = (truth[1:] + truth[:-1]) / 2
    assert measure_lag(truth, half) == pytest.approx(0.5, abs=0.1)
    with pytest.raises(ValueError):
        measure_lag(truth, truth[:-1])


def test_jitter_residual_measures_noise_not_motion():
    truth = smooth_truth()
    assert jitter_residual(truth, cutoff_frames=8) < 0.1 * SIGMA
    raw = jitter(truth)
    # White noise keeps the part above the cutoff: sqrt(1 - 2/8) of it for an ideal low-pass.
    assert jitter_residual(raw, cutoff_frames=8) == pytest.approx(SIGMA * np.sqrt(0.75), rel=0.15)
    assert jitter_residual(smooth_landmarks(raw), cutoff_frames=8) < 0.3 * jitter_residual(raw, cutoff_frames=8)
    raw[30:33] = np.nan  # gaps are skipped, not filtered across
    assert np.isfinite(jitter_residual(raw, cutoff_frames=8))
    with pytest.raises(ConfigError):
        jitter_residual(raw, cutoff_frames=2)
