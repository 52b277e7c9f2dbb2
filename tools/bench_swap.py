"""End-to-end swap speed: frames per second of ``vfx.swap.swap_shot`` (decode, crop, encode/decode, blend,
paste, write) on a synthetic 1080p or UHD plate, and whether it slows down over the shot.

The plate is the bundled public-domain portrait (``vfx.demo.load_portrait("hopper")``) moving as a head would
(``render_motion`` / ``head_motion_matrix``), its face a third of the frame height, on a textured background,
written as a PNG sequence (8-bit sRGB) or an EXR sequence (half, scene-linear ACEScg: the OpenColorIO
conversions in and out are then part of the timing). The model is a randomly initialised comb network at the
chosen crop size and width, saved with ``save_checkpoint``: the speed does not depend on the weights.

The plate's face tracking is not part of the swap's speed: a first ``swap_shot`` call on one frame tracks the
whole shot (its time is printed apart), then that frame is removed and the timed call renders every frame
with the tracked faces reused. Printed: the timed call's frames per second (model load and pipeline start
included), and the rate over the first and the last 10 % of the frames from the output files' modification
times (written by the pipeline's writer threads as each frame is finished), whose ratio is the decay check.
On CUDA the target is >= 24 fps at 1024² crops on UHD with the last 10 % at >= 95 % of the first 10 %.

Usage:
    python tools/bench_swap.py [--res 256] [--width 1.0] [--frames 48] [--plate 1080p|uhd] [--device cpu|cuda]
        [--batch N] [--threads N] [--plate-format png|exr] [--work DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vfx.comb.checkpoint import Manifest, PersonaRecord, save_checkpoint
from vfx.comb.network import CombConfig, CombNetwork
from vfx.demo import head_motion_matrix, load_portrait, render_motion
from vfx.io.color import ColorConverter
from vfx.io.image import write_image
from vfx.shot.frames import DEFAULT_START_FRAME, FrameRange, SequencePattern
from vfx.shot.schema import Shot
from vfx.swap.pipeline import swap_shot

PLATES = {"1080p": (1080, 1920), "uhd": (2160, 3840)}
TILE_FRACTION = 0.68
"""Side of the moving portrait as a fraction of the plate height: its face is then about 1/3 of the height."""
SRGB, LINEAR = "sRGB Encoded Rec.709 (sRGB)", "ACEScg"


def background(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A textured sRGB background: soft gradients and blobs with fine grain, (H, W, 3) float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    height, width = size
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = u / width, v / height
    base = np.stack([0.35 + 0.3 * u, 0.30 + 0.25 * v, 0.25 + 0.2 * (1 - u) * v], axis=-1)
    blobs = 0.15 * np.sin(9 * u + 2)[..., None] * np.cos(7 * v)[..., None]
    grain = rng.normal(0.0, 0.02, (height, width, 3))
    return np.clip(base + blobs + grain, 0, 1).astype(np.float32)


def make_plate(folder: Path, size: tuple[int, int], frames: int, fmt: str) -> tuple[str, str]:
    """Write the plate sequence; returns (pattern, colour space)."""
    portrait = load_portrait("hopper")
    tile = round(TILE_FRACTION * size[0])
    back = background(size)
    y0, x0 = (size[0] - tile) // 2, (size[1] - tile) // 2
    matrices = [head_motion_matrix(i / frames, portrait.shape[:2], tile) for i in range(frames)]
    to_linear = ColorConverter(SRGB, LINEAR) if fmt == "exr" else None
    pattern = SequencePattern(str(folder / f"plate.####.{fmt}"))
    for index, face in enumerate(render_motion(portrait, matrices, tile)):
        frame = back.copy()
        frame[y0:y0 + tile, x0:x0 + tile] = face
        path = pattern.path(DEFAULT_START_FRAME + index)
        if to_linear is not None:
            write_image(path, to_linear.apply(frame), dtype="half")
        else:
            write_image(path, frame, compression="zip:1")
    return str(folder / f"plate.####.{fmt}"), LINEAR if to_linear is not None else SRGB


def make_model(run: Path, resolution: int, width: float, seed: int = 0) -> Path:
    """A randomly initialised comb checkpoint, grown to full size (personas a, b)."""
    torch.manual_seed(seed)
    config = CombConfig(resolution=resolution, width=width, personas=("a", "b"))
    net = CombNetwork(config)
    net.grow(config.top_level, 1.0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    manifest = Manifest(config, (PersonaRecord("a"), PersonaRecord("b")), level=config.top_level, alpha=1.0,
                        step=1, level_step=1, lr=1e-4)
    save_checkpoint(run, net, optimizer, {}, manifest)
    return run


def window_fps(times: list[float], fraction: float = 0.1) -> tuple[float, float, int]:
    """(frames/s over the first, over the last ``fraction`` of the frames, frames per window) from finish times."""
    t = sorted(times)
    k = max(1, round(fraction * len(t)))
    k = min(k, len(t) - 1)
    first = k / max(t[k] - t[0], 1e-9)
    last = k / max(t[-1] - t[-1 - k], 1e-9)
    return first, last, k


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--res", type=int, default=256, help="face crop size r")
    parser.add_argument("--width", type=float, default=1.0, help="comb network width multiplier")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--plate", choices=list(PLATES), default="1080p")
    parser.add_argument("--plate-format", choices=["png", "exr"], default="png")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=None, help="crops per network call (default: 8 CUDA, 1 CPU)")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the plate, model and outputs (default: a temporary folder, removed after)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.frames < 10:
        print("--frames must be at least 10 (the first and last 10 % are compared)", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="vfx_bench_swap_"))
    try:
        return _run(args, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> int:
    size = PLATES[args.plate]
    device = torch.device(args.device)
    started = time.perf_counter()
    plate_pattern, colorspace = make_plate(work / "plate", size, args.frames, args.plate_format)
    model = make_model(work / "model", args.res, args.width)
    params = sum(p.numel() for p in CombNetwork(CombConfig(resolution=args.res, width=args.width, personas=("a", "b"))).parameters())
    print(f"plate {args.plate} {size[1]}x{size[0]}, {args.frames} frames of {args.plate_format} ({colorspace}); "
          f"random comb model {args.res}² width {args.width} ({params / 1e6:.1f} M parameters); device {device}, "
          f"{torch.get_num_threads()} torch threads; setup {time.perf_counter() - started:.1f} s")

    shot = Shot.model_validate({
        "name": "bench",
        "plate": {"path": plate_pattern, "colorspace": colorspace},
        "model": {"checkpoint": str(model), "resolution": args.res, "width": args.width},
        "outputs": {"exr": str(work / "out" / "bench.####.exr")},
    })
    frames = FrameRange.from_bounds(DEFAULT_START_FRAME, DEFAULT_START_FRAME + args.frames - 1)
    output = SequencePattern(str(shot.outputs.exr))

    started = time.perf_counter()
    swap_shot(shot, frames=FrameRange((frames.first,)), persona="a", device=args.device, batch_size=args.batch,
              show_progress=False)
    print(f"tracking the plate's faces ({args.frames} frames) + swapping one frame: "
          f"{time.perf_counter() - started:.1f} s (not counted below)")
    output.path(frames.first).unlink()

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    summary = swap_shot(shot, frames=frames, persona="a", device=args.device, batch_size=args.batch,
                        show_progress=False)
    wall = time.perf_counter() - started
    if summary.rendered != args.frames or summary.no_face:
        print(f"expected {args.frames} swapped frames, got {summary.rendered} rendered and "
              f"{len(summary.no_face)} without a face", file=sys.stderr)
        return 1
    times = [output.path(f).stat().st_mtime_ns / 1e9 for f in frames]
    first, last, k = window_fps(times)
    steady = (len(times) - 1) / max(max(times) - min(times), 1e-9)
    print()
    print("| plate | crop | width | device | batch | frames | overall fps | steady fps | first 10 % fps "
          "| last 10 % fps | last / first |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.plate} | {args.res}² | {args.width} | {device} | {args.batch or 'default'} | {args.frames} | "
          f"{args.frames / wall:.2f} | {steady:.2f} | {first:.2f} | {last:.2f} | {last / first:.0%} |")
    print()
    print(f"overall: {args.frames} frames in {wall:.1f} s (model load and pipeline start included); steady: first to "
          f"last frame written; windows of {k} frames from the output files' modification times")
    if device.type == "cuda" and args.plate == "uhd" and args.res == 1024:
        ok = args.frames / wall >= 24 and last >= 0.95 * first
        print(f"target (CUDA, UHD, 1024²): >= 24 fps and last 10 % >= 95 % of first 10 %: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
