"""An anamorphic plate (pixel aspect 2.0): faces found and aligned on the desqueezed picture, output squeezed.

The demo shot's 256² astronaut plate is the desqueezed reference. The anamorphic plate is the same picture
squeezed to 128x256 (width x height) by an area filter, its EXR header saying ``PixelAspectRatio`` 2.0. The
plate's tracked faces, mapped into desqueezed pixels, must land within a pixel of the reference run's; the
swap of the anamorphic plate keeps its size, its squeeze and every bit outside the matte.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from tests.test_swap import RES, save_tiny_model
from vfx.align.similarity import compose, pixel_aspect_matrix, transform_points
from vfx.cli import entrypoint
from vfx.faceset.plate_faces import track_plate_faces
from vfx.io.image import read_image, read_image_header, write_image
from vfx.io.plate import open_plate, probe_media
from vfx.render.rendered import read_rendered_frame
from vfx.shot import FrameRange, load_shot
from vfx.shot.layout import swap_sequence

FRAMES = FrameRange.from_bounds(1001, 1004)
SQUEEZE = 2.0


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> dict[str, Path]:
    from vfx.demo import build_demo

    folder = tmp_path_factory.mktemp("anamorphic")
    build_demo(folder, num_frames=8, size=256)
    save_tiny_model(folder / "models" / "tiny")
    squeezed = folder / "plates_ana"
    squeezed.mkdir()
    for path in sorted((folder / "plates").glob("astronaut.*.exr")):
        image = read_image(path)
        height, width = image.size
        pixels = cv2.resize(image.pixels, (int(width / SQUEEZE), height), interpolation=cv2.INTER_AREA)
        write_image(squeezed / path.name, pixels, channels=image.channels, dtype="half",
                    metadata={**image.metadata, "PixelAspectRatio": SQUEEZE})
    base = yaml.safe_load((folder / "demo.yaml").read_text())
    base["model"] = {"checkpoint": "models/tiny", "resolution": RES, "width": 0.05}
    files = {}
    for name, plates in (("reference", "plates"), ("anamorphic", "plates_ana")):
        data = dict(base, plate=dict(base["plate"], path=f"{plates}/astronaut.####.exr", frames=str(FRAMES)),
                    outputs={"exr": f"out_{name}/demo.####.exr"})
        files[name] = folder / f"{name}.yaml"
        files[name].write_text(yaml.safe_dump(data, sort_keys=False))
    return files


def _faces(shot_file: Path) -> dict:
    shot = load_shot(shot_file)
    plate, frames = open_plate(shot.plate)
    with plate:
        return track_plate_faces(shot, plate, frames, crop_size=RES, workers=1)


def test_the_plate_says_it_is_squeezed(shots):
    shot = load_shot(shots["anamorphic"])
    plate, _ = open_plate(shot.plate)
    with plate:
        assert plate.pixel_aspect == SQUEEZE and plate.size == (256, 128) and plate.squeezed


def test_faces_are_found_and_aligned_as_on_the_desqueezed_plate(shots):
    reference, squeezed = _faces(shots["reference"]), _faces(shots["anamorphic"])
    assert sorted(reference) == sorted(squeezed) == list(FRAMES)
    desqueeze = pixel_aspect_matrix(SQUEEZE)
    errors = []
    for frame in FRAMES:
        # plate pixels of the squeezed plate -> desqueezed pixels, against the reference run's landmarks
        found = transform_points(squeezed[frame].landmarks, desqueeze)
        errors.append(np.linalg.norm(found - reference[frame].landmarks, axis=1))
        # the crop is cut as from the desqueezed plate: plate -> crop is desqueeze, then the reference's
        points = squeezed[frame].landmarks
        crop_error = np.abs(transform_points(points, squeezed[frame].matrix)
                            - transform_points(points, compose(desqueeze, reference[frame].matrix)))
        assert crop_error.max() < 1.0  # crop pixels
    errors = np.concatenate(errors)
    print(f"landmark error against the desqueezed run: mean {errors.mean():.3f} px, max {errors.max():.3f} px")
    assert errors.mean() < 1.0


def test_the_swap_keeps_the_squeeze_and_the_plate_outside_the_matte(shots, tmp_path):
    assert entrypoint(["swap", str(shots["anamorphic"]), "--device", "cpu", "--workers", "1"]) == 0
    shot = load_shot(shots["anamorphic"])
    for frame in FRAMES:
        path = swap_sequence(shot).path(frame)
        header = read_image_header(path)
        assert header.size == (256, 128)
        assert header.metadata["PixelAspectRatio"] == SQUEEZE
        done = read_rendered_frame(path)
        plate = read_image(str(shot.plate.path).replace("####", str(frame))).rgb()
        outside = done.matte == 0
        assert 0 < done.matte.mean() < 0.9
        np.testing.assert_array_equal(done.rgb.astype(np.float16).view(np.uint16)[outside],
                                      plate.astype(np.float16).view(np.uint16)[outside])


def test_the_review_is_desqueezed(shots, tmp_path):
    from vfx.export.review import write_review

    shot = load_shot(shots["anamorphic"])
    if swap_sequence(shot).missing(FRAMES):
        assert entrypoint(["swap", str(shots["anamorphic"]), "--device", "cpu", "--workers", "1"]) == 0
    info = write_review(shot, tmp_path / "review.mp4")
    assert (info.width, info.height) == (256, 256)  # 128 squeezed pixels a line, shown 256 wide


def test_a_sequence_takes_the_shots_pixel_aspect(shots, tmp_path):
    data = yaml.safe_load(shots["reference"].read_text())
    data["plate"]["pixel_aspect"] = 1.5
    base = shots["reference"].parent
    data["plate"]["path"] = str(base / data["plate"]["path"])
    data["model"]["checkpoint"] = str(base / data["model"]["checkpoint"])
    data["outputs"] = {"exr": str(tmp_path / "out" / "x.####.exr")}
    (tmp_path / "shot.yaml").write_text(yaml.safe_dump(data))
    plate, _ = open_plate(load_shot(tmp_path / "shot.yaml").plate)
    with plate:
        assert plate.pixel_aspect == 1.5


def test_a_movie_whose_container_says_otherwise_is_refused(shots, tmp_path, capsys):
    base = shots["reference"].parent
    data = yaml.safe_load(shots["reference"].read_text())
    data["plate"] = {"path": str(base / "media" / "astronaut.mp4"), "pixel_aspect": 2.0}
    data["model"]["checkpoint"] = str(base / data["model"]["checkpoint"])
    data["outputs"] = {"exr": str(tmp_path / "out" / "x.####.exr")}
    (tmp_path / "shot.yaml").write_text(yaml.safe_dump(data))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert entrypoint(["swap", str(tmp_path / "shot.yaml"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "container" in err and "wins" in err and "Fix:" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    shutil.rmtree(tmp_path / "out", ignore_errors=True)


def test_a_movie_takes_its_containers_sample_aspect(shots, tmp_path):
    from vfx.io.ffmpeg import find_ffmpeg

    base = shots["reference"].parent
    movie = tmp_path / "anamorphic.mp4"
    subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(base / "media" / "astronaut.mp4"), "-c", "copy",
                    "-bsf:v", "h264_metadata=sample_aspect_ratio=2/1", str(movie)], check=True)
    data = yaml.safe_load(shots["reference"].read_text())
    data["plate"] = {"path": str(movie), "pixel_aspect": 2.0}  # agrees with the container: accepted
    (tmp_path / "shot.yaml").write_text(yaml.safe_dump(data))
    plate, _ = open_plate(load_shot(tmp_path / "shot.yaml").plate)
    with plate:
        assert plate.pixel_aspect == 2.0 and plate.kind == "video"
    assert probe_media(movie)["pixel_aspect"] == 2.0
