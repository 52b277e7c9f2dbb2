"""An overscan plate through every frame stage: its windows and its own header kept end to end.

The demo shot's plate is rewritten as a studio plate would come: data window (-8, -8) - (119, 119) around a
112x112 display window, with camera, lens, owner and studio attributes. Swap, latent edit and layout retouch
are chained on it (the contract suite's shot), then the compositor package is cut from the newest frames.
Checked: ``oiiotool --info -v`` of every output shows the plate's windows and attributes, every bit outside
each stage's own matte is its source's, and the package's patches rebuild each frame in display space.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_render_contract import FRAMES, OWN_MATTE, STAGES, _source_rgb, build_chain
from vfx.export.comp import CompPackageLayout, rebuild_frame, write_comp_package
from vfx.io.image import Window, read_image, read_image_header, write_image
from vfx.io.plate import probe_media
from vfx.render.rendered import read_rendered_frame
from vfx.shot import load_shot
from vfx.shot.layout import stage_output

DATA = Window(-8, -8, 128, 128)
DISPLAY = Window(0, 0, 112, 112)
STUDIO = {
    "Copyright": "Northlight Pictures",  # OpenEXR's owner, as OpenImageIO names it
    "DateTime": "2026:11:30 10:12:44",  # OpenEXR's capDate
    "lensModel": "Cooke S4/i 32mm",
    "cameraSerialNumber": "A035-1187",
    "studio/roll": "A003C012",
    "studio/take": 4,
}


def make_overscan(plates: Path) -> None:
    """Rewrite every frame of the demo plate with overscan windows and a studio's own attributes."""
    for path in sorted(plates.glob("astronaut.*.exr")):
        image = read_image(path)
        write_image(path, image.pixels, channels=image.channels, dtype="half",
                    metadata={**image.metadata, **STUDIO}, data_window=DATA, display_window=DISPLAY)


@pytest.fixture(scope="module")
def overscan(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("overscan")
    shot_file, _ = build_chain(folder, change_plate=make_overscan, comp_package=True)
    write_comp_package(load_shot(shot_file), progress=False)
    return shot_file


def _oiiotool() -> str:
    exe = shutil.which("oiiotool") or str(Path(sys.executable).with_name("oiiotool"))
    if not Path(exe).is_file():
        pytest.skip("oiiotool is not installed (it ships with the OpenImageIO wheel)")
    return exe


def test_the_plate_is_an_overscan_plate(overscan):
    header = read_image_header(str(load_shot(overscan).plate.path).replace("####", "1001"))
    assert (header.data_window, header.display_window) == (DATA, DISPLAY)
    described = probe_media(load_shot(overscan).plate.path)  # what `vfx probe` prints
    assert described["display_window"] == "(0, 0) - (111, 111)"
    assert described["data_window"] == "(-8, -8) - (119, 119) (overscan)"


@pytest.mark.parametrize("stage", STAGES)
def test_oiiotool_shows_the_plates_windows_and_attributes(overscan, stage):
    info = subprocess.run([_oiiotool(), "--info", "-v", str(stage_output(load_shot(overscan), stage).path(1004))],
                          capture_output=True, text=True, check=True).stdout
    # oiiotool prints the data window size in the first line and both windows as boxes.
    assert re.search(r"128 x\s+128", info), info
    assert re.search(r"pixel data origin: x=-8, y=-8", info), info
    assert re.search(r"full/display size: 112 x 112", info), info
    assert re.search(r"full/display origin: 0, 0", info), info
    for key, value in STUDIO.items():
        assert re.search(rf'{re.escape(key)}: "?{re.escape(str(value))}"?', info), (key, info)
    assert "vfx/synthetic" in info and "vfx/persona" in info


@pytest.mark.parametrize("stage", STAGES)
def test_windows_and_attributes_in_every_frame(overscan, stage):
    pattern = stage_output(load_shot(overscan), stage)
    for frame in FRAMES:
        header = read_image_header(pattern.path(frame))
        assert (header.data_window, header.display_window) == (DATA, DISPLAY)
        for key, value in STUDIO.items():
            assert header.metadata[key] == value
        assert header.metadata["vfx/frame"] == frame
        assert header.metadata.get("compression") == "piz"  # ours: the plate's layout keys are not copied


@pytest.mark.parametrize("stage", STAGES)
def test_every_bit_outside_the_matte_is_the_source(overscan, stage):
    shot = load_shot(overscan)
    pattern = stage_output(shot, stage)
    for frame in FRAMES:
        done = read_rendered_frame(pattern.path(frame))
        own = done.matte if OWN_MATTE[stage] == "A" else done.layers[OWN_MATTE[stage]]
        outside = own == 0
        source = _source_rgb(shot, stage, frame)
        assert source.shape == done.rgb.shape == (128, 128, 3)
        np.testing.assert_array_equal(done.rgb.astype(np.float16).view(np.uint16)[outside],
                                      source.astype(np.float16).view(np.uint16)[outside])


def test_comp_patches_rebuild_the_frame_in_display_space(overscan):
    shot = load_shot(overscan)
    layout = CompPackageLayout(Path(shot.outputs.comp_package), shot.name)
    newest = stage_output(shot, "retouch")
    faces = 0
    for frame in FRAMES:
        plate = read_image(str(shot.plate.path).replace("####", str(frame)))
        patch = read_image(layout.patch.path(frame))
        assert patch.display_window == DISPLAY
        done = read_image(newest.path(frame))
        # The patch over the plate, both placed in display space, is the rendered frame there.
        rebuilt = rebuild_frame(plate.in_display_window()[:, :, :3], patch.pixels, patch.data_window,
                                plate_window=DISPLAY)
        expected = done.in_display_window()[:, :, :3]
        np.testing.assert_allclose(rebuilt, expected, atol=1e-3)
        # and over the whole overscan plate, in its own data window
        rebuilt = rebuild_frame(plate.rgb(), patch.pixels, patch.data_window, plate_window=DATA)
        np.testing.assert_allclose(rebuilt, done.rgb(), atol=1e-3)
        faces += patch.data_window.size != (1, 1)
    assert faces == len(FRAMES) - 1  # frame 1008 has no face


def test_the_review_shows_the_plates_format(overscan, tmp_path):
    from vfx.export.review import write_review

    info = write_review(load_shot(overscan), tmp_path / "review.mp4")
    assert (info.width, info.height) == (112, 112)  # the display window, overscan cut away
