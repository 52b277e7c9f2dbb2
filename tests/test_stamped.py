"""Schema-stamped files (vfx.utils.stamped) and every file the toolkit writes through it.

For each schema, the baseline in tests/baselines/ (written by the code before the stamped-file helper, as users'
disks hold it) loads with the current reader and writes back byte for byte; a future version and a foreign schema
are refused with a message that says what was expected and found; and an upgrade registered from version 0 (a
test-local fake: the real families start at 1) is applied on the way in.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

import vfx
from vfx.errors import ConfigError, InternalError, MediaError
from vfx.utils import stamped
from vfx.utils.stamped import FILE, SIDECAR, Layout, read_stamped, read_stamped_weights, register_upgrade, write_stamped

BASELINES = Path(__file__).parent / "baselines"


@pytest.fixture(autouse=True)
def _own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test registers its fake upgrades in a copy of the registry, which goes away with the test."""
    monkeypatch.setattr(stamped, "_UPGRADES", dict(stamped._UPGRADES))


# ---------------------------------------------------------------------------------------------- the schemas

def _checkpoint_load(path: Path) -> Any:
    from vfx.comb.checkpoint import load_checkpoint

    return load_checkpoint(path)


def _checkpoint_save(loaded: Any, out: Path) -> None:
    from vfx.comb.checkpoint import restore_optimizer, save_checkpoint

    net, manifest, state = loaded
    optimizer = torch.optim.Adam(net.parameters(), lr=manifest.lr)
    restore_optimizer(optimizer, state)
    generators = {}
    for key, tensor in state["tensors"].items():
        if key.startswith("generator."):
            generators[key.split(".", 1)[1]] = torch.Generator()
            generators[key.split(".", 1)[1]].set_state(tensor)
    save_checkpoint(out / "comb_v1", net, optimizer, generators, manifest, keep=1)


def _edit_vector_load(path: Path) -> Any:
    from vfx.edit.vectors import load_edit_vector

    return load_edit_vector(path)


def _edit_vector_save(loaded: Any, out: Path) -> None:
    from vfx.edit.vectors import save_edit_vector

    save_edit_vector(out / "edit_vector_v1.vfxedit", loaded)


def _seg_head_load(path: Path) -> Any:
    from vfx.edit.segment import load_seg_head

    return load_seg_head(path)


def _seg_head_save(loaded: Any, out: Path) -> None:
    from vfx.edit.segment import save_seg_head

    save_seg_head(out / "seghead_v1", *loaded)


def _refiner_load(path: Path) -> Any:
    from vfx.retouch.refiner import load_refiner

    return load_refiner(path, "cpu")


def _refiner_save(loaded: Any, out: Path) -> None:
    from vfx.retouch.refiner import save_refiner

    save_refiner(out / "refiner_v1", loaded)


def _faceset_load(path: Path) -> Any:
    from vfx.faceset.store import Faceset

    faceset = Faceset.open(path)
    return faceset, list(faceset.records())


def _faceset_save(loaded: Any, out: Path) -> None:
    from vfx.faceset.store import Faceset

    faceset, records = loaded
    again = Faceset.create(out / "faceset_v1", faceset.info)
    again.write_index(records)


def _record_load(path: Path) -> Any:
    from vfx.farm.task import read_record

    record = read_record(path)
    if record is None:
        raise MediaError(f"read_record found no task record in {path}")
    return record


def _record_save(loaded: Any, out: Path) -> None:
    loaded.write(out / "task_record_v1.json")


def _comp_load(path: Path) -> Any:
    from vfx.export.comp import _previous_transforms

    package = read_stamped(path / "package.json", "vfx.CompPackage/1")
    transforms = _previous_transforms(path / "transforms.json", package["shot_hash"])
    if not transforms:
        raise MediaError(f"the comp package reader found no transforms in {path}")
    return package, transforms


def _comp_save(loaded: Any, out: Path) -> None:
    from vfx.export.comp import SCHEMA, TRANSFORMS_SCHEMA

    package, transforms = loaded
    write_stamped(out / "comp_v1" / "package.json", SCHEMA, package, if_changed=True)
    write_stamped(out / "comp_v1" / "transforms.json", TRANSFORMS_SCHEMA, transforms, if_changed=True)


@dataclass(frozen=True)
class Case:
    """One schema: its baseline, the public reader and writer, and what the reader raises on a refused file."""

    schema: str
    path: str
    """The baseline, relative to tests/baselines (what the reader is called with)."""
    stamped: tuple[str, ...]
    """The stamped JSON files, relative to ``path``."""
    files: tuple[str, ...]
    """Every file the writer writes, relative to tests/baselines: compared byte for byte."""
    load: Callable[[Path], Any]
    save: Callable[[Any, Path], None]
    refused: type[Exception] = MediaError

    @property
    def family(self) -> str:
        return self.schema.split("/")[0]


CASES = {
    "checkpoint": Case("vfx.CombModel/1", "comb_v1/step_00000001", ("manifest.json",),
                       ("comb_v1/step_00000001/manifest.json", "comb_v1/step_00000001/model.safetensors",
                        "comb_v1/step_00000001/optimizer.safetensors"), _checkpoint_load, _checkpoint_save),
    "edit_vector": Case("vfx.EditVector/1", "edit_vector_v1.vfxedit", ("edit.json",),
                        ("edit_vector_v1.vfxedit/edit.json", "edit_vector_v1.vfxedit/delta.safetensors"),
                        _edit_vector_load, _edit_vector_save),
    "seg_head": Case("vfx.SegHead/1", "seghead_v1", ("../seghead_v1.json",),
                     ("seghead_v1.json", "seghead_v1.safetensors"), _seg_head_load, _seg_head_save),
    "refiner": Case("vfx.Refiner/1", "refiner_v1", ("refiner.json",),
                    ("refiner_v1/refiner.json", "refiner_v1/refiner.safetensors"), _refiner_load, _refiner_save,
                    refused=ConfigError),
    "faceset": Case("vfx.Faceset/1", "faceset_v1", ("faceset.json",),
                    ("faceset_v1/faceset.json", "faceset_v1/index.jsonl"), _faceset_load, _faceset_save),
    "task_record": Case("vfx.TaskRecord/1", "task_record_v1.json", ("",), ("task_record_v1.json",),
                        _record_load, _record_save),
    "comp_package": Case("vfx.CompPackage/1", "comp_v1", ("package.json",),
                         ("comp_v1/package.json", "comp_v1/transforms.json"), _comp_load, _comp_save),
    "comp_transforms": Case("vfx.CompTransforms/1", "comp_v1", ("transforms.json",),
                            ("comp_v1/package.json", "comp_v1/transforms.json"), _comp_load, _comp_save),
}


def _copy_baselines(tmp_path: Path) -> Path:
    copy = tmp_path / "baselines"
    shutil.copytree(BASELINES, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return copy


def _edit_json(file: Path, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    file.write_text(json.dumps(change(json.loads(file.read_text())), indent=2) + "\n")


def _assert_same_files(case: Case, written: Path, baselines: Path = BASELINES) -> None:
    for name in case.files:
        new, old = (written / name).read_bytes(), (baselines / name).read_bytes()
        if name.endswith(".json"):  # the version of vfx that wrote it is the only field allowed to differ
            version = json.loads(old).get("vfx_version")
            if version is not None:
                new = new.replace(f'"vfx_version": "{vfx.__version__}"'.encode(), f'"vfx_version": "{version}"'.encode())
        assert new == old, f"{name} is written differently from its baseline"


# ---------------------------------------------------------------------------------------------- per schema

@pytest.mark.parametrize("name", sorted(CASES))
def test_baseline_loads_and_writes_back_byte_for_byte(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    for stamped_json in case.stamped:
        data = json.loads((BASELINES / case.path / stamped_json).resolve().read_text())
        assert data["schema"] == case.schema
    loaded = case.load(BASELINES / case.path)
    out = tmp_path / "out"
    case.save(loaded, out)
    _assert_same_files(case, out)
    reloaded = case.load(out / case.path)  # read -> write -> read
    assert type(reloaded) is type(loaded)
    for stamped_json in case.stamped:
        again, first = ({k: v for k, v in read_stamped((root / case.path / stamped_json).resolve(), case.schema).items()
                         if k != "vfx_version"} for root in (out, BASELINES))
        assert again == first
    assert not list(out.rglob("*.vfxtmp*")), "temporary files left behind"


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("schema", ["{family}/99", "vfx.SomethingElse/1", None])
def test_future_versions_and_foreign_schemas_are_refused(name: str, schema: str | None, tmp_path: Path) -> None:
    case = CASES[name]
    copy = _copy_baselines(tmp_path)
    new = None if schema is None else schema.format(family=case.family)
    for stamped_json in case.stamped:
        _edit_json((copy / case.path / stamped_json).resolve(),
                   lambda d: {k: v for k, v in d.items() if k != "schema"} if new is None else d | {"schema": new})
    with pytest.raises(case.refused) as caught:
        case.load(copy / case.path)
    message = str(caught.value)
    if name not in ("task_record", "comp_transforms"):  # those readers say "none" (the next run rewrites them)
        assert "schema" in message and "Expected:" in message and "Found:" in message and "Fix:" in message
        if new == f"{case.family}/99":
            assert f"{case.schema} or older" in message and "newer than this vfx" in message
        elif new is None:
            assert "no 'schema' field" in message
        else:
            assert "vfx.SomethingElse/1" in message and f"{case.family}/<version>" in message
    with pytest.raises(MediaError, match="Unsupported .* schema"):
        read_stamped((copy / case.path / case.stamped[0]).resolve(), case.schema)


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_upgrade_from_version_0_is_applied(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    copy = _copy_baselines(tmp_path)
    for stamped_json in case.stamped:  # a fake version 0: one field had another name, the rest as version 1
        _edit_json((copy / case.path / stamped_json).resolve(),
                   lambda d: {("old_" + k if k == "shot_hash" or k == "vfx_version" else k): v
                              for k, v in d.items()} | {"schema": f"{case.family}/0"})
    with pytest.raises(case.refused):
        case.load(copy / case.path)  # no upgrade registered from version 0: refused, not misread

    calls = []

    @register_upgrade(case.family, from_version=0)
    def _from_0(data: dict[str, Any]) -> dict[str, Any]:
        calls.append(data["schema"])
        return {k.removeprefix("old_"): v for k, v in data.items()}

    loaded = case.load(copy / case.path)
    assert calls and set(calls) == {f"{case.family}/0"}
    out = tmp_path / "out"
    case.save(loaded, out)
    _assert_same_files(case, out)  # read as version 1, written as version 1: the baseline again


# ---------------------------------------------------------------------------------------------- the helper

def test_upgrades_apply_in_order_and_stamp_each_version(tmp_path: Path) -> None:
    order = []

    @register_upgrade("vfx.Fake", from_version=1)
    def _one(data: dict[str, Any]) -> dict[str, Any]:
        order.append((1, data["schema"]))
        return data | {"steps": data.pop("iterations")}

    @register_upgrade("vfx.Fake", from_version=2)
    def _two(data: dict[str, Any]) -> dict[str, Any]:
        order.append((2, data["schema"]))
        return data | {"steps": data["steps"] * 2}

    write_stamped(tmp_path / "a.json", "vfx.Fake/1", {"iterations": 10})
    assert read_stamped(tmp_path / "a.json", "vfx.Fake/3") == {"schema": "vfx.Fake/3", "steps": 20}
    assert order == [(1, "vfx.Fake/1"), (2, "vfx.Fake/2")]
    assert read_stamped(tmp_path / "a.json", "vfx.Fake/2") == {"schema": "vfx.Fake/2", "steps": 10}
    assert json.loads((tmp_path / "a.json").read_text()) == {"schema": "vfx.Fake/1", "iterations": 10}, "read only"
    with pytest.raises(MediaError, match="Unsupported vfx.Fake schema .*no upgrade from vfx.Fake/3") as caught:
        read_stamped(tmp_path / "a.json", "vfx.Fake/5")
    assert "Expected: vfx.Fake/5. Found: vfx.Fake/1." in str(caught.value)


def test_a_second_upgrade_from_one_version_is_an_error() -> None:
    register_upgrade("vfx.Fake", from_version=0)(lambda d: d)
    with pytest.raises(InternalError, match="Two upgrades from vfx.Fake/0"):
        register_upgrade("vfx.Fake", from_version=0)(lambda d: d)


def test_missing_unreadable_and_malformed_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="Cannot read the vfx.Fake .*Expected: a.json .JSON, schema vfx.Fake/1.*"
                                         "Found: no .*a.json.*Fix: run it again"):
        read_stamped(tmp_path / "a.json", "vfx.Fake/1", fix="run it again")
    with pytest.raises(MediaError, match="Found: no folder"):
        read_stamped(tmp_path / "nowhere" / "a.json", "vfx.Fake/1")
    (tmp_path / "bad.json").write_text('{"schema": "vfx.Fake/1", ')
    with pytest.raises(MediaError, match="Cannot read the fake .*JSONDecodeError"):
        read_stamped(tmp_path / "bad.json", "vfx.Fake/1", what="fake")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(MediaError, match="a JSON object.*Found: a JSON list"):
        read_stamped(tmp_path / "list.json", "vfx.Fake/1")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(MediaError, match="UnicodeDecodeError"):
        read_stamped(tmp_path / "bin.json", "vfx.Fake/1")
    (tmp_path / "plain.json").write_text('{"schema": "vfx.Fake"}')
    with pytest.raises(MediaError, match="Found: 'vfx.Fake'"):
        read_stamped(tmp_path / "plain.json", "vfx.Fake/1")


def test_layouts_write_weights_first_and_atomically(tmp_path: Path) -> None:
    tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(), "b": torch.ones(2, requires_grad=True)}
    write_stamped(tmp_path / "head", "vfx.Fake/1", {"n": 1}, tensors)  # default with tensors: a sidecar
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head.json", "head.safetensors"]
    weights = read_stamped_weights(tmp_path / "head", SIDECAR)
    assert torch.equal(weights["w"], tensors["w"]) and torch.equal(weights["b"], torch.ones(2))
    from safetensors import safe_open

    with safe_open(str(tmp_path / "head.safetensors"), "pt") as handle:
        assert handle.metadata() == {"schema": "vfx.Fake/1"}

    folder = Layout.folder("manifest.json", "model.safetensors", whole=True)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "stale.txt").write_text("from an older write")
    write_stamped(tmp_path / "ckpt", "vfx.Fake/1", {"n": 2}, tensors, layout=folder,
                  more_weights={"optimizer.safetensors": {"m": torch.zeros(3)}})
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "manifest.json", "model.safetensors", "optimizer.safetensors"], "a whole folder is replaced"
    assert torch.equal(read_stamped_weights(tmp_path / "ckpt", folder, name="optimizer.safetensors")["m"],
                       torch.zeros(3))
    assert read_stamped(tmp_path / "ckpt", "vfx.Fake/1", layout=folder) == {"schema": "vfx.Fake/1", "n": 2}
    assert not list(tmp_path.rglob("*vfxtmp*"))

    in_place = Layout.folder("refiner.json", "refiner.safetensors")
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "keep.txt").write_text("other files stay")
    write_stamped(tmp_path / "ref", "vfx.Fake/1", {}, tensors, layout=in_place)
    assert sorted(p.name for p in (tmp_path / "ref").iterdir()) == ["keep.txt", "refiner.json", "refiner.safetensors"]

    (tmp_path / "ref" / "refiner.safetensors").write_bytes(b"\x08\x00")
    with pytest.raises(MediaError, match="Cannot read the refiner .*a complete refiner.safetensors"):
        read_stamped_weights(tmp_path / "ref", in_place, what="refiner")
    with pytest.raises(InternalError):
        write_stamped(tmp_path / "x.json", "vfx.Fake/1", {}, tensors, layout=FILE)


def test_the_schema_keeps_its_place_and_must_match(tmp_path: Path) -> None:
    write_stamped(tmp_path / "a.json", "vfx.Fake/1", {"task": "t", "schema": "vfx.Fake/1"})
    assert list(json.loads((tmp_path / "a.json").read_text())) == ["task", "schema"]
    with pytest.raises(InternalError, match="another schema"):
        write_stamped(tmp_path / "b.json", "vfx.Fake/1", {"schema": "vfx.Fake/2"})
    with pytest.raises(InternalError, match="Malformed schema"):
        write_stamped(tmp_path / "c.json", "vfx.Fake", {})
    assert not (tmp_path / "b.json").exists() and not (tmp_path / "c.json").exists()


def test_if_changed_leaves_an_identical_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    assert write_stamped(path, "vfx.Fake/1", {"n": 1}, if_changed=True)
    before = path.stat().st_mtime_ns
    assert not write_stamped(path, "vfx.Fake/1", {"n": 1}, if_changed=True)
    assert path.stat().st_mtime_ns == before
    assert write_stamped(path, "vfx.Fake/1", {"n": 2}, if_changed=True)
    assert json.loads(path.read_text())["n"] == 2


def test_json_only_files_do_not_import_torch(tmp_path: Path) -> None:
    code = ("import sys; from vfx.utils.stamped import read_stamped, write_stamped; "
            f"write_stamped({str(tmp_path / 'a.json')!r}, 'vfx.Fake/1', {{'n': 1}}); "
            f"read_stamped({str(tmp_path / 'a.json')!r}, 'vfx.Fake/1'); "
            "assert 'torch' not in sys.modules and 'safetensors' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
