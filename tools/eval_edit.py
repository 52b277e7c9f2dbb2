"""Figures of the segmentation-driven latent edits (004) on a comb model trained on real footage.

    python tools/eval_edit.py MODEL FACESET --persona x [--seg-steps 1500] [--keyframe 100] [--stride 1]

1. The persona's segmentation head, trained with the encoder and decoder frozen on the faceset's first 90 %
   (landmark layouts as labels), scored on the last 10 % (mIoU against their landmark layouts).
2. A keyframe edit, the lips enlarged (the mouth's landmarks 30 % wider and 80 % taller repainted into the
   decoded segmentation): IoU with the edited labels inside r, PSNR outside r against the unedited decode,
   and the same without the outside-r loss (the locality ablation).
3. The vector applied to every other frame (``--stride``): the edited labels' area against the unedited on
   each frame, and the outside-r PSNR, alone and with the per-frame refinement; the strength sweep.

It writes a contact sheet (``--out``, PNG): keyframe crop | decode | edited decode | edited labels | labels of
the edited decode | r, then for a few applied frames decode | edited decode | their labels.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch

from vfx.comb.checkpoint import load_checkpoint
from vfx.edit.segment import (
    JointDecoder,
    faceset_layouts,
    load_seg_head,
    save_seg_head,
    train_seg_head,
)
from vfx.edit.vectors import EditSettings
from vfx.eval.retouch import latent_edit_case
from vfx.face.layout import LABEL_NAMES, colourise_layout
from vfx.io.image import write_image


def _tile(t: torch.Tensor) -> np.ndarray:
    return np.clip(t[0].permute(1, 2, 0).detach().cpu().numpy(), 0.0, 1.0)


def _labels(t: torch.Tensor) -> np.ndarray:
    return colourise_layout(t.cpu().numpy().astype(np.uint8)).astype(np.float32) / 255.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="comb run folder (vfx train)")
    parser.add_argument("faceset", type=Path, help="the persona's faceset (vfx extract)")
    parser.add_argument("--persona", required=True)
    parser.add_argument("--seg-steps", type=int, default=1500)
    parser.add_argument("--keyframe", type=int, default=None, help="index of the keyframe crop (default: the middle)")
    parser.add_argument("--stride", type=int, default=1, help="apply to every n-th other crop")
    parser.add_argument("--steps", type=int, default=EditSettings.steps, help="keyframe optimisation steps")
    parser.add_argument("--refine-steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--head", type=Path, default=None, help="reuse (or save) the trained head here")
    parser.add_argument("--out", type=Path, default=Path("eval_edit.png"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    net, manifest, _ = load_checkpoint(args.model, with_optimizer=False)
    net.eval().requires_grad_(False)
    crops, labels, landmarks = faceset_layouts(args.faceset, net.size)
    held = max(1, len(crops) // 10)
    train = len(crops) - held
    started = time.perf_counter()
    if args.head is not None and args.head.with_suffix(".json").is_file():
        head, info = load_seg_head(args.head, fingerprint=net.fingerprint(args.persona))
    else:
        head, info = train_seg_head(net, args.persona, crops[:train], labels[:train], held_images=crops[train:],
                                    held_labels=labels[train:], steps=args.seg_steps)
        if args.head is not None:
            save_seg_head(args.head, head, info)
    print(f"model {args.model} (step {manifest.step}, {net.size}², width {net.config.width}), persona {args.persona}, "
          f"{len(crops)} crops of {args.faceset}")
    print(f"1. segmentation head: {train} frames, {args.seg_steps} steps, {time.perf_counter() - started:.0f} s; "
          f"held-out mIoU {info.held_miou:.3f} on {held} frames")
    print("   " + ", ".join(f"{k} {v:.3f}" for k, v in info.held_iou.items()))

    joint = JointDecoder(net, args.persona, head)
    keyframe = args.keyframe if args.keyframe is not None else len(crops) // 2
    order = [keyframe] + [i for i in range(len(crops)) if i != keyframe][:: args.stride]
    subset = crops[order]
    settings = EditSettings(steps=args.steps)
    report = latent_edit_case(joint, subset, [landmarks[i] for i in order], 0, settings=settings,
                              refine_steps=args.refine_steps)
    names = ", ".join(LABEL_NAMES[c] for c in report.classes)
    print(f"2. keyframe {keyframe}: lips enlarged, {report.changed_pixels} pixels repainted, labels {names}")
    print(f"   IoU with the edited labels inside r: {report.keyframe_iou_before:.3f} before -> "
          f"{report.keyframe_iou:.3f} after {settings.steps} steps ({report.keyframe_seconds:.1f} s); their area "
          f"{report.keyframe_areas[0]} -> {report.keyframe_areas[1]} px (target {report.keyframe_areas[2]})")
    print(f"   outside r vs the unedited decode: {report.keyframe_psnr:.2f} dB; without the outside-r loss "
          f"{report.ablation_psnr:.2f} dB (IoU {report.ablation_iou:.3f}): locality worth {report.locality_db:.2f} dB")
    growth, psnr = np.array(report.apply_growth), np.array(report.apply_psnr)
    print(f"3. applied to {len(growth)} other frames: area of the edited labels x{growth.mean():.2f} "
          f"(min x{growth.min():.2f}, grown on {int((growth > 1).sum())}/{len(growth)}); outside r "
          f"{psnr.mean():.2f} dB (min {psnr.min():.2f}); {report.apply_seconds * 1000:.0f} ms a frame")
    if report.refined_psnr:
        rg, rp = np.array(report.refined_growth), np.array(report.refined_psnr)
        print(f"   refined ({args.refine_steps} steps, warm-started): area x{rg.mean():.2f} (min x{rg.min():.2f}, "
              f"grown on {int((rg > 1).sum())}/{len(rg)}); outside r {rp.mean():.2f} dB (min {rp.min():.2f}); "
              f"{report.refine_seconds:.2f} s a frame; lower than the vector alone on {int((rp < psnr).sum())} frames")
    monotonic = all(all(b > a for a, b in itertools.pairwise(row)) for row in report.strength_areas)
    print(f"   strength s = {', '.join(f'{s:g}' for s in report.strengths)}: areas "
          + "; ".join(" ".join(str(v) for v in row) for row in report.strength_areas)
          + f" -> strictly increasing on every frame: {'yes' if monotonic else 'no'}")

    # contact sheet
    with torch.no_grad():
        before = joint(joint.encode(subset[:1]))[0]
    edited, result = report.edited, report.keyframe
    mask = np.repeat(result.region.cpu().numpy()[:, :, None].astype(np.float32), 3, axis=2)
    rows = [np.concatenate([_tile(subset[:1]), _tile(before), _tile(result.image), _labels(edited),
                            _labels(result.labels), mask], axis=1)]
    for i in np.linspace(1, len(order) - 1, 4).astype(int):
        with torch.no_grad():
            zi = joint.encode(subset[i:i + 1])
            b, bl = joint(zi)
            a, al = joint(zi + result.delta.view(1, -1, 1, 1))
        rows.append(np.concatenate([_tile(subset[i:i + 1]), _tile(b), _tile(a), _labels(bl.argmax(1)[0]),
                                    _labels(al.argmax(1)[0]), np.abs(_tile(a) - _tile(b)) * 4], axis=1))
    sheet = np.concatenate(rows, axis=0)
    sheet = np.repeat(np.repeat(sheet, 4, axis=0), 4, axis=1)
    write_image(args.out, sheet.astype(np.float32), channels=("R", "G", "B"), dtype="uint8")
    print(f"contact sheet: {args.out}")


if __name__ == "__main__":
    main()
