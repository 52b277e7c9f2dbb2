"""Saving and loading a trained refiner: a folder of ``refiner.safetensors`` + ``refiner.json`` (``vfx.Refiner/1``).

Both files go through :mod:`vfx.utils.stamped` (atomic writes, schema-checked reads); load errors are
:class:`~vfx.errors.ConfigError`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

import vfx
from vfx.errors import ConfigError, MediaError
from vfx.retouch.refiner.network import LayoutRefiner, RefinerConfig, TrainedRefiner, _resolve_device
from vfx.utils.stamped import Layout, read_stamped, read_stamped_weights, write_stamped

__all__ = ["HISTORY_TAIL", "MANIFEST_FILE", "REFINER_SCHEMA", "WEIGHTS_FILE", "load_refiner", "save_refiner"]

REFINER_SCHEMA = "vfx.Refiner/1"
WEIGHTS_FILE, MANIFEST_FILE = "refiner.safetensors", "refiner.json"
_LAYOUT = Layout.folder(MANIFEST_FILE, WEIGHTS_FILE)
HISTORY_TAIL = 200
"""How many logged loss rows ``refiner.json`` keeps."""


def save_refiner(folder: str | os.PathLike[str], trained: TrainedRefiner) -> Path:
    """Write ``folder/refiner.safetensors`` and ``folder/refiner.json`` (schema ``vfx.Refiner/1``), each atomically.

    The weights are written first and the manifest last, so a folder with a manifest always has its weights. The
    manifest holds the config, the steps, the training size and the last :data:`HISTORY_TAIL` history rows.

    Returns:
        The folder.
    """
    folder = Path(folder)
    state = {k: v.detach().float() for k, v in trained.generator.state_dict().items()}
    manifest = {"schema": REFINER_SCHEMA, "vfx_version": vfx.__version__, "config": trained.config.to_dict(),
                "steps": trained.steps, "size": list(trained.size), "history": trained.history[-HISTORY_TAIL:]}
    write_stamped(folder, REFINER_SCHEMA, manifest, state, layout=_LAYOUT)
    return folder


def load_refiner(folder: str | os.PathLike[str], device: str | torch.device = "cpu") -> TrainedRefiner:
    """Load a refiner written by :func:`save_refiner`, in eval mode on ``device``.

    Raises:
        ConfigError: a missing folder or file (``vfx retouch SHOT`` trains and writes one), a manifest that is not
            ``vfx.Refiner/1`` JSON, or weights that do not match the manifest's architecture.
    """
    folder = Path(folder)
    how = "run `vfx retouch SHOT` to train the shot's refiner and write it there"
    if not folder.is_dir():
        raise ConfigError(f"Refiner folder {folder} not found",
                          expected=f"a folder holding {MANIFEST_FILE} and {WEIGHTS_FILE}",
                          found="a file" if folder.exists() else "nothing at that path", fix=how)
    for name in (MANIFEST_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise ConfigError(f"Refiner file {folder / name} not found",
                              expected=f"{MANIFEST_FILE} and {WEIGHTS_FILE} in {folder}", found=f"no {name}", fix=how)
    try:
        manifest = read_stamped(folder, REFINER_SCHEMA, layout=_LAYOUT, what="refiner", fix=how)
        state = read_stamped_weights(folder, _LAYOUT, what="refiner", fix=how)
    except MediaError as err:  # this loader's callers expect a ConfigError (exit 2 all the same)
        raise ConfigError(err.message, expected=err.expected, found=err.found, fix=err.fix) from err
    try:
        config = RefinerConfig.from_dict(manifest["config"])
        steps, size = int(manifest["steps"]), (int(manifest["size"][0]), int(manifest["size"][1]))
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ConfigError(f"Incomplete refiner manifest {folder / MANIFEST_FILE}",
                          expected="config, steps and size entries", found=repr(err), fix=how) from err
    net = LayoutRefiner(config)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ConfigError(f"Refiner weights {folder / WEIGHTS_FILE} do not match its manifest",
                          expected="the architecture of refiner.json's config", found=str(err).splitlines()[0],
                          fix=how) from err
    dev = _resolve_device(device)
    history = [dict(row) for row in manifest.get("history", [])]
    return TrainedRefiner(net.to(dev).eval(), config, steps, size, history)
