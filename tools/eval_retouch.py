"""Retouch figures on a real clip of the shared data: known-warp recovery, whether the refiner learns, flicker.

1. Known-warp recovery (the layout warp alone): on crops of the clip, the mouth's landmarks are moved by
   ``--move`` inter-ocular distances and widened by ``--widen``; the ground truth is the crop warped by the same
   known field (:func:`vfx.retouch.edits.group_field`). Printed: in-mask PSNR of the warp, of the unwarped crop
   and of the warp without the cross-label penalty; whether every pixel outside the mask kept its bits.
2. The refiner learns: it trains for ``--refiner-seconds`` on perturbed crops of the even frames
   (:func:`vfx.retouch.perturb.perturbed_sample`) and is scored on perturbed crops of the odd frames it never
   saw: PSNR inside the hole of the warp alone and of the refined output, against the original crops.
3. Flicker: the whole clip is retouched through the pipeline (``vfx retouch``) with one constant edit; the
   face-region frame-to-frame difference of the result over the plate's (:func:`vfx.blend.metrics.
   face_region_flicker`, the face polygon as the region) must stay at most 1.1.

A contact sheet (plate | retouched, zoomed on the face, for a few frames) and the preview are written to
``--out``. The clip's frames are never copied into the repository.

Usage:
    python tools/eval_retouch.py [--clip pair_x_aoc] [--frames 0-199] [--resolution 256] [--refiner-seconds 120]
                                 [--out /tmp/vfx_eval_retouch] [--parts known refiner flicker]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from vfx.blend.metrics import face_region_flicker
from vfx.eval.retouch import known_warp_case
from vfx.face.mask import face_polygon, rasterise_polygon
from vfx.faceset.extract import ExtractConfig, MediaSource, extract_faceset
from vfx.faceset.store import Faceset
from vfx.io.image import read_image
from vfx.render.rendered import RETOUCH_MATTE_CHANNEL, read_rendered_frame
from vfx.retouch.perturb import hole_psnr, hole_window, perturbed_sample, window_sample
from vfx.retouch.pipeline import REFINER_LR, REFINER_MARGIN, REFINER_WINDOW
from vfx.retouch.refiner import RefinerConfig, refine, train_refiner
from vfx.shot.file import parse_shot
from vfx.shot.frames import FrameRange

CLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "clips"


def _crops(clip: Path, frames: str, resolution: int, folder: Path) -> list[tuple[int, np.ndarray, np.ndarray]]:
    source = MediaSource(path=str(clip), start_frame=0, shot=clip.stem)
    extract_faceset(source, folder, frames=FrameRange.parse(frames), config=ExtractConfig(crop_size=resolution, track=0))
    faceset = Faceset.open(folder)
    return [(r.frame, read_image(faceset.folder / r.crop).rgb(), r.crop_landmarks) for r in faceset.faces(0)]


def known_warp(crops, move: float, widen: float, step: int) -> None:
    results = [known_warp_case(crop, points, move=(0.0, move), scale=(widen, 1.0)) for _, crop, points in crops[::step]]
    warp = np.array([r.psnr_warp for r in results])
    print(f"\n1. known-warp recovery: mouth moved {move} IOD down and widened x{widen}, {len(results)} crops")
    print(f"   in-mask PSNR  warp {warp.mean():.2f} dB (min {warp.min():.2f})   unwarped "
          f"{np.mean([r.psnr_unwarped for r in results]):.2f} dB   without the label penalty "
          f"{np.mean([r.psnr_no_penalty for r in results]):.2f} dB")
    print(f"   outside the mask bit-identical: {all(r.outside_identical for r in results)}   mask "
          f"{100 * np.mean([r.mask_fraction for r in results]):.1f} % of the crop   warp "
          f"{np.mean([r.seconds for r in results]):.2f} s per crop")


def refiner_learns(crops, seconds: float, samples: int, width: float) -> None:
    train_crops = crops[0::2]
    test_crops = crops[1::2]
    rng = np.random.default_rng(0)
    pick = np.linspace(0, len(train_crops) - 1, min(samples, len(train_crops))).round().astype(int)
    started = time.perf_counter()
    side = min(REFINER_WINDOW, train_crops[0][1].shape[0])
    train = [window_sample(perturbed_sample(train_crops[i][1], train_crops[i][2], rng), side) for i in pick]
    test_rng = np.random.default_rng(1)
    tpick = np.linspace(0, len(test_crops) - 1, min(24, len(test_crops))).round().astype(int)
    test = [perturbed_sample(test_crops[i][1], test_crops[i][2], test_rng) for i in tpick]
    prepared = time.perf_counter() - started
    trained = train_refiner(train, RefinerConfig(width=width, lr=REFINER_LR), seconds=seconds)
    warp_psnr, refined_psnr = [], []
    for sample in test:
        y0, x0, y1, x1 = hole_window(sample.hole[0], trained.config.size_multiple, margin=REFINER_MARGIN)
        window = np.s_[y0:y1, x0:x1]
        out = sample.warped.clone()
        out[(slice(None), *window)] = refine(trained, sample.layout[window][None], sample.warped[(slice(None), *window)][None],
                                             sample.hole[(slice(None), *window)][None])[0]
        warp_psnr.append(hole_psnr(sample, sample.warped))
        refined_psnr.append(hole_psnr(sample, out))
    better = np.mean(np.array(refined_psnr) > np.array(warp_psnr))
    print(f"\n2. refiner: {len(train)} perturbed training crops (even frames, {prepared:.0f} s to cut and warp), "
          f"{trained.steps} steps in {seconds:.0f} s, width {width}; {len(test)} held-out perturbed crops (odd frames)")
    print(f"   PSNR inside the hole  warp alone {np.mean(warp_psnr):.2f} dB   refined {np.mean(refined_psnr):.2f} dB   "
          f"refined better on {100 * better:.0f} % of the crops")


def flicker(clip: Path, frames: str, resolution: int, seconds: float, out: Path) -> None:
    first, last = (int(v) for v in frames.split("-"))
    shot_text = f"""schema: vfx.Shot/1
name: evalrt
plate: {{path: {clip}, start_frame: {first}, frames: {frames}}}
retouch:
  - {{name: smile, group: mouth, move: [0, -0.02], scale: [1.1, 1.0]}}
retouch_options: {{resolution: {resolution}, refiner_seconds: {seconds}}}
outputs: {{retouch: {out}/frames/evalrt.####.exr}}
"""
    from vfx.retouch import retouch_shot

    shot = parse_shot(shot_text)
    started = time.perf_counter()
    summary = retouch_shot(shot, show_progress=False, preview=out / "preview.png")
    elapsed = time.perf_counter() - started
    records = {r.frame: r for r in Faceset.open(out / "frames" / "evalrt_plate_faces").faces(0)}
    numbers = list(range(first, last + 1))
    from vfx.io.plate import open_plate

    plate, _ = open_plate(shot.plate)
    try:
        def results():
            for n in numbers:
                yield read_rendered_frame(out / "frames" / f"evalrt.{n:04d}.exr").rgb

        def plates():
            for n in numbers:
                yield plate.read(n).rgb()

        def mattes():
            for n in numbers:
                record = records.get(n)
                size = plate.size
                yield (np.zeros(size, np.float32) if record is None or record.landmarks is None
                       else rasterise_polygon(face_polygon(record.landmarks), size))

        ratio = face_region_flicker(results(), plates(), mattes())
        _contact_sheet(out / "contact_sheet.png", numbers[:: max(1, len(numbers) // 4)][:4], plate, out, records)
    finally:
        plate.close()
    print(f"\n3. flicker: {len(numbers)} frames retouched with a constant edit (mouth widened x1.1, raised 0.02 IOD) "
          f"in {elapsed:.0f} s ({summary.rendered} rendered, refiner included)")
    print(f"   face-region frame-to-frame difference, retouched over plate: {ratio:.3f} (target <= 1.1)")
    print(f"   contact sheet {out / 'contact_sheet.png'}, preview {out / 'preview.png'}")


def _contact_sheet(path: Path, numbers: list[int], plate, out: Path, records) -> None:
    rows = []
    for n in numbers:
        done = read_rendered_frame(out / "frames" / f"evalrt.{n:04d}.exr")
        record = records[n]
        x0, y0, x1, y1 = (int(v) for v in record.box)
        pad = (x1 - x0) // 4
        box = np.s_[max(0, y0 - pad):y1 + pad, max(0, x0 - pad):x1 + pad]
        matte = done.layers[RETOUCH_MATTE_CHANNEL][box]
        tiles = [plate.read(n).rgb()[box], done.rgb[box], np.repeat(matte[:, :, None], 3, axis=2)]
        rows.append(np.concatenate([cv2.resize(np.ascontiguousarray(t), (256, 256)) for t in tiles], axis=1))
    sheet = (np.clip(np.concatenate(rows, axis=0), 0, 1) * 255).astype(np.uint8)
    cv2.imwrite(str(path), sheet[:, :, ::-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default="pair_x_aoc", help="clip of ../shared/data/clips (without .mp4)")
    parser.add_argument("--frames", default="0-199")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--move", type=float, default=0.03)
    parser.add_argument("--widen", type=float, default=1.06)
    parser.add_argument("--refiner-seconds", type=float, default=120.0)
    parser.add_argument("--refiner-samples", type=int, default=48)
    parser.add_argument("--refiner-width", type=float, default=0.25)
    parser.add_argument("--out", type=Path, default=Path("/tmp/vfx_eval_retouch"))
    parser.add_argument("--parts", nargs="+", choices=("known", "refiner", "flicker"),
                        default=["known", "refiner", "flicker"], help="which figures to measure")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    clip = CLIPS / f"{args.clip}.mp4"
    if not clip.is_file():
        print(f"missing {clip}: this evaluation needs ../shared/data", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"clip {clip.name}, frames {args.frames}, crops {args.resolution}²")
    if {"known", "refiner"} & set(args.parts):
        crops = _crops(clip, args.frames, args.resolution, args.out / "faces")
    if "known" in args.parts:
        known_warp(crops, args.move, args.widen, step=max(1, len(crops) // 10))
    if "refiner" in args.parts:
        refiner_learns(crops, args.refiner_seconds, args.refiner_samples, args.refiner_width)
    if "flicker" in args.parts:
        flicker(clip, args.frames, args.resolution, args.refiner_seconds, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
