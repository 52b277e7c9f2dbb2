"""The network side of a swap ([0053]-[0056]): aligned target crops -> shared encoder -> the chosen persona's
decoder -> swapped crops -> blend with the target crops, batched on the model's device.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from vfx.blend.enhanced import DEFAULT_SIGMA_PX, DEFAULT_TARGET_FACE_LEVELS
from vfx.blend.methods import blend_crops, check_blend_method
from vfx.comb.checkpoint import (
    Manifest,
    check_checkpoint,
    checkpoint_folder,
    load_checkpoint,
)
from vfx.comb.network import CombNetwork
from vfx.errors import ConfigError

__all__ = ["FaceSwapper", "SwapModel", "check_swap_model", "open_swap_model"]


@dataclass(frozen=True)
class SwapModel:
    """A checkpoint ready to swap: the network (fully grown, eval mode) and its manifest."""

    net: CombNetwork
    manifest: Manifest
    folder: Path

    @property
    def label(self) -> str:
        """``folder@step``, written into every rendered frame."""
        return f"{self.folder}@{self.manifest.step}"


def check_swap_model(path: str | os.PathLike[str], *, persona: str, resolution: int | None = None) -> tuple[Path, Manifest]:
    """Check from its manifest and the weights' header alone (no weights read) that a checkpoint can render ``persona`` at ``resolution``.

    Returns:
        The checkpoint folder and its manifest.

    Raises:
        ConfigError: the model has no such persona (the message lists its personas), or it was trained
            at another crop size than the shot asks.
        MediaError: no checkpoint there, an unreadable manifest, or weights that do not fit its network.
    """
    folder = checkpoint_folder(path)
    manifest = check_checkpoint(folder)  # header reads: truncated, foreign or mis-shaped weights refused here
    config = manifest.config
    if persona not in config.personas:
        raise ConfigError(f"The model has no persona {persona!r}", expected=f"one of its personas: "
                          f"{', '.join(config.personas)}", found=repr(persona),
                          fix="pick one of those with --persona (or swap.persona), or train the persona in")
    if resolution is not None and resolution != config.resolution:
        raise ConfigError("The checkpoint was trained at another crop size than the shot asks",
                          expected=f"model.resolution: {config.resolution} (the checkpoint's)",
                          found=f"model.resolution: {resolution}", fix=f"set model.resolution: {config.resolution} "
                          "in the shot file, or train a model at that size")
    return folder, manifest


def open_swap_model(path: str | os.PathLike[str], *, persona: str, resolution: int | None = None,
                    device: torch.device | str = "cpu", checked: bool = False) -> SwapModel:
    """Load a comb checkpoint for swapping, after :func:`check_swap_model`.

    Args:
        checked: ``path`` is the exact checkpoint folder a plan already checked (no second check).

    Raises:
        ConfigError / MediaError: as :func:`check_swap_model`, or unreadable weights.
    """
    folder = Path(path) if checked else check_swap_model(path, persona=persona, resolution=resolution)[0]
    net, manifest, _ = load_checkpoint(folder, device=device, with_optimizer=False)
    net.eval().requires_grad_(False)
    return SwapModel(net=net, manifest=manifest, folder=folder)


class FaceSwapper:
    """Swap and blend batches of aligned target crops, on the model's device.

    On CUDA the network runs in bf16 autocast with channels-last tensors; the blend always runs in float32
    (pyramids of a half-precision image lose the face's fine bands).

    Args:
        model: from :func:`open_swap_model`.
        persona: the decoder to render with.
        method: blend method (``enhanced`` by default).
        sigma, target_face_levels: blend settings (see :func:`vfx.blend.enhanced.enhanced_blend`).
    """

    def __init__(self, model: SwapModel, persona: str, *, method: str = "enhanced", sigma: float = DEFAULT_SIGMA_PX,
                 target_face_levels: int = DEFAULT_TARGET_FACE_LEVELS) -> None:
        check_blend_method(method)
        if persona not in model.net.personas:
            raise ConfigError(f"The model has no persona {persona!r}",
                              expected=f"one of {', '.join(model.net.personas)}", found=repr(persona),
                              fix=f"swap in one of {', '.join(model.net.personas)}, or train a model that has {persona!r}")
        self.model = model
        self.persona = persona
        self.method = method
        self.sigma = sigma
        self.target_face_levels = target_face_levels
        self.device = next(model.net.parameters()).device
        self.resolution = model.manifest.config.resolution
        if self.device.type == "cuda":
            model.net.to(memory_format=torch.channels_last)

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def swap(self, targets: Tensor) -> Tensor:
        """Decode the targets' latents as the persona: (B, 3, r, r) working-space crops in, S out (float32).

        A checkpoint not yet grown to full size runs at its own size; its output is upsampled to r.
        """
        net = self.model.net
        x = targets.clamp(0.0, 1.0)  # the network was trained on [0, 1]; highlights stay in T
        if net.size != x.shape[-1]:
            x = F.interpolate(x, size=(net.size, net.size), mode="area")
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            swapped = net.decode(net.encode(x), self.persona)
        swapped = swapped.float()
        if swapped.shape[-1] != targets.shape[-1]:
            swapped = F.interpolate(swapped, size=targets.shape[-2:], mode="bilinear", align_corners=False)
        return swapped.contiguous()

    @torch.inference_mode()
    def __call__(self, targets: Tensor, covers: Tensor) -> tuple[Tensor, Tensor]:
        """Swap and blend: returns (S, O), both (B, 3, r, r) float32 on the model's device.

        Args:
            targets: (B, 3, r, r) aligned plate crops T, working space.
            covers: (B, 1, r, r) coverage of the polygon of T's outer landmarks.
        """
        targets = targets.to(self.device, torch.float32, non_blocking=True)
        covers = covers.to(self.device, torch.float32, non_blocking=True)
        swapped = self.swap(targets)
        blended = blend_crops(swapped, targets, covers, method=self.method, sigma=self.sigma,
                              target_face_levels=self.target_face_levels)
        return swapped, blended
