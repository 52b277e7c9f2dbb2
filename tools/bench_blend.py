"""Blend speed: our enhanced multi-band blend in the face crop plus paste-back, against OpenCV's full-frame
``detail.MultiBandBlender``, in ms per frame for one face in a 1080p and a UHD plate.

The plate is a real still (``obama.jpg`` from the shared data) scaled so the face polygon (jaw line and raised
brows, the region that is blended) is a third of the frame height, and mirrored out to fill the frame. The
"swapped" face is another real still (``biden.jpg``) aligned into the same crop by its own landmarks. Both are
timed the way they are used:

* ours (the swap pipeline's path): ``blend_crops(S, T, cover, method="enhanced")`` on the r x r crop (on
  ``--device``), the result brought to the host, then ``crop_matte`` + ``paste_back`` (the inverse warp of the
  face's region only, and the matte composite) into the plate;
* OpenCV: the swapped crop and its polygon warped to the full plate (``warp_to_plate(roi=False)``), then
  ``multiband_blend_image`` (OpenCV's ``detail.MultiBandBlender`` over the whole frame, int16 as it works)
  with the same pyramid depth: ``log2(r)`` levels, i.e. ``num_bands = log2(r) - 1`` (OpenCV builds
  ``num_bands + 1`` levels).

Cutting the target crop out of the plate is the same for both and is printed apart. Times are the median of
``--repeats`` runs after one warm-up; the fastest run of each side and the speed-up of those are printed too
(on a shared machine the minimum is the steadier figure, the median the one the target is judged by).

Usage:
    python tools/bench_blend.py [--crop 256] [--plates 1080p uhd] [--device cpu|cuda] [--repeats 10] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from vfx.align.similarity import (
    AlignTemplate,
    estimate_alignment,
    transform_points,
    warp_to_crop,
    warp_to_plate,
)
from vfx.blend.methods import blend_crops, multiband_blend_image
from vfx.blend.paste import crop_matte, paste_back
from vfx.blend.pyramid import pyramid_levels
from vfx.face.landmark import DlibLandmarker
from vfx.face.mask import face_polygon, rasterise_polygon
from vfx.io.image import read_image

STILLS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "stills"
PLATES = {"1080p": (1080, 1920), "uhd": (2160, 3840)}
FACE_FRACTION = 1 / 3
"""Face polygon height as a fraction of the plate height."""


def _landmarks(landmarker: DlibLandmarker, image: np.ndarray) -> np.ndarray:
    boxes = landmarker.detect(image)
    if not boxes:
        raise SystemExit("no face found in the still")
    return landmarker.localise(image, [max(boxes, key=lambda b: b.width * b.height)])[0]


def make_plate(still: np.ndarray, landmarks: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The still scaled so its face polygon is 1/3 of the plate height, centred, mirrored to fill the frame.

    Returns:
        ((H, W, 3) float32 sRGB plate, (68, 2) landmarks in plate pixels).
    """
    height, width = size
    polygon = face_polygon(landmarks)
    scale = FACE_FRACTION * height / float(np.ptp(polygon[:, 1]))
    centre = polygon.mean(axis=0)
    matrix = np.array([[scale, 0.0, width / 2 - scale * centre[0]], [0.0, scale, height / 2 - scale * centre[1]]])
    plate = cv2.warpAffine(still, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    return np.ascontiguousarray(np.clip(plate, 0, 1), dtype=np.float32), transform_points(landmarks, matrix)


def _median_ms(fn, repeats: int) -> tuple[list[float], float]:
    """Median over ``repeats`` runs of each part ``fn`` times (it returns a list of seconds per part) and of
    their total, and the fastest run's total: ([part medians..., total median], total minimum) in ms."""
    fn()  # warm-up: caches, kernels, OpenCV buffers
    runs = [fn() for _ in range(repeats)]
    totals = [sum(run) for run in runs]
    return ([1000 * statistics.median(part) for part in zip(*runs)] + [1000 * statistics.median(totals)],
            1000 * min(totals))


def bench(name: str, size: tuple[int, int], crop: int, still, still_lm, face, face_lm, device: torch.device,
          repeats: int) -> dict[str, float]:
    plate, landmarks = make_plate(still, still_lm, size)
    template = AlignTemplate(size=crop)
    matrix = estimate_alignment(landmarks, template)
    swapped = warp_to_crop(face, estimate_alignment(face_lm, template), crop, interpolation="area")
    cover = rasterise_polygon(face_polygon(transform_points(landmarks, matrix)), crop)
    bands = pyramid_levels(crop) - 1

    def cut() -> list[float]:
        t0 = time.perf_counter()
        warp_to_crop(plate, matrix, crop, interpolation="area")
        return [time.perf_counter() - t0]

    target = warp_to_crop(plate, matrix, crop, interpolation="area")
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].to(device)
    s_t, t_t, c_t = as_tensor(swapped), as_tensor(target), as_tensor(cover[:, :, None])
    frame = plate.copy()

    def ours() -> list[float]:
        t0 = time.perf_counter()
        blended = blend_crops(s_t, t_t, c_t, method="enhanced")[0].permute(1, 2, 0).cpu().numpy()  # .cpu() syncs
        t1 = time.perf_counter()
        paste_back(frame, blended, crop_matte(cover), matrix, in_place=True)  # as the pipeline's writer does
        return [t1 - t0, time.perf_counter() - t1]

    def opencv() -> list[float]:
        t0 = time.perf_counter()
        foreground = warp_to_plate(swapped, matrix, size, roi=False, interpolation="cubic").pixels
        mask = np.where(warp_to_plate(cover, matrix, size, roi=False, interpolation="linear").pixels > 0.5,
                        255, 0).astype(np.uint8)
        t1 = time.perf_counter()
        multiband_blend_image(foreground, plate, mask, bands)
        return [t1 - t0, time.perf_counter() - t1]

    cut_ms = _median_ms(cut, repeats)[0][0]
    (blend_ms, paste_ms, ours_ms), ours_min = _median_ms(ours, repeats)
    (warp_ms, mb_ms, cv_ms), cv_min = _median_ms(opencv, repeats)
    face_px = float(np.ptp(face_polygon(landmarks)[:, 1]))
    return {"face_px": face_px, "cut": cut_ms, "blend": blend_ms, "paste": paste_ms, "ours": ours_ms,
            "ours_min": ours_min, "warp": warp_ms, "multiband": mb_ms, "opencv": cv_ms, "opencv_min": cv_min,
            "bands": bands}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crop", type=int, default=256, help="face crop size r (a power of two)")
    parser.add_argument("--plates", nargs="+", default=list(PLATES), choices=list(PLATES))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--device", default="cpu", help="device of our blend (OpenCV always runs on the CPU)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--stills", type=Path, default=STILLS, help=f"folder with obama.jpg and biden.jpg ({STILLS})")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    paths = [args.stills / "obama.jpg", args.stills / "biden.jpg"]
    if not all(p.is_file() for p in paths):
        print(f"stills not found: {', '.join(str(p) for p in paths if not p.is_file())}", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    landmarker = DlibLandmarker()
    still, face = (read_image(p).rgb() for p in paths)
    still_lm, face_lm = _landmarks(landmarker, still), _landmarks(landmarker, face)
    print(f"device {device} (torch {torch.get_num_threads()} threads), OpenCV {cv2.__version__} "
          f"({cv2.getNumThreads()} threads); {args.crop}² crop, {pyramid_levels(args.crop)} pyramid levels "
          f"(OpenCV num_bands {pyramid_levels(args.crop) - 1}); median of {args.repeats} runs, ms per frame")
    print()
    print("| plate | face px | ours: blend | ours: paste | **ours** | OpenCV: warp | OpenCV: blend | **OpenCV** "
          "| speed-up | fastest runs: ours / OpenCV (speed-up) | crop cut (both) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    results = {}
    for name in args.plates:
        size = PLATES[name]
        r = bench(name, size, args.crop, still, still_lm, face, face_lm, device, args.repeats)
        results[name] = r
        print(f"| {name} {size[1]}x{size[0]} | {r['face_px']:.0f} | {r['blend']:.1f} | {r['paste']:.1f} | "
              f"**{r['ours']:.1f}** | {r['warp']:.1f} | {r['multiband']:.1f} | **{r['opencv']:.1f}** | "
              f"{r['opencv'] / r['ours']:.1f}x | {r['ours_min']:.1f} / {r['opencv_min']:.1f} "
              f"({r['opencv_min'] / r['ours_min']:.1f}x) | {r['cut']:.1f} |")
    print()
    if "1080p" in results:
        r = results["1080p"]
        ratio = r["opencv"] / r["ours"]
        print(f"target >= 10x faster than OpenCV at 1080p: {ratio:.1f}x (ours {r['ours']:.1f} ms, OpenCV "
              f"{r['opencv']:.1f} ms, medians), {'met' if ratio >= 10 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
