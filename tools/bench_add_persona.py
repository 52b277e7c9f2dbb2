"""How fast a persona can be added to a trained comb model, compared with training it from scratch.

1. From scratch: personas A and B trained together through every level; B's held-out face SSIM is the target
   (or pass ``--scratch RUN`` to use a run already trained so, e.g. by ``vfx train``).
2. A base model of A alone, through every level (``--base RUN`` reuses one).
3. B added to the base (its decoder copied from A's, the encoder and tied levels frozen by default), trained
   at the final level; B's held-out face SSIM is measured every ``--every`` iterations until it reaches the
   target or ``--max-iters``.

Prints the iterations each path took. Usage:
    python tools/bench_add_persona.py --a A=FACESET --b B=FACESET --res 64 --width 0.25 --iters-per-level 500 \\
        [--scratch RUN] [--base RUN] [--shared-lr-scale 0] [--every 50] [--max-iters 2000] --out DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vfx.comb.checkpoint import load_checkpoint, read_manifest
from vfx.comb.data import PersonaData
from vfx.comb.train import TrainConfig, held_out_ssim, train_comb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="NAME=FACESET of the persona the base model knows")
    parser.add_argument("--b", required=True, help="NAME=FACESET of the persona to add")
    parser.add_argument("--res", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--iters-per-level", type=int, default=500)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--holdout", type=float, default=0.1)
    parser.add_argument("--scratch", type=Path, help="a run already trained on A and B")
    parser.add_argument("--base", type=Path, help="a run already trained on A alone")
    parser.add_argument("--shared-lr-scale", type=float, default=0.0)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--max-iters", type=int, default=2000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    (a, a_path), (b, b_path) = (item.split("=", 1) for item in (args.a, args.b))
    data = {a: PersonaData(a, [a_path], args.res, holdout=args.holdout),
            b: PersonaData(b, [b_path], args.res, holdout=args.holdout)}
    config = TrainConfig(iters_per_level=args.iters_per_level, batch_size=args.batch, checkpoint_every=0,
                         log_every=max(1, args.iters_per_level // 2))

    scratch = args.scratch or args.out / "scratch"
    if args.scratch is None:
        train_comb(data, scratch, resolution=args.res, width=args.width, config=config)
    net, manifest, _ = load_checkpoint(scratch)
    target = held_out_ssim(net, data[b])["face_ssim"]
    levels = manifest.config.top_level + 1
    print(f"from scratch ({a} and {b} together): {manifest.step} iterations ({levels} levels); "
          f"{b}'s held-out face SSIM {target:.4f}")

    base = args.base or args.out / "base"
    if args.base is None:
        train_comb({a: data[a]}, base, resolution=args.res, width=args.width, config=config)
    base_step = read_manifest(base).step
    print(f"base model ({a} alone): {base_step} iterations")

    added = args.out / "added"
    done, reached = 0, None
    add_config = TrainConfig(iters_per_level=args.max_iters, batch_size=args.batch, checkpoint_every=args.every,
                             log_every=args.every, shared_lr_scale=args.shared_lr_scale, keep_checkpoints=1)
    while done < args.max_iters:
        done += args.every
        # Adding starts at the final stage: iteration (levels - 1) * iters_per_level of the schedule.
        net, _ = train_comb({b: data[b]}, added, resolution=args.res, width=args.width, config=add_config,
                            base=base, resume=done > args.every, stop_after=(levels - 1) * args.max_iters + done)
        score = held_out_ssim(net, data[b])["face_ssim"]
        print(f"  {b} added, {done} iterations at the final level: held-out face SSIM {score:.4f}")
        if score >= target:
            reached = done
            break
    if reached is None:
        print(f"adding {b} did not reach {target:.4f} within {args.max_iters} iterations")
    else:
        print(f"adding {b}: {reached} iterations to reach the from-scratch SSIM "
              f"({reached / manifest.step:.0%} of the {manifest.step} iterations of training from scratch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
