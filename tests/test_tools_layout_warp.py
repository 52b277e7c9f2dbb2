"""Smoke tests of the layout warp benchmark (tools/bench_layout_warp.py): its inputs, its memory estimate and
one quick run that times the sparse warp at two sizes and skips the dense baseline where it does not fit."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

from vfx.face.layout import FaceLabel

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_inputs_scale_with_the_crop():
    bench = _tool("bench_layout_warp")
    fractions = []
    for size in (64, 128):
        image, labels, edited = bench.build_inputs(size)
        assert image.shape == (3, size, size) and image.dtype == torch.float32
        assert labels.shape == edited.shape == (size, size)
        assert (labels == FaceLabel.UPPER_LIP).any() and not torch.equal(labels, edited)
        queries, fraction = bench.query_count(labels, edited)
        assert 0 < queries < size * size
        fractions.append(fraction)
    assert abs(fractions[0] - fractions[1]) < 0.01  # the edit covers the same share of every crop
    assert bench.dense_bytes(1000, 4096) == 2 * 4 * 1000 * 4096


def test_quick_run_prints_rows_and_skips_dense(capsys):
    bench = _tool("bench_layout_warp")
    # 64²: the dense estimate is a few MB and runs; 128²: about 55 MB, over the 20 MB cap.
    assert bench.main(["--sizes", "64", "128", "--repeats", "1", "--dense-limit-gb", "0.02",
                       "--threads", "1"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ") and "²" in line}
    assert set(rows) == {"64²", "128²"}
    assert "does not fit (needs 0.055 GB)" in rows["128²"] and "does not fit" not in rows["64²"]
    assert "failed" not in out
    assert "per doubling" in out.splitlines()[-1] and "dense at 64²" in out.splitlines()[-1]
