"""A short run of tools/fuzz_shot.py: mutated shot files through `vfx shot validate` find nothing (no exception other
than vfx.errors, no run over a second, memory bounded). Longer runs: `python tools/fuzz_shot.py --iterations 3000`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "fuzz_shot.py"


def _tool():
    spec = importlib.util.spec_from_file_location("fuzz_shot", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_shot"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", [17])
def test_fuzzing_shot_validate_finds_nothing(seed, tmp_path):
    fuzz = _tool()
    # 2 s, not 1: a shared test machine runs other tests beside this one; the tool's own default is 1 s.
    stats = fuzz.fuzz(200, seed, max_seconds=2.0, max_mb=256.0, keep=tmp_path / "findings")
    assert stats.iterations == 200
    assert sum(stats.exits.values()) == 200 and stats.exits[2] > 100, stats.exits
    assert not stats.findings, fuzz.summary(stats, seed)


def test_mutations_are_reproducible_from_the_seed():
    import random

    fuzz = _tool()
    seeds = fuzz.seed_texts(None)
    a = [fuzz.mutate(seeds[i % len(seeds)], random.Random(i)) for i in range(50)]
    b = [fuzz.mutate(seeds[i % len(seeds)], random.Random(i)) for i in range(50)]
    assert a == b and len({x if isinstance(x, bytes) else x.encode("utf-8", "surrogatepass") for x in a}) > 40


def test_a_plate_path_with_two_frame_groups_is_exit_2(tmp_path, capsys):
    from vfx.cli import entrypoint

    path = tmp_path / "shot.yaml"
    path.write_text("schema: vfx.Shot/1\nname: sh010\nplate:\n  path: a.####.b.####.exr\n  frames: 1001-1010\n"
                    "  fps: 24\n  colorspace: ACEScg\n")
    code = entrypoint(["shot", "validate", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err


def _validate(tmp_path, capsys, plate_lines: str) -> tuple[int, str]:
    from vfx.cli import entrypoint

    path = tmp_path / "shot.yaml"
    path.write_text(f"schema: vfx.Shot/1\nname: sh010\nplate:\n{plate_lines}  fps: 24\n  colorspace: ACEScg\n")
    code = entrypoint(["shot", "validate", str(path)])
    return code, capsys.readouterr().err


def test_a_huge_frame_number_is_exit_2(tmp_path, capsys):
    code, err = _validate(tmp_path, capsys, "  path: a.####.exr\n  frames: -999999999999999999999999999999\n")
    assert code == 2 and "Traceback" not in err, err


def test_a_frame_token_in_a_folder_name_is_exit_2(tmp_path, capsys):
    code, err = _validate(tmp_path, capsys, "  path: d.####/c.####.exr\n  frames: 1001-1010\n")
    assert code == 2 and "Traceback" not in err, err
