"""Facesets on disk, schema ``vfx.Faceset/1``: aligned face crops plus a JSON-lines index.

Layout of a faceset folder::

    faceset.json          schema, source media, settings (crop size, landmarker, jitter, smoothing)
    index.jsonl           one line per frame and face: frame, track, box, plate and crop landmarks,
                          plate->crop matrix, quality flag, crop file; frames without a face have a
                          line with "track": null and "quality": "no_face"
    crops/t00/1001.png    the aligned crop of track 0 on frame 1001 (8-bit, or 16-bit for deep sources)
    exclude.json          (curation, optional) faces an artist took out of training, schema
                          ``vfx.FacesetExclude/1``: ``{"faces": [{"frame": 1001, "track": 0, "reason": "blurred"}]}``
                          (``"track": null``: every track of that frame); see :meth:`Faceset.excluded`
    overrides.jsonl       (curation, optional) landmarks an artist fixed, one line per face:
                          ``{"frame": 1001, "track": 0, "points": {"8": [x, y], ...}, "note": "..."}``, plate
                          pixels, point numbers 0-67 of the 68-point scheme; see :func:`apply_overrides`

Every file is written atomically; ``index.jsonl`` is rewritten whole at the end of a run, so a reader
never sees half an index. A folder holds one source: extracting another shot into it is an error.

Curation files are the artist's, never the extraction's: ``vfx extract`` rewrites ``index.jsonl`` and leaves
``exclude.json`` and ``overrides.jsonl`` alone, and the readers apply them to whatever index is there, so a
re-extract keeps both. :meth:`Faceset.records` returns the index with the overrides applied;
:meth:`Faceset.faces` (what training and the faceset datasets read) also leaves the excluded faces out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

import vfx
from vfx.align.similarity import transform_points
from vfx.errors import ConfigError, MediaError
from vfx.utils.atomic import atomic_write_text
from vfx.utils.stamped import read_stamped, schema_error, write_stamped

__all__ = ["EXCLUDE_SCHEMA", "FACESET_SCHEMA", "MAX_EXCLUDES", "MAX_INDEX_BYTES", "MAX_LINE_BYTES",
           "MAX_OVERRIDES_BYTES", "ExcludeEntry", "FaceRecord", "Faceset", "FacesetInfo", "LandmarkOverride",
           "Quality", "apply_overrides", "read_overrides", "unmatched_overrides", "write_overrides"]

FACESET_SCHEMA = "vfx.Faceset/1"
EXCLUDE_SCHEMA = "vfx.FacesetExclude/1"

#: ``exclude.json`` holds at most this many entries (a long persona shoot has a few tens of thousands of faces).
MAX_EXCLUDES = 200_000
#: ``overrides.jsonl``: at most this large, a line at most ``_MAX_OVERRIDE_LINE`` bytes (68 points: ~2 KB).
MAX_OVERRIDES_BYTES = 64 * 1024**2
_MAX_OVERRIDE_LINE = 16 * 1024
_MAX_NOTE = 500
_FIX_EXCLUDE = "fix or delete exclude.json (`vfx faceset exclude FACESET --clear` empties it)"
_FIX_OVERRIDES = "fix the line (frame, track, points {\"0\"..\"67\": [x, y]} in plate pixels) or delete it"

Quality = Literal["ok", "interpolated", "no_face"]

#: ``index.jsonl`` limits: a line is about 5 KB (three sets of 68 points); a long shot's index a few hundred MB.
MAX_INDEX_BYTES = 2 * 1024**3
MAX_LINE_BYTES = 64 * 1024
_MAX_PATH = 1024
_FIX_INDEX = "extract the faceset again with `vfx extract` (it rewrites index.jsonl), or restore the file"


@dataclass(frozen=True)
class FacesetInfo:
    """What a faceset was made from and how; two runs with equal info make the same faceset."""

    source: str
    source_kind: str
    crop_size: int
    landmarker: str
    jitter_beta: float
    jitter_shifts: int
    smooth_window: int
    forehead_raise: float
    colorspace: str
    shot: str | None = None
    pixel_aspect: float = 1.0
    schema: str = FACESET_SCHEMA
    vfx_version: str = field(default_factory=lambda: vfx.__version__)

    def to_json(self) -> dict[str, Any]:
        """What ``faceset.json`` holds: the fields, ``pixel_aspect`` only for anamorphic footage (a square-pixel
        faceset's file is byte for byte what earlier versions wrote)."""
        data = asdict(self)
        if data["pixel_aspect"] == 1.0:
            data.pop("pixel_aspect")
        return data

    def identity(self) -> dict[str, Any]:
        """The fields that must match for a rerun to add to (or skip over) an existing faceset."""
        data = asdict(self)
        data.pop("vfx_version")
        return data


@dataclass(frozen=True)
class FaceRecord:
    """One line of ``index.jsonl``.

    Convention:
        - box: (x0, y0, x1, y1) plate pixels; landmarks (68, 2) plate pixels (smoothed track);
          landmarks_raw (68, 2) before the temporal filter; crop_landmarks (68, 2) crop pixels;
          matrix (2, 3) plate -> crop. All None on a ``no_face`` line.
    """

    frame: int
    track: int | None
    quality: Quality
    crop: str | None = None
    box: tuple[float, float, float, float] | None = None
    score: float | None = None
    landmarks: np.ndarray | None = None
    landmarks_raw: np.ndarray | None = None
    crop_landmarks: np.ndarray | None = None
    matrix: np.ndarray | None = None

    def to_json(self) -> str:
        data: dict[str, Any] = {"frame": self.frame, "track": self.track, "quality": self.quality}
        if self.quality != "no_face":
            data.update(
                crop=self.crop,
                box=[round(float(v), 3) for v in self.box or ()],
                score=None if self.score is None else round(float(self.score), 4),
                landmarks=_points(self.landmarks),
                landmarks_raw=_points(self.landmarks_raw),
                crop_landmarks=_points(self.crop_landmarks),
                matrix=np.asarray(self.matrix, dtype=np.float64).round(9).tolist(),
            )
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str | bytes, *, source: str = "index line") -> FaceRecord:
        """One index line, validated (types, ranges, 68 points, a 2x3 matrix, no unknown fields).

        Raises:
            MediaError: the line is not JSON or does not match; the message names ``source`` and the field.
        """
        try:
            data = _IndexLine.model_validate_json(line)
        except ValidationError as err:
            raise schema_error(err, source, _FIX_INDEX) from None
        if data.quality == "no_face":
            return cls(frame=data.frame, track=None, quality="no_face")
        return cls(
            frame=data.frame,
            track=data.track,
            quality=data.quality,
            crop=data.crop,
            box=data.box,
            score=data.score,
            landmarks=np.array(data.landmarks, dtype=np.float64),
            landmarks_raw=np.array(data.landmarks_raw, dtype=np.float64),
            crop_landmarks=np.array(data.crop_landmarks, dtype=np.float64),
            matrix=np.array(data.matrix, dtype=np.float64),
        )


def _inside(root: str, relative: str, where: str) -> str:
    """``root``/``relative`` with symlinks resolved, refused unless ``relative`` is a relative path that stays
    inside ``root`` (itself a real path) and names no special characters."""
    bad = None
    if "\0" in relative or "\\" in relative:
        bad = "a path with NUL or backslash characters"
    elif os.path.isabs(relative):
        bad = "an absolute path"
    else:
        target = os.path.realpath(os.path.join(root, relative))
        if target == root:
            bad = "the faceset folder itself"
        elif os.path.commonpath([root, target]) != root:
            bad = "a path that leads out of the folder" + (" (through a symlink)" if ".." not in Path(relative).parts
                                                           else "")
    if bad is None:
        return target
    shown = relative if len(relative) <= 80 else relative[:77] + "..."
    raise MediaError(f"{where}: the crop path {shown!r} is refused", expected="a path relative to the faceset "
                     "folder that stays inside it, e.g. crops/t00/1001.png", found=bad, fix=_FIX_INDEX +
                     "; keep the crops inside the faceset folder (no symlinks out of it)")


def _points(points: np.ndarray | None) -> list[list[float]] | None:
    return None if points is None else np.asarray(points, dtype=np.float64).round(4).tolist()


# ---------------------------------------------------------------------------------------------- schema models

_Number = Annotated[float, Field(allow_inf_nan=False, ge=-1e9, le=1e9)]
_Point = tuple[_Number, _Number]
_Points = Annotated[list[_Point], Field(min_length=68, max_length=68)]
_Row = tuple[_Number, _Number, _Number]


class _IndexLine(BaseModel):
    """One line of ``index.jsonl`` as read back: every field typed and bounded, no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    frame: int = Field(ge=-(10**9), le=10**9)
    track: Annotated[int, Field(ge=0, le=999)] | None
    quality: Quality
    crop: Annotated[str, Field(min_length=1, max_length=_MAX_PATH)] | None = None
    box: tuple[_Number, _Number, _Number, _Number] | None = None
    score: _Number | None = None
    landmarks: _Points | None = None
    landmarks_raw: _Points | None = None
    crop_landmarks: _Points | None = None
    matrix: tuple[_Row, _Row] | None = None

    @model_validator(mode="after")
    def _face_fields(self) -> _IndexLine:
        if self.quality != "no_face":
            missing = [name for name in ("track", "crop", "box", "landmarks", "landmarks_raw", "crop_landmarks",
                                         "matrix") if getattr(self, name) is None]
            if missing:
                raise ValueError(f"a {self.quality!r} line needs {', '.join(missing)} (only 'no_face' lines "
                                 "have none)")
        return self


class _InfoModel(BaseModel):
    """``faceset.json`` as read back."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    schema_: Literal["vfx.Faceset/1"] = Field(alias="schema")
    source: Annotated[str, Field(max_length=4096)]
    source_kind: Annotated[str, Field(max_length=64)]
    crop_size: int = Field(ge=4, le=4096)
    landmarker: Annotated[str, Field(max_length=256)]
    jitter_beta: float = Field(allow_inf_nan=False, ge=0, le=1e6)
    jitter_shifts: int = Field(ge=0, le=10**6)
    smooth_window: int = Field(ge=0, le=10**6)
    forehead_raise: float = Field(allow_inf_nan=False, ge=-1e6, le=1e6)
    colorspace: Annotated[str, Field(max_length=256)]
    shot: Annotated[str, Field(max_length=256)] | None = None
    pixel_aspect: float = Field(default=1.0, allow_inf_nan=False, gt=0, le=4)
    vfx_version: Annotated[str, Field(max_length=64)]


class _ExcludeItem(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    frame: int = Field(ge=-(10**9), le=10**9)
    track: Annotated[int, Field(ge=0, le=999)] | None = None
    reason: Annotated[str, Field(max_length=_MAX_NOTE)] = ""


class _ExcludeFile(BaseModel):
    """``exclude.json`` as read back."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    schema_: Literal["vfx.FacesetExclude/1"] = Field(alias="schema")
    faces: Annotated[list[_ExcludeItem], Field(max_length=MAX_EXCLUDES)]


class _OverrideLine(BaseModel):
    """One line of ``overrides.jsonl`` as read back."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    frame: int = Field(ge=-(10**9), le=10**9)
    track: int = Field(ge=0, le=999)
    points: Annotated[dict[Annotated[str, Field(pattern=r"^(0|[1-9][0-9]?)$")], _Point],
                      Field(min_length=1, max_length=68)]
    note: Annotated[str, Field(max_length=_MAX_NOTE)] = ""

    @model_validator(mode="after")
    def _point_numbers(self) -> _OverrideLine:
        bad = sorted((k for k in self.points if int(k) > 67), key=int)
        if bad:
            raise ValueError(f"point numbers are 0-67 (the 68-point scheme); found {', '.join(bad)}")
        return self


@dataclass(frozen=True)
class ExcludeEntry:
    """One face taken out of training: ``frame`` of ``track`` (None: every track of that frame), and why."""

    frame: int
    track: int | None = None
    reason: str = ""

    def covers(self, frame: int, track: int | None) -> bool:
        return frame == self.frame and (self.track is None or self.track == track)


@dataclass(frozen=True)
class LandmarkOverride:
    """Landmarks an artist fixed on one face: ``points`` maps a point number (0-67) to its (x, y) plate pixels.

    Convention:
        points in plate pixels (like :attr:`FaceRecord.landmarks`), pixel centres at integers, origin top-left.
    """

    frame: int
    track: int
    points: dict[int, tuple[float, float]]
    note: str = ""

    def to_json(self) -> str:
        data: dict[str, Any] = {"frame": self.frame, "track": self.track,
                                "points": {str(k): [round(float(x), 4), round(float(y), 4)]
                                           for k, (x, y) in sorted(self.points.items())}}
        if self.note:
            data["note"] = self.note
        return json.dumps(data, separators=(",", ":"))


def read_overrides(folder: str | os.PathLike[str]) -> dict[tuple[int, int], LandmarkOverride]:
    """The landmark overrides of the faceset in ``folder`` (``overrides.jsonl``; none when it is absent), by
    (frame, track). Several lines for one face merge in file order: a later line's points win.

    Raises:
        MediaError: the file is too large, a line too long, not JSON or not an override (the message names the
            file, the line and the field).
    """
    path = Path(folder) / Faceset.OVERRIDES_FILE
    if not path.is_file():
        return {}
    merged: dict[tuple[int, int], LandmarkOverride] = {}
    for where, line in _json_lines(path, f"Landmark overrides {path}", max_bytes=MAX_OVERRIDES_BYTES,
                                   max_line=_MAX_OVERRIDE_LINE, one_face="about 2 KB", fix=_FIX_OVERRIDES):
        try:
            data = _OverrideLine.model_validate_json(line)
        except ValidationError as err:
            raise schema_error(err, where, _FIX_OVERRIDES) from None
        key = (data.frame, data.track)
        points = dict(merged[key].points) if key in merged else {}
        points.update({int(k): (float(x), float(y)) for k, (x, y) in data.points.items()})
        note = data.note or (merged[key].note if key in merged else "")
        merged[key] = LandmarkOverride(data.frame, data.track, points, note)
    return merged


def _json_lines(path: Path, what: str, *, max_bytes: int, max_line: int, one_face: str,
                fix: str) -> Iterator[tuple[str, bytes]]:
    """The non-blank lines of a JSON-lines file with where each is (``"<what>, line N"``), read with caps: the
    file at most ``max_bytes``, a line at most ``max_line`` bytes, neither read whole before it is checked.

    Raises:
        MediaError: the file is too large or a line too long.
    """
    size = path.stat().st_size
    if size > max_bytes:
        unit, name = (1024**3, "GB") if max_bytes >= 1024**3 else (1024**2, "MB")
        raise MediaError(f"{what} is too large", expected=f"at most {max_bytes // unit} {name} (one face: {one_face})",
                         found=f"{size / unit:.1f} {name}", fix=fix)
    with path.open("rb") as handle:
        number = 0
        while line := handle.readline(max_line + 1):
            number += 1
            where = f"{what}, line {number}"
            if len(line) > max_line and not line.endswith(b"\n"):
                raise MediaError(f"{where} is too long", expected=f"lines of at most {max_line // 1024} KB "
                                 f"(one face: {one_face})", found="a longer line", fix=fix)
            if line.strip():
                yield where, line


def write_overrides(folder: str | os.PathLike[str], overrides: Sequence[LandmarkOverride]) -> Path:
    """Write ``overrides.jsonl`` of the faceset in ``folder`` atomically (sorted by frame, then track)."""
    path = Path(folder) / Faceset.OVERRIDES_FILE
    ordered = sorted(overrides, key=lambda o: (o.frame, o.track))
    atomic_write_text(path, "".join(o.to_json() + "\n" for o in ordered))
    return path


def apply_overrides(records: Sequence[FaceRecord],
                    overrides: dict[tuple[int, int], LandmarkOverride]) -> list[FaceRecord]:
    """The records with the artist's points put in: each overridden point replaces the smoothed plate landmark,
    and the crop landmarks are recomputed through the record's own plate -> crop matrix.

    The matrix (and so the crop on disk) is kept: an override corrects where the points lie on the face (the
    training mask and the landmark loss follow them), not how the crop is framed. ``landmarks_raw`` keeps what the
    landmarker found. Applying the same overrides twice gives the same records; a record without a face, or with no
    override, is returned as it is; an override that matches no face changes nothing (see
    :func:`unmatched_overrides`).

    Convention:
        override points in plate pixels; ``crop_landmarks = transform_points(landmarks, matrix)``.
    """
    if not overrides:
        return list(records)
    out = []
    for record in records:
        fix = overrides.get((record.frame, record.track)) if record.track is not None else None
        if fix is None or record.landmarks is None or record.matrix is None:
            out.append(record)
            continue
        points = np.array(record.landmarks, dtype=np.float64, copy=True)
        for number, point in fix.points.items():
            points[number] = point
        out.append(replace(record, landmarks=points, crop_landmarks=transform_points(points, record.matrix)))
    return out


def unmatched_overrides(records: Sequence[FaceRecord],
                        overrides: dict[tuple[int, int], LandmarkOverride]) -> list[LandmarkOverride]:
    """The overrides that name no face of ``records`` (a frame or track the index does not have)."""
    faces = {(r.frame, r.track) for r in records if r.quality != "no_face"}
    return [o for key, o in sorted(overrides.items()) if key not in faces]


class Faceset:
    """A faceset folder. Open an existing one with :meth:`open`, make or reuse one with :meth:`create`."""

    INFO_FILE = "faceset.json"
    INDEX_FILE = "index.jsonl"
    EXCLUDE_FILE = "exclude.json"
    OVERRIDES_FILE = "overrides.jsonl"

    def __init__(self, folder: Path, info: FacesetInfo) -> None:
        self.folder = Path(folder)
        self.info = info

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> Faceset:
        """Open an existing faceset.

        Raises:
            MediaError: the folder is missing or is not a faceset of a schema this version reads.
        """
        folder = Path(folder)
        info_path = folder / cls.INFO_FILE
        if not info_path.is_file():
            raise MediaError(f"No faceset at {folder}", expected=f"a folder with {cls.INFO_FILE}",
                             found="no such folder" if not folder.exists() else "a folder without it",
                             fix="run `vfx extract` to make one")
        fix = "re-extract with this vfx version (`vfx extract`)"
        data = read_stamped(info_path, FACESET_SCHEMA, what="faceset", fix=fix)
        try:
            checked = _InfoModel.model_validate(data)
        except ValidationError as err:
            raise schema_error(err, f"Faceset info {info_path}", fix) from None
        return cls(folder, FacesetInfo(**checked.model_dump(exclude={"schema_"})))

    @classmethod
    def create(cls, folder: str | os.PathLike[str], info: FacesetInfo) -> Faceset:
        """Make a faceset folder, or reuse one made from the same source with the same settings.

        Raises:
            ConfigError: the folder holds a faceset of another source or other settings, or other files.
        """
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"Faceset path {folder} is a file", expected="a folder (new or a faceset)",
                              found="a file", fix="choose another --out folder, or move the file away")
        if (folder / cls.INFO_FILE).is_file():
            existing = cls.open(folder)
            theirs, ours = existing.info.identity(), info.identity()
            if theirs != ours:
                differences = ", ".join(f"{k}: {theirs[k]!r} here, {ours[k]!r} asked"
                                        for k in ours if theirs.get(k) != ours[k])
                raise ConfigError(
                    f"Faceset folder {folder} already holds another faceset",
                    expected="the same source and settings as the faceset there, to resume it",
                    found=differences,
                    fix="choose another --out folder, or delete that one to start over",
                )
            return existing
        if folder.is_dir() and any(folder.iterdir()):
            raise ConfigError(f"Faceset folder {folder} is not empty and holds no faceset",
                              expected="a new or empty folder", found="other files and no faceset.json",
                              fix="choose another --out folder")
        folder.mkdir(parents=True, exist_ok=True)
        write_stamped(folder / cls.INFO_FILE, FACESET_SCHEMA, info.to_json())
        return cls(folder, info)

    def crop_path(self, track: int, frame: int) -> Path:
        return self.folder / self.crop_name(track, frame)

    @staticmethod
    def crop_name(track: int, frame: int) -> str:
        return f"crops/t{track:02d}/{frame}.png"

    def write_index(self, records: Sequence[FaceRecord]) -> bool:
        """Write the index (sorted by frame, then track); returns False when it was already identical."""
        ordered = sorted(records, key=lambda r: (r.frame, -1 if r.track is None else r.track))
        text = "".join(record.to_json() + "\n" for record in ordered)
        path = self.folder / self.INDEX_FILE
        if path.is_file() and path.read_text() == text:
            return False
        atomic_write_text(path, text)
        return True

    def records(self, *, overrides: bool = True) -> Iterator[FaceRecord]:
        """The index, line by line (empty when no index has been written yet), each line validated, with the
        artist's landmark overrides (``overrides.jsonl``) applied (:func:`apply_overrides`; ``overrides=False``:
        the index as extraction wrote it).

        Raises:
            MediaError: the index is too large, a line is too long, not JSON or does not match the schema, or a
                ``crop`` path is absolute or leads out of the faceset folder (symlinks resolved); the message
                names the file, the line and the field. The same for a bad ``overrides.jsonl``.
        """
        path = self.folder / self.INDEX_FILE
        if not path.is_file():
            return
        fixes = read_overrides(self.folder) if overrides else {}
        root = os.path.realpath(self.folder)
        for where, line in _json_lines(path, f"Faceset index {path}", max_bytes=MAX_INDEX_BYTES,
                                       max_line=MAX_LINE_BYTES, one_face="about 5 KB", fix=_FIX_INDEX):
            record = FaceRecord.from_json(line, source=where)
            if record.crop is not None:
                _inside(root, record.crop, where)
            yield apply_overrides([record], fixes)[0] if fixes else record

    def crop_file(self, record: FaceRecord) -> Path:
        """The crop file of ``record``, checked to lie inside the faceset folder (symlinks resolved).

        Raises:
            MediaError: the record has no crop, or its path is absolute or leads out of the folder.
        """
        if record.crop is None:
            raise MediaError(f"Frame {record.frame} of faceset {self.folder} has no crop",
                             expected="a face line with a crop", found=f"quality {record.quality!r}",
                             fix="leave 'no_face' lines out (Faceset.faces() does)")
        return Path(_inside(os.path.realpath(self.folder), record.crop, f"Faceset {self.folder}, frame {record.frame}"))

    def faces(self, track: int | None = None, *, include_excluded: bool = False) -> list[FaceRecord]:
        """Records that have a crop, optionally of one track, without the faces ``exclude.json`` takes out of
        training (``include_excluded=True``: every face, for curation)."""
        excluded = () if include_excluded else self.excluded()
        whole_frames = {e.frame for e in excluded if e.track is None}
        faces = {(e.frame, e.track) for e in excluded if e.track is not None}
        return [r for r in self.records() if r.quality != "no_face" and (track is None or r.track == track)
                and r.frame not in whole_frames and (r.frame, r.track) not in faces]

    def excluded(self) -> tuple[ExcludeEntry, ...]:
        """The faces an artist took out of training (``exclude.json``; none when it is absent), in file order.

        Raises:
            MediaError: the file is not a ``vfx.FacesetExclude/1`` file, has unknown fields, wrong types or more
                than :data:`MAX_EXCLUDES` entries (the message names the field).
        """
        path = self.folder / self.EXCLUDE_FILE
        if not path.is_file():
            return ()
        data = read_stamped(path, EXCLUDE_SCHEMA, what="exclude list", fix=_FIX_EXCLUDE)
        try:
            checked = _ExcludeFile.model_validate(data)
        except ValidationError as err:
            raise schema_error(err, f"Exclude list {path}", _FIX_EXCLUDE) from None
        return tuple(ExcludeEntry(e.frame, e.track, e.reason) for e in checked.faces)

    def write_excluded(self, entries: Sequence[ExcludeEntry]) -> Path:
        """Write ``exclude.json`` atomically (entries sorted by frame, then track; an entry for every track of a
        frame first). An empty list removes the file."""
        path = self.folder / self.EXCLUDE_FILE
        if len(entries) > MAX_EXCLUDES:
            raise ConfigError(f"Too many faces to exclude from {self.folder}", expected=f"at most {MAX_EXCLUDES}",
                              found=str(len(entries)), fix="exclude fewer faces, or extract fewer frames")
        if not entries:
            path.unlink(missing_ok=True)
            return path
        ordered = sorted(entries, key=lambda e: (e.frame, -1 if e.track is None else e.track))
        write_stamped(path, EXCLUDE_SCHEMA, {"faces": [asdict(e) for e in ordered]})
        return path
