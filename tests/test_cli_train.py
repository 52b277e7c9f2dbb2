"""`vfx train` and `vfx model info` end to end on two tiny facesets made here."""

from __future__ import annotations

import re

import pytest

from vfx.cli import entrypoint
from vfx.demo import load_portrait, render_motion
from vfx.eval.stability import known_motion
from vfx.faceset.extract import ExtractConfig, MediaSource, extract_faceset
from vfx.io.image import write_image


@pytest.fixture(scope="module")
def facesets(tmp_path_factory):
    """Facesets of the two bundled portraits, 6 frames each, 32² crops."""
    out = {}
    for name in ("hopper", "astronaut"):
        folder = tmp_path_factory.mktemp(name)
        portrait = load_portrait(name)
        frames = render_motion(portrait, known_motion(6, portrait.shape[:2], 384, zoom=1.6), 384)
        for index, frame in enumerate(frames):
            write_image(folder / f"seq.{1001 + index}.png", frame, channels=("R", "G", "B"), dtype="uint8")
        extract_faceset(MediaSource(str(folder / "seq.####.png")), folder / "fs",
                        config=ExtractConfig(crop_size=32, workers=1))
        out[name] = folder / "fs"
    return out


def test_train_writes_a_model_previews_and_info(facesets, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--persona", f"hopper={facesets['hopper']}", "--persona", f"astronaut={facesets['astronaut']}",
            "--consent", "hopper=public-domain portrait, tests only", "--consent", "astronaut=public-domain portrait",
            "--out", str(run), "--res", "16", "--width", "0.05", "--iters-per-level", "2", "--batch", "2",
            "--holdout", "0.2"]
    assert entrypoint(args) == 0
    out = capsys.readouterr().out
    assert "held-out SSIM" in out and (run / "preview.png").is_file() and (run / "loss.png").is_file()
    # Drawn at every checkpoint (one per level here), a timelapse strip per level; model info names them.
    strips = [run / f"timelapse_level{level}.png" for level in range(3)]
    assert all(strip.is_file() for strip in strips) and "timelapse (a row per checkpoint" in out
    assert entrypoint(["model", "info", str(run)]) == 0
    info = capsys.readouterr().out
    assert "comb, 16² (3 levels), width 0.05" in info and "consent: public-domain portrait, tests only" in info
    assert re.search(rf"preview +{re.escape(str(run / 'preview.png'))}\n", info)
    assert re.search(rf"timelapse_level2 +{re.escape(str(strips[2]))}\n", info)
    # Resuming with a longer schedule trains on from the last checkpoint (6 iterations done, 9 now).
    assert entrypoint(args + ["--resume", "--iters-per-level", "3"]) == 0
    capsys.readouterr()
    assert entrypoint(["model", "info", str(run)]) == 0
    assert re.search(r"iterations +9\n", capsys.readouterr().out)


def test_train_from_a_shot_file(facesets, tmp_path, capsys):
    shot = tmp_path / "sh010.yaml"
    shot.write_text(f"""\
schema: vfx.Shot/1
name: sh010
plate: {{path: plates/sh010.####.exr, frames: 1001-1010}}
personas:
  hopper: {{faceset: {facesets['hopper']}, consent: "public domain (US Navy photo)"}}
  astronaut: {{faceset: {facesets['astronaut']}, consent: "public domain (NASA photo)"}}
model: {{checkpoint: models/sh010_comb, resolution: 8, width: 0.05}}
""")
    assert entrypoint(["train", str(shot), "--iters-per-level", "1", "--batch", "1", "--holdout", "0"]) == 0
    capsys.readouterr()
    assert entrypoint(["model", "info", str(tmp_path / "models" / "sh010_comb")]) == 0
    info = capsys.readouterr().out
    assert "comb, 8² (2 levels)" in info and "public domain (NASA photo)" in info
    footage = tmp_path / "footage.yaml"
    footage.write_text(shot.read_text().replace(f"faceset: {facesets['hopper']}", "footage: hopper.mov"))
    assert entrypoint(["train", str(footage)]) == 2
    assert "vfx extract" in capsys.readouterr().err


def test_train_refuses_personas_without_consent(facesets, tmp_path, capsys):
    args = ["train", "--persona", f"hopper={facesets['hopper']}", "--out", str(tmp_path / "run"), "--res", "8",
            "--width", "0.05", "--iters-per-level", "1", "--batch", "1", "--holdout", "0"]
    assert entrypoint(args) == 2
    assert "No consent record for persona(s) hopper" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    assert entrypoint(args + ["--no-consent-record"]) == 0
    capsys.readouterr()
    assert entrypoint(["model", "info", str(tmp_path / "run")]) == 0
    assert "NONE RECORDED" in capsys.readouterr().out


def test_train_bad_input_exits_2(tmp_path, capsys):
    assert entrypoint(["train", "--out", str(tmp_path / "r")]) == 2
    assert "No personas" in capsys.readouterr().err
    assert entrypoint(["train", "--persona", "x", "--out", str(tmp_path / "r")]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    assert entrypoint(["train", "--persona", f"x={tmp_path / 'none'}", "--no-consent-record",
                       "--out", str(tmp_path / "r")]) == 2
    assert "No faceset" in capsys.readouterr().err
    assert entrypoint(["model", "info", str(tmp_path / "none")]) == 2


@pytest.mark.slow
def test_two_processes_under_torchrun(facesets, tmp_path):
    """DistributedDataParallel on the CPU (gloo): two processes train one model, process 0 checkpoints it."""
    import os
    import shutil
    import subprocess
    import sys

    from vfx.comb.checkpoint import load_checkpoint, read_manifest

    vfx = shutil.which("vfx", path=os.path.dirname(sys.executable))
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", vfx, "train",
               "--persona", f"hopper={facesets['hopper']}", "--persona", f"astronaut={facesets['astronaut']}",
               "--no-consent-record", "--out", str(run), "--res", "16", "--width", "0.05", "--iters-per-level", "2",
               "--batch", "2", "--holdout", "0.2", "--device", "cpu"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "VFX_NO_PROGRESS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_manifest(run).step == 6
    net, _, _ = load_checkpoint(run)
    assert net.level == 2


@pytest.mark.slow
def test_real_footage_pair_trains_to_a_recognisable_reconstruction(shared_clips, tmp_path, capsys):
    """A short version of the closing note's real-footage run: 60 frames of each CI clip, 32², a few minutes."""
    folders = {}
    for name, clip in (("x", "pair_x_aoc.mp4"), ("y", "pair_y_kh.mp4")):
        folders[name] = tmp_path / name
        assert entrypoint(["extract", str(shared_clips / clip), "--out", str(folders[name]), "--frames", "1001-1060",
                           "--size", "64"]) == 0
    capsys.readouterr()
    assert entrypoint(["train", "--persona", f"x={folders['x']}", "--persona", f"y={folders['y']}",
                       "--no-consent-record", "--out", str(tmp_path / "run"), "--res", "32", "--width", "0.25",
                       "--iters-per-level", "150", "--batch", "8", "--holdout", "0.1"]) == 0
    out = capsys.readouterr().out
    scores = [float(v) for v in re.findall(r"face only ([0-9.]+)", out)]
    assert len(scores) == 2 and min(scores) > 0.6, out  # held-out faces, never seen in training


@pytest.mark.parametrize("processes", [1, 2])
def test_farm_train_task_trains_the_shot_model_once(facesets, tmp_path, processes):
    """`vfx task run SHOT --stage train` trains model.checkpoint to model.training's budget (torchrun with
    more than one process), and a rerun finds it trained."""
    import json

    from vfx.comb.checkpoint import read_manifest

    shot = tmp_path / "sh010.yaml"
    shot.write_text(f"""\
schema: vfx.Shot/1
name: sh010
plate: {{path: plates/sh010.####.exr, frames: 1001-1010}}
personas:
  hopper: {{faceset: {facesets['hopper']}, consent: "public domain (US Navy photo)"}}
  astronaut: {{faceset: {facesets['astronaut']}, consent: "public domain (NASA photo)"}}
model:
  checkpoint: models/sh010_comb
  resolution: 16
  width: 0.05
  training: {{iters_per_level: 2, batch_size: 2, gpus: {processes}}}
outputs: {{exr: out/sh010.####.exr}}
""")
    task = ["task", "run", str(shot), "--stage", "train", "--device", "cpu", "--threads", "1"]
    assert entrypoint(task) == 0
    assert read_manifest(tmp_path / "models" / "sh010_comb").step == 6  # 3 levels x 2
    record = json.loads((tmp_path / "out" / "sh010_farm" / "train.json").read_text())
    assert record["state"] == "done" and record["frames_done"] == 6
    assert entrypoint(task) == 0
    record = json.loads((tmp_path / "out" / "sh010_farm" / "train.json").read_text())
    assert record["frames_skipped"] == 6 and record["frames_done"] == 0 and record["attempt"] == 2
    no_consent = tmp_path / "no_consent.yaml"
    no_consent.write_text(shot.read_text().replace('consent: "public domain (NASA photo)"', "consent: null"))
    assert entrypoint(["task", "run", str(no_consent), "--stage", "train", "--device", "cpu"]) == 2


# ---------------------------------------------------------------------------------------------- the one plan

def _training_shot(folder, facesets, training: str, *, consent: str = '"public domain (NASA photo)"'):
    shot = folder / "sh020.yaml"
    shot.write_text(f"""\
schema: vfx.Shot/1
name: sh020
plate: {{path: plates/sh020.####.exr, frames: 1001-1010}}
personas:
  hopper: {{faceset: {facesets['hopper']}, consent: "public domain (US Navy photo)"}}
  astronaut: {{faceset: {facesets['astronaut']}, consent: {consent}}}
model:
  checkpoint: models/sh020_comb
  resolution: 16
  width: 0.05
  {training}
outputs: {{exr: out/sh020.####.exr}}
""")
    return shot


def test_cli_and_farm_hand_train_comb_the_same_plan(facesets, tmp_path, monkeypatch):
    """`vfx train SHOT` and the farm's train task make one plan from the shot: train_comb gets the same
    TrainConfig, architecture, run folder, persona records and crops either way."""
    import vfx.comb.train
    from vfx.comb.plan import plan_training
    from vfx.errors import VfxError
    from vfx.farm.stages import check_training
    from vfx.farm.task import TaskOptions, run_task
    from vfx.shot import load_shot

    class Stop(VfxError):
        exit_code = 1

    shot = _training_shot(tmp_path, facesets, "training: {iters_per_level: 3, batch_size: 2, mask: both, holdout: 0.2}")
    calls = []

    def capture(personas, run, **kwargs):
        kwargs.pop("report", None)
        calls.append({"personas": {n: (len(d), d.data_hash) for n, d in personas.items()}, "run": run, **kwargs})
        raise Stop("captured")

    monkeypatch.setattr(vfx.comb.train, "train_comb", capture)
    assert entrypoint(["train", str(shot), "--device", "cpu"]) == 1
    with pytest.raises(Stop):
        run_task(shot, "train", options=TaskOptions(device="cpu"))
    cli, farm = calls
    assert cli == farm
    config = cli["config"]
    assert (config.iters_per_level, config.batch_size, config.mask_mode, config.checkpoint_every) == (3, 2, "both", 3)
    assert cli["records"]["astronaut"].consent == "public domain (NASA photo)"
    plan = plan_training(load_shot(shot))
    assert check_training(load_shot(shot)) == plan and plan.config == config and plan.holdout == 0.2
    assert plan.total_iterations == 3 * 3  # 4², 8², 16²


def test_one_set_of_defaults_and_overrides(facesets, tmp_path):
    """Without model.training `vfx train SHOT` uses ModelTraining()'s defaults, which are TrainConfig's own;
    the checkpoint interval follows one rule; command-line overrides win over the shot."""
    from vfx.comb.plan import DEFAULT_RESOLUTION, DEFAULT_WIDTH, TrainingOverrides, plan_training
    from vfx.comb.train import TrainConfig
    from vfx.shot import load_shot
    from vfx.shot.schema import ModelTraining

    defaults = ModelTraining()
    config = TrainConfig()
    assert (config.iters_per_level, config.fine_tune_iters, config.batch_size, config.mask_mode, config.seed) == (
        defaults.iters_per_level, defaults.fine_tune_iters, defaults.batch_size, defaults.mask, defaults.seed)
    assert config.iters_per_level == 1000 and config.checkpoint_every == 500
    assert TrainConfig(iters_per_level=2).checkpoint_every == 2 and TrainConfig(checkpoint_every=0).checkpoint_every == 0
    plain = plan_training(load_shot(_training_shot(tmp_path, facesets, "")))
    assert plain.config == TrainConfig() and plain.holdout == defaults.holdout
    assert (plain.resolution, plain.width) == (16, 0.05)
    shot = load_shot(_training_shot(tmp_path, facesets, "training: {iters_per_level: 7, seed: 3}"))
    plan = plan_training(shot, TrainingOverrides(iters_per_level=5, width=0.1, checkpoint_every=2))
    assert (plan.config.iters_per_level, plan.config.seed, plan.config.checkpoint_every, plan.width) == (5, 3, 2, 0.1)
    loose = plan_training(None, TrainingOverrides(personas=(("hopper", facesets["hopper"]),), out=tmp_path / "r",
                                                  no_consent_record=True))
    assert (loose.resolution, loose.width, loose.unconsented) == (DEFAULT_RESOLUTION, DEFAULT_WIDTH, ("hopper",))


def test_cli_and_farm_refuse_a_persona_without_consent_alike(facesets, tmp_path, capsys):
    """One consent policy: refused by both, with the same message; only `vfx train --no-consent-record` overrides."""
    from vfx.comb.plan import consent_refusal
    from vfx.farm.task import read_record

    shot = _training_shot(tmp_path, facesets, "training: {iters_per_level: 1, batch_size: 1}", consent="null")
    message = str(consent_refusal(["astronaut"]))
    assert entrypoint(["train", str(shot)]) == 2
    assert message in capsys.readouterr().err
    assert entrypoint(["task", "run", str(shot), "--stage", "train", "--device", "cpu"]) == 2
    assert message in capsys.readouterr().err
    record = read_record(tmp_path / "out" / "sh020_farm" / "train.json")
    assert record.state == "bad_input" and record.message == message
    assert not (tmp_path / "models").exists()
