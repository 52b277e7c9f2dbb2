"""Farm: the task graph of a shot, the task command, the local and Ray engines, faults and recovery."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_swap import _with_model, demo_without_face_on_1008, save_tiny_model
from vfx.cli import entrypoint
from vfx.errors import ConfigError, FrameRangeError
from vfx.farm.graph import build_graph, farm_folder
from vfx.farm.local import run_local
from vfx.farm.status import farm_status, format_status
from vfx.farm.task import (
    STALE_AFTER_S,
    TaskBusyError,
    TaskLock,
    TaskRecord,
    read_record,
    run_task,
)
from vfx.io.image import read_image
from vfx.render.rendered import read_rendered_frame
from vfx.retouch.edits import edits_from_shot
from vfx.shot import FrameRange, load_shot, save_shot
from vfx.shot.schema import EditVectorConfig, FarmConfig, ModelTraining
from vfx.utils.atomic import TEMP_MARKER

FRAMES = [f"{f}" for f in range(1001, 1009)]


@pytest.fixture(scope="module")
def farm_base(tmp_path_factory) -> Path:
    """The 8-frame 128² demo plate (frame 1008 without a face) with a tiny model: the shot file of a farm run."""
    folder = tmp_path_factory.mktemp("farm")
    result = demo_without_face_on_1008(folder)
    save_tiny_model(folder / "models" / "tiny")
    save_shot(_with_model(load_shot(result.shot_file), folder / "models" / "tiny"), folder / "base.yaml")
    return folder / "base.yaml"


def shot_in(base: Path, name: str, **farm: int) -> Path:
    """A copy of the base shot whose outputs (and task records) go to their own folder ``out_<name>``."""
    shot = load_shot(base)
    out = base.parent / f"out_{name}"
    outputs = shot.outputs.model_copy(update={"exr": out / "demo_swap.####.exr", "review": out / "demo_review.mp4",
                                              "comp_package": out / "comp"})
    path = base.parent / f"{name}.yaml"
    save_shot(shot.model_copy(update={"outputs": outputs, "farm": FarmConfig(**farm)}), path)
    return path


def frames_of(shot_file: Path) -> dict[str, tuple[bytes, bytes]]:
    """Each rendered frame's beauty and matte pixels, as bytes (bit-exact comparison)."""
    shot = load_shot(shot_file)
    pattern = str(shot.outputs.exr)
    out = {}
    for frame in FRAMES:
        done = read_rendered_frame(pattern.replace("####", frame))
        out[frame] = (done.rgb.tobytes(), done.matte.tobytes())
    return out


def temp_files(shot_file: Path) -> list[Path]:
    return list(Path(load_shot(shot_file).outputs.exr).parent.rglob(f"*{TEMP_MARKER}*"))


@pytest.fixture(scope="module")
def whole(farm_base) -> Path:
    """The demo shot rendered by the local engine with every stage as one task (chunk = the whole shot)."""
    shot_file = shot_in(farm_base, "whole")
    summary = run_local(build_graph(shot_file, chunk=8), workers=2, deterministic=True)
    assert summary.exit_code == 0, summary.describe()
    return shot_file


# ---------------------------------------------------------------------------------------------- graph

def test_graph_of_the_demo_shot(farm_base):
    graph = build_graph(shot_in(farm_base, "graph"), chunk=3)
    assert graph.stages == ("extract", "track", "swap", "package")
    assert [t.id for t in graph.tasks] == ["extract.1001-1008", "track", "swap.1001-1003", "swap.1004-1006",
                                           "swap.1007-1008", "package"]
    assert graph.task("track").after == ("extract.1001-1008",)
    assert graph.task("swap.1004-1006").after == ("track",)
    assert graph.task("package").after == ("swap.1001-1003", "swap.1004-1006", "swap.1007-1008")
    assert graph.stage_chunk("extract") == 10 and graph.stage_chunk("swap") == 3
    assert graph.task("swap.1001-1003").args(graph.shot_file) == [
        "task", "run", str(graph.shot_file), "--stage", "swap", "--frames", "1001-1003"]
    assert build_graph(graph.shot_file).chunk == 10  # the shot's farm.chunk_size


def test_graph_with_training_edits_and_retouch(farm_base, tmp_path):
    shot = load_shot(farm_base)
    model = shot.model.model_copy(update={"training": ModelTraining(iters_per_level=10)})
    shot = shot.model_copy(update={"model": model,
                                   "retouch": edits_from_shot([{"name": "smile", "group": "mouth", "scale": [1.1, 1.0]}]),
                                   "edit_vectors": [EditVectorConfig(vector=tmp_path / "lips.vfxedit")]})
    save_shot(shot, tmp_path / "all.yaml")
    graph = build_graph(tmp_path / "all.yaml", chunk=4)
    # The demo's personas are footage: the personas task extracts them before the model trains.
    assert graph.stages == ("personas", "extract", "track", "train", "swap", "seghead", "edit", "refiner", "retouch",
                            "package")
    after = graph.stage_after
    assert after["personas"] == () and after["train"] == ("personas",)
    assert after["swap"] == ("track", "train") and after["seghead"] == ("train",)
    assert after["edit"] == ("swap", "seghead") and after["refiner"] == ("edit",)
    assert after["retouch"] == ("refiner",) and after["package"] == ("retouch",)
    assert [t.id for t in graph.of_stage("edit")] == ["edit.1001-1004", "edit.1005-1008"]


def test_graph_refuses_a_shot_that_renders_nothing(farm_base, tmp_path):
    shot = load_shot(farm_base)
    save_shot(shot.model_copy(update={"swap": None}), tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match="nothing to render"):
        build_graph(tmp_path / "none.yaml")
    with pytest.raises(FrameRangeError):
        build_graph(farm_base, frames=FrameRange.parse("1005-1020"))


def test_openjd_frames_are_translated():
    assert FrameRange.parse_openjd("1001-1007:2").frames == (1001, 1003, 1005, 1007)
    assert FrameRange.parse_openjd("1001-1003,1010").frames == (1001, 1002, 1003, 1010)
    with pytest.raises(FrameRangeError):
        FrameRange.parse_openjd("1001-1010x2")


# ---------------------------------------------------------------------------------------------- chunked = whole

def test_chunked_equals_whole_on_the_local_engine(farm_base, whole):
    chunked = shot_in(farm_base, "chunk5")
    lines: list[str] = []
    summary = run_local(build_graph(chunked, chunk=5), workers=2, deterministic=True, report=lines.append)
    assert summary.exit_code == 0, summary.describe()
    assert len(summary.ran) == 5 and len(lines) == 5  # extract, track, swap x2, package
    assert frames_of(chunked) == frames_of(whole)
    shot = load_shot(chunked)
    assert Path(shot.outputs.review).is_file() and (Path(shot.outputs.comp_package) / "demo.nk").is_file()
    assert not temp_files(chunked)
    rows = farm_status(build_graph(chunked, chunk=5))
    assert [r.state for r in rows] == ["done"] * 5
    assert [(r.frames_done, r.frames_total) for r in rows if r.task.startswith("swap")] == [(5, 5), (3, 3)]
    table = format_status(rows)
    assert "swap.1006-1008" in table and "done 5" in table
    # A second run finds every task done and runs nothing.
    again = run_local(build_graph(chunked, chunk=5), workers=2)
    assert again.ran == [] and len(again.skipped) == 5


def test_chunked_equals_whole_on_ray(farm_base, whole):
    pytest.importorskip("ray")
    from vfx.farm.ray_engine import run_ray

    chunked = shot_in(farm_base, "ray5")
    summary = run_ray(build_graph(chunked, chunk=5), num_cpus=2, deterministic=True,
                      init_options={"object_store_memory": 80 * 1024 * 1024})
    assert summary.exit_code == 0, summary.describe()
    assert frames_of(chunked) == frames_of(whole)
    assert not temp_files(chunked)


# ---------------------------------------------------------------------------------------------- personas as footage

def test_farm_run_extracts_footage_personas_trains_and_swaps(farm_base, capsys):
    """`vfx farm run` of the demo shot, whose personas are footage, with model.training: the personas task
    extracts their facesets, the model trains on them, the swap and the package follow, nothing by hand."""
    from vfx.comb.checkpoint import read_manifest
    from vfx.farm.task import TaskOptions
    from vfx.shot.layout import persona_faceset_folder
    from vfx.shot.schema import ModelConfig

    shot_file = shot_in(farm_base, "footage")
    shot = load_shot(shot_file)
    out = Path(shot.outputs.exr).parent
    personas = {name: p.model_copy(update={"consent": f"{name}: public-domain portrait, tests only"})
                for name, p in shot.personas.items()}
    assert all(p.footage is not None and p.faceset is None for p in personas.values())
    model = ModelConfig(checkpoint=out / "model", resolution=32, width=0.05,
                        training=ModelTraining(iters_per_level=2, batch_size=2))
    save_shot(shot.model_copy(update={"personas": personas, "model": model}), shot_file)
    shot = load_shot(shot_file)
    graph = build_graph(shot_file)
    assert graph.stages == ("personas", "extract", "track", "train", "swap", "package")
    assert entrypoint(["farm", "run", str(shot_file), "--workers", "2"]) == 0, capsys.readouterr().err[-3000:]
    assert [r.state for r in farm_status(graph)] == ["done"] * len(graph.tasks)
    for name in personas:
        faceset = persona_faceset_folder(shot, name)
        assert faceset.parent == out / "demo_personas" and len(list((faceset / "crops").rglob("*.png"))) >= 6
    manifest = read_manifest(out / "model")
    assert manifest.step == 4 * 2 and manifest.level == 3  # 4² ... 32², two iterations each
    assert {r.name: r.facesets for r in manifest.personas} == {
        n: (str(persona_faceset_folder(shot, n)),) for n in personas}
    assert read_rendered_frame(str(shot.outputs.exr).replace("####", "1003")).info.persona == "hopper"
    assert Path(shot.outputs.review).is_file() and (Path(shot.outputs.comp_package) / "demo.nk").is_file()
    # The personas task is idempotent: run again, it finds both facesets complete and loads no model.
    again = run_task(shot_file, "personas", options=TaskOptions(device="cpu"))
    assert again.frames_skipped == 2 and again.frames_done == 0 and "already extracted" in again.message
    # `vfx train SHOT` runs the same plan (same extraction, here found complete) into another run folder.
    assert entrypoint(["train", str(shot_file), "--out", str(out / "cli_model"), "--device", "cpu"]) == 0
    cli = read_manifest(out / "cli_model")
    assert cli.step == manifest.step and cli.personas == manifest.personas


# ---------------------------------------------------------------------------------------------- the task command

def test_task_command_is_idempotent_and_records_itself(farm_base, whole, capsys):
    shot = load_shot(whole)
    first = Path(str(shot.outputs.exr).replace("####", "1002"))
    stamp = first.stat().st_mtime_ns
    code = entrypoint(["task", "run", str(whole), "--stage", "swap", "--frames", "1001-1004", "--device", "cpu",
                       "--progress", "openjd"])
    assert code == 0
    assert first.stat().st_mtime_ns == stamp  # skipped, not rewritten
    assert "openjd_progress: 100" in capsys.readouterr().out
    record = read_record(farm_folder(shot) / "swap.1001-1004.json")
    assert record.state == "done" and record.frames_skipped == 4 and record.frames_done == 0
    assert record.shot_hash == shot.content_hash() and record.exit_code == 0
    assert not (farm_folder(shot) / "swap.1001-1004.lock").exists()


def test_a_worker_keeps_its_model_between_chunks(farm_base, whole, monkeypatch):
    """What a Ray worker does: tasks run in one process with one cache load the swap model once."""
    import vfx.swap.swapper

    shot_file = shot_in(farm_base, "cache")
    shutil.copytree(Path(load_shot(whole).outputs.exr).parent / "demo_plate_faces",
                    Path(load_shot(shot_file).outputs.exr).parent / "demo_plate_faces")
    cache: dict[object, object] = {}
    loads = []
    real = vfx.swap.swapper.open_swap_model
    monkeypatch.setattr(vfx.swap.swapper, "open_swap_model", lambda *a, **k: loads.append(1) or real(*a, **k))
    for chunk in ("1001-1004", "1005-1008"):
        assert run_task(shot_file, "swap", FrameRange.parse(chunk), cache=cache).frames_done == 4
    assert len(loads) == 1 and len(cache) == 1


def test_bad_input_exits_2_and_is_recorded(farm_base, tmp_path, capsys):
    shot_file = shot_in(farm_base, "bad")
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: x\nplate: {}\n")
    assert entrypoint(["task", "run", str(bad), "--stage", "swap"]) == 2
    assert entrypoint(["task", "run", str(shot_file), "--stage", "paint"]) == 2
    assert "extract" in capsys.readouterr().err  # the valid stages are listed
    assert entrypoint(["task", "run", str(shot_file), "--stage", "swap", "--frames", "1007-1012", "--device", "cpu"]) == 2
    assert "outside" in capsys.readouterr().err
    record = read_record(farm_folder(load_shot(shot_file)) / "swap.1007-1012.json")
    assert record.state == "bad_input" and record.exit_code == 2 and "outside" in record.message
    assert entrypoint(["task", "run", str(shot_file), "--stage", "track", "--frames", "1001-1002"]) == 2
    assert entrypoint(["farm", "run", str(shot_file), "--engine", "dask"]) == 2
    err = capsys.readouterr().err
    assert "local" in err and "ray" in err
    assert entrypoint(["farm", "export", str(shot_file), "--to", "tractor", str(tmp_path / "job")]) == 2
    err = capsys.readouterr().err
    assert "opencue" in err and "openjd" in err and "deadline" in err


def test_local_engine_never_retries_bad_input(farm_base, whole, tmp_path):
    """A task that meets bad input (here: the shot's model is gone) runs once; what waits for it never runs."""
    shot_file = shot_in(farm_base, "nomodel")
    shot = load_shot(shot_file)
    model = shot.model.model_copy(update={"checkpoint": tmp_path / "no_such_model"})
    save_shot(shot.model_copy(update={"model": model}), shot_file)
    # The plate's faces are those of the whole run (same plate, same settings): only the swap has work.
    shutil.copytree(Path(load_shot(whole).outputs.exr).parent / "demo_plate_faces",
                    Path(shot.outputs.exr).parent / "demo_plate_faces")
    summary = run_local(build_graph(shot_file, chunk=8), workers=1, retries=2)
    assert summary.exit_code == 2
    (swap,) = [r for r in summary.failed]
    assert swap.task == "swap.1001-1008" and swap.exit_code == 2 and swap.attempts == 1
    assert summary.not_run == ["package"]
    record = read_record(farm_folder(shot) / "swap.1001-1008.json")
    assert record.state == "bad_input" and "no_such_model" in record.message


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_lock_and_status_of_a_killed_run_are_recovered(farm_base, whole):
    stale_shot = shot_in(farm_base, "stale")
    shutil.copytree(Path(load_shot(whole).outputs.exr).parent, Path(load_shot(stale_shot).outputs.exr).parent)
    whole = stale_shot  # a copy of the whole run's outputs: the frames of `whole` stay the reference
    shot = load_shot(whole)
    folder = farm_folder(shot)
    ident = "swap.1005-1008"
    dead = _dead_pid()
    (folder / f"{ident}.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": dead, "since": 0}))
    TaskRecord(task=ident, stage="swap", frames="1005-1008", state="running", host=socket.gethostname(), pid=dead,
               attempt=1, started=time.time() - 60).write(folder / f"{ident}.json")
    graph = build_graph(whole, chunk=4)
    assert {r.task: r.state for r in farm_status(graph)}[ident] == "killed"
    frame = Path(str(shot.outputs.exr).replace("####", "1006"))
    frame.unlink()
    leftover = frame.with_name(f".{frame.stem}.abc{TEMP_MARKER}.exr")
    leftover.write_bytes(b"half a frame")
    done = run_task(whole, "swap", FrameRange.parse("1005-1008"))
    assert done.state == "done" and done.attempt == 2 and done.frames_done == 1 and done.frames_skipped == 3
    assert not leftover.exists() and frame.is_file()
    assert not (folder / f"{ident}.lock").exists()


def test_a_live_lock_is_respected_and_an_old_foreign_one_taken_over(tmp_path):
    lock_file = tmp_path / "t.lock"
    lock_file.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": 0}))
    with pytest.raises(TaskBusyError, match="held") as err:
        TaskLock(lock_file).acquire()
    assert err.value.exit_code == 1  # the farm retries later
    lock_file.write_text(json.dumps({"host": "render-node-17", "pid": 1, "since": 0}))
    with pytest.raises(TaskBusyError):
        TaskLock(lock_file).acquire()  # another host, heartbeat fresh: it may still be running
    old = time.time() - STALE_AFTER_S - 5
    os.utime(lock_file, (old, old))
    lock = TaskLock(lock_file)
    lock.acquire()
    assert json.loads(lock_file.read_text())["pid"] == os.getpid()
    lock.release()
    assert not lock_file.exists()


# ---------------------------------------------------------------------------------------------- faults

STAGE_OUTPUTS = {"swap": "frames", "track": "faces", "extract": "cache", "package": "package"}


def _reset(shot_file: Path, stage: str) -> None:
    """Remove a stage's outputs and record, so its task has everything to do again."""
    shot = load_shot(shot_file)
    out = Path(shot.outputs.exr).parent
    faces = out / "demo_plate_faces"
    if stage == "swap":
        for frame in FRAMES:
            Path(str(shot.outputs.exr).replace("####", frame)).unlink(missing_ok=True)
    elif stage == "track":
        shutil.rmtree(faces / "crops", ignore_errors=True)
        (faces / "index.jsonl").unlink(missing_ok=True)
    elif stage == "extract":
        shutil.rmtree(faces / "cache", ignore_errors=True)
    else:
        Path(shot.outputs.review).unlink(missing_ok=True)
        shutil.rmtree(shot.outputs.comp_package, ignore_errors=True)


def _stage_files(shot_file: Path, stage: str) -> dict[str, bytes]:
    shot = load_shot(shot_file)
    out = Path(shot.outputs.exr).parent
    roots = {"swap": [out], "track": [out / "demo_plate_faces"], "extract": [out / "demo_plate_faces" / "cache"],
             "package": [out / "comp"]}[stage]
    files = {}
    for root in roots:
        for path in sorted(root.rglob("*") if stage != "swap" else root.glob("demo_swap.*.exr")):
            if path.is_file() and TEMP_MARKER not in path.name:
                files[str(path.relative_to(out))] = _content(path)
    return files


def _content(path: Path) -> bytes:
    """A file's content; for an EXR its channels' pixels (its header stamps the time it was written)."""
    if path.suffix != ".exr":
        return path.read_bytes()
    image = read_image(path)
    return "/".join(image.channels).encode() + image.pixels.tobytes()


@pytest.mark.slow
def test_kill_9_mid_task_then_rerun_gives_the_uninterrupted_result(farm_base, whole):
    """Twenty kills at random points of random stages: the rerun redoes only what is missing, the result is
    the uninterrupted run's, and no half-written file is ever left under its real name."""
    shot_file = shot_in(farm_base, "faults", chunk_size=8)
    assert run_local(build_graph(shot_file), workers=2, deterministic=True).exit_code == 0
    reference = {stage: _stage_files(shot_file, stage) for stage in STAGE_OUTPUTS}
    reference_frames = frames_of(shot_file)
    chunk = {"swap": "1001-1008", "extract": "1001-1008"}
    rng = random.Random(7)
    folder = farm_folder(load_shot(shot_file))
    killed_mid_work = 0
    for trial in range(20):
        stage = rng.choice(["swap", "swap", "swap", "track", "extract", "package"])
        _reset(shot_file, stage)
        ident = stage if stage not in chunk else f"{stage}.{chunk[stage]}"
        command = [sys.executable, "-m", "vfx", "task", "run", str(shot_file), "--stage", stage, "--device", "cpu",
                   "--deterministic", *(["--frames", chunk[stage]] if stage in chunk else [])]
        before = read_record(folder / f"{ident}.json")
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=dict(os.environ, VFX_NO_PROGRESS="1"))
        deadline = time.time() + 60
        while time.time() < deadline and process.poll() is None:  # wait for the task to start its work
            record = read_record(folder / f"{ident}.json")
            if record is not None and record.state == "running" and record.pid == process.pid:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.5))
        if process.poll() is None:
            killed_mid_work += 1
        process.kill()
        process.wait()
        # Whatever is there under a real name is complete: a file of the uninterrupted run, byte for byte.
        for name, data in _stage_files(shot_file, stage).items():
            if stage != "package" or not name.endswith(".nk"):
                assert reference[stage].get(name) == data, f"trial {trial}: {name} differs after a kill"
        assert entrypoint(command[3:]) == 0
        after = read_record(folder / f"{ident}.json")
        assert after.state == "done" and after.attempt > (before.attempt if before else 0)
        assert _stage_files(shot_file, stage) == reference[stage], f"trial {trial}: {stage} differs after the rerun"
        assert not temp_files(shot_file), f"trial {trial}: temporary files left"
    assert killed_mid_work >= 10
    assert frames_of(shot_file) == reference_frames == frames_of(whole)


@pytest.mark.slow
def test_ray_cluster_losing_a_node_mid_job_still_completes(farm_base, whole):
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from vfx.farm.ray_engine import run_ray

    shot_file = shot_in(farm_base, "raynodes")
    store = 80 * 1024 * 1024
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": store})
    workers = [cluster.add_node(num_cpus=1, object_store_memory=store) for _ in range(2)]
    try:
        cluster.wait_for_nodes()
        folder = farm_folder(load_shot(shot_file))
        results = {}

        def run() -> None:
            results["summary"] = run_ray(build_graph(shot_file, chunk=1), address=cluster.address, retries=3,
                                         deterministic=True, shutdown=False)

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.time() + 120
        while time.time() < deadline and not any(
                (r := read_record(p)) is not None and r.state == "running" for p in folder.glob("swap.*.json")):
            time.sleep(0.05)
        cluster.remove_node(workers[0])  # a render node drops out mid-job
        thread.join(timeout=600)
        summary = results["summary"]
        assert summary.exit_code == 0, summary.describe()
        assert frames_of(shot_file) == frames_of(whole)
        assert not temp_files(shot_file)
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.slow
def test_exported_openjd_template_renders_the_shot_with_openjd_run(farm_base, whole, tmp_path):
    openjd = Path(sys.executable).with_name("openjd")
    if not openjd.is_file():
        pytest.skip("openjd-cli is not installed")
    from vfx.farm.export import export_graph

    shot_file = shot_in(farm_base, "openjd")
    graph = build_graph(shot_file, chunk=3)
    (template,) = [p for p in export_graph(graph, "openjd", tmp_path / "job",
                                           executable=str(Path(sys.executable).with_name("vfx")))
                   if p.suffix in (".yaml", ".json")]
    for step in graph.stages:  # openjd run runs one step; in the graph's order, as a farm would
        done = subprocess.run([str(openjd), "run", str(template), "--step", step], capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert frames_of(shot_file) == frames_of(whole)
    assert [r.state for r in farm_status(graph)] == ["done"] * len(graph.tasks)
    assert np.all([Path(load_shot(shot_file).outputs.review).is_file()])
