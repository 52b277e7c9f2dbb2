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
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from vfx.errors import InternalError, MediaError
from vfx.utils.atomic import TEMP_MARKER, atomic_path, atomic_write_text, fsync_path

if TYPE_CHECKING:
    import torch
    from pydantic import ValidationError

__all__ = [
    "FILE",
    "SIDECAR",
    "Layout",
    "Upgrade",
    "parse_schema",
    "read_stamped",
    "read_stamped_weights",
    "read_weights_header",
    "check_weights_header",
    "WeightsHeader",
    "MAX_JSON_BYTES",
    "schema_error",
    "TensorSpec",
    "register_upgrade",
    "write_stamped",
]

Upgrade = Callable[[dict[str, Any]], dict[str, Any]]
"""An upgrade: the JSON of version N in, the JSON of version N + 1 out (the ``schema`` field is set for it)."""

TensorSpec = tuple[tuple[int | None, ...], str]
"""What a tensor must be: its shape (None: any size on that axis) and safetensors dtype (``"F32"``, ``"BF16"``)."""

_UPGRADES: dict[tuple[str, int], Upgrade] = {}
_SCHEMA = re.compile(r"(?P<family>[A-Za-z_][\w.]*)/(?P<version>\d+)")
_WEIGHTS_SUFFIX, _JSON_SUFFIX = ".safetensors", ".json"

#: The largest stamped JSON read back (a long shot's comp transforms are a few MB; a loss history less).
MAX_JSON_BYTES = 256 * 1024**2


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
        info = source.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_JSON_BYTES:
            raise MediaError(f"Cannot read the {what} {path}", expected=f"{source.name}: a JSON file of at most "
                             f"{MAX_JSON_BYTES // 1024**2} MB", found="not a regular file" if not
                             stat.S_ISREG(info.st_mode) else f"{info.st_size / 1024**2:.0f} MB",
                             fix=fix or f"pass a {what} written by vfx")
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MediaError(f"Cannot read the {what} {path}", expected=f"{source.name} (JSON, schema {schema})",
                         found=f"no {source}" if source.parent.is_dir() else f"no folder {source.parent}",
                         fix=fix) from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:  # RecursionError: [[[[... nested
        found = f"{type(err).__name__}: {str(err)[:200]}"
        raise MediaError(f"Cannot read the {what} {path}", expected=f"{source.name} (JSON, schema {schema})",
                         found=found, fix=fix) from None
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
                         fix: str | None = None, expect: Mapping[str, TensorSpec] | None = None,
                         schema: str | None = None) -> dict[str, torch.Tensor]:
    """Read a stamped file's safetensors weights (``name``: another weights file of a folder layout).

    With ``expect`` (and/or ``schema``), the header is read first (:func:`read_weights_header`) and checked
    (:func:`check_weights_header`): no tensor is loaded from a file whose names, shapes, dtypes or schema differ.

    Raises:
        MediaError: the weights file is missing, truncated or not safetensors; or its header is not as expected.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = layout.weights_path(path, name)
    if expect is not None or schema is not None:
        header = read_weights_header(path, layout, name=name, what=what, fix=fix)
        check_weights_header(header, expect, schema=schema, what=what, fix=fix)
    try:
        return load_file(str(file), device=str(device))
    except (OSError, SafetensorError) as err:
        raise MediaError(f"Cannot read the {what} {path}", expected=f"a complete {file.name} (safetensors)",
                         found=f"{type(err).__name__}: {err}", fix=fix) from None


@dataclass(frozen=True)
class WeightsHeader:
    """A safetensors file's header: each tensor's shape and dtype, and the metadata (no tensor data is read)."""

    file: Path
    tensors: dict[str, tuple[tuple[int, ...], str]]
    metadata: dict[str, str]


def read_weights_header(path: str | os.PathLike[str], layout: Layout = SIDECAR, *, name: str | None = None,
                        what: str = "file", fix: str | None = None) -> WeightsHeader:
    """The header of a stamped file's weights (``safetensors.safe_open``: names, shapes, dtypes, metadata only).

    Raises:
        MediaError: the weights file is missing, not a regular file, or not safetensors.
    """
    from safetensors import SafetensorError, safe_open

    file = layout.weights_path(path, name)
    try:
        if not stat.S_ISREG(file.stat().st_mode):
            raise MediaError(f"Cannot read the {what} {path}", expected=f"{file.name}: a safetensors file",
                             found="not a regular file", fix=fix)
        with safe_open(str(file), framework="numpy") as handle:
            tensors = {}
            for key in handle.keys():
                part = handle.get_slice(key)
                tensors[key] = (tuple(int(v) for v in part.get_shape()), str(part.get_dtype()))
            metadata = dict(handle.metadata() or {})
    except (OSError, SafetensorError) as err:
        raise MediaError(f"Cannot read the {what} {path}", expected=f"a complete {file.name} (safetensors)",
                         found=f"{type(err).__name__}: {str(err)[:200]}", fix=fix) from None
    return WeightsHeader(file, tensors, metadata)


def check_weights_header(header: WeightsHeader, expect: Mapping[str, TensorSpec] | None = None, *,
                         schema: str | None = None, what: str = "file", fix: str | None = None) -> None:
    """Refuse weights whose header differs from ``expect`` (exactly these names; each shape, None matching any
    size, and dtype) or whose metadata names another schema family than ``schema``'s.

    Raises:
        MediaError: the first difference: the file, the tensor, what was expected and found.
    """
    where = f"{what} weights {header.file}"
    if schema is not None:
        family = _checked_schema(schema)[0]
        found = header.metadata.get("schema")
        parsed = parse_schema(found)
        if parsed is None or parsed[0] != family:
            raise MediaError(f"Foreign {where}", expected=f"safetensors stamped {schema}",
                             found="no schema in its metadata" if found is None else f"schema {found!r}",
                             fix=fix or f"pass {what} weights written by vfx")
    if expect is None:
        return
    missing = [key for key in expect if key not in header.tensors]
    extra = [key for key in header.tensors if key not in expect]
    if missing or extra:
        found = "; ".join(part for part in (f"missing {', '.join(missing[:8])}" if missing else "",
                                            f"unknown {', '.join(extra[:8])}" if extra else "") if part)
        raise MediaError(f"Foreign or mismatched {where}", expected=f"the tensors {', '.join(list(expect)[:8])}"
                         + (" ..." if len(expect) > 8 else ""), found=found, fix=fix)
    for key, (shape, dtype) in expect.items():
        got_shape, got_dtype = header.tensors[key]
        if len(got_shape) != len(shape) or any(w is not None and w != g for w, g in zip(shape, got_shape)) \
                or got_dtype != dtype:
            wanted = "x".join("N" if w is None else str(w) for w in shape) or "scalar"
            got = "x".join(str(g) for g in got_shape) or "scalar"
            raise MediaError(f"Mismatched tensor {key!r} in {where}", expected=f"{wanted} {dtype}",
                             found=f"{got} {got_dtype}", fix=fix)


# ---------------------------------------------------------------------------------------------- schema errors

def schema_error(err: ValidationError, what: str, fix: str | None = None) -> MediaError:
    """A pydantic ``ValidationError`` of a file the toolkit reads back, as a :class:`MediaError` (exit 2) naming
    ``what`` (the file, and the line of a JSON-lines file), the first wrong field, what it should be and what
    it is.
    """
    items = err.errors(include_url=False)
    first = items[0]
    more = f" (and {len(items) - 1} more problem{'s' if len(items) > 2 else ''})" if len(items) > 1 else ""
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "json_invalid":
        return MediaError(f"{what} is not valid JSON", expected="a JSON object", found=message, fix=fix)
    if not first["loc"]:
        return MediaError(f"{what} does not match its schema{more}", expected=message,
                          found=_shown(first.get("input")), fix=fix)
    field_name = ".".join(str(part) for part in first["loc"])
    if first["type"] == "missing":
        return MediaError(f"{what}: field {field_name!r} is missing{more}", expected=f"a {field_name!r} field",
                          found="none", fix=fix)
    return MediaError(f"{what}: field {field_name!r} is wrong{more}", expected=message,
                      found=_shown(first.get("input")), fix=fix)


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        text = "an object with the fields " + ", ".join(str(k) for k in list(value)[:12])
    else:
        text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."
