"""Speed of the latent edits (004): a keyframe optimisation, and applying a vector to one frame with and
without the per-frame refinement, for comb networks of a few sizes (random weights: the cost does not
depend on what the weights learned).

    python tools/bench_edit.py [--configs 64:0.25 128:0.5] [--steps 100] [--refine-steps 10] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from vfx.comb.network import CombConfig, CombNetwork
from vfx.edit.segment import JointDecoder, SegHead
from vfx.edit.vectors import (
    EditSettings,
    apply_vector,
    buffer_pixels,
    learn_edit,
    refine_edit,
)
from vfx.face.layout import FaceLabel


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(resolution: int, width: float, *, steps: int, refine_steps: int, frames: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    net = CombNetwork(CombConfig(resolution=resolution, width=width, personas=("a",)))
    net.grow(net.config.top_level)
    net.to(device)
    joint = JointDecoder(net, "a", SegHead(net.feature_channels()).to(device))
    crops = torch.rand(frames + 1, 3, resolution, resolution, device=device)
    with torch.no_grad():
        labels = joint.labels(joint.encode(crops[:1]))[0]
    edited = labels.clone()
    s = resolution // 8
    edited[5 * s:6 * s, 3 * s:5 * s] = int(FaceLabel.UPPER_LIP)
    settings = EditSettings(steps=steps)
    _sync(device)
    started = time.perf_counter()
    result = learn_edit(joint, crops[:1], edited, settings)
    _sync(device)
    keyframe = time.perf_counter() - started
    classes, buffer = (int(FaceLabel.UPPER_LIP),), buffer_pixels(settings.buffer, resolution)

    def vector_only(x: torch.Tensor) -> None:
        with torch.no_grad():
            apply_vector(joint, joint.encode(x), result.delta, classes, buffer)

    vector_only(crops[1:2])  # warm-up
    _sync(device)
    started = time.perf_counter()
    for i in range(1, frames + 1):
        vector_only(crops[i:i + 1])
    _sync(device)
    applied = (time.perf_counter() - started) / frames
    refinement = settings.for_refinement(refine_steps)
    correction = None
    started = time.perf_counter()
    for i in range(1, frames + 1):
        with torch.no_grad():
            z = joint.encode(crops[i:i + 1])
        refined = refine_edit(joint, z, result.delta, classes, refinement, init=correction)
        correction = refined.delta - result.delta
    _sync(device)
    refined_s = (time.perf_counter() - started) / frames
    return {"keyframe": keyframe, "apply": applied, "refine": refined_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["64:0.25", "128:0.5"], help="resolution:width pairs")
    parser.add_argument("--steps", type=int, default=EditSettings.steps)
    parser.add_argument("--refine-steps", type=int, default=10)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, {torch.get_num_threads()} threads; keyframe: {args.steps} Adam steps on δ; "
          f"apply: encode + decode + segmentation at z and z + δ, and the region; refine: {args.refine_steps} steps more")
    print("| crop | width | keyframe optimisation s | apply s/frame | apply + refine s/frame |")
    print("|---|---|---|---|---|")
    for spec in args.configs:
        resolution, width = spec.split(":")
        figures = bench(int(resolution), float(width), steps=args.steps, refine_steps=args.refine_steps,
                        frames=args.frames, device=device)
        print(f"| {resolution}² | {width} | {figures['keyframe']:.2f} | {figures['apply']:.3f} | "
              f"{figures['refine']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
