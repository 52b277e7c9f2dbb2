"""The swap stage end to end on a small demo plate with an untrained tiny comb model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vfx.cli import entrypoint
from vfx.comb.checkpoint import Manifest, PersonaRecord, save_checkpoint
from vfx.comb.network import CombConfig, CombNetwork
from vfx.errors import ConfigError, FrameRangeError, MediaError
from vfx.io.image import read_image, write_image
from vfx.render.rendered import SYNTHETIC_NOTICE, read_rendered_frame
from vfx.shot import FrameRange, load_shot, save_shot
from vfx.swap import FaceSwapper, open_swap_model, swap_shot

PERSONAS = ("hopper", "astronaut")
RES = 32


def save_tiny_model(run: Path, *, resolution: int = RES, personas: tuple[str, ...] = PERSONAS, seed: int = 0) -> Path:
    """An untrained comb checkpoint, fully grown: swapping needs weights, not good ones."""
    torch.manual_seed(seed)
    config = CombConfig(resolution=resolution, width=0.05, personas=personas)
    net = CombNetwork(config)
    net.grow(config.top_level)
    manifest = Manifest(config, tuple(PersonaRecord(p, (), f"{p}: test data") for p in personas),
                        level=config.top_level, alpha=1.0, step=1, level_step=1, lr=1e-4)
    return save_checkpoint(run, net, torch.optim.Adam(net.parameters()), {}, manifest)


def demo_without_face_on_1008(folder: Path):
    """The 8-frame 128² demo shot (astronaut EXR plate, ACEScg) with frame 1008 blanked: a frame with no face."""
    from vfx.demo import build_demo

    result = build_demo(folder, num_frames=8, size=128)
    blank = read_image(result.sequences["astronaut"].replace("####", "1008"))
    write_image(result.sequences["astronaut"].replace("####", "1008"), np.full_like(blank.pixels, 0.18),
                channels=blank.channels, dtype="half")
    return result


@pytest.fixture(scope="module")
def swap_setup(tmp_path_factory) -> Path:
    """An 8-frame 128² demo shot (astronaut EXR plate, ACEScg) with a tiny model; frame 1008 has no face."""
    folder = tmp_path_factory.mktemp("swap")
    result = demo_without_face_on_1008(folder)
    save_tiny_model(folder / "models" / "tiny")
    save_shot(_with_model(load_shot(result.shot_file), folder / "models" / "tiny"), folder / "swap.yaml")
    return folder / "swap.yaml"


def _with_model(shot, checkpoint: Path):
    from vfx.shot.schema import ModelConfig

    return shot.model_copy(update={"model": ModelConfig(checkpoint=checkpoint, resolution=RES, width=0.05)})


def _shot_in(swap_setup: Path, out: Path, **outputs):
    shot = load_shot(swap_setup)
    update = {"exr": out / "sw.####.exr", "review": None, "comp_package": None} | outputs
    return shot.model_copy(update={"outputs": shot.outputs.model_copy(update=update)})


@pytest.fixture(scope="module")
def rendered(swap_setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("render")
    shot = _shot_in(swap_setup, out, frames=out / "plate_format" / "sw.####.exr")
    summary = swap_shot(shot, show_progress=False, workers=1)
    return shot, summary


def test_swap_renders_every_frame_with_matte_and_metadata(rendered):
    shot, summary = rendered
    assert summary.rendered == 8 and summary.skipped == 0
    assert summary.no_face == (1008,)
    frame = read_rendered_frame(str(shot.outputs.exr).replace("####", "1003"))
    assert frame.info.persona == "hopper" and frame.info.matrix is not None and frame.info.crop_size == RES
    assert set(frame.info.extra) == {"quality", "quality_figures", "skipped"}  # the face quality flags
    assert frame.metadata.extra["synthetic"] == SYNTHETIC_NOTICE
    assert frame.metadata.shot_hash == shot.content_hash() and frame.metadata.timecode == "00:00:41:19"
    assert frame.metadata.fps == shot.plate.fps or frame.metadata.fps == 24
    assert 0 < (frame.matte > 0).mean() < 0.5


def test_outside_the_matte_the_plate_comes_back_bit_identical(rendered):
    shot, _ = rendered
    for frame_number in (1001, 1004):
        plate = read_image(str(shot.plate.path).replace("####", str(frame_number))).rgb()
        done = read_rendered_frame(str(shot.outputs.exr).replace("####", str(frame_number)))
        outside = done.matte == 0
        assert np.array_equal(done.rgb[outside], plate[outside])
        assert not np.allclose(done.rgb[~outside], plate[~outside])
        own_format = read_image(str(shot.outputs.frames).replace("####", str(frame_number)))
        assert own_format.channel_types == ("half",) * 3
        assert np.array_equal(own_format.rgb()[outside], plate[outside])
        assert np.array_equal(own_format.rgb(), done.rgb)


def test_a_frame_without_a_face_passes_through_with_an_empty_matte(rendered):
    shot, _ = rendered
    plate = read_image(str(shot.plate.path).replace("####", "1008")).rgb()
    done = read_rendered_frame(str(shot.outputs.exr).replace("####", "1008"))
    assert np.array_equal(done.rgb, plate) and not done.matte.any()
    assert done.info.matrix is None and done.info.face_box is None


def test_a_rerun_renders_only_missing_frames(rendered):
    shot, _ = rendered
    victim = Path(str(shot.outputs.exr).replace("####", "1002"))
    others = {p: p.stat().st_mtime_ns for p in victim.parent.glob("sw.*.exr") if p != victim}
    victim.unlink()
    summary = swap_shot(shot, show_progress=False, workers=1)
    assert summary.rendered == 1 and summary.skipped == 7 and victim.is_file()
    assert all(p.stat().st_mtime_ns == t for p, t in others.items())


@pytest.mark.parametrize("method", ["multiband", "poisson", "alpha"])
def test_baseline_blends_render_through_the_same_pipeline(swap_setup, tmp_path, method):
    shot = _shot_in(swap_setup, tmp_path)
    summary = swap_shot(shot, frames=FrameRange.parse("1002-1003"), method=method, show_progress=False, workers=1)
    assert summary.rendered == 2
    done = read_rendered_frame(tmp_path / "sw.1002.exr")
    plate = read_image(str(shot.plate.path).replace("####", "1002")).rgb()
    assert done.info.blend == method
    assert np.array_equal(done.rgb[done.matte == 0], plate[done.matte == 0])


def test_swapper_batches_match_single_crops(swap_setup):
    shot = load_shot(swap_setup)
    model = open_swap_model(shot.model.checkpoint, persona="hopper", resolution=RES)
    swapper = FaceSwapper(model, "hopper")
    targets = torch.rand(3, 3, RES, RES)
    covers = torch.zeros(3, 1, RES, RES)
    covers[..., 8:24, 8:24] = 1
    _, together = swapper(targets, covers)
    one = torch.cat([swapper(targets[i:i + 1], covers[i:i + 1])[1] for i in range(3)])
    assert torch.allclose(together, one, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_swap_matches_cpu(swap_setup):
    shot = load_shot(swap_setup)
    cpu = FaceSwapper(open_swap_model(shot.model.checkpoint, persona="hopper", resolution=RES), "hopper")
    gpu = FaceSwapper(open_swap_model(shot.model.checkpoint, persona="hopper", resolution=RES, device="cuda"), "hopper")
    targets, covers = torch.rand(4, 3, RES, RES), torch.ones(4, 1, RES, RES)
    assert torch.allclose(cpu(targets, covers)[1], gpu(targets, covers)[1].cpu(), atol=2e-2)  # bf16 network


# ---------------------------------------------------------------------------------------------- bad input

def _nothing_written(out: Path) -> bool:
    return not out.exists() or not any(out.rglob("*.exr"))


def test_unknown_persona_lists_the_models_personas(swap_setup, tmp_path):
    shot = _shot_in(swap_setup, tmp_path / "out")
    with pytest.raises(ConfigError, match="hopper, astronaut"):
        swap_shot(shot, persona="nobody", show_progress=False)
    assert _nothing_written(tmp_path / "out")


def test_checkpoint_of_another_crop_size_is_refused(swap_setup, tmp_path):
    save_tiny_model(tmp_path / "m16", resolution=16)
    shot = _shot_in(swap_setup, tmp_path / "out")
    shot = _with_model(shot, tmp_path / "m16")
    with pytest.raises(ConfigError, match="another crop size"):
        swap_shot(shot, show_progress=False)
    assert _nothing_written(tmp_path / "out")


def test_frames_outside_the_plate_are_refused(swap_setup, tmp_path):
    shot = _shot_in(swap_setup, tmp_path / "out")
    with pytest.raises(FrameRangeError):
        swap_shot(shot, frames=FrameRange.parse("1001-1020"), show_progress=False)
    assert _nothing_written(tmp_path / "out")


def test_a_plate_that_changes_size_mid_sequence_is_refused(swap_setup, tmp_path):
    shot = load_shot(swap_setup)
    plates = tmp_path / "plates"
    shutil.copytree(Path(shot.plate.path).parent, plates)
    odd = plates / Path(str(shot.plate.path).replace("####", "1004")).name
    image = read_image(odd)
    write_image(odd, np.zeros((96, 128, 3), np.float32), channels=("R", "G", "B"), metadata=image.metadata)
    shot = _shot_in(swap_setup, tmp_path / "out")
    shot = shot.model_copy(update={"plate": shot.plate.model_copy(update={"path": plates / Path(shot.plate.path).name})})
    with pytest.raises(MediaError, match="changes size"):
        swap_shot(shot, show_progress=False)
    assert _nothing_written(tmp_path / "out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_refused(swap_setup, tmp_path):
    out = tmp_path / "locked"
    out.mkdir()
    out.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="Cannot write"):
            swap_shot(_shot_in(swap_setup, out), show_progress=False)
        assert _nothing_written(out)
    finally:
        out.chmod(0o700)


def test_an_output_folder_that_cannot_be_made_is_refused(swap_setup, tmp_path):
    (tmp_path / "taken").write_text("a file where the output folder should go")
    with pytest.raises(ConfigError, match="Cannot write"):
        swap_shot(_shot_in(swap_setup, tmp_path / "taken"), show_progress=False)


def test_cli_swap_bad_input_exits_2(swap_setup, tmp_path, capsys):
    shot = _shot_in(swap_setup, tmp_path / "out")
    save_shot(shot, tmp_path / "shot.yaml")
    assert entrypoint(["swap", str(tmp_path / "shot.yaml"), "--persona", "nobody"]) == 2
    assert "hopper, astronaut" in capsys.readouterr().err
    assert entrypoint(["swap", str(tmp_path / "shot.yaml"), "--frames", "990-1002"]) == 2
    assert entrypoint(["swap", str(tmp_path / "shot.yaml"), "--blend", "laplace"]) == 2
    assert _nothing_written(tmp_path / "out")


# ---------------------------------------------------------------------------------------------- hand-off

def test_handoff_waits_for_a_partial_render_and_export_refuses_it(swap_setup, tmp_path, capsys):
    from vfx.export.handoff import write_handoff

    shot = _shot_in(swap_setup, tmp_path / "out", review=tmp_path / "out" / "review.mp4")
    swap_shot(shot, frames=FrameRange.parse("1001-1003"), show_progress=False, workers=1)
    lines = write_handoff(shot)
    assert len(lines) == 1 and "waiting for 5 frames" in lines[0] and not (tmp_path / "out" / "review.mp4").exists()
    save_shot(shot, tmp_path / "shot.yaml")
    assert entrypoint(["export", str(tmp_path / "shot.yaml"), "--comp", str(tmp_path / "pkg")]) == 2
    assert "1004-1008" in capsys.readouterr().err and not (tmp_path / "pkg" / "patch").exists()


def test_cli_export_writes_the_package_and_review(rendered, tmp_path, capsys):
    shot, _ = rendered
    save_shot(shot, tmp_path / "shot.yaml")
    code = entrypoint(["export", str(tmp_path / "shot.yaml"), "--comp", str(tmp_path / "pkg"),
                       "--review", str(tmp_path / "review.mp4"), "--side-by-side"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert (tmp_path / "pkg" / f"{shot.name}.nk").is_file() and len(list((tmp_path / "pkg" / "patch").iterdir())) == 8
    assert (tmp_path / "review.mp4").is_file() and (tmp_path / "review_side_by_side.mp4").is_file()
    assert "compositor package" in out and "review" in out
    assert entrypoint(["export", str(tmp_path / "shot.yaml")]) == 2  # the shot itself names neither


def test_a_video_plate_renders_8_bit_frames_bit_identical_outside_the_matte(swap_setup, tmp_path):
    from vfx.io.plate import open_media

    shot = _shot_in(swap_setup, tmp_path, frames=tmp_path / "png" / "sw.####.png")
    video = swap_setup.parent / "media" / "astronaut.mp4"
    shot = shot.model_copy(update={"plate": shot.plate.model_copy(update={
        "path": video, "colorspace": "sRGB Encoded Rec.709 (sRGB)", "frames": FrameRange.parse("1002-1003")})})
    summary = swap_shot(shot, show_progress=False, workers=1)
    assert summary.rendered == 2 and summary.no_face == ()
    with open_media(video) as plate:
        decoded = plate.video.read(1003)  # the decoder's own uint8 codes
    done = read_rendered_frame(tmp_path / "sw.1003.exr")
    png = read_image(tmp_path / "png" / "sw.1003.png")
    assert png.channel_types == ("uint8",) * 3
    codes = np.rint(png.pixels * 255).astype(np.uint8)
    outside = done.matte == 0
    assert np.array_equal(codes[outside], decoded[outside]) and not np.array_equal(codes, decoded)
