"""Farm benchmark: per-task overhead of each engine, and frames per second of the demo shot with 1 and 2
local workers.

The demo shot (``vfx demo``'s media, 48 frames of 256² by default) is rendered with a comb model of the demo's
architecture (64², width 0.25; untrained: the swap's cost does not depend on the weights) through the whole
task graph: extract, track, swap, package. The overhead of an engine is the time of an empty task (a swap
chunk whose frames are all on disk, so it only starts, plans and skips), per task, over ``--tasks`` of them:
for the local engine that is a ``vfx task run`` process each; for Ray, a task in an already started worker.

    python tools/bench_farm.py [--frames 48] [--size 256] [--chunk 8] [--tasks 8] [--no-ray]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _model(run: Path, personas: tuple[str, ...]) -> None:
    import torch

    from vfx.comb.checkpoint import Manifest, PersonaRecord, save_checkpoint
    from vfx.comb.network import CombConfig, CombNetwork
    from vfx.demo import DEMO_MODEL_RESOLUTION, DEMO_MODEL_WIDTH

    torch.manual_seed(0)
    config = CombConfig(resolution=DEMO_MODEL_RESOLUTION, width=DEMO_MODEL_WIDTH, personas=personas)
    net = CombNetwork(config)
    net.grow(config.top_level)
    manifest = Manifest(config, tuple(PersonaRecord(p, (), f"{p}: benchmark") for p in personas),
                        level=config.top_level, alpha=1.0, step=1, level_step=1, lr=1e-4)
    save_checkpoint(run, net, torch.optim.Adam(net.parameters()), {}, manifest)


def _shot(base: Path, name: str, chunk: int) -> Path:
    from vfx.shot import load_shot, save_shot
    from vfx.shot.schema import FarmConfig

    shot = load_shot(base)
    out = base.parent / f"out_{name}"
    outputs = shot.outputs.model_copy(update={"exr": out / "demo_swap.####.exr", "review": out / "demo.mp4",
                                              "comp_package": out / "comp"})
    path = base.parent / f"{name}.yaml"
    save_shot(shot.model_copy(update={"outputs": outputs, "farm": FarmConfig(chunk_size=chunk)}), path)
    return path


def _forget(graph, stage: str) -> int:  # type: ignore[no-untyped-def]
    """Delete the task records of a stage, so its tasks run again (and find their frames on disk)."""
    tasks = graph.of_stage(stage)
    for task in tasks:
        (graph.folder / f"{task.id}.json").unlink(missing_ok=True)
    return len(tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=8, help="empty tasks per overhead measurement")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    args = parser.parse_args()

    from vfx.demo import PORTRAITS, build_demo
    from vfx.farm.graph import build_graph
    from vfx.farm.local import run_local
    from vfx.shot import load_shot, save_shot
    from vfx.shot.schema import ModelConfig

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_farm_"))
    try:
        result = build_demo(folder, num_frames=args.frames, size=args.size)
        _model(folder / "models" / "bench", PORTRAITS)
        from vfx.demo import DEMO_MODEL_RESOLUTION, DEMO_MODEL_WIDTH

        shot = load_shot(result.shot_file).model_copy(update={"model": ModelConfig(
            checkpoint=folder / "models" / "bench", resolution=DEMO_MODEL_RESOLUTION, width=DEMO_MODEL_WIDTH)})
        save_shot(shot, folder / "base.yaml")
        print(f"demo shot: {args.frames} frames of {args.size}², model {DEMO_MODEL_RESOLUTION}² width "
              f"{DEMO_MODEL_WIDTH}, chunk {args.chunk}")
        for workers in (1, 2):
            graph = build_graph(_shot(folder / "base.yaml", f"w{workers}", args.chunk))
            started = time.perf_counter()
            summary = run_local(graph, workers=workers, deterministic=True)
            seconds = time.perf_counter() - started
            if summary.exit_code:
                raise SystemExit(summary.describe())
            stages = {}
            for r in summary.ran:
                stages[r.task.split(".")[0]] = stages.get(r.task.split(".")[0], 0.0) + r.seconds
            print(f"local engine, {workers} worker(s): {len(graph.tasks)} tasks in {seconds:.1f} s = "
                  f"{args.frames / seconds:.2f} frames/s (task seconds by stage: "
                  + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()) + ")")

        # Overhead: one-frame swap chunks whose frames are all on disk. Their extract, track and package tasks
        # are those of the run above (the same ids), done; only the swap tasks run, start, plan and skip.
        from vfx.shot import FrameRange

        count = min(args.tasks, args.frames)
        empty = build_graph(folder / "w2.yaml", chunk=1, frames=FrameRange(graph.frames.frames[:count]))
        _forget(empty, "swap")
        started = time.perf_counter()
        run_local(empty, workers=1)
        local = (time.perf_counter() - started) / count
        print(f"local engine: {local:.2f} s per empty task ({count} swap tasks, 1 worker: a process each)")
        if not args.no_ray:
            import ray

            from vfx.farm.ray_engine import run_ray

            started = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                     object_store_memory=100 * 1024 * 1024)
            print(f"ray: local cluster started in {time.perf_counter() - started:.1f} s")
            try:
                for attempt in ("cold", "warm"):
                    _forget(empty, "swap")
                    started = time.perf_counter()
                    run_ray(empty, shutdown=False)
                    per = (time.perf_counter() - started) / count
                    print(f"ray engine ({attempt} workers): {per:.2f} s per empty task ({count} swap tasks, 2 CPUs)")
            finally:
                ray.shutdown()
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
