"""Plate I/O figures: video decode fps (8- and 16-bit) of the shared clips, then EXR write/read MB/s (1080p
RGBA half, PIZ). Runs tools/bench_video.py and tools/bench_exr.py with their defaults.

Usage:
    python tools/bench_io.py
"""

from __future__ import annotations

import os
import platform
import sys

import bench_exr
import bench_video


def main() -> int:
    print(f"vfx I/O benchmark on {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print("\n== video decode (tools/bench_video.py) ==")
    code = bench_video.main([])
    print("\n== EXR write/read (tools/bench_exr.py) ==")
    return code or bench_exr.main([])


if __name__ == "__main__":
    sys.exit(main())
