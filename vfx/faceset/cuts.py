"""Camera cuts inside a plate: where one continuous shot ends and the next begins.

A face track, the temporal landmark filter and gap interpolation must never reach across a cut: the same
screen position on either side is a different shot. The cuts come from the shot file (``plate.cuts``, an
editor's list, which wins) or are found by PySceneDetect's content detector (``ContentDetector``: the mean
change of hue, saturation and luma between consecutive frames, a cut where it passes :data:`THRESHOLD`, and no
two cuts closer than :data:`MIN_SHOT_FRAMES`). The frames are fed to the detector from the plate reader (a
small working-space copy of each frame), so EXR and DPX sequences are handled like movies.

The cuts found for a faceset are kept beside its index (``cuts.json``) and reused while the frames and the
settings are the same.

Convention:
    A cut is the first frame of a new camera shot. Frames are plate frame numbers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vfx.io.color import to_working
from vfx.io.plate import Plate, check_cuts
from vfx.shot.frames import FrameRange, format_frames
from vfx.utils.atomic import atomic_write_text

__all__ = ["CUTS_FILE", "DETECTOR", "MIN_SHOT_FRAMES", "THRESHOLD", "Cuts", "detect_cuts",
           "read_cuts", "segments", "shot_cuts"]

log = logging.getLogger(__name__)

THRESHOLD = 27.0
"""ContentDetector's threshold (its default): the weighted mean HSV change, 0-255, that makes a cut."""
MIN_SHOT_FRAMES = 8
"""No cut closer than this to the one before (a flash or a whip pan is not two cuts)."""
DETECT_WIDTH = 256
"""Frames are scaled down to this width for the detector (its scores barely change; it runs ~10x faster)."""
DETECTOR = f"PySceneDetect ContentDetector (threshold {THRESHOLD:g}, min_scene_len {MIN_SHOT_FRAMES})"
CUTS_FILE = "cuts.json"


@dataclass(frozen=True)
class Cuts:
    """The cuts of a run of frames and where they came from.

    Attributes:
        frames: the frames searched (``str`` of a :class:`~vfx.shot.frames.FrameRange`).
        cuts: the first frame of every new camera shot, ascending, inside ``frames`` (never its first frame).
        source: ``"shot file"`` or :data:`DETECTOR`.
    """

    frames: str
    cuts: tuple[int, ...]
    source: str

    def to_json(self) -> str:
        return json.dumps({"frames": self.frames, "cuts": list(self.cuts), "source": self.source}, indent=1) + "\n"


def segments(frames: Iterable[int], cuts: Sequence[int]) -> list[list[int]]:
    """``frames`` split at ``cuts``: one list per camera shot, in order (empty pieces dropped).

    Example:
        >>> segments(range(1001, 1007), [1003, 1005])
        [[1001, 1002], [1003, 1004], [1005, 1006]]
    """
    starts = set(cuts)
    pieces: list[list[int]] = [[]]
    for frame in frames:
        if frame in starts and pieces[-1]:
            pieces.append([])
        pieces[-1].append(frame)
    return [p for p in pieces if p]


def detect_cuts(plate: Plate, frames: FrameRange, *, threshold: float = THRESHOLD) -> tuple[int, ...]:
    """The cuts PySceneDetect's content detector finds in ``frames`` of ``plate`` (one decode of each frame).

    Frames that do not follow one another (a range with holes) are a cut of their own: the detector compares
    consecutive frames only, so a hole starts a new comparison.
    """
    from scenedetect.common import FrameTimecode
    from scenedetect.detectors import ContentDetector

    found: list[int] = []
    detector: ContentDetector | None = None
    previous: int | None = None
    fps = float(plate.fps)
    for frame in frames:
        if previous is None or frame != previous + 1:
            detector = ContentDetector(threshold=threshold, min_scene_len=MIN_SHOT_FRAMES)
            if previous is not None:
                found.append(frame)
        previous = frame
        found += [int(t.frame_num) + frames.first for t in detector.process_frame(  # type: ignore[union-attr]
            FrameTimecode(frame - frames.first, fps=fps), _small_bgr(plate, frame))]
    return tuple(sorted(set(c for c in found if c != frames.first and c in frames)))


def _small_bgr(plate: Plate, frame: int) -> np.ndarray:
    rgb = plate.read(frame).rgb()
    height, width = rgb.shape[:2]
    if width > DETECT_WIDTH:
        rgb = cv2.resize(rgb, (DETECT_WIDTH, max(1, round(height * DETECT_WIDTH / width))), interpolation=cv2.INTER_AREA)
    shown = np.clip(to_working(rgb, plate.colorspace), 0.0, 1.0)
    return np.ascontiguousarray((shown[:, :, ::-1] * 255 + 0.5).astype(np.uint8))


def read_cuts(folder: Path) -> Cuts | None:
    """The cuts kept in a faceset folder, or None (none kept, or a file this code did not write)."""
    path = Path(folder) / CUTS_FILE
    if not path.is_file() or path.stat().st_size > 1 << 20:
        return None
    try:
        data = json.loads(path.read_text())
        cuts = tuple(int(c) for c in data["cuts"] if isinstance(c, int) and not isinstance(c, bool))
        if len(cuts) != len(data["cuts"]) or not isinstance(data["frames"], str) or not isinstance(data["source"], str):
            raise ValueError("wrong types")
        return Cuts(frames=data["frames"], cuts=cuts, source=data["source"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("ignoring %s (%s); finding the cuts again", path, err)
        return None


def shot_cuts(plate: Plate, frames: FrameRange, folder: Path, given: Sequence[int] | None) -> tuple[Cuts, bool]:
    """The cuts of ``frames``: the shot file's (``given``), else those kept in ``folder`` for the same frames,
    else found now; kept in ``folder``. Returns them and whether they differ from those kept before (the
    faceset's tracks, and so its crops, are then out of date).

    Raises:
        ConfigError: a given cut outside the plate.
    """
    kept = read_cuts(folder)
    if given is not None:
        cuts = Cuts(str(frames), tuple(c for c in check_cuts(given, plate.frame_range, "the shot file")
                                       if c in frames and c != frames.first), "shot file")
    elif kept is not None and kept.frames == str(frames) and kept.source == DETECTOR:
        return kept, False
    else:
        cuts = Cuts(str(frames), detect_cuts(plate, frames), DETECTOR)
        log.info("cuts in %s: %s (%s)", plate.path, format_frames(cuts.cuts) if cuts.cuts else "none", DETECTOR)
    changed = kept is not None and kept.cuts != cuts.cuts
    if kept != cuts:
        atomic_write_text(Path(folder) / CUTS_FILE, cuts.to_json())
    return cuts, changed
