"""Schema-stamped files: a JSON that names its schema and version, and the safetensors weights beside it.

Every file the toolkit writes for later (checkpoints, edit vectors, segmentation heads, refiners, facesets,
task records, compositor packages) goes through :func:`write_stamped` and comes back through
:func:`read_stamped`. The JSON carries ``"schema": "<family>/<version>"`` (``vfx.CombModel/1``); weights are
safetensors whose header metadata carries the same ``{"schema": ...}`` (never pickle).

Writes are atomic (temporary file, fsync, rename: :mod:`vfx.utils.atomic`), weights first and the JSON
last, so the JSON's presence marks a whole file. Reads check the schema family, apply the upgrades
registered with :func:`register_upgrade` from older versions in order (OpenTimelineIO's schema-version
upgrade path), and refuse a missing file, bad JSON, a foreign schema or a version newer than this vfx
reads with a :class:`~vfx.errors.MediaError` that says what was expected, what was found and how to fix it.

Where the parts lie is a :class:`Layout`, one of the three the toolkit's files use:

==================================  ==========================================================================
``FILE``                            ``path`` is the JSON itself (task records, ``faceset.json``, the comp
                                    package's ``package.json`` and ``transforms.json``)
``SIDECAR``                         ``path`` X names ``X.safetensors`` + ``X.json`` (segmentation heads)
``Layout.folder(json, weights)``    ``path`` is a folder holding the JSON and the weights (refiners:
                                    ``refiner.json`` + ``refiner.safetensors``); with ``whole=True`` the folder
                                    is written under a temporary name and renamed over (comb checkpoints:
                                    ``manifest.json`` + ``model.safetensors`` + ``optimizer.safetensors``;
                                    edit vectors: ``edit.json`` + ``delta.safetensors``)
==================================  ==========================================================================

Floor 2: imports nothing of vfx but :mod:`vfx.errors` and :mod:`vfx.utils`; torch and safetensors are
imported inside the weight functions only, so reading a JSON-only file stays light.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from vfx.errors import InternalError, MediaError
from vfx.utils.atomic import TEMP_MARKER, atomic_path, atomic_write_text, fsync_path

if TYPE_CHECKING:
    import torch

__all__ = [
    "FILE",
    "SIDECAR",
    "Layout",
    "Upgrade",
    "parse_schema",
    "read_stamped",
    "read_stamped_weights",
    "register_upgrade",
    "write_stamped",
]

Upgrade = Callable[[dict[str, Any]], dict[str, Any]]
"""An upgrade: the JSON of version N in, the JSON of version N + 1 out (the ``schema`` field is set for it)."""

_UPGRADES: dict[tuple[str, int], Upgrade] = {}
_SCHEMA = re.compile(r"(?P<family>[A-Za-z_][\w.]*)/(?P<version>\d+)")
_WEIGHTS_SUFFIX, _JSON_SUFFIX = ".safetensors", ".json"


@dataclass(frozen=True)
class Layout:
    """Where the JSON and the weights of a stamped file lie, given the path its writer and reader are called with.

    Attributes:
        kind: ``file`` (the path is the JSON), ``sidecar`` (path X: ``X.safetensors`` + ``X.json``) or ``folder``.
        json_name: folder: the JSON's name inside it.
        weights_name: folder: the (main) weights file's name inside it.
        whole: folder: write the whole folder under a temporary name and rename it over the old one (the folder
            then holds exactly what the writer wrote); otherwise each file is replaced atomically in place.
    """

    kind: Literal["file", "sidecar", "folder"]
    json_name: str = ""
    weights_name: str = ""
    whole: bool = False

    @classmethod
    def folder(cls, json_name: str, weights_name: str = "", *, whole: bool = False) -> Layout:
        """A folder holding ``json_name`` (and ``weights_name``)."""
        return cls("folder", json_name, weights_name, whole)

    def json_path(self, path: str | os.PathLike[str]) -> Path:
        """The JSON of the stamped file ``path`` names."""
        path = Path(path)
        if self.kind == "folder":
            return path / self.json_name
        return path.with_name(path.name + _JSON_SUFFIX) if self.kind == "sidecar" else path

    def weights_path(self, path: str | os.PathLike[str], name: str | None = None) -> Path:
        """The weights file (``name``: another weights file of a folder) of the stamped file ``path`` names."""
        path = Path(path)
        if self.kind == "folder":
            return path / (name or self.weights_name)
        if self.kind == "sidecar" and name is None:
            return path.with_name(path.name + _WEIGHTS_SUFFIX)
        raise InternalError(f"A {self.kind} layout has no weights file {name or ''}".rstrip(),
                            expected="Layout.folder(...) for named weights, SIDECAR or a folder for weights")


FILE = Layout("file")
"""The path is the JSON; no weights."""
SIDECAR = Layout("sidecar")
"""Path X: weights ``X.safetensors`` and JSON ``X.json`` side by side."""


def parse_schema(schema: object) -> tuple[str, int] | None:
    """``"vfx.CombModel/1"`` -> ``("vfx.CombModel", 1)``; None for anything else.

    Example:
        >>> parse_schema("vfx.CombModel/1"), parse_schema("vfx.CombModel"), parse_schema(3)
        (('vfx.CombModel', 1), None, None)
    """
    match = _SCHEMA.fullmatch(schema) if isinstance(schema, str) else None
    return (match["family"], int(match["version"])) if match else None


def _checked_schema(schema: str) -> tuple[str, int]:
    parsed = parse_schema(schema)
    if parsed is None:
        raise InternalError(f"Malformed schema name {schema!r}", expected="'<family>/<version>', e.g. 'vfx.CombModel/1'")
    return parsed


# ---------------------------------------------------------------------------------------------- upgrades

def register_upgrade(family: str, from_version: int) -> Callable[[Upgrade], Upgrade]:
    """Register ``fn(data) -> data`` that turns the JSON of ``family/from_version`` into ``family/from_version+1``.

    :func:`read_stamped` applies the registered upgrades in order, from a file's version up to the one its
    reader asks for, and stamps each result with its new version. Register an upgrade in the module that
    reads the family, next to the reader, when the writer moves to a new version.

    Raises:
        InternalError: a second upgrade from the same version of the same family.

    Example::

        @register_upgrade("vfx.CombModel", from_version=1)
        def _comb_1_to_2(data: dict) -> dict:
            data["iterations"] = data.pop("steps")  # what version 2 renamed
            return data
    """
    _checked_schema(f"{family}/{from_version}")

    def deco(fn: Upgrade) -> Upgrade:
        key = (family, int(from_version))
        if key in _UPGRADES and _UPGRADES[key] is not fn:
            raise InternalError(f"Two upgrades from {family}/{from_version}",
                                expected="one upgrade per family and version",
                                found=f"{_UPGRADES[key].__module__}.{_UPGRADES[key].__qualname__} and "
                                      f"{fn.__module__}.{fn.__qualname__}")
        _UPGRADES[key] = fn
        return fn

    return deco


def _upgrade(data: dict[str, Any], family: str, version: int, current: int, source: Path, what: str,
             fix: str | None) -> dict[str, Any]:
    start = version
    while version < current:
        upgrade = _UPGRADES.get((family, version))
        if upgrade is None:
            readable = [f"{family}/{v}" for v in range(version + 1, current + 1)
                        if all((family, u) in _UPGRADES for u in range(v, current))]
            raise MediaError(f"Unsupported {what} schema in {source}: this vfx has no upgrade from {family}/{version}",
                             expected=" or ".join(readable), found=f"{family}/{start}",
                             fix=fix or "write the file again with this vfx")
        data = upgrade(dict(data))
        if not isinstance(data, dict):
            raise InternalError(f"The upgrade from {family}/{version} returned {type(data).__name__}",
                                expected="a dict (the JSON of the next version)")
        version += 1
        data["schema"] = f"{family}/{version}"
    return data


# ---------------------------------------------------------------------------------------------- writing

def _json_default(value: Any) -> float:
    """Numbers JSON does not know (numpy float32, 0-d tensors) as floats."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable") from None


def _json_text(schema: str, meta: Mapping[str, Any]) -> str:
    if "schema" in meta:
        if meta["schema"] != schema:  # a field of the caller's own record: it keeps its place in the file
            raise InternalError("A stamped file's metadata names another schema",
                                expected=repr(schema), found=repr(meta["schema"]))
        data = dict(meta)
    else:
        data = {"schema": schema, **meta}
    return json.dumps(data, indent=2, default=_json_default) + "\n"


def _save_weights(path: Path, schema: str, tensors: Mapping[str, torch.Tensor], *, atomic: bool = True) -> None:
    from safetensors.torch import save_file

    state = {name: tensor.detach().contiguous().cpu() for name, tensor in tensors.items()}
    if not atomic:  # inside a temporary folder that is renamed as a whole
        save_file(state, str(path), metadata={"schema": schema})
        fsync_path(path)
        return
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"schema": schema})


def write_stamped(path: str | os.PathLike[str], schema: str, meta: Mapping[str, Any],
                  tensors: Mapping[str, torch.Tensor] | None = None, *, layout: Layout | None = None,
                  more_weights: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
                  if_changed: bool = False) -> bool:
    """Write a schema-stamped file atomically: the weights (when given) first, then the JSON.

    The JSON is ``meta`` with ``"schema": schema``: first, or where ``meta`` already holds it (a record's own
    ``schema`` field keeps its place), as ``json.dumps(..., indent=2)`` plus a newline. Weights are safetensors
    with ``{"schema": schema}`` in their header, detached, contiguous and on the CPU; convert dtypes before.

    Args:
        path: what the layout is relative to (the JSON file, the sidecar stem, or the folder).
        schema: ``"<family>/<version>"``, e.g. ``"vfx.CombModel/1"``.
        meta: the JSON's content (JSON types; numpy and 0-d tensor numbers are written as floats).
        tensors: the weights, into the layout's weights file.
        layout: where the parts lie. Default: :data:`FILE` without weights, :data:`SIDECAR` with them.
        more_weights: further weights files of a folder layout, by file name (a checkpoint's optimiser state).
        if_changed: JSON-only files: leave the file untouched (not even its time) when it already holds exactly
            this text.

    Returns:
        False when ``if_changed`` found the file as it is; True when written.

    Raises:
        InternalError: a malformed schema, ``meta`` naming another schema, or weights the layout has no place for.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "record.json"
        >>> write_stamped(out, "vfx.Example/1", {"frames": "1001-1010"})
        True
        >>> print(out.read_text(), end="")
        {
          "schema": "vfx.Example/1",
          "frames": "1001-1010"
        }
    """
    _checked_schema(schema)
    layout = layout or (SIDECAR if tensors is not None else FILE)
    weights = {} if tensors is None else {layout.weights_path(path).name: tensors}
    for name, more in (more_weights or {}).items():
        weights[layout.weights_path(path, name).name] = more
    if if_changed and weights:
        raise InternalError("if_changed is for JSON-only stamped files", expected="no tensors with if_changed")
    text = _json_text(schema, meta)
    json_file = layout.json_path(path)
    if if_changed:
        try:
            if json_file.read_text(encoding="utf-8") == text:
                return False
        except (OSError, UnicodeDecodeError):
            pass
    if layout.kind == "folder" and layout.whole:
        final = Path(path)
        tmp = final.with_name(f".{final.name}{TEMP_MARKER}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, state in weights.items():
            _save_weights(tmp / name, schema, state, atomic=False)
        atomic_write_text(tmp / layout.json_name, text)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_path(final.parent)
        return True
    for name, state in weights.items():
        _save_weights(json_file.with_name(name), schema, state)
    atomic_write_text(json_file, text)
    return True


# ---------------------------------------------------------------------------------------------- reading

def read_stamped(path: str | os.PathLike[str], schema: str, *, layout: Layout = FILE, what: str | None = None,
                 fix: str | None = None) -> dict[str, Any]:
    """Read the JSON of a stamped file, check its schema and upgrade it to ``schema``'s version.

    Args:
        path: what the layout is relative to (the JSON file, the sidecar stem, or the folder).
        schema: the family and the newest version this vfx reads, e.g. ``"vfx.CombModel/1"``; older versions are
            upgraded through :func:`register_upgrade`'s functions, one version at a time.
        layout: where the JSON lies (default: ``path`` is the JSON).
        what: the file's kind in messages ("checkpoint", "faceset"); default: the schema family.
        fix: how to make a readable file, for the messages (e.g. "run `vfx extract` again").

    Returns:
        The JSON (a dict) as of ``schema``: its ``"schema"`` field is ``schema``.

    Raises:
        MediaError: a missing or unreadable file, not a JSON object, no ``schema`` field, another family, a version
            newer than ``schema``'s, or an older one without an upgrade path.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "record.json"
        >>> _ = write_stamped(out, "vfx.Example/1", {"steps": 40})
        >>> read_stamped(out, "vfx.Example/1")
        {'schema': 'vfx.Example/1', 'steps': 40}
        >>> read_stamped(out, "vfx.Other/1")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        vfx.errors.MediaError: Unsupported vfx.Other schema in ... Found: 'vfx.Example/1'. ...
    """
    family, current = _checked_schema(schema)
    what = what or family
    source = layout.json_path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MediaError(f"Cannot read the {what} {path}", expected=f"{source.name} (JSON, schema {schema})",
                         found=f"no {source}" if source.parent.is_dir() else f"no folder {source.parent}",
                         fix=fix) from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise MediaError(f"Cannot read the {what} {path}", expected=f"{source.name} (JSON, schema {schema})",
                         found=f"{type(err).__name__}: {err}", fix=fix) from None
    if not isinstance(data, dict):
        raise MediaError(f"Cannot read the {what} {path}", expected=f"{source.name}: a JSON object",
                         found=f"a JSON {type(data).__name__}", fix=fix)
    found = data.get("schema")
    parsed = parse_schema(found)
    if parsed is None or parsed[0] != family:
        raise MediaError(f"Unsupported {what} schema in {source}", expected=f"{family}/<version>, e.g. {schema}",
                         found="no 'schema' field" if found is None else repr(found),
                         fix=fix or f"pass a {what} written by vfx")
    version = parsed[1]
    if version > current:
        import vfx

        raise MediaError(f"Unsupported {what} schema in {source}", expected=f"{schema} or older",
                         found=f"{found}, newer than this vfx ({vfx.__version__}) reads",
                         fix=f"open it with the newer vfx that wrote it, or {fix or 'write it again with this one'}")
    return _upgrade(data, family, version, current, source, what, fix)


def read_stamped_weights(path: str | os.PathLike[str], layout: Layout = SIDECAR, *, name: str | None = None,
                         device: torch.device | str = "cpu", what: str = "file",
                         fix: str | None = None) -> dict[str, torch.Tensor]:
    """Read a stamped file's safetensors weights (``name``: another weights file of a folder layout).

    Raises:
        MediaError: the weights file is missing, truncated or not safetensors.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = layout.weights_path(path, name)
    try:
        return load_file(str(file), device=str(device))
    except (OSError, SafetensorError) as err:
        raise MediaError(f"Cannot read the {what} {path}", expected=f"a complete {file.name} (safetensors)",
                         found=f"{type(err).__name__}: {err}", fix=fix) from None
