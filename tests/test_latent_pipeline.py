"""`vfx edit labels / learn / apply` end to end on the generated demo shot: vector, frames, mattes, bad input."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vfx.cli import entrypoint
from vfx.edit.vectors import load_edit_vector, save_edit_vector
from vfx.face.layout import LABEL_COLOURS, FaceLabel
from vfx.io.image import read_image
from vfx.render.rendered import EDIT_MATTE_CHANNEL, read_rendered_frame
from vfx.retouch.edits import edits_from_shot
from vfx.shot import load_shot, save_shot
from vfx.shot.layout import edit_sequence, rendered_sequence
from vfx.shot.schema import EditOptions, EditVectorConfig, ModelConfig, StrengthKey
from vfx.swap import swap_shot

SCALE = 4


@pytest.fixture(scope="module")
def edit_setup(tmp_path_factory) -> Path:
    """The 8-frame 128² demo shot swapped with a tiny model; frame 1008 has no face. The segmentation head of
    hopper learns from the plate's own faces decoded as hopper (the swap keeps the plate's expression)."""
    from tests.test_swap import RES, demo_without_face_on_1008, save_tiny_model
    folder = tmp_path_factory.mktemp("edit")
    result = demo_without_face_on_1008(folder)
    save_tiny_model(folder / "models" / "tiny")
    shot = load_shot(result.shot_file)
    shot = shot.model_copy(update={
        "model": ModelConfig(checkpoint=folder / "models" / "tiny", resolution=RES, width=0.05),
        "edit_options": EditOptions(refine_steps=2, keyframe_steps=10, seg_head_steps=20),
        "outputs": shot.outputs.model_copy(update={"review": None, "comp_package": None}),
    })
    swap_shot(shot, show_progress=False, workers=1)
    personas = dict(shot.personas)
    # hopper's faceset: a copy of the plate's faces (the shot writes its own faces cache; an input never is one)
    shutil.copytree(folder / "out" / "demo_plate_faces", folder / "hopper_faces")
    personas["hopper"] = personas["hopper"].model_copy(update={"footage": None, "faceset": folder / "hopper_faces"})
    save_shot(shot.model_copy(update={"personas": personas}), folder / "edit.yaml")
    return folder / "edit.yaml"


@pytest.fixture(scope="module")
def painted(edit_setup) -> Path:
    """The keyframe's segmentation from `vfx edit labels`, with a block painted as upper lip."""
    out = edit_setup.parent / "paint" / "k1004.png"
    assert entrypoint(["edit", "labels", str(edit_setup), "--keyframe", "1004", "--out", str(out),
                       "--scale", str(SCALE), "--workers", "1"]) == 0
    assert out.with_name("k1004_face.png").is_file()
    bgr = cv2.imread(str(out))
    assert bgr.shape[:2] == (32 * SCALE, 32 * SCALE)
    bgr[18 * SCALE:22 * SCALE, 12 * SCALE:20 * SCALE] = LABEL_COLOURS[FaceLabel.UPPER_LIP][::-1]
    cv2.imwrite(str(out.with_name("edited.png")), bgr)
    return out.with_name("edited.png")


@pytest.fixture(scope="module")
def learned(edit_setup, painted) -> Path:
    vector = edit_setup.parent / "edits" / "learned.vfxedit"
    assert entrypoint(["edit", "learn", str(edit_setup), "--keyframe", "1004", "--labels", str(painted),
                       "--out", str(vector), "--workers", "1"]) == 0
    return vector


def _frame(pattern: str, number: int):
    return read_rendered_frame(pattern.replace("####", str(number)))


def test_learn_writes_a_vector_bound_to_the_model_with_a_preview(learned, edit_setup, capsys):
    vector = load_edit_vector(learned)
    info = json.loads((learned / "edit.json").read_text())
    assert info["schema"] == "vfx.EditVector/1" and vector.persona == "hopper" and len(vector.fingerprint) == 16
    assert int(FaceLabel.UPPER_LIP) in vector.classes and vector.source["keyframe"] == 1004
    assert {"iou", "outside_psnr", "delta_norm"} <= set(vector.metrics)
    assert (learned / "preview.png").is_file()
    heads = list((edit_setup.parent / "models" / "tiny" / "segmentation").glob("hopper-*.json"))
    assert len(heads) == 1 and json.loads(heads[0].read_text())["fingerprint"] == vector.fingerprint


@pytest.fixture(scope="module")
def strong(learned) -> Path:
    """A vector of the learned one's model that surely changes this untrained model's segmentation: a large
    offset, every label in Q (the learned δ of a 10-step edit on random weights may move nothing)."""
    vector = load_edit_vector(learned)
    torch.manual_seed(0)
    delta = 300.0 * torch.nn.functional.normalize(torch.randn_like(vector.delta), dim=0)  # random weights barely respond
    return save_edit_vector(learned.with_name("lip.vfxedit"), replace(vector, delta=delta, classes=tuple(range(8))))


@pytest.fixture(scope="module")
def applied(edit_setup, strong):
    assert entrypoint(["edit", "apply", str(edit_setup), "--vector", str(strong), "--strength", "1001:0,1007:1",
                       "--workers", "1"]) == 0
    return load_shot(edit_setup)


def test_apply_edits_inside_the_region_only_and_keeps_the_swap_elsewhere(applied):
    shot = applied
    swapped, edited = str(shot.outputs.exr), edit_sequence(shot).pattern
    first = _frame(edited, 1001)  # s = 0: the swap itself
    assert np.array_equal(first.rgb, _frame(swapped, 1001).rgb) and not first.layers[EDIT_MATTE_CHANNEL].any()
    changed = 0
    for number in (1004, 1007):
        swap, frame = _frame(swapped, number), _frame(edited, number)
        matte = frame.layers[EDIT_MATTE_CHANNEL]
        outside = matte == 0
        assert np.array_equal(frame.rgb[outside], swap.rgb[outside])
        assert np.array_equal(frame.matte, np.maximum(swap.matte, matte))
        assert not matte[swap.matte == 0].any()  # never past the swapped face
        changed += int((frame.rgb[~outside] != swap.rgb[~outside]).any())
        assert frame.info.extra["edit"] == "lip" and frame.info.persona == "hopper"
    assert changed >= 1
    assert float(_frame(edited, 1007).info.extra["edit_strength"]) == 1.0
    assert float(_frame(edited, 1004).info.extra["edit_strength"]) == pytest.approx(0.5)
    no_face = _frame(edited, 1008)
    assert np.array_equal(no_face.rgb, _frame(swapped, 1008).rgb)


def test_apply_resumes_and_the_shot_file_names_the_finished_frames(applied, edit_setup, strong, capsys):
    capsys.readouterr()
    assert entrypoint(["edit", "apply", str(edit_setup), "--vector", str(strong), "--workers", "1"]) == 0
    assert "edited 0, already on disk 8" in capsys.readouterr().out
    shot = load_shot(edit_setup).model_copy(update={"edit_vectors": [EditVectorConfig(
        vector=strong, strength=[StrengthKey(frame=1001, value=0.0), StrengthKey(frame=1007, value=1.0)])]})
    assert rendered_sequence(shot).pattern == edit_sequence(shot).pattern


def test_bad_labels_a_faceless_keyframe_and_another_models_vector_exit_2_writing_nothing(
        edit_setup, painted, learned, tmp_path, capsys):
    from tests.test_swap import save_tiny_model

    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((20, 20), np.uint8))
    unknown = tmp_path / "unknown.png"
    bgr = cv2.imread(str(painted))
    bgr[0, 0] = (1, 2, 3)
    cv2.imwrite(str(unknown), bgr)
    for labels, keyframe in ((small, "1004"), (unknown, "1004"), (painted, "1008")):
        out = tmp_path / f"v_{labels.stem}_{keyframe}.vfxedit"
        assert entrypoint(["edit", "learn", str(edit_setup), "--keyframe", keyframe, "--labels", str(labels),
                           "--out", str(out), "--workers", "1"]) == 2
        assert not out.exists()
    err = capsys.readouterr().err
    assert "wrong size" in err and "No face on keyframe 1008" in err
    other = load_shot(edit_setup)
    save_tiny_model(tmp_path / "retrained", seed=1)
    other = other.model_copy(update={
        "model": other.model.model_copy(update={"checkpoint": tmp_path / "retrained"}),
        "outputs": other.outputs.model_copy(update={"edit": tmp_path / "out" / "e.####.exr"})})
    save_shot(other, tmp_path / "other.yaml")
    assert entrypoint(["edit", "apply", str(tmp_path / "other.yaml"), "--vector", str(learned), "--workers", "1"]) == 2
    assert "learned on another model" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("e.*.exr"))
    assert entrypoint(["edit", "apply", str(edit_setup), "--strength", "1"]) == 2


def test_the_compositor_package_carries_the_edit_matte(applied, strong, tmp_path):
    from vfx.export.comp import write_comp_package

    shot = applied.model_copy(update={"edit_vectors": [EditVectorConfig(vector=strong)]})
    write_comp_package(shot, tmp_path / "comp", progress=False)
    manifest = json.loads((tmp_path / "comp" / "package.json").read_text())
    assert manifest["files"]["edit_matte"] == f"edit_matte/{shot.name}_edit_matte.####.exr"
    matte = read_image(tmp_path / "comp" / "edit_matte" / f"{shot.name}_edit_matte.1007.exr")
    assert matte.pixels.max() > 0


def test_a_layout_retouch_of_an_edited_shot_starts_from_the_edited_frames(applied, strong):
    from vfx.retouch import plan_retouch

    shot = applied.model_copy(update={"edit_vectors": [EditVectorConfig(vector=strong)],
                                      "retouch": edits_from_shot([{"name": "brow", "group": "left_brow", "move": [0, -0.04]}])})
    plan = plan_retouch(shot)
    assert plan.source == "swap" and plan.swap_frames.pattern == edit_sequence(shot).pattern


def test_farm_edit_chunks_with_a_halo_match_the_whole_apply(applied, edit_setup, strong, tmp_path):
    """Edit tasks of 3 frames, each refining the 3 frames before it without writing them: where the halo
    reaches back to the shot's start the chunk is the whole run's frame for frame; further on, the warm start
    arrives close to the whole run's."""
    from vfx.farm.task import run_task
    from vfx.shot import FrameRange
    from vfx.shot.schema import FarmConfig

    shot = load_shot(edit_setup).model_copy(update={
        "edit_vectors": [EditVectorConfig(vector=strong, strength=[StrengthKey(frame=1001, value=0.0),
                                                                    StrengthKey(frame=1007, value=1.0)])],
        "farm": FarmConfig(chunk_size=3, halo=3)})
    shot = shot.model_copy(update={"outputs": shot.outputs.model_copy(update={"edit": tmp_path / "e.####.exr"})})
    shot_file = edit_setup.with_name("farm_edit.yaml")
    save_shot(shot, shot_file)
    assert run_task(shot_file, "seghead").state == "done"
    for chunk in ("1001-1003", "1004-1006", "1007-1008"):
        record = run_task(shot_file, "edit", FrameRange.parse(chunk))
        assert record.state == "done" and record.frames_done == len(FrameRange.parse(chunk))
    whole, chunked = edit_sequence(applied).pattern, str(tmp_path / "e.####.exr")
    for number in range(1001, 1007):
        assert np.array_equal(_frame(chunked, number).rgb, _frame(whole, number).rgb), number
    near = _frame(chunked, 1007)
    reference = _frame(whole, 1007)
    inside = reference.layers[EDIT_MATTE_CHANNEL] > 0
    change = np.abs(reference.rgb - _frame(str(applied.outputs.exr), 1007).rgb)[inside].mean()
    assert np.abs(near.rgb - reference.rgb)[inside].mean() <= 0.25 * change
