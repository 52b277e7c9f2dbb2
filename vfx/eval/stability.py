"""Measuring landmarks over time: stability under a known motion, lag on a sudden move, jitter on footage.

Evaluation code (floor 7): the tools and tests use it, production code never imports it.

A landmarker that is accurate on stills can still shimmer on video. The stability measure takes a face
photo, moves it with a known sub-pixel motion, and compares each frame's landmarks with frame 0's mapped
through that motion: whatever differs is jitter (or lag), not the face moving. On real footage the truth
is unknown, so :func:`footage_jitter` measures the high-frequency part of each track instead.

Three landmark tracks are compared everywhere, as the pipeline makes them:

- ``single``: one landmark pass on the detector's box (a plain pipeline);
- ``refined``: one pass on the box refined from landmarks (:func:`vfx.face.landmark.refine_boxes`);
- ``averaged``: the mean over the refined box and its 8 shifted copies ([0052] of the face-swap patent);
- ``filtered``: ``averaged`` through the zero-lag temporal smoother (:func:`vfx.face.smooth.smooth_landmarks`).

Convention:
    Tracks are (T, 68, 2) float64 plate pixels; motions are 3x3 matrices portrait -> frame, (x, y) pixel
    centres, origin top-left. Distances are pixels unless a name says ``_iod`` (inter-ocular distances).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from vfx.align.landmarks import RIGID_LANDMARKS
from vfx.align.motion import head_motion_matrix, render_motion
from vfx.face.landmark import Landmarker, jitter_boxes, refine_boxes, to_uint8_rgb
from vfx.face.smooth import high_pass, smooth_landmarks, smooth_landmarks_streaming
from vfx.face.track import FULL_FRAME_EVERY, FaceTracker, find_faces, seed_boxes
from vfx.face.types import NUM_LANDMARKS, Face

__all__ = [
    "LandmarkTracks",
    "landmark_tracks",
    "known_motion",
    "motion_reference",
    "stability_error",
    "MotionStability",
    "motion_stability",
    "FootageJitter",
    "footage_jitter",
    "measure_lag",
    "jitter_residual",
]


@dataclass(frozen=True, eq=False)
class LandmarkTracks:
    """The single-pass, averaged and filtered landmark tracks of the main face of a clip.

    Attributes:
        single, refined, averaged, filtered: (T, 68, 2) float64; NaN on frames where no face was found.
        face_px: median detector box width.
    """

    single: np.ndarray
    refined: np.ndarray
    averaged: np.ndarray
    filtered: np.ndarray
    face_px: float

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.single).all(axis=(1, 2))

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"single": self.single, "refined": self.refined, "averaged": self.averaged, "filtered": self.filtered}


def landmark_tracks(
    landmarker: Landmarker,
    frames: Iterable[np.ndarray],
    *,
    beta: float = 0.05,
    num_shifts: int = 8,
    detect_scale: float = 0.5,
    refine: bool = True,
    **smooth_options: float,
) -> LandmarkTracks:
    """Detect and landmark the largest face of every frame the way ``vfx extract`` does.

    Detection goes through :func:`vfx.face.track.find_faces` with a tracker (region search, full frame every
    12 frames). The single pass landmarks the detector's box; the averaged track shifts the box that
    :func:`refine_boxes` makes from a first pass (``refine``), as the pipeline does.

    Args:
        landmarker: the back-end.
        frames: the clip's frames, in order (any layout :func:`to_uint8_rgb` takes).
        beta, num_shifts: jitter averaging settings.
        detect_scale: full-frame detection scale.
        refine: average around the landmark-derived box (the pipeline's way) rather than the detector's.
        **smooth_options: passed to :func:`smooth_landmarks` for the filtered track.
    """
    tracker = FaceTracker()
    single, refined, averaged, widths = [], [], [], []
    for index, frame in enumerate(frames):
        image = to_uint8_rgb(frame)
        boxes = find_faces(landmarker, image, tracker, detect_scale=detect_scale,
                           full_frame=index % FULL_FRAME_EVERY == 0)
        if not boxes:
            tracker.update(index, [])
            for track in (single, refined, averaged):
                track.append(np.full((NUM_LANDMARKS, 2), np.nan))
            continue
        detected = max(boxes, key=lambda b: b.width * b.height)
        box = refine_boxes(landmarker, image, seed_boxes(tracker, [detected]))[0] if refine else detected
        points = landmarker.localise(image, [detected, *jitter_boxes(box, beta=beta, num_shifts=num_shifts)])
        single.append(points[0])
        refined.append(points[1])  # the unshifted box comes first
        averaged.append(points[1:].mean(axis=0))
        widths.append(detected.width)
        tracker.update(index, [Face(box, averaged[-1], score=box.score)])
    averaged_track = np.stack(averaged)
    filtered = smooth_landmarks(averaged_track, **smooth_options)
    face_px = float(np.median(widths)) if widths else 0.0
    return LandmarkTracks(np.stack(single), np.stack(refined), averaged_track, filtered, face_px)


def known_motion(
    num_frames: int,
    portrait_size: tuple[int, int],
    size: int,
    *,
    zoom: float = 1.15,
    sudden_frame: int | None = None,
    sudden_shift_px: tuple[float, float] = (40.0, 0.0),
    sudden_frames: int = 2,
) -> list[np.ndarray]:
    """3x3 portrait -> frame matrices of a smooth head-like motion, optionally with a sudden move.

    The smooth motion is the demo's (a drift, a nod, a tilt of a few degrees, a 6 % push-in; sub-pixel
    positions). The sudden move adds ``sudden_shift_px`` spread over ``sudden_frames`` frames from
    ``sudden_frame`` on (a whip of the head that a lagging filter would trail behind).
    """
    matrices = []
    for index in range(num_frames):
        matrix = head_motion_matrix(index / num_frames, portrait_size, size, zoom=zoom)
        if sudden_frame is not None and index >= sudden_frame:
            progress = min(1.0, (index - sudden_frame + 1) / sudden_frames)
            matrix[:2, 2] += np.asarray(sudden_shift_px) * progress
        matrices.append(matrix)
    return matrices


def motion_reference(first: np.ndarray, matrices: list[np.ndarray]) -> np.ndarray:
    """Frame 0's landmarks (68, 2) carried to every frame by the known motion: (T, 68, 2)."""
    to_portrait = np.linalg.inv(matrices[0])
    out = []
    for matrix in matrices:
        step = matrix @ to_portrait
        out.append(first @ step[:2, :2].T + step[:2, 2])
    return np.stack(out)


def stability_error(track: np.ndarray, reference: np.ndarray, *, skip_first: bool = True) -> float:
    """Mean distance in pixels between a landmark track (T, 68, 2) and its reference (T, 68, 2).

    Frame 0 is left out by default: there the reference is the track itself.
    """
    distances = np.linalg.norm(track - reference, axis=-1)
    return float(np.nanmean(distances[1:] if skip_first else distances))


@dataclass(frozen=True)
class MotionStability:
    """What :func:`motion_stability` measured.

    Attributes:
        error_px: mean distance to the motion-mapped frame 0, per track kind (single, averaged, filtered).
        lag_frames: on the clip with the sudden move, how many frames each track trails the true motion
            (``streaming`` is the causal 1€ filter, for comparison).
        move_error_px: mean error over the sudden move and the 3 frames after it, per track kind (a filter
            that smears the move shows it here even with no lag at the peak).
        face_px: detector box width.
        frames: clip length.
    """

    error_px: dict[str, float]
    lag_frames: dict[str, float]
    move_error_px: dict[str, float]
    face_px: float
    frames: int

    def ratio(self, kind: str) -> float:
        """Error of ``kind`` as a fraction of the single pass's."""
        return self.error_px[kind] / self.error_px["single"]


def motion_stability(
    landmarker: Landmarker,
    portrait: np.ndarray,
    *,
    num_frames: int = 60,
    size: int = 512,
    zoom: float = 1.15,
    sudden_frame: int | None = None,
    beta: float = 0.05,
    num_shifts: int = 8,
) -> MotionStability:
    """Landmark error under a smooth known sub-pixel motion, and lag on the same clip with a sudden move.

    The portrait is warped (bicubic, :func:`vfx.align.motion.render_motion`) into ``num_frames`` frames of
    ``size``² by :func:`known_motion`; each track is compared with its own frame 0 carried through the motion.
    A second clip adds a 40 px move over 2 frames at ``sudden_frame`` (default: the middle) to measure lag.

    Args:
        landmarker: the back-end.
        portrait: (H, W, 3) float32 in [0, 1], e.g. :func:`vfx.demo.load_portrait` ("hopper": a 250 px face
            at the default zoom).
    """
    smooth = known_motion(num_frames, portrait.shape[:2], size, zoom=zoom)
    tracks = landmark_tracks(landmarker, render_motion(portrait, smooth, size), beta=beta, num_shifts=num_shifts)
    errors = {kind: stability_error(track, motion_reference(track[0], smooth))
              for kind, track in tracks.as_dict().items()}

    sudden_frame = num_frames // 2 if sudden_frame is None else sudden_frame
    sudden = known_motion(num_frames, portrait.shape[:2], size, zoom=zoom, sudden_frame=sudden_frame)
    moved = landmark_tracks(landmarker, render_motion(portrait, sudden, size), beta=beta, num_shifts=num_shifts)
    kinds = moved.as_dict() | {"streaming": smooth_landmarks_streaming(moved.averaged)}
    lags, move_errors = {}, {}
    window = slice(sudden_frame, sudden_frame + 5)
    for kind, track in kinds.items():
        truth = motion_reference(track[0], sudden)
        lags[kind] = measure_lag(truth, track)
        move_errors[kind] = float(np.linalg.norm(track[window] - truth[window], axis=-1).mean())
    return MotionStability(errors, lags, move_errors, tracks.face_px, num_frames)


@dataclass(frozen=True)
class FootageJitter:
    """High-frequency landmark residual of one clip, in inter-ocular distances (:func:`footage_jitter`).

    Attributes:
        all_iod: per track kind, the RMS residual of all 68 points (speech and blinks count as jitter here).
        rigid_iod: the same for the skull-fixed points only (:data:`RIGID_LANDMARKS`), which set the alignment:
            their jitter is what makes an aligned crop shimmer.
        interocular_px: the clip's median inter-ocular distance.
        frames: frames measured; faces: frames with a face.
    """

    all_iod: dict[str, float]
    rigid_iod: dict[str, float]
    interocular_px: float
    frames: int
    faces: int


def footage_jitter(tracks: LandmarkTracks, *, cutoff_frames: float = 6.0) -> FootageJitter:
    """The residual of each track after a zero-phase low-pass (``jitter_residual``), normalised by the IOD.

    Args:
        tracks: from :func:`landmark_tracks` on real footage.
        cutoff_frames: period of the fastest motion counted as real (6 frames: 4-5 Hz at 25-30 fps).
    """
    valid = tracks.valid
    eyes = tracks.averaged[valid, 42:48].mean(axis=1) - tracks.averaged[valid, 36:42].mean(axis=1)
    interocular = float(np.median(np.linalg.norm(eyes, axis=-1))) if valid.any() else float("nan")
    rigid = list(RIGID_LANDMARKS)
    all_iod, rigid_iod = {}, {}
    for kind, track in tracks.as_dict().items():
        all_iod[kind] = jitter_residual(track, cutoff_frames=cutoff_frames, valid=valid) / interocular
        rigid_iod[kind] = jitter_residual(track[:, rigid], cutoff_frames=cutoff_frames, valid=valid) / interocular
    return FootageJitter(all_iod, rigid_iod, interocular, len(valid), int(valid.sum()))

# --------------------------------------------------------------------------------------------------
# Measures of a filtered track (lag, jitter residual)
# --------------------------------------------------------------------------------------------------


def measure_lag(reference: np.ndarray, filtered: np.ndarray, *, max_lag: int = 12) -> float:
    """How many frames ``filtered`` trails ``reference``: the peak of the cross-correlation of their velocities.

    Both tracks are differenced frame to frame (so a constant offset does not matter and a sudden move is a
    sharp velocity pulse); the velocities of all coordinates are cross-correlated at integer shifts
    ``-max_lag..max_lag``, and the peak is refined to a fraction of a frame with a parabola through it and
    its two neighbours. A zero-phase filter gives 0; a causal filter a positive lag; a filter that anticipates
    a negative one. It locates the peak of the motion, not its tail: a filter that arrives on time but
    then creeps into place (a smear) is better seen in the per-frame error right after the move. The
    measure is meant for clips with clear motion (a head move); on a still shot it only measures the noise.

    Args:
        reference: (T, ...) the true or the raw track.
        filtered: (T, ...) the filtered track, same shape. NaN (frames without a face) counts as no motion.
        max_lag: largest shift tried, in frames.

    Returns:
        The lag in frames, positive when ``filtered`` is late.

    Raises:
        ValueError: the shapes differ or the tracks are shorter than 3 frames.

    Example:
        >>> step = np.repeat([0.0, 10.0], 10)
        >>> measure_lag(step, np.roll(step, 2))
        2.0
    """
    ref = np.asarray(reference, dtype=np.float64)
    out = np.asarray(filtered, dtype=np.float64)
    if ref.shape != out.shape or ref.ndim < 1 or ref.shape[0] < 3:
        raise ValueError(
            f"reference and filtered must be the same (T, ...) shape with T >= 3; got {ref.shape}, {out.shape}"
        )
    v_ref = np.nan_to_num(np.diff(ref, axis=0).reshape(ref.shape[0] - 1, -1))
    v_out = np.nan_to_num(np.diff(out, axis=0).reshape(out.shape[0] - 1, -1))
    n = v_ref.shape[0]
    max_lag = int(min(max_lag, n - 1))
    shifts = np.arange(-max_lag, max_lag + 1)
    # c[k] = sum_t v_ref[t] . v_out[t + k]: the filtered velocity k frames later matches the reference's.
    corr = np.array([np.sum(v_ref[max(0, -k) : n - max(0, k)] * v_out[max(0, k) : n - max(0, -k)]) for k in shifts])
    peak = int(np.argmax(corr))
    lag = float(shifts[peak])
    if 0 < peak < len(corr) - 1:
        left, centre, right = corr[peak - 1], corr[peak], corr[peak + 1]
        curvature = left - 2 * centre + right
        if curvature < 0:
            lag += float(0.5 * (left - right) / curvature)
    return lag


def jitter_residual(track: np.ndarray, *, cutoff_frames: float, valid: np.ndarray | None = None) -> float:
    """RMS of :func:`high_pass` over every coordinate of every valid frame.

    Use it on real footage, where the truth is unknown, to compare raw and smoothed tracks; divide by the
    inter-ocular distance to compare shots.

    Returns:
        The residual's root mean square per coordinate, in the track's units (per 2-D point: multiply by
        sqrt(2)). 0.0 when no run is long enough.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> noise = rng.normal(0, 0.5, (200, 68, 2))
        >>> 0.4 < jitter_residual(noise, cutoff_frames=8) < 0.5
        True
    """
    residual = high_pass(track, cutoff_frames=cutoff_frames, valid=valid)
    finite = residual[np.isfinite(residual)]
    return float(np.sqrt(np.mean(finite**2))) if finite.size else 0.0
