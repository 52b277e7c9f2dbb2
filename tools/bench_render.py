"""Frame-stage speed: frames per second of the swap, the latent edit and the layout retouch on the demo shot.

Makes the demo shot (`vfx demo`: its plate an ACEScg EXR sequence, a small briefly trained model), learns an
edit vector on one keyframe and adds a layout retouch edit, then renders each stage ``--repeats`` times,
deleting that stage's frames before each run, and prints the median frames/s of each. The plate's faces are
tracked (and the persona's segmentation head trained) before timing, so the figures are the frame loop's:
read, crop, network, blend or warp, paste-back and write. The retouch's refiner is off (it trains for a time
budget, not per frame).

Usage:
    python tools/bench_render.py [--out /tmp/vfx_bench_render] [--frames 24] [--size 256] [--repeats 3]
        [--threads N] [--device cpu]

It runs against whichever ``vfx`` is imported (``PYTHONPATH=old_checkout`` measures an older tree).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path


def _cli(argv: list[str]) -> None:
    from vfx.cli import entrypoint

    code = entrypoint(argv)
    if code != 0:
        sys.exit(f"`vfx {' '.join(argv)}` exited {code}")


def _stage_api():
    """(swap, edit, retouch) callables taking a loaded shot, for this tree or an older one."""
    from vfx.retouch import retouch_shot
    from vfx.swap import swap_shot

    try:
        from vfx.edit.pipeline import apply_shot_edits
    except ImportError:  # before the edit stage had its own package
        from vfx.retouch.latent_pipeline import apply_shot_edits  # type: ignore[no-redef]
    return swap_shot, apply_shot_edits, retouch_shot


def _outputs(folder: Path, prefix: str) -> list[Path]:
    return sorted(folder.glob(f"{prefix}.*.exr"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/vfx_bench_render"))
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    os.environ.setdefault("VFX_NO_PROGRESS", "1")

    import cv2
    import torch
    import yaml

    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out
    _cli(["demo", "--out", str(out), "--frames", str(args.frames), "--size", str(args.size), "--iters-per-level", "5",
          "--device", args.device])
    data = yaml.safe_load((out / "demo.yaml").read_text())
    data["personas"]["hopper"] = {"faceset": "facesets/hopper", "consent": "public domain (demo)"}
    data["edit_options"] = {"refine_steps": 2, "keyframe_steps": 10, "seg_head_steps": 20}
    data["retouch_options"] = {"refiner": False, "resolution": 128}
    data["outputs"].update({"review": None, "comp_package": None})
    shot_file = out / "bench.yaml"
    shot_file.write_text(yaml.safe_dump(data, sort_keys=False))
    keyframe = 1001 + args.frames // 2
    vector = out / "edits" / "bench.vfxedit"
    if not vector.is_dir():
        labels = out / "paint" / "key.png"
        _cli(["edit", "labels", str(shot_file), "--keyframe", str(keyframe), "--out", str(labels), "--scale", "1"])
        bgr = cv2.imread(str(labels))
        side = bgr.shape[0]
        bgr[side * 9 // 16:side * 11 // 16, side * 3 // 8:side * 5 // 8] = (60, 30, 230)  # upper lip, BGR
        cv2.imwrite(str(labels.with_name("edited.png")), bgr)
        _cli(["edit", "learn", str(shot_file), "--keyframe", str(keyframe), "--labels",
              str(labels.with_name("edited.png")), "--out", str(vector)])
    data["edit_vectors"] = [{"vector": str(vector), "strength": 1.0}]
    data["retouch"] = [{"name": "smile", "group": "mouth", "scale": [1.15, 1.0]}]
    shot_file.write_text(yaml.safe_dump(data, sort_keys=False))

    from vfx.shot import load_shot

    swap_shot, apply_shot_edits, retouch_shot = _stage_api()
    shot = load_shot(shot_file)
    stages = {"swap": (lambda: swap_shot(shot, device=args.device, show_progress=False, workers=1), "demo_swap_v001"),
              "edit": (lambda: apply_shot_edits(shot, device=args.device, show_progress=False, workers=1), "demo_edit"),
              "retouch": (lambda: retouch_shot(shot, device=args.device, show_progress=False, workers=1),
                          "demo_retouch")}
    figures: dict[str, dict[str, float]] = {}
    folder = out / "out"
    for name, (run, prefix) in stages.items():
        if not _outputs(folder, prefix):
            run()  # first run: faces, segmentation head, everything a later run reuses
        times = []
        for _ in range(args.repeats):
            for path in _outputs(folder, prefix):
                path.unlink()
            started = time.perf_counter()
            summary = run()
            times.append(time.perf_counter() - started)
            assert summary.rendered == args.frames, summary
        median = statistics.median(times)
        figures[name] = {"frames": args.frames, "median_s": round(median, 3), "fps": round(args.frames / median, 2),
                         "runs_s": [round(t, 3) for t in times]}
        print(f"{name:8s} {args.frames} frames {args.size}x{args.size}: median {median:.2f} s, "
              f"{args.frames / median:.2f} frames/s (runs {', '.join(f'{t:.2f}' for t in times)} s)", flush=True)
    print(json.dumps({"threads": torch.get_num_threads(), "device": args.device, "stages": figures}))


if __name__ == "__main__":
    main()
