"""Benchmark EXR write/read throughput of vfx.io.image on 1080p RGBA half PIZ frames.

MB/s counts uncompressed half bytes (1920 x 1080 x 4 channels x 2 bytes = 16.6 MB per frame), so the figure
compares codecs and machines on the same footing regardless of how well the frame compresses. The frame is a
smooth gradient plus film-like grain: pure noise would not compress and flat colour would compress unrealistically.

Usage:
    python tools/bench_exr.py [--width 1920] [--height 1080] [--repeats 3] [--compression piz]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vfx.io.image import EXR_COMPRESSIONS, read_image, write_image


def make_frame(height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """Return an (H, W, 4) float32 scene-linear test frame: gradient, soft shapes, grain, alpha."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = xx / width, yy / height
    base = np.stack([0.18 + 0.6 * u, 0.18 + 0.4 * v, 0.05 + 0.3 * (1 - u) * v], axis=-1)
    blob = np.exp(-(((u - 0.6) ** 2) / 0.02 + ((v - 0.4) ** 2) / 0.03))[..., None] * np.float32(2.5)
    grain = rng.normal(0.0, 0.01, (height, width, 3)).astype(np.float32)
    rgb = (base + blob + grain * (base + blob)).astype(np.float32)
    alpha = np.clip(1.5 - 2.0 * np.hypot(u - 0.5, v - 0.5), 0.0, 1.0)[..., None].astype(np.float32)
    return np.ascontiguousarray(np.concatenate([rgb * alpha, alpha], axis=-1))


def bench(height: int, width: int, repeats: int, compression: str) -> dict[str, float]:
    """Time write_image/read_image; return best seconds, MB and file size."""
    frame = make_frame(height, width)
    mb = height * width * 4 * 2 / 1e6
    with tempfile.TemporaryDirectory(prefix="bench_exr_") as tmp:
        path = Path(tmp) / "bench.1001.exr"
        write_image(path, frame, compression=compression)  # warm-up: library load, page cache
        read_image(path)
        writes, reads = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            write_image(path, frame, compression=compression)
            writes.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            read_image(path)
            reads.append(time.perf_counter() - t0)
        size = path.stat().st_size
    return {"mb": mb, "write_s": min(writes), "read_s": min(reads), "file_bytes": float(size)}


def main(argv: list[str] | None = None) -> int:
    """Print EXR write and read MB/s for RGBA half frames (best of N)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compression", default="piz", help=f"one of {', '.join(EXR_COMPRESSIONS)}")
    args = parser.parse_args(argv)

    r = bench(args.height, args.width, args.repeats, args.compression)
    print(
        f"EXR {args.width}x{args.height} RGBA half {args.compression}, best of {args.repeats}, "
        f"{os.cpu_count()} CPUs, MB = uncompressed half bytes ({r['mb']:.1f} MB/frame)"
    )
    print(f"  write: {r['mb'] / r['write_s']:7.1f} MB/s  ({r['write_s'] * 1000:6.1f} ms/frame, incl. fsync)")
    print(f"  read:  {r['mb'] / r['read_s']:7.1f} MB/s  ({r['read_s'] * 1000:6.1f} ms/frame, incl. NaN check)")
    print(f"  file:  {r['file_bytes'] / 1e6:7.2f} MB  ({r['file_bytes'] / 1e6 / r['mb'] * 100:.0f} % of uncompressed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
