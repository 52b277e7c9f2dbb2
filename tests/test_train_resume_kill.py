"""Kill -9 during training's checkpoint writes, then resume: every time a valid checkpoint loads and training
continues, and the end is exactly an uninterrupted run's (bit-identical weights, equal loss history).

A child process trains a tiny comb network (16², width 0.05, a checkpoint every iteration, the newest 2 kept).
Its checkpoint writer is instrumented from the outside, in the child only (no hook in the toolkit): every weights
file is written in two halves, and every step of a checkpoint write (each half of ``model.safetensors`` and
``optimizer.safetensors``, the manifest, the folder's rename, the pruning of old checkpoints) prints a mark and
pauses, so a kill at a random moment after a random mark lands inside a write: a half-written weights file, a
temporary folder without its manifest, a renamed folder whose predecessor is being pruned. The parent picks the
mark and the delay from a seeded generator, kills with SIGKILL, checks the run's newest checkpoint (manifest,
headers, then a full load), and starts the child again with ``resume``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from vfx.comb.checkpoint import check_checkpoint, latest_checkpoint, load_checkpoint, read_manifest

ROOT = Path(__file__).resolve().parents[1]

CHILD = r'''
import os, sys, time
import numpy as np
import torch

torch.set_num_threads(1)
import safetensors.torch as st

from vfx.comb import checkpoint as ck
from vfx.comb.checkpoint import latest_checkpoint, read_manifest
from vfx.comb.data import PersonaData
from vfx.comb.train import TrainConfig, train_comb
from vfx.utils import stamped

run, pause = sys.argv[1], float(sys.argv[2])


def mark(what):
    print(what, flush=True)
    if pause:
        time.sleep(pause)


def save_file(tensors, filename, metadata=None):  # the same bytes, written in two halves with a pause between
    data = st.save(tensors, metadata=metadata)
    name = os.path.basename(filename)
    with open(filename, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        mark(f"half {name}")
        f.write(data[len(data) // 2:])
    mark(f"wrote {name}")


st.save_file = save_file
write_text = stamped.atomic_write_text
stamped.atomic_write_text = lambda path, text: (mark("manifest"), write_text(path, text), mark("manifest written"))
replace = os.replace
os.replace = lambda a, b: (mark(f"rename {os.path.basename(str(b))}"), replace(a, b))
remove = ck._remove_checkpoint
ck._remove_checkpoint = lambda folder: (mark(f"prune {folder.name}"), remove(folder))


def persona(name, seed, count=6, size=16):
    rng = np.random.default_rng(seed)
    base = rng.random((1, size, size, 3))
    images = np.clip(base + rng.normal(0, 0.05, (count, size, size, 3)), 0, 1)
    masks = np.zeros((count, size, size))
    masks[:, 3:-3, 3:-3] = 1.0
    return PersonaData.from_arrays(name, images, masks)


newest = latest_checkpoint(run)
print(f"start {read_manifest(newest).step if newest is not None else 0}", flush=True)
config = TrainConfig(iters_per_level=int(sys.argv[3]), fine_tune_iters=int(sys.argv[4]), batch_size=2,
                     checkpoint_every=1, keep_checkpoints=2, log_every=3)
_, manifest = train_comb({"p0": persona("p0", 0), "p1": persona("p1", 1)}, run, resolution=16, width=0.05,
                         config=config, resume=newest is not None)
print(f"done {manifest.step}", flush=True)
'''


def _child(tmp_path: Path, run: Path, pause: float, iters: int, fine: int) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    if not script.exists():
        script.write_text(CHILD)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(script), str(run), str(pause), str(iters), str(fine)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{out[-2000:]}\n{err[-4000:]}"
    return out


def _kill_and_resume(tmp_path: Path, kills: int, seed: int, iters: int, fine: int) -> list[str]:
    """Kill the training ``kills`` times at random points, resume each time, finish; return where each kill landed."""
    rng = random.Random(seed)
    run = tmp_path / "killed"
    landed, last_step = [], 0
    for _ in range(kills):
        proc = _child(tmp_path, run, 0.02, iters, fine)
        assert proc.stdout is not None
        start = proc.stdout.readline().split()
        assert start and start[0] == "start", f"child did not start: {start} {proc.stderr.read()[-3000:] if proc.stderr else ''}"
        assert int(start[1]) >= last_step, "resume went back to an older checkpoint"
        marks, line = rng.randint(1, 12), ""
        for _ in range(marks):
            line = proc.stdout.readline().strip()
            assert line and not line.startswith("done"), f"the run ended before kill {len(landed) + 1}: {line!r}"
        time.sleep(rng.uniform(0.0, 0.03))  # inside the pause after the mark, or the next operation
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
        landed.append(line)
        newest = latest_checkpoint(run)
        if newest is not None:  # what the next resume reads: it checks out and loads
            manifest = check_checkpoint(newest, optimizer=True)
            load_checkpoint(newest)
            last_step = manifest.step
    out = _finish(_child(tmp_path, run, 0.0, iters, fine))
    assert out.splitlines()[0] == f"start {last_step}" and out.splitlines()[-1].startswith("done")
    return landed


def _assert_same_run(a: Path, b: Path) -> None:
    ca, cb = latest_checkpoint(a), latest_checkpoint(b)
    assert ca is not None and cb is not None and ca.name == cb.name
    for file in ("model.safetensors", "optimizer.safetensors"):
        x, y = load_file(str(ca / file)), load_file(str(cb / file))
        assert x.keys() == y.keys(), file
        for name in x:
            assert x[name].dtype == y[name].dtype and x[name].shape == y[name].shape, name
            assert x[name].view(-1).view_as(x[name]).equal(y[name]), f"{file}: {name} differs"
    assert (ca / "model.safetensors").read_bytes() == (cb / "model.safetensors").read_bytes()
    ma, mb = read_manifest(ca), read_manifest(cb)
    assert ma.losses == mb.losses and ma.step == mb.step and len(ma.losses) >= 3


def _run(tmp_path: Path, kills: int, seed: int, iters: int, fine: int) -> None:
    reference = tmp_path / "straight"
    _finish(_child(tmp_path, reference, 0.0, iters, fine))
    landed = _kill_and_resume(tmp_path, kills, seed, iters, fine)
    assert len(landed) == kills
    print(f"{kills} kills, each after the mark: " + "; ".join(landed))  # shown with pytest -s
    _assert_same_run(reference, tmp_path / "killed")


def test_kill_9_during_checkpoint_writes_then_resume(tmp_path):
    """Three kills (the fast variant, run by default)."""
    _run(tmp_path, kills=3, seed=17, iters=2, fine=1)


@pytest.mark.slow
def test_kill_9_at_20_random_points_then_resume(tmp_path):
    """Twenty kills at random points spanning checkpoint writes (about a minute)."""
    _run(tmp_path, kills=20, seed=2026, iters=8, fine=6)
