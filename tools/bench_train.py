"""Comb training speed: images/s per level, the fraction of the machine's own convolution throughput, memory.

For each width and level it times full training steps (encode, decode, level loss, backward, Adam) on random
crops, counts the step's floating-point operations with ``torch.utils.flop_counter``, and compares the
achieved FLOP/s with a large 3x3 convolution (forward and backward) timed in the same run: the fraction says
how much of what this machine can do for convolutions the training step gets. Peak memory: the process's
maximum resident set on the CPU, ``torch.cuda.max_memory_allocated`` on CUDA.

Usage:
    python tools/bench_train.py [--device cpu|cuda] [--res 64] [--widths 0.25 1.0] [--batch 8] [--seconds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from vfx.comb.losses import level_loss
from vfx.comb.network import CombConfig, CombNetwork, level_size


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, seconds: float) -> float:
    """Seconds per call of ``fn``, after a warm-up, over at least ``seconds``."""
    fn()
    _sync(device)
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        _sync(device)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and calls >= 3:
            return elapsed / calls


def conv_peak(device: torch.device, dtype: torch.dtype, seconds: float) -> float:
    """FLOP/s of a large 3x3 convolution, forward and backward (the machine's practical ceiling)."""
    x = torch.randn(8, 128, 64, 64, device=device, dtype=dtype, requires_grad=True)
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(device, dtype)
    if device.type == "cuda":
        x, conv = x.to(memory_format=torch.channels_last), conv.to(memory_format=torch.channels_last)

    def step() -> None:
        conv(x).sum().backward()

    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / _timed(step, device, seconds)


def bench_level(net: CombNetwork, level: int, batch: int, device: torch.device, seconds: float,
                amp: torch.dtype | None) -> tuple[float, float]:
    """(images/s, FLOP/s) of training steps at ``level``."""
    net.grow(level, 1.0)
    size = level_size(level)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.rand(batch, 3, size, size, device=device)
    m = torch.ones(batch, 1, size, size, device=device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    persona = net.personas[0]

    def step() -> None:
        autocast = torch.autocast(device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
        with autocast:
            out = net(x, persona)
        loss = level_loss(x, out.float(), m, level)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        step()
    seconds_per_step = _timed(step, device, seconds)
    return batch / seconds_per_step, counter.get_total_flops() / seconds_per_step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--res", type=int, default=64, help="final resolution (levels up to it are timed)")
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25, 1.0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--amp", choices=["bf16", "fp16", "off"], default="bf16", help="CUDA only")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp) if cuda else None
    peak = conv_peak(device, amp or torch.float32, args.seconds)
    print(f"device {device}, {torch.get_num_threads()} threads; large 3x3 conv fwd+bwd: {peak / 1e9:.1f} GFLOP/s"
          + (f" ({args.amp})" if amp else " (float32)"))
    print(f"{'width':>6} {'level':>6} {'size':>6} {'images/s':>10} {'GFLOP/s':>9} {'of conv':>8}")
    for width in args.widths:
        net = CombNetwork(CombConfig(resolution=args.res, width=width, personas=("a", "b"))).to(device)
        if cuda:
            net = net.to(memory_format=torch.channels_last)
        for level in range(net.config.top_level + 1):
            images, flops = bench_level(net, level, args.batch, device, args.seconds, amp)
            print(f"{width:6.2f} {level:6d} {level_size(level):5d}² {images:10.1f} {flops / 1e9:9.1f} "
                  f"{flops / peak:8.0%}")
    if cuda:
        print(f"peak memory: {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB allocated on {device}")
    else:
        print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB resident")
    return 0


if __name__ == "__main__":
    sys.exit(main())
