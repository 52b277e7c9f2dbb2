"""Layout warp cost: time and peak memory of the sparse-attention ``layout_warp`` against crop size, and
against the dense-attention baseline ``dense_layout_warp``.

At each crop side S (``--sizes``, default 128 256 512 1024) the input is a synthetic but realistic face: the
mean 68-point face of ``tests/face_shapes.py`` aligned into an S x S crop by the pipeline's
``AlignTemplate`` framing (eyes 0.25 S apart on the line y = 0.40 S), its layout drawn by
``face_layout``, and the edit of a retouch shot: the mouth moved down by 0.03 inter-ocular distances and
widened by 6 % (``edit_landmarks(..., "mouth", GroupKey(move=(0, 0.03), scale=(1.06, 1)))``), drawn the same
way. The edit mask therefore covers the same fraction of the crop at every size (about 1.8 %), so the query
pixels (the mask's bounding box) grow with S². The image is a smooth random texture; its content does not
change the cost.

The sparse warp scores every query against ``particles x iterations`` keys (32 with the default
``WarpConfig``), so its search costs queries x keys, linear in pixels: doubling the side should cost about
4x in time and memory. Its other parts (layout features, distance transforms, the edit mask) are linear in
pixels too; the coarse seeding match is constant. The dense baseline scores every query against every pixel
of the crop, so it costs queries x pixels (quadratic in pixels, 16x per doubling); it runs only where its
query x pixel float32 score matrix plus the softmax's copy fits ``--dense-limit-gb``, and otherwise the row
says how much it would need.

Each figure comes from a fresh child process (this script re-invoked with a hidden ``--one`` flag), so
allocator caches of one measurement never flatter the next. The child imports, builds the inputs and primes
the libraries with a 64² warp, then resets its peak RSS (``/proc/self/clear_refs``) and takes its RSS as the
baseline; it runs one warm-up call and ``--repeats`` timed calls and reports the best time and its peak RSS
(VmHWM) minus the baseline: the warp's own memory. On CUDA the time is synchronised and the memory is
``torch.cuda.max_memory_allocated`` above what was allocated before the calls.

Times are wall clock. On a shared machine another busy process makes multi-threaded CPU figures jump by
10x or more (torch's threads wait for each other at every op); ``--threads 1`` is much steadier there.

Usage:
    python tools/bench_layout_warp.py [--sizes 128 256 512 1024] [--dense-limit-gb 8] [--device cpu|cuda]
                                      [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vfx.align.similarity import AlignTemplate, estimate_alignment, transform_points
from vfx.face.layout import face_layout
from vfx.retouch.edits import GroupKey, edit_landmarks
from vfx.retouch.warp import WarpConfig, dense_layout_warp, edit_mask, layout_warp

REPO = Path(__file__).resolve().parents[1]
FACE_SHAPES = REPO / "tests" / "face_shapes.py"
MOUTH_EDIT = GroupKey(frame=0, move=(0.0, 0.03), scale=(1.06, 1.0))
"""The edit: the mouth moved down by 0.03 inter-ocular distances and widened by 6 %."""
PRIME_SIZE = 64
"""Crop side of the child's priming call (lazy imports, thread pools) before its memory baseline."""
RESULT = "RESULT "
"""Prefix of the child's one line of JSON on stdout."""
METHODS = ("sparse", "dense")


def mean_face() -> np.ndarray:
    """(68, 2) the synthetic mean face of ``tests/face_shapes.py`` (unit box; nobody's face)."""
    spec = importlib.util.spec_from_file_location("_face_shapes", FACE_SHAPES)
    if spec is None or not FACE_SHAPES.is_file():
        raise SystemExit(f"mean face not found: {FACE_SHAPES}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return np.asarray(module.MEAN_SHAPE, dtype=np.float64)


def crop_landmarks(size: int, shape: np.ndarray | None = None) -> np.ndarray:
    """(68, 2) crop pixels of the mean face aligned into a ``size`` x ``size`` crop (the AlignTemplate framing).

    The alignment is done once at 1024² and scaled (pixel centres at integers), so any side works, powers of
    two or not, and the face covers the same fraction of every crop.
    """
    shape = mean_face() if shape is None else shape
    template = AlignTemplate(size=1024)
    aligned = transform_points(shape, estimate_alignment(shape, template))
    return (aligned + 0.5) * (size / template.size) - 0.5


def build_inputs(size: int, *, seed: int = 0, shape: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The image, its layout and the edited layout at crop side ``size``.

    Returns:
        ((3, S, S) float32 smooth random texture in [0, 1], (S, S) long layout, (S, S) long edited layout).
    """
    landmarks = crop_landmarks(size, shape)
    edited = edit_landmarks(landmarks, "mouth", MOUTH_EDIT)
    labels = torch.from_numpy(face_layout(landmarks, size)).long()
    edited_labels = torch.from_numpy(face_layout(edited, size)).long()
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 8, 8, generator=generator)
    smooth = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]
    image = (smooth + 0.05 * torch.rand(3, size, size, generator=generator)).clamp(0, 1).float()
    return image, labels, edited_labels


def query_count(labels: torch.Tensor, edited: torch.Tensor, config: WarpConfig | None = None) -> tuple[int, float]:
    """Query pixels of the warp (the edit mask's bounding box) and the fraction of the crop the mask covers."""
    config = config or WarpConfig()
    mask = edit_mask(labels, edited, grow=config.mask_grow)
    rows = torch.nonzero(mask.any(dim=1)).flatten()
    cols = torch.nonzero(mask.any(dim=0)).flatten()
    if not len(rows):
        return 0, 0.0
    queries = (int(rows[-1]) - int(rows[0]) + 1) * (int(cols[-1]) - int(cols[0]) + 1)
    return queries, float(mask.float().mean())


def dense_bytes(queries: int, pixels: int) -> int:
    """Estimated memory of the dense warp: the query x pixel float32 score matrix plus the softmax's copy."""
    return 2 * 4 * queries * pixels


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _peak_rss_kb() -> int:
    peak = _status_kb("VmHWM")
    if peak is None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return peak


def run_one(method: str, size: int, device: torch.device, repeats: int) -> dict:
    """One measurement in this process: best time of ``repeats`` calls after one warm-up, and peak memory.

    Meant for a fresh process (``--one``): on the CPU the memory is this process's peak RSS above its RSS
    after imports, input building and a small priming warp.
    """
    warp = layout_warp if method == "sparse" else dense_layout_warp
    shape = mean_face()
    # Prime: lazy imports (cv2 in the warp), thread pools, kernels; small enough to leave no mark.
    warp(*(t.to(device) for t in build_inputs(PRIME_SIZE, shape=shape)))
    image, labels, edited = (t.to(device) for t in build_inputs(size, shape=shape))
    cuda = device.type == "cuda"
    gc.collect()
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
        reset = True
    else:
        reset = _reset_peak()
        baseline = (_status_kb("VmRSS") or 0) * 1024
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        out = warp(image, labels, edited)
        if cuda:
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - t0
        del out
        if i:  # the first call is the warm-up
            times.append(elapsed)
    peak = torch.cuda.max_memory_allocated(device) if cuda else _peak_rss_kb() * 1024
    return {"method": method, "size": size, "seconds": min(times), "peak_mb": max(0, peak - baseline) / 2**20,
            "peak_reset": reset}


def measure(method: str, size: int, device: str, repeats: int, threads: int | None) -> dict:
    """``run_one`` in a fresh child process (this script with ``--one``); ``{"error": ...}`` if it failed."""
    command = [sys.executable, str(Path(__file__).resolve()), "--one", method, str(size), "--device", device,
               "--repeats", str(repeats)]
    if threads:
        command += ["--threads", str(threads)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=REPO, env=env)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT):])
    tail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    return {"error": f"failed (rc {done.returncode}: {tail[:120]})"}


def _gb(n_bytes: float) -> str:
    gb = n_bytes / 2**30
    return f"{gb:.1f}" if gb >= 1 else f"{gb:.2g}"


def _per_doubling(ratio: float, side_ratio: float) -> float:
    """A time ratio between two sides as the ratio per doubling of the side."""
    return ratio ** (1.0 / math.log2(side_ratio)) if side_ratio > 1 else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512, 1024], help="crop sides S")
    parser.add_argument("--dense-limit-gb", type=float, default=8.0,
                        help="run the dense baseline only where its estimated memory fits (GB)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after one warm-up; the best is shown")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.repeats < 1 or any(s < PRIME_SIZE for s in args.sizes):
        parser.error(f"--repeats must be >= 1 and sizes >= {PRIME_SIZE}")
    if args.one:
        method, size = args.one
        if method not in METHODS:
            parser.error(f"--one METHOD must be one of {', '.join(METHODS)}")
        print(RESULT + json.dumps(run_one(method, int(size), torch.device(args.device), args.repeats)), flush=True)
        return 0

    config = WarpConfig()
    keys = config.particles * config.iterations
    sizes = sorted(set(args.sizes))
    shape = mean_face()
    print(f"device {args.device} (torch {torch.get_num_threads()} threads); keys per query "
          f"{keys} ({config.particles} particles x {config.iterations} iterations); best of {args.repeats} after a "
          f"warm-up, each in a fresh process; peak = {'CUDA allocated' if args.device.startswith('cuda') else 'RSS'}"
          f" above the child's baseline; dense only under {args.dense_limit_gb:g} GB (estimated)")
    print()
    print("| crop | pixels | mask % | queries | sparse pairs (M) | **sparse s** | sparse peak MB | time x prev "
          "| dense pairs (M) | **dense s** | dense peak MB | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for size in sizes:
        _image, labels, edited = build_inputs(size, shape=shape)
        queries, fraction = query_count(labels, edited, config)
        pixels = size * size
        sparse = measure("sparse", size, args.device, args.repeats, args.threads)
        need = dense_bytes(queries, pixels)
        if need > args.dense_limit_gb * 2**30:
            dense = {"error": f"does not fit (needs {_gb(need)} GB)"}
        else:
            dense = measure("dense", size, args.device, args.repeats, args.threads)
        row = {"size": size, "sparse": sparse, "dense": dense}
        ratio_text = "-"
        if rows and "seconds" in rows[-1]["sparse"] and "seconds" in sparse:
            ratio = sparse["seconds"] / rows[-1]["sparse"]["seconds"]
            row["per_doubling"] = _per_doubling(ratio, size / rows[-1]["size"])
            ratio_text = f"{ratio:.2f}" + ("" if size == 2 * rows[-1]["size"] else f" (px x{(size / rows[-1]['size'])**2:.1f})")
        rows.append(row)
        if "seconds" in sparse:
            sparse_text = f"**{sparse['seconds']:.3f}** | {sparse['peak_mb']:.1f}"
        else:
            sparse_text = f"{sparse['error']} | -"
        if "seconds" in dense:
            speedup = f"{dense['seconds'] / sparse['seconds']:.1f}x" if "seconds" in sparse else "-"
            dense_text = f"**{dense['seconds']:.3f}** | {dense['peak_mb']:.1f} | {speedup}"
        else:
            dense_text = f"{dense['error']} | - | -"
        print(f"| {size}² | {pixels} | {100 * fraction:.2f} | {queries} | {queries * keys / 1e6:.3g} | {sparse_text} | "
              f"{ratio_text} | {queries * pixels / 1e6:.4g} | {dense_text} |", flush=True)
    print()
    doublings = [r["per_doubling"] for r in rows if "per_doubling" in r]
    parts = []
    if doublings:
        mean = math.exp(sum(map(math.log, doublings)) / len(doublings))
        last = rows[-1]
        parts.append(f"time x{mean:.1f} per doubling (geometric mean of {len(doublings)}; "
                     f"x{last['per_doubling']:.1f} at the last, to {last['size']}²; linear in pixels is x4)")
    both = [r for r in rows if "seconds" in r["dense"] and "seconds" in r["sparse"]]
    if both:
        r = both[-1]
        speedup = r["dense"]["seconds"] / r["sparse"]["seconds"]
        word = "faster" if speedup >= 1 else "SLOWER"
        factor = speedup if speedup >= 1 else 1 / speedup
        parts.append(f"sparse {factor:.1f}x {word} than dense at {r['size']}², the largest size dense "
                     f"attention fits under {args.dense_limit_gb:g} GB")
    else:
        parts.append(f"dense attention fits at none of the sizes under {args.dense_limit_gb:g} GB")
    print("; ".join(parts))
    if any(not m.get("peak_reset", True) for r in rows for m in (r["sparse"], r["dense"])):
        print("note: the peak RSS could not be reset in the child; peaks include input building")
    return 1 if any("error" in r["sparse"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
