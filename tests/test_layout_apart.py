"""No output may resolve onto an input: the path arithmetic of :func:`vfx.shot.layout.check_apart`."""

from __future__ import annotations

from pathlib import Path

import pytest

from vfx.errors import ConfigError
from vfx.shot.layout import Place, check_apart, check_outputs_apart, shot_inputs, shot_outputs


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "plates").mkdir()
    for frame in (1001, 1002):
        (tmp_path / "plates" / f"sh.{frame}.exr").write_bytes(b"x")
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "a.mp4").write_bytes(b"x")
    (tmp_path / "models" / "run").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "plates")
    (tmp_path / "footage.mp4").symlink_to(tmp_path / "media" / "a.mp4")
    return tmp_path


def inputs(tree: Path) -> list[Place]:
    return [Place("the plate", tree / "plates" / "sh.####.exr", "sequence"),
            Place("the footage", tree / "media" / "a.mp4", "file"),
            Place("the model", tree / "models" / "run", "folder")]


@pytest.mark.parametrize(("out", "kind", "hit"), [
    ("plates/sh.####.exr", "sequence", "the plate"),
    ("plates/sh.%04d.exr", "sequence", "the plate"),  # another spelling of the same files
    ("plates/sh.#####.exr", "sequence", "the plate"),  # other padding: frame 10000 and up share files
    ("link/sh.####.exr", "sequence", "the plate"),  # through a symlinked folder
    ("plates/sh.1001.exr", "file", "the plate"),
    ("plates", "folder", "the plate"),  # a package written into the plate's folder
    (".", "folder", "the plate"),  # or around it
    ("media/a.mp4", "file", "the footage"),
    ("footage.mp4", "file", "the footage"),  # a symlink to it
    ("models/run/out.####.exr", "sequence", "the model"),
    ("models/run/review.mp4", "file", "the model"),
    ("models", "folder", "the model"),
])
def test_outputs_onto_inputs_are_refused(tree, out, kind, hit):
    with pytest.raises(ConfigError, match=f"would overwrite {hit}") as caught:
        check_apart(Place("the output", tree / out, kind), inputs(tree))
    assert "Fix:" in str(caught.value) and "Found:" in str(caught.value)


@pytest.mark.parametrize(("out", "kind"), [
    ("plates/sh_swap.####.exr", "sequence"),  # another name in the plate's folder
    ("plates/other.1001.exr", "file"),
    ("out/sh.####.exr", "sequence"),
    ("media/b.mp4", "file"),
    ("media/a_side_by_side.mp4", "file"),
    ("out/comp", "folder"),
    ("models/run2", "folder"),  # a sibling run, not inside the model
])
def test_outputs_beside_inputs_are_fine(tree, out, kind):
    check_apart(Place("the output", tree / out, kind), inputs(tree))


def test_the_demo_shot_keeps_its_outputs_apart(demo_shot):
    from vfx.shot import load_shot

    shot = load_shot(demo_shot)
    check_outputs_apart(shot)
    names = {p.what for p in shot_outputs(shot)}
    assert {"outputs.review", "the plate's tracked faces", "the farm's task records"} <= names
    assert {"the plate", "personas.hopper.footage"} <= {p.what for p in shot_inputs(shot)}
    changed = shot.model_copy(update={"outputs": shot.outputs.model_copy(update={"exr": shot.plate.path})})
    with pytest.raises(ConfigError, match="overwrite the plate"):
        check_outputs_apart(changed)
