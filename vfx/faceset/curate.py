"""Faceset curation: a report of what a faceset holds (pose, sharpness, identity, near-duplicates, tracks) and
the artist's exclude list.

What the report measures, per face (:func:`measure_faceset`):

- **pose**: yaw and pitch from the 68 crop landmarks, by :func:`head_pose`: ``cv2.solvePnP`` of six landmarks
  (nose tip 30, chin 8, outer eye corners 36/45, mouth corners 48/54) against a generic 3D head (the usual
  average-face model, millimetres), pinhole camera with a focal length of one crop width centred on the crop.
  The crop is a similarity transform of the plate (roll removed, scale changed), so yaw and pitch are the
  plate's. An estimate: a few degrees off on a frontal face, coarser past ~60 degrees where the 68-point
  landmarker itself fails. Faces turned more than :data:`PROFILE_YAW_DEG` are counted as ``profile``.
- **sharpness**: the variance of the Laplacian (``cv2.Laplacian``, 3x3) of the crop's grey levels (0-255) inside
  the hull of its landmarks; a face under ``blur_fraction`` (default :data:`BLUR_FRACTION`) of the faceset's
  median is ``blurred`` (relative, since the absolute figure depends on crop size and footage).
- **identity**: dlib's 128-d descriptor of each crop (:class:`~vfx.face.identity.FaceDescriber` on the crop and its
  landmarks), its Euclidean distance to the faceset's element-wise median descriptor; a face farther than
  ``identity_threshold`` (default dlib's same-person distance, 0.6) is an ``identity`` outlier: by dlib's rule,
  not the person the rest of the faceset shows (a false detection, another actor, a badly landmarked face).
- **near-duplicates**: each crop as a 32x32 grey thumbnail (area resize, values 0-1); walking the faces in
  frame order, a face whose RMS difference to a face already kept is under ``duplicate_rms`` (default
  :data:`DUPLICATE_RMS`) is a ``duplicate`` of it (it adds nothing to training but weight on that pose).
- **tracks**: faces per track, detected and interpolated, and how many are excluded or overridden.

Convention:
    yaw > 0: the face turned towards the picture's right (its nose points right); pitch > 0: the face turned up.
    Degrees. Crops read as float32 RGB in [0, 1].
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vfx.errors import ConfigError
from vfx.faceset.store import ExcludeEntry, Faceset, read_overrides, unmatched_overrides
from vfx.io.image import read_image
from vfx.shot.frames import FrameRange, format_frames
from vfx.utils.atomic import check_writable
from vfx.utils.plots import pyplot, save_figure
from vfx.utils.stamped import write_stamped

__all__ = ["BLUR_FRACTION", "DUPLICATE_RMS", "PROFILE_YAW_DEG", "REPORT_SCHEMA", "ExcludeChange", "FaceMeasure",
           "FacesetReport", "clear_excludes", "exclude_faces", "head_pose", "measure_faceset", "near_duplicates",
           "sharpness", "write_report"]

REPORT_SCHEMA = "vfx.FacesetReport/1"
PROFILE_YAW_DEG = 40.0
"""Beyond this yaw dlib's 68-point landmarker (trained on near-frontal faces) misplaces the far side's points."""
BLUR_FRACTION = 0.35
"""A face is ``blurred`` under this fraction of the faceset's median Laplacian variance."""
DUPLICATE_RMS = 0.012
"""Near-duplicate rule: RMS difference of 32x32 grey thumbnails (0-1) under this."""
THUMB = 32

# Generic head, millimetres, x right, y down, z away from the camera (the nose tip nearest): the six points of the
# usual average-face model used with solvePnP, in the 68-point scheme's numbers.
_MODEL_POINTS = {30: (0.0, 0.0, 0.0), 8: (0.0, 330.0, 65.0), 36: (-225.0, -170.0, 135.0),
                 45: (225.0, -170.0, 135.0), 48: (-150.0, 150.0, 125.0), 54: (150.0, 150.0, 125.0)}


def head_pose(landmarks: np.ndarray, image_size: int) -> tuple[float, float]:
    """(yaw, pitch) in degrees of a face from its 68 landmarks in a square picture of ``image_size`` pixels.

    Convention:
        landmarks (68, 2) (x, y) pixels, origin top-left; yaw > 0: nose towards the picture's right; pitch > 0:
        face turned up. See the module docstring for the model and its accuracy.
    """
    import cv2

    numbers = list(_MODEL_POINTS)
    model = np.array([_MODEL_POINTS[n] for n in numbers], dtype=np.float64)
    image = np.asarray(landmarks, dtype=np.float64)[numbers]
    focal = float(image_size)
    camera = np.array([[focal, 0, (image_size - 1) / 2], [0, focal, (image_size - 1) / 2], [0, 0, 1]])
    # Start from a frontal head at a distance that gives the face its width in the picture.
    width = max(float(np.ptp(image[:, 0])), 1.0)
    rvec0 = np.zeros((3, 1))
    tvec0 = np.array([[0.0], [0.0], [focal * 450.0 / width]])
    ok, rvec, _ = cv2.solvePnP(model, image, camera, None, rvec0, tvec0, useExtrinsicGuess=True,
                               flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return math.nan, math.nan
    rotation, _ = cv2.Rodrigues(rvec)
    facing = rotation @ np.array([0.0, 0.0, -1.0])  # where the face looks, in camera space (toward -z: the camera)
    yaw = math.degrees(math.atan2(facing[0], -facing[2]))
    pitch = math.degrees(math.atan2(-facing[1], math.hypot(facing[0], facing[2])))
    return yaw, pitch


def sharpness(crop: np.ndarray, landmarks: np.ndarray) -> float:
    """Variance of the Laplacian of the crop's grey levels (0-255) inside the hull of its landmarks.

    Convention:
        crop (H, W, 3) float32 RGB in [0, 1]; landmarks (68, 2) crop pixels.
    """
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(crop[..., :3], dtype=np.float32), cv2.COLOR_RGB2GRAY) * 255.0
    response = cv2.Laplacian(grey.astype(np.float64), cv2.CV_64F, ksize=1)
    mask = np.zeros(grey.shape, np.uint8)
    hull = cv2.convexHull(np.rint(np.asarray(landmarks)).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    inside = response[mask.astype(bool)]
    return float(inside.var()) if inside.size > 8 else float(response.var())


def thumbnail(crop: np.ndarray) -> np.ndarray:
    """The crop as a (32, 32) grey thumbnail, float32 in [0, 1] (area resize): the near-duplicate rule's unit."""
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(crop[..., :3], dtype=np.float32), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA)


def near_duplicates(thumbs: np.ndarray, threshold: float = DUPLICATE_RMS) -> list[int | None]:
    """For each thumbnail (in order), the index of the earlier kept one it nearly repeats (RMS difference under
    ``threshold``), or None when it is kept. Greedy: a duplicate is never a reference for later faces."""
    flat = np.asarray(thumbs, dtype=np.float32).reshape(len(thumbs), -1)
    kept: list[int] = []
    result: list[int | None] = []
    for index, row in enumerate(flat):
        if kept:
            rms = np.sqrt(np.mean((flat[kept] - row) ** 2, axis=1))
            best = int(np.argmin(rms))
            if rms[best] < threshold:
                result.append(kept[best])
                continue
        kept.append(index)
        result.append(None)
    return result


@dataclass
class FaceMeasure:
    """The report's figures for one face (JSON-ready)."""

    frame: int
    track: int
    quality: str
    yaw_deg: float
    pitch_deg: float
    sharpness: float
    identity_distance: float | None
    duplicate_of: tuple[int, int] | None = None
    excluded: bool = False
    overridden: bool = False
    flags: list[str] = field(default_factory=list)


@dataclass
class FacesetReport:
    """What :func:`measure_faceset` found; :meth:`to_json` is the body of ``faceset_report.json``."""

    folder: str
    crop_size: int
    faces: list[FaceMeasure]
    settings: dict[str, Any]
    unmatched_overrides: list[tuple[int, int]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        faces = self.faces
        yaw = np.array([f.yaw_deg for f in faces], dtype=np.float64)
        sharp = np.array([f.sharpness for f in faces], dtype=np.float64)
        ident = np.array([f.identity_distance for f in faces if f.identity_distance is not None], dtype=np.float64)
        tracks: dict[str, dict[str, int]] = {}
        for f in faces:
            row = tracks.setdefault(str(f.track), {"faces": 0, "interpolated": 0, "excluded": 0, "overridden": 0})
            row["faces"] += 1
            row["interpolated"] += f.quality == "interpolated"
            row["excluded"] += f.excluded
            row["overridden"] += f.overridden

        def count(flag: str) -> int:
            return sum(flag in f.flags for f in faces)

        def stat(values: np.ndarray, fn: Any) -> float | None:
            values = values[np.isfinite(values)]
            return round(float(fn(values)), 4) if values.size else None

        return {
            "faces": len(faces),
            "tracks": tracks,
            "yaw_deg": {"min": stat(yaw, np.min), "median": stat(yaw, np.median), "max": stat(yaw, np.max)},
            "pitch_deg": {"min": stat(np.array([f.pitch_deg for f in faces]), np.min),
                          "median": stat(np.array([f.pitch_deg for f in faces]), np.median),
                          "max": stat(np.array([f.pitch_deg for f in faces]), np.max)},
            "sharpness": {"min": stat(sharp, np.min), "median": stat(sharp, np.median), "max": stat(sharp, np.max)},
            "identity_distance": {"median": stat(ident, np.median), "max": stat(ident, np.max)},
            "profile": count("profile"),
            "blurred": count("blurred"),
            "identity_outliers": count("identity"),
            "duplicates": count("duplicate"),
            "excluded": sum(f.excluded for f in faces),
            "overridden": sum(f.overridden for f in faces),
        }

    def to_json(self) -> dict[str, Any]:
        return {"faceset": self.folder, "crop_size": self.crop_size, "settings": self.settings,
                "summary": self.summary(), "unmatched_overrides": [list(k) for k in self.unmatched_overrides],
                "faces": [_rounded(asdict(f)) for f in self.faces]}

    def describe(self) -> str:
        s = self.summary()
        thresholds = self.settings
        lines = [f"Faceset {self.folder}: {s['faces']} faces in {len(s['tracks'])} track(s) "
                 + ", ".join(f"t{t}: {row['faces']}" for t, row in sorted(s["tracks"].items(), key=lambda kv: int(kv[0]))),
                 f"  pose: yaw {s['yaw_deg']['min']}..{s['yaw_deg']['max']} deg (median {s['yaw_deg']['median']}), "
                 f"pitch {s['pitch_deg']['min']}..{s['pitch_deg']['max']} deg; {s['profile']} beyond "
                 f"+-{thresholds['profile_yaw_deg']:g} deg (profile)",
                 f"  sharpness (Laplacian variance): median {s['sharpness']['median']}, min {s['sharpness']['min']}; "
                 f"{s['blurred']} blurred (under {thresholds['blur_fraction']:g} x median)"]
        if s["identity_distance"]["median"] is not None:
            lines.append(f"  identity: distance to the median descriptor median {s['identity_distance']['median']}, "
                         f"max {s['identity_distance']['max']}; {s['identity_outliers']} outlier(s) over "
                         f"{thresholds['identity_threshold']:g}")
        else:
            lines.append("  identity: not measured")
        lines.append(f"  near-duplicates: {s['duplicates']} (thumbnail RMS under {thresholds['duplicate_rms']:g})")
        lines.append(f"  excluded from training: {s['excluded']}; landmarks overridden: {s['overridden']}"
                     + (f"; overrides matching no face: {len(self.unmatched_overrides)}" if self.unmatched_overrides
                        else ""))
        return "\n".join(lines)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def measure_faceset(faceset: Faceset | str | os.PathLike[str], *, identity: bool = True,
                    identity_threshold: float | None = None, blur_fraction: float = BLUR_FRACTION,
                    duplicate_rms: float = DUPLICATE_RMS, models_dir: Path | None = None) -> FacesetReport:
    """Measure every face of a faceset (excluded ones too, marked): see the module docstring for each figure.

    Args:
        faceset: a :class:`Faceset` or its folder.
        identity: describe the faces with dlib's network (about 20 ms a face on one core); False skips it.
        identity_threshold: distance to the median descriptor over which a face is an outlier (default 0.6).
        blur_fraction: fraction of the median sharpness under which a face is blurred.
        duplicate_rms: the near-duplicate threshold.
        models_dir: where dlib's descriptor model lies (default: the ``face_recognition_models`` package).

    Raises:
        MediaError: not a faceset, or a damaged index, exclude list, overrides file or crop.
        ConfigError: thresholds out of range, or the descriptor model is missing.
    """
    from vfx.face.identity import SAME_PERSON_DISTANCE, FaceDescriber

    threshold = SAME_PERSON_DISTANCE if identity_threshold is None else identity_threshold
    for name, value, low, high in (("identity threshold", threshold, 0.0, 2.0), ("blur fraction", blur_fraction, 0.0,
                                   1.0), ("duplicate RMS", duplicate_rms, 0.0, 1.0)):
        if not (isinstance(value, int | float) and math.isfinite(value) and low <= value <= high):
            raise ConfigError(f"Invalid {name}", expected=f"a number in [{low:g}, {high:g}]", found=repr(value),
                              fix=f"leave it out for the default, or pick a value in [{low:g}, {high:g}]")
    faceset = faceset if isinstance(faceset, Faceset) else Faceset.open(faceset)
    describer = FaceDescriber(models_dir) if identity else None
    records = faceset.faces(include_excluded=True)
    excluded = faceset.excluded()
    overrides = read_overrides(faceset.folder)
    size = faceset.info.crop_size
    measures: list[FaceMeasure] = []
    thumbs, descriptors = [], []
    for record in records:
        crop = read_image(faceset.crop_file(record)).pixels[..., :3]
        points = np.asarray(record.crop_landmarks) * (crop.shape[0] / size)
        yaw, pitch = head_pose(points, crop.shape[0])
        thumbs.append(thumbnail(crop))
        if describer is not None:
            descriptors.append(describer.describe(crop, points))
        measures.append(FaceMeasure(
            frame=record.frame, track=int(record.track or 0), quality=record.quality, yaw_deg=yaw, pitch_deg=pitch,
            sharpness=sharpness(crop, points), identity_distance=None,
            excluded=any(e.covers(record.frame, record.track) for e in excluded),
            overridden=(record.frame, record.track) in overrides))
    if descriptors:
        array = np.stack(descriptors)
        distances = np.linalg.norm(array - np.median(array, axis=0), axis=1)
        for measure, distance in zip(measures, distances):
            measure.identity_distance = float(distance)
    median_sharp = float(np.median([m.sharpness for m in measures])) if measures else 0.0
    duplicates = near_duplicates(np.stack(thumbs), duplicate_rms) if thumbs else []
    for measure, dup in zip(measures, duplicates):
        if dup is not None:
            measure.duplicate_of = (measures[dup].frame, measures[dup].track)
            measure.flags.append("duplicate")
        if math.isfinite(measure.yaw_deg) and abs(measure.yaw_deg) > PROFILE_YAW_DEG:
            measure.flags.append("profile")
        if measure.sharpness < blur_fraction * median_sharp:
            measure.flags.append("blurred")
        if measure.identity_distance is not None and measure.identity_distance > threshold:
            measure.flags.append("identity")
    settings = {"profile_yaw_deg": PROFILE_YAW_DEG, "blur_fraction": blur_fraction,
                "identity_threshold": threshold if identity else None, "duplicate_rms": duplicate_rms,
                "pose": "cv2.solvePnP, 6 landmarks (30, 8, 36, 45, 48, 54), generic 3D head, focal = crop width",
                "sharpness": "variance of the 4-neighbour Laplacian of grey 0-255 inside the landmark hull",
                "identity": "dlib 128-d descriptor, Euclidean distance to the faceset's median descriptor",
                "duplicates": "RMS difference of 32x32 grey thumbnails to an earlier kept face, frame order"}
    return FacesetReport(str(faceset.folder), size, measures, settings,
                         [(o.frame, o.track) for o in unmatched_overrides(records, overrides)])


def write_report(report: FacesetReport, out: str | os.PathLike[str], *,
                 name: str = "faceset_report") -> tuple[Path, Path]:
    """Write ``<out>/<name>.json`` (schema ``vfx.FacesetReport/1``) and ``<out>/<name>.png``, both atomically.

    The PNG: the yaw/pitch histogram (10-degree bins), sharpness and identity distance over the frames with their
    thresholds, faces per track, and the most flagged crops.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{name}.json"
    write_stamped(json_path, REPORT_SCHEMA, report.to_json())
    return json_path, _write_figure(report, out / f"{name}.png")


def check_report_folder(out: str | os.PathLike[str]) -> None:
    """Refuse an output folder that is a file or cannot be written, before anything is measured."""
    check_writable(Path(out))


def _write_figure(report: FacesetReport, path: Path) -> Path:
    plt = pyplot()
    faces = report.faces
    settings = report.settings
    fig = plt.figure(figsize=(15, 9.5))
    grid = fig.add_gridspec(2, 3, height_ratios=[1, 1.05])
    yaw = np.array([f.yaw_deg for f in faces], dtype=np.float64)
    pitch = np.array([f.pitch_deg for f in faces], dtype=np.float64)
    ok = np.isfinite(yaw) & np.isfinite(pitch)
    axis = fig.add_subplot(grid[0, 0])
    counts, xedges, yedges, image = axis.hist2d(yaw[ok], pitch[ok], bins=[np.arange(-90, 91, 10),
                                                                         np.arange(-60, 61, 10)], cmap="viridis",
                                                cmin=1)
    for xi in range(counts.shape[0]):
        for yi in range(counts.shape[1]):
            if np.isfinite(counts[xi, yi]):
                axis.text((xedges[xi] + xedges[xi + 1]) / 2, (yedges[yi] + yedges[yi + 1]) / 2,
                          f"{int(counts[xi, yi])}", ha="center", va="center", fontsize=6, color="white")
    for sign in (-1, 1):
        axis.axvline(sign * settings["profile_yaw_deg"], color="tab:red", lw=0.8, ls="--")
    axis.set_xlabel("yaw (deg, + nose to picture right)")
    axis.set_ylabel("pitch (deg, + up)")
    axis.set_title(f"pose coverage, {len(faces)} faces (red: +-{settings['profile_yaw_deg']:g} deg)")
    axis.set_facecolor("#202020")

    tracks = sorted({f.track for f in faces})
    axis = fig.add_subplot(grid[0, 1])
    median = float(np.median([f.sharpness for f in faces])) if faces else 0.0
    for track in tracks:
        mine = [f for f in faces if f.track == track]
        axis.plot([f.frame for f in mine], [f.sharpness for f in mine], ".-", ms=3, lw=0.6, label=f"track {track}")
    axis.axhline(settings["blur_fraction"] * median, color="tab:red", ls="--", lw=0.8,
                 label=f"blurred: < {settings['blur_fraction']:g} x median")
    _mark_excluded(axis, faces, "sharpness")
    axis.set_title("sharpness (Laplacian variance in the face)")
    axis.set_xlabel("frame")
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)

    axis = fig.add_subplot(grid[0, 2])
    if any(f.identity_distance is not None for f in faces):
        for track in tracks:
            mine = [f for f in faces if f.track == track]
            axis.plot([f.frame for f in mine], [f.identity_distance for f in mine], ".-", ms=3, lw=0.6,
                      label=f"track {track}")
        axis.axhline(settings["identity_threshold"], color="tab:red", ls="--", lw=0.8,
                     label=f"outlier: > {settings['identity_threshold']:g}")
        _mark_excluded(axis, faces, "identity_distance")
        axis.legend(fontsize=7)
    axis.set_title("identity: distance to the faceset's median descriptor")
    axis.set_xlabel("frame")
    axis.grid(alpha=0.3)

    axis = fig.add_subplot(grid[1, 0])
    rows = report.summary()["tracks"]
    names = [str(t) for t in tracks]
    detected = [rows[n]["faces"] - rows[n]["interpolated"] for n in names]
    interpolated = [rows[n]["interpolated"] for n in names]
    axis.bar(names, detected, label="detected", color="tab:green")
    axis.bar(names, interpolated, bottom=detected, label="interpolated", color="tab:orange")
    axis.bar(names, [rows[n]["excluded"] for n in names], width=0.3, label="excluded", color="tab:red")
    dup = sum("duplicate" in f.flags for f in faces)
    axis.set_title(f"faces per track ({dup} near-duplicates)")
    axis.set_xlabel("track")
    axis.legend(fontsize=7)

    axis = fig.add_subplot(grid[1, 1:])
    sheet, caption = _flagged_sheet(report)
    axis.imshow(sheet)
    axis.set_title(caption, fontsize=9)
    axis.axis("off")
    fig.tight_layout()
    return save_figure(fig, path)


def _mark_excluded(axis: Any, faces: Sequence[FaceMeasure], attr: str) -> None:
    marked = [f for f in faces if f.excluded and getattr(f, attr) is not None]
    if marked:
        axis.plot([f.frame for f in marked], [getattr(f, attr) for f in marked], "x", color="tab:red", ms=6,
                  label="excluded")


def _flagged_sheet(report: FacesetReport, count: int = 12, tile: int = 112) -> tuple[np.ndarray, str]:
    """A 2 x 6 sheet of the most flagged crops (identity outliers, then blurred, profile, duplicates)."""
    import cv2

    order = {"identity": 0, "blurred": 1, "profile": 2, "duplicate": 3}
    flagged = [f for f in report.faces if f.flags and not f.excluded]
    flagged.sort(key=lambda f: (min(order[x] for x in f.flags), -(f.identity_distance or 0), f.sharpness))
    chosen = flagged[:count]
    columns = count // 2
    sheet = np.full((2 * tile, columns * tile, 3), 32, np.uint8)
    faceset = Faceset.open(report.folder)
    for index, measure in enumerate(chosen):
        crop = read_image(faceset.crop_path(measure.track, measure.frame)).pixels[..., :3]
        image = cv2.resize(np.clip(crop * 255 + 0.5, 0, 255).astype(np.uint8), (tile, tile),
                           interpolation=cv2.INTER_AREA)
        image = np.ascontiguousarray(image)
        cv2.putText(image, f"t{measure.track} {measure.frame}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                    (255, 255, 255), 1, cv2.LINE_AA)
        cv2.putText(image, ",".join(measure.flags)[:22], (3, tile - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.36,
                    (255, 200, 0), 1, cv2.LINE_AA)
        row, col = divmod(index, columns)
        sheet[row * tile:(row + 1) * tile, col * tile:(col + 1) * tile] = image
    caption = (f"most flagged faces ({len(chosen)} of {len(flagged)} flagged, excluded ones left out)"
               if flagged else "no face flagged")
    return sheet, caption


# ---------------------------------------------------------------------------------------------- exclude list

@dataclass(frozen=True)
class ExcludeChange:
    """What :func:`exclude_faces` or :func:`clear_excludes` did."""

    added: int
    removed: int
    total: int
    path: Path

    def describe(self) -> str:
        return (f"Exclude list {self.path}: {self.added} face(s) added, {self.removed} removed; "
                f"{self.total} entr{'y' if self.total == 1 else 'ies'} now (left out of training)")


def _check_reason(reason: str) -> None:
    if len(reason) > 500 or any(ord(c) < 32 for c in reason):
        raise ConfigError("Invalid exclude reason", expected="one line of text, at most 500 characters",
                          found=f"{len(reason)} characters" + (" with control characters"
                                                                if any(ord(c) < 32 for c in reason) else ""),
                          fix='give a short reason, e.g. --reason "blurred"')


def exclude_faces(faceset: Faceset | str | os.PathLike[str], frames: FrameRange, *, track: int | None = None,
                  reason: str = "") -> ExcludeChange:
    """Add faces to the faceset's exclude list: ``frames`` of ``track`` (None: every track on those frames).

    Every frame must have a face (of ``track``) in the faceset; an entry already there gets the new reason.

    Raises:
        MediaError: not a faceset, or a damaged index or exclude list.
        ConfigError: a track or frames the faceset has no face on (nothing is written), a bad reason.
    """
    faceset = faceset if isinstance(faceset, Faceset) else Faceset.open(faceset)
    _check_reason(reason)
    faces = faceset.faces(include_excluded=True)
    tracks = sorted({r.track for r in faces if r.track is not None})
    if track is not None and track not in tracks:
        raise ConfigError(f"Faceset {faceset.folder} has no track {track}",
                          expected="a track of the faceset: " + (", ".join(map(str, tracks)) or "none (no faces)"),
                          found=f"--track {track}", fix="pick one of those, or leave --track out (every track)")
    have = {r.frame for r in faces if track is None or r.track == track}
    missing = [f for f in frames if f not in have]
    if missing:
        raise ConfigError(f"Faceset {faceset.folder} has no face on {len(missing)} of those frames"
                          + (f" in track {track}" if track is not None else ""),
                          expected="frames with a face: " + (format_frames(have) if have else "none"),
                          found=format_frames(missing),
                          fix="give frames the faceset has (its contact sheet and `vfx faceset report` show them)")
    existing = list(faceset.excluded())
    keys = {(f, track) for f in frames}
    kept = [e for e in existing if (e.frame, e.track) not in keys]
    added = len(keys) - (len(existing) - len(kept))
    entries = kept + [ExcludeEntry(f, track, reason) for f in frames]
    path = faceset.write_excluded(entries)
    return ExcludeChange(added, 0, len(entries), path)


def clear_excludes(faceset: Faceset | str | os.PathLike[str], frames: FrameRange | None = None, *,
                   track: int | None = None) -> ExcludeChange:
    """Take faces off the exclude list: ``frames`` (of ``track``; None: entries of any track), or all of them."""
    faceset = faceset if isinstance(faceset, Faceset) else Faceset.open(faceset)
    existing = list(faceset.excluded())

    def chosen(entry: ExcludeEntry) -> bool:
        return (frames is None or entry.frame in frames) and (track is None or entry.track == track)

    kept = [e for e in existing if not chosen(e)]
    path = faceset.write_excluded(kept) if len(kept) != len(existing) else faceset.folder / Faceset.EXCLUDE_FILE
    return ExcludeChange(0, len(existing) - len(kept), len(kept), path)

