"""Temporal filtering of landmark tracks: a zero-lag offline smoother, a streaming 1€ filter, and the
high-pass part of a track (what quality checks flag as jitter). The figures that judge the filters (lag and
jitter residual) are evaluation code: :mod:`vfx.eval.stability`.

Why this exists: landmarks are found per frame, so their small frame-to-frame inconsistencies become a
shimmering face once the aligned crop is 1024² (002, [0051]-[0052]). Jitter averaging over nine shifted
boxes (``vfx.face`` landmarking) removes most of it; this module removes what is left across time.

Two filters, for two uses:

- :func:`smooth_landmarks` is the offline default. A shot is processed as a whole, so the filter may look at
  future frames: it is two-sided (zero phase), which is the only way to stay on a fast head move without
  delay. It is a local polynomial (Savitzky-Golay) fit whose window adapts per frame and per coordinate
  (the ICI rule, see :func:`smooth_landmarks`), and it smooths the face's rigid motion and its expression
  separately.
- :class:`OneEuroFilter` is for live or streaming use, where the future is unknown. Any causal filter
  lags; the 1€ filter trades jitter against lag with the speed, but it always lags more than the offline
  smoother (see :func:`vfx.eval.stability.measure_lag`).

Convention:
    - Landmark tracks are (T, 68, 2) float64 plate pixels, (x, y), one row per frame of a contiguous frame
      range; ``valid`` (T,) bool marks the frames that have a face. Frames without one may hold anything
      (NaN by convention) and are returned unchanged.
    - "Run": a maximal stretch of consecutive valid frames. Nothing is ever smoothed across a gap.
    - Lag is in frames, positive when the filtered track is behind the reference.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from vfx.align.landmarks import NUM_LANDMARKS, RIGID_LANDMARKS
from vfx.errors import ConfigError, ShapeError

__all__ = [
    "RIGID_LANDMARKS",
    "smooth_landmarks",
    "OneEuroFilter",
    "smooth_landmarks_streaming",
    "high_pass",
    "valid_runs",
    "check_window",
]

log = logging.getLogger(__name__)

# Noise of the k-th difference of white noise is sqrt(C(2k, k)) sigma; third differences cancel a
# quadratic trend, so a smooth head move (steady acceleration) does not inflate the noise estimate.
_DIFF3_GAIN = math.sqrt(20.0)  # the norm of the third-difference kernel (1, -3, 3, -1)
_MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation for Gaussian noise
_MIN_DIFFS_PER_SERIES = 12  # below this a per-coordinate noise estimate is too noisy; pool instead


def valid_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """The maximal stretches of consecutive ``True`` in ``valid`` as ``(start, stop)`` index pairs.

    Example:
        >>> valid_runs(np.array([True, True, False, True]))
        [(0, 2), (3, 4)]
    """
    flags = np.concatenate([[False], np.asarray(valid, dtype=bool), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(flags))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


# --------------------------------------------------------------------------------------------------
# Offline, zero-lag smoother
# --------------------------------------------------------------------------------------------------


def check_window(name: str, window: int, order: int) -> None:
    """Raise ConfigError unless ``window`` is an odd frame count >= 1 that a polynomial of ``order`` can smooth."""
    if window < 1 or window % 2 == 0:
        raise ConfigError(
            f"Invalid {name}",
            expected="an odd number of frames >= 1 (1 switches smoothing off)",
            found=str(window),
            fix=f"use {window + 1 if window >= 1 else 7}",
        )
    if order < 0 or (window > 1 and order >= window - 1):
        raise ConfigError(
            f"Invalid polynomial order for {name}",
            expected=f"0 <= order < {name} - 1 (a fit through every sample does not smooth)",
            found=f"order {order} with {name} {window}",
            fix="use order 2 for head motion and 1 for expression, or a longer window",
        )


def _window_ladder(max_window: int, order: int, n: int) -> list[int]:
    """Odd window lengths tried by the ICI rule, shortest first; 1 stands for the raw samples."""
    longest = min(max_window, n if n % 2 else n - 1)
    # A window of order + 1 samples (or fewer) interpolates them exactly, so it adds nothing over raw.
    return [1] + [length for length in range(3, longest + 1, 2) if length > order + 1]


def _kernel_gain(length: int, order: int, n: int) -> np.ndarray:
    """(n,) noise gain ||g|| of the ``mode='interp'`` Savitzky-Golay estimate at each sample of a run.

    Inside the run the window is centred; within ``length // 2`` of an end scipy fits the same polynomial
    to the first (last) ``length`` samples and evaluates it off-centre, which is noisier.
    """
    from scipy.signal import savgol_coeffs  # scipy.signal takes seconds to import: only where it is used

    half = length // 2
    gain = np.full(n, float(np.linalg.norm(savgol_coeffs(length, order))))
    for pos in range(half):
        edge = float(np.linalg.norm(savgol_coeffs(length, order, pos=pos, use="dot")))
        gain[pos] = edge
        gain[n - 1 - pos] = edge  # symmetric: the last samples mirror the first
    return gain


def _ici_savgol(x: np.ndarray, sigma: np.ndarray, max_window: int, order: int, threshold: float) -> np.ndarray:
    """Adaptive-window Savitzky-Golay smoothing of one run, with the intersection of confidence intervals rule.

    For each sample and column, the estimates of windows 1 (raw), ..., ``max_window`` each give an interval
    ``estimate +- threshold * sigma * gain``. Longer windows have narrower intervals until they reach past a
    real change (a head move, a blink), where their bias pushes the interval off the others. The chosen
    window is the longest whose interval still intersects all shorter ones' (Katkovnik, "A new method for
    varying adaptive bandwidth selection", IEEE TSP 1999). This is the "shrink the window where the
    residual exceeds a few times the noise" idea, made precise: each window is compared with its own
    noise level, not with one global threshold.

    Args:
        x: (n, D) one contiguous run.
        sigma: (D,) noise standard deviation of each column.
        max_window: longest odd window.
        order: polynomial order of the local fit.
        threshold: the ICI Gamma, in noise standard deviations.

    Returns:
        (n, D) smoothed run.
    """
    from scipy.signal import savgol_filter  # scipy.signal takes seconds to import: only where it is used

    n = x.shape[0]
    ladder = _window_ladder(max_window, order, n)
    if len(ladder) == 1:
        return x.copy()
    estimates = np.empty((len(ladder), *x.shape))
    widths = np.empty_like(estimates)
    for k, length in enumerate(ladder):
        if length == 1:
            estimates[k] = x
            widths[k] = threshold * sigma
        else:
            estimates[k] = savgol_filter(x, length, order, axis=0, mode="interp")
            widths[k] = threshold * sigma[None, :] * _kernel_gain(length, order, n)[:, None]
    lower = np.maximum.accumulate(estimates - widths, axis=0)
    upper = np.minimum.accumulate(estimates + widths, axis=0)
    # Once the running intersection is empty it stays empty, so counting the non-empty ones gives the
    # index of the last window that agrees with every shorter one.
    chosen = np.sum(lower <= upper, axis=0) - 1
    return np.take_along_axis(estimates, chosen[None], axis=0)[0]


def _third_difference(x: np.ndarray) -> np.ndarray:
    """(n - 3, D) third differences along axis 0."""
    return x[3:] - 3.0 * x[2:-1] + 3.0 * x[1:-2] - x[:-3]


def _noise_sigma(
    series: np.ndarray, runs: Sequence[tuple[int, int]], pools: Sequence[Sequence[int]]
) -> np.ndarray | None:
    """Robust per-column noise standard deviation from the data itself, or None when it cannot be estimated.

    Third differences inside each run remove the motion (up to a steady acceleration) and keep the noise;
    the median absolute deviation ignores the few frames around a sudden move. With too few frames for a
    per-column estimate, the columns of each pool (same units) share one.
    """
    diffs = [_third_difference(series[a:b]) for a, b in runs if b - a >= 4]
    if not diffs:
        return None
    d3 = np.concatenate(diffs, axis=0)

    def mad_sigma(values: np.ndarray) -> np.ndarray:
        mad = np.median(np.abs(values - np.median(values, axis=0)), axis=0)
        # Quantised landmarks (dlib's integer points) can make the median deviation zero; fall back to the RMS.
        rms = np.sqrt(np.mean(values**2, axis=0))
        return np.where(mad > 0, _MAD_TO_SIGMA * mad, rms) / _DIFF3_GAIN

    if d3.shape[0] >= _MIN_DIFFS_PER_SERIES:
        return mad_sigma(d3)
    sigma = np.empty(series.shape[1])
    for pool in pools:
        sigma[list(pool)] = mad_sigma(d3[:, list(pool)].reshape(-1))
    return sigma


def _smooth_series(
    series: np.ndarray,
    runs: Sequence[tuple[int, int]],
    *,
    window: int,
    order: int,
    threshold: float,
    pools: Sequence[Sequence[int]],
    what: str,
) -> np.ndarray:
    """ICI-smooth the (T, D) ``series`` run by run; frames outside ``runs`` are copied."""
    out = series.copy()
    if window == 1:
        return out
    sigma = _noise_sigma(series, runs, pools)
    if sigma is None:
        log.debug("No run of 4+ frames: %s left unsmoothed (noise cannot be estimated)", what)
        return out
    log.debug("Noise of %s: median %.4g", what, float(np.median(sigma)))
    for a, b in runs:
        out[a:b] = _ici_savgol(series[a:b], sigma, window, order, threshold)
    return out


def _decompose(points: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split landmarks into rigid motion and a shape in the face's own frame.

    Args:
        points: (N, 68, 2) valid frames only.
        reference: (68, 2) the shape the similarity is measured against.

    Returns:
        ``params`` (N, 4): centre x, centre y (plate px), log scale, roll (radians, unwrapped), and
        ``local`` (N, 68, 2): the landmarks with that similarity undone, in the reference's pixel units.
        :func:`_compose` inverts this exactly.
    """
    rigid = list(RIGID_LANDMARKS)
    z = points[..., 0] + 1j * points[..., 1]  # complex points make a similarity one multiplication
    ref = reference[:, 0] + 1j * reference[:, 1]
    ref = ref - ref[rigid].mean()
    centre = z[:, rigid].mean(axis=1)
    moved = z - centre[:, None]
    # Least-squares similarity ref -> frame on the rigid landmarks: q = s * exp(i theta).
    q = (moved[:, rigid] * np.conj(ref[rigid])).sum(axis=1) / np.sum(np.abs(ref[rigid]) ** 2)
    local = moved / q[:, None]
    params = np.stack([centre.real, centre.imag, np.log(np.abs(q)), np.unwrap(np.angle(q))], axis=1)
    return params, np.stack([local.real, local.imag], axis=-1)


def _compose(params: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_decompose`: (N, 4) params and (N, 68, 2) local shapes -> (N, 68, 2) plate points."""
    centre = params[:, 0] + 1j * params[:, 1]
    q = np.exp(params[:, 2] + 1j * params[:, 3])
    z = centre[:, None] + q[:, None] * (local[..., 0] + 1j * local[..., 1])
    return np.stack([z.real, z.imag], axis=-1)


def smooth_landmarks(
    track: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    window: int = 11,
    expression_window: int = 25,
    order: int = 2,
    expression_order: int = 1,
    threshold: float = 2.0,
    decompose: bool = True,
) -> np.ndarray:
    """Remove landmark jitter from a whole shot without lagging or smearing real moves.

    The filter is two-sided (offline), so it has zero phase: a symmetric local polynomial fit (Savitzky-Golay)
    puts a head move exactly where it happens. A fixed long window would still smear a sudden move over
    the window's length and, being a polynomial fit, overshoot around it; so the window adapts per frame and
    per coordinate with the intersection-of-confidence-intervals (ICI) rule: windows of 1 (raw), 3, 5, ...
    frames up to the maximum are tried, and the longest one whose estimate agrees with all the shorter ones
    within ``threshold`` times its own noise level is used. On a steady stretch that is the longest window
    (most smoothing); beside a sudden move the window shrinks towards the raw samples, which are exact there
    up to the noise. The noise level of each coordinate is estimated from the data itself (median absolute
    third difference, blind to smooth motion and to the few frames of a sudden move).

    Rigid motion and expression are smoothed separately (``decompose=True``): each frame's similarity
    (centre, scale, roll) is fitted to the skull-fixed :data:`RIGID_LANDMARKS`, and the landmarks are
    expressed in that moving face frame. Why:

    - A head move changes only the four rigid parameters; the face-frame shape does not see it, so the
      expression can be smoothed over a long window straight through the move, with nothing to smear.
    - The rigid parameters are least-squares fits to 21 points, so they are already several times less
      noisy than one landmark, and the ICI rule sees a head move as many noise levels high: the window
      collapses right at the move and stays long elsewhere.
    - The expression is where most of the remaining jitter lives and what shimmers in a 1024² crop; it
      changes slowly except for blinks and speech, which the ICI rule follows by shrinking the window.
      A local line (``expression_order=1``) over ``expression_window`` frames gives the most noise reduction
      per frame of window.

    Why ICI rather than blending back to the raw track where ``|raw - smoothed|`` exceeds a few noise levels:
    a single smoothed estimate is wrong over the whole window around a move, so such a blend switches on
    well before and after it and its switch itself is a visible pop; ICI picks, per frame, the longest
    window that is still unbiased there, so the smoothing fades out only over the frames that need it.

    Why windows of 11 and 25 frames rather than a classic 7: with ICI the window is only a cap, used where
    the motion really is steady; the moves themselves are handled by the shrinking. What is left after
    smoothing is mostly the rigid fit's noise (21 points, magnified at the chin by the roll and scale
    estimates), so the rigid cap sets the result: on a synthetic 96-frame head sway (0.5 px jitter, a face
    260 px wide) the defaults leave 0.26-0.28 of the raw error, 7 and 21 frames 0.28-0.32, and smoothing
    each coordinate alone with 7 frames 0.58. Windows count frames: double them for a 48 fps plate.

    Runs of valid frames are smoothed independently: a gap (no face) is never bridged. Near a run's ends the
    polynomial is fitted to the run's first (last) frames and evaluated off-centre (scipy's ``mode="interp"``),
    which stays lag-free for polynomial motion at the cost of less smoothing; a run shorter than a window
    simply uses the windows that fit (a run of 1-2 frames is returned raw). A track with no run of 4 or more
    frames is returned unchanged, because its noise cannot be estimated.

    Args:
        track: (T, 68, 2) landmarks in plate pixels, one row per frame.
        valid: (T,) True where the frame has a face; default: the frames whose landmarks are all finite.
        window: longest window, in frames, for the rigid motion (for every coordinate when
            ``decompose=False``). Odd; 1 switches that part off.
        expression_window: longest window, in frames, for the face-frame shape. Odd; 1 switches it off.
        order: polynomial order of the rigid-motion fit (2: steady acceleration is followed without bias).
        expression_order: polynomial order of the expression fit.
        threshold: the ICI threshold, in noise standard deviations: lower follows moves more tightly and
            smooths less, higher smooths more and reacts only to larger moves. 2 is a balanced choice.
        decompose: False smooths every coordinate independently with ``window`` and ``order`` (for point
            sets that are not a face, or to compare).

    Returns:
        (T, 68, 2) float64 smoothed landmarks; rows where ``valid`` is False are copied from ``track``.

    Raises:
        ValueError: ``track`` or ``valid`` has the wrong shape.
        ConfigError: a window is even or not longer than its polynomial order + 1, or the threshold is not positive.

    Convention:
        - track: (T, 68, 2) float, plate pixels (x, y), rows are consecutive frames
        - valid: (T,) bool; invalid rows may hold NaN
        - windows are in frames and odd; the filter is symmetric, so its lag is zero

    Example:
        >>> rng = np.random.default_rng(0)
        >>> shape = rng.uniform(0, 260, (68, 2))
        >>> truth = shape + np.linspace(0, 50, 48)[:, None, None]
        >>> noisy = truth + rng.normal(0, 0.5, truth.shape)
        >>> smoothed = smooth_landmarks(noisy)
        >>> bool(np.abs(smoothed - truth).mean() < 0.5 * np.abs(noisy - truth).mean())
        True
    """
    points = np.asarray(track, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (NUM_LANDMARKS, 2):
        raise ShapeError(f"track must be (T, {NUM_LANDMARKS}, 2) landmarks; got {points.shape}")
    finite = np.isfinite(points).all(axis=(1, 2))
    if valid is None:
        valid = finite
    else:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != (points.shape[0],):
            raise ShapeError(f"valid must be ({points.shape[0]},) bool, one flag per frame; got {valid.shape}")
        if np.any(valid & ~finite):
            raise ShapeError("track has NaN or infinite landmarks on frames marked valid")
    check_window("window", window, order)
    check_window("expression_window", expression_window, expression_order)
    if not threshold > 0:
        raise ConfigError("Invalid smoothing threshold", expected="a positive number of noise deviations (about 2)",
                          found=str(threshold), fix="use 2.0")

    out = points.copy()
    if not valid.any():
        return out
    runs = valid_runs(valid)
    if not decompose:
        flat = _smooth_series(points.reshape(len(points), -1), runs, window=window, order=order,
                              threshold=threshold, pools=[range(0, 2 * NUM_LANDMARKS, 2),
                                                          range(1, 2 * NUM_LANDMARKS, 2)], what="landmarks")
        out[valid] = flat.reshape(points.shape)[valid]
        return out

    # Decompose the valid frames only (NaN rows would poison the unwrap), then scatter back so runs keep
    # their frame positions.
    index = np.flatnonzero(valid)
    with np.errstate(divide="ignore", invalid="ignore"):
        params_valid, local_valid = _decompose(points[index], points[index[0]])
    if not (np.isfinite(params_valid).all() and np.isfinite(local_valid).all()):
        # Collapsed rigid landmarks (all on one point) have no scale or roll; fall back to per-coordinate.
        log.warning("Degenerate landmarks (no face scale on some frames): smoothing each coordinate on its own")
        return smooth_landmarks(points, valid=valid, window=window, order=order, threshold=threshold, decompose=False)
    params = np.full((len(points), 4), np.nan)
    params[index] = params_valid
    local = np.full((len(points), 2 * NUM_LANDMARKS), np.nan)
    local[index] = local_valid.reshape(len(index), -1)
    params = _smooth_series(params, runs, window=window, order=order, threshold=threshold,
                            pools=[(0, 1), (2, 3)], what="rigid motion")
    # Roll and log scale share units (a change of d moves a point at radius r by about r * d), hence one pool.
    local = _smooth_series(local, runs, window=expression_window, order=expression_order, threshold=threshold,
                           pools=[range(2 * NUM_LANDMARKS)], what="expression")
    # Add the change the smoothing made rather than the recomposed points, so frames it left alone come back
    # bit-identical instead of carrying the decomposition's rounding.
    smoothed = _compose(params[index], local[index].reshape(len(index), NUM_LANDMARKS, 2))
    out[index] += smoothed - _compose(params_valid, local_valid)
    return out


# --------------------------------------------------------------------------------------------------
# Streaming 1€ filter
# --------------------------------------------------------------------------------------------------


class OneEuroFilter:
    """The 1€ filter (Casiez, Roussel and Vogel, CHI 2012) for live or streaming landmark tracks.

    A first-order low-pass whose cutoff rises with the signal's speed: slow drift is smoothed hard
    (``min_cutoff``), fast moves pass with less lag (``beta``). It is causal (it never sees the future),
    so unlike :func:`smooth_landmarks` it always lags a move, by about ``fps / (2 pi cutoff)`` frames: two to
    four frames at rest with the defaults at 24 fps, well under one during a fast head move, whose first
    frames it still trails by several pixels. Use it only when frames arrive one at a time; for a shot on
    disk :func:`smooth_landmarks` is better on both jitter and lag.

    The defaults suit plate-pixel landmarks of a face a few hundred pixels wide at 24 fps: jitter drops to
    about a third at rest, and a head moving at 100 px/s raises the cutoff to 11 Hz.

    Each coordinate is filtered independently (its own speed, its own cutoff), as in the original filter.

    Args:
        fps: frame rate of the frames fed in (frames are integers, time is frame / fps).
        min_cutoff: cutoff frequency at rest, in Hz. Lower: less jitter, more lag.
        beta: how fast the cutoff rises with speed, in Hz per (pixel per second). Higher: less lag on moves.
        d_cutoff: cutoff of the low-pass on the speed estimate, in Hz.

    Convention:
        - values: any float array of a fixed shape per call, e.g. (68, 2) plate pixels
        - frames: integers, increasing; a skipped frame is allowed (time steps by the gap), but after a
          missing face call :meth:`reset`, or stale state bleeds into the new face

    Example:
        >>> one_euro = OneEuroFilter(fps=24)
        >>> [round(float(one_euro(np.array([v]), frame)[0]), 2) for frame, v in enumerate([0.0, 1.0, 1.0])]
        [0.0, 0.28, 0.51]
    """

    def __init__(
        self,
        *,
        fps: float | Fraction = 24.0,
        min_cutoff: float = 1.0,
        beta: float = 0.1,
        d_cutoff: float = 1.0,
    ) -> None:
        if not float(fps) > 0:
            raise ConfigError("Invalid frame rate for the 1€ filter", expected="fps > 0", found=str(fps),
                              fix="pass the plate's frame rate, e.g. 24000/1001")
        if not (min_cutoff > 0 and d_cutoff > 0 and beta >= 0):
            raise ConfigError("Invalid 1€ filter settings", expected="min_cutoff > 0, d_cutoff > 0, beta >= 0",
                              found=f"min_cutoff={min_cutoff}, beta={beta}, d_cutoff={d_cutoff}",
                              fix="use min_cutoff=1.0, beta=0.1, d_cutoff=1.0")
        self.fps = float(fps)
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._frame: int | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def reset(self) -> None:
        """Forget the past: the next value is passed through unfiltered."""
        self._value = self._speed = None
        self._frame = None

    def __call__(self, value: np.ndarray, frame: int | None = None) -> np.ndarray:
        """Filter one frame's ``value``; ``frame`` defaults to the previous frame + 1.

        Raises:
            ValueError: the shape changed since the last call, or ``frame`` did not increase.
        """
        x = np.asarray(value, dtype=np.float64)
        frame = (self._frame + 1 if self._frame is not None else 0) if frame is None else int(frame)
        if self._value is None or self._frame is None:
            self._value, self._speed, self._frame = x.copy(), np.zeros_like(x), frame
            return x.copy()
        if x.shape != self._value.shape:
            raise ShapeError(f"value shape changed from {self._value.shape} to {x.shape}; call reset() for a new face")
        if frame <= self._frame:
            raise ShapeError(f"frames must increase: got {frame} after {self._frame}")
        dt = (frame - self._frame) / self.fps
        # The speed is taken against the previous *filtered* value, as in the authors' reference code.
        speed = (x - self._value) / dt
        self._speed = self._speed + self._alpha(self.d_cutoff, dt) * (speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed)
        self._value = self._value + self._alpha(cutoff, dt) * (x - self._value)
        self._frame = frame
        return self._value.copy()


def smooth_landmarks_streaming(
    track: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    fps: float | Fraction = 24.0,
    min_cutoff: float = 1.0,
    beta: float = 0.1,
    d_cutoff: float = 1.0,
) -> np.ndarray:
    """Run :class:`OneEuroFilter` over a whole track, as a live pipeline would, restarting after each gap.

    For comparisons with :func:`smooth_landmarks`; a live pipeline calls the filter frame by frame itself.

    Convention:
        - track: (T, ...) float, rows are consecutive frames; valid: (T,) bool (default: finite rows)
        - rows where ``valid`` is False are copied unchanged
    """
    values = np.asarray(track, dtype=np.float64)
    if valid is None:
        valid = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != (values.shape[0],):
        raise ShapeError(f"valid must be ({values.shape[0]},) bool, one flag per frame; got {valid.shape}")
    out = values.copy()
    one_euro = OneEuroFilter(fps=fps, min_cutoff=min_cutoff, beta=beta, d_cutoff=d_cutoff)
    for a, b in valid_runs(valid):
        one_euro.reset()
        for row in range(a, b):
            out[row] = one_euro(values[row], row)
    return out


# --------------------------------------------------------------------------------------------------
# The high-pass part of a track
# --------------------------------------------------------------------------------------------------


def high_pass(track: np.ndarray, *, cutoff_frames: float, valid: np.ndarray | None = None) -> np.ndarray:
    """The high-frequency part of a track: the track minus its zero-phase temporal low-pass.

    The low-pass is a 2nd-order Butterworth filter run forwards and backwards (``scipy.signal.filtfilt``, so
    no lag leaks into the residual) with its cutoff at one cycle per ``cutoff_frames`` frames: motion slower
    than that counts as real, faster as jitter. Each run of valid frames is filtered on its own.

    Args:
        track: (T, ...) e.g. (T, 68, 2) landmarks in plate pixels.
        cutoff_frames: period, in frames, of the fastest motion still counted as real (> 2; e.g. 6 at 24 fps
            keeps motion up to 4 Hz).
        valid: (T,) bool, default: the rows that are all finite. Runs shorter than 3 frames are left out.

    Returns:
        (T, ...) float64 residual; NaN on frames left out.

    Raises:
        ConfigError: ``cutoff_frames`` is 2 or less (at or above the Nyquist rate).
    """
    from scipy.signal import butter, filtfilt  # scipy.signal takes seconds to import: only where it is used

    values = np.asarray(track, dtype=np.float64)
    if not cutoff_frames > 2:
        raise ConfigError("Invalid jitter cutoff", expected="a period of more than 2 frames (the Nyquist limit)",
                          found=str(cutoff_frames), fix="use about 6 frames at 24 fps")
    flat = values.reshape(len(values), -1)
    if valid is None:
        valid = np.isfinite(flat).all(axis=1)
    b, a = butter(2, 2.0 / cutoff_frames)  # normalised to Nyquist = 0.5 cycles per frame
    out = np.full_like(flat, np.nan)
    for start, stop in valid_runs(np.asarray(valid, dtype=bool)):
        run = flat[start:stop]
        if len(run) < 3:
            continue
        # Odd (point-reflected) padding continues a moving track linearly, so its ends read as motion, not jitter.
        low = filtfilt(b, a, run, axis=0, padtype="odd", padlen=min(3 * max(len(a), len(b)), len(run) - 1))
        out[start:stop] = run - low
    return out.reshape(values.shape)
