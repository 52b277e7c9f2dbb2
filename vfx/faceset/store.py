"""Facesets on disk, schema ``vfx.Faceset/1``: aligned face crops plus a JSON-lines index.

Layout of a faceset folder::

    faceset.json          schema, source media, settings (crop size, landmarker, jitter, smoothing)
    index.jsonl           one line per frame and face: frame, track, box, plate and crop landmarks,
                          plate->crop matrix, quality flag, crop file; frames without a face have a
                          line with "track": null and "quality": "no_face"
    crops/t00/1001.png    the aligned crop of track 0 on frame 1001 (8-bit, or 16-bit for deep sources)

Every file is written atomically; ``index.jsonl`` is rewritten whole at the end of a run, so a reader
never sees half an index. A folder holds one source: extracting another shot into it is an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

import vfx
from vfx.errors import ConfigError, MediaError
from vfx.utils.atomic import atomic_write_text
from vfx.utils.stamped import read_stamped, write_stamped

__all__ = ["FACESET_SCHEMA", "FacesetInfo", "FaceRecord", "Faceset", "Quality"]

FACESET_SCHEMA = "vfx.Faceset/1"

Quality = Literal["ok", "interpolated", "no_face"]


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
    schema: str = FACESET_SCHEMA
    vfx_version: str = field(default_factory=lambda: vfx.__version__)

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
    def from_json(cls, line: str) -> FaceRecord:
        data = json.loads(line)
        if data["quality"] == "no_face":
            return cls(frame=data["frame"], track=None, quality="no_face")
        return cls(
            frame=data["frame"],
            track=data["track"],
            quality=data["quality"],
            crop=data["crop"],
            box=tuple(data["box"]),
            score=data.get("score"),
            landmarks=np.array(data["landmarks"], dtype=np.float64),
            landmarks_raw=np.array(data["landmarks_raw"], dtype=np.float64),
            crop_landmarks=np.array(data["crop_landmarks"], dtype=np.float64),
            matrix=np.array(data["matrix"], dtype=np.float64),
        )


def _points(points: np.ndarray | None) -> list[list[float]] | None:
    return None if points is None else np.asarray(points, dtype=np.float64).round(4).tolist()


class Faceset:
    """A faceset folder. Open an existing one with :meth:`open`, make or reuse one with :meth:`create`."""

    INFO_FILE = "faceset.json"
    INDEX_FILE = "index.jsonl"

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
        data = read_stamped(info_path, FACESET_SCHEMA, what="faceset", fix="re-extract with this vfx version")
        return cls(folder, FacesetInfo(**data))

    @classmethod
    def create(cls, folder: str | os.PathLike[str], info: FacesetInfo) -> Faceset:
        """Make a faceset folder, or reuse one made from the same source with the same settings.

        Raises:
            ConfigError: the folder holds a faceset of another source or other settings, or other files.
        """
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"Faceset path {folder} is a file", expected="a folder (new or a faceset)")
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
                              expected="a new or empty folder", fix="choose another --out folder")
        folder.mkdir(parents=True, exist_ok=True)
        write_stamped(folder / cls.INFO_FILE, FACESET_SCHEMA, asdict(info))
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

    def records(self) -> Iterator[FaceRecord]:
        """The index, line by line (empty when no index has been written yet)."""
        path = self.folder / self.INDEX_FILE
        if not path.is_file():
            return
        with path.open() as handle:
            for line in handle:
                if line.strip():
                    yield FaceRecord.from_json(line)

    def faces(self, track: int | None = None) -> list[FaceRecord]:
        """Records that have a crop, optionally of one track."""
        return [r for r in self.records() if r.quality != "no_face" and (track is None or r.track == track)]
