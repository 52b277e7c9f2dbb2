"""Pictures to check a faceset by eye: a contact sheet of sample crops with their landmarks, and a plot
of each track's landmark jitter over time."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vfx.face.smooth import RIGID_LANDMARKS, high_pass
from vfx.faceset.cuts import read_cuts, segments
from vfx.faceset.store import FaceRecord, Faceset
from vfx.io.image import read_image, write_image
from vfx.utils.plots import pyplot, save_figure

__all__ = ["write_contact_sheet", "write_jitter_plot", "track_jitter"]


def write_contact_sheet(faceset: Faceset, path: str | os.PathLike[str], *, max_faces: int = 24,
                        columns: int = 6, tile_px: int = 160) -> Path:
    """Write a PNG grid of up to ``max_faces`` crops, evenly spread over the shot, landmarks drawn in.

    Green dots: landmarks of a detected face; orange: an interpolated one. The caption is track/frame.
    """
    import cv2

    faces = faceset.faces()
    if len(faces) > max_faces:
        faces = [faces[i] for i in np.linspace(0, len(faces) - 1, max_faces).round().astype(int)]
    rows = max(1, -(-len(faces) // columns))
    sheet = np.full((rows * tile_px, columns * tile_px, 3), 32, dtype=np.uint8)
    for index, record in enumerate(faces):
        crop = read_image(faceset.folder / record.crop).pixels[..., :3]
        tile = np.ascontiguousarray(np.clip(crop * 255 + 0.5, 0, 255).astype(np.uint8))
        scale = tile_px / tile.shape[0]
        tile = cv2.resize(tile, (tile_px, tile_px), interpolation=cv2.INTER_AREA)
        colour = (255, 160, 0) if record.quality == "interpolated" else (0, 255, 0)
        for x, y in record.crop_landmarks * scale:
            cv2.circle(tile, (int(round(x)), int(round(y))), 1, colour, -1, lineType=cv2.LINE_AA)
        cv2.putText(tile, f"t{record.track} {record.frame}", (4, tile_px - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (255, 255, 255), 1, cv2.LINE_AA)
        row, col = divmod(index, columns)
        sheet[row * tile_px:(row + 1) * tile_px, col * tile_px:(col + 1) * tile_px] = tile
    path = Path(path)
    write_image(path, sheet, channels=("R", "G", "B"), dtype="uint8")
    return path


def track_jitter(records: list[FaceRecord], *, smoothed: bool = True, cutoff_frames: float = 6.0) -> np.ndarray:
    """Per-frame high-frequency residual of one track's skull-fixed landmarks, in inter-ocular distances.

    The residual is :func:`vfx.face.smooth.high_pass` of :data:`~vfx.face.smooth.RIGID_LANDMARKS` (the
    points that set the alignment; speech and blinks are left out), its mean point length per frame divided
    by the track's median inter-ocular distance: what makes an aligned crop shimmer. ``records`` are the
    track's in frame order; gaps in the frame numbers split the filter's runs (runs under 3 frames give NaN).
    """
    points = np.stack([r.landmarks if smoothed else r.landmarks_raw for r in records])  # (T, 68, 2)
    rigid = points[:, list(RIGID_LANDMARKS)]
    residual = np.concatenate([high_pass(rigid[a:b], cutoff_frames=cutoff_frames)
                               for a, b in _contiguous(np.array([r.frame for r in records]))])
    eyes = points[:, 42:48].mean(axis=1) - points[:, 36:42].mean(axis=1)
    interocular = float(np.median(np.linalg.norm(eyes, axis=-1)))
    return np.linalg.norm(residual, axis=-1).mean(axis=1) / interocular


def _contiguous(frames: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of the runs of consecutive frame numbers."""
    breaks = np.flatnonzero(np.diff(frames) != 1) + 1
    edges = [0, *breaks.tolist(), len(frames)]
    return list(zip(edges[:-1], edges[1:]))


def write_jitter_plot(faceset: Faceset, path: str | os.PathLike[str]) -> Path:
    """Write a PNG with, per track, the landmark jitter over time before and after the temporal filter, each
    camera shot on its own, the faceset's cuts marked."""
    plt = pyplot()
    by_track: dict[int, list[FaceRecord]] = {}
    for record in faceset.faces():
        by_track.setdefault(record.track, []).append(record)
    fig, axes = plt.subplots(max(1, len(by_track)), 1, figsize=(10, 2.6 * max(1, len(by_track))), squeeze=False)
    kept = read_cuts(faceset.folder)
    cuts = kept.cuts if kept is not None else ()
    for axis, (track, records) in zip(axes[:, 0], sorted(by_track.items())):
        # one camera shot at a time: the jitter high-pass never runs over a cut
        pieces = [[r for r in records if r.frame in piece] for piece in segments([r.frame for r in records], cuts)]
        for smoothed, label, colour in ((False, "averaged (9 boxes)", "C0"), (True, "averaged + temporal filter", "C1")):
            values = [(piece, track_jitter(piece, smoothed=smoothed)) for piece in pieces if len(piece) >= 3]
            if not values:
                continue
            mean = np.nanmean(np.concatenate([jitter for _, jitter in values]))
            for index, (piece, jitter) in enumerate(values):
                axis.plot([r.frame for r in piece], jitter * 100, color=colour,
                          label=f"{label}: mean {mean * 100:.3f} %" if index == 0 else None)
        for index, cut in enumerate(cuts):
            axis.axvline(cut - 0.5, color="red", linestyle="--", linewidth=1, label="cut" if index == 0 else None)
        axis.set_title(f"track {track}: jitter of the skull-fixed landmarks (above 1 cycle / 6 frames), "
                       "% of inter-ocular distance")
        axis.set_xlabel("frame")
        axis.legend(loc="upper right", fontsize=8)
        axis.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)
