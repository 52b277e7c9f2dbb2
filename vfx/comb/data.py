"""Training data of the comb network: one persona's aligned crops and face masks, batched and augmented.

A persona's crops are read once from its facesets, resized to the network's final resolution and held as
uint8 tensors (3 bytes a pixel: 1000 crops at 256² are 200 MB), on the GPU itself when training on CUDA
(:meth:`PersonaData.to`), so a batch is gathered there with no host copy. A batch is drawn by index with the
trainer's seeded generator, then augmented on the device in one batched call (a small random similarity warp of crop and mask together, a
light colour jitter, the light augmentation a face-swap trainer uses) and area-downsampled to the current
level's size. No worker processes are needed: the data is already decoded, and the augmentation is a few
tensor ops on the device.

Convention:
    images (B, 3, s, s) float32 in [0, 1] (working-space RGB); masks (B, 1, s, s) float32 in [0, 1].
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from vfx.errors import ConfigError
from vfx.face.mask import face_mask
from vfx.faceset.store import Faceset
from vfx.io.image import read_image

__all__ = ["Augmentation", "PersonaData", "augment", "resize_to"]


@dataclass(frozen=True)
class Augmentation:
    """Random per-crop changes (uniform in +-the value); all zero switches augmentation off."""

    rotate_deg: float = 3.0
    scale: float = 0.03
    shift: float = 0.02
    """Fraction of the crop size."""
    brightness: float = 0.04
    contrast: float = 0.05
    saturation: float = 0.05

    @classmethod
    def none(cls) -> Augmentation:
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


class PersonaData(Dataset):
    """The crops of one persona (every face of track 0 of each faceset, or of ``track``), in memory.

    A torch Dataset: item ``i`` is ``(image (3, s, s), mask (1, s, s))`` at :attr:`size` (set it to the
    current level's size; default the full resolution), unaugmented, for a DataLoader or for evaluation.
    The trainer draws whole augmented batches with :meth:`batch` instead, which is one gather and a few
    batched ops on the device rather than B separate item calls.

    Args:
        name: the persona.
        facesets: faceset folders (or :class:`Faceset`), read in order.
        resolution: the network's final crop size; crops of another size are resized (area / cubic).
        track: which track of each faceset (0: the main face).
        holdout: the last fraction of each faceset's faces kept out of training (:attr:`held_out`).
        forehead_raise: the face mask's forehead, as in :func:`vfx.face.mask.face_mask`.

    Raises:
        ConfigError: a faceset without faces of that track.
    """

    def __init__(self, name: str, facesets: Sequence[Faceset | str | os.PathLike[str]], resolution: int, *,
                 track: int = 0, holdout: float = 0.0, forehead_raise: float = 0.25) -> None:
        if not 0.0 <= holdout < 1.0:
            raise ConfigError("Invalid hold-out fraction", expected="a number in [0, 1)", found=repr(holdout),
                              fix="--holdout 0.1 (the default), or model.training.holdout in the shot file")
        self.name = name
        self.resolution = resolution
        images, masks, held_images, held_masks = [], [], [], []
        digest = hashlib.sha256()
        for item in facesets:
            faceset = item if isinstance(item, Faceset) else Faceset.open(item)
            records = [r for r in faceset.faces(track) if r.crop is not None]
            if not records:
                raise ConfigError(f"Faceset {faceset.folder} has no faces of track {track}",
                                  expected="a faceset made by vfx extract with at least one face",
                                  found="no faces", fix="check the extract summary, or pick another track")
            cut = len(records) - int(round(len(records) * holdout))
            for index, record in enumerate(records):
                crop = read_image(faceset.folder / record.crop).pixels[..., :3]
                scale = resolution / crop.shape[0]
                if crop.shape[0] != resolution:
                    crop = cv2.resize(crop, (resolution, resolution),
                                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
                rgb = _to_uint8(crop)
                mask = face_mask(record.crop_landmarks * scale + (scale - 1) / 2, resolution,
                                 forehead_raise=forehead_raise)
                digest.update(rgb.tobytes())
                (images if index < cut else held_images).append(rgb)
                (masks if index < cut else held_masks).append(_to_uint8(mask))
        self._store(images, masks, held_images, held_masks, digest.hexdigest()[:16])

    def _store(self, images: list[np.ndarray], masks: list[np.ndarray], held_images: list[np.ndarray],
               held_masks: list[np.ndarray], data_hash: str) -> None:
        self.data_hash = data_hash
        self._images, self._masks = _stack(images, 3), _stack(masks, 1)
        self.held_out = (_stack(held_images, 3), _stack(held_masks, 1))

    @classmethod
    def from_arrays(cls, name: str, images: np.ndarray, masks: np.ndarray | None = None, *,
                    holdout: float = 0.0) -> PersonaData:
        """Crops already in memory: images (N, r, r, 3) uint8 or float in [0, 1], masks (N, r, r) (default: 1)."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2]:
            raise ConfigError("Invalid persona crops", expected="(N, r, r, 3) square RGB crops",
                              found=str(images.shape), fix="pass crops as an (N, r, r, 3) array of one square size")
        if images.dtype != np.uint8:
            images = _to_uint8(images)
        masks = np.full(images.shape[:3], 255, np.uint8) if masks is None else _to_uint8(np.asarray(masks))
        data = cls.__new__(cls)
        data.name, data.resolution = name, images.shape[1]
        cut = len(images) - int(round(len(images) * holdout))
        data._store(list(images[:cut]), list(masks[:cut]), list(images[cut:]), list(masks[cut:]),
                    hashlib.sha256(images.tobytes()).hexdigest()[:16])
        return data

    def __len__(self) -> int:
        return len(self._images)

    @property
    def size(self) -> int:
        return getattr(self, "_size", self.resolution)

    @size.setter
    def size(self, value: int) -> None:
        self._size = int(value)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = self._images[index : index + 1].float().div(255.0)
        mask = self._masks[index : index + 1].float().div(255.0)
        return resize_to(image, self.size)[0], resize_to(mask, self.size)[0]

    def to(self, device: torch.device | str) -> PersonaData:
        """Keep the training crops on ``device`` (a GPU): batches are then gathered there, with no host copy.

        uint8 crops are small (1000 at 256² are 200 MB; at 1024², 3 GB); where they do not fit, keep them on
        the CPU and the batches are copied over step by step.
        """
        self._images, self._masks = self._images.to(device), self._masks.to(device)
        return self

    def batch(self, size: int, batch_size: int, generator: torch.Generator, *, device: torch.device | str = "cpu",
              augmentation: Augmentation = Augmentation()) -> tuple[Tensor, Tensor]:
        """A random batch at ``size``² (a level's size): images (B, 3, s, s) and masks (B, 1, s, s) on ``device``.

        The generator (a CPU generator) draws the indices and every augmentation parameter, so a seeded run
        draws the same batches again, and resuming from its saved state continues the same sequence.
        """
        if len(self) == 0:
            raise ConfigError(f"Persona {self.name!r} has no training crops", expected="at least one face",
                              found="none (all held out?)",
                              fix="extract more frames of the persona, or lower --holdout")
        index = torch.randint(len(self), (batch_size,), generator=generator).to(self._images.device)
        params = torch.rand(batch_size, 6, generator=generator) * 2 - 1  # one row of draws per crop
        images = self._images[index].to(device, non_blocking=True).float().div_(255.0)
        masks = self._masks[index].to(device, non_blocking=True).float().div_(255.0)
        images, masks = augment(images, masks, params.to(device), augmentation)
        return resize_to(images, size), resize_to(masks, size)


def augment(images: Tensor, masks: Tensor, params: Tensor, augmentation: Augmentation) -> tuple[Tensor, Tensor]:
    """Warp crops and masks by one random similarity each and jitter the colour, in one batched call.

    Args:
        images: (B, 3, r, r) in [0, 1]; masks: (B, 1, r, r).
        params: (B, 6) uniform draws in [-1, 1]: rotation, scale, shift x, shift y, brightness, contrast
            (saturation reuses the brightness draw's sign-flipped value so six numbers suffice).
    """
    a = augmentation
    if a == Augmentation.none():
        return images, masks
    angle = params[:, 0] * math.radians(a.rotate_deg)
    scale = 1.0 + params[:, 1] * a.scale
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # affine_grid's theta maps output to input coordinates in [-1, 1]: rotate and scale about the centre, shift.
    theta = torch.stack([torch.stack([cos, -sin, params[:, 2] * 2 * a.shift], 1),
                         torch.stack([sin, cos, params[:, 3] * 2 * a.shift], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    both = F.grid_sample(torch.cat([images, masks], 1), grid, mode="bilinear", padding_mode="border",
                         align_corners=False)
    images, masks = both[:, :3], both[:, 3:]
    brightness = (params[:, 4] * a.brightness).view(-1, 1, 1, 1)
    contrast = (1.0 + params[:, 5] * a.contrast).view(-1, 1, 1, 1)
    saturation = (1.0 - params[:, 4] * a.saturation).view(-1, 1, 1, 1)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    grey = images.mean(dim=1, keepdim=True)
    images = (grey + (images - grey) * saturation - mean) * contrast + mean + brightness
    return images.clamp_(0.0, 1.0), masks


def resize_to(x: Tensor, size: int) -> Tensor:
    """Area-downsample (B, C, r, r) to (B, C, size, size); r / size a power of two (the comb's levels)."""
    factor = x.shape[-1] // size
    if factor == 1:
        return x
    if factor * size != x.shape[-1]:
        raise ConfigError("Cannot resize to a level", expected=f"a size dividing {x.shape[-1]}", found=str(size),
                          fix="use a power-of-two level size up to the crop size")
    return F.avg_pool2d(x, factor)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """[0, 1] floats to the nearest 8-bit code."""
    return np.clip(np.rint(np.asarray(values, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def _stack(arrays: list[np.ndarray], channels: int) -> Tensor:
    if not arrays:
        return torch.empty((0, channels, 0, 0), dtype=torch.uint8)
    stacked = np.stack(arrays)
    if stacked.ndim == 3:
        stacked = stacked[..., None]
    return torch.from_numpy(np.ascontiguousarray(stacked.transpose(0, 3, 1, 2)))
