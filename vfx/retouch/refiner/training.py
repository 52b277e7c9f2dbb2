"""Training a refiner on one shot's own samples (:func:`train_refiner`).

Training alternates a discriminator and a generator step (:func:`train_refiner`); half of each batch trains at
z = mu, the latent the eval mode uses, because a posterior the KL term pulls to N(0, I) never samples near its
mean in 64 dimensions (without this the eval output was measurably worse than the training output on the toy test).
Training is self-supervised per shot (seed 001 §4): the caller makes (layout, warped, hole, target) samples from the
shot's own frames, e.g. by warping or occluding a frame and keeping the original as the target.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from vfx.errors import ConfigError
from vfx.retouch.refiner.losses import (
    feature_matching_loss,
    hinge_d_loss,
    hinge_g_loss,
    kl_divergence,
    masked_l1,
    masked_ssim_loss,
)
from vfx.retouch.refiner.network import (
    LayoutRefiner,
    MultiScaleDiscriminator,
    RefinerConfig,
    TrainedRefiner,
    _check_positive_int,
    _resolve_device,
)

__all__ = ["RefinerSample", "train_refiner"]

log = logging.getLogger(__package__)  # "vfx.retouch.refiner", the logger the training log has always used


@dataclass
class RefinerSample:
    """One training sample of a shot.

    Attributes:
        layout: (H, W) integer labels (any integer dtype) of the edited layout, values in [0, num_labels) -- label
            maps, not one-hot, as :func:`vfx.face.mask.face_layout` draws them (``torch.from_numpy`` them).
        warped: (3, H, W) float in [0, 1], the warped image (the network's guide).
        hole: (1, H, W) float in [0, 1], 1 where the refiner repaints.
        target: (3, H, W) float in [0, 1], the ground truth (outside the hole it should equal ``warped``).
    """

    layout: Tensor
    warped: Tensor
    hole: Tensor
    target: Tensor


def _stack_samples(samples: Sequence[RefinerSample], config: RefinerConfig) -> dict[str, Tensor]:
    if len(samples) == 0:
        raise ConfigError("No refiner training samples", expected="at least one RefinerSample", found="none",
                          fix="check the shot's retouch frames")
    h, w = samples[0].layout.shape[-2:] if samples[0].layout.ndim == 2 else (-1, -1)
    for index, s in enumerate(samples):
        if s.layout.ndim != 2 or s.layout.dtype.is_floating_point or s.layout.dtype == torch.bool:
            raise ConfigError(f"Refiner sample {index} has a wrong layout", expected="(H, W) integer labels",
                              found=f"{s.layout.dtype} {tuple(s.layout.shape)}",
                              fix="pass label maps, not one-hot layouts")
        for name, channels in (("warped", 3), ("hole", 1), ("target", 3)):
            tensor = getattr(s, name)
            if tuple(tensor.shape) != (channels, h, w):
                raise ConfigError(f"Refiner sample {index} has a wrong {name} shape",
                                  expected=f"{(channels, h, w)} (all samples one size)",
                                  found=str(tuple(tensor.shape)),
                                  fix=f"cut every sample at one crop size: {name} of shape {(channels, h, w)}")
    config.check_size(h, w)
    layouts = torch.stack([s.layout for s in samples]).long()
    if int(layouts.min()) < 0 or int(layouts.max()) >= config.num_labels:
        raise ConfigError("Refiner layout label out of range", expected=f"labels in [0, {config.num_labels})",
                          found=f"labels from {int(layouts.min())} to {int(layouts.max())}",
                          fix=f"pass label maps from face_layout, within the config's {config.num_labels} labels")
    return {"layout": layouts.to(torch.uint8 if config.num_labels <= 256 else torch.long),
            **{name: torch.stack([getattr(s, name) for s in samples]).float()
               for name in ("warped", "hole", "target")}}


def train_refiner(samples: Sequence[RefinerSample], config: RefinerConfig = RefinerConfig(), *,  # noqa: B008 (frozen)
                  device: str | torch.device = "cpu", steps: int | None = None, seconds: float | None = None,
                  batch_size: int = 4, log_every: int = 50,
                  progress: Callable[[dict[str, float]], None] | None = None) -> TrainedRefiner:
    """Train a refiner on one shot's samples: discriminator and generator updated alternately.

    Each step draws ``batch_size`` samples (epochs of shuffled order), flips each horizontally with probability 1/2
    (layout, warped image, hole and target together; the 8-class layout has no left/right classes, so a flip is
    label-safe), updates the discriminator (hinge loss), then the generator:
    ``l1 * L1 + ssim * (1 - SSIM)`` inside the hole, ``fm * feature matching + adv * hinge`` against the
    discriminator, ``kl * KL(z)``. The discriminator's real image is ``target * hole + warped * (1 - hole)``, so real
    and fake agree outside the hole and it can only judge the hole's content. Half of each batch (alternating
    samples) runs at z = mu rather than a sampled z, so the decoder is trained at the latent eval mode uses.

    Args:
        samples: the shot's samples, all one size (a multiple of ``config.size_multiple``).
        config: architecture, losses and optimiser settings.
        device: where to train; on CUDA the models run channels-last under bf16 autocast.
        steps: stop after this many steps.
        seconds: stop after this much wall-clock time (checked between steps). With ``steps`` too, whichever comes
            first; at least one is required.
        batch_size: samples per step.
        log_every: steps per row of the loss history (the only host read-backs of the losses); the last step is
            always logged.
        progress: called with each history row as it is logged.

    Returns:
        A :class:`TrainedRefiner` with the generator in eval mode. On the CPU two runs with the same config (seed)
        and samples give identical weights and losses; the caller's torch random state is left as it was.
    """
    if steps is None and seconds is None:
        raise ConfigError("No training budget for the refiner", expected="steps, seconds, or both",
                          found="neither", fix="pass steps=N or seconds=S")
    if steps is not None:
        _check_positive_int(steps, "steps", minimum=0)
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0):
        raise ConfigError("Invalid training time budget", expected="seconds > 0", found=repr(seconds),
                          fix="pass seconds > 0 (e.g. 120), or seconds=None with steps=N")
    _check_positive_int(batch_size, "batch_size")
    _check_positive_int(log_every, "log_every")
    dev = _resolve_device(device)
    data = {k: v.to(dev) for k, v in _stack_samples(samples, config).items()}
    count, (height, width) = data["layout"].shape[0], tuple(data["layout"].shape[-2:])
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(config.seed)
        generator, done, history = _train(data, count, config, dev, steps, seconds, batch_size, log_every, progress)
    return TrainedRefiner(generator.eval(), config, done, (height, width), history)


def _train(data: dict[str, Tensor], count: int, config: RefinerConfig, dev: torch.device, steps: int | None,
           seconds: float | None, batch_size: int, log_every: int, progress: Callable[[dict[str, float]], None] | None,
           ) -> tuple[LayoutRefiner, int, list[dict[str, float]]]:
    cuda = dev.type == "cuda"
    generator = LayoutRefiner(config).to(dev)
    discriminator = MultiScaleDiscriminator(config).to(dev)
    memory = torch.channels_last if cuda else torch.contiguous_format
    generator.to(memory_format=memory).train()
    discriminator.to(memory_format=memory).train()
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=config.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=config.betas)
    batches = torch.Generator().manual_seed(config.seed)  # on the CPU: the same batches on every device
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    order: list[int] = []

    def batch() -> tuple[Tensor, Tensor, Tensor, Tensor]:
        nonlocal order
        picked = []
        while len(picked) < batch_size:
            if not order:
                order = torch.randperm(count, generator=batches).tolist()
            picked.append(order.pop())
        index = torch.tensor(picked, device=dev)
        flip = (torch.rand(batch_size, generator=batches) < 0.5).to(dev).view(-1, 1, 1, 1)
        # Labels were checked once in _stack_samples; one_hot here avoids layout_onehot's per-step host sync.
        layout = F.one_hot(data["layout"][index].long(), config.num_labels).movedim(-1, 1).float()
        tensors = [layout, data["warped"][index], data["hole"][index], data["target"][index]]
        tensors = [torch.where(flip, t.flip(-1), t).contiguous(memory_format=memory) for t in tensors]
        return tensors[0], tensors[1], tensors[2], tensors[3]

    names = ("g_total", "l1", "ssim", "fm", "adv", "kl", "d")
    window = torch.zeros(len(names), device=dev)
    window_steps = 0
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    step = 0
    while (steps is None or step < steps) and (seconds is None or time.perf_counter() - started < seconds):
        layout, warped, hole, target = batch()
        real = target * hole + warped * (1 - hole)
        # Half of each batch (alternating) trains at z = mu, the latent eval mode uses: the KL term drives the
        # posterior towards N(0, I), and in 64 dimensions its samples lie on a shell (RMS ~1) that never comes near
        # mu ~ 0, so a decoder trained on samples alone is markedly worse at z = mu.
        sampled = ((torch.arange(batch_size, device=dev) + step) % 2 == 1).float()[:, None]
        noise = torch.randn(batch_size, config.z_dim, device=dev) * sampled
        with autocast():
            fake, mu, logvar = generator(layout, warped, hole, return_latent=True, noise=noise)

        # Discriminator step.
        discriminator.requires_grad_(True)
        with autocast():
            d_loss = hinge_d_loss(discriminator(real, layout, hole), discriminator(fake.detach(), layout, hole))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        # Generator step, against the updated discriminator.
        discriminator.requires_grad_(False)
        with autocast():
            pred_fake = discriminator(fake, layout, hole)
            with torch.no_grad():
                pred_real = discriminator(real, layout, hole)
        l1 = masked_l1(fake, target, hole)
        ssim = masked_ssim_loss(fake, target, hole)
        fm = feature_matching_loss(pred_fake, pred_real)
        adv = hinge_g_loss(pred_fake)
        kl = kl_divergence(mu, logvar)
        g_loss = (config.l1_weight * l1 + config.ssim_weight * ssim + config.fm_weight * fm
                  + config.adv_weight * adv + config.kl_weight * kl)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

        step += 1
        window += torch.stack([g_loss, l1, ssim, fm, adv, kl, d_loss]).detach().float()
        window_steps += 1
        finished = (steps is not None and step >= steps) or (
            seconds is not None and time.perf_counter() - started >= seconds)
        if step % log_every == 0 or finished:
            means = (window / window_steps).tolist()  # the one host read-back, at log intervals
            row = {"step": float(step), "seconds": round(time.perf_counter() - started, 3),
                   **{name: float(value) for name, value in zip(names, means, strict=True)}}
            history.append(row)
            log.info("refiner step %d  g %.4f  l1 %.4f  ssim %.4f  fm %.4f  adv %.4f  kl %.4f  d %.4f",
                     step, *means)
            if progress is not None:
                progress(row)
            window.zero_()
            window_steps = 0
    return generator.to(memory_format=torch.contiguous_format), step, history
