"""Hash every rendered EXR's pixels of the demo shot through swap, latent edit and layout retouch.

A refactor of the frame stages must not change a bit of what they render. This tool makes the demo shot
(`vfx demo`, small and deterministic), adds a layout retouch edit and a learned latent edit vector to it,
renders all three stages through the `vfx` command, and prints one line per rendered frame: the stage, the
frame and the SHA-256 of its pixels (every channel, as stored). Run it before and after a change and diff
the two lists.

    python tools/render_hashes.py --out /tmp/hashes_before [--json before.json]

Everything runs on the CPU with one thread and deterministic algorithms, so two runs on one machine agree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path


def _run(argv: list[str]) -> None:
    from vfx.cli import entrypoint

    code = entrypoint(argv)
    if code != 0:
        sys.exit(f"`vfx {' '.join(argv)}` exited {code}")


def pixel_hash(path: Path) -> str:
    import OpenImageIO as oiio

    image = oiio.ImageInput.open(str(path))
    if image is None:
        raise SystemExit(f"cannot read {path}")
    try:
        spec = image.spec()
        pixels = image.read_image(0, 0, 0, spec.nchannels, oiio.HALF if spec.format == oiio.HALF else oiio.FLOAT)
        names = ",".join(spec.channelnames)
    finally:
        image.close()
    return hashlib.sha256(names.encode() + pixels.tobytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="work folder (made; reused when it exists)")
    parser.add_argument("--json", type=Path, help="also write the hashes here")
    args = parser.parse_args()
    os.environ.setdefault("VFX_NO_PROGRESS", "1")

    import cv2
    import torch
    import yaml

    torch.set_num_threads(1)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True, warn_only=True)

    out = args.out
    _run(["demo", "--out", str(out), "--frames", "8", "--size", "128", "--iters-per-level", "5", "--device", "cpu"])
    shot_file = out / "demo.yaml"
    data = yaml.safe_load(shot_file.read_text())
    data["personas"]["hopper"] = {"faceset": "facesets/hopper", "consent": "public domain (demo)"}
    data["edit_options"] = {"refine_steps": 2, "keyframe_steps": 10, "seg_head_steps": 20}
    data["retouch_options"] = {"refiner": False, "resolution": 64}  # the refiner trains for a time budget: not repeatable
    data["outputs"]["review"] = None
    data["outputs"]["comp_package"] = None
    edited = out / "hashes.yaml"
    edited.write_text(yaml.safe_dump(data, sort_keys=False))

    labels = out / "paint" / "k1004.png"
    _run(["edit", "labels", str(edited), "--keyframe", "1004", "--out", str(labels), "--scale", "2", "--workers", "1"])
    bgr = cv2.imread(str(labels))
    side = bgr.shape[0]
    bgr[side * 9 // 16:side * 11 // 16, side * 3 // 8:side * 5 // 8] = (60, 30, 230)  # upper lip, BGR
    painted = labels.with_name("edited.png")
    cv2.imwrite(str(painted), bgr)
    vector = out / "edits" / "lips.vfxedit"
    if not vector.is_dir():
        _run(["edit", "learn", str(edited), "--keyframe", "1004", "--labels", str(painted), "--out", str(vector),
              "--workers", "1"])
    data["edit_vectors"] = [{"vector": "edits/lips.vfxedit", "strength": [{"frame": 1001, "value": 0.0},
                                                                         {"frame": 1008, "value": 1.0}]}]
    data["retouch"] = [{"name": "smile", "group": "mouth",
                        "keys": [{"frame": 1001}, {"frame": 1008, "move": [0, -0.02], "scale": [1.15, 1.0]}]}]
    edited.write_text(yaml.safe_dump(data, sort_keys=False))
    _run(["edit", "apply", str(edited), "--workers", "1"])
    _run(["retouch", str(edited), "--workers", "1"])

    hashes = {}
    for exr in sorted((out / "out").glob("*.exr")):
        hashes[exr.name] = pixel_hash(exr)
    for name, digest in hashes.items():
        print(f"{name}  {digest}")
    if args.json:
        args.json.write_text(json.dumps(hashes, indent=2) + "\n")


if __name__ == "__main__":
    main()
