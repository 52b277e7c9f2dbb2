"""Segmentation-driven latent edits and edit vectors (004, EditGAN, mapped onto the comb network).

On a keyframe the artist changes the face's segmentation (opens the eyes, enlarges the lips). Image and
segmentation come from one latent code (:class:`vfx.edit.segment.JointDecoder`), so the edit is found by
optimising a latent offset δ, every weight frozen, until the decoded segmentation shows the edited labels
inside the region of interest while the decoded image stays put outside it (004 [0029]-[0031]):

- region of interest (Eq. 1): ``r = dilate({p: y_p ∈ Q} ∪ {p: y_edit_p ∈ Q}, buffer)``, Q the edit's labels;
- loss (Eq. 5 without the identity term): ``λ_rgb · L_RGB(outside r) + λ_ce · CE(inside r) + λ_reg · R(z + δ)``,
  L_RGB = L2 + (1 - SSIM) on both images masked by (1 - r) (Eq. 2 with SSIM in place of LPIPS, whose
  pretrained weights cannot be had offline; pass any ``perceptual`` callable, e.g. an LPIPS module), CE the
  pixel-wise cross-entropy over r only (Eq. 3), R a regulariser that keeps z + δ near the latents the encoder
  gives: ``‖δ‖² / ‖z‖²`` by default, or the encoder-consistency term of 004's code ``‖(z + δ) − E(D(z + δ))‖²``;
- Adam on δ alone, the best total loss kept (004's code).

δ is an edit vector (:class:`EditVector`, safetensors + JSON, schema ``vfx.EditVector/1``, bound to the
fingerprint of the encoder and decoder weights). On other frames it applies as ``z_t + Σ_i s_i(t) · δ_i``
(004 [0034]-[0035]; s = 0 is the identity, s < 0 the reverse edit), and a short self-supervised refinement
(004 [0037]) can clean what an imperfectly disentangled vector changes outside the edit: the vector's own
segmentation is the target inside r_t, the unedited decode the reference outside, warm-started from the
previous frame's correction so the shot does not flicker.

Convention:
    - latents (1, C, 1, 1); δ (C,) float32; images (1, 3, r, r) in [0, 1]; label maps (r, r) int64;
      regions (r, r) bool.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch import Tensor

import vfx
from vfx.comb.losses import ssim
from vfx.edit.segment import JointDecoder
from vfx.errors import ConfigError
from vfx.face.layout import LABEL_NAMES, FaceLabel
from vfx.utils.stamped import Layout, read_stamped, read_stamped_weights, schema_error, write_stamped

__all__ = [
    "EDIT_SCHEMA",
    "EditResult",
    "EditSettings",
    "EditVector",
    "apply_edits",
    "apply_vector",
    "buffer_pixels",
    "check_edit_vector",
    "combine_edits",
    "edit_classes",
    "edit_region",
    "encoder_consistency",
    "label_area",
    "learn_edit",
    "load_edit_vector",
    "masked_ce_loss",
    "masked_rgb_loss",
    "optimise_edit",
    "refine_edit",
    "region_iou",
    "save_edit_vector",
]

EDIT_SCHEMA = "vfx.EditVector/1"
CONTEXT_LABELS = (int(FaceLabel.BACKGROUND), int(FaceLabel.SKIN))
"""Labels that surround every part: an edit that turns skin into lip is a lip edit, and Q must not hold skin
(r would cover the whole face and nothing would be kept)."""

_DELTA_FILE, _INFO_FILE = "delta.safetensors", "edit.json"
_LAYOUT = Layout.folder(_INFO_FILE, _DELTA_FILE, whole=True)
#: Latent channels an edit vector may have (the comb network's latent is a few hundred to a few thousand).
MAX_LATENT_CHANNELS = 65536
Perceptual = Callable[[Tensor, Tensor], Tensor]


# ---------------------------------------------------------------------------------------------- region

def edit_classes(labels: Tensor, edited: Tensor) -> tuple[int, ...]:
    """Q, the edit's labels: those of the changed pixels, before and after, less background and skin
    (:data:`CONTEXT_LABELS`); when only those two change (a mark painted out), the two themselves."""
    changed = labels != edited
    found = set(torch.unique(labels[changed]).tolist()) | set(torch.unique(edited[changed]).tolist())
    parts = found - set(CONTEXT_LABELS)
    return tuple(sorted(int(v) for v in (parts or found)))


def edit_region(labels: Tensor, edited: Tensor, classes: Sequence[int], buffer_px: int) -> Tensor:
    """Eq. 1 of 004: the pixels labelled with one of ``classes`` before or after the edit, grown by a buffer of
    ``buffer_px`` pixels (Chebyshev: a square structuring element) that gives the decoder room for the
    transition. (r, r) int label maps in, (r, r) bool out; no classes, no region."""
    if labels.shape != edited.shape or labels.ndim != 2:
        raise ConfigError("Label maps of different sizes", expected="two (H, W) maps of one size",
                          found=f"{tuple(labels.shape)} and {tuple(edited.shape)}",
                          fix="paint the edit on the map `vfx edit labels` writes, at its size")
    wanted = torch.tensor(list(classes), dtype=labels.dtype, device=labels.device)
    region = torch.isin(labels, wanted) | torch.isin(edited, wanted)
    if buffer_px > 0 and bool(region.any()):
        k = 2 * int(buffer_px) + 1
        region = F.max_pool2d(region[None, None].float(), k, stride=1, padding=int(buffer_px))[0, 0] > 0
    return region


def buffer_pixels(fraction: float, size: int) -> int:
    """The region's buffer in pixels for a crop of side ``size`` (004 [0029]: about 5 px at 512²)."""
    return max(1, round(fraction * size))


# ---------------------------------------------------------------------------------------------- losses

def masked_rgb_loss(image: Tensor, reference: Tensor, region: Tensor, *, ssim_weight: float = 1.0,
                    perceptual: Perceptual | None = None) -> Tensor:
    """Eq. 2 of 004: the image against its reference outside the region only.

    Both images are multiplied by (1 - r) (as Eq. 2 writes it), so no pixel inside r can reach the loss: the
    squared error is averaged over the outside pixels, plus ``ssim_weight · (1 - SSIM)`` of the masked pair, or
    ``perceptual(masked image, masked reference)`` when given (an LPIPS module, for instance).

    Args:
        image, reference: (B, 3, H, W).
        region: (H, W) or (B, 1, H, W) bool or float, 1 inside r.
    """
    outside = 1.0 - region.to(image.dtype).expand(image.shape[0], 1, *image.shape[-2:])
    a, b = image * outside, reference * outside
    count = outside.sum().clamp(min=1.0) * image.shape[1]
    loss = ((a - b) ** 2).sum() / count
    if perceptual is not None:
        loss = loss + perceptual(a, b).mean()
    elif ssim_weight:
        loss = loss + ssim_weight * (1.0 - ssim(a, b)).mean()
    return loss


def masked_ce_loss(logits: Tensor, target: Tensor, region: Tensor) -> Tensor:
    """Eq. 3 of 004: pixel-wise cross-entropy against the edited labels, averaged over the region's pixels only
    (0 for an empty region). logits (B, K, H, W), target (B, H, W) or (H, W) int, region (H, W) bool."""
    target = target.expand(logits.shape[0], *logits.shape[-2:])
    inside = region.expand_as(target)
    if not bool(inside.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.permute(0, 2, 3, 1)[inside], target[inside])


def encoder_consistency(joint: JointDecoder, z: Tensor) -> Tensor:
    """004's code's regulariser: ``mean((z - E(D(z)))²)``, small where z is a latent the encoder gives faces."""
    image = joint.net.decode(z, joint.persona)
    return ((z - joint.encode(image)) ** 2).mean()


# ---------------------------------------------------------------------------------------------- optimisation

@dataclass(frozen=True)
class EditSettings:
    """How a latent edit is optimised. Defaults: the digest's CPU calibration of 004's code (λ_rgb 20 against
    CE 1, Adam lr 0.05), a buffer of 3 % of the crop side, and ‖δ‖² / ‖z‖² at weight 5 as the regulariser:
    004's code's encoder consistency pulls hard towards E(D(z)), which for a comb model trained on the face
    alone (its decoded background is no plate's) lies far from z (measured: ‖z − E(D(z))‖² ≈ ‖z‖²).

    Attributes:
        steps: Adam steps on δ (refinement: a few, see :meth:`for_refinement`).
        lr: Adam's learning rate.
        rgb_weight: λ_rgb on the outside-r image loss (0 turns locality off: the ablation).
        ssim_weight: weight of (1 - SSIM) inside the image loss, beside the L2.
        ce_weight: λ_ce on the inside-r cross-entropy.
        regulariser: ``norm`` (‖δ‖² relative to ‖z‖²), ``encoder`` (004's code's ‖(z+δ) − E(D(z+δ))‖²) or ``none``.
        reg_weight: its weight.
        buffer: the region's buffer as a fraction of the crop side.
    """

    steps: int = 100
    lr: float = 0.05
    rgb_weight: float = 20.0
    ssim_weight: float = 1.0
    ce_weight: float = 1.0
    regulariser: Literal["encoder", "norm", "none"] = "norm"
    reg_weight: float = 5.0
    buffer: float = 0.03

    def __post_init__(self) -> None:
        if self.steps < 0 or self.lr <= 0 or min(self.rgb_weight, self.ssim_weight, self.ce_weight, self.reg_weight) < 0:
            raise ConfigError("Invalid edit settings", expected="steps >= 0, lr > 0, weights >= 0", found=str(self),
                              fix="use the defaults of EditSettings, or non-negative values")
        if self.regulariser not in ("encoder", "norm", "none"):
            raise ConfigError("Unknown regulariser", expected="encoder, norm or none", found=repr(self.regulariser),
                              fix="regulariser='encoder' (the default)")
        if not 0 <= self.buffer < 0.5:
            raise ConfigError("Invalid region buffer", expected="a fraction of the crop side in [0, 0.5)",
                              found=repr(self.buffer), fix="buffer=0.03 (the default)")

    def for_refinement(self, steps: int = 20) -> EditSettings:
        """004 [0037]'s per-frame refinement: the same losses, a few steps at 004's code's lr 0.02, no
        regulariser (the vector already sits where the keyframe's optimisation put it)."""
        return replace(self, steps=steps, lr=0.02, regulariser="none")


@dataclass(frozen=True)
class EditResult:
    """An optimised latent offset and what it does.

    Attributes:
        delta: (C,) the offset (for a keyframe: the edit vector).
        region: (r, r) bool, the region of interest r.
        classes: Q, the labels of the edit.
        image: (1, 3, r, r) the decoded image at z + delta.
        labels: (r, r) its predicted segmentation.
        losses: the kept step's terms (``total``, ``rgb``, ``ce``, ``reg``) and ``step``.
    """

    delta: Tensor
    region: Tensor
    classes: tuple[int, ...]
    image: Tensor
    labels: Tensor
    losses: dict[str, float] = field(default_factory=dict)


def _regulariser(joint: JointDecoder, z: Tensor, delta: Tensor, settings: EditSettings) -> Tensor:
    """R(z + δ) for the base latent z and offset δ."""
    if settings.regulariser == "encoder":
        return encoder_consistency(joint, z + delta.view(1, -1, 1, 1))
    if settings.regulariser == "norm":
        return (delta**2).sum() / z.pow(2).sum().clamp(min=1e-12)
    return z.new_zeros(())


def optimise_edit(joint: JointDecoder, z: Tensor, target: Tensor, region: Tensor, reference: Tensor,
                  settings: EditSettings, *, classes: Sequence[int] = (), init: Tensor | None = None,
                  perceptual: Perceptual | None = None) -> EditResult:
    """Find δ so that ``joint(z + δ)`` shows ``target`` inside ``region`` and ``reference`` outside (Eq. 5).

    Only δ is optimised: every weight of ``joint`` is frozen, no gradient reaches them.

    Args:
        joint: the frozen image + segmentation decoder.
        z: (1, C, 1, 1) the frame's latent.
        target: (r, r) int64 labels wanted inside the region.
        region: (r, r) bool, r.
        reference: (1, 3, r, r) the image wanted outside r (the unedited decode).
        settings: weights, steps, learning rate.
        classes: Q, recorded in the result.
        init: (C,) the starting δ (a vector to refine, the previous frame's); zeros by default.
        perceptual: replaces (1 - SSIM) in the image loss (e.g. an LPIPS module).
    """
    z = z.detach()
    start = torch.zeros(z.shape[1], device=z.device, dtype=z.dtype) if init is None else init.detach().to(z)
    delta = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([delta], lr=settings.lr)
    target, region, reference = target.to(z.device), region.to(z.device), reference.detach().to(z.device)
    names = ("total", "rgb", "ce", "reg", "step")
    # The best step is tracked on the device (no host round trip per step on CUDA).
    best_value = torch.full((), float("inf"), device=z.device)
    best_delta, best_terms = start.clone(), torch.zeros(len(names), device=z.device)

    def evaluate(offset: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        shifted = z + offset.view(1, -1, 1, 1)
        image, logits = joint(shifted)
        terms = {"rgb": masked_rgb_loss(image, reference, region, ssim_weight=settings.ssim_weight,
                                        perceptual=perceptual),
                 "ce": masked_ce_loss(logits, target, region),
                 "reg": _regulariser(joint, z, offset, settings)}
        total = (settings.rgb_weight * terms["rgb"] + settings.ce_weight * terms["ce"]
                 + settings.reg_weight * terms["reg"])
        return total, terms

    for step in range(settings.steps + 1):
        total, terms = evaluate(delta)
        with torch.no_grad():
            values = torch.stack([total, terms["rgb"], terms["ce"], terms["reg"],
                                  torch.tensor(float(step), device=z.device)]).float()
            better = total.detach() < best_value
            best_value = torch.where(better, total.detach(), best_value)
            best_delta = torch.where(better, delta.detach(), best_delta)
            best_terms = torch.where(better, values, best_terms)
        if step == settings.steps:
            break
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
    kept = best_delta
    losses = dict(zip(names, best_terms.tolist()))
    with torch.no_grad():
        image, logits = joint(z + kept.view(1, -1, 1, 1))
    return EditResult(delta=kept, region=region, classes=tuple(classes), image=image, labels=logits.argmax(1)[0],
                      losses=losses)


def learn_edit(joint: JointDecoder, crop: Tensor, edited: Tensor, settings: EditSettings | None = None, *,
               classes: Sequence[int] | None = None, perceptual: Perceptual | None = None) -> EditResult:
    """The keyframe edit (004 [0029]-[0031]): encode the crop, decode it with its segmentation, and optimise δ
    towards the artist's ``edited`` label map.

    Args:
        joint: the frozen image + segmentation decoder.
        crop: (1, 3, r, r) the keyframe's aligned crop in [0, 1].
        edited: (r, r) the edited label map (the decoded segmentation, changed).
        settings: see :class:`EditSettings`.
        classes: Q; default :func:`edit_classes` of the decoded and the edited maps.

    Raises:
        ConfigError: the edited map is the wrong size, or changes nothing.
    """
    settings = settings or EditSettings()
    r = joint.size
    if tuple(edited.shape) != (r, r):
        raise ConfigError("Edited label map of the wrong size", expected=f"{r}x{r}, the model's crop",
                          found="x".join(str(v) for v in edited.shape[::-1]),
                          fix="paint on the map `vfx edit labels SHOT --keyframe F` writes")
    with torch.no_grad():
        z = joint.encode(crop)
        reference, logits = joint(z)
    labels = logits.argmax(1)[0]
    edited = edited.to(labels)
    if not bool((edited != labels).any()):
        raise ConfigError("The edited label map changes nothing", expected="a label map that differs from the "
                          "keyframe's segmentation", found="the same labels everywhere", fix="paint the change on the map `vfx edit labels` writes")
    classes = tuple(classes) if classes is not None else edit_classes(labels, edited)
    region = edit_region(labels, edited, classes, buffer_pixels(settings.buffer, r))
    return optimise_edit(joint, z, edited, region, reference, settings, classes=classes, perceptual=perceptual)


Unedited = tuple[Tensor, Tensor]
"""A frame's unedited decode and its segmentation, ((1, 3, r, r), (r, r)), when the caller has them already."""


def _unedited(joint: JointDecoder, z: Tensor, unedited: Unedited | None) -> Unedited:
    if unedited is not None:
        return unedited
    with torch.no_grad():
        image, logits = joint(z)
    return image, logits.argmax(1)[0]


def apply_vector(joint: JointDecoder, z: Tensor, offset: Tensor, classes: Sequence[int], buffer_px: int, *,
                 unedited: Unedited | None = None) -> EditResult:
    """An applied vector on one frame, without refinement (004 [0034]): the decode of ``z + offset`` and the
    frame's region r_t, Eq. 1 between its own segmentation and the one the vector produced."""
    _, labels = _unedited(joint, z, unedited)
    with torch.no_grad():
        image, logits = joint(z + offset.view(1, -1, 1, 1))
    after = logits.argmax(1)[0]
    return EditResult(delta=offset, region=edit_region(labels, after, classes, buffer_px), classes=tuple(classes),
                      image=image, labels=after)


def refine_edit(joint: JointDecoder, z: Tensor, offset: Tensor, classes: Sequence[int], settings: EditSettings, *,
                init: Tensor | None = None, perceptual: Perceptual | None = None,
                unedited: Unedited | None = None) -> EditResult:
    """004 [0037]'s self-supervised refinement of an applied vector on one frame.

    The segmentation the vector produced is the target inside r_t (the union of Q's pixels before and
    after it), the unedited decode the reference outside; the correction starts at ``init`` (the previous
    frame's, so consecutive frames stay alike).

    Args:
        z: (1, C, 1, 1) the frame's latent.
        offset: (C,) the applied ``Σ s_i δ_i``.
        classes: Q of the vectors.
        settings: usually :meth:`EditSettings.for_refinement`.
        init: (C,) the starting correction; zeros by default.
        unedited: the frame's unedited decode and segmentation, when already computed.

    Returns:
        The result with ``delta`` the whole offset to use (``offset`` + the correction).
    """
    unedited = _unedited(joint, z, unedited)
    reference = unedited[0]
    vector = apply_vector(joint, z, offset, classes, buffer_pixels(settings.buffer, joint.size), unedited=unedited)
    start = offset if init is None else offset + init.to(offset)
    return optimise_edit(joint, z, vector.labels, vector.region, reference, settings, classes=classes, init=start,
                         perceptual=perceptual)


def label_area(labels: Tensor, classes: Sequence[int]) -> int:
    """Pixels of ``labels`` holding one of ``classes`` (how much of the edit's parts a frame shows)."""
    return int(torch.isin(labels, torch.tensor(list(classes), device=labels.device)).sum())


def combine_edits(terms: Sequence[tuple[Tensor, float]]) -> Tensor | None:
    """``Σ_i s_i · δ_i`` as one (C,) float32 offset, or None when every s is 0 (004 [0034]-[0035]; vectors add).

    The terms are summed in float64 in a fixed order (by the bytes of δ and s), so the offset does not depend
    on the order they are given in.
    """
    live = [(delta, float(s)) for delta, s in terms if float(s) != 0.0]
    if not live:
        return None
    live.sort(key=lambda t: hashlib.sha256(t[0].detach().cpu().numpy().tobytes() + repr(t[1]).encode()).digest())
    offset = torch.zeros(live[0][0].numel(), dtype=torch.float64, device=live[0][0].device)
    for delta, s in live:
        offset = offset + s * delta.detach().reshape(-1).to(device=offset.device, dtype=torch.float64)
    return offset.to(torch.float32)


def apply_edits(z: Tensor, terms: Sequence[tuple[Tensor, float]]) -> Tensor:
    """``z + Σ_i s_i · δ_i``; with s = 0 everywhere, z itself (bit-identical). See :func:`combine_edits`."""
    offset = combine_edits(terms)
    return z if offset is None else z + offset.to(device=z.device, dtype=z.dtype).view(1, -1, 1, 1)


# ---------------------------------------------------------------------------------------------- metrics

def region_iou(labels: Tensor, target: Tensor, region: Tensor, classes: Sequence[int]) -> float:
    """Mean IoU over the edit's labels ``classes``, counted inside ``region`` only (how well the edit took)."""
    scores = []
    for label in classes:
        p, t = (labels == label) & region, (target == label) & region
        union = int((p | t).sum())
        if union:
            scores.append(float((p & t).sum()) / union)
    return float(np.mean(scores)) if scores else float("nan")


# ---------------------------------------------------------------------------------------------- files

@dataclass(frozen=True)
class EditVector:
    """A learned edit: δ and everything needed to apply it only where it is valid.

    Attributes:
        delta: (C,) float32 latent offset.
        persona: the decoder it was learned through.
        fingerprint: :meth:`CombNetwork.fingerprint` of the model's weights for that persona.
        classes: Q, label values of the edit.
        labels: the label set (names, by value).
        resolution: the model's crop size.
        buffer: the region buffer (fraction of the crop side).
        settings: the :class:`EditSettings` it was learned with.
        source: where it came from (shot, keyframe, label file).
        metrics: how well it took on the keyframe (``iou``, ``outside_psnr``, ...).
    """

    delta: Tensor
    persona: str
    fingerprint: str
    classes: tuple[int, ...]
    labels: tuple[str, ...] = LABEL_NAMES
    resolution: int = 0
    buffer: float = EditSettings.buffer
    settings: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "delta"}
        data.update(classes=list(self.classes), labels=list(self.labels),
                    class_names=[self.labels[c] for c in self.classes], latent_channels=int(self.delta.numel()))
        return {"schema": EDIT_SCHEMA, "vfx_version": vfx.__version__} | data


def save_edit_vector(path: str | os.PathLike[str], vector: EditVector) -> Path:
    """Write the vector folder (``delta.safetensors`` + ``edit.json``) atomically: a temporary folder renamed."""
    path = Path(path)
    write_stamped(path, EDIT_SCHEMA, vector.info(), {"delta": vector.delta.to("cpu", torch.float32)}, layout=_LAYOUT)
    return path


_Text = Annotated[str, Field(max_length=1024)]
_Free = Annotated[dict[str, Any], Field(max_length=256)]


class _EditInfo(BaseModel):
    """``edit.json`` as read back: every field typed and bounded, no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    schema_: Literal["vfx.EditVector/1"] = Field(alias="schema")
    vfx_version: Annotated[str, Field(max_length=64)]
    persona: Annotated[str, Field(min_length=1, max_length=256)]
    fingerprint: Annotated[str, Field(min_length=1, max_length=256)]
    classes: Annotated[list[Annotated[int, Field(ge=0, le=255)]], Field(min_length=1, max_length=256)]
    labels: Annotated[list[_Text], Field(min_length=1, max_length=256)]
    resolution: int = Field(default=0, ge=0, le=8192)
    buffer: float = Field(default=EditSettings.buffer, ge=0, lt=0.5, allow_inf_nan=False)
    settings: _Free = Field(default_factory=dict)
    source: _Free = Field(default_factory=dict)
    metrics: Annotated[dict[str, float | None], Field(max_length=256)] = Field(default_factory=dict)
    class_names: Annotated[list[_Text], Field(max_length=256)] | None = None
    latent_channels: int = Field(ge=1, le=MAX_LATENT_CHANNELS)

    @model_validator(mode="after")
    def _classes_are_labels(self) -> _EditInfo:
        wrong = [c for c in self.classes if c >= len(self.labels)]
        if wrong:
            raise ValueError(f"classes {wrong} are not label values (0-{len(self.labels) - 1} of 'labels')")
        return self


def load_edit_vector(path: str | os.PathLike[str]) -> EditVector:
    """Read a vector folder written by :func:`save_edit_vector`.

    ``edit.json`` is validated field by field, and ``delta.safetensors``'s header (names, shape, dtype, schema)
    is checked before its one tensor is loaded.

    Raises:
        MediaError: missing or unreadable files, not a ``vfx.EditVector/1``, a field of the wrong type or out of
            range (the message names the file and the field), or weights other than one float32 ``delta`` of
            ``latent_channels`` values.
    """
    path = Path(path)
    fix = "learn it with `vfx edit learn`"
    data = read_stamped(path, EDIT_SCHEMA, layout=_LAYOUT, what="edit vector", fix=fix)
    try:
        info = _EditInfo.model_validate(data)
    except ValidationError as err:
        raise schema_error(err, f"Edit vector {_LAYOUT.json_path(path)}", fix) from None
    delta = read_stamped_weights(path, _LAYOUT, what="edit vector", fix=fix, schema=EDIT_SCHEMA,
                                 expect={"delta": ((info.latent_channels,), "F32")})
    return EditVector(delta=delta["delta"], persona=info.persona, fingerprint=info.fingerprint,
                      classes=tuple(info.classes), labels=tuple(info.labels), resolution=info.resolution,
                      buffer=info.buffer, settings=dict(info.settings), source=dict(info.source),
                      metrics=dict(info.metrics))


def check_edit_vector(vector: EditVector, *, persona: str, fingerprint: str, latent_channels: int,
                      name: str = "edit vector") -> None:
    """Refuse a vector learned on another model, persona, latent size or label set.

    Raises:
        ConfigError: what differs, and what to do.
    """
    if vector.persona != persona:
        raise ConfigError(f"The {name} was learned for persona {vector.persona!r}", expected=f"persona {persona!r}",
                          found=repr(vector.persona), fix="learn the edit for this persona with `vfx edit learn`")
    if vector.fingerprint != fingerprint:
        raise ConfigError(f"The {name} was learned on another model", expected=f"weights {fingerprint} (this "
                          "model's encoder and decoder)", found=f"weights {vector.fingerprint}",
                          fix="learn the edit again on this model with `vfx edit learn` (a retrained model has "
                          "another latent space)")
    if vector.delta.numel() != latent_channels or tuple(vector.labels) != LABEL_NAMES:
        raise ConfigError(f"The {name} does not fit this model", expected=f"{latent_channels} latent channels, "
                          f"labels {', '.join(LABEL_NAMES)}", found=f"{vector.delta.numel()} channels, labels "
                          f"{', '.join(vector.labels)}",
                          fix="learn the vector again on this model (`vfx edit learn`)")

