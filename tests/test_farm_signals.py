"""The farm under its manager's signals and with bad records: SIGTERM to `vfx farm run` mid-swap, a failed
task's reason, retries, validated task records, stage prerequisites, and deterministic frames whatever the
thread count (a hand-run `vfx swap --deterministic` against a farm task)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import test_farm
from tests.test_farm import frames_of, shot_in, temp_files
from vfx.cli import entrypoint
from vfx.errors import VfxError
from vfx.farm.graph import build_graph, farm_folder
from vfx.farm.local import run_local
from vfx.farm.status import farm_status, format_status
from vfx.farm.task import (
    RECORD_MAX_BYTES,
    TaskRecord,
    TaskRecordError,
    check_prerequisites,
    load_record,
    read_record,
)
from vfx.render.rendered import read_rendered_frame
from vfx.shot import load_shot, save_shot

farm_base = test_farm.farm_base  # the fixtures: the demo shot with a tiny model, and its farm run
whole = test_farm.whole
ROOT = Path(__file__).resolve().parents[1]


def _with_faces_of(shot_file: Path, rendered: Path) -> None:
    """Give a shot the plate's faces the whole run tracked (same plate, same settings)."""
    shutil.copytree(Path(load_shot(rendered).outputs.exr).parent / "demo_plate_faces",
                    Path(load_shot(shot_file).outputs.exr).parent / "demo_plate_faces")


def _mark_done(shot_file: Path, chunk: int, stages: tuple[str, ...] = ("extract", "track")) -> None:
    """Record the tasks of ``stages`` done for this shot (their outputs are there): a run starts after them."""
    graph = build_graph(shot_file, chunk=chunk)
    graph.folder.mkdir(parents=True, exist_ok=True)
    for task in graph.tasks:
        if task.stage in stages:
            TaskRecord(task=task.id, stage=task.stage, frames=None if task.frames is None else str(task.frames),
                       state="done", host=socket.gethostname(), pid=os.getpid(), attempt=1, started=time.time(),
                       finished=time.time(), exit_code=0, shot_hash=graph.shot.content_hash(),
                       ).write(graph.folder / f"{task.id}.json")


def _vfx(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vfx", *args], cwd=ROOT, text=True,
                            env=dict(env or os.environ, VFX_NO_PROGRESS="1"), **kwargs)  # type: ignore[call-overload]


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a process, from /proc; None when there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[2])


def _survivors(groups: set[int]) -> list[int]:
    """Live (not zombie) processes that are one of ``groups`` or in one of those process groups."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None and stat[0] != "Z" and (int(entry.name) in groups or stat[1] in groups):
                found.append(int(entry.name))
    return found


# ---------------------------------------------------------------------------------------------- SIGTERM

def test_sigterm_to_farm_run_mid_swap_stops_every_task_and_the_rerun_completes(farm_base, whole, capsys):
    shot_file = shot_in(farm_base, "sigterm")
    _with_faces_of(shot_file, whole)
    _mark_done(shot_file, 4)
    shot = load_shot(shot_file)
    folder = farm_folder(shot)
    runner = _vfx("farm", "run", str(shot_file), "--chunk", "4", "--workers", "2", "--deterministic",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: set[int] = set()
    deadline = time.time() + 120
    while time.time() < deadline and runner.poll() is None:  # until a swap task is at work
        running = [r for p in folder.glob("swap.*.json") if (r := read_record(p)) is not None and r.state == "running"]
        seen |= {r.pid for r in running}
        if running:
            break
        time.sleep(0.05)
    assert seen, "no swap task started"
    time.sleep(0.3)
    seen |= {r.pid for p in folder.glob("swap.*.json") if (r := read_record(p)) is not None and r.state == "running"}
    runner.send_signal(signal.SIGTERM)
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 128 + signal.SIGTERM == 143, err[-3000:]
    assert "stopped by SIGTERM" in out
    assert not _survivors(seen), f"task processes survived the runner: {_survivors(seen)}"
    assert "Traceback" not in err
    rows = {r.task: r for r in farm_status(build_graph(shot_file, chunk=4))}
    killed = [r for r in rows.values() if r.state == "killed"]
    assert killed and all(r.task.startswith("swap.") for r in killed)
    assert all("SIGTERM" in r.message for r in killed)
    assert not list(folder.glob("swap.*.lock"))  # released by the tasks (or removed by the runner)
    # `vfx farm status` says so; the rerun finishes the job, and the frames are the uninterrupted run's.
    assert entrypoint(["farm", "status", str(shot_file), "--chunk", "4"]) == 0
    out = capsys.readouterr().out
    assert "killed" in out and "SIGTERM" in out
    again = run_local(build_graph(shot_file, chunk=4), workers=2, deterministic=True)
    assert again.exit_code == 0, again.describe()
    assert {r.task for r in again.ran} >= {r.task for r in killed}
    assert [r.state for r in farm_status(build_graph(shot_file, chunk=4))] == ["done"] * len(rows)
    assert frames_of(shot_file) == frames_of(whole)
    assert not temp_files(shot_file)


def test_sigterm_to_a_ray_farm_run_cancels_its_tasks_and_the_rerun_completes(farm_base, whole):
    """The Ray engine under its manager's SIGTERM: unfinished tasks cancelled (a running task's worker killed),
    the started ones recorded killed, exit 143, the local cluster shut down, and the rerun completes."""
    pytest.importorskip("ray")
    shot_file = shot_in(farm_base, "sigterm_ray")
    _with_faces_of(shot_file, whole)
    _mark_done(shot_file, 2)
    folder = farm_folder(load_shot(shot_file))
    runner = _vfx("farm", "run", str(shot_file), "--chunk", "2", "--engine", "ray", "--deterministic",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: set[int] = set()
    deadline = time.time() + 180
    while time.time() < deadline and runner.poll() is None and not seen:  # until a swap task is at work
        seen = {r.pid for p in folder.glob("swap.*.json") if (r := read_record(p)) is not None and r.state == "running"}
        time.sleep(0.02)
    assert seen, "no swap task started"
    runner.send_signal(signal.SIGTERM)
    out, err = runner.communicate(timeout=120)
    assert runner.returncode == 143, err[-3000:]
    assert "stopped by SIGTERM" in out and "Traceback" not in err
    time.sleep(1.0)
    assert not [pid for pid in seen if (stat := _proc_stat(pid)) is not None and stat[0] != "Z"], "a worker survived"
    rows = farm_status(build_graph(shot_file, chunk=2))
    assert not [r for r in rows if r.state == "running"]
    killed = [r for r in rows if r.state == "killed"]
    assert killed and all("SIGTERM" in r.message for r in killed), [(r.task, r.state) for r in rows]
    assert not list(folder.glob("swap.*.lock"))
    again = run_local(build_graph(shot_file, chunk=2), workers=2, deterministic=True)
    assert again.exit_code == 0, again.describe()
    assert frames_of(shot_file) == frames_of(whole)


def test_a_task_stops_cleanly_on_sigterm(farm_base, whole):
    """`vfx task run` under SIGTERM: exit 143, recorded killed, lock released, no temporary file left, and
    every frame on disk complete (the uninterrupted run's bits)."""
    shot_file = shot_in(farm_base, "task_term")
    _with_faces_of(shot_file, whole)
    folder = farm_folder(load_shot(shot_file))
    task = _vfx("task", "run", str(shot_file), "--stage", "swap", "--frames", "1001-1008", "--device", "cpu",
                "--deterministic", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and task.poll() is None:
        record = read_record(folder / "swap.1001-1008.json")
        if record is not None and record.state == "running" and record.pid == task.pid:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    assert task.poll() is None, "the task finished before it could be stopped"
    task.send_signal(signal.SIGTERM)
    out, err = task.communicate(timeout=60)
    assert task.returncode == 143, err[-3000:]
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    record = read_record(folder / "swap.1001-1008.json")
    assert record.state == "killed" and record.exit_code == 143 and "SIGTERM" in record.message
    assert not (folder / "swap.1001-1008.lock").exists()
    assert not temp_files(shot_file)
    reference = frames_of(whole)
    pattern = str(load_shot(shot_file).outputs.exr)
    for frame, pixels in reference.items():
        if Path(pattern.replace("####", frame)).is_file():
            done = read_rendered_frame(pattern.replace("####", frame))
            assert (done.rgb.tobytes(), done.matte.tobytes()) == pixels


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_kill_9_of_the_runner_still_stops_its_tasks(farm_base, whole):
    """SIGKILL cannot be forwarded: the kernel's parent-death signal stops the tasks, which record themselves."""
    shot_file = shot_in(farm_base, "runner_kill9")
    _with_faces_of(shot_file, whole)
    _mark_done(shot_file, 4)
    folder = farm_folder(load_shot(shot_file))
    runner = _vfx("farm", "run", str(shot_file), "--chunk", "4", "--workers", "2", "--deterministic",
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: set[int] = set()
    deadline = time.time() + 120
    while time.time() < deadline and runner.poll() is None and not seen:
        seen = {r.pid for p in folder.glob("swap.*.json") if (r := read_record(p)) is not None and r.state == "running"}
        time.sleep(0.05)
    assert seen, "no swap task started"
    runner.kill()
    runner.wait()
    deadline = time.time() + 30
    while time.time() < deadline and _survivors(seen):
        time.sleep(0.1)
    assert not _survivors(seen)
    states = {r.task: r.state for r in farm_status(build_graph(shot_file, chunk=4))}
    assert "killed" in {states[t] for t in states if t.startswith("swap.")}


def test_sigint_to_the_runner_in_process_is_forwarded_too(farm_base, whole):
    """run_local in this very process: SIGINT (Ctrl-C) mid-swap is forwarded, the summary's exit code is 130,
    the handlers are restored afterwards."""
    import threading

    shot_file = shot_in(farm_base, "sigint")
    _with_faces_of(shot_file, whole)
    _mark_done(shot_file, 4)
    folder = farm_folder(load_shot(shot_file))
    before = signal.getsignal(signal.SIGINT)
    pids: set[int] = set()

    def interrupt() -> None:  # as a swap task starts its work, Ctrl-C
        deadline = time.time() + 120
        while time.time() < deadline:
            running = {r.pid for p in folder.glob("swap.*.json")
                       if (r := read_record(p)) is not None and r.state == "running"}
            if running:
                pids.update(running)
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=interrupt, daemon=True)
    thread.start()
    summary = run_local(build_graph(shot_file, chunk=4), workers=2, deterministic=True, grace_s=20, poll_s=0.05)
    thread.join()
    assert summary.exit_code == 130 and summary.stopped_by == signal.SIGINT, summary.describe()
    assert "stopped by SIGINT" in summary.describe() and summary.killed
    assert signal.getsignal(signal.SIGINT) is before
    assert pids and not _survivors(pids)
    for result in summary.killed:
        record = read_record(folder / f"{result.task}.json")
        assert record.state == "killed" and record.exit_code == 130 and "SIGINT" in record.message
    assert "package" in summary.not_run


# ---------------------------------------------------------------------------------------------- reasons, retries

def test_a_failed_tasks_reason_is_printed_by_farm_run_and_status(farm_base, whole, tmp_path):
    """Bad input (the shot's model is gone): one attempt, exit 2, its one-line reason in the run's report
    and summary and in `vfx farm status`."""
    shot_file = shot_in(farm_base, "reason")
    shot = load_shot(shot_file)
    save_shot(shot.model_copy(update={"model": shot.model.model_copy(update={"checkpoint": tmp_path / "gone"})}),
              shot_file)
    _with_faces_of(shot_file, whole)
    _mark_done(shot_file, 8)
    run = subprocess.run([sys.executable, "-m", "vfx", "farm", "run", str(shot_file), "--chunk", "8", "--workers",
                          "1", "--retries", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, VFX_NO_PROGRESS="1"))
    assert run.returncode == 2, run.stdout + run.stderr[-3000:]
    (report,) = [line for line in run.stderr.splitlines() if "swap.1001-1008 FAILED" in line]
    assert "exit 2" in report and str(tmp_path / "gone") in report
    summary = [line for line in run.stdout.splitlines() if "FAILED swap.1001-1008" in line]
    assert summary and "after 1 attempt(s)" in summary[0] and str(tmp_path / "gone") in summary[0]
    assert "see its log" not in summary[0] and "retrying" not in run.stderr
    status = subprocess.run([sys.executable, "-m", "vfx", "farm", "status", str(shot_file), "--chunk", "8"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0
    lines = status.stdout.splitlines()
    (row,) = [i for i, line in enumerate(lines) if line.startswith("swap.1001-1008")]
    assert "bad_input" in lines[row] and str(tmp_path / "gone") in lines[row + 1]


def test_exit_1_is_retried_and_its_reason_taken_from_the_log(farm_base, whole):
    """A task that fails with exit 1 (here: its lock held by a live process, so it records nothing) is
    retried; its reason comes from its log's `vfx: error:` line. Freed, the next run completes."""
    shot_file = shot_in(farm_base, "retry")
    _with_faces_of(shot_file, whole)
    _mark_done(shot_file, 8)
    folder = farm_folder(load_shot(shot_file))
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / "swap.1001-1008.lock"
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}))
    lines: list[str] = []
    summary = run_local(build_graph(shot_file, chunk=8), workers=1, retries=1, report=lines.append, poll_s=0.05)
    assert summary.exit_code == 1, summary.describe()
    (swap,) = summary.failed
    assert swap.exit_code == 1 and swap.attempts == 2 and "is held" in swap.reason
    assert any("retrying (attempt 2 of 2)" in line and "is held" in line for line in lines)
    assert "is held" in summary.describe() and summary.not_run == ["package"]
    lock.unlink()
    assert run_local(build_graph(shot_file, chunk=8), workers=1, deterministic=True).exit_code == 0
    assert frames_of(shot_file) == frames_of(whole)


# ---------------------------------------------------------------------------------------------- records

def _record(task: str = "swap.1001-1004", **changes: object) -> dict[str, object]:
    data = TaskRecord(task=task, stage="swap", frames="1001-1004", state="done", host="node", pid=10, attempt=1,
                      started=1.0, finished=2.0).__dict__ | {"schema": "vfx.TaskRecord/1"}
    return data | changes


@pytest.mark.parametrize(("content", "field"), [
    (b"", "JSON"),
    (b"{not json", "JSON"),
    (b"[1, 2]", ""),
    (b"\xff\xfe\x00garbage", ""),
    (json.dumps(_record(schema="vfx.Other/1")).encode(), "vfx.Other"),
    (json.dumps(_record(pid="12")).encode(), "'pid'"),
    (json.dumps(_record(pid=True)).encode(), "'pid'"),
    (json.dumps(_record(pid=-4)).encode(), "'pid'"),
    (json.dumps(_record(attempt=0)).encode(), "'attempt'"),
    (json.dumps(_record(state="exploded")).encode(), "'state'"),
    (json.dumps(_record(stage="paint")).encode(), "'stage'"),
    (json.dumps(_record(started="yesterday")).encode(), "'started'"),
    (json.dumps(_record(message="x" * 5000)).encode(), "'message'"),
    (json.dumps(_record(owner="mallory")).encode(), "'owner'"),
    (json.dumps({k: v for k, v in _record().items() if k != "host"}).encode(), "'host'"),
    (json.dumps(_record(frames_done=-1)).encode(), "'frames_done'"),
    (b"[" * 100000 + b"]" * 100000, ""),
])
def test_a_corrupt_or_foreign_record_is_a_clear_error_never_a_traceback(tmp_path, content, field):
    path = tmp_path / "swap.1001-1004.json"
    path.write_bytes(content)
    with pytest.raises(TaskRecordError) as err:
        load_record(path)
    assert err.value.exit_code == 2 and str(path) in str(err.value) and field in str(err.value)
    assert "Fix: delete it" in str(err.value)
    assert read_record(path) is None


def test_record_size_cap_and_a_valid_record_round_trips(tmp_path):
    path = tmp_path / "swap.1001-1004.json"
    path.write_text(json.dumps(_record()) + " " * RECORD_MAX_BYTES)
    with pytest.raises(TaskRecordError, match="bytes"):
        load_record(path)
    TaskRecord(**{k: v for k, v in _record().items() if k != "schema"}).write(path)
    assert load_record(path).pid == 10 and load_record(tmp_path / "none.json") is None
    with pytest.raises(TaskRecordError, match="Expected: field 'task': the record of task 'swap.1005-1008'.*Found: field 'task' = 'swap.1001-1004'"):
        load_record(path, task="swap.1005-1008")  # another task's record, copied over


def test_status_shows_a_corrupt_record_and_the_run_redoes_its_task(farm_base, whole, capsys):
    shot_file = shot_in(farm_base, "corrupt")
    shutil.copytree(Path(load_shot(whole).outputs.exr).parent, Path(load_shot(shot_file).outputs.exr).parent)
    folder = farm_folder(load_shot(shot_file))
    shutil.rmtree(folder)
    _mark_done(shot_file, 4, ("extract", "track", "swap", "package"))  # the whole run's outputs are there
    (folder / "swap.1005-1008.json").write_text(json.dumps(_record("swap.1005-1008", pid="not a number")))
    rows = {r.task: r for r in farm_status(build_graph(shot_file, chunk=4))}
    assert rows["swap.1005-1008"].state == "corrupt" and "'pid'" in rows["swap.1005-1008"].message
    assert entrypoint(["farm", "status", str(shot_file), "--chunk", "4"]) == 0
    out = capsys.readouterr().out
    assert "corrupt" in out and "swap.1005-1008.json" in out and "Fix: delete it" in out
    again = run_local(build_graph(shot_file, chunk=4), workers=1)
    assert [r.task for r in again.ran] == ["swap.1005-1008"] and again.exit_code == 0
    assert "corrupt" not in format_status(farm_status(build_graph(shot_file, chunk=4)))


# ---------------------------------------------------------------------------------------------- prerequisites

def test_a_swap_task_before_its_track_task_is_refused(farm_base, capsys):
    shot_file = shot_in(farm_base, "early")
    shot = load_shot(shot_file)
    code = entrypoint(["task", "run", str(shot_file), "--stage", "swap", "--frames", "1001-1004", "--device", "cpu"])
    assert code == 2
    err = capsys.readouterr().err
    assert "before its track stage" in err and "vfx task run SHOT --stage track" in err and "Traceback" not in err
    record = read_record(farm_folder(shot) / "swap.1001-1004.json")
    assert record.state == "bad_input" and "track" in record.message
    assert not list(Path(shot.outputs.exr).parent.glob("demo_swap.*.exr"))
    assert not (Path(shot.outputs.exr).parent / "demo_plate_faces" / "index.jsonl").exists()  # no tracking done
    # The package reads the swap's frames: refused too; extract has nothing before it.
    with pytest.raises(VfxError, match="before its swap stage"):
        check_prerequisites(shot, "package")
    check_prerequisites(shot, "extract", None)


# ---------------------------------------------------------------------------------------------- determinism

def test_hand_run_swap_and_farm_task_give_identical_frames_in_deterministic_mode(farm_base, whole):
    """`vfx swap --deterministic` on torch's default threads (and OMP_NUM_THREADS=2) renders the very bits a
    farm task renders with `--threads 1 --deterministic` (the `whole` run)."""
    shot_file = shot_in(farm_base, "by_hand")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["OMP_NUM_THREADS"] = "2"
    run = _vfx("swap", str(shot_file), "--deterministic", "--device", "cpu", "--workers", "2", env=env,
               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, out + err[-3000:]
    assert frames_of(shot_file) == frames_of(whole)


def test_deterministic_mode_pins_torch_to_one_thread_whatever_is_asked():
    """The one set-up `vfx task run` and `vfx swap` share: --deterministic runs torch's CPU operators on one
    thread whatever --threads or OMP_NUM_THREADS say (a convolution's sums are split by thread: the comb
    network's output differs in its last float bit between 1 and 2 threads)."""
    script = ("import torch\nfrom vfx.utils.threads import configure_torch\n"
              "configure_torch(threads=3)\nprint(torch.get_num_threads())\n"
              "configure_torch(threads=3, deterministic=True)\n"
              "print(torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, OMP_NUM_THREADS="2"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:2] == ["3", "1 True"]
