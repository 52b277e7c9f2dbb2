"""Segmentation heads on the persona decoders: one latent code gives a face and its semantic layout (004 [0024]).

A :class:`SegHead` reads the multi-scale feature maps of one persona's decoder and predicts, per pixel, the
semantic face layout of :class:`vfx.face.mask.FaceLabel` (background, skin, brows, eyes, nose, upper lip, lower
lip, mouth interior). It is DatasetGAN's "style interpreter" (004 [0024]: a three-layer per-pixel MLP on the
level-wise upsampled and concatenated feature maps) trained as 004 [0026] says: encoder and decoder frozen, only
the head learns, from labels that cost nothing here, the layouts the 68 landmarks draw (:func:`face_layout`).

:class:`JointDecoder` is 004's G̃: latent -> (image, label logits), every weight frozen, the thing a latent edit
optimises through (:mod:`vfx.edit.vectors`).

A head is stored as safetensors + JSON (schema ``vfx.SegHead/1``) under its model's run folder, keyed by the
fingerprint of the encoder and decoder weights (:meth:`CombNetwork.fingerprint`), so a retrained model never
reads a stale head.

Convention:
    - images (B, 3, r, r) float in [0, 1]; latents (B, C, 1, 1); label maps (B, r, r) int64 / (r, r) uint8;
      logits (B, K, r, r) with K = 8 labels.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import vfx
from vfx.comb.network import CombNetwork
from vfx.errors import ConfigError, MediaError
from vfx.face.layout import LABEL_NAMES, face_layout
from vfx.faceset.store import Faceset
from vfx.shot.layout import seg_head_path
from vfx.utils.stamped import SIDECAR, read_stamped, read_stamped_weights, write_stamped

__all__ = [
    "SEGHEAD_SCHEMA",
    "JointDecoder",
    "SegHead",
    "SegHeadInfo",
    "class_iou",
    "faceset_layouts",
    "load_seg_head",
    "mean_iou",
    "save_seg_head",
    "seg_head_path",
    "train_seg_head",
]

log = logging.getLogger(__name__)

SEGHEAD_SCHEMA = "vfx.SegHead/1"
NUM_LABELS = len(LABEL_NAMES)


class SegHead(nn.Module):
    """Per-pixel three-layer MLP on a decoder's feature maps (004 [0024]; DatasetGAN's shape for < 32 classes).

    The first layer is split per level and applied *before* upsampling: a 1x1 convolution and bilinear
    upsampling are both linear, so ``W · concat_l up(f_l) = Σ_l up(W_l · f_l)`` exactly, and the head never
    holds the (Σ C_l) x r x r concatenation (650 MB per 256² crop at width 1.0).

    Args:
        channels: the decoder's feature channels per level (:meth:`CombNetwork.feature_channels`).
        classes: number of labels.
        hidden: widths of the two hidden layers.
    """

    def __init__(self, channels: Sequence[int], classes: int = NUM_LABELS, hidden: tuple[int, int] = (128, 32)) -> None:
        super().__init__()
        self.channels, self.classes, self.hidden = tuple(int(c) for c in channels), int(classes), tuple(hidden)
        self.inputs = nn.ModuleList([nn.Conv2d(c, hidden[0], 1, bias=False) for c in self.channels])
        self.bias = nn.Parameter(torch.zeros(hidden[0]))
        self.body = nn.Sequential(
            nn.ReLU(), nn.BatchNorm2d(hidden[0]), nn.Conv2d(hidden[0], hidden[1], 1),
            nn.ReLU(), nn.BatchNorm2d(hidden[1]), nn.Conv2d(hidden[1], classes, 1))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.02)  # as DatasetGAN's interpreter
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, features: Sequence[Tensor], size: tuple[int, int]) -> Tensor:
        if len(features) != len(self.inputs):
            raise ConfigError("Segmentation head and decoder disagree", expected=f"{len(self.inputs)} feature maps",
                              found=str(len(features)), fix="train the head for this model")
        h = self.bias.view(1, -1, 1, 1)
        for conv, feature in zip(self.inputs, features):
            h = h + F.interpolate(conv(feature), size=size, mode="bilinear", align_corners=False)
        return self.body(h)


class JointDecoder(nn.Module):
    """004's G̃ for one persona: latent -> (image, label logits), through the frozen comb network and head.

    Every parameter is frozen and in eval mode (the head's batch norm must not see one crop as a batch), so
    an optimiser can only ever move the latent it is given.

    Example:
        >>> from vfx.comb.network import CombConfig
        >>> net = CombNetwork(CombConfig(resolution=16, width=0.05, personas=("x",))); net.grow(2)
        >>> joint = JointDecoder(net, "x", SegHead(net.feature_channels()))
        >>> image, logits = joint(joint.encode(torch.rand(1, 3, 16, 16)))
        >>> tuple(image.shape), tuple(logits.shape)
        ((1, 3, 16, 16), (1, 8, 16, 16))
    """

    def __init__(self, net: CombNetwork, persona: str, head: SegHead) -> None:
        super().__init__()
        if tuple(head.channels) != net.feature_channels():
            raise ConfigError("The segmentation head was trained on another decoder", expected=f"feature channels "
                              f"{net.feature_channels()}", found=str(head.channels), fix="train the head for this model")
        self.net, self.persona, self.head = net, persona, head
        self.eval().requires_grad_(False)

    @property
    def size(self) -> int:
        return self.net.size

    def encode(self, x: Tensor) -> Tensor:
        return self.net.encode(x)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """(image, logits), float32; on CUDA computed under bf16 autocast."""
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=z.is_cuda):
            image, features = self.net.decode_features(z, self.persona)
            logits = self.head(features, image.shape[-2:])
        return image.float(), logits.float()

    def labels(self, z: Tensor) -> Tensor:
        """The predicted label map, (B, r, r) int64."""
        return self(z)[1].argmax(1)


# ---------------------------------------------------------------------------------------------- metrics

def class_iou(predicted: Tensor | np.ndarray, target: Tensor | np.ndarray,
              classes: Sequence[int] | None = None) -> dict[int, float]:
    """IoU per label over a whole set of label maps (intersections and unions summed over the set, the
    usual segmentation score, so a part that is small on every frame still counts once); labels absent from
    both are left out. Label maps of any shape, integer."""
    pred = torch.as_tensor(predicted).reshape(-1).long()
    true = torch.as_tensor(target).reshape(-1).long()
    if pred.shape != true.shape:
        raise ConfigError("Label maps of different sizes", expected="one shape twice",
                          found=f"{tuple(torch.as_tensor(predicted).shape)} and {tuple(torch.as_tensor(target).shape)}",
                          fix="pass the predicted and the true label maps at one size")
    scores = {}
    for label in classes if classes is not None else range(NUM_LABELS):
        p, t = pred == label, true == label
        union = int((p | t).sum())
        if union:
            scores[int(label)] = float((p & t).sum()) / union
    return scores


def mean_iou(predicted: Tensor | np.ndarray, target: Tensor | np.ndarray,
             classes: Sequence[int] | None = None) -> float:
    """Mean of :func:`class_iou` (NaN when no label is present at all)."""
    scores = class_iou(predicted, target, classes)
    return float(np.mean(list(scores.values()))) if scores else float("nan")


# ---------------------------------------------------------------------------------------------- training

@dataclass(frozen=True)
class SegHeadInfo:
    """What a stored head records (its JSON): the model it belongs to and how well it learned."""

    persona: str
    fingerprint: str
    channels: tuple[int, ...]
    hidden: tuple[int, int]
    resolution: int
    labels: tuple[str, ...] = LABEL_NAMES
    steps: int = 0
    seconds: float = 0.0
    train_frames: int = 0
    held_frames: int = 0
    held_miou: float = float("nan")
    held_iou: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(channels=list(self.channels), hidden=list(self.hidden), labels=list(self.labels))
        return {"schema": SEGHEAD_SCHEMA, "vfx_version": vfx.__version__} | data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegHeadInfo:
        return cls(persona=data["persona"], fingerprint=data["fingerprint"], channels=tuple(data["channels"]),
                   hidden=tuple(data["hidden"]), resolution=int(data["resolution"]), labels=tuple(data["labels"]),
                   steps=int(data.get("steps", 0)), seconds=float(data.get("seconds", 0.0)),
                   train_frames=int(data.get("train_frames", 0)), held_frames=int(data.get("held_frames", 0)),
                   held_miou=float(data.get("held_miou", float("nan"))), held_iou=dict(data.get("held_iou", {})))


def faceset_layouts(faceset: Faceset | str | os.PathLike[str], size: int, *,
                    limit: int | None = None) -> tuple[Tensor, Tensor, np.ndarray]:
    """A faceset's crops at ``size`` and the layouts their landmarks draw: the head's free labels.

    Returns:
        (images (N, 3, size, size) float32 in [0, 1], labels (N, size, size) int64, landmarks (N, 68, 2) in
        the ``size`` crop's pixels), in frame order.

    Raises:
        MediaError: the faceset has no usable faces.
    """
    import cv2

    faceset = faceset if isinstance(faceset, Faceset) else Faceset.open(faceset)
    records = [r for r in faceset.faces() if r.crop is not None and r.crop_landmarks is not None]
    if limit is not None:
        records = records[:limit]
    if not records:
        raise MediaError(f"Faceset {faceset.folder} has no faces to learn a segmentation from",
                         expected="crops with landmarks", fix="extract the persona's footage with `vfx extract`",
                         found="no face with both a crop and its crop landmarks")
    crop_size = faceset.info.crop_size
    images, labels, points = [], [], []
    for record in records:
        bgr = cv2.imread(str(faceset.folder / record.crop), cv2.IMREAD_COLOR)
        if bgr is None:
            raise MediaError(f"Cannot read the crop {faceset.folder / record.crop}", expected="a PNG crop",
                             fix="extract the faceset again",
                             found=f"no readable image at {faceset.folder / record.crop}")
        rgb = bgr[:, :, ::-1].astype(np.float32) / 255.0
        if rgb.shape[0] != size:
            rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
        images.append(rgb)
        # crop pixel centres scale about -0.5: pixel i of the big crop covers [i, i+1) of the small one's scale
        scale = size / crop_size
        landmarks = (np.asarray(record.crop_landmarks) + 0.5) * scale - 0.5
        labels.append(face_layout(landmarks, (size, size)))
        points.append(landmarks)
    x = torch.from_numpy(np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2)))
    return x, torch.from_numpy(np.stack(labels).astype(np.int64)), np.stack(points)


def _class_weights(labels: Tensor) -> Tensor:
    """Inverse square-root frequency, normalised to mean 1: the eyes and the mouth interior are a few pixels
    of each crop and would otherwise be swallowed by skin and background."""
    counts = torch.bincount(labels.reshape(-1), minlength=NUM_LABELS).float()
    weights = torch.where(counts > 0, counts.clamp(min=1).rsqrt(), torch.zeros(()))
    return weights / weights[counts > 0].mean()


FEATURE_CACHE_BYTES = 1 << 30
"""The frozen decoder's features of the whole training set are computed once when they fit in this much memory."""


def _cached_features(net: CombNetwork, persona: str, images: Tensor, device: torch.device) -> list[Tensor] | None:
    per_image = sum(c * (4 << level) ** 2 for level, c in enumerate(net.feature_channels())) * 4
    if per_image * images.shape[0] > FEATURE_CACHE_BYTES:
        return None
    with torch.no_grad():
        chunks = [net.decode_features(net.encode(chunk.to(device)), persona)[1] for chunk in images.split(16)]
    return [torch.cat([chunk[level] for chunk in chunks]) for level in range(len(chunks[0]))]


def train_seg_head(net: CombNetwork, persona: str, images: Tensor, labels: Tensor, *,
                   held_images: Tensor | None = None, held_labels: Tensor | None = None, steps: int = 1500,
                   batch_size: int = 8, lr: float = 3e-3, hidden: tuple[int, int] = (128, 32), seed: int = 0,
                   show_progress: bool = False) -> tuple[SegHead, SegHeadInfo]:
    """Train a segmentation head on ``persona``'s decoder with the encoder and decoder frozen (004 [0026]).

    Only the head's parameters are given to the optimiser and the network runs under ``no_grad``, so its
    weights (and its image output) cannot change; the returned info carries the fingerprint they had.

    Args:
        net: the comb network, at its full level.
        persona: the decoder to read.
        images: (N, 3, r, r) crops in [0, 1] of the persona (or of faces decoded as it: a swap keeps the
            expression, so the target's landmarks still draw its layout).
        labels: (N, r, r) int64 layouts (:func:`faceset_layouts`).
        held_images, held_labels: a held-out set to score (mIoU) at the end.
        steps, batch_size, lr: Adam on the head, cosine-annealed, class-weighted cross-entropy (004's code
            uses lr 1e-3 for 100 epochs; 3e-3 annealed over 1500 steps reached a higher held-out mIoU here).
        seed: batch order and initialisation.

    Returns:
        (the head in eval mode, its info).
    """
    r = net.size
    if images.ndim != 4 or images.shape[1:] != (3, r, r) or labels.shape != (images.shape[0], r, r):
        raise ConfigError("Wrong training data for the segmentation head", expected=f"images (N, 3, {r}, {r}) and "
                          f"labels (N, {r}, {r}) at the model's size", found=f"{tuple(images.shape)} and "
                          f"{tuple(labels.shape)}", fix=f"pass {r}x{r} crops and label maps, the model's resolution")
    device = next(net.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = SegHead(net.feature_channels(), hidden=hidden).to(device)
    fingerprint = net.fingerprint(persona)
    net.eval()
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    weights = _class_weights(labels).to(device)
    cached = _cached_features(net, persona, images, device)
    started = time.perf_counter()
    for step in range(steps):
        pick = torch.randint(0, images.shape[0], (min(batch_size, images.shape[0]),), generator=generator)
        y = labels[pick].to(device)
        if cached is not None:
            features = [f[pick.to(f.device)] for f in cached]
        else:
            with torch.no_grad():
                _, features = net.decode_features(net.encode(images[pick].to(device)), persona)
        loss = F.cross_entropy(head(features, (r, r)), y, weight=weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if show_progress and (step + 1) % 100 == 0:
            log.info("segmentation head %s: step %d/%d loss %.4f", persona, step + 1, steps, float(loss))
    head.eval().requires_grad_(False)
    seconds = time.perf_counter() - started
    info = SegHeadInfo(persona=persona, fingerprint=fingerprint, channels=head.channels, hidden=hidden, resolution=r,
                       steps=steps, seconds=round(seconds, 2), train_frames=int(images.shape[0]))
    if held_images is not None and held_labels is not None and len(held_images):
        joint = JointDecoder(net, persona, head)
        with torch.no_grad():
            predicted = torch.cat([joint.labels(joint.encode(chunk.to(device))).cpu()
                                   for chunk in held_images.split(16)])
        scores = class_iou(predicted, held_labels)
        info = replace(info, held_frames=int(held_images.shape[0]), held_miou=float(np.mean(list(scores.values()))),
                       held_iou={LABEL_NAMES[k]: round(v, 4) for k, v in scores.items()})
    return head, info


# ---------------------------------------------------------------------------------------------- files

def save_seg_head(path: str | os.PathLike[str], head: SegHead, info: SegHeadInfo) -> Path:
    """Write ``path.safetensors`` and ``path.json`` atomically (weights first: the JSON's presence marks a whole head)."""
    path = Path(path)
    write_stamped(path, SEGHEAD_SCHEMA, info.to_dict(), head.state_dict(), layout=SIDECAR)
    return path


def load_seg_head(path: str | os.PathLike[str], *, fingerprint: str | None = None,
                  device: torch.device | str = "cpu") -> tuple[SegHead, SegHeadInfo]:
    """Read a head written by :func:`save_seg_head`.

    Raises:
        MediaError: missing or unreadable files, or not a ``vfx.SegHead/1``.
        ConfigError: the head belongs to other weights than ``fingerprint``.
    """
    path = Path(path)
    fix = "train it again (`vfx edit learn` does when it is missing)"
    data = read_stamped(path, SEGHEAD_SCHEMA, layout=SIDECAR, what="segmentation head", fix=fix)
    weights = read_stamped_weights(path, SIDECAR, device=device, what="segmentation head", fix=fix)
    fix = f"delete {path}.json and {path}.safetensors; the next `vfx edit` trains the head again"
    try:
        info = SegHeadInfo.from_dict(data)
    except (KeyError, TypeError, ValueError) as err:
        raise MediaError(f"Damaged segmentation head {path}.json", expected="persona, fingerprint, channels, hidden, "
                         "resolution and labels as `vfx edit` writes them", found=f"{type(err).__name__}: {err}",
                         fix=fix) from None
    if fingerprint is not None and info.fingerprint != fingerprint:
        raise ConfigError(f"Segmentation head {path} belongs to another model", expected=f"weights {fingerprint}",
                          found=f"weights {info.fingerprint}", fix="train a head for this model")
    try:
        head = SegHead(info.channels, classes=len(info.labels), hidden=info.hidden).to(device)
        head.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError) as err:
        raise MediaError(f"Segmentation head weights {path}.safetensors do not fit its manifest",
                         expected=f"the head of {path}.json (channels {info.channels}, hidden {info.hidden})",
                         found=str(err).splitlines()[0][:300], fix=fix) from None
    return head.eval().requires_grad_(False), info
