import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vfx.cli import entrypoint
from vfx.io.image import write_image
from vfx.shot import load_shot

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    code = entrypoint([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_console_script_help():
    exe = Path(sys.executable).parent / "vfx"
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for command in ("demo", "probe", "shot"):
        assert command in proc.stdout


def test_shot_validate_and_show(capsys):
    code, out, _ = run(capsys, "shot", "validate", "--schema-only", REPO / "shots" / "sh010.yaml")
    assert code == 0 and "valid vfx.Shot/1 shot 'sh010'" in out
    code, out, _ = run(capsys, "shot", "show", REPO / "shots" / "sh010.yaml")
    assert code == 0 and "fps: 24000/1001" in out and str(REPO / "shots" / "plates") in out


def test_demo_shot_validates_with_media(capsys, demo_shot):
    code, out, err = run(capsys, "shot", "validate", demo_shot)
    assert code == 0, err
    assert "frames 1001-1016 present" in out
    code, out, err = run(capsys, "shot", "validate", demo_shot, "--frames", "1001-1004")
    assert code == 0 and "frames 1001-1004 present" in out
    code, out, err = run(capsys, "shot", "validate", demo_shot, "--frames", "1010-1020")
    assert code == 2 and "1017-1020" in err
    code, out, _ = run(capsys, "probe", "--json", demo_shot.parent / "media" / "hopper.mp4")
    info = json.loads(out)
    assert (info["frame_count"], info["fps"], info["frames"], info["audio"]) == (16, "24", "1001-1016", "aac")
    code, out, _ = run(capsys, "probe", demo_shot.parent / "plates" / "astronaut.####.exr")
    assert code == 0 and "1001-1016" in out and "missing_frames  none" in out


def test_demo_command_runs_the_whole_pipeline(capsys, tmp_path):
    code, out, err = run(capsys, "demo", "--out", tmp_path / "d", "--frames", "8", "--size", "128",
                         "--iters-per-level", "2", "--device", "cpu")
    assert code == 0, err
    assert "demo shot:" in out and "contact sheet" in out and "compositor package" in out
    folder = tmp_path / "d"
    shot = load_shot(folder / "demo.yaml")
    assert shot.plate.colorspace == "ACEScg" and len(shot.plate.frames) == 8
    assert shot.model is not None and shot.model.checkpoint == folder / "models" / "demo_comb"
    assert len(list((folder / "out").glob("demo_swap_v001.*.exr"))) == 8
    from vfx.io.video import probe_video

    review = probe_video(folder / "out" / "demo_swap_v001.mp4")
    assert review.frame_count == 8 and review.fps == 24 and review.has_audio
    assert (folder / "out" / "demo_comp_v001" / "demo.nk").is_file()
    assert len(list((folder / "out" / "demo_comp_v001" / "patch").glob("*.exr"))) == 8
    assert (folder / "out" / "demo_contact_sheet.png").is_file()
    assert not [p for p in folder.rglob("*") if ".vfxtmp" in p.name]


@pytest.fixture
def broken_inputs(tmp_path, demo_shot):
    """Each bad input a user can hand the CLI, made in a fresh folder."""
    root = tmp_path / "bad"
    root.mkdir()
    (root / "folder.mp4").mkdir()
    (root / "notes.mp4").write_text("this is not a video\n")
    clip = (demo_shot.parent / "media" / "hopper.mp4").read_bytes()
    (root / "half.mp4").write_bytes(clip[: len(clip) // 2])
    nan = np.zeros((8, 8, 3), np.float32)
    nan[2, 3, 1] = np.nan
    # Written directly with OpenImageIO: write_image itself refuses NaN.
    import OpenImageIO as oiio

    spec = oiio.ImageSpec(8, 8, 3, "half")
    out = oiio.ImageOutput.create(str(root / "nan.exr"))
    out.open(str(root / "nan.exr"), spec)
    out.write_image(nan)
    out.close()
    holes = root / "holes"
    holes.mkdir()
    for frame in (1001, 1002, 1004):
        write_image(holes / f"sh.{frame}.exr", np.zeros((8, 8, 3), np.float32))
    (root / "empty.yaml").write_text("")
    text = demo_shot.read_text()
    (root / "unknown.yaml").write_text(text.replace("name: demo", "name: demo\nshot_colour: red"))
    plates = demo_shot.parent / "plates"
    (root / "outside.yaml").write_text(
        text.replace("plates/", f"{plates}/").replace("media/", f"{demo_shot.parent}/media/")
        .replace("frames: 1001-1016", "frames: 1001-1100"))
    seq = (root / "seq.yaml")
    seq.write_text(f"schema: vfx.Shot/1\nname: holes\nplate: {{path: {holes}/sh.####.exr, frames: 1001-1004}}\n")
    return root


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["probe", "{root}/missing.mp4"], "not found"),
        (["probe", "{root}/folder.mp4"], "directory"),
        (["probe", "{root}/half.mp4"], "truncated"),
        (["probe", "{root}/notes.mp4"], "check that the file is a video"),
        (["probe", "{root}/nan.exr"], "NaN"),
        (["shot", "validate", "{root}/seq.yaml"], "missing 1 of 4 frames"),
        (["shot", "validate", "{root}/empty.yaml"], "is empty"),
        (["shot", "validate", "{root}/unknown.yaml"], "unknown field 'shot_colour'"),
        (["shot", "validate", "{root}/outside.yaml"], "outside"),
        (["probe", "{root}/holes/sh.####.exr", "--start-frame", "x"], "Invalid value"),
    ],
    ids=["missing", "directory", "truncated", "text-as-mp4", "nan-exr", "missing-frame", "empty-yaml",
         "unknown-field", "range-outside", "bad-option"],
)
def test_bad_input_exits_2_and_writes_nothing(capsys, broken_inputs, argv, message):
    before = files_in(broken_inputs)
    code, out, err = run(capsys, *[a.format(root=broken_inputs) for a in argv])
    assert code == 2, (out, err)
    assert message.lower() in err.lower()
    assert files_in(broken_inputs) == before


def test_version(capsys):
    import vfx

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"vfx {vfx.__version__}"
