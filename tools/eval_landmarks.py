"""Landmark accuracy and speed of the dlib path on the labelled photos in ../shared/data/landmarks.

For every labelled face prints the normalised mean error (mean point error / outer-eye-corner distance,
points 36 and 45) of a single pass and of the 9-box jitter average ([0052]), first with the labelled box, then
with the detector's own box where the detector finds the face (IoU >= 0.5 with the labelled box), then as
``vfx extract`` does it: the detector's box refined from landmarks (``refine_boxes``), single and averaged. Then the
steadiness that jitter averaging buys (landmark spread when the box wobbles by up to 3 %), and timings on a
512² frame.

Note: the XML says its landmarks were produced by dlib's 68-point model, so the labelled-box single pass
reproduces them almost exactly and averaging necessarily moves away from them; the detector-box figures and
the spread are the informative ones.

Usage:
    python tools/eval_landmarks.py [--data DIR] [--beta 0.05] [--num-shifts 8] [--min-face-px 35]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from vfx.eval.landmarks import normalised_mean_error, read_dlib_landmark_xml
from vfx.face.landmark import (
    DlibLandmarker,
    jitter_average_many,
    refine_boxes,
)
from vfx.face.types import FaceBox

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
XML_FILES = ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml")


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return np.ascontiguousarray(bgr[..., ::-1])


def _spread(lm: DlibLandmarker, image: np.ndarray, box: FaceBox, beta: float, shifts: int, rng) -> tuple[float, float]:
    """Landmark spread (mean distance to the mean / eye span) over 10 wobbled boxes: single pass, averaged."""
    wobbles = [
        box.shifted(*(rng.uniform(-0.03, 0.03, 2) * box.width)).scaled(1 + rng.uniform(-0.03, 0.03)) for _ in range(10)
    ]
    out = []
    for sets in (lm.localise(image, wobbles), jitter_average_many(lm, image, wobbles, beta=beta, num_shifts=shifts)):
        mean = sets.mean(axis=0)
        out.append(float(np.linalg.norm(sets - mean, axis=-1).mean() / np.linalg.norm(mean[36] - mean[45])))
    return out[0], out[1]


def _ms(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help=f"the shared data folder (default: {DATA})")
    parser.add_argument("--beta", type=float, default=0.05, help="jitter shift as a fraction of the box width")
    parser.add_argument("--num-shifts", type=int, default=8, help="shifted boxes per face (8: [0052])")
    parser.add_argument("--min-face-px", type=float, default=35.0, help="smallest face the detector must find")
    args = parser.parse_args(argv)
    folder = args.data / "landmarks"
    if not all((folder / name).is_file() for name in XML_FILES):
        print(f"labelled photos not found in {folder}", file=sys.stderr)
        return 2

    lm = DlibLandmarker(min_face_px=args.min_face_px)
    k = args.num_shifts
    print(f"dlib landmarks, NME by outer-eye-corner distance; averaged = {1 + k} boxes, beta {args.beta}")
    print(f"{'image':28} {'faces':>5} {'box single':>10} {'box avg':>8} {'found':>5} {'det single':>10} {'det avg':>8}"
          f" {'ref single':>10} {'ref avg':>8}")
    totals: dict[str, list[np.ndarray]] = {"box1": [], "boxk": [], "det1": [], "detk": [], "ref1": [], "refk": []}
    spreads = []
    rng = np.random.default_rng(0)
    labelled = found_total = 0
    for xml in XML_FILES:
        for entry in read_dlib_landmark_xml(folder / xml):
            image = _read_rgb(entry.path)
            box1 = normalised_mean_error(lm.localise(image, entry.boxes), entry.landmarks)
            boxk = normalised_mean_error(
                jitter_average_many(lm, image, entry.boxes, beta=args.beta, num_shifts=k), entry.landmarks
            )
            detections = lm.detect(image)
            matches = []
            for i, truth_box in enumerate(entry.boxes):
                best = max(detections, key=truth_box.iou, default=None)
                if best is not None and best.iou(truth_box) >= 0.5:
                    matches.append((i, best))
            det_boxes = [b for _, b in matches]
            truth = entry.landmarks[[i for i, _ in matches]]
            det1 = normalised_mean_error(lm.localise(image, det_boxes), truth) if matches else np.empty(0)
            detk = (
                normalised_mean_error(jitter_average_many(lm, image, det_boxes, beta=args.beta, num_shifts=k), truth)
                if matches
                else np.empty(0)
            )
            refined = refine_boxes(lm, image, det_boxes)
            ref1 = normalised_mean_error(lm.localise(image, refined), truth) if matches else np.empty(0)
            refk = (
                normalised_mean_error(jitter_average_many(lm, image, refined, beta=args.beta, num_shifts=k), truth)
                if matches
                else np.empty(0)
            )
            for key, value in (("box1", box1), ("boxk", boxk), ("det1", det1), ("detk", detk), ("ref1", ref1),
                               ("refk", refk)):
                totals[key].append(value)
            spreads += [_spread(lm, image, b, args.beta, k, rng) for b in entry.boxes]
            labelled += len(entry.boxes)
            found_total += len(matches)
            det_text = (f"{det1.mean():10.4f} {detk.mean():8.4f} {ref1.mean():10.4f} {refk.mean():8.4f}" if matches
                        else f"{'-':>10} {'-':>8} {'-':>10} {'-':>8}")
            print(
                f"{entry.path.name:28} {len(entry.boxes):5d} {box1.mean():10.4f} {boxk.mean():8.4f} "
                f"{len(matches):5d} {det_text}"
            )
    mean = {key: float(np.concatenate(v).mean()) for key, v in totals.items()}
    print(
        f"{'mean over faces':28} {labelled:5d} {mean['box1']:10.4f} {mean['boxk']:8.4f} "
        f"{found_total:5d} {mean['det1']:10.4f} {mean['detk']:8.4f} {mean['ref1']:10.4f} {mean['refk']:8.4f}"
    )
    single_spread, averaged_spread = np.mean(spreads, axis=0)
    print(
        f"landmark spread under a 3 % box wobble (/ eye span): single {single_spread:.4f}, "
        f"averaged {averaged_spread:.4f} ({single_spread / averaged_spread:.1f}x steadier)"
    )

    stills = args.data / "stills" / "obama.jpg"
    if stills.is_file():
        frame = cv2.resize(_read_rgb(stills)[:910], (512, 512), interpolation=cv2.INTER_AREA)
        fast = DlibLandmarker()
        box = fast.detect(frame)[0]
        boxes = [FaceBox(box.x0, box.y0, box.x1, box.y1)] * 9
        print(f"timings on a 512x512 frame (face {box.width:.0f} px):")
        print(f"  detect full resolution   {_ms(lambda: fast.detect(frame), 20):7.2f} ms")
        print(f"  detect scale=0.5         {_ms(lambda: fast.detect(frame, scale=0.5), 20):7.2f} ms")
        print(f"  detect region 2x face    {_ms(lambda: fast.detect(frame, region=box.scaled(2.0)), 20):7.2f} ms")
        small = DlibLandmarker(min_face_px=40)
        print(f"  detect min_face_px=40    {_ms(lambda: small.detect(frame), 5):7.2f} ms  (upsample 1)")
        print(f"  localise 9 boxes         {_ms(lambda: fast.localise(frame, boxes), 20):7.2f} ms")
        print(f"  jitter_average (9 boxes) {_ms(lambda: jitter_average_many(fast, frame, [box]), 20):7.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
