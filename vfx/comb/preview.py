"""Pictures of a training run: reconstructions and swaps for every persona pair, the loss curve, and a timelapse.

:func:`write_training_pictures` is the one place they are drawn: :func:`vfx.comb.train.train_comb` calls it at
every checkpoint (so ``vfx train``, the farm's train task and the demo all get the same files, refreshed while the
run goes on). In the run folder:

- ``preview.png`` (:data:`PREVIEW_FILE`): the latest checkpoint's :func:`preview_grid`.
- ``loss.png`` (:data:`LOSS_FILE`): the loss log so far, one colour per level.
- ``timelapse_level<N>.png`` (:func:`timelapse_file`): one strip per level, a row per checkpoint of that level
  (time runs downwards, the iteration on the left): each persona's first held-out face, then its decoding by
  every persona's decoder. At most :data:`TIMELAPSE_ROWS` rows, evenly thinned (:func:`timelapse_kept`). Its rows
  are kept one file each under ``timelapse/level<N>/`` (named by iteration), so a killed and resumed run
  rebuilds exactly the strip of an uninterrupted one.

Drawing never touches a training random stream (held-out crops are picked by position; a run without any
uses its own seeded generator), runs under ``no_grad`` in eval mode (the mode is restored) and costs one
forward pass of a few crops. :func:`training_pictures` lists what a run folder holds, for ``vfx model info``
and the review page.

Convention:
    Images (H, W, 3) float32 in [0, 1] (working-space RGB) before they are written as 8-bit PNGs.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from vfx.comb.data import Augmentation, PersonaData, resize_to
from vfx.comb.network import CombNetwork, level_size
from vfx.io.image import read_image, write_image
from vfx.utils.atomic import TEMP_MARKER, remove_stale_temps
from vfx.utils.plots import pyplot, save_figure

__all__ = [
    "LOSS_FILE",
    "PREVIEW_FILE",
    "TIMELAPSE_FOLDER",
    "TIMELAPSE_ROWS",
    "preview_grid",
    "remove_stale_pictures",
    "timelapse_file",
    "timelapse_kept",
    "training_pictures",
    "write_loss_curve",
    "write_preview",
    "write_training_pictures",
]

PREVIEW_FILE = "preview.png"
"""The latest checkpoint's preview, in the run folder."""
LOSS_FILE = "loss.png"
"""The loss curve so far, in the run folder."""
TIMELAPSE_FOLDER = "timelapse"
"""Folder of the run holding each timelapse row as its own file (``level<N>/<iteration:08d>.png``)."""
TIMELAPSE_ROWS = 12
"""Rows a level's timelapse strip keeps at most."""
_TILE_MIN, _TILE_MAX = 64, 256
"""Tile side of a timelapse row: small levels enlarged (nearest), large ones reduced (area) into this range."""
_LABEL_PX, _HEADER_PX = 88, 18


def timelapse_file(level: int) -> str:
    """The name of level ``level``'s timelapse strip in the run folder: ``timelapse_level<N>.png``."""
    return f"timelapse_level{int(level)}.png"


@contextmanager
def _evaluating(net: CombNetwork) -> Iterator[None]:
    """``net`` in eval mode under ``no_grad``; its mode is restored after."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        net.train(was_training)


def preview_grid(net: CombNetwork, personas: Mapping[str, PersonaData], *, count: int = 4, seed: int = 0,
                 held_out: bool = True) -> np.ndarray:
    """A grid, one row per input crop: the input, then its decoding by every persona's decoder.

    The decoder of the input's own persona gives the reconstruction; the others give the swaps. Inputs are
    held-out crops where there are any (``held_out``), picked evenly by position, else training crops drawn by
    a generator of its own seeded with ``seed`` (no training random stream is touched); all at the network's
    current level. Runs under ``no_grad`` in eval mode; the network's mode is restored.

    Convention:
        returns (rows * s, (1 + P) * s, 3) float32 in [0, 1], s the network's current size, P its personas.
    """
    generator = torch.Generator().manual_seed(seed)
    device = next(net.parameters()).device
    rows = []
    with _evaluating(net):
        for data in personas.values():
            held_images, _ = data.held_out
            if held_out and len(held_images):
                pick = torch.linspace(0, len(held_images) - 1, min(count, len(held_images))).round().long()
                images = resize_to(held_images[pick].float().div(255.0).to(device), net.size)
            else:
                images, _ = data.batch(net.size, count, generator, device=device, augmentation=Augmentation.none())
            z = net.encode(images)
            outputs = [net.decode(z, name).float() for name in net.personas]
            rows.append(torch.cat([images, *outputs], dim=3))
    grid = torch.cat(list(torch.cat(rows, dim=0)), dim=1)  # every row under the previous: (3, N s, (1 + P) s)
    return grid.permute(1, 2, 0).clamp(0.0, 1.0).float().cpu().numpy()


def write_preview(net: CombNetwork, personas: Mapping[str, PersonaData], path: str | os.PathLike[str],
                  *, count: int = 4, min_tile_px: int = 128) -> Path:
    """Write :func:`preview_grid` as a PNG (atomically), small levels enlarged (nearest) to ``min_tile_px`` tiles."""
    grid = preview_grid(net, personas, count=count)
    factor = max(1, min_tile_px // net.size)
    if factor > 1:
        grid = grid.repeat(factor, axis=0).repeat(factor, axis=1)
    return write_image(path, np.ascontiguousarray(grid), channels=("R", "G", "B"), dtype="uint8")


def write_loss_curve(losses: list[list[float]], path: str | os.PathLike[str]) -> Path:
    """Plot (iteration, level, loss) rows as a PNG (atomically), one colour per level."""
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
    else:
        axis.set_title("no loss logged yet", fontsize=9)
    fig.subplots_adjust(left=0.075, right=0.99, bottom=0.15, top=0.93)  # fixed margins: no layout pass per draw
    return save_figure(fig, path)


def timelapse_kept(index: int, rows: int = TIMELAPSE_ROWS) -> list[int]:
    """The row indices (1-based checkpoint numbers within a level) a strip keeps once checkpoint ``index`` is in.

    Every ``stride``-th checkpoint plus the newest, ``stride`` the smallest power of two that keeps at most
    ``rows``: evenly thinned, and each set is contained in the previous one plus the newest, so rows dropped
    once are never needed again (a row file can be deleted as soon as it leaves the set).
    """
    if index < 1:
        return []
    if rows < 2:
        return [index]
    stride = 1
    while index // stride + (index % stride != 0) > rows:
        stride *= 2
    kept = list(range(stride, index + 1, stride))
    return kept if kept and kept[-1] == index else [*kept, index]


def write_training_pictures(net: CombNetwork, personas: Mapping[str, PersonaData], run: str | os.PathLike[str],
                            losses: list[list[float]] | None, *, step: int, timelapse_index: int | None = None,
                            level_start: int = 0, checkpoint_every: int = 0) -> dict[str, Path]:
    """Refresh the run's pictures at a checkpoint: ``preview.png``, ``loss.png`` (unless ``losses`` is None: the
    caller knows the log has no new row since it last drew it) and, when ``timelapse_index`` is given (the
    checkpoint's number within its level, 1 for the first), a new row of the level's timelapse.

    Every file is written atomically. The row files are named by ``step`` (rewriting one after a resume gives
    the same row); rows :func:`timelapse_kept` drops are deleted. ``level_start`` and ``checkpoint_every`` map
    the row files' iterations back to checkpoint numbers (``ceil((iteration - level_start) / checkpoint_every)``,
    1 when ``checkpoint_every`` is 0).

    Returns:
        The files written, by kind (``preview``, ``loss``, ``timelapse``).
    """
    run = Path(run)
    written = {"preview": write_preview(net, personas, run / PREVIEW_FILE)}
    if losses is not None:
        written["loss"] = write_loss_curve(losses, run / LOSS_FILE)
    if timelapse_index is not None:
        written["timelapse"] = _add_timelapse_row(net, personas, run, step=step, index=timelapse_index,
                                                  level_start=level_start, checkpoint_every=checkpoint_every)
    return written


def _timelapse_row(net: CombNetwork, personas: Mapping[str, PersonaData]) -> tuple[np.ndarray, list[str]]:
    """One row: per persona, its first held-out face and that face decoded by every decoder; with tile labels."""
    grid = preview_grid(net, personas, count=1)  # (P_in s, (1 + P) s, 3)
    size = net.size
    row = np.concatenate([grid[i * size:(i + 1) * size] for i in range(len(personas))], axis=1)
    tile = min(max(size, _TILE_MIN), _TILE_MAX)
    if tile > size:
        row = row.repeat(tile // size, axis=0).repeat(tile // size, axis=1)
    elif tile < size:
        row = _area_reduce(row, size // tile)
    labels = [label for name in personas for label in (f"{name} in", *(f"> {n}" for n in net.personas))]
    return np.ascontiguousarray(row), labels


def _area_reduce(image: np.ndarray, factor: int) -> np.ndarray:
    h, w, c = image.shape
    return image.reshape(h // factor, factor, w // factor, factor, c).mean(axis=(1, 3))


def _add_timelapse_row(net: CombNetwork, personas: Mapping[str, PersonaData], run: Path, *, step: int, index: int,
                       level_start: int, checkpoint_every: int) -> Path:
    level = net.level
    folder = run / TIMELAPSE_FOLDER / f"level{level}"
    row, labels = _timelapse_row(net, personas)
    write_image(folder / f"{step:08d}.png", row, channels=("R", "G", "B"), dtype="uint8")
    kept = set(timelapse_kept(index))
    present = []
    for file in sorted(folder.glob("*.png")):
        if not re.fullmatch(r"\d{8}\.png", file.name):
            continue
        at = int(file.stem)
        number = 1 if checkpoint_every <= 0 else math.ceil((at - level_start) / checkpoint_every)
        if number in kept and at <= step:
            present.append((at, file))
        else:
            file.unlink(missing_ok=True)  # thinned out (or a killed run's later row, written again when reached)
    return _write_strip(run / timelapse_file(level), present, labels, level)


def _write_strip(path: Path, rows: list[tuple[int, Path]], labels: list[str], level: int) -> Path:
    """Stack the row files under a header of tile labels, each row's iteration written on its left."""
    import cv2

    images = [np.clip(read_image(file).pixels[..., :3] * 255.0 + 0.5, 0, 255).astype(np.uint8) for _, file in rows]
    width = max(image.shape[1] for image in images)
    tile = images[0].shape[0]
    sheet = np.full((_HEADER_PX + sum(image.shape[0] for image in images), _LABEL_PX + width, 3), 24, np.uint8)
    font, white = cv2.FONT_HERSHEY_SIMPLEX, (235, 235, 235)
    cv2.putText(sheet, f"level {level} ({level_size(level)}px)", (4, 13), font, 0.36, white, 1, cv2.LINE_AA)
    for column, label in enumerate(labels):
        text = label[: max(3, tile // 7)]
        cv2.putText(sheet, text, (_LABEL_PX + column * tile + 3, 13), font, 0.36, white, 1, cv2.LINE_AA)
    top = _HEADER_PX
    for (at, _), image in zip(rows, images):
        sheet[top:top + image.shape[0], _LABEL_PX:_LABEL_PX + image.shape[1]] = image
        cv2.putText(sheet, f"it {at}", (4, top + image.shape[0] // 2 + 4), font, 0.4, white, 1, cv2.LINE_AA)
        top += image.shape[0]
    return write_image(path, sheet.astype(np.float32) / 255.0, channels=("R", "G", "B"), dtype="uint8")


def remove_stale_pictures(run: str | os.PathLike[str]) -> int:
    """Remove the temporary files a killed run left while writing its pictures; returns how many."""
    run = Path(run)
    count = remove_stale_temps(run / PREVIEW_FILE) + remove_stale_temps(run / LOSS_FILE)
    count += remove_stale_temps(run / TIMELAPSE_FOLDER, under=True)
    for temp in run.glob(f".timelapse_level*{TEMP_MARKER}*") if run.is_dir() else ():
        temp.unlink(missing_ok=True)
        count += 1
    return count


def training_pictures(run: str | os.PathLike[str]) -> dict[str, Path]:
    """The pictures a run folder holds, by name: ``preview``, ``loss`` and ``timelapse_level<N>`` (by level).

    ``run`` may be a run folder or one of its ``step_*`` checkpoints (the pictures are the run's). Only files
    that exist are listed; the review page links these paths.
    """
    run = Path(run)
    if run.name.startswith("step_") and not (run / PREVIEW_FILE).exists():
        run = run.parent
    found: dict[str, Path] = {}
    for key, name in (("preview", PREVIEW_FILE), ("loss", LOSS_FILE)):
        if (run / name).is_file():
            found[key] = run / name
    strips = [(int(m.group(1)), p) for p in run.glob("timelapse_level*.png")
              if (m := re.fullmatch(r"timelapse_level(\d+)\.png", p.name))]
    for level, path in sorted(strips):
        found[f"timelapse_level{level}"] = path
    return found
