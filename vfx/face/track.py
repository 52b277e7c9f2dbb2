"""Face tracks: which detection on which frame is the same face.

Faces are detected frame by frame; a swap needs them joined into tracks, so that one face keeps one
persona, its landmarks can be smoothed over time (:func:`vfx.face.smooth.smooth_landmarks`), short
detector dropouts can be filled, and the shot file can name a face (``swap.track: 0`` is the main face).

:class:`FaceTracker` joins detections online, frame by frame, by box overlap and landmark distance to each
track's predicted position. :func:`fill_gaps` fills short dropouts; :func:`rank_tracks` numbers the finished
tracks so that 0 is the shot's main face.

Convention:
    - Frames are integers and increase from one :meth:`FaceTracker.update` to the next; a frame that is
      skipped counts as a frame without faces.
    - Boxes and landmarks are plate pixels (see :mod:`vfx.face.types`). Landmark distances are in units of
      the track's inter-ocular distance, so the same thresholds work for a close-up and a wide shot.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import linear_sum_assignment

from vfx.errors import ConfigError, FrameRangeError, ShapeError
from vfx.face.types import NUM_LANDMARKS, Face, FaceBox

if TYPE_CHECKING:
    from vfx.face.landmark import Landmarker

__all__ = ["Track", "FaceTracker", "fill_gaps", "find_faces", "rank_tracks", "seed_boxes", "track_score", "FULL_FRAME_EVERY"]

log = logging.getLogger(__name__)

#: Width a tracked face is shrunk to for detection in its region: dlib's HOG window is 80 px, and the face may
#: shrink a little from one frame to the next.
_REGION_FACE_PX = 100.0

FULL_FRAME_EVERY = 12
"""How often (in frames) a tracking pipeline also searches the whole frame, for faces entering the shot."""

_FORBIDDEN = 1e6  # cost of a pairing the gates reject; far above any allowed cost (at most 1 + weight * max distance)


@dataclass
class Track:
    """One face followed through a shot.

    Attributes:
        track_id: the track's number: order of appearance while tracking, main face first after
            :func:`rank_tracks`.
        faces: frame -> face; every face carries ``track_id``. Frames without a face are absent.

    Convention:
        - ``first``/``last`` are inclusive; frames between them without a face are :meth:`missing_frames`
    """

    track_id: int
    faces: dict[int, Face] = field(default_factory=dict)

    @property
    def first(self) -> int:
        """The first frame with a face."""
        return min(self.faces)

    @property
    def last(self) -> int:
        """The last frame with a face (inclusive)."""
        return max(self.faces)

    @property
    def frames(self) -> list[int]:
        """The frames with a face, in order."""
        return sorted(self.faces)

    def __len__(self) -> int:
        return len(self.faces)

    def missing_frames(self) -> list[int]:
        """Frames between ``first`` and ``last`` without a face (the track's gaps)."""
        if not self.faces:
            return []
        return [frame for frame in range(self.first, self.last + 1) if frame not in self.faces]

    def landmarks_array(self, frames: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The track's landmarks on ``frames`` (default ``first..last``), ready for the smoother.

        Returns:
            ``(landmarks, valid)``: (T, 68, 2) float64 plate pixels, NaN where the track has no face, and
            (T,) bool, True where it has one.

        Example:
            >>> from vfx.face.smooth import smooth_landmarks
            >>> landmarks, valid = track.landmarks_array()  # doctest: +SKIP
            >>> track = track.with_landmarks(range(track.first, track.last + 1),
            ...                              smooth_landmarks(landmarks, valid=valid))  # doctest: +SKIP
        """
        frames = list(range(self.first, self.last + 1)) if frames is None else [int(f) for f in frames]
        landmarks = np.full((len(frames), NUM_LANDMARKS, 2), np.nan)
        valid = np.zeros(len(frames), dtype=bool)
        for row, frame in enumerate(frames):
            face = self.faces.get(frame)
            if face is not None:
                landmarks[row] = face.landmarks
                valid[row] = True
        return landmarks, valid

    def with_landmarks(self, frames: Iterable[int], landmarks: np.ndarray) -> Track:
        """A copy whose faces on ``frames`` carry ``landmarks`` (e.g. smoothed ones); other faces are kept.

        Rows for frames where the track has no face are ignored, so the output of
        :func:`~vfx.face.smooth.smooth_landmarks` on :meth:`landmarks_array` can be passed straight back.
        Boxes are kept: they are the detector's, and alignment follows the landmarks.

        Raises:
            ValueError: ``landmarks`` is not (len(frames), 68, 2).
        """
        frames = [int(f) for f in frames]
        landmarks = np.asarray(landmarks, dtype=np.float64)
        if landmarks.shape != (len(frames), NUM_LANDMARKS, 2):
            raise ShapeError(
                f"landmarks must be ({len(frames)}, {NUM_LANDMARKS}, 2), one row per frame; got {landmarks.shape}"
            )
        faces = dict(self.faces)
        for row, frame in enumerate(frames):
            if frame in faces:
                faces[frame] = replace(faces[frame], landmarks=landmarks[row].copy())
        return Track(self.track_id, faces)

    def renumbered(self, track_id: int) -> Track:
        """A copy with a new ``track_id``, on the track and on each of its faces."""
        return Track(track_id, {frame: face.with_track(track_id) for frame, face in self.faces.items()})


def track_score(track: Track) -> float:
    """How much a track matters to the shot: its detected face area summed over frames, in pixel-frames.

    That is the mean box area times the number of frames the face was seen, so a face that is both large
    and on screen long ranks first, and a brief false detection ranks last. Interpolated faces
    (:func:`fill_gaps`) are not counted, so the ranking does not depend on whether gaps were filled.
    """
    return float(sum(face.box.width * face.box.height for face in track.faces.values() if not face.interpolated))


def rank_tracks(tracks: Sequence[Track]) -> list[Track]:
    """Renumber tracks by importance: 0 is the shot's main face, the one ``swap.track: 0`` means.

    Importance is :func:`track_score`: total face area × duration, i.e. box area summed over the frames
    where the face was detected. Ties go to the track that appeared first. The returned tracks are copies
    numbered 0, 1, 2, ... in that order, with every face's ``track_id`` updated.

    Example:
        >>> ranked = rank_tracks(tracker.finish(rank=False))  # doctest: +SKIP
        >>> ranked[0].track_id  # doctest: +SKIP
        0
    """
    order = sorted(tracks, key=lambda track: (-track_score(track), track.first if track.faces else 0, track.track_id))
    return [track.renumbered(new_id) for new_id, track in enumerate(order)]


def _lerp_box(a: FaceBox, b: FaceBox, t: float) -> FaceBox:
    return FaceBox(*(float(u + t * (v - u)) for u, v in zip(a.as_array(), b.as_array())), score=min(a.score, b.score))


def fill_gaps(track: Track, *, max_gap: int = 3) -> Track:
    """Fill short dropouts of a track by linear interpolation of landmarks and boxes.

    A gap of up to ``max_gap`` frames between two detected faces is a detector miss (motion blur, a hand
    passing): its frames get faces interpolated linearly in time between the faces on either side, marked
    ``interpolated=True`` with the lower of the two scores. Longer gaps stay empty: those frames have no
    face, and later stages leave the plate untouched there.

    Args:
        track: the track; not modified.
        max_gap: the longest gap, in frames, that is filled. 0 fills nothing.

    Returns:
        A new track with the same id.

    Raises:
        ConfigError: ``max_gap`` is negative.
    """
    if max_gap < 0:
        raise ConfigError("Invalid max_gap", expected="0 or more frames", found=str(max_gap), fix="use 3")
    faces = dict(track.faces)
    frames = track.frames
    for before, after in zip(frames, frames[1:]):
        gap = after - before - 1
        if gap == 0 or gap > max_gap:
            continue
        a, b = track.faces[before], track.faces[after]
        for frame in range(before + 1, after):
            t = (frame - before) / (after - before)
            faces[frame] = Face(
                box=_lerp_box(a.box, b.box, t),
                landmarks=a.landmarks + t * (b.landmarks - a.landmarks),
                score=min(a.score, b.score),
                track_id=track.track_id,
                interpolated=True,
            )
    return Track(track.track_id, dict(sorted(faces.items())))


@dataclass
class _Active:
    """A track the tracker may still extend, with what it needs to predict the next position."""

    track: Track
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # px per frame, of the landmark centroid

    def predict(self, frame: int) -> tuple[FaceBox, np.ndarray]:
        """The last face's box and landmarks moved on at constant velocity to ``frame``."""
        last = self.track.faces[self.track.last]
        dx, dy = self.velocity * (frame - self.track.last)
        return last.box.shifted(float(dx), float(dy)), last.landmarks + np.array([dx, dy])


class FaceTracker:
    """Join per-frame face detections into tracks, online.

    Each :meth:`update` matches the frame's faces to the active tracks with the Hungarian algorithm
    (``scipy.optimize.linear_sum_assignment``) on the cost ``(1 - IoU) + landmark_weight * d``, where IoU is
    between the face's box and the track's predicted box and ``d`` is the mean distance between the face's
    landmarks and the track's predicted landmarks divided by the track's inter-ocular distance. A pairing is
    allowed only when both cues agree (IoU >= ``iou_threshold`` and ``d`` <= ``max_landmark_distance``), so a
    false detection overlapping the face but with landmarks elsewhere, or the reverse, cannot take a track.

    The prediction moves the track's last face on at the speed of its landmark centroid between its last
    two detections. Without it, two faces crossing paths swap identities at the crossing, where each face
    is as close to the other's last position as to its own.

    A face that matches no track starts a new one; ids are given in order of appearance. A track that gets
    no face survives ``max_missed`` frames (a short occlusion keeps its identity; :func:`fill_gaps` fills the
    short ones) and is closed after that: the same face coming back later is a new track.

    The ids :meth:`update` gives are provisional; :meth:`finish` renumbers the tracks with :func:`rank_tracks`
    by default, so that the shot's main face is track 0 whatever order the faces appeared in.

    Args:
        iou_threshold: least box overlap with the predicted box for a match.
        max_landmark_distance: largest mean landmark distance to the prediction for a match, in inter-ocular
            distances. An unpredicted 40 px jump of a face with 100 px between the eyes is 0.4; a broken
            landmark fit, or another face, is well over 0.6.
        max_missed: frames a track may go without a face before it is closed (12: half a second at 24 fps).
        landmark_weight: weight of the landmark distance against ``1 - IoU`` in the cost.
        min_faces: tracks with fewer detected faces are dropped by :meth:`finish` as false detections (1 keeps all).

    Example:
        >>> tracker = FaceTracker()
        >>> for frame in plate.frame_range:  # doctest: +SKIP
        ...     region = tracker.search_region(plate.size)
        ...     faces = tracker.update(frame, detect(plate.read(frame), region))
        >>> tracks = tracker.finish()  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        iou_threshold: float = 0.3,
        max_landmark_distance: float = 0.6,
        max_missed: int = 12,
        landmark_weight: float = 1.0,
        min_faces: int = 1,
    ) -> None:
        if not 0.0 <= iou_threshold < 1.0:
            raise ConfigError("Invalid iou_threshold", expected="0 <= iou_threshold < 1", found=str(iou_threshold),
                              fix="use 0.3")
        if not max_landmark_distance > 0:
            raise ConfigError("Invalid max_landmark_distance", expected="a positive number of inter-ocular distances",
                              found=str(max_landmark_distance), fix="use 0.6")
        if max_missed < 0 or min_faces < 1 or landmark_weight < 0:
            raise ConfigError("Invalid tracker settings",
                              expected="max_missed >= 0, min_faces >= 1, landmark_weight >= 0",
                              found=f"max_missed={max_missed}, min_faces={min_faces}, "
                                    f"landmark_weight={landmark_weight}",
                              fix="use max_missed=12, min_faces=1, landmark_weight=1.0")
        self.iou_threshold = float(iou_threshold)
        self.max_landmark_distance = float(max_landmark_distance)
        self.max_missed = int(max_missed)
        self.landmark_weight = float(landmark_weight)
        self.min_faces = int(min_faces)
        self._active: list[_Active] = []
        self._closed: list[Track] = []
        self._next_id = 0
        self._frame: int | None = None

    @property
    def active_tracks(self) -> list[Track]:
        """The tracks that may still be extended, in id order."""
        return [active.track for active in self._active]

    def _close_stale(self, next_frame: int) -> None:
        """Close the tracks that could no longer match on ``next_frame``: they would have gone more than
        ``max_missed`` frames without a face by then."""
        keep = []
        for active in self._active:
            if next_frame - active.track.last - 1 > self.max_missed:
                log.debug("Track %d closed after frame %d (no face for %d frames)", active.track.track_id,
                          active.track.last, self.max_missed + 1)
                self._closed.append(active.track)
            else:
                keep.append(active)
        self._active = keep

    def _cost(self, active: _Active, face: Face, frame: int) -> float:
        box, landmarks = active.predict(frame)
        iou = box.iou(face.box)
        scale = active.track.faces[active.track.last].interocular
        if not scale > 0:
            scale = max(box.width, box.height) / 2.5  # degenerate landmarks: a box-size stand-in for the eye distance
        distance = float(np.linalg.norm(face.landmarks - landmarks, axis=1).mean()) / scale
        if iou < self.iou_threshold or distance > self.max_landmark_distance:
            return _FORBIDDEN
        return (1.0 - iou) + self.landmark_weight * distance

    def update(self, frame: int, faces: Sequence[Face]) -> list[Face]:
        """Assign this frame's faces to tracks.

        Args:
            frame: the frame number; larger than the previous call's.
            faces: the faces detected on it (their ``track_id`` is ignored).

        Returns:
            The same faces, in the same order, with ``track_id`` set.

        Raises:
            FrameRangeError: ``frame`` is not after the previous frame.
        """
        frame = int(frame)
        if self._frame is not None and frame <= self._frame:
            raise FrameRangeError("Frames must reach the face tracker in increasing order",
                                  expected=f"a frame after {self._frame}", found=str(frame),
                                  fix="process a shot's frames in order, or use one tracker per frame range")
        self._frame = frame
        self._close_stale(frame)

        assigned: list[_Active | None] = [None] * len(faces)
        if self._active and faces:
            cost = np.array([[self._cost(active, face, frame) for face in faces] for active in self._active])
            for row, col in zip(*linear_sum_assignment(cost)):
                if cost[row, col] < _FORBIDDEN:
                    assigned[col] = self._active[row]

        out = []
        for face, active in zip(faces, assigned):
            if active is None:
                active = _Active(Track(self._next_id))
                self._next_id += 1
                self._active.append(active)
                log.debug("Track %d starts on frame %d", active.track.track_id, frame)
            else:
                previous = active.track.faces[active.track.last]
                step = (face.landmarks.mean(axis=0) - previous.landmarks.mean(axis=0)) / (frame - active.track.last)
                active.velocity = step
            tracked = face.with_track(active.track.track_id)
            active.track.faces[frame] = tracked
            out.append(tracked)
        # Close now what cannot match on the next frame, so search_region only covers live tracks.
        self._close_stale(frame + 1)
        return out

    def predicted_boxes(self) -> list[FaceBox]:
        """Each active track's last box moved on at the track's speed to the frame after the last update."""
        next_frame = (self._frame if self._frame is not None else 0) + 1
        return [active.predict(next_frame)[0] for active in self._active]

    def search_region(self, frame_size: tuple[int, int], margin: float = 0.5) -> FaceBox | None:
        """Where to detect first on the next frame: around the active tracks, or None for the full frame.

        The region is the union of every active track's last box and its predicted box for the next frame,
        each grown by ``margin`` times its width (height) on the left and right (top and bottom), clipped to
        the frame. Detecting there first is faster on a large plate; the pipeline should still detect on the
        full frame when the region finds fewer faces than there are tracks, and now and then to catch faces
        entering the shot.

        Args:
            frame_size: (height, width) of the plate in pixels.
            margin: growth on each side, as a fraction of the box size.

        Returns:
            The region in plate pixels, or None when no track is active (detect on the full frame).
        """
        height, width = frame_size
        if not self._active:
            return None
        boxes = [active.track.faces[active.track.last].box for active in self._active] + self.predicted_boxes()
        x0 = min(box.x0 - margin * box.width for box in boxes)
        y0 = min(box.y0 - margin * box.height for box in boxes)
        x1 = max(box.x1 + margin * box.width for box in boxes)
        y1 = max(box.y1 + margin * box.height for box in boxes)
        x0, x1 = max(0.0, x0), min(float(width), x1)
        y0, y1 = max(0.0, y0), min(float(height), y1)
        if x1 <= x0 or y1 <= y0:
            return None  # every track has drifted off the frame: search all of it
        return FaceBox(x0, y0, x1, y1)

    def finish(self, *, rank: bool = True) -> list[Track]:
        """Close every track and return them all (the tracker is then empty and may start a new shot).

        Args:
            rank: renumber with :func:`rank_tracks`, so track 0 is the main face of the shot (the shot file's
                ``swap.track: 0``). False keeps the ids :meth:`update` gave, in order of appearance.

        Returns:
            The tracks with at least ``min_faces`` detected faces, ranked (or in id order).
        """
        tracks = sorted(self._closed + [active.track for active in self._active], key=lambda track: track.track_id)
        self._active, self._closed, self._frame, self._next_id = [], [], None, 0
        kept = [track for track in tracks
                if sum(not face.interpolated for face in track.faces.values()) >= self.min_faces]
        if len(kept) < len(tracks):
            log.info("Dropped %d track(s) seen on fewer than %d frames", len(tracks) - len(kept), self.min_faces)
        return rank_tracks(kept) if rank else kept


def find_faces(landmarker: Landmarker, image: np.ndarray, tracker: FaceTracker, *, detect_scale: float = 0.5,
               full_frame: bool = False) -> list[FaceBox]:
    """Face boxes on one frame, found cheaply where the tracker expects them.

    While faces are tracked, detection runs only in the region around them (:meth:`FaceTracker.search_region`),
    on a copy shrunk so the smallest tracked face is about :data:`_REGION_FACE_PX` wide: dlib's cost grows
    with the pixels it scans, and a 300 px face is found as well at 100 px (5 ms instead of 15 ms on a 512²
    frame). The full frame (shrunk by ``detect_scale``) is searched when nothing is tracked, when the region
    finds fewer faces than there are tracks (a face lost or leaving), and when ``full_frame`` is set (the
    caller sets it every few frames so that faces entering the shot are picked up).

    Args:
        landmarker: the detector.
        image: the frame, (H, W, 3) uint8 RGB.
        tracker: the chunk's tracker, updated by the caller after landmarking.
        detect_scale: shrink factor of the full-frame search (0.5 finds faces from ~160 px).
        full_frame: search the whole frame as well.

    Returns:
        Boxes in plate pixels, highest score first.
    """
    region = tracker.search_region(image.shape[:2])
    active = tracker.active_tracks
    boxes: list[FaceBox] = []
    if region is not None and active:
        smallest = min(track.faces[track.last].box.width for track in active)
        scale = min(1.0, _REGION_FACE_PX / smallest)
        boxes = landmarker.detect(image, region=region, scale=scale)
    if full_frame or len(boxes) < len(active) or not active:
        whole = landmarker.detect(image, scale=detect_scale)
        # Keep the boxes the region search found and add the faces only the full frame has.
        boxes += [b for b in whole if all(b.iou(kept) < 0.3 for kept in boxes)]
        boxes.sort(key=lambda b: -b.score)
    return boxes


def seed_boxes(tracker: FaceTracker, boxes: Sequence[FaceBox], *, min_iou: float = 0.5) -> list[FaceBox]:
    """Detector boxes, each replaced by the predicted box of the track it confirms (IoU >= ``min_iou``).

    The tracked box is the previous frame's refined box moved on at the track's speed, so box refinement
    (:func:`vfx.face.landmark.refine_boxes`) starts next to where it will end instead of from a detector box
    that may be 20 % off, and converges to the same box frame after frame. New faces keep their detector box.
    Scores are the detections'.
    """
    predicted = tracker.predicted_boxes()
    out = []
    for box in boxes:
        best = max(predicted, key=box.iou, default=None)
        out.append(replace(best, score=box.score) if best is not None and box.iou(best) >= min_iou else box)
    return out
