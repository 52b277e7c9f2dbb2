"""Pictures of a training run: reconstructions and swaps for every persona pair, and the loss curve."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from vfx.comb.data import Augmentation, PersonaData, resize_to
from vfx.comb.network import CombNetwork
from vfx.io.image import write_image
from vfx.utils.plots import pyplot, save_figure

__all__ = ["write_preview", "write_loss_curve", "preview_grid"]


@torch.no_grad()
def preview_grid(net: CombNetwork, personas: Mapping[str, PersonaData], *, count: int = 4, seed: int = 0,
                 held_out: bool = True) -> np.ndarray:
    """A grid, one row per input crop: the input, then its decoding by every persona's decoder.

    The decoder of the input's own persona gives the reconstruction; the others give the swaps. Inputs are
    held-out crops where there are any (``held_out``), else training crops; all at the network's current level.

    Returns:
        (rows * s, (1 + P) * s, 3) float32 in [0, 1].
    """
    generator = torch.Generator().manual_seed(seed)
    device = next(net.parameters()).device
    rows = []
    for data in personas.values():
        held_images, _ = data.held_out
        if held_out and len(held_images):
            pick = torch.linspace(0, len(held_images) - 1, min(count, len(held_images))).round().long()
            images = resize_to(held_images[pick].float().div(255.0).to(device), net.size)
        else:
            images, _ = data.batch(net.size, count, generator, device=device, augmentation=Augmentation.none())
        z = net.encode(images)
        outputs = [net.decode(z, name) for name in net.personas]
        rows.append(torch.cat([images, *outputs], dim=3))
    grid = torch.cat(list(torch.cat(rows, dim=0)), dim=1)  # every row under the previous: (3, N s, (1 + P) s)
    return grid.permute(1, 2, 0).float().cpu().numpy()


def write_preview(net: CombNetwork, personas: Mapping[str, PersonaData], path: str | os.PathLike[str],
                  *, count: int = 4, min_tile_px: int = 128) -> Path:
    """Write :func:`preview_grid` as a PNG, small levels enlarged (nearest) to ``min_tile_px`` tiles."""
    grid = preview_grid(net, personas, count=count)
    factor = max(1, min_tile_px // net.size)
    if factor > 1:
        grid = grid.repeat(factor, axis=0).repeat(factor, axis=1)
    return write_image(path, np.ascontiguousarray(grid), channels=("R", "G", "B"), dtype="uint8")


def write_loss_curve(losses: list[list[float]], path: str | os.PathLike[str]) -> Path:
    """Plot (iteration, level, loss) rows as a PNG, one colour per level."""
    plt = pyplot()
    rows = np.asarray(losses, dtype=np.float64).reshape(-1, 3)
    fig, axis = plt.subplots(figsize=(9, 3.2))
    for level in np.unique(rows[:, 1]).astype(int):
        part = rows[rows[:, 1] == level]
        axis.plot(part[:, 0], part[:, 2], label=f"level {level} ({4 << level}²)")
    axis.set_xlabel("iteration")
    axis.set_ylabel("1 - (MS-)SSIM")
    axis.grid(alpha=0.3)
    if len(rows):
        axis.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
