"""Benchmark the dailies review on 1920x1080 frames, and measure its colour against OCIO's own display/view.

Prints:
  - the picture cost per frame: OCIO display/view on an ACEScg frame, burn-ins, quantising (8 and 16 bit);
  - encode time per frame for each codec (h264, prores422hq, prores4444, dnxhr_hq): frames piped through
    :func:`vfx.io.video.encode_video` (ffmpeg start, probe of the result and the atomic rename included,
    divided by the frame count), the file's size per frame;
  - the grey-chart error: each chart patch (ACEScg 0, 0.045, 0.18, 0.5, 1, 4) through the review's 8-bit
    pictures against OCIO's ``config.getProcessor(src, display, view)`` in float, in 1/255 steps.

Usage:
    OMP_NUM_THREADS=1 python tools/bench_review.py [--frames N] [--codecs h264,prores422hq,...] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import PyOpenColorIO as ocio

from vfx.export.review import ReviewLabels, to_display_codes
from vfx.io.color import DisplayView, load_config
from vfx.io.ffmpeg import CODEC_BIT_DEPTH, CODECS, find_ffmpeg
from vfx.io.video import encode_video

SIZE = (1080, 1920)
CHART = (0.0, 0.045, 0.18, 0.5, 1.0, 4.0)


def plate_frame(seed: int) -> np.ndarray:
    """(H, W, 3) float32 ACEScg: a lit gradient with grain, like a plate (not a flat card codecs find easy)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE[0], 0:SIZE[1]].astype(np.float32)
    base = np.stack([xx / SIZE[1], yy / SIZE[0], 0.5 + 0.5 * np.sin(xx / 90 + yy / 70)], -1) * 1.5
    return (base + rng.normal(0, 0.01, base.shape)).astype(np.float32)


def chart_error(view: DisplayView) -> list[tuple[float, float, float]]:
    """(scene value, OCIO float display value, |review code - OCIO| in 1/255) per chart patch."""
    cfg = load_config()
    cpu = cfg.getProcessor("ACEScg", view.display, view.view, ocio.TRANSFORM_DIR_FORWARD).getDefaultCPUProcessor()
    rows = []
    for value in CHART:
        patch = np.full((8, 8, 3), value, np.float32)
        reference = patch.copy()
        cpu.applyRGB(reference)
        codes = to_display_codes(patch, view, bit_depth=8).astype(np.float64)
        err = np.abs(codes - np.clip(reference, 0, 1) * 255).max()
        rows.append((value, float(reference[0, 0, 0]), float(err)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=12, help="frames per codec (default 12)")
    parser.add_argument("--codecs", default=",".join(CODECS), help="comma-separated codecs")
    args = parser.parse_args()

    view = DisplayView("ACEScg")
    print(f"ffmpeg: {find_ffmpeg()}")
    print(f"view: {view.display} / {view.view} (config {view.config.getName()})")
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, cpus={os.cpu_count()}")

    print("\ngrey chart (ACEScg -> review 8-bit codes, against OCIO's float display/view):")
    for value, shown, err in chart_error(view):
        print(f"  ACEScg {value:6.3f} -> display {shown:.5f} (code {shown * 255:7.3f}): error {err:.3f} / 255")

    frames = [plate_frame(i) for i in range(4)]
    labels = ReviewLabels(shot="sh010", version="sh010_swap 1a2b3c4d", first_timecode="01:00:00:00",
                          fps=Fraction(24000, 1001), first_frame=1001)
    print(f"\npicture per {SIZE[1]}x{SIZE[0]} frame (mean of {len(frames) * 2}):")
    for depth in (8, 16):
        for burn in (False, True):
            start = time.perf_counter()
            for _ in range(2):
                for i, frame in enumerate(frames):
                    to_display_codes(frame, view, bit_depth=depth,
                                     labels=labels.burn_ins(1001 + i, "hopper") if burn else None)
            ms = (time.perf_counter() - start) / (len(frames) * 2) * 1000
            print(f"  {depth:2d}-bit, burn-ins {'on ' if burn else 'off'}: {ms:7.1f} ms")

    print(f"\nencode per {SIZE[1]}x{SIZE[0]} frame ({args.frames} frames at 24000/1001, pictures prepared beforehand):")
    with tempfile.TemporaryDirectory(prefix="bench_review_") as tmp:
        for codec in args.codecs.split(","):
            depth = 16 if CODEC_BIT_DEPTH[codec] > 8 else 8
            pictures = [to_display_codes(frames[i % len(frames)], view, bit_depth=depth,
                                         labels=labels.burn_ins(1001 + i, "hopper")) for i in range(args.frames)]
            out = Path(tmp) / f"r{'.mp4' if codec == 'h264' else '.mov'}"
            start = time.perf_counter()
            info = encode_video(pictures, out, fps=Fraction(24000, 1001), codec=codec, bit_depth=depth)
            seconds = time.perf_counter() - start
            size = out.stat().st_size / args.frames / 1e6
            print(f"  {codec:12s} {seconds / args.frames * 1000:7.1f} ms/frame  ({args.frames / seconds:5.1f} fps, "
                  f"{size:6.2f} MB/frame, {info.pix_fmt}, {depth}-bit input)")
            out.unlink()


if __name__ == "__main__":
    main()
