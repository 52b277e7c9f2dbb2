"""Farm-manager exports of a shot's task graph: OpenCue job XML (checked against the CJSL DTD), an Open Job
Description template (checked and run for real with ``openjd run`` and a fake task command), and Deadline 10
job files (parsed, and submitted through ``submit.sh`` to a fake ``deadlinecommand``)."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.test_swap import _with_model, demo_without_face_on_1008, save_tiny_model
from vfx.errors import ConfigError
from vfx.farm.export import EXPORT_TARGETS, OPENJD_GROUP_ATTRIBUTE, FarmPlacement, export_graph
from vfx.farm.graph import Task, TaskGraph, build_graph
from vfx.shot import FrameRange, load_shot, save_shot
from vfx.shot.schema import FarmConfig, ModelTraining

DTD = Path(__file__).resolve().parents[2] / "shared" / "specs" / "cjsl-1.15.dtd"
OPENJD = Path(sys.executable).with_name("openjd")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> dict[str, Path]:
    """The 8-frame demo shot (1001-1008) with a tiny model, saved under a folder with a space in its name (so
    every export has to quote the shot file), plus variants: stepped frames, an arbitrary frame list, and one
    that trains its model on 2 GPUs."""
    folder = tmp_path_factory.mktemp("export")
    result = demo_without_face_on_1008(folder)
    save_tiny_model(folder / "models" / "tiny")
    shot = _with_model(load_shot(result.shot_file), folder / "models" / "tiny")
    files = folder / "shot files"
    variants = {
        "plain": shot,
        "stepped": shot.model_copy(update={"plate": shot.plate.model_copy(
            update={"frames": FrameRange.parse("1001-1008x2")})}),
        "list": shot.model_copy(update={"plate": shot.plate.model_copy(
            update={"frames": FrameRange.parse("1001-1003,1006-1008")})}),
        # personas given as facesets: the graph starts at the plate (footage would add a `personas` stage first)
        "train": shot.model_copy(update={"model": shot.model.model_copy(
            update={"training": ModelTraining(iters_per_level=1, gpus=2)}),
            "personas": {name: persona.model_copy(update={"footage": None, "faceset": folder / "facesets" / name,
                                                          "consent": "test data"})
                         for name, persona in shot.personas.items()}}),
    }
    # the `train` variant placed on a farm: pool, a CPU group, a GPU group and a priority
    variants["placed"] = variants["train"].model_copy(update={"farm": FarmConfig(
        pool="show_a", group="cpu_nodes", gpu_group="gpu-a100", priority=80)})
    paths = {}
    for name, variant in variants.items():
        paths[name] = files / f"{name}.yaml"
        save_shot(variant, paths[name])
    return paths


def _cue_layers(path: Path):
    from lxml import etree

    doc = etree.parse(str(path))
    layers = {layer.get("name"): layer for layer in doc.iter("layer")}
    depends = {(d.findtext("deplayer"), d.findtext("onlayer"), d.get("type")) for d in doc.iter("depend")}
    return doc, layers, depends


def test_opencue_xml_validates_and_names_the_task_command(shots, tmp_path):
    etree = pytest.importorskip("lxml.etree")
    pytest.importorskip("outline")
    graph = build_graph(shots["plain"], chunk=3)
    shot_before = os.environ.get("SHOT")
    (path,) = export_graph(graph, "opencue", tmp_path / "cue", executable="/opt/vfx/bin/vfx",
                           extra_args=["--device", "cuda"])
    assert path == tmp_path / "cue" / "demo.opencue.xml"
    assert os.environ.get("SHOT") == shot_before  # pyoutline's launcher setup (which exports $SHOT) is not run
    doc, layers, depends = _cue_layers(path)
    assert etree.DTD(str(DTD)).validate(doc), etree.DTD(str(DTD)).error_log
    assert list(layers) == ["extract", "track", "swap", "package"]
    expected = {"extract": ("1001-1008", "10"), "track": ("1001", "1"), "swap": ("1001-1008", "3"),
                "package": ("1001", "1")}
    assert {n: (layer.findtext("range"), layer.findtext("chunk")) for n, layer in layers.items()} == expected
    assert depends == {("track", "extract", "LAYER_ON_LAYER"), ("swap", "track", "LAYER_ON_LAYER"),
                       ("package", "swap", "LAYER_ON_LAYER")}
    assert layers["swap"].findtext("gpus") == "1" and layers["track"].find("gpus") is None
    # RQD runs the command through a shell: the shot file's space is quoted, the chunk token is not.
    cmd = layers["swap"].findtext("cmd")
    assert "#FRAME_START#-#FRAME_END#" in cmd.split()
    assert shlex.split(cmd) == ["/opt/vfx/bin/vfx", "task", "run", str(shots["plain"]), "--stage", "swap",
                                "--frames", "#FRAME_START#-#FRAME_END#", "--device", "cuda"]
    assert shlex.split(layers["track"].findtext("cmd")) == ["/opt/vfx/bin/vfx", "task", "run", str(shots["plain"]),
                                                           "--stage", "track", "--device", "cuda"]


def test_opencue_keeps_every_dependency_and_the_training_gpus(shots, tmp_path):
    pytest.importorskip("outline")
    graph = build_graph(shots["train"], chunk=3)
    (path,) = export_graph(graph, "opencue", tmp_path)
    _, layers, depends = _cue_layers(path)
    assert list(layers) == ["extract", "track", "train", "swap", "package"]
    assert layers["train"].findtext("gpus") == "2"
    assert {(a, b) for a, b, _ in depends} == {("track", "extract"), ("swap", "track"), ("swap", "train"),
                                               ("package", "swap")}


def _openjd_tasks(path: Path) -> dict[str, list[str]]:
    """Each step's tasks as openjd-model enumerates them (the values of its Frames parameter)."""
    import yaml
    from openjd.model import StepParameterSpaceIterator, create_job, decode_job_template

    template = decode_job_template(template=yaml.safe_load(path.read_text()))
    job = create_job(job_template=template, job_parameter_values={})
    return {step.name: ([] if step.parameterSpace is None else
                        [p["Frames"].value for p in StepParameterSpaceIterator(space=step.parameterSpace)])
            for step in job.steps}


def test_openjd_template_checks_and_lists_the_graph_chunks(shots, tmp_path):
    pytest.importorskip("openjd.model")
    import yaml

    graph = build_graph(shots["train"], chunk=3)
    (path,) = export_graph(graph, "openjd", tmp_path, extra_args=["--device", "cpu"])
    assert path.name == "demo.openjd.yaml"
    if OPENJD.is_file():
        _openjd_check(path)
    assert _openjd_tasks(path) == {"extract": ["1001-1008"], "track": [], "train": [],
                                   "swap": ["1001-1003", "1004-1006", "1007-1008"], "package": []}
    # What the task command parses back (--frame-syntax openjd) is the graph's tasks.
    swap = [FrameRange.parse_openjd(v) for v in _openjd_tasks(path)["swap"]]
    assert swap == [t.frames for t in graph.of_stage("swap")]
    steps = {s["name"]: s for s in yaml.safe_load(path.read_text())["steps"]}
    assert yaml.safe_load(path.read_text())["specificationVersion"] == "jobtemplate-2023-09"
    assert [d["dependsOn"] for d in steps["swap"]["dependencies"]] == ["track", "train"]
    assert "dependencies" not in steps["extract"] and "dependencies" not in steps["train"]
    assert steps["swap"]["script"]["actions"]["onRun"] == {"command": "vfx", "args": [
        "task", "run", str(shots["train"]), "--stage", "swap", "--frames", "{{Task.Param.Frames}}",
        "--frame-syntax", "openjd", "--progress", "openjd", "--device", "cpu"]}
    assert steps["train"]["script"]["actions"]["onRun"]["args"] == [
        "task", "run", str(shots["train"]), "--stage", "train", "--progress", "openjd", "--device", "cpu"]


def _openjd_check(template: Path) -> None:
    check = subprocess.run([str(OPENJD), "check", str(template)], check=False, capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def _fake_vfx(folder: Path) -> tuple[Path, Path]:
    """A stand-in for the vfx command that appends its arguments (one JSON list a line) to calls.jsonl."""
    calls = folder / "calls.jsonl"
    script = folder / "fake vfx.py"
    script.write_text(f"#!{sys.executable}\nimport json, sys\n"
                      f"with open({str(calls)!r}, 'a') as f:\n    f.write(json.dumps(sys.argv[1:]) + '\\n')\n")
    script.chmod(0o755)
    return script, calls


def _openjd_run(template: Path, step: str, calls: Path) -> list[list[str]]:
    run = subprocess.run([str(OPENJD), "run", str(template), "--step", step, "--no-run-dependencies"],
                         check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return [json.loads(line) for line in calls.read_text().splitlines()]


@pytest.mark.parametrize(("frames", "chunks"), [
    (None, ["1001-1003", "1004-1006", "1007-1008"]),
    # 7 frames by 3: OpenJD's own CHUNK[INT] would balance these to 1001-1003, 1004-1005, 1006-1007.
    ("1001-1007", ["1001-1003", "1004-1006", "1007"]),
])
def test_openjd_run_gives_the_task_command_exactly_the_graph_chunks(shots, tmp_path, frames, chunks):
    if not OPENJD.is_file():
        pytest.skip("openjd-cli is not installed")
    fake, calls = _fake_vfx(tmp_path)
    graph = build_graph(shots["plain"], chunk=3, frames=None if frames is None else FrameRange.parse(frames))
    (template,) = export_graph(graph, "openjd", tmp_path / "job", executable=str(fake))
    received = _openjd_run(template, "swap", calls)
    assert received == [["task", "run", str(shots["plain"]), "--stage", "swap", "--frames", chunk,
                         "--frame-syntax", "openjd", "--progress", "openjd"] for chunk in chunks]


def test_stepped_frames_are_written_in_each_managers_syntax(shots, tmp_path):
    graph = build_graph(shots["stepped"], chunk=3)
    assert str(graph.frames) == "1001-1007x2"
    if OPENJD.is_file():
        fake, calls = _fake_vfx(tmp_path)
        (template,) = export_graph(graph, "openjd", tmp_path / "jd", executable=str(fake))
        _openjd_check(template)
        # OpenJD's ':' is the step; a one-frame chunk is the frame alone.
        received = [call[6] for call in _openjd_run(template, "swap", calls)]
        assert received == ["1001-1005:2", "1007"]
        assert [FrameRange.parse_openjd(v) for v in received] == [t.frames for t in graph.of_stage("swap")]
        assert [call[6] for call in _openjd_run(template, "extract", calls)][-1] == "1001-1007:2"
    if importlib.util.find_spec("outline") is not None:
        (cue,) = export_graph(graph, "opencue", tmp_path / "cue")
        _, layers, _ = _cue_layers(cue)
        assert (layers["swap"].findtext("range"), layers["swap"].findtext("chunk")) == ("1001-1007x2", "3")
        assert layers["extract"].findtext("range") == "1001-1007x2" and layers["track"].findtext("range") == "1001"
        assert "#FRAME_START#-#FRAME_END#x2" in layers["swap"].findtext("cmd").split()
        # Cuebot cuts 1001-1007x2 by 3 into (1001, 1003, 1005) and (1007) and puts their bounds in the tokens.
        assert [FrameRange.parse(_substitute("#FRAME_START#-#FRAME_END#x2", "#FRAME_START#", "#FRAME_END#", t))
                for t in graph.of_stage("swap")] == [t.frames for t in graph.of_stage("swap")]
    deadline = _deadline_jobs(export_graph(graph, "deadline", tmp_path / "dl"))
    job, plugin = deadline["03_swap"]
    assert (job["Frames"], job["ChunkSize"]) == ("1001-1007x2", "3")
    assert plugin["Arguments"].endswith("--stage swap --frames <STARTFRAME>-<ENDFRAME>x2")
    assert [FrameRange.parse(_substitute(plugin["Arguments"].split()[-1], "<STARTFRAME>", "<ENDFRAME>", t))
            for t in graph.of_stage("swap")] == [t.frames for t in graph.of_stage("swap")]


def _substitute(spec: str, start: str, end: str, task: Task) -> str:
    """A manager's chunk tokens replaced by a task's first and last frame, as it does at dispatch."""
    return spec.replace(start, str(task.frames.first)).replace(end, str(task.frames.last))


def _key_values(path: Path) -> dict[str, str]:
    entries = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        assert line.count("=") == 1, f"{path.name}: {line!r} is not one key=value"
        key, value = line.split("=")
        assert key and key == key.strip() and key not in entries
        entries[key] = value
    return entries


def _deadline_jobs(paths: list[Path]) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    jobs = {}
    for path in paths:
        if path.name.endswith(".job_info.job"):
            stem = path.name.removesuffix(".job_info.job")
            jobs[stem] = (_key_values(path), _key_values(path.with_name(f"{stem}.plugin_info.job")))
    return jobs


def test_deadline_job_files_and_submit_script(shots, tmp_path):
    graph = build_graph(shots["train"], chunk=3)
    paths = export_graph(graph, "deadline", tmp_path / "dl", executable="/opt/vfx/bin/vfx",
                         extra_args=["--device", "cuda"])
    assert paths[-1].name == "submit.sh" and len(paths) == 2 * len(graph.stages) + 1
    jobs = _deadline_jobs(paths)
    assert list(jobs) == ["01_extract", "02_track", "03_train", "04_swap", "05_package"]
    frames = {stem: (job["Frames"], job["ChunkSize"]) for stem, (job, _) in jobs.items()}
    assert frames == {"01_extract": ("1001-1008", "10"), "02_track": ("1001", "1"), "03_train": ("1001", "1"),
                      "04_swap": ("1001-1008", "3"), "05_package": ("1001", "1")}
    job, plugin = jobs["04_swap"]
    assert job["Plugin"] == "CommandLine" and job["Name"] == "demo swap" and job["BatchName"] == "demo"
    assert job["MachineLimit"] == "0"
    assert job["OutputDirectory0"] == str(Path(graph.shot.outputs.exr).parent)
    assert "OutputDirectory0" not in jobs["01_extract"][0]
    assert plugin == {"Executable": "/opt/vfx/bin/vfx",
                      "Arguments": f"task run <QUOTE>{shots['train']}<QUOTE> --stage swap "
                                   "--frames <STARTFRAME>-<ENDFRAME> --device cuda",
                      "Shell": "default", "ShellExecute": "False", "SingleFramesOnly": "False"}
    assert jobs["02_track"][1]["Arguments"] == f"task run <QUOTE>{shots['train']}<QUOTE> --stage track --device cuda"

    # submit.sh hands deadlinecommand the jobs in dependency order, as a -dependent chain.
    record = tmp_path / "deadlinecommand.txt"
    fake = tmp_path / "deadlinecommand"
    fake.write_text(f'#!/bin/sh\nfor a in "$@"; do echo "$a"; done > {shlex.quote(str(record))}\n')
    fake.chmod(0o755)
    env = os.environ | {"DEADLINECOMMAND": str(fake)}
    subprocess.run(["sh", str(paths[-1])], check=True, env=env, cwd=tmp_path, timeout=30)
    argv = record.read_text().splitlines()
    assert argv[:2] == ["-SubmitMultipleJobs", "-dependent"]
    expected = []
    for stem in jobs:
        expected += ["-job", f"{stem}.job_info.job", f"{stem}.plugin_info.job"]
    assert argv[2:] == expected
    assert os.access(paths[-1], os.X_OK)


def test_unknown_target_lists_the_valid_ones(shots, tmp_path):
    graph = build_graph(shots["plain"], chunk=3)
    with pytest.raises(ConfigError) as err:
        export_graph(graph, "tractor", tmp_path)
    assert "'tractor'" in str(err.value) and "one of opencue, openjd, deadline" in str(err.value)
    assert EXPORT_TARGETS == ("opencue", "openjd", "deadline")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("target", EXPORT_TARGETS)
def test_an_arbitrary_frame_list_is_refused(shots, tmp_path, target):
    graph = build_graph(shots["list"], chunk=3)
    with pytest.raises(ConfigError, match="contiguous .* or stepped"):
        export_graph(graph, target, tmp_path)


def test_tasks_that_are_not_the_chunks_of_the_range_are_refused(shots, tmp_path):
    graph = build_graph(shots["plain"], chunk=3)
    tasks = [t for t in graph.tasks if t.stage != "swap"]
    after = graph.of_stage("swap")[0].after
    odd = [Task("swap", FrameRange.parse(f), after) for f in ("1001-1002", "1003-1008")]
    bad: TaskGraph = replace(graph, tasks=(*tasks[:2], *odd, *tasks[2:]))
    with pytest.raises(ConfigError, match="not consecutive chunks of 3"):
        export_graph(bad, "deadline", tmp_path)


# ---------------------------------------------------------------------------------------------------------
# Pool, group, GPU group and priority


def test_deadline_jobs_carry_pool_priority_and_each_stages_group(shots, tmp_path):
    graph = build_graph(shots["placed"], chunk=3)
    jobs = _deadline_jobs(export_graph(graph, "deadline", tmp_path / "dl"))
    placed = {stem: (job["Pool"], job["Group"], job["Priority"]) for stem, (job, _) in jobs.items()}
    assert placed == {"01_extract": ("show_a", "cpu_nodes", "80"), "02_track": ("show_a", "cpu_nodes", "80"),
                      "03_train": ("show_a", "gpu-a100", "80"), "04_swap": ("show_a", "gpu-a100", "80"),
                      "05_package": ("show_a", "cpu_nodes", "80")}
    # Without farm settings: Deadline's default priority, no pool or group (the repository's defaults apply).
    plain = _deadline_jobs(export_graph(build_graph(shots["plain"], chunk=3), "deadline", tmp_path / "plain"))
    assert {job["Priority"] for job, _ in plain.values()} == {"50"}
    assert not any("Pool" in job or "Group" in job for job, _ in plain.values())


def test_options_override_the_shot_and_the_gpu_group_defaults_to_the_group(shots, tmp_path):
    graph = build_graph(shots["placed"], chunk=3)
    placement = FarmPlacement.of(graph.shot, pool="rush", priority=99, group="farm", gpu_group=None)
    assert placement == FarmPlacement("rush", "farm", "gpu-a100", 99)  # gpu_group from the shot
    jobs = _deadline_jobs(export_graph(graph, "deadline", tmp_path / "dl", placement=placement))
    assert jobs["04_swap"][0]["Group"] == "gpu-a100" and jobs["01_extract"][0]["Group"] == "farm"
    assert jobs["04_swap"][0]["Pool"] == "rush" and jobs["04_swap"][0]["Priority"] == "99"
    only_group = FarmPlacement.of(build_graph(shots["plain"], chunk=3).shot, group="farm")
    assert {only_group.group_of(s) for s in ("extract", "train", "swap", "package")} == {"farm"}


@pytest.mark.parametrize(("option", "value"), [("pool", "show a"), ("group", "1st"), ("gpu_group", "a=b"),
                                                ("priority", 101)])
def test_bad_pool_group_or_priority_is_refused_with_nothing_written(shots, tmp_path, option, value):
    graph = build_graph(shots["plain"], chunk=3)
    with pytest.raises(ConfigError, match="Invalid farm") as err:
        FarmPlacement.of(graph.shot, **{option: value})
    assert err.value.fix and err.value.expected
    assert not any(tmp_path.iterdir())


def test_opencue_job_has_facility_priority_and_layer_services(shots, tmp_path):
    etree = pytest.importorskip("lxml.etree")
    pytest.importorskip("outline")
    (path,) = export_graph(build_graph(shots["placed"], chunk=3), "opencue", tmp_path / "cue")
    doc, layers, _ = _cue_layers(path)
    assert etree.DTD(str(DTD)).validate(doc), etree.DTD(str(DTD)).error_log
    assert doc.findtext("facility") == "show_a"
    assert doc.find("job").findtext("priority") == "80"
    placed = {name: layer.findtext("services/service") for name, layer in layers.items()}
    assert placed == {"extract": "cpu_nodes", "track": "cpu_nodes", "train": "gpu-a100", "swap": "gpu-a100",
                      "package": "cpu_nodes"}
    # Without a group the layers keep pyoutline's default service.
    (plain,) = export_graph(build_graph(shots["plain"], chunk=3), "opencue", tmp_path / "plain")
    assert {layer.findtext("services/service") for layer in _cue_layers(plain)[1].values()} == {"shell"}


def test_openjd_steps_name_their_group_as_host_requirements(shots, tmp_path):
    pytest.importorskip("openjd.model")
    import yaml

    (path,) = export_graph(build_graph(shots["placed"], chunk=3), "openjd", tmp_path / "jd")
    if OPENJD.is_file():
        _openjd_check(path)
    _openjd_tasks(path)  # openjd-model accepts the requirements
    steps = {s["name"]: s for s in yaml.safe_load(path.read_text())["steps"]}
    assert steps["swap"]["hostRequirements"] == {
        "attributes": [{"name": OPENJD_GROUP_ATTRIBUTE, "anyOf": ["gpu-a100"]}],
        "amounts": [{"name": "amount.worker.gpu", "min": 1}]}
    assert steps["train"]["hostRequirements"]["amounts"] == [{"name": "amount.worker.gpu", "min": 2}]
    assert steps["extract"]["hostRequirements"] == {"attributes": [{"name": OPENJD_GROUP_ATTRIBUTE,
                                                                    "anyOf": ["cpu_nodes"]}]}
    # No group: no requirements, so `openjd run` and any fleet take every step.
    (plain,) = export_graph(build_graph(shots["plain"], chunk=3), "openjd", tmp_path / "plain")
    assert not any("hostRequirements" in s for s in yaml.safe_load(plain.read_text())["steps"])


def test_farm_export_cli_options(shots, tmp_path):
    import typer
    from typer.testing import CliRunner

    from vfx.cli.farm import farm_export

    app = typer.Typer()
    app.command()(farm_export)
    app.command("other")(lambda: None)  # two commands: typer keeps `farm_export` a subcommand
    result = CliRunner().invoke(app, ["farm-export", str(shots["placed"]), "--to", "deadline", str(tmp_path / "dl"),
                                      "--pool", "rush", "--gpu-group", "h200", "--priority", "90"])
    assert result.exit_code == 0, result.output
    job = _key_values(tmp_path / "dl" / "04_swap.job_info.job")
    assert (job["Pool"], job["Group"], job["Priority"]) == ("rush", "h200", "90")
    assert _key_values(tmp_path / "dl" / "01_extract.job_info.job")["Group"] == "cpu_nodes"
