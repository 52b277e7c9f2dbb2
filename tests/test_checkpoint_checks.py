"""Bad checkpoints, manifests, devices and training settings: each a clear VfxError (exit 2) naming the file,
the field or tensor and the fix, found before anything is loaded, trained or written; never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from vfx.cli import entrypoint
from vfx.comb.checkpoint import MAX_MANIFEST_BYTES, check_checkpoint, latest_checkpoint, load_checkpoint, read_manifest
from vfx.comb.data import PersonaData
from vfx.comb.train import TrainConfig, train_comb
from vfx.errors import ConfigError, MediaError, VfxError
from vfx.utils.device import resolve_device

TINY = TrainConfig(iters_per_level=1, batch_size=1, checkpoint_every=0, log_every=1)


def _persona(name: str, seed: int, size: int = 8) -> PersonaData:
    rng = np.random.default_rng(seed)
    images = rng.random((4, size, size, 3))
    masks = np.ones((4, size, size))
    return PersonaData.from_arrays(name, images, masks)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny trained run (8², two personas), never changed: tests copy it."""
    run = tmp_path_factory.mktemp("model") / "run"
    train_comb({"a": _persona("a", 0), "b": _persona("b", 1)}, run, resolution=8, width=0.05, config=TINY)
    return run


@pytest.fixture()
def run(trained, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def _step(run: Path) -> Path:
    newest = latest_checkpoint(run)
    assert newest is not None
    return newest


def _clear(err: VfxError, *needles: str) -> None:
    text = str(err)
    assert err.exit_code == 2 and err.expected and err.found and err.fix, text
    for needle in needles:
        assert needle in text, (needle, text)


# ---------------------------------------------------------------------------------------------- devices

def test_resolve_device_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu" and resolve_device(" CPU ") == "cpu"
    for spec in ("cuda", "cuda:0", "cuda:1"):
        with pytest.raises(ConfigError) as err:
            resolve_device(spec)
        _clear(err.value, "not available", "devices here: cpu", "--device cpu")
    for spec in ("tpu", "cuda:", "cuda:-1", "cuda:x", "", "cuda:٣"):
        with pytest.raises(ConfigError, match="Unknown device"):
            resolve_device(spec)


def test_resolve_device_with_two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1" and resolve_device(torch.device("cuda", 0)) == "cuda:0"
    with pytest.raises(ConfigError) as err:
        resolve_device("cuda:2")
    _clear(err.value, "cuda:2", "cpu, cuda:0, cuda:1")


# ---------------------------------------------------------------------------------------------- weights

def test_a_sound_checkpoint_checks_out(run):
    manifest = check_checkpoint(run, optimizer=True)
    assert manifest.config.personas == ("a", "b") and manifest == read_manifest(run)
    net, loaded, _ = load_checkpoint(run)
    assert loaded == manifest and net.level == manifest.level


def _truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[:-100])


def _not_safetensors(file: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, file)  # a pickle, under the safetensors name


def _foreign(file: Path) -> None:
    save_file({"backbone.conv.weight": torch.zeros(4, 3, 3, 3)}, str(file), metadata={"schema": "vfx.CombModel/1"})


def _unstamped(file: Path) -> None:
    save_file(load_file(str(file)), str(file), metadata={"format": "pt"})


def _misshaped(file: Path) -> None:
    tensors = load_file(str(file))
    tensors["encoder.from_rgb.0.weight"] = torch.zeros(7, 3, 1, 1)
    save_file(tensors, str(file), metadata={"schema": "vfx.CombModel/1"})


def _half(file: Path) -> None:
    tensors = {k: v.half() for k, v in load_file(str(file)).items()}
    save_file(tensors, str(file), metadata={"schema": "vfx.CombModel/1"})


def _missing_tensor(file: Path) -> None:
    tensors = load_file(str(file))
    del tensors[sorted(tensors)[0]]
    save_file(tensors, str(file), metadata={"schema": "vfx.CombModel/1"})


def _other_schema(file: Path) -> None:
    save_file(load_file(str(file)), str(file), metadata={"schema": "vfx.RefinerModel/1"})


def _empty(file: Path) -> None:
    file.write_bytes(b"")


def _folder(file: Path) -> None:
    file.unlink()
    file.mkdir()


def _gone(file: Path) -> None:
    file.unlink()


@pytest.mark.parametrize(("damage", "needles"), [
    (_truncate, ["model.safetensors", "SafetensorError"]),
    (_not_safetensors, ["model.safetensors", "safetensors"]),
    (_foreign, ["model.safetensors", "backbone.conv.weight", "8², width 0.05, personas a, b"]),
    (_unstamped, ["model.safetensors", "no schema"]),
    (_misshaped, ["model.safetensors", "encoder.from_rgb.0.weight", "7x3x1x1 F32"]),
    (_half, ["F16", "F32"]),
    (_missing_tensor, ["missing"]),
    (_other_schema, ["vfx.RefinerModel/1"]),
    (_empty, ["model.safetensors"]),
    (_folder, ["model.safetensors"]),
    (_gone, ["model.safetensors"]),
])
def test_bad_weights_are_refused_before_loading(run, damage, needles):
    damage(_step(run) / "model.safetensors")
    for call in (lambda: check_checkpoint(run), lambda: load_checkpoint(run, with_optimizer=False)):
        with pytest.raises(MediaError) as err:
            call()
        _clear(err.value, *needles)


@pytest.mark.parametrize("damage", [_truncate, _not_safetensors, _empty, _gone])
def test_bad_optimizer_state_is_refused_for_training_only(run, damage):
    damage(_step(run) / "optimizer.safetensors")
    check_checkpoint(run)  # a swap reads only the weights
    load_checkpoint(run, with_optimizer=False)
    with pytest.raises(MediaError) as err:
        check_checkpoint(run, optimizer=True)
    _clear(err.value, "optimizer.safetensors")


def test_foreign_optimizer_tensors_are_refused(run):
    file = _step(run) / "optimizer.safetensors"
    tensors = load_file(str(file))
    tensors["state.0.exp_avg"] = torch.zeros(99)
    save_file(tensors, str(file), metadata={"schema": "vfx.CombModel/1"})
    with pytest.raises(MediaError) as err:  # the shape is checked against the parameter when resuming
        train_comb({"a": _persona("a", 0), "b": _persona("b", 1)}, run, resolution=8, width=0.05,
                   config=TrainConfig(iters_per_level=2, batch_size=1, checkpoint_every=0, log_every=1), resume=True)
    _clear(err.value, "state.0.exp_avg", "[99]")
    tensors["pickle.payload"] = torch.zeros(1)
    save_file(tensors, str(file), metadata={"schema": "vfx.CombModel/1"})
    with pytest.raises(MediaError) as err:
        check_checkpoint(run, optimizer=True)
    _clear(err.value, "pickle.payload")


def test_resume_with_another_optimiser_setup_is_refused(run):
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(MediaError) as err:  # shared_lr_scale 0: one parameter group, not two
        train_comb({"a": _persona("a", 0), "b": _persona("b", 1)}, run, resolution=8, width=0.05, resume=True,
                   config=TrainConfig(iters_per_level=2, batch_size=1, checkpoint_every=0, log_every=1,
                                      shared_lr_scale=0.0))
    _clear(err.value, "parameter group")
    assert sorted(p.name for p in run.iterdir()) == before


# ---------------------------------------------------------------------------------------------- manifests

def _edit(field: str, value: object):
    def change(data: dict) -> None:
        if value is KeyError:
            del data[field]
        else:
            data[field] = value
    return change


@pytest.mark.parametrize(("change", "needles"), [
    (_edit("step", KeyError), ["'step' is missing"]),
    (_edit("config", KeyError), ["'config'"]),
    (_edit("step", "ten"), ["'step'", "'ten'"]),
    (_edit("step", -3), ["'step'", "-3"]),
    (_edit("step", True), ["'step'"]),
    (_edit("level", 7), ["'level'"]),
    (_edit("alpha", 2.0), ["'alpha'"]),
    (_edit("lr", "fast"), ["'lr'"]),
    (_edit("personas", [{"name": "a"}]), ["'personas'"]),
    (_edit("personas", "a,b"), ["'personas'"]),
    (_edit("losses", [[1, 0]]), ["'losses.0'"]),
    (_edit("losses", {"1": 0.5}), ["'losses'"]),
    (_edit("config", {"resolution": 48, "width": 0.05, "personas": ["a", "b"]}), ["'config'", "48"]),
    (_edit("config", {"resolution": 8, "width": 0, "personas": ["a", "b"]}), ["'config'"]),
    (_edit("config", {"resolution": 8, "width": 0.05, "personas": []}), ["'config.personas'"]),
    (_edit("config", {"resolution": "8", "width": 0.05, "personas": ["a", "b"]}), ["'config.resolution'"]),
    (_edit("optimizer", {"param_groups": "all"}), ["'optimizer.param_groups'"]),
])
def test_invalid_manifest_fields_name_the_field(run, change, needles):
    file = _step(run) / "manifest.json"
    data = json.loads(file.read_text())
    change(data)
    file.write_text(json.dumps(data))
    for call in (lambda: read_manifest(run), lambda: check_checkpoint(run), lambda: load_checkpoint(run)):
        with pytest.raises(MediaError) as err:
            call()
        _clear(err.value, "manifest.json", *needles)


@pytest.mark.parametrize(("text", "needle"), [
    ("not json at all {", "JSONDecodeError"),
    ("[1, 2, 3]", "a JSON list"),
    ('{"schema": "vfx.CombModel/1", "alpha": NaN}', "field"),
    ("[" * 100_000 + "]" * 100_000, "RecursionError"),
    ("\xff\xfe binary", "manifest"),
])
def test_unreadable_manifests(run, text, needle):
    (_step(run) / "manifest.json").write_bytes(text.encode("utf-8", "surrogateescape") if "\xff" not in text
                                               else b"\xff\xfe binary")
    with pytest.raises(MediaError) as err:
        read_manifest(run)
    assert needle in str(err.value) and err.value.exit_code == 2


def test_a_huge_manifest_is_refused_unread(run, monkeypatch):
    file = _step(run) / "manifest.json"
    with file.open("ab") as f:
        f.truncate(MAX_MANIFEST_BYTES + 1)  # sparse: nothing to parse would fit in memory checks anyway
    monkeypatch.setattr(Path, "read_text", lambda *a, **k: pytest.fail("a huge manifest was read"))
    with pytest.raises(MediaError) as err:
        read_manifest(run)
    _clear(err.value, "too large", "16 MB")


def test_model_info_refuses_bad_models_with_exit_2(run, capsys):
    assert entrypoint(["model", "info", str(run)]) == 0
    assert "comb, 8²" in capsys.readouterr().out
    file = _step(run) / "manifest.json"
    data = json.loads(file.read_text())
    del data["level"]
    file.write_text(json.dumps(data))
    assert entrypoint(["model", "info", str(run)]) == 2
    err = capsys.readouterr().err
    assert "manifest.json" in err and "'level'" in err and "Fix:" in err and "Traceback" not in err
    data["level"] = 1
    file.write_text(json.dumps(data))
    _misshaped(_step(run) / "model.safetensors")
    assert entrypoint(["model", "info", str(run)]) == 2
    err = capsys.readouterr().err
    assert "encoder.from_rgb.0.weight" in err and "Traceback" not in err
    assert entrypoint(["model", "info", str(run / "step_nothing")]) == 2


# ---------------------------------------------------------------------------------------------- vfx train

@pytest.fixture()
def faceset(tmp_path) -> Path:
    """A folder that passes the plan's faceset check (training never starts in these tests)."""
    folder = tmp_path / "fs"
    folder.mkdir()
    (folder / "faceset.json").write_text("{}")
    return folder


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize(("options", "needles"), [
    (["--res", "-64"], ["--res", "-64"]),
    (["--res", "0"], ["--res", "0"]),
    (["--res", "48"], ["power of two", "48"]),
    (["--res", "2"], ["--res"]),
    (["--res", "2048"], ["--res", "2048"]),
    (["--width", "0"], ["--width", "0"]),
    (["--width", "-1"], ["--width"]),
    (["--width", "nan"], ["--width"]),
    (["--width", "5"], ["--width"]),
    (["--iters-per-level", "0"], ["--iters-per-level", "0"]),
    (["--iters-per-level", "-10"], ["--iters-per-level"]),
    (["--fine-tune-iters", "-1"], ["--fine-tune-iters"]),
    (["--batch", "0"], ["--batch"]),
    (["--batch", "-8"], ["--batch"]),
    (["--batch", "100000000"], ["--batch"]),
    (["--checkpoint-every", "-1"], ["--checkpoint-every"]),
    (["--seed", "-1"], ["--seed"]),
    (["--holdout", "1.5"], ["hold-out"]),
    (["--holdout", "-0.1"], ["hold-out"]),
    (["--shared-lr-scale", "2"], ["--shared-lr-scale"]),
    (["--amp", "fp8"], ["amp"]),
    (["--mask", "face"], ["--mask"]),
    (["--device", "tpu"], ["Unknown device"]),
    (["--device", "cuda"], ["not available", "devices here: cpu"]),
    (["--device", "cuda:3"], ["not available"]),
    (["--resume"], ["Nothing to resume"]),
])
def test_train_refuses_bad_settings_before_writing(faceset, tmp_path, capsys, monkeypatch, options, needles):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    before = _snapshot(tmp_path)
    code = entrypoint(["train", "--persona", f"a={faceset}", "--no-consent-record", "--out", str(tmp_path / "run"),
                       *options])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Expected:" in err and "Found:" in err and "Fix:" in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert _snapshot(tmp_path) == before, "nothing may be written"


def test_train_refuses_bad_run_folders_and_checkpoints(faceset, trained, tmp_path, capsys):
    args = ["train", "--persona", f"a={faceset}", "--persona", f"b={faceset}", "--no-consent-record",
            "--res", "8", "--width", "0.05"]

    def refused(*options: str, needles: tuple[str, ...]) -> None:
        before = _snapshot(tmp_path)
        code = entrypoint([*args, *options])
        err = capsys.readouterr().err
        assert code == 2 and "Fix:" in err and "Traceback" not in err, err
        for needle in needles:
            assert needle in err, (needle, err)
        assert _snapshot(tmp_path) == before, "nothing may be written"

    (tmp_path / "a_file").write_text("x")
    refused("--out", str(tmp_path / "a_file"), needles=("is a file",))
    refused("--out", str(faceset / "run"), needles=("faceset",))
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    refused("--out", str(run), needles=("already holds a model", "--resume"))
    refused("--out", str(run), "--resume", "--res", "16", needles=("another architecture",))
    _misshaped(_step(run) / "model.safetensors")
    refused("--out", str(run), "--resume", needles=("encoder.from_rgb.0.weight",))
    refused("--out", str(tmp_path / "new"), "--base", str(run), needles=("encoder.from_rgb.0.weight",))
    (_step(run) / "manifest.json").write_text("{")
    refused("--out", str(run), "--resume", needles=("manifest.json",))
