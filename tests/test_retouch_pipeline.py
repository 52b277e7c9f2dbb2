"""`vfx retouch` end to end on the generated demo shot: frames, mattes, resume, hand-off, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vfx.cli import entrypoint
from vfx.errors import ConfigError, MediaError
from vfx.io.image import read_image
from vfx.render.rendered import RETOUCH_MATTE_CHANNEL, read_rendered_frame
from vfx.retouch import plan_retouch, retouch_shot
from vfx.retouch.edits import edits_from_shot
from vfx.shot import load_shot, save_shot
from vfx.shot.layout import refiner_folder
from vfx.shot.schema import RetouchOptions

EDITS = [{"name": "smile", "group": "mouth", "keys": [{"frame": 1001}, {"frame": 1004, "move": [0, -0.03],
                                                                          "scale": [1.15, 1.0]}]},
         {"name": "brow", "group": "left_brow", "move": [0, -0.04]}]


@pytest.fixture(scope="module")
def retouch_setup(tmp_path_factory) -> Path:
    """The 8-frame 128² demo shot (astronaut EXR plate) with two edits; frame 1008 has no face."""
    from tests.test_swap import demo_without_face_on_1008

    folder = tmp_path_factory.mktemp("retouch")
    result = demo_without_face_on_1008(folder)
    shot = load_shot(result.shot_file)
    shot = shot.model_copy(update={
        "swap": None, "model": None, "retouch": edits_from_shot(EDITS),
        "retouch_options": RetouchOptions(resolution=64, refiner_seconds=3.0, refiner_samples=4, refiner_width=0.125),
        "outputs": shot.outputs.model_copy(update={"exr": None, "retouch": folder / "out" / "rt.####.exr",
                                                   "review": None, "comp_package": folder / "out" / "comp"}),
    })
    save_shot(shot, folder / "retouch.yaml")
    return folder / "retouch.yaml"


@pytest.fixture(scope="module")
def retouched(retouch_setup):
    shot = load_shot(retouch_setup)
    preview = retouch_setup.parent / "out" / "preview.png"
    summary = retouch_shot(shot, show_progress=False, workers=1, preview=preview)
    return shot, summary, preview


def _frame(shot, number: int):
    return read_rendered_frame(str(shot.outputs.retouch).replace("####", str(number)))


def _plate(shot, number: int) -> np.ndarray:
    return read_image(str(shot.plate.path).replace("####", str(number))).rgb()


def test_every_frame_is_written_with_the_retouch_matte_beside_the_matte(retouched):
    shot, summary, _ = retouched
    assert summary.rendered == 8 and summary.no_face == (1008,)
    frame = _frame(shot, 1005)
    retouch = frame.layers[RETOUCH_MATTE_CHANNEL]
    assert retouch.max() > 0.9 and 0 < (retouch > 0).mean() < 0.2
    assert np.array_equal(frame.matte, retouch)  # the plate retouched: nothing else changed
    assert frame.info.extra["retouch"] == "smile,brow" and frame.info.matrix is not None
    assert "retouched by vfx" in frame.metadata.extra["synthetic"]


def test_outside_the_retouch_matte_the_plate_is_bit_identical_and_inside_it_changes(retouched):
    shot, _, _ = retouched
    for number in (1002, 1006):
        plate = _plate(shot, number)
        frame = _frame(shot, number)
        outside = frame.layers[RETOUCH_MATTE_CHANNEL] == 0
        assert np.array_equal(frame.rgb[outside], plate[outside])
        inside = frame.layers[RETOUCH_MATTE_CHANNEL] > 0.5
        assert np.abs(frame.rgb[inside] - plate[inside]).mean() > 1e-3


def test_a_frame_without_a_face_passes_through_untouched(retouched):
    shot, _, _ = retouched
    frame = _frame(shot, 1008)
    assert np.array_equal(frame.rgb, _plate(shot, 1008)) and not frame.matte.any()


def test_the_preview_shows_original_layout_warp_and_refined(retouched):
    _, _, preview = retouched
    sheet = read_image(preview).rgb()
    assert sheet.shape[:2] == (64, 4 * 64)


def test_a_rerun_skips_the_frames_on_disk_and_reuses_the_refiner(retouched):
    shot, _, _ = retouched
    manifest = refiner_folder(shot) / "refiner.json"
    stamp = manifest.stat().st_mtime_ns
    again = retouch_shot(shot, show_progress=False, workers=1)
    assert again.rendered == 0 and again.skipped == 8
    assert manifest.stat().st_mtime_ns == stamp


def test_the_compositor_package_carries_the_retouch_matte(retouched):
    from vfx.export.comp import write_comp_package

    shot, _, _ = retouched
    summary = write_comp_package(shot, progress=False)
    package = summary.folder
    assert (package / "retouch_matte" / f"{shot.name}_retouch_matte.1005.exr").is_file()
    manifest = json.loads((package / "package.json").read_text())
    assert manifest["files"]["retouch_matte"] == f"retouch_matte/{shot.name}_retouch_matte.####.exr"


def test_one_edit_alone_is_rendered_with_edit(retouch_setup, tmp_path):
    shot = load_shot(retouch_setup)
    shot = shot.model_copy(update={"outputs": shot.outputs.model_copy(update={"retouch": tmp_path / "b.####.exr"}),
                                   "retouch_options": shot.retouch_options.model_copy(update={"refiner": False})})
    plan = plan_retouch(shot, edits=["brow"])
    assert [e.name for e in plan.edits] == ["brow"]


def test_bad_edits_are_refused_before_anything_is_written(retouch_setup, tmp_path):
    shot = load_shot(retouch_setup)
    out = tmp_path / "never"

    def with_edits(edits):
        return shot.model_copy(update={"retouch": edits,
                                       "outputs": shot.outputs.model_copy(update={"retouch": out / "x.####.exr"})})

    with pytest.raises(ConfigError) as err:
        plan_retouch(with_edits([{"name": "x", "kind": "relabel", "source": "cheek", "target": "skin"}]))
    assert "cheek" in str(err.value) and "upper_lip" in str(err.value)
    cv2.imwrite(str(tmp_path / "small.png"), np.zeros((32, 32), np.uint8))
    with pytest.raises(MediaError, match="wrong size"):
        plan_retouch(with_edits([{"name": "p", "kind": "paint", "keyframe": 1003, "map": str(tmp_path / "small.png")}]))
    with pytest.raises(ConfigError, match="no retouch edits"):
        plan_retouch(with_edits([]))
    assert not out.exists()


def test_an_edit_too_large_for_the_warp_warns_and_still_renders(retouch_setup, tmp_path):
    shot = load_shot(retouch_setup)
    shot = shot.model_copy(update={
        "retouch": edits_from_shot([{"name": "gape", "kind": "relabel", "source": "lower_lip", "target": "mouth"},
                                    {"name": "wide", "group": "mouth", "scale": [1.0, 2.5]}]),
        "retouch_options": shot.retouch_options.model_copy(update={"refiner_seconds": 1.0}),
        "outputs": shot.outputs.model_copy(update={"retouch": tmp_path / "g.####.exr"})})
    from vfx.shot.frames import FrameRange

    summary = retouch_shot(shot, frames=FrameRange.parse("1003-1004"), show_progress=False, workers=1)
    assert summary.rendered == 2
    assert any("mouth" in w and "refiner paints it" in w for w in summary.warnings), summary.warnings


def test_the_cli_exits_2_naming_the_regions_for_an_unknown_region(retouch_setup, tmp_path, capsys):
    shot = load_shot(retouch_setup)
    bad = shot.model_copy(update={"retouch": [{"name": "x", "kind": "relabel", "source": "cheek", "target": "skin"}]})
    save_shot(bad, tmp_path / "bad.yaml")
    code = entrypoint(["retouch", str(tmp_path / "bad.yaml"), "--device", "cpu"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "cheek" in err and "lower_lip" in err


def test_retouching_the_swapped_frames_keeps_the_swap_and_adds_its_own_matte(retouch_setup, tmp_path):
    from tests.test_swap import RES, save_tiny_model
    from vfx.shot.frames import FrameRange
    from vfx.shot.schema import ModelConfig, SwapConfig
    from vfx.swap import swap_shot

    save_tiny_model(tmp_path / "tiny")
    base = load_shot(retouch_setup)
    shot = base.model_copy(update={
        "model": ModelConfig(checkpoint=tmp_path / "tiny", resolution=RES, width=0.05),
        "swap": SwapConfig(persona="hopper"),
        "retouch_options": base.retouch_options.model_copy(update={"refiner": False}),
        "outputs": base.outputs.model_copy(update={"exr": tmp_path / "sw.####.exr", "retouch": tmp_path / "rt.####.exr",
                                                   "comp_package": None})})
    frames = FrameRange.parse("1004-1005")
    swap_shot(shot, frames=frames, show_progress=False, workers=1)
    summary = retouch_shot(shot, frames=frames, show_progress=False, workers=1)
    assert summary.rendered == 2
    swapped = read_rendered_frame(tmp_path / "sw.1005.exr")
    done = read_rendered_frame(tmp_path / "rt.1005.exr")
    retouch = done.layers[RETOUCH_MATTE_CHANNEL]
    assert retouch.max() > 0.9
    assert np.array_equal(done.matte, np.maximum(swapped.matte, retouch))
    assert np.array_equal(done.rgb[retouch == 0], swapped.rgb[retouch == 0])  # the swap, untouched
    assert done.info.persona == "hopper" and done.info.extra["retouch"] == "smile,brow"


def test_retouched_frames_also_go_out_in_the_plate_format(retouch_setup, tmp_path):
    from vfx.shot.frames import FrameRange

    shot = load_shot(retouch_setup)
    shot = shot.model_copy(update={
        "retouch_options": shot.retouch_options.model_copy(update={"refiner": False}),
        "outputs": shot.outputs.model_copy(update={"retouch": tmp_path / "rt.####.exr",
                                                   "frames": tmp_path / "fmt" / "sw.####.exr",
                                                   "comp_package": None})})
    retouch_shot(shot, frames=FrameRange.parse("1005"), show_progress=False, workers=1)
    copy = read_image(tmp_path / "fmt" / "sw_retouch.1005.exr")
    done = _frame(shot, 1005)
    assert copy.channels[:3] == ("R", "G", "B") and np.array_equal(copy.rgb(), done.rgb)


def test_the_farm_trains_the_refiner_once_and_retouches_in_chunks_as_one_run_would(retouch_setup, tmp_path):
    """`refiner` then `retouch` tasks of 3 frames (local engine): the chunks load the one refiner and give the
    frames a whole-shot retouch with that refiner gives."""
    from vfx.farm.graph import build_graph
    from vfx.farm.local import run_local
    from vfx.shot.layout import refiner_folder

    shot = load_shot(retouch_setup)
    shot = shot.model_copy(update={"outputs": shot.outputs.model_copy(update={
        "retouch": tmp_path / "rt.####.exr", "comp_package": None})})
    save_shot(shot, tmp_path / "farm.yaml")
    graph = build_graph(tmp_path / "farm.yaml", chunk=3)
    assert graph.stages == ("extract", "track", "refiner", "retouch")
    assert graph.stage_after["refiner"] == ("track",) and graph.stage_after["retouch"] == ("refiner",)
    summary = run_local(graph, workers=2)
    assert summary.exit_code == 0, summary.describe()
    manifest = next(refiner_folder(shot).glob("*.json"))
    trained = manifest.stat().st_mtime_ns
    chunked = {n: _frame(shot, n).rgb for n in range(1001, 1009)}
    for path in tmp_path.glob("rt.*.exr"):
        path.unlink()
    retouch_shot(shot, show_progress=False, workers=1)
    assert manifest.stat().st_mtime_ns == trained  # found, not trained again
    for number, rgb in chunked.items():
        assert np.array_equal(_frame(shot, number).rgb, rgb), number
