"""Progressive training of the comb network ([0033]-[0043] of 002).

One stage per level, from 4² up to the final resolution. In a stage the newest level fades in (alpha rises
linearly from 0 to 1 over the first half of the stage, one alpha for every decoder; level 0 has nothing to fade
from). Every iteration shuffles the personas and, for each, draws a batch of that persona only, reconstructs
it through the shared encoder and the persona's own decoder, and takes one Adam step ([0041]): the encoder and
the tied decoder levels get P updates per iteration, each decoder's own levels one. The loss is SSIM (on 16²
upsampled images) for levels 0-2 and MS-SSIM from level 3, masked by the face mask (Eq. 1 or Eq. 2). Adam
runs at 1e-4; after the final level's stage it continues at 1e-5 for ``fine_tune_iters`` more iterations.

On CUDA the step runs channels-last under bf16 (or fp16 with a gradient scaler) autocast and may be compiled
with ``torch.compile``; nothing in the step waits on the host (the loss is read back only at log intervals).
On the CPU the same code runs in float32.

Several GPUs (or CPU processes): run under ``torchrun --nproc_per_node N``; every process trains the same
persona in the same step on its own batches and DistributedDataParallel averages the gradients; process 0
writes the checkpoints. Resuming a multi-process run is exact for process 0's data stream only.

Checkpoints (:mod:`vfx.comb.checkpoint`) are written every ``checkpoint_every`` iterations and at the end;
``resume`` continues from the newest one exactly where it stopped (same batches, same losses on the CPU). A
checkpoint also holds the loss log's running sums (the sum and count of the losses since the last log row), and
a run stopped early (``stop_after``, a farm chunk, a kill) logs no extra row at its stop, so a resumed run
records exactly the loss history (``manifest.losses``, ``loss.png``) of an uninterrupted one.

Training you can watch: at every checkpoint, just before it is written, process 0 refreshes the run folder's
``preview.png`` and ``loss.png`` (when the loss log has a new row) and, at the scheduled checkpoints (every ``checkpoint_every`` iterations and
the end; not where a chunk stops), adds a row to the level's ``timelapse_level<N>.png``
(:func:`vfx.comb.preview.write_training_pictures`, the one place they are drawn). Drawing uses no training
random stream, so a resumed run still matches an uninterrupted one bit for bit, pictures included.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from vfx.comb.checkpoint import (
    Manifest,
    PersonaRecord,
    latest_checkpoint,
    load_checkpoint,
    restore_optimizer,
    save_checkpoint,
)
from vfx.comb.data import Augmentation, PersonaData
from vfx.comb.losses import MaskMode, level_loss
from vfx.comb.network import CombConfig, CombNetwork, level_size
from vfx.comb.preview import remove_stale_pictures, training_pictures, write_training_pictures
from vfx.errors import ConfigError
from vfx.shot.schema import ModelTraining
from vfx.utils.atomic import TEMP_MARKER
from vfx.utils.device import resolve_device

__all__ = ["TrainConfig", "TrainProgress", "train_comb", "alpha_at", "held_out_ssim", "describe"]

log = logging.getLogger(__name__)

_DEFAULTS = ModelTraining()
"""The training defaults, stated once in :class:`vfx.shot.schema.ModelTraining`."""


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a training run.

    The defaults are those of :class:`vfx.shot.schema.ModelTraining` (the shot file's ``model.training``),
    so a shot, ``vfx train`` and a farm run never disagree on them.

    Attributes:
        iters_per_level: iterations per stage (the patent: 1e5). An iteration is one step per persona.
        fine_tune_iters: extra iterations at ``final_lr`` after the final stage.
        batch_size: crops per step (of one persona).
        lr, final_lr: Adam's learning rate, and the one after the final stage ([0043]).
        mask_mode: ``"target"`` (Eq. 1) or ``"both"`` (Eq. 2).
        seed: seeds the weights, the persona order, the batches and the augmentation.
        checkpoint_every: iterations between checkpoints (0: only at the end); None (the default):
            ``min(500, iters_per_level)``, so a short run still checkpoints every level.
        keep_checkpoints: how many to keep.
        log_every: iterations between progress reports (and loss read-backs); None (the default):
            ``max(1, min(50, iters_per_level // 4))``.
        augment: use the light augmentation (:class:`vfx.comb.data.Augmentation`).
        amp: on CUDA, "bf16", "fp16" or "off".
        compile: ``torch.compile`` the network (CUDA; first steps are slow while it compiles).
        shared_lr_scale: learning-rate factor of the encoder and the tied decoder levels (0 freezes them), for
            adding a persona to a trained model without disturbing the others.
    """

    iters_per_level: int = _DEFAULTS.iters_per_level
    fine_tune_iters: int = _DEFAULTS.fine_tune_iters
    batch_size: int = _DEFAULTS.batch_size
    lr: float = 1e-4
    final_lr: float = 1e-5
    mask_mode: MaskMode = _DEFAULTS.mask
    seed: int = _DEFAULTS.seed
    checkpoint_every: int | None = _DEFAULTS.checkpoint_every
    keep_checkpoints: int = 3
    log_every: int | None = None
    augment: bool = True
    amp: str = "bf16"
    compile: bool = False
    shared_lr_scale: float = 1.0

    def __post_init__(self) -> None:
        # Integers first (the interval rule below computes with iters_per_level), then the one checkpoint (and
        # log) interval rule for every caller that leaves them unset, then the rest.
        _check_int("iters_per_level", self.iters_per_level, 1)
        _check_int("batch_size", self.batch_size, 1, _MAX_BATCH)
        if self.checkpoint_every is None:
            object.__setattr__(self, "checkpoint_every", max(1, min(500, self.iters_per_level)))
        if self.log_every is None:
            object.__setattr__(self, "log_every", max(1, min(50, self.iters_per_level // 4)))
        for name in ("fine_tune_iters", "checkpoint_every", "keep_checkpoints"):
            _check_int(name, getattr(self, name), 0)
        _check_int("log_every", self.log_every, 1)
        _check_int("seed", self.seed, 0, _MAX_SEED)
        for name, low in (("lr", "(0"), ("final_lr", "[0")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or \
                    value < 0 or (value == 0 and name == "lr") or value > 1:
                _refuse(name, f"a learning rate in {low}, 1] (the patent: 1e-4, then 1e-5)", value)
        if self.mask_mode not in ("target", "both"):
            raise ConfigError("Invalid mask mode", expected="'target' (Eq. 1) or 'both' (Eq. 2)",
                              found=repr(self.mask_mode), fix="use --mask target or --mask both")
        value = self.shared_lr_scale
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            _refuse("shared_lr_scale", "a factor in [0, 1] (0 freezes the encoder)", value)
        if self.amp not in ("bf16", "fp16", "off"):
            raise ConfigError("Invalid amp setting", expected="bf16, fp16 or off", found=repr(self.amp),
                              fix="use --amp bf16, fp16 or off")
        for name in ("augment", "compile"):
            if not isinstance(getattr(self, name), bool):
                _refuse(name, "true or false", getattr(self, name))


_MAX_SEED = 2 ** 63 - 1
_MAX_BATCH = 65536
_MAX_ITERATIONS = 10 ** 9
_OPTIONS = {"iters_per_level": "--iters-per-level", "fine_tune_iters": "--fine-tune-iters", "batch_size": "--batch",
            "checkpoint_every": "--checkpoint-every", "seed": "--seed", "shared_lr_scale": "--shared-lr-scale"}
"""The ``vfx train`` option (and shot field ``model.training.NAME``) of each setting, for the messages' fixes."""


def _refuse(name: str, expected: str, value: object) -> None:
    option = _OPTIONS.get(name)
    where = (f"{option} (or model.training.{name} in the shot file)" if option and name != "shared_lr_scale"
             else option or f"TrainConfig.{name}")
    raise ConfigError(f"Invalid training setting {name}", expected=expected, found=repr(value),
                      fix=f"set {where} to {expected}")


def _check_int(name: str, value: object, low: int, high: int = _MAX_ITERATIONS) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        _refuse(name, f"an integer from {low} to {high}", value)


@dataclass(frozen=True)
class TrainProgress:
    """One progress report: where training is and how fast it goes."""

    step: int
    total_steps: int
    level: int
    alpha: float
    loss: float
    images_per_s: float
    lr: float

    def line(self) -> str:
        return (f"train: iteration {self.step}/{self.total_steps} level {self.level} ({level_size(self.level)}²) "
                f"alpha {self.alpha:.2f} loss {self.loss:.4f} lr {self.lr:g} {self.images_per_s:.1f} images/s")


def alpha_at(level: int, level_step: int, iters_per_level: int) -> float:
    """Fade-in gain at iteration ``level_step`` of a stage: linear from 0 to 1 over its first half."""
    if level == 0:
        return 1.0
    return min(1.0, level_step / max(1.0, iters_per_level / 2))


def train_comb(
    personas: Mapping[str, PersonaData],
    run: str | Path,
    *,
    resolution: int,
    width: float = 1.0,
    config: TrainConfig = TrainConfig(),
    records: Mapping[str, PersonaRecord] | None = None,
    device: str = "cpu",
    resume: bool = False,
    report: Callable[[TrainProgress], None] | None = None,
    stop_after: int | None = None,
    base: str | Path | None = None,
) -> tuple[CombNetwork, Manifest]:
    """Train (or resume) a comb network on ``personas`` and checkpoint it into the folder ``run``.

    Args:
        personas: name -> its crops (at ``resolution``), in decoder order.
        run: the run folder (checkpoints ``step_*``).
        resolution, width: the architecture (:class:`CombConfig`).
        config: the training settings.
        records: persona records for the manifest (default: names only).
        device: ``"cpu"``, ``"cuda[:N]"`` or ``"auto"`` (:func:`vfx.utils.device.resolve_device`: a CUDA device
            this machine lacks is a :class:`~vfx.errors.ConfigError`, before anything is read or written).
        resume: continue from the newest checkpoint in ``run`` (an error when there is none, or when it is
            of another architecture).
        report: called with a :class:`TrainProgress` every ``log_every`` iterations.
        stop_after: stop (with a checkpoint) after this many iterations in total, as a killed run would;
            for tests and for chunked farm tasks.
        base: add personas to this trained model (a run or checkpoint folder, grown to ``resolution``): the
            network keeps its encoder, tied levels and decoders, each persona of ``personas`` that it lacks gets
            a decoder whose own levels start as a copy of its first decoder's, and training runs the final
            stage (and fine-tuning) only, on the personas given. Use ``shared_lr_scale`` to freeze or slow
            the encoder.

    Returns:
        The network and the last manifest written.
    """
    device = resolve_device(device)
    if not isinstance(config, TrainConfig):
        raise ConfigError("Invalid training settings", expected="a vfx.comb.train.TrainConfig",
                          found=type(config).__name__, fix="pass TrainConfig(...)")
    if stop_after is not None and (isinstance(stop_after, bool) or not isinstance(stop_after, int) or stop_after < 0):
        raise ConfigError("Invalid stop_after", expected="an iteration count >= 0, or None", found=repr(stop_after),
                          fix="pass stop_after=None to train to the end")
    if not personas:
        raise ConfigError("No personas to train", expected="one or more name -> PersonaData", found="none",
                          fix="pass a dict of persona name to PersonaData")
    names = tuple(personas)  # the personas trained here
    base_net, base_manifest = None, None
    if base is not None:
        base_net, base_manifest, _ = load_checkpoint(base, device="cpu")
        if (base_net.config.resolution, base_net.config.width) != (resolution, width) or \
                base_manifest.level != base_net.config.top_level:
            raise ConfigError(f"Cannot add personas to {base}",
                              expected=f"a model grown to {resolution}² at width {width}",
                              found=f"{base_net.config.resolution}² at width {base_net.config.width}, level "
                                    f"{base_manifest.level}", fix="finish training it, or match --res and --width")
    existing = base_net.personas if base_net is not None else ()
    arch = CombConfig(resolution=resolution, width=width, personas=existing + tuple(n for n in names if n not in existing))
    for name, data in personas.items():
        if data.resolution != resolution:
            raise ConfigError(f"Persona {name!r} crops are {data.resolution}²", expected=f"{resolution}²",
                              found=f"{data.resolution}²", fix="load PersonaData at the network's resolution")
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    rank, world = _init_distributed(cuda)
    if world > 1 and cuda:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))  # torchrun: one GPU per process
        torch.cuda.set_device(dev)
    known = {r.name: r for r in base_manifest.personas} if base_manifest is not None else {}
    records = {n: (records or {}).get(n) or known.get(n) or PersonaRecord(n) for n in arch.personas}
    records = {n: PersonaRecord(r.name, r.facesets, r.consent, personas[n].data_hash if n in personas else r.data_hash)
               for n, r in records.items()}
    top = arch.top_level
    total_steps = (top + 1) * config.iters_per_level + config.fine_tune_iters

    # Two random streams: the persona order must be the same in every DDP process (they step the same decoder
    # together); the batches (and their augmentation) differ per process.
    order_generator = torch.Generator().manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed + 7919 * rank)
    losses: list[list[float]] = []
    window_sum, window_count = 0.0, 0  # the loss log's running sums since the last row, as a checkpoint holds them
    if Path(run).exists() and not Path(run).is_dir():
        raise ConfigError(f"Run folder {run} is a file", expected="a folder for the checkpoints (new or a run's)",
                          found="a file", fix="choose another --out")
    if not resume and latest_checkpoint(run) is not None:
        raise ConfigError(f"Run folder {run} already holds a model", expected="a new run folder, or --resume",
                          found=f"checkpoint {latest_checkpoint(run).name}",
                          fix="pass --resume to continue it, or choose another --out")
    if resume:
        checkpoint = latest_checkpoint(run)
        if checkpoint is None:
            raise ConfigError(f"Nothing to resume in {run}", expected="a run folder with step_* checkpoints",
                              found="none", fix="run without --resume to start training")
        net, manifest, saved = load_checkpoint(checkpoint, config=arch, device=dev)
        step, losses = manifest.step, [list(row) for row in manifest.losses]
        tensors = saved["tensors"]
        if "generator.order" not in tensors or "generator.batches" not in tensors:
            raise ConfigError(f"Cannot resume {checkpoint}: it holds no training state",
                              expected="the random generators' states vfx train saves (generator.order, "
                                       "generator.batches)", found=", ".join(sorted(tensors)[:4]) or "none",
                              fix="resume a run written by vfx train, or start a new run (--base to build on it)")
        order_generator.set_state(tensors["generator.order"])
        if "loss.window_sum" in tensors:  # older checkpoints: their sums were lost, the log restarts at zero
            window_sum, window_count = tensors["loss.window_sum"], int(tensors["loss.window_count"][0])
        if rank == 0:
            generator.set_state(tensors["generator.batches"])
        else:  # only process 0's stream is saved; the others start fresh ones, distinct per process and step
            generator.manual_seed(config.seed + 7919 * rank + step)
    elif base_net is not None:
        net, saved = _extended(base_net, arch).to(dev), None
        step = top * config.iters_per_level  # the base is grown: only the final stage (and fine-tuning) remain
    else:
        torch.manual_seed(config.seed)
        net, step, saved = CombNetwork(arch).to(dev), 0, None
    if cuda:
        net = net.to(memory_format=torch.channels_last)
        for data in personas.values():
            data.to(dev)
    shared = {id(p) for p in net.shared_parameters()}
    groups = [{"params": [p for p in net.parameters() if id(p) not in shared], "lr_scale": 1.0}]
    if config.shared_lr_scale > 0:
        groups.insert(0, {"params": net.shared_parameters(), "lr_scale": config.shared_lr_scale})
    else:
        net.encoder.requires_grad_(False)
        net.tied.requires_grad_(False)
    optimizer = torch.optim.Adam(groups, lr=config.lr)
    if saved is not None:
        restore_optimizer(optimizer, saved)
    forward: torch.nn.Module = net
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # Each step uses one decoder: the others' parameters get no gradient, which DDP must be told.
        forward = DistributedDataParallel(net, device_ids=[dev.index] if cuda else None, find_unused_parameters=True)
    if config.compile and cuda:
        forward = torch.compile(forward)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.amp)
    use_amp = cuda and amp_dtype is not None
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    augmentation = Augmentation() if config.augment else Augmentation.none()

    def step_once(name: str, level: int) -> torch.Tensor:
        images, masks = personas[name].batch(level_size(level), config.batch_size, generator, device=dev,
                                             augmentation=augmentation)
        if cuda:
            images = images.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast("cuda", dtype=amp_dtype) if use_amp else contextlib.nullcontext()
        with autocast:
            output = forward(images, name)
        loss = level_loss(images, output.float(), masks, level, mode=config.mask_mode)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach()

    if rank == 0:  # a checkpoint write a kill interrupted left its temporary folder
        for stale in Path(run).glob(f".step_*{TEMP_MARKER}*"):
            shutil.rmtree(stale, ignore_errors=True)
        remove_stale_pictures(run)  # and a picture write, its temporary file
    window_started, images_done = time.perf_counter(), 0
    # The window's sum stays on the device (read back at log intervals only) as float32, and is saved bit-exact.
    window = torch.as_tensor(window_sum, dtype=torch.float32).reshape(()).to(dev)
    checkpointed = False
    drawn_rows = -1  # loss rows in the loss.png this process last drew (-1: none yet, draw at the first checkpoint)
    limit = total_steps if stop_after is None else min(total_steps, stop_after)
    while step < limit:
        level = min(step // config.iters_per_level, top)
        level_step = step - level * config.iters_per_level
        fine_tuning = step >= (top + 1) * config.iters_per_level
        grown = base_net is not None  # a base model has every level already: nothing fades in
        alpha = 1.0 if fine_tuning or grown else alpha_at(level, level_step, config.iters_per_level)
        lr = config.final_lr if fine_tuning else config.lr
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        net.grow(level, alpha)
        order = torch.randperm(len(names), generator=order_generator).tolist()  # [0041]: shuffle the personas
        for index in order:
            window += step_once(names[index], level)
            window_count += 1
            images_done += config.batch_size * world
        step += 1
        # A row at every log interval and at the end of training; not where a chunk stops (stop_after), so a
        # resumed run logs exactly the rows of an uninterrupted one.
        if step % config.log_every == 0 or step == total_steps:
            mean_loss = float(window) / max(1, window_count)  # the one host read-back, at log intervals
            losses.append([step, level, round(mean_loss, 6)])
            elapsed = time.perf_counter() - window_started
            progress = TrainProgress(step, total_steps, level, alpha, mean_loss, images_done / max(elapsed, 1e-9), lr)
            window_started, images_done = time.perf_counter(), 0
            if rank == 0:
                log.info(progress.line())
                if report is not None:
                    report(progress)
            window.zero_()
            window_count = 0
        if (config.checkpoint_every and step % config.checkpoint_every == 0) or step == limit:
            manifest = Manifest(arch, tuple(records[n] for n in arch.personas), level, alpha, step, level_step + 1, lr,
                                asdict(config), losses)
            if rank == 0:
                # The pictures first: a kill before the checkpoint lands resumes from the one before, which
                # draws these again, identically.
                scheduled = (config.checkpoint_every and step % config.checkpoint_every == 0) or step == total_steps
                level_start = level * config.iters_per_level
                index = (1 if not config.checkpoint_every else
                         -(-(step - level_start) // config.checkpoint_every))
                write_training_pictures(net, personas, run, losses if len(losses) != drawn_rows else None, step=step,
                                        timelapse_index=index if scheduled else None, level_start=level_start,
                                        checkpoint_every=config.checkpoint_every or 0)
                drawn_rows = len(losses)
                generators = {"order": order_generator, "batches": generator}
                sums = {"loss.window_sum": window.detach().reshape(1).float().cpu(),
                        "loss.window_count": torch.tensor([window_count], dtype=torch.int64)}
                save_checkpoint(run, net, optimizer, generators, manifest, keep=config.keep_checkpoints, extra=sums)
            if world > 1:
                torch.distributed.barrier()
            checkpointed = True
    if not checkpointed:  # nothing left to train: the run was already complete
        _, manifest, _ = load_checkpoint(run, config=arch, device=dev)
    return net, manifest


def _extended(base: CombNetwork, arch: CombConfig) -> CombNetwork:
    """``base`` with a decoder for every persona of ``arch`` it lacks, own levels copied from its first decoder."""
    net = CombNetwork(arch)
    state = base.state_dict()
    first = base.personas[0]
    for name in arch.personas:
        if name not in base.personas:
            prefix = f"decoders.{first}."
            state.update({f"decoders.{name}." + k[len(prefix):]: v.clone() for k, v in base.state_dict().items()
                          if k.startswith(prefix)})
    net.load_state_dict(state)
    net.grow(base.level, base.alpha)
    return net


def _init_distributed(cuda: bool) -> tuple[int, int]:
    """(rank, world size): from torchrun's environment (initialising the process group once), else (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not torch.distributed.is_available():
        return 0, 1
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


@torch.no_grad()
def held_out_ssim(net: CombNetwork, data: PersonaData, *, batch_size: int = 32) -> dict[str, float]:
    """SSIM of ``data``'s held-out crops with their reconstructions, at the network's current level.

    Returns ``{"ssim": ..., "face_ssim": ...}``: over the whole crop, and with both images multiplied by the
    face mask (Eq. 2's view: the background does not count). NaN when nothing is held out.
    """
    from vfx.comb.data import resize_to
    from vfx.comb.losses import ssim

    images, masks = data.held_out
    if len(images) == 0:
        return {"ssim": float("nan"), "face_ssim": float("nan")}
    device = next(net.parameters()).device
    whole, face = [], []
    for start in range(0, len(images), batch_size):
        x = resize_to(images[start:start + batch_size].float().div(255.0).to(device), net.size)
        m = resize_to(masks[start:start + batch_size].float().div(255.0).to(device), net.size)
        y = net.decode(net.encode(x), data.name)
        size = max(net.size, 16)  # SSIM needs 11 px; small levels are compared upsampled, as their loss does
        if net.size < 16:
            x, y, m = (torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear") for t in (x, y, m))
        whole.append(ssim(x, y))
        face.append(ssim(x * m, y * m))
    return {"ssim": float(torch.cat(whole).mean()), "face_ssim": float(torch.cat(face).mean())}


def describe(manifest: Manifest, run: str | Path | None = None) -> dict[str, Any]:
    """A printable summary of a checkpoint manifest (``vfx model info``).

    With ``run`` (the run folder, or one of its ``step_*`` checkpoints), also the training pictures it holds
    (:func:`vfx.comb.preview.training_pictures`): ``preview``, ``loss`` and ``timelapse_level<N>`` paths.
    """
    c = manifest.config
    pictures = training_pictures(run) if run is not None else {}
    return {
        "architecture": f"comb, {c.resolution}² ({c.top_level + 1} levels), width {c.width}, latent {c.latent_channels}",
        "personas": ", ".join(p.name for p in manifest.personas),
        "level": f"{manifest.level} ({level_size(manifest.level)}²), alpha {manifest.alpha:.2f}",
        "iterations": manifest.step,
        "lr": manifest.lr,
        "last loss": manifest.losses[-1][2] if manifest.losses else None,
        **{f"persona {p.name}": f"facesets {', '.join(p.facesets) or '-'}; consent: {p.consent or 'NONE RECORDED'}; "
                                f"data {p.data_hash or '-'}" for p in manifest.personas},
        **{key: str(path) for key, path in pictures.items()},
    }
