"""Benchmark sequential video decode through vfx.io.video.

Prints frames per second of a full sequential read (8-bit and 16-bit) and of random seeks for each clip
in ``../shared/data/clips`` (or the files given on the command line). tools/bench_io.py runs it.

Usage:
    python tools/bench_video.py [--max-frames N] [--seeks N] [CLIP ...]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from vfx.io.video import VideoReader, probe_video

CLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "clips"


def bench_decode(path: Path, bit_depth: int, max_frames: int | None = None) -> float:
    """Frames per second of a sequential read of ``path`` (process start included)."""
    start = time.perf_counter()
    count = 0
    with VideoReader(path, bit_depth=bit_depth) as reader:
        first, last = reader.frame_range
        if max_frames is not None:
            last = min(last, first + max_frames - 1)
        for _ in reader.frames(first, last):
            count += 1
    return count / (time.perf_counter() - start)


def bench_seek(path: Path, seeks: int, seed: int = 0) -> float:
    """Random frame reads per second (each one a restart at the nearest keyframe unless it is close)."""
    with VideoReader(path) as reader:
        first, last = reader.frame_range
        numbers = random.Random(seed).choices(range(first, last + 1), k=seeks)
        start = time.perf_counter()
        for number in numbers:
            reader.read(number)
        return seeks / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*", type=Path, help=f"video files (default: all in {CLIPS})")
    parser.add_argument("--max-frames", type=int, default=None, help="stop each sequential read after N frames")
    parser.add_argument("--seeks", type=int, default=20, help="random reads per clip (0: skip)")
    args = parser.parse_args(argv)
    clips = args.clips or sorted(CLIPS.glob("*.mp4"))
    if not clips:
        print(f"no clips given and none found in {CLIPS}", file=sys.stderr)
        return 2
    print(f"{'clip':24} {'frames':>6} {'size':>9} {'probe ms':>8} {'8-bit fps':>10} {'16-bit fps':>10} {'seeks/s':>8}")
    for clip in clips:
        start = time.perf_counter()
        info = probe_video(clip)
        probe_ms = (time.perf_counter() - start) * 1000
        fps8 = bench_decode(clip, 8, args.max_frames)
        fps16 = bench_decode(clip, 16, args.max_frames)
        seeks = bench_seek(clip, args.seeks) if args.seeks else float("nan")
        size = f"{info.width}x{info.height}"
        print(
            f"{clip.name:24} {info.frame_count:>6} {size:>9} {probe_ms:>8.1f}"
            f" {fps8:>10.1f} {fps16:>10.1f} {seeks:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
