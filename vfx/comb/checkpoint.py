"""Comb checkpoints: safetensors weights and optimiser state, a JSON manifest (schema ``vfx.CombModel/1``).

A checkpoint is a folder ``step_00001234/`` holding ``model.safetensors`` (the network), ``optimizer.safetensors``
(Adam's moments, the random generators' states and the loss log's running sums) and ``manifest.json``
(architecture, persona records, level, alpha, step, learning rate, data hashes, training settings, vfx version).
The folder is written under a temporary name and renamed, so a killed run never leaves half a checkpoint; the
newest ``keep`` are kept.

Every read is checked before anything is loaded: the manifest against its schema model (:class:`ManifestModel`,
at most :data:`MAX_MANIFEST_BYTES`), and every tensor's name, shape and dtype in the safetensors headers against
the network the manifest describes (:func:`check_checkpoint`: header reads only, cheap enough for a plan). A
truncated, foreign, mis-shaped or non-safetensors file is a :class:`~vfx.errors.MediaError` (exit 2) naming the
file, the tensor or field, and the fix.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import vfx
from vfx.comb.network import CombConfig, CombNetwork
from vfx.errors import ConfigError, MediaError
from vfx.utils.stamped import (
    Layout,
    TensorSpec,
    WeightsHeader,
    check_weights_header,
    read_stamped,
    read_stamped_weights,
    read_weights_header,
    schema_error,
    write_stamped,
)

__all__ = [
    "COMB_SCHEMA",
    "MAX_MANIFEST_BYTES",
    "Manifest",
    "ManifestModel",
    "PersonaRecord",
    "check_checkpoint",
    "checkpoint_folder",
    "latest_checkpoint",
    "load_checkpoint",
    "read_manifest",
    "save_checkpoint",
]

COMB_SCHEMA = "vfx.CombModel/1"
MODEL_FILE, OPTIMIZER_FILE, MANIFEST_FILE = "model.safetensors", "optimizer.safetensors", "manifest.json"
_LAYOUT = Layout.folder(MANIFEST_FILE, MODEL_FILE, whole=True)
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
"""A manifest larger than this is refused unread (a run of 10⁵ iterations per level logs well under 1 MB)."""
_FIX = "pass a checkpoint written by vfx train (a run folder or one of its step_* folders), or an older step_* of its run"


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


# ---------------------------------------------------------------------------------------------- the manifest's schema

_Strict = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)


class _ConfigModel(BaseModel):
    model_config = _Strict
    resolution: int
    width: float
    personas: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)


class _PersonaModel(BaseModel):
    model_config = _Strict
    name: str = Field(min_length=1)
    facesets: list[str] = []
    consent: str | None = None
    data_hash: str = ""


class _OptimizerModel(BaseModel):
    model_config = _Strict
    param_groups: list[dict[str, Any]]


class ManifestModel(BaseModel):
    """The schema of ``manifest.json`` (``vfx.CombModel/1``): types and ranges of every field a reader uses.

    The ``schema`` field itself is checked by :func:`vfx.utils.stamped.read_stamped`; fields it does not know are
    ignored. The loss rows are ``[step, level, loss]`` (the loss may be NaN, as a diverged run logs it).
    """

    model_config = _Strict
    vfx_version: str = ""
    config: _ConfigModel
    personas: list[_PersonaModel] = Field(min_length=1)
    level: int = Field(ge=0, le=8)
    alpha: float = Field(ge=0.0, le=1.0)
    step: int = Field(ge=0)
    level_step: int = Field(ge=0)
    lr: float = Field(ge=0.0)
    train: dict[str, Any] = {}
    losses: list[Annotated[list[Annotated[float, Field(allow_inf_nan=True)]], Field(min_length=3, max_length=3)]] = []
    optimizer: _OptimizerModel | None = None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _validated(data: dict[str, Any], source: Path) -> dict[str, Any]:
    """``data`` (a manifest's JSON) once checked against :class:`ManifestModel` and the architecture's own rules."""
    try:
        ManifestModel.model_validate(data)
    except ValidationError as err:
        raise schema_error(err, f"Checkpoint manifest {source}", _FIX) from None
    config = data["config"]
    try:
        arch = CombConfig(resolution=config["resolution"], width=config["width"], personas=tuple(config["personas"]))
    except ConfigError as err:
        raise MediaError(f"Invalid checkpoint manifest {source}: field 'config' ({err.message})",
                         expected=err.expected, found=err.found, fix=_FIX) from None
    names = [p["name"] for p in data["personas"]]
    if names != list(arch.personas):
        raise MediaError(f"Invalid checkpoint manifest {source}: field 'personas'",
                         expected=f"one record per decoder, in order: {list(arch.personas)}", found=_shown(names), fix=_FIX)
    if data["level"] > arch.top_level:
        raise MediaError(f"Invalid checkpoint manifest {source}: field 'level'",
                         expected=f"0 to {arch.top_level} for a {arch.resolution}² network", found=str(data["level"]),
                         fix=_FIX)
    return data


# ---------------------------------------------------------------------------------------------- writing

def save_checkpoint(run: str | os.PathLike[str], net: CombNetwork, optimizer: torch.optim.Optimizer,
                    generators: dict[str, torch.Generator], manifest: Manifest, *, keep: int = 3,
                    extra: Mapping[str, torch.Tensor] | None = None) -> Path:
    """Write ``run/step_XXXXXXXX/`` atomically and drop all but the newest ``keep`` checkpoints.

    Args:
        extra: more tensors for ``optimizer.safetensors``, under their names (training's running loss sums,
            ``loss.*``): state a resumed run needs to continue exactly.
    """
    run = Path(run)
    final = run / f"step_{manifest.step:08d}"
    tensors, groups = _flatten_optimizer(optimizer)
    tensors.update({f"generator.{name}": g.get_state() for name, g in generators.items()})
    tensors.update({name: tensor.detach().contiguous().cpu() for name, tensor in (extra or {}).items()})
    write_stamped(final, COMB_SCHEMA, manifest.to_dict() | {"optimizer": groups}, net.state_dict(), layout=_LAYOUT,
                  more_weights={OPTIMIZER_FILE: tensors})
    for old in sorted(run.glob("step_*"))[:-keep] if keep > 0 else []:
        if old != final:
            _remove_checkpoint(old)
    return final


def _remove_checkpoint(folder: Path) -> None:
    """Remove a checkpoint folder, its manifest first: a kill midway leaves a folder no reader takes for one."""
    (folder / MANIFEST_FILE).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- reading

def latest_checkpoint(run: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    run = Path(run)
    if not run.is_dir():
        return None
    found = sorted(p for p in run.glob("step_*") if (p / MANIFEST_FILE).is_file())
    return found[-1] if found else None


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """The manifest of a checkpoint folder (or of a run folder: its newest checkpoint), checked against its schema.

    Raises:
        MediaError: no checkpoint there, not a ``vfx.CombModel/1`` manifest, not JSON, larger than
            :data:`MAX_MANIFEST_BYTES`, or a field missing, of the wrong type or out of range (the message names
            the file and the field).
    """
    return Manifest.from_dict(_read_manifest_data(checkpoint_folder(path)))


def _read_manifest_data(folder: Path) -> dict[str, Any]:
    source = _LAYOUT.json_path(folder)
    try:
        size = source.stat().st_size
    except OSError:
        size = 0  # read_stamped says what is wrong
    if size > MAX_MANIFEST_BYTES:
        raise MediaError(f"Checkpoint manifest {source} is too large to be one",
                         expected=f"at most {MAX_MANIFEST_BYTES // (1024 * 1024)} MB", found=f"{size / 1024 ** 2:.1f} MB",
                         fix=_FIX)
    data = read_stamped(folder, COMB_SCHEMA, layout=_LAYOUT, what="checkpoint", fix=_FIX)
    return _validated(data, source)


_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
           torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}


@functools.lru_cache(maxsize=16)
def _expected_tensors(config: CombConfig) -> dict[str, TensorSpec]:
    """Name -> (shape, safetensors dtype) of every tensor of the network ``config`` describes (built on the meta
    device: no memory, no initialisation)."""
    with torch.device("meta"):
        net = CombNetwork(config)
    return {name: (tuple(t.shape), _DTYPES.get(t.dtype, str(t.dtype))) for name, t in net.state_dict().items()}


def _read_header(folder: Path, name: str) -> WeightsHeader:
    """A weights file's header (no tensor read), stamped with the comb schema."""
    header = read_weights_header(folder, _LAYOUT, name=name, what="checkpoint", fix=_FIX)
    check_weights_header(header, schema=COMB_SCHEMA, what="checkpoint", fix=_FIX)
    return header


def _check_model_header(folder: Path, config: CombConfig) -> None:
    """Every tensor of ``model.safetensors``: exactly the network's names, each with its shape and dtype."""
    header = read_weights_header(folder, _LAYOUT, name=MODEL_FILE, what="checkpoint", fix=_FIX)
    check_weights_header(header, _expected_tensors(config), schema=COMB_SCHEMA, what="checkpoint",
                         fix=f"{_FIX} (the weights must be those of the network its manifest describes: "
                             f"{config.resolution}², width {config.width}, personas {', '.join(config.personas)})")


def _check_optimizer_header(folder: Path) -> None:
    """The names in ``optimizer.safetensors``: Adam's moments, generator states, loss sums (their shapes against
    the parameters are checked by :func:`restore_optimizer`, which knows the training run's parameter groups)."""
    header = _read_header(folder, OPTIMIZER_FILE)
    file = header.file
    for name, (shape, dtype) in header.tensors.items():
        kind, _, rest = name.partition(".")
        index, _, moment = rest.partition(".")
        good = (kind == "state" and index.isdigit() and moment in ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")) \
            or (kind == "generator" and shape == _GENERATOR_STATE and dtype == "U8") \
            or name in _LOSS_STATE
        if not good or (name in _LOSS_STATE and (shape, dtype) != _LOSS_STATE[name]):
            raise MediaError(f"Checkpoint optimiser state {file}: unexpected tensor {name!r}",
                             expected="Adam moments state.N.exp_avg / exp_avg_sq / step, generator states (uint8 "
                                      f"{list(_GENERATOR_STATE)}) and the loss sums {', '.join(_LOSS_STATE)}",
                             found=f"{name!r}: shape {list(shape)}, dtype {dtype}", fix=_FIX)


_GENERATOR_STATE = tuple(torch.Generator().get_state().shape)
_LOSS_STATE = {"loss.window_sum": ((1,), "F32"), "loss.window_count": ((1,), "I64")}
"""The loss log's running sums between two log intervals (:mod:`vfx.comb.train`), saved so a resumed run logs
exactly the losses of an uninterrupted one."""


def check_checkpoint(path: str | os.PathLike[str], *, optimizer: bool = False) -> Manifest:
    """Check a checkpoint without loading it: its manifest against the schema, and every tensor of
    ``model.safetensors`` (and with ``optimizer``, the names in ``optimizer.safetensors``) against the network
    the manifest describes: names, shapes, dtypes. Header reads only, so a plan can call it before any work.

    Args:
        path: a checkpoint folder, or a run folder (its newest checkpoint).
        optimizer: also check the optimiser state a resumed training run reads.

    Returns:
        The checkpoint's manifest.

    Raises:
        MediaError: no checkpoint there; a manifest that is not JSON, too large, or with a missing, mistyped or
            out-of-range field; weights that are truncated, not safetensors, foreign (other tensor names) or
            mis-shaped. The message names the file, the field or tensor, and the fix.
    """
    folder = checkpoint_folder(path)
    manifest = Manifest.from_dict(_read_manifest_data(folder))
    _check_model_header(folder, manifest.config)
    if optimizer:
        _check_optimizer_header(folder)
    return manifest


def load_checkpoint(path: str | os.PathLike[str], *, config: CombConfig | None = None,
                    device: torch.device | str = "cpu",
                    with_optimizer: bool = True) -> tuple[CombNetwork, Manifest, dict[str, Any]]:
    """Load a checkpoint folder (or a run folder's newest checkpoint), after :func:`check_checkpoint`.

    Args:
        path: the checkpoint or run folder.
        config: when given, the architecture the caller expects; another one is an error.
        device: where the network goes.
        with_optimizer: also read the optimiser state (training); swapping needs only the weights.

    Returns:
        (network at the saved level and alpha, manifest, optimiser state: ``{"tensors": ..., "groups": ...}``).

    Raises:
        MediaError: missing, truncated, foreign or mis-shaped files, an invalid manifest (see :func:`check_checkpoint`).
        ConfigError: the checkpoint's architecture differs from ``config``.
    """
    folder = checkpoint_folder(path)
    data = _read_manifest_data(folder)
    manifest = Manifest.from_dict(data)
    if config is not None and config != manifest.config:
        raise ConfigError(f"Checkpoint {folder} has another architecture",
                          expected=str(config.to_dict()), found=str(manifest.config.to_dict()),
                          fix="train a new model, or pass the checkpoint's resolution, width and personas")
    _check_model_header(folder, manifest.config)
    if with_optimizer:
        _check_optimizer_header(folder)
    weights = read_stamped_weights(folder, _LAYOUT, device=device, what="checkpoint", fix=_FIX)
    optimizer = (read_stamped_weights(folder, _LAYOUT, name=OPTIMIZER_FILE, what="checkpoint", fix=_FIX)
                 if with_optimizer else {})
    net = CombNetwork(manifest.config).to(device)
    net.load_state_dict(weights)  # names, shapes and dtypes checked above
    net.grow(manifest.level, manifest.alpha)
    groups = data.get("optimizer") or {}
    return net, manifest, {"tensors": optimizer, "groups": groups, "folder": folder}


def restore_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Put the saved Adam moments and settings back into ``optimizer`` (same parameter order), once checked to fit.

    Raises:
        MediaError: saved groups or moments that do not fit ``optimizer``'s parameters (another training setup,
            or a damaged file).
    """
    tensors, groups = state["tensors"], state["groups"]
    source = state.get("folder", "the checkpoint")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    current = optimizer.state_dict()["param_groups"]
    saved = groups.get("param_groups") if isinstance(groups, dict) else None
    if not isinstance(saved, list) or len(saved) != len(current) or \
            any(not isinstance(g, dict) or g.get("params") != c["params"] for g, c in zip(saved, current)):
        raise MediaError(f"The optimiser state of {source} does not fit this training run",
                         expected=f"{len(current)} parameter group(s) of {[len(c['params']) for c in current]} "
                                  "parameters", found=_shown(saved if not isinstance(saved, list) else
                                                             [len(g.get("params", ())) if isinstance(g, dict) else g
                                                              for g in saved]),
                         fix="resume with the settings the run was started with (e.g. --shared-lr-scale), or "
                             "start a new run")
    per_param: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if not key.startswith("state."):
            continue
        _, index, name = key.split(".", 2)
        position = int(index)
        expected = () if name == "step" else tuple(params[position].shape) if position < len(params) else None
        if expected is None or tuple(value.shape) != expected or not value.is_floating_point():
            raise MediaError(f"The optimiser state of {source} does not fit this training run: tensor {key!r}",
                             expected="a moment per trained parameter, of its shape" if expected is None else
                                      f"shape {list(expected)}, floating point",
                             found=f"shape {list(value.shape)}, dtype {value.dtype}" + (
                                 f" for parameter {position} of {len(params)}" if expected is None else ""),
                             fix="resume with the settings the run was started with, or start a new run")
        # Adam keeps its step count on the CPU and its moments beside the parameter.
        per_param.setdefault(position, {})[name] = value if name == "step" else value.to(params[position].device)
    restored = [{**c, **g, "params": c["params"]} for g, c in zip(saved, current)]
    optimizer.load_state_dict({"state": per_param, "param_groups": restored})


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
                         found="no such folder" if not folder.exists() else "none inside" if folder.is_dir()
                         else "a file, not a folder",
                         fix="pass a run folder written by vfx train, or one of its step_* folders")
    return latest
