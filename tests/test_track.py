"""Face tracking on synthetic detections: faces are a fixed 68-point layout placed at known positions."""

import numpy as np
import pytest

from vfx.errors import ConfigError, FrameRangeError
from vfx.face.smooth import smooth_landmarks
from vfx.face.track import FaceTracker, Track, fill_gaps, rank_tracks, track_score
from vfx.face.types import Face, FaceBox


def template(width: float) -> np.ndarray:
    """(68, 2) a plausible iBUG-ordered face centred on the origin, ``width`` px wide."""
    s = width / 2
    a = np.linspace(np.pi, 0, 17)
    jaw = np.stack([s * np.cos(a), s * (1.15 * np.sin(a) - 0.15)], 1)
    brows = np.stack([np.r_[np.linspace(-0.8, -0.2, 5), np.linspace(0.2, 0.8, 5)] * s, np.full(10, -0.55 * s)], 1)
    nose = np.stack([np.r_[np.zeros(4), np.linspace(-0.18, 0.18, 5)] * s,
                     np.r_[np.linspace(-0.4, -0.05, 4), np.full(5, 0.06)] * s], 1)
    t = np.pi - np.arange(6) * np.pi / 3
    eyes = np.concatenate([np.stack([cx * s + 0.15 * s * np.cos(t), -s * (0.3 + 0.06 * np.sin(t))], 1)
                           for cx in (-0.4, 0.4)])
    u, v = np.pi - np.arange(12) * np.pi / 6, np.pi - np.arange(8) * np.pi / 4
    mouth = np.concatenate([np.stack([0.38 * s * np.cos(u), s * (0.45 - 0.12 * np.sin(u))], 1),
                            np.stack([0.26 * s * np.cos(v), s * (0.45 - 0.05 * np.sin(v))], 1)])
    return np.concatenate([jaw, brows, nose, eyes, mouth])


def make_face(cx: float, cy: float, width: float = 260.0, score: float = 0.9) -> Face:
    landmarks = template(width) + [cx, cy]
    return Face(box=FaceBox.around(landmarks, score).scaled(1.1), landmarks=landmarks, score=score)


def test_update_sets_ids_in_order_of_appearance():
    tracker = FaceTracker()
    out = tracker.update(1001, [make_face(400, 500), make_face(1400, 500)])
    assert [face.track_id for face in out] == [0, 1]
    out = tracker.update(1002, [make_face(1405, 500), make_face(402, 500), make_face(900, 300, width=150)])
    assert [face.track_id for face in out] == [1, 0, 2]
    assert out[0].landmarks is not None and out[0].box == make_face(1405, 500).box
    with pytest.raises(FrameRangeError, match="increasing"):
        tracker.update(1002, [])


def test_crossing_faces_keep_their_identities():
    """Two faces walk through each other; at the crossing each is as near the other's last place as its own."""
    tracker = FaceTracker()
    rng = np.random.default_rng(0)
    for i, frame in enumerate(range(1001, 1041)):
        a = make_face(300 + 30 * i, 500, width=260)
        b = make_face(1470 - 30 * i, 520, width=220)
        faces = [a, b] if rng.random() < 0.5 or i == 0 else [b, a]  # detector order carries no identity
        tracker.update(frame, faces)
    tracks = tracker.finish(rank=False)
    assert [track.track_id for track in tracks] == [0, 1]
    for track, direction in zip(tracks, (1, -1)):
        xs = [track.faces[frame].box.centre[0] for frame in track.frames]
        assert len(xs) == 40 and np.all(direction * np.diff(xs) > 0)


def test_sudden_move_keeps_identity():
    tracker = FaceTracker()
    xs = [400, 400, 400, 440, 440, 480, 520, 520]  # 40 px jumps, unpredictable from the frames before
    ids = [tracker.update(frame, [make_face(x, 500)])[0].track_id for frame, x in enumerate(xs, start=1001)]
    assert ids == [0] * len(xs)


def test_short_dropout_keeps_identity_and_is_interpolated():
    tracker = FaceTracker(max_missed=3)
    truth = {frame: make_face(400 + 5 * (frame - 1001), 500) for frame in range(1001, 1021)}
    for frame, face in truth.items():
        out = tracker.update(frame, [] if frame in (1010, 1011) else [face])
        assert all(f.track_id == 0 for f in out)
    (track,) = tracker.finish()
    assert (track.first, track.last) == (1001, 1020)
    assert track.missing_frames() == [1010, 1011]
    filled = fill_gaps(track, max_gap=3)
    assert filled.missing_frames() == [] and track.missing_frames() == [1010, 1011]  # the input is not modified
    for frame in (1010, 1011):
        face = filled.faces[frame]
        assert face.interpolated and face.track_id == 0
        np.testing.assert_allclose(face.landmarks, truth[frame].landmarks, atol=1e-9)  # the motion is linear
        np.testing.assert_allclose(face.box.as_array(), truth[frame].box.as_array(), atol=1e-9)
    assert not filled.faces[1009].interpolated


def test_long_dropout_starts_a_new_track_and_stays_empty():
    tracker = FaceTracker(max_missed=3)
    for frame in range(1001, 1021):
        tracker.update(frame, [] if 1008 <= frame <= 1012 else [make_face(400, 500)])  # 5 frames missing
    tracks = tracker.finish(rank=False)
    assert [(t.track_id, t.first, t.last) for t in tracks] == [(0, 1001, 1007), (1, 1013, 1020)]
    # With a longer memory the same dropout keeps the id, but a gap longer than max_gap is not filled.
    tracker = FaceTracker(max_missed=12)
    for frame in range(1001, 1021):
        tracker.update(frame, [] if 1008 <= frame <= 1012 else [make_face(400, 500)])
    (track,) = tracker.finish()
    assert fill_gaps(track, max_gap=3).missing_frames() == list(range(1008, 1013))
    with pytest.raises(ConfigError):
        fill_gaps(track, max_gap=-1)


def test_a_one_frame_false_detection_does_not_steal_the_id():
    tracker = FaceTracker(min_faces=2)
    for frame in range(1001, 1011):
        faces = [make_face(400 + 4 * (frame - 1001), 500)]
        if frame == 1004:
            faces = [make_face(1300, 300, width=120)]  # the face is missed and something else fires
        if frame == 1006:
            # Garbage overlapping the face: the same box, landmarks squashed into one corner.
            real = faces[0]
            squashed = real.landmarks * 0.3 + np.array(real.box.centre) * 0.7 + 60
            junk = Face(box=real.box.shifted(10, 5), landmarks=squashed)
            faces = [junk, real]
        if frame == 1008:
            # The face is missed and garbage overlaps where it should be.
            real = make_face(400 + 4 * (frame - 1001), 500)
            faces = [Face(box=real.box, landmarks=real.landmarks * 0.3 + np.array(real.box.centre) * 0.7 - 60)]
        out = tracker.update(frame, faces)
        if frame == 1004:
            assert out[0].track_id == 1
        elif frame == 1006:
            assert [f.track_id for f in out] == [2, 0]
        elif frame == 1008:
            assert out[0].track_id == 3
        else:
            assert out[0].track_id == 0
    tracks = tracker.finish()
    assert len(tracks) == 1 and tracks[0].missing_frames() == [1004, 1008]  # the one-frame tracks are dropped


def test_search_region_covers_tracks_with_margin_and_is_clipped():
    tracker = FaceTracker(max_missed=2)
    assert tracker.search_region((1080, 1920)) is None
    face = make_face(960, 540, width=200)
    tracker.update(1001, [face])
    region = tracker.search_region((1080, 1920), margin=0.5)
    box = face.box
    assert region is not None
    assert region.x0 <= box.x0 - 0.5 * box.width and region.x1 >= box.x1 + 0.5 * box.width
    assert region.y0 <= box.y0 - 0.5 * box.height and region.y1 >= box.y1 + 0.5 * box.height
    assert region.width < 1920 and region.height < 1080  # not the whole frame
    # Near the corner the region is clipped to the frame.
    tracker.update(1002, [make_face(60, 80, width=200)])  # too far to match: a new track, the old one waits
    region = tracker.search_region((1080, 1920), margin=0.5)
    assert (region.x0, region.y0) == (0.0, 0.0) and region.x1 <= 1920 and region.y1 <= 1080
    assert region.x1 >= box.x1 + 0.5 * box.width  # still covers the waiting track
    # Once every track is closed, detect on the full frame again.
    for frame in range(1003, 1006):
        tracker.update(frame, [])
    assert tracker.search_region((1080, 1920)) is None


def test_search_region_follows_a_moving_face():
    tracker = FaceTracker()
    for i, frame in enumerate(range(1001, 1004)):
        tracker.update(frame, [make_face(400 + 40 * i, 500, width=200)])
    region = tracker.search_region((1080, 1920), margin=0.2)
    nxt = make_face(400 + 40 * 3, 500, width=200).box  # where the face will be on the next frame
    assert region.x0 <= nxt.x0 and region.x1 >= nxt.x1 and region.y0 <= nxt.y0 and region.y1 >= nxt.y1


def test_rank_tracks_orders_by_area_times_duration():
    def track(track_id, width, frames):
        return Track(track_id, {f: make_face(500, 500, width=width).with_track(track_id) for f in frames})

    small_long = track(0, 100, range(1001, 1061))  # 60 frames of a small face
    large_short = track(1, 300, range(1010, 1016))  # 6 frames of a close-up: 9x the area, a tenth of the time
    large_long = track(2, 260, range(1020, 1060))
    ranked = rank_tracks([small_long, large_short, large_long])
    assert [t.first for t in ranked] == [1020, 1001, 1010]
    assert [t.track_id for t in ranked] == [0, 1, 2]
    assert all(face.track_id == t.track_id for t in ranked for face in t.faces.values())
    assert track_score(ranked[0]) > track_score(ranked[1]) > track_score(ranked[2])
    assert small_long.track_id == 0  # the inputs are not modified
    # Interpolated faces do not count, so filling gaps cannot change the ranking.
    gappy = Track(5, {f: face for f, face in large_long.faces.items() if f % 3})
    assert track_score(fill_gaps(gappy)) == track_score(gappy)


def test_finish_makes_the_main_face_track_zero():
    tracker = FaceTracker()
    for frame in range(1001, 1031):
        faces = [make_face(300, 400, width=120)]  # a background face, there first
        if frame >= 1005:
            faces.append(make_face(1200, 500, width=400))  # the lead, close up, from frame 1005
        tracker.update(frame, faces)
    tracks = tracker.finish()
    assert [t.first for t in tracks] == [1005, 1001]
    assert tracks[0].faces[1010].box.width > tracks[1].faces[1010].box.width
    assert tracker.finish() == [] and tracker.search_region((1080, 1920)) is None


def test_landmarks_array_feeds_the_smoother():
    tracker = FaceTracker()
    rng = np.random.default_rng(1)
    truth = {}
    for frame in range(1001, 1041):
        face = make_face(400 + 3 * (frame - 1001), 500)
        truth[frame] = face.landmarks
        if frame not in (1020, 1021):
            noisy = face.landmarks + rng.normal(0, 0.5, (68, 2))
            tracker.update(frame, [Face(box=face.box, landmarks=noisy)])
        else:
            tracker.update(frame, [])
    (track,) = tracker.finish()
    frames = range(998, 1041)  # frames before the track starts are simply invalid
    landmarks, valid = track.landmarks_array(frames)
    assert landmarks.shape == (43, 68, 2) and valid.sum() == 38
    assert not valid[:3].any() and not valid[22:24].any() and np.isnan(landmarks[22]).all()
    smoothed = track.with_landmarks(frames, smooth_landmarks(landmarks, valid=valid))
    assert smoothed.frames == track.frames and smoothed.faces[1010].box == track.faces[1010].box
    err_raw = np.mean([np.linalg.norm(track.faces[f].landmarks - truth[f], axis=1).mean() for f in track.frames])
    err_smooth = np.mean([np.linalg.norm(smoothed.faces[f].landmarks - truth[f], axis=1).mean() for f in track.frames])
    assert err_smooth < 0.5 * err_raw
    with pytest.raises(ValueError):
        track.with_landmarks(frames, landmarks[:-1])


def test_bad_tracker_settings_are_refused():
    with pytest.raises(ConfigError):
        FaceTracker(iou_threshold=1.5)
    with pytest.raises(ConfigError):
        FaceTracker(max_missed=-1)
    with pytest.raises(ConfigError):
        FaceTracker(max_landmark_distance=0)
