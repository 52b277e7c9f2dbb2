"""`vfx extract`: from footage to a faceset.

Three passes over the shot, because the temporal filter needs whole tracks before anything is cropped:

1. landmarks, one long job per CPU core: detect (in a region around the tracked faces, shrunk so a face
   is ~100 px; the full frame every 12 frames or when a face is lost), refine each box from a first
   landmark pass (starting from the track's box), then 68 landmarks averaged over the refined box and its
   8 shifted copies ([0052] of the source patent). Every 10-frame chunk is cached in the faceset folder as
   it finishes, so a killed run resumes where it stopped.
2. tracks, in the parent: link faces across frames, fill short gaps, rank tracks (track 0 = the main
   face), smooth each track with the zero-lag filter.
3. crops, one job per core: align each face (eyes level, fixed inter-ocular distance), warp the crop,
   write it; crops already on disk are skipped. The index is written last.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import (
    FIRST_EXCEPTION,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np

from vfx.align import AlignTemplate, estimate_alignment, transform_points, warp_to_crop
from vfx.align.similarity import compose, desqueeze, invert_affine, pixel_aspect_matrix
from vfx.errors import ConfigError
from vfx.face.landmark import (
    Landmarker,
    create_landmarker,
    jitter_average_many,
    jitter_boxes,
    refine_boxes,
    to_uint8_rgb,
)
from vfx.face.smooth import check_window, smooth_landmarks
from vfx.face.track import (
    FULL_FRAME_EVERY,
    FaceTracker,
    Track,
    fill_gaps,
    find_faces,
    rank_tracks,
    seed_boxes,
)
from vfx.face.types import Face, FaceBox
from vfx.faceset.cuts import segments, shot_cuts
from vfx.faceset.store import FaceRecord, Faceset, FacesetInfo, apply_overrides, read_overrides
from vfx.io.color import WORKING_SPACE, resolve_colorspace, to_working
from vfx.io.image import write_image
from vfx.io.plate import Plate, check_plate_size, open_media
from vfx.shot.frames import DEFAULT_START_FRAME, FrameRange, is_sequence_pattern
from vfx.shot.layout import Place, check_apart
from vfx.utils.atomic import atomic_write_text, check_writable
from vfx.utils.progress import progress

__all__ = ["ExtractConfig", "ExtractSummary", "MediaSource", "extract_faceset", "extract_landmarks", "faceset_info"]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class ExtractConfig:
    """Settings of one extraction.

    Attributes:
        landmarker: ``"dlib"`` (offline default) or ``"fan"`` (face-alignment; weights in ``models_dir``).
        crop_size: aligned crop size r, a power of two up to 1024.
        jitter_beta: box shift as a fraction of the box width for landmark averaging ([0052]).
        jitter_shifts: number of shifted boxes (8 principal directions; 0 = a single pass).
        smooth_window: longest window, in frames, of the zero-lag filter's rigid-motion fit (odd; 1 = no
            temporal filter). See :func:`vfx.face.smooth.smooth_landmarks`.
        max_gap: longest run of missed frames filled by interpolation inside a track.
        detect_scale: full-frame detection runs on the frame scaled by this (0.5 finds faces from ~160 px;
            set ``min_face_px`` for smaller ones).
        min_face_px: the smallest face (box width, plate pixels) the full-frame search must find (dlib then
            upsamples as needed; slower). None: what ``detect_scale`` allows.
        full_frame_every: also search the whole frame every this many frames, for faces entering the shot.
        warmup_frames: frames landmarked (and discarded) before each cache chunk, so its fresh tracker starts
            from a face it has followed rather than from a cold full-frame search. Every chunk is tracked on
            its own this way, so the landmarks do not depend on how the shot is split between workers or
            farm tasks.
        track: write crops of this track only (0 = the main face); None = every track.
        workers: processes for the parallel passes; 0 = one per CPU core.
        chunk_frames: frames per parallel task (and per resume checkpoint).
        pixel_aspect: width of a footage pixel over its height (2.0: a 2x anamorphic squeeze); faces are found
            and aligned on the desqueezed picture and cut unsqueezed. None: the footage's own (EXR
            ``PixelAspectRatio``, a movie's sample aspect ratio).
        cuts: frames that start a new camera shot (an editor's list; ``()``: none); None: found by
            :func:`vfx.faceset.cuts.detect_cuts`. No track, smoothing or gap filling crosses a cut.
    """

    landmarker: Literal["dlib", "fan"] = "dlib"
    models_dir: Path | None = None
    device: str = "cpu"
    crop_size: int = 256
    jitter_beta: float = 0.05
    jitter_shifts: int = 8
    smooth_window: int = 11
    max_gap: int = 3
    detect_scale: float = 0.5
    forehead_raise: float = 0.25
    min_face_px: float | None = None
    full_frame_every: int = FULL_FRAME_EVERY
    warmup_frames: int = 4
    track: int | None = None
    workers: int = 0
    chunk_frames: int = 10
    pixel_aspect: float | None = None
    cuts: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        AlignTemplate(size=self.crop_size)  # the crop size's own check and message
        jitter_boxes(FaceBox(0.0, 0.0, 1.0, 1.0), beta=self.jitter_beta, num_shifts=self.jitter_shifts)
        counts = {"full_frame_every": (self.full_frame_every, 1), "chunk_frames": (self.chunk_frames, 1),
                  "smooth_window": (self.smooth_window, 1), "max_gap": (self.max_gap, 0),
                  "warmup_frames": (self.warmup_frames, 0), "workers": (self.workers, 0)}
        for name, (value, least) in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"Invalid extract setting {name}", expected=f"an integer >= {least}",
                                  found=repr(value), fix=f"set {name} to a whole number >= {least}")
        check_window("smooth_window", self.smooth_window, order=2)
        if self.pixel_aspect is not None:
            pixel_aspect_matrix(self.pixel_aspect)  # its own check and message
        if not 0.0 < self.detect_scale <= 1.0:
            raise ConfigError("Invalid detection scale", expected="a number in (0, 1]", found=repr(self.detect_scale),
                              fix="use 0.5, or 1.0 with min_face_px for small faces")
        if self.min_face_px is not None and not self.min_face_px > 0:
            raise ConfigError("Invalid min_face_px", expected="a positive width in pixels", found=repr(self.min_face_px),
                              fix="pass --min-face-px with a width such as 40, or leave it unset")
        if self.track is not None and self.track < 0:
            raise ConfigError("Invalid track", expected="a track number >= 0 (0 is the main face)", found=str(self.track),
                              fix="pass --track 0 for the main face, or another track number >= 0")


@dataclass(frozen=True)
class MediaSource:
    """Footage to extract from: a video or an image sequence, its first frame number and colour space."""

    path: str
    start_frame: int = DEFAULT_START_FRAME
    colorspace: str = WORKING_SPACE
    shot: str | None = None

    def open(self) -> Plate:
        return open_media(self.path, start_frame=self.start_frame, colorspace=self.colorspace)


@dataclass(frozen=True)
class ExtractSummary:
    """What an extraction did (``vfx extract`` prints it)."""

    folder: Path
    frames: int
    faces: int
    tracks: int
    no_face_frames: tuple[int, ...]
    crops_written: int
    crops_skipped: int
    seconds: float
    track_lengths: dict[int, int] = field(default_factory=dict)
    cuts: tuple[int, ...] = ()
    cuts_source: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    def describe(self) -> str:
        from vfx.shot.frames import format_frames

        tracks = ", ".join(f"track {t}: {n} frames" for t, n in sorted(self.track_lengths.items())) or "none"
        missing = format_frames(self.no_face_frames) if self.no_face_frames else "none"
        return (f"faceset {self.folder}\n  frames {self.frames}, faces {self.faces}, tracks {self.tracks} ({tracks})\n"
                f"  frames without a face: {missing}\n"
                f"  cuts: {format_frames(self.cuts) if self.cuts else 'none'} ({self.cuts_source or 'not searched'})\n"
                f"  crops written {self.crops_written}, already there {self.crops_skipped}\n"
                f"  {self.seconds:.1f} s ({self.fps:.1f} frames/s)")


def extract_faceset(
    source: MediaSource, out: str | os.PathLike[str], *, frames: FrameRange | None = None,
    config: ExtractConfig = ExtractConfig(),
) -> ExtractSummary:
    """Extract aligned faces of ``source`` into the faceset folder ``out`` (made or resumed).

    Frames without a face are recorded in the index (``quality: no_face``) and never stop the run.

    Raises:
        ConfigError: bad settings, or ``out`` holds a faceset of another source or other settings.
        MediaError / FrameRangeError: the footage cannot be read, or lacks ``frames``.
    """
    started = time.perf_counter()
    template = AlignTemplate(size=config.crop_size)
    faceset, frames, config = _open_faceset(source, out, frames, config)
    with source.open() as plate:
        cuts, changed = shot_cuts(plate, frames, faceset.folder, config.cuts)
    if changed:  # other cuts make other tracks: the crops cut along the old ones are out of date
        for record in faceset.records():
            if record.crop is not None:
                (faceset.folder / record.crop).unlink(missing_ok=True)
    chunks = [tuple(chunk) for chunk in frames.chunks(config.chunk_frames)]
    workers = _worker_count(config, len(chunks))
    with _executor(config, workers) as pool:
        detections = _landmark_pass(pool, source, faceset, chunks, config, workers)
        tracks = _track_pass(detections, frames, config, cuts.cuts)
        # an artist's fixed points (overrides.jsonl) are kept in the index a re-extraction writes
        records = apply_overrides(_records(tracks, detections, frames, template, config),
                                  read_overrides(faceset.folder))
        written, skipped = _crop_pass(pool, source, faceset, records, template, workers)
    faceset.write_index(records)
    faces = [r for r in records if r.quality != "no_face"]
    lengths: dict[int, int] = {}
    for track in tracks:  # a track number names the same rank in every camera shot
        lengths[track.track_id] = lengths.get(track.track_id, 0) + len(track.faces)
    return ExtractSummary(
        folder=faceset.folder, frames=len(frames), faces=len(faces), tracks=len(tracks),
        no_face_frames=tuple(r.frame for r in records if r.quality == "no_face"),
        crops_written=written, crops_skipped=skipped, seconds=time.perf_counter() - started,
        track_lengths=lengths, cuts=cuts.cuts, cuts_source=cuts.source)


def extract_landmarks(
    source: MediaSource, out: str | os.PathLike[str], *, frames: FrameRange | None = None, only: FrameRange,
    config: ExtractConfig = ExtractConfig(),
) -> int:
    """Pass 1 alone, for the cache chunks of ``frames`` that hold any of ``only`` (a farm extract task).

    The chunks are cut from the whole of ``frames`` exactly as :func:`extract_faceset` cuts them, and each is
    tracked on its own, so a later :func:`extract_faceset` of ``frames`` finds them in the cache and gives
    the same faceset as one uninterrupted run. Returns the number of frames landmarked (cached ones excluded).
    """
    faceset, frames, config = _open_faceset(source, out, frames, config)
    only.check_within(frames, "the frames being extracted")
    wanted = set(only)
    chunks = [tuple(chunk) for chunk in frames.chunks(config.chunk_frames)]
    picked = [chunk for chunk in chunks if wanted.intersection(chunk)]
    warmups = dict(zip(chunks, _warmups(chunks, config)))
    cache_dir = faceset.folder / "cache"
    todo = [chunk for chunk in picked
            if _read_cache(cache_dir / _cache_name(chunk, warmups[chunk], config), chunk) is None]
    if todo:
        job = _LandmarkJob(source, tuple(todo), tuple(warmups[c] for c in todo), config, cache_dir)
        files = [(cache_dir / _cache_name(c, warmups[c], config), len(c)) for c in todo]
        _run_jobs(None, _landmark_job, [job], files, desc="landmarks")
    return sum(len(c) for c in todo)


def _open_faceset(source: MediaSource, out: str | os.PathLike[str], frames: FrameRange | None,
                  config: ExtractConfig) -> tuple[Faceset, FrameRange, ExtractConfig]:
    """Check the footage holds ``frames``, load the landmarker, and make (or reuse) the faceset folder.

    Returns the faceset, the frames, and the settings with the footage's own pixel aspect where they leave it
    unset (an anamorphic EXR's ``PixelAspectRatio``, a movie's sample aspect ratio)."""
    footage = Place(f"the footage {source.path}", Path(source.path),
                    "sequence" if is_sequence_pattern(source.path) else "file")
    check_apart(Place("the faceset folder (--out)", Path(out), "folder"), [footage])
    check_writable(Path(out))
    with source.open() as plate:
        frames = frames or plate.frame_range
        frames.check_within(plate.frame_range, f"footage {source.path}")
        check_plate_size(plate, frames)  # header reads: a frame of another size or an unreadable one stops here
        kind = plate.kind
        if config.pixel_aspect is None:
            config = replace(config, pixel_aspect=plate.pixel_aspect)
    # Load the model before anything is written (a missing file is a clean error) and before the pool forks,
    # so the workers share the parent's copy instead of each loading its own 100 MB.
    _landmarker(config)
    return Faceset.create(out, faceset_info(source, kind, config)), frames, config


def faceset_info(source: MediaSource, kind: str, config: ExtractConfig) -> FacesetInfo:
    """The description of the faceset ``config`` extracts from ``source`` (a ``kind`` of plate)."""
    return FacesetInfo(
        source=str(Path(source.path).absolute()), source_kind=kind, crop_size=config.crop_size,
        landmarker=config.landmarker, jitter_beta=config.jitter_beta, jitter_shifts=config.jitter_shifts,
        smooth_window=config.smooth_window, forehead_raise=config.forehead_raise,
        colorspace=resolve_colorspace(source.colorspace), shot=source.shot,
        pixel_aspect=1.0 if config.pixel_aspect is None else config.pixel_aspect)


# ---------------------------------------------------------------------------------------------- pass 1

_Detection = tuple[tuple[float, float, float, float, float], list[list[float]]]  # (box + score, landmarks)


def _landmark_pass(pool: Executor | None, source: MediaSource, faceset: Faceset, chunks: Sequence[tuple[int, ...]],
                   config: ExtractConfig, workers: int) -> dict[int, list[Face]]:
    cache_dir = faceset.folder / "cache"
    results: dict[int, list[_Detection]] = {}
    uncached: list[int] = []
    warmups = _warmups(chunks, config)
    for index, chunk in enumerate(chunks):
        cached = _read_cache(cache_dir / _cache_name(chunk, warmups[index], config), chunk)
        if cached is None:
            uncached.append(index)
        else:
            results.update(cached)
    jobs = _landmark_jobs(source, chunks, warmups, uncached, config, cache_dir, workers)
    total = sum(len(chunk) for job in jobs for chunk in job.chunks)
    chunk_files = [(cache_dir / _cache_name(chunk, warmup, config), len(chunk))
                   for job in jobs for chunk, warmup in zip(job.chunks, job.warmups)]
    for result in _run_jobs(pool, _landmark_job, jobs, chunk_files, desc="landmarks"):
        results.update(result)
    log.info("landmarks: %d frames in %d job(s), %d chunk(s) from the cache", total, len(jobs),
             len(chunks) - len(uncached))
    return {frame: [_face(d) for d in detections] for frame, detections in sorted(results.items())}


def _run_jobs(pool: Executor | None, fn: Callable[[T], R], jobs: Sequence[T], outputs: Sequence[tuple[Path, int]],
              *, desc: str, unit: str = "frame") -> list[R]:
    """Run ``fn`` on every job (in the pool, else one background thread) and return the results in order.

    Progress is reported per frame, not per job (a job is a whole worker's share of the shot): ``outputs`` are
    the files the jobs write with how many frames each stands for, and the parent counts them as they appear.
    """
    executor = pool if pool is not None else ThreadPoolExecutor(max_workers=1)
    try:
        futures = [executor.submit(fn, job) for job in jobs]
        total = sum(count for _, count in outputs)
        for _ in progress(_outputs_done(futures, outputs), total=total, desc=desc, unit=unit):
            pass
        return [future.result() for future in futures]
    finally:
        if pool is None:
            executor.shutdown()


def _outputs_done(futures: Sequence[Future], outputs: Sequence[tuple[Path, int]]) -> Iterator[None]:
    """Yield once per frame as the output files appear, until every job is done (a failed job raises)."""
    waiting = list(outputs)
    while True:
        finished = all(future.done() for future in futures)
        for future in futures:
            if future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        still = []
        for path, count in waiting:
            if path.is_file():
                yield from (None for _ in range(count))
            else:
                still.append((path, count))
        waiting = still
        if finished:
            return
        wait(futures, timeout=0.5, return_when=FIRST_EXCEPTION)


@dataclass(frozen=True)
class _LandmarkJob:
    """Consecutive chunks one worker landmarks; each with a fresh tracker warmed up on its ``warmups`` frames."""

    source: MediaSource
    chunks: tuple[tuple[int, ...], ...]
    warmups: tuple[tuple[int, ...], ...]
    config: ExtractConfig
    cache_dir: Path


def _warmups(chunks: Sequence[tuple[int, ...]], config: ExtractConfig) -> list[tuple[int, ...]]:
    """The frames each chunk's tracker is warmed up on: the ``config.warmup_frames`` frames before it."""
    all_frames = [frame for chunk in chunks for frame in chunk]
    warmups, start = [], 0
    for chunk in chunks:
        warmups.append(tuple(all_frames[max(0, start - config.warmup_frames):start]))
        start += len(chunk)
    return warmups


def _landmark_jobs(source: MediaSource, chunks: Sequence[tuple[int, ...]], warmups: Sequence[tuple[int, ...]],
                   uncached: list[int], config: ExtractConfig, cache_dir: Path, workers: int) -> list[_LandmarkJob]:
    """Split the uncached chunks into one run of consecutive chunks per worker.

    Tracking carries state from frame to frame (the search region, and the box that box refinement starts
    from). So that a chunk's landmarks are the same whichever job (or farm task) computes it, every chunk
    starts a fresh tracker on the ``config.warmup_frames`` frames before it (results discarded). Runs of
    consecutive chunks still go to one worker, so a video is decoded forward, not seeked per chunk.
    """
    runs: list[list[int]] = []
    for index in uncached:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    jobs = []
    for run in runs:
        # Balance frames, not chunks: the slowest job sets the pass's time.
        pieces = max(1, min(workers, len(run)))
        total = sum(len(chunks[i]) for i in run)
        groups: list[list[int]] = [[] for _ in range(pieces)]
        done = 0
        for i in run:
            groups[min(pieces - 1, done * pieces // total)].append(i)
            done += len(chunks[i])
        for group in filter(None, groups):
            jobs.append(_LandmarkJob(source, tuple(chunks[i] for i in group), tuple(warmups[i] for i in group),
                                     config, cache_dir))
    return jobs


def _landmark_job(job: _LandmarkJob) -> dict[int, list[_Detection]]:
    config = job.config
    landmarker = _landmarker(config)
    out: dict[int, list[_Detection]] = {}
    with job.source.open() as plate:
        for chunk, warmup in zip(job.chunks, job.warmups, strict=True):
            tracker = FaceTracker()
            for index, frame in enumerate(warmup + chunk):
                image = to_uint8_rgb(_read_frame(plate, frame)[0])
                if config.pixel_aspect not in (None, 1.0):  # anamorphic: faces are found and landmarked desqueezed
                    image = desqueeze(image, config.pixel_aspect)
                boxes = find_faces(landmarker, image, tracker, detect_scale=config.detect_scale,
                                   full_frame=index % config.full_frame_every == 0)
                boxes = refine_boxes(landmarker, image, seed_boxes(tracker, boxes))
                faces = [Face(box, landmarks, score=box.score) for box, landmarks in zip(
                    boxes, jitter_average_many(landmarker, image, boxes, beta=config.jitter_beta,
                                               num_shifts=config.jitter_shifts), strict=True)]
                tracker.update(frame, faces)
                if index >= len(warmup):  # not a warm-up frame (those belong to the chunk before)
                    out[frame] = [((f.box.x0, f.box.y0, f.box.x1, f.box.y1, f.score), f.landmarks.tolist())
                                  for f in faces]
            # The chunk is done: cache it, so a killed run resumes here.
            atomic_write_text(job.cache_dir / _cache_name(chunk, warmup, config),
                              json.dumps({str(k): out[k] for k in chunk}))
    return out


def _landmarker(config: ExtractConfig) -> Landmarker:
    options = {"min_face_px": config.min_face_px} if config.landmarker == "dlib" else {}
    return create_landmarker(config.landmarker, models_dir=config.models_dir, device=config.device, **options)


def _face(detection: _Detection) -> Face:
    (x0, y0, x1, y1, score), landmarks = detection
    return Face(FaceBox(x0, y0, x1, y1, score), np.array(landmarks), score=score)


def _cache_name(chunk: Sequence[int], warmup: Sequence[int], config: ExtractConfig) -> str:
    # The cache key covers everything pass 1 depends on, so changed settings never reuse stale landmarks.
    key = json.dumps([list(chunk), list(warmup), config.landmarker, str(config.models_dir), config.jitter_beta,
                      config.jitter_shifts, config.detect_scale, config.min_face_px, config.full_frame_every]
                     + ([config.pixel_aspect] if config.pixel_aspect not in (None, 1.0) else []))
    return f"landmarks_{chunk[0]}-{chunk[-1]}_{hashlib.sha256(key.encode()).hexdigest()[:12]}.json"


_CACHE_MAX_BYTES = 64 * 1024 * 1024


def _read_cache(path: Path, frames: Sequence[int]) -> dict[int, list[_Detection]] | None:
    """A chunk's cached detections, or None (to landmark it again) when there is none or it is not one this
    code wrote for exactly these frames: unreadable, too large, or of the wrong shape (a damaged or edited
    cache is redone, never trusted)."""
    if not path.is_file():
        return None
    try:
        if path.stat().st_size > _CACHE_MAX_BYTES:
            raise ValueError("too large")
        data = json.loads(path.read_text())
        if not _cache_shape_ok(data, frames):
            raise ValueError("not this chunk's detections")
        return {int(k): v for k, v in data.items()}
    except (OSError, ValueError, RecursionError) as err:
        log.warning("ignoring landmark cache %s (%s); landmarking its frames again", path, err)
        return None


def _cache_shape_ok(data: object, frames: Sequence[int]) -> bool:
    """Whether ``data`` is ``{"<frame>": [[box + score (5 numbers), 68 [x, y] points], ...]}`` for ``frames``."""
    def numbers(values: object, count: int) -> bool:
        return (isinstance(values, list) and len(values) == count
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values))

    if not isinstance(data, dict) or set(data) != {str(f) for f in frames}:
        return False
    for detections in data.values():
        if not isinstance(detections, list):
            return False
        for item in detections:
            if not (isinstance(item, list) and len(item) == 2 and numbers(item[0], 5)
                    and isinstance(item[1], list) and len(item[1]) == 68
                    and all(numbers(point, 2) for point in item[1])):
                return False
    return True


# ---------------------------------------------------------------------------------------------- pass 2

def _track_pass(detections: dict[int, list[Face]], frames: FrameRange, config: ExtractConfig,
                cuts: Sequence[int] = ()) -> list[Track]:
    """Link the faces into tracks, one camera shot at a time: every track ends at a cut, and gaps are filled
    (and later smoothed) within a shot only. Tracks are numbered by rank within their shot, so track 0 is the
    main face of every shot, track 1 the second, and so on."""
    tracks: list[Track] = []
    for piece in segments(frames, cuts):
        tracker = FaceTracker()
        for frame in piece:
            tracker.update(frame, detections.get(frame, []))
        tracks += rank_tracks([fill_gaps(t, max_gap=config.max_gap) for t in tracker.finish(rank=False)])
    if config.track is not None:
        found = sorted({t.track_id for t in tracks})
        if config.track not in found and (config.track != 0 or found):
            raise ConfigError(f"The footage has no face track {config.track}",
                              expected="a track the faces were linked into: "
                              + (", ".join(map(str, found)) if found else "none (no face found)"),
                              found=f"--track {config.track}",
                              fix="pick one of those, or leave --track out to keep every track")
        tracks = [t for t in tracks if t.track_id == config.track]
    return tracks


def _records(tracks: list[Track], detections: dict[int, list[Face]], frames: FrameRange,
             template: AlignTemplate, config: ExtractConfig) -> list[FaceRecord]:
    records: list[FaceRecord] = []
    seen: set[int] = set()
    # An anamorphic plate's faces were landmarked, tracked and are smoothed and aligned on the desqueezed
    # picture; the records hold plate pixels (landmarks, box) and a plate -> crop matrix that desqueezes.
    squeeze = pixel_aspect_matrix(config.pixel_aspect) if config.pixel_aspect not in (None, 1.0) else None
    to_plate = invert_affine(squeeze) if squeeze is not None else None

    def plate_points(points: np.ndarray) -> np.ndarray:
        return points if to_plate is None else transform_points(points, to_plate)

    for track in tracks:
        track_frames = sorted(track.faces)
        raw, valid = track.landmarks_array(track_frames)
        smooth = smooth_landmarks(raw, valid=valid, window=config.smooth_window) if config.smooth_window > 1 else raw
        for index, frame in enumerate(track_frames):
            face = track.faces[frame]
            aligned = estimate_alignment(smooth[index], template)
            matrix = aligned if squeeze is None else compose(squeeze, aligned)
            (x0, y0), (x1, y1) = plate_points(np.array([[face.box.x0, face.box.y0], [face.box.x1, face.box.y1]]))
            records.append(FaceRecord(
                frame=frame, track=track.track_id, quality="interpolated" if face.interpolated else "ok",
                crop=Faceset.crop_name(track.track_id, frame),
                box=(float(x0), float(y0), float(x1), float(y1)), score=face.score,
                landmarks=plate_points(smooth[index]), landmarks_raw=plate_points(np.asarray(face.landmarks)),
                crop_landmarks=transform_points(smooth[index], aligned), matrix=matrix))
            seen.add(frame)
    records.extend(FaceRecord(frame=f, track=None, quality="no_face") for f in frames if f not in seen)
    return records


# ---------------------------------------------------------------------------------------------- pass 3

def _crop_pass(pool: Executor | None, source: MediaSource, faceset: Faceset, records: list[FaceRecord],
               template: AlignTemplate, workers: int) -> tuple[int, int]:
    todo = [r for r in records if r.crop is not None and not (faceset.folder / r.crop).is_file()]
    skipped = sum(1 for r in records if r.crop is not None) - len(todo)
    by_frame: dict[int, list[tuple[str, list[list[float]]]]] = {}
    for record in todo:
        by_frame.setdefault(record.frame, []).append((str(faceset.folder / record.crop), record.matrix.tolist()))
    frames = sorted(by_frame)
    # One contiguous run of frames per worker: every job start is a seek, and a video seek decodes from the
    # keyframe before it (up to a few hundred frames), so many small jobs would decode the shot many times.
    size = max(1, -(-len(frames) // workers))
    jobs = [(source, tuple(frames[i:i + size]), {f: by_frame[f] for f in frames[i:i + size]}, template.size)
            for i in range(0, len(frames), size)]
    crop_files = [(Path(path), 1) for frame in frames for path, _ in by_frame[frame]]
    written = sum(_run_jobs(pool, _crop_chunk, jobs, crop_files, desc="crops", unit="crop"))
    return written, skipped


def _crop_chunk(job: tuple[MediaSource, tuple[int, ...], dict[int, list[tuple[str, list[list[float]]]]], int]) -> int:
    source, frames, crops, size = job
    written = 0
    with source.open() as plate:
        for frame in frames:
            image, bits = _read_frame(plate, frame)
            for path, matrix in crops[frame]:
                crop = warp_to_crop(image, np.array(matrix), size)
                if crop.dtype.kind == "f":
                    np.clip(crop, 0.0, 1.0, out=crop)  # bicubic overshoot at edges; the working space is [0, 1]
                # 8-bit sources give 8-bit crops, deeper ones 16-bit. zlib level 1 writes 4x faster than the
                # default for 4 % larger files.
                write_image(path, crop, channels=("R", "G", "B"), dtype="uint8" if bits <= 8 else "uint16",
                            compression="zip:1")
                written += 1
    return written


# ---------------------------------------------------------------------------------------------- helpers

def _read_frame(plate: Plate, frame: int) -> tuple[np.ndarray, int]:
    """A frame in the working space and the bits per sample of its source.

    8-bit video comes straight from the decoder as uint8 (no float round trip); anything else is float32 RGB
    converted by OpenColorIO (grey frames become three equal channels, alpha is dropped).
    """
    if plate.video is not None and resolve_colorspace(plate.colorspace) == resolve_colorspace(WORKING_SPACE):
        return plate.video.read(frame), plate.video.bit_depth
    image = plate.read(frame)
    return to_working(image.rgb(), plate.colorspace), image.bit_depth if plate.video is None else plate.video.bit_depth


class _Inline:
    """No pool: run jobs in this process (one worker, or too few chunks to be worth forking)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _worker_count(config: ExtractConfig, num_chunks: int) -> int:
    if config.device.startswith("cuda"):
        return 1  # one process owns the GPU; it batches instead
    return max(1, min(config.workers or os.cpu_count() or 1, num_chunks))


def _executor(config: ExtractConfig, workers: int) -> ProcessPoolExecutor | _Inline:
    if workers <= 1:
        return _Inline()
    # fork: the workers share the parent's loaded model. (No cv2.setNumThreads in them: changing OpenCV's
    # thread pool in a forked child deadlocks once the parent has used it.)
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
