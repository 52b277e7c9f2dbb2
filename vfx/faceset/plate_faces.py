"""The plate's own faces, tracked once per shot and shared by every stage that edits the plate (swap, retouch).

The whole shot (and any frames rendered beyond it) is tracked and smoothed even when only some frames are
rendered, so a shot rendered in pieces gets the same face positions as one rendered at once. The faces are
kept in a faceset folder beside the shot's first configured frame output, ``<folder>/<shot>_plate_faces``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from vfx.align.similarity import compose, transform_points
from vfx.errors import ConfigError
from vfx.faceset.cuts import DETECTOR, read_cuts
from vfx.faceset.extract import (
    ExtractConfig,
    MediaSource,
    extract_faceset,
    extract_landmarks,
    faceset_info,
)
from vfx.faceset.store import FaceRecord, Faceset, FacesetInfo
from vfx.io.plate import Plate
from vfx.shot.frames import FrameRange
from vfx.shot.layout import plate_faces_folder
from vfx.shot.schema import Shot

__all__ = ["DETECT_LINES", "MIN_FACE_FRACTION", "extract_plate_landmarks", "rescale_crop",
           "track_plate_faces"]

DETECT_LINES = 540
"""The plate's faces are searched for on a copy about this many lines high (never upscaled)."""
MIN_FACE_FRACTION = 0.25
"""On plates smaller than that, faces down to this fraction of the frame's short side are found."""


def track_plate_faces(shot: Shot, plate: Plate, frames: FrameRange, *, crop_size: int, track: int = 0,
                      workers: int = 0, reuse: bool = True) -> dict[int, FaceRecord]:
    """The plate's faces of ``track``, by frame: extracted on the first call, read back after.

    Args:
        shot: the shot (its plate and its whole frame range are tracked).
        plate: the open plate.
        frames: frames that must be covered, beyond the shot's own.
        crop_size: the crop side the caller works at. The records' matrices and crop landmarks are for a
            crop of this side, whatever size the faceset's own crops were cut at (a faceset made by the swap
            at the model's size serves a retouch at another).
        track: the face track to return (0: the main face).
        workers: processes for the extraction (0: one per core).
        reuse: read a complete index as it is; False runs the extraction, which redoes only what is missing
            (crops deleted since, say).
    """
    folder, source, tracked, config = _plate_extraction(shot, plate, frames, crop_size=crop_size, track=track,
                                                       workers=workers)
    current = _cuts_current(folder, config.cuts)
    records = _complete_index(folder, faceset_info(source, plate.kind, config), tracked) if reuse and current else None
    if records is None:
        extract_faceset(source, folder, frames=tracked, config=config)
        records = list(Faceset.open(folder).records())
    stored = config.crop_size
    tracks = sorted({r.track for r in records if r.quality != "no_face"})
    if track not in tracks and (track != 0 or tracks):
        raise ConfigError(f"The plate has no face track {track}",
                          expected="a track the plate's faces were linked into: "
                          + (", ".join(map(str, tracks)) if tracks else "none (no face found in the shot)"),
                          found=f"track {track}",
                          fix="set swap.track (or --track) to one of those; the extract contact sheet shows them")
    records = {r.frame: r for r in records if r.quality != "no_face" and r.track == track}
    if stored == crop_size:
        return records
    scale = rescale_crop(stored, crop_size)
    return {f: r if r.matrix is None else replace(r, matrix=compose(r.matrix, scale),
                                                  crop_landmarks=transform_points(r.crop_landmarks, scale))
            for f, r in records.items()}


def _cuts_current(folder: Path, given: tuple[int, ...] | None) -> bool:
    """Whether the faces kept in ``folder`` were tracked with the shot's cuts: those of the shot file, or found
    (a faces folder from before cuts were kept is redone)."""
    kept = read_cuts(folder)
    if kept is None:
        return False
    if given is None:
        return kept.source == DETECTOR
    frames = FrameRange.parse(kept.frames)
    return kept.source == "shot file" and kept.cuts == tuple(c for c in sorted(set(given))
                                                             if c in frames and c != frames.first)


def _complete_index(folder: Path, info: FacesetInfo, frames: FrameRange) -> list[FaceRecord] | None:
    """The faceset's records when it was extracted with these settings and covers ``frames``, else None.

    Every task of a shot reads the plate's faces; once one run has tracked them, the others need neither the
    landmarker (a second to load) nor another pass over the shot's crops.
    """
    if not (folder / Faceset.INDEX_FILE).is_file():
        return None
    faceset = Faceset.open(folder)
    if faceset.info.identity() != info.identity():
        return None  # other settings: extract_faceset explains the conflict
    records = list(faceset.records())
    return records if set(frames) <= {r.frame for r in records} else None


def extract_plate_landmarks(shot: Shot, plate: Plate, frames: FrameRange, *, crop_size: int, track: int = 0) -> int:
    """Landmark the cache chunks of the plate's faces that hold ``frames`` (a farm extract task); the tracks,
    the temporal filter and the crops come later, from one :func:`track_plate_faces` over the whole shot.
    Returns the number of frames landmarked."""
    folder, source, tracked, config = _plate_extraction(shot, plate, frames, crop_size=crop_size, track=track,
                                                       workers=1)
    return extract_landmarks(source, folder, frames=tracked, only=frames, config=config)


def _plate_extraction(shot: Shot, plate: Plate, frames: FrameRange, *, crop_size: int, track: int,
                      workers: int) -> tuple[Path, MediaSource, FrameRange, ExtractConfig]:
    """Where the plate's faces go, the source, the frames tracked (the whole shot and ``frames``), and the
    settings: the one recipe both the whole-shot extraction and a farm extract task follow."""
    folder = plate_faces_folder(shot)
    stored = Faceset.open(folder).info.crop_size if (folder / Faceset.INFO_FILE).is_file() else crop_size
    tracked = FrameRange(tuple(shot.plate.frames or plate.frame_range) + tuple(frames))
    short_side = min(plate.size)
    source = MediaSource(path=str(shot.plate.path), start_frame=shot.plate.start_frame,
                         colorspace=shot.plate.colorspace, shot=shot.name)
    # Full-frame search at about 540 lines: half size on HD (faces from ~160 px), full size on small plates,
    # where a face may be under 100 px.
    detect_scale = min(1.0, DETECT_LINES / short_side)
    config = ExtractConfig(crop_size=stored, track=track, workers=workers, detect_scale=detect_scale,
                           min_face_px=MIN_FACE_FRACTION * short_side if short_side < DETECT_LINES else None,
                           pixel_aspect=plate.pixel_aspect, cuts=shot.plate.cut_list)
    return folder, source, tracked, config


def rescale_crop(from_size: int, to_size: int) -> np.ndarray:
    """The (2, 3) map from a ``from_size`` crop's pixels to the same framing at ``to_size`` (pixel centres)."""
    k = to_size / from_size
    return np.array([[k, 0.0, (k - 1) / 2], [0.0, k, (k - 1) / 2]])
