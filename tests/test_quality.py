"""Face quality flags: small, profile, blurred and cut faces are flagged, and `swap.skip` passes them through."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from tests.test_swap import _shot_in
from tests.test_swap import swap_setup as swap_setup  # the fixture
from vfx.faceset import quality
from vfx.faceset.quality import face_quality
from vfx.faceset.store import Faceset
from vfx.io.image import read_image
from vfx.render.rendered import read_rendered_frame
from vfx.shot.layout import plate_faces_folder
from vfx.shot.schema import SwapConfig
from vfx.swap import swap_shot


@pytest.fixture(scope="module")
def swapped(swap_setup, tmp_path_factory):
    """The swap fixture's shot rendered once with every face swapped; its plate faces and shot."""
    out = tmp_path_factory.mktemp("quality")
    shot = _shot_in(swap_setup, out)
    summary = swap_shot(shot, show_progress=False, workers=1)
    return shot, summary


def _face(shot):
    faceset = Faceset.open(plate_faces_folder(shot))
    record = next(r for r in faceset.records() if r.frame == 1003 and r.quality != "no_face")
    return record, read_image(faceset.folder / record.crop).rgb()


def test_a_clean_face_is_ok_and_each_fault_is_flagged(swapped):
    shot, _ = swapped
    record, crop = _face(shot)
    x0, y0, _, _ = record.box
    record = replace(record, box=(x0, y0, x0 + 100, y0 + 100))  # the demo's 128² plate has ~40 px faces
    clean = face_quality(record, crop)
    assert clean.flags == ("ok",) and clean.face_px > 48 and abs(clean.yaw) < 25 and clean.sharpness > 150
    blurred = face_quality(record, cv2.GaussianBlur(crop, (0, 0), 3.0))
    assert "blurred" in blurred.flags and blurred.sharpness < clean.sharpness / 5
    assert "small" in face_quality(replace(record, box=(x0, y0, x0 + 30, y0 + 30)), crop).flags
    assert "small" not in face_quality(replace(record, box=(x0, y0, x0 + 30, y0 + 30)), crop, pixel_aspect=2.0).flags
    turned = np.asarray(record.crop_landmarks).copy()
    turned[27:36, 0] += 0.45 * float(np.ptp(turned[:, 0]))  # the nose far towards one cheek: a profile
    profile = face_quality(replace(record, crop_landmarks=turned), crop)
    assert "profile" in profile.flags and abs(profile.yaw) > 40, profile
    assert face_quality(record, crop, cut=True).flags == ("cut",)
    assert face_quality(None, None).flags == ("no_face",)


def test_the_frames_carry_their_quality(swapped):
    shot, summary = swapped
    done = read_rendered_frame(shot.outputs.exr.with_name(shot.outputs.exr.name.replace("####", "1003")))
    # the demo plate is 128² with faces ~40 px wide: swapped, and flagged small
    assert done.info.extra["quality"] == "small" and done.info.extra["skipped"] == "no"
    assert any("faces flagged: small 7; swapped and flagged" in line for line in summary.lines), summary.lines
    assert '"face_px"' in done.info.extra["quality_figures"]
    blank = read_rendered_frame(shot.outputs.exr.with_name(shot.outputs.exr.name.replace("####", "1008")))
    assert blank.info.extra["quality"] == "no_face"


def test_swap_skip_passes_flagged_faces_through(swap_setup, tmp_path, monkeypatch):
    monkeypatch.setattr(quality, "SMALL_FACE_PX", 10_000.0)  # every face is "small"
    shot = _shot_in(swap_setup, tmp_path)
    flagged = swap_shot(shot, show_progress=False, workers=1)  # default: swapped and flagged
    assert any("small 7" in line and "swapped and flagged" in line for line in flagged.lines), flagged.lines
    skipping = shot.model_copy(update={"swap": SwapConfig(persona=shot.swap.persona, skip=["small"]),
                                       "outputs": shot.outputs.model_copy(update={"exr": tmp_path / "skip" / "s.####.exr"})})
    summary = swap_shot(skipping, show_progress=False, workers=1)
    assert any("passed through untouched (small)" in line for line in summary.lines), summary.lines
    for frame in range(1001, 1009):
        done = read_rendered_frame(tmp_path / "skip" / f"s.{frame}.exr")
        plate = read_image(str(shot.plate.path).replace("####", str(frame))).rgb()
        assert not done.matte.any()
        np.testing.assert_array_equal(done.rgb.astype(np.float16), plate.astype(np.float16))
        if frame != 1008:
            assert done.info.extra["skipped"] == "yes" and "small" in done.info.extra["quality"]
        swapped_frame = read_rendered_frame(tmp_path / f"sw.{frame}.exr")
        assert swapped_frame.matte.any() == (frame != 1008)
