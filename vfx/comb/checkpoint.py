"""Comb checkpoints: safetensors weights and optimiser state, a JSON manifest (schema ``vfx.CombModel/1``).

A checkpoint is a folder ``step_00001234/`` holding ``model.safetensors`` (the network), ``optimizer.safetensors``
(Adam's moments, and the random generators' states) and ``manifest.json`` (architecture, persona records, level,
alpha, step, learning rate, data hashes, training settings, vfx version). The folder is written under a
temporary name and renamed, so a killed run never leaves half a checkpoint; the newest ``keep`` are kept.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import vfx
from vfx.comb.network import CombConfig, CombNetwork
from vfx.errors import ConfigError, MediaError
from vfx.utils.stamped import Layout, read_stamped, read_stamped_weights, write_stamped

__all__ = [
    "COMB_SCHEMA",
    "Manifest",
    "PersonaRecord",
    "checkpoint_folder",
    "latest_checkpoint",
    "load_checkpoint",
    "read_manifest",
    "save_checkpoint",
]

COMB_SCHEMA = "vfx.CombModel/1"
MODEL_FILE, OPTIMIZER_FILE, MANIFEST_FILE = "model.safetensors", "optimizer.safetensors", "manifest.json"
_LAYOUT = Layout.folder(MANIFEST_FILE, MODEL_FILE, whole=True)


@dataclass(frozen=True)
class PersonaRecord:
    """A persona as the model knows it: its name, where its faces came from, and the consent behind them.

    Attributes:
        name: the decoder's name.
        facesets: the faceset folders it was trained on.
        consent: who agreed, to what use, until when (free text); None when trained with ``--no-consent-record``.
        data_hash: fingerprint of the training crops.
    """

    name: str
    facesets: tuple[str, ...] = ()
    consent: str | None = None
    data_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "facesets": list(self.facesets), "consent": self.consent,
                "data_hash": self.data_hash}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PersonaRecord:
        return cls(data["name"], tuple(data.get("facesets", ())), data.get("consent"), data.get("data_hash", ""))


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` holds."""

    config: CombConfig
    personas: tuple[PersonaRecord, ...]
    level: int
    alpha: float
    step: int
    level_step: int
    lr: float
    train: dict[str, Any] = field(default_factory=dict)
    losses: list[list[float]] = field(default_factory=list)
    """(step, level, loss) rows, for the loss curve."""

    def to_dict(self) -> dict[str, Any]:
        return {"schema": COMB_SCHEMA, "vfx_version": vfx.__version__, "config": self.config.to_dict(),
                "personas": [p.to_dict() for p in self.personas], "level": self.level, "alpha": self.alpha,
                "step": self.step, "level_step": self.level_step, "lr": self.lr, "train": self.train,
                "losses": self.losses}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        config = data["config"]
        return cls(CombConfig(resolution=config["resolution"], width=config["width"],
                              personas=tuple(config["personas"])),
                   tuple(PersonaRecord.from_dict(p) for p in data["personas"]), data["level"], data["alpha"],
                   data["step"], data["level_step"], data["lr"], data.get("train", {}), data.get("losses", []))


def save_checkpoint(run: str | os.PathLike[str], net: CombNetwork, optimizer: torch.optim.Optimizer,
                    generators: dict[str, torch.Generator], manifest: Manifest, *, keep: int = 3) -> Path:
    """Write ``run/step_XXXXXXXX/`` atomically and drop all but the newest ``keep`` checkpoints."""
    run = Path(run)
    final = run / f"step_{manifest.step:08d}"
    tensors, groups = _flatten_optimizer(optimizer)
    tensors.update({f"generator.{name}": g.get_state() for name, g in generators.items()})
    write_stamped(final, COMB_SCHEMA, manifest.to_dict() | {"optimizer": groups}, net.state_dict(), layout=_LAYOUT,
                  more_weights={OPTIMIZER_FILE: tensors})
    for old in sorted(run.glob("step_*"))[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    found = sorted(p for p in Path(run).glob("step_*") if (p / MANIFEST_FILE).is_file())
    return found[-1] if found else None


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """The manifest of a checkpoint folder (or of a run folder: its newest checkpoint).

    Raises:
        MediaError: no checkpoint there, or not a ``vfx.CombModel/1`` manifest.
    """
    return Manifest.from_dict(_read_manifest_data(checkpoint_folder(path)))


def _read_manifest_data(folder: Path) -> dict[str, Any]:
    return read_stamped(folder, COMB_SCHEMA, layout=_LAYOUT, what="checkpoint",
                        fix="pass a checkpoint folder written by vfx train")


def load_checkpoint(path: str | os.PathLike[str], *, config: CombConfig | None = None,
                    device: torch.device | str = "cpu",
                    with_optimizer: bool = True) -> tuple[CombNetwork, Manifest, dict[str, Any]]:
    """Load a checkpoint folder (or a run folder's newest checkpoint).

    Args:
        path: the checkpoint or run folder.
        config: when given, the architecture the caller expects; another one is an error.
        device: where the network goes.
        with_optimizer: also read the optimiser state (training); swapping needs only the weights.

    Returns:
        (network at the saved level and alpha, manifest, optimiser state: ``{"tensors": ..., "groups": ...}``).

    Raises:
        MediaError: missing or truncated files.
        ConfigError: the checkpoint's architecture differs from ``config``.
    """
    folder = checkpoint_folder(path)
    data = _read_manifest_data(folder)
    manifest = Manifest.from_dict(data)
    if config is not None and config != manifest.config:
        raise ConfigError(f"Checkpoint {folder} has another architecture",
                          expected=str(config.to_dict()), found=str(manifest.config.to_dict()),
                          fix="train a new model, or pass the checkpoint's resolution, width and personas")
    fix = "use an older checkpoint of the run"
    weights = read_stamped_weights(folder, _LAYOUT, device=device, what="checkpoint", fix=fix)
    optimizer = (read_stamped_weights(folder, _LAYOUT, name=OPTIMIZER_FILE, what="checkpoint", fix=fix)
                 if with_optimizer else {})
    net = CombNetwork(manifest.config).to(device)
    missing, unexpected = net.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise MediaError(f"Checkpoint {folder} does not fit its own architecture",
                         expected="the tensors of a CombNetwork", found=f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    net.grow(manifest.level, manifest.alpha)
    groups = data.get("optimizer", {})
    return net, manifest, {"tensors": optimizer, "groups": groups}


def restore_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Put the saved Adam moments and settings back into ``optimizer`` (same parameter order)."""
    tensors, groups = state["tensors"], state["groups"]
    params = [p for group in optimizer.param_groups for p in group["params"]]
    per_param: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if not key.startswith("state."):
            continue
        _, index, name = key.split(".", 2)
        # Adam keeps its step count on the CPU and its moments beside the parameter.
        per_param.setdefault(int(index), {})[name] = value if name == "step" else value.to(params[int(index)].device)
    optimizer.load_state_dict({"state": per_param, "param_groups": groups["param_groups"]})


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"state.{index}.{name}"] = tensor.detach().contiguous().cpu()
    return tensors, {"param_groups": state["param_groups"]}


def checkpoint_folder(path: str | os.PathLike[str]) -> Path:
    """The checkpoint folder ``path`` names: itself, or a run folder's newest complete checkpoint."""
    folder = Path(path)
    if (folder / MANIFEST_FILE).is_file():
        return folder
    latest = latest_checkpoint(folder) if folder.is_dir() else None
    if latest is None:
        raise MediaError(f"No comb checkpoint at {folder}", expected=f"a step_* folder with {MANIFEST_FILE}",
                         found="no such folder" if not folder.exists() else "none inside",
                         fix="pass a run folder written by vfx train, or one of its step_* folders")
    return latest
