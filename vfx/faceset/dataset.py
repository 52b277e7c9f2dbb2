"""A faceset as a torch Dataset: aligned crops with their landmarks, ready for a DataLoader."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import Dataset

from vfx.faceset.store import FaceRecord, Faceset
from vfx.io.image import read_image

__all__ = ["FacesetDataset"]


class FacesetDataset(Dataset):
    """The faces of a faceset (frames with no face are left out), optionally of one track only.

    Each item is a dict:

    - ``image``: (3, r, r) float32 RGB in [0, 1] (the crop as written, in the working space);
    - ``landmarks``: (68, 2) float32 crop pixels;
    - ``frame``, ``track``: ints; ``interpolated``: bool (the face was filled in across a detector gap).

    Args:
        faceset: a :class:`Faceset` or its folder.
        track: only this track (0 = the main face); None: every track.
        include_interpolated: keep faces that were interpolated across a gap (they are less reliable).

    Convention:
        image (C, H, W) float32 in [0, 1]; landmarks (x, y) crop pixels, pixel centres at integers.
    """

    def __init__(self, faceset: Faceset | str | os.PathLike[str], *, track: int | None = None,
                 include_interpolated: bool = True) -> None:
        self.faceset = faceset if isinstance(faceset, Faceset) else Faceset.open(faceset)
        self.records: list[FaceRecord] = [
            r for r in self.faceset.faces(track) if include_interpolated or r.quality != "interpolated"
        ]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, object]:
        record = self.records[index]
        pixels = read_image(self.faceset.crop_file(record)).pixels[..., :3]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))),
            "landmarks": torch.from_numpy(np.asarray(record.crop_landmarks, dtype=np.float32)),
            "frame": record.frame,
            "track": record.track,
            "interpolated": record.quality == "interpolated",
        }
