"""Smoke tests of the swap evaluation and benchmark tools' helpers (tools/eval_swap.py, bench_blend.py, bench_swap.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_window_fps_sees_a_slowdown():
    bench_swap = _tool("bench_swap")
    steady = [i * 0.1 for i in range(50)]
    first, last, k = bench_swap.window_fps(steady)
    assert k == 5 and first == pytest.approx(10.0) and last == pytest.approx(10.0)
    slowing = [i * 0.1 + 0.002 * i * i for i in range(50)]
    first, last, _ = bench_swap.window_fps(slowing[::-1])  # finish order does not matter
    assert last < 0.6 * first


def test_random_model_opens_for_swapping(tmp_path):
    import torch

    from vfx.swap.swapper import FaceSwapper, open_swap_model

    bench_swap = _tool("bench_swap")
    run = bench_swap.make_model(tmp_path / "run", 16, 0.05)
    model = open_swap_model(run, persona="a", resolution=16)
    swapper = FaceSwapper(model, "a")
    swapped, blended = swapper(torch.rand(2, 3, 16, 16), torch.ones(2, 1, 16, 16))
    assert swapped.shape == blended.shape == (2, 3, 16, 16) and torch.isfinite(blended).all()


def test_synthetic_swap_plate_frames(tmp_path):
    from vfx.io.image import read_image

    bench_swap = _tool("bench_swap")
    pattern, colorspace = bench_swap.make_plate(tmp_path, (90, 160), 2, "png")
    assert colorspace.startswith("sRGB")
    frame = read_image(pattern.replace("####", "1001")).rgb()
    assert frame.shape == (90, 160, 3) and 0.0 <= frame.min() and frame.max() <= 1.0


def test_blend_plate_face_is_a_third_of_the_height():
    bench_blend = _tool("bench_blend")
    from vfx.face.mask import face_polygon

    landmarks = np.array([(100 + 50 * np.cos(a), 120 + 60 * np.sin(a)) for a in np.linspace(0, 6, 68)])
    landmarks[36:42], landmarks[42:48] = (80.0, 100.0), (120.0, 100.0)
    still = np.random.default_rng(0).random((240, 200, 3)).astype(np.float32)
    plate, moved = bench_blend.make_plate(still, landmarks, (1080, 1920))
    assert plate.shape == (1080, 1920, 3) and plate.dtype == np.float32
    assert np.ptp(face_polygon(moved)[:, 1]) == pytest.approx(360.0, rel=1e-6)


def test_eval_notes_missing_persona_facesets(tmp_path):
    from vfx.comb.checkpoint import Manifest, PersonaRecord
    from vfx.comb.network import CombConfig

    eval_swap = _tool("eval_swap")
    manifest = Manifest(CombConfig(resolution=16, width=0.05, personas=("x", "y")),
                        (PersonaRecord("x", (str(tmp_path / "gone"),)), PersonaRecord("y")), 2, 1.0, 1, 1, 1e-4)
    mean, note = eval_swap.persona_descriptor(manifest, "x", describer=None, limit=10)
    assert mean is None and "not found" in note and "gone" in note
