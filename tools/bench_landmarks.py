"""Landmark stability, lag, real-footage jitter and extract throughput of the dlib path.

Prints, in this order:

1. Stability under a known motion: the bundled Grace Hopper portrait (a ~250 px face) warped into a 60-frame
   512² clip by a smooth sub-pixel head motion (drift, nod, a tilt of a few degrees, a 6 % push-in); each
   frame is detected and landmarked as ``vfx extract`` does, and frame 0's landmarks are carried through the
   known motion as the reference. Mean distance in pixels for the single pass on the detector's box, the
   single pass on the landmark-refined box, the 9-box jitter average ([0052]) and the average through the
   zero-lag temporal filter; then the lag in frames on the same clip with a sudden 40 px move over 2 frames
   (and the streaming 1€ filter's, for comparison).
2. Real-footage jitter on ../shared/data/clips: the RMS of each landmark track minus its zero-phase low-pass
   (Butterworth, 6-frame period), divided by the inter-ocular distance, for single / averaged / filtered, over
   all 68 points and over the skull-fixed points that set the alignment.
3. Throughput: frames per second of the whole ``vfx extract`` (decode, detect, refine, 9-box landmarks,
   track, smooth, align, write the faceset) on the 512² clips, with all CPU cores.

Usage:
    python tools/bench_landmarks.py [--data DIR] [--frames 150] [--skip-footage] [--skip-throughput]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
THROUGHPUT_CLIPS = ("pair_x_aoc.mp4", "persona_b_d14.mp4")  # the 512² ones


def _stability() -> None:
    from vfx.demo import load_portrait
    from vfx.eval.stability import motion_stability
    from vfx.face.landmark import create_landmarker

    result = motion_stability(create_landmarker("dlib"), load_portrait("hopper"))
    print(f"1. stability under known motion: {result.frames} frames of 512², face {result.face_px:.0f} px "
          "(dlib detector box)")
    print(f"   {'track':34} {'error px':>9} {'x single':>9} {'x refined':>9} {'lag frames':>11}")
    names = {"single": "single pass, detector box", "refined": "single pass, refined box",
             "averaged": "9-box average (beta 0.05)", "filtered": "9-box average + zero-lag filter"}
    for kind, label in names.items():
        print(f"   {label:34} {result.error_px[kind]:9.3f} {result.ratio(kind):9.3f} "
              f"{result.error_px[kind] / result.error_px['refined']:9.3f} {result.lag_frames[kind]:11.2f}")
    print(f"   {'streaming 1-euro filter (causal)':34} {'':>9} {'':>9} {'':>9} {result.lag_frames['streaming']:11.2f}")
    print("   error over the sudden move and 3 frames after it (px): "
          + ", ".join(f"{k} {v:.2f}" for k, v in result.move_error_px.items()))


def _footage(data: Path, num_frames: int) -> None:
    from vfx.eval.stability import footage_jitter, landmark_tracks
    from vfx.face.landmark import create_landmarker
    from vfx.io.plate import open_media

    clips = sorted((data / "clips").glob("*.mp4"))
    if not clips:
        print(f"2. real-footage jitter: skipped, no clips in {data / 'clips'}")
        return
    landmarker = create_landmarker("dlib")
    print(f"2. real-footage jitter (first {num_frames} frames; RMS residual / inter-ocular distance, x 1000)")
    print(f"   {'clip':22} {'iod px':>7} {'all: single':>12} {'averaged':>9} {'filtered':>9} "
          f"{'rigid: single':>14} {'averaged':>9} {'filtered':>9}")
    for clip in clips:
        with open_media(clip) as plate:
            frames = list(plate.frame_range)[:num_frames]
            tracks = landmark_tracks(landmarker, (plate.video.read(f) for f in frames))
        jitter = footage_jitter(tracks)
        a, r = jitter.all_iod, jitter.rigid_iod
        print(f"   {clip.stem:22} {jitter.interocular_px:7.1f} {a['single'] * 1e3:12.2f} {a['averaged'] * 1e3:9.2f} "
              f"{a['filtered'] * 1e3:9.2f} {r['single'] * 1e3:14.2f} {r['averaged'] * 1e3:9.2f} "
              f"{r['filtered'] * 1e3:9.2f}" + ("" if jitter.faces == jitter.frames else
                                                f"  ({jitter.frames - jitter.faces} frames without a face)"))


def _throughput(data: Path) -> None:
    from vfx.faceset.extract import MediaSource, extract_faceset

    os.environ.setdefault("VFX_NO_PROGRESS", "1")
    print(f"3. extract throughput ({os.cpu_count()} CPU cores; 256² crops, dlib, 9 boxes)")
    for name in THROUGHPUT_CLIPS:
        clip = data / "clips" / name
        if not clip.is_file():
            print(f"   {name}: skipped, not found")
            continue
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            summary = extract_faceset(MediaSource(str(clip)), Path(folder) / "fs")
            seconds = time.perf_counter() - started
            again = time.perf_counter()
            extract_faceset(MediaSource(str(clip)), Path(folder) / "fs")
            rerun = time.perf_counter() - again
        print(f"   {name:22} {summary.frames:4d} frames in {seconds:5.1f} s: {summary.frames / seconds:5.1f} fps "
              f"(rerun, nothing to do: {rerun:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help=f"the shared data folder (default: {DATA})")
    parser.add_argument("--frames", type=int, default=150, help="frames per clip for the footage jitter")
    parser.add_argument("--skip-footage", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    _stability()
    if not args.skip_footage:
        _footage(args.data, args.frames)
    if not args.skip_throughput:
        _throughput(args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
