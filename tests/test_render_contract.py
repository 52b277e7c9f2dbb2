"""The contract every frame stage (swap, latent edit, layout retouch) keeps, through the one render loop.

One parametrised suite on the 8-frame 128² demo shot (frame 1008 has no face), the three stages chained
swap -> edit -> retouch as a shot runs them:

- every frame is written;
- every bit outside the stage's own matte is the stage's source frame's (the plate for the swap, the swap for
  the edit, the edit for the retouch);
- a frame without a face passes through untouched;
- a rerun renders nothing;
- chunked equals whole (the latent edit's chunks warm-start on the frames before them, as a farm halo does);
- the plate is opened once per stage run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vfx.edit.pipeline import learn_shot_edit, plan_edit_apply, run_edit_apply, write_keyframe_labels
from vfx.edit.vectors import load_edit_vector, save_edit_vector
from vfx.face.layout import LABEL_COLOURS, FaceLabel
from vfx.io.image import read_image
from vfx.io.plate import Plate
from vfx.render.rendered import EDIT_MATTE_CHANNEL, RETOUCH_MATTE_CHANNEL, read_rendered_frame
from vfx.retouch import plan_retouch, run_retouch
from vfx.shot import FrameRange, load_shot, save_shot
from vfx.shot.layout import edit_sequence, source_sequence, stage_output
from vfx.shot.schema import EditOptions, EditVectorConfig, ModelConfig, RetouchOptions, StrengthKey
from vfx.swap import plan_swap, run_swap

STAGES = ("swap", "edit", "retouch")
OWN_MATTE = {"swap": "A", "edit": EDIT_MATTE_CHANNEL, "retouch": RETOUCH_MATTE_CHANNEL}
FRAMES = tuple(range(1001, 1009))
NO_FACE = 1008


def _plan(shot, stage: str, frames: FrameRange | None = None):
    if stage == "swap":
        return plan_swap(shot, frames=frames)
    if stage == "edit":
        return plan_edit_apply(shot, frames=frames)
    return plan_retouch(shot, frames=frames)


def _run(plan, stage: str, warmup: tuple[int, ...] = ()):
    if stage == "swap":
        return run_swap(plan, show_progress=False, workers=1)
    if stage == "edit":
        return run_edit_apply(plan, show_progress=False, workers=1, warmup=warmup)
    return run_retouch(plan, show_progress=False, workers=1)


@pytest.fixture(scope="module")
def chained(tmp_path_factory) -> tuple[Path, dict]:
    """The demo shot with a tiny model, an edit vector and a retouch edit, rendered stage by stage."""
    return build_chain(tmp_path_factory.mktemp("contract"))


def build_chain(folder: Path, change_plate: Callable[[Path], None] | None = None,
                comp_package: bool = False) -> tuple[Path, dict]:
    """The chained shot of :func:`chained` in ``folder``; ``change_plate(plates_folder)`` rewrites the plate
    first (an overscan plate, say)."""
    from tests.test_swap import RES, demo_without_face_on_1008, save_tiny_model

    result = demo_without_face_on_1008(folder)
    if change_plate is not None:
        change_plate(folder / "plates")
    save_tiny_model(folder / "models" / "tiny")
    shot = load_shot(result.shot_file)
    personas = dict(shot.personas)
    shot = shot.model_copy(update={
        "model": ModelConfig(checkpoint=folder / "models" / "tiny", resolution=RES, width=0.05),
        "edit_options": EditOptions(refine_steps=2, keyframe_steps=10, seg_head_steps=20),
        "retouch_options": RetouchOptions(resolution=64, refiner=False),
        "outputs": shot.outputs.model_copy(update={"review": None, "comp_package": folder / "comp" if comp_package
                                                   else None}),
    })
    summaries = {"swap": run_swap(plan_swap(shot), show_progress=False, workers=1)}
    # hopper's faceset: a copy of the plate's faces (the shot writes its own faces cache; an input never is one)
    shutil.copytree(folder / "out" / "demo_plate_faces", folder / "hopper_faces")
    personas["hopper"] = personas["hopper"].model_copy(update={"footage": None, "faceset": folder / "hopper_faces"})
    shot = shot.model_copy(update={"personas": personas})
    labels, _ = write_keyframe_labels(shot, keyframe=1004, out=folder / "paint" / "k1004.png", scale=1, workers=1)
    bgr = cv2.imread(str(labels))
    bgr[18:22, 12:20] = LABEL_COLOURS[FaceLabel.UPPER_LIP][::-1]
    cv2.imwrite(str(labels.with_name("edited.png")), bgr)
    learned = learn_shot_edit(shot, keyframe=1004, labels=labels.with_name("edited.png"),
                              out=folder / "edits" / "learned.vfxedit", workers=1).vector
    # The untrained model barely responds to a 10-step edit: a large offset on every label surely changes it.
    vector = load_edit_vector(learned)
    torch.manual_seed(0)
    delta = 300.0 * torch.nn.functional.normalize(torch.randn_like(vector.delta), dim=0)
    save_edit_vector(folder / "edits" / "lips.vfxedit", replace(vector, delta=delta, classes=tuple(range(8))))
    shot = shot.model_copy(update={
        "edit_vectors": [EditVectorConfig(vector=folder / "edits" / "lips.vfxedit",
                                          strength=[StrengthKey(frame=1001, value=0.5), StrengthKey(frame=1008, value=1)])],
        "retouch": [{"name": "brow", "group": "left_brow", "move": [0, -0.04]}],
    })
    save_shot(shot, folder / "contract.yaml")
    shot = load_shot(folder / "contract.yaml")
    summaries["edit"] = _run(_plan(shot, "edit"), "edit")
    summaries["retouch"] = _run(_plan(shot, "retouch"), "retouch")
    return folder / "contract.yaml", summaries


def _source_rgb(shot, stage: str, frame: int) -> np.ndarray:
    source = source_sequence(shot, stage)
    if source is not None:
        return read_rendered_frame(source.path(frame)).rgb
    return read_image(str(shot.plate.path).replace("####", str(frame))).rgb()


@pytest.mark.parametrize("stage", STAGES)
def test_every_frame_is_written(chained, stage):
    shot_file, summaries = chained
    shot = load_shot(shot_file)
    assert summaries[stage].rendered == len(FRAMES) and summaries[stage].no_face == (NO_FACE,)
    assert stage_output(shot, stage).missing(FRAMES) == []


@pytest.mark.parametrize("stage", STAGES)
def test_every_bit_outside_the_matte_is_the_source(chained, stage):
    shot = load_shot(chained[0])
    changed = 0
    for frame in FRAMES:
        out = read_rendered_frame(stage_output(shot, stage).path(frame))
        matte = out.matte if OWN_MATTE[stage] == "A" else out.layers[OWN_MATTE[stage]]
        outside = matte == 0
        source = _source_rgb(shot, stage, frame)
        assert np.array_equal(out.rgb[outside], source[outside]), (stage, frame)
        changed += int((~outside).sum())
    assert changed > 0, f"the {stage} changed nothing"


@pytest.mark.parametrize("stage", STAGES)
def test_a_frame_without_a_face_passes_through(chained, stage):
    shot = load_shot(chained[0])
    out = read_rendered_frame(stage_output(shot, stage).path(NO_FACE))
    matte = out.matte if OWN_MATTE[stage] == "A" else out.layers[OWN_MATTE[stage]]
    assert not matte.any()
    assert np.array_equal(out.rgb, _source_rgb(shot, stage, NO_FACE))


@pytest.mark.parametrize("stage", STAGES)
def test_a_rerun_renders_nothing_and_opens_the_plate_once(chained, stage):
    shot = load_shot(chained[0])
    before = Plate.opened
    summary = _run(_plan(shot, stage), stage)
    assert summary.rendered == 0 and summary.skipped == len(FRAMES)
    assert Plate.opened - before == 1


@pytest.mark.parametrize("stage", STAGES)
def test_a_run_opens_the_plate_once(chained, stage, tmp_path):
    """A chunk with frames to render (the faces already tracked, as on a farm after the track task)."""
    shot = load_shot(chained[0])
    shot = _elsewhere(shot, stage, tmp_path)
    before = Plate.opened
    summary = _run(_plan(shot, stage, FrameRange.parse("1002-1003")), stage)
    assert summary.rendered == 2
    assert Plate.opened - before == 1


def _elsewhere(shot, stage: str, folder: Path):
    """The shot with ``stage``'s output moved into ``folder`` (its sources and the tracked faces stay)."""
    outputs = shot.outputs
    if stage == "swap":
        # the plate's faces live beside the first frame output: keep them by naming it first
        update = {"exr": folder / "sw.####.exr"}
        faces = Path(outputs.exr).parent / f"{shot.name}_plate_faces"
        (folder / f"{shot.name}_plate_faces").symlink_to(faces, target_is_directory=True)
    elif stage == "edit":
        update = {"edit": folder / "ed.####.exr"}
    else:
        update = {"retouch": folder / "rt.####.exr"}
    if stage == "retouch":
        update["edit"] = Path(edit_sequence(shot).pattern)  # the latent edit it reads stays where it is
    return shot.model_copy(update={"outputs": outputs.model_copy(update=update)})


@pytest.mark.parametrize("stage", STAGES)
def test_chunked_equals_whole(chained, stage, tmp_path):
    shot = load_shot(chained[0])
    moved = _elsewhere(shot, stage, tmp_path)
    for chunk in ("1001-1003", "1004-1008"):
        frames = FrameRange.parse(chunk)
        warmup = tuple(f for f in FRAMES if f < frames.first) if stage == "edit" else ()
        _run(_plan(moved, stage, frames), stage, warmup=warmup)
    for frame in FRAMES:
        whole = read_image(stage_output(shot, stage).path(frame))
        chunked = read_image(stage_output(moved, stage).path(frame))
        assert whole.channels == chunked.channels
        assert np.array_equal(whole.pixels, chunked.pixels), (stage, frame)
