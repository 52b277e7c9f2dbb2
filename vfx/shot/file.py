"""Reading and writing shot files, with errors that point at the YAML line at fault."""

from __future__ import annotations

import difflib
import os
import stat
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from vfx.errors import ShotFileError
from vfx.shot.cut import apply_cut, check_cut_fields
from vfx.shot.schema import SCHEMA, Shot
from vfx.utils.atomic import atomic_write_text

__all__ = ["load_shot", "parse_shot", "dump_shot", "save_shot", "safe_load_limited", "MAX_SHOT_BYTES"]

#: A shot file is a few KB; anything over this is refused before it is read (a 30 MB YAML would take minutes).
MAX_SHOT_BYTES = 1024 * 1024
#: Deepest nesting of mappings and lists (a real shot file nests about 5 deep).
MAX_DEPTH = 64
#: Aliases (``*name``) in one file: a few are handy (``&defaults`` ... ``<<: *defaults``), thousands are a bomb.
MAX_ALIASES = 256
#: Values (scalars, lists, mappings) in the file, and in the document with every alias expanded (the "billion
#: laughs" is small on disk and huge expanded). A shot file holds a few hundred.
MAX_VALUES = 50_000

#: Problems a schema error lists (a file of 30000 wrong values would otherwise print 30000 lines).
_MAX_PROBLEMS = 20

# Older schemas map to newer ones here, one step at a time (vfx.Shot/1 is the first).
_UPGRADES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def load_shot(path: str | os.PathLike[str]) -> Shot:
    """Load and validate a shot file; relative paths inside it are taken from the file's folder.

    A shot with an editorial cut (``plate.edit``) comes back with ``plate.frames`` set from its clip
    (:func:`vfx.shot.cut.apply_cut`: the cut and the plate's start timecode are read here).

    Raises:
        ShotFileError: the file is missing, empty, not YAML, or does not match ``vfx.Shot/1``; the message
            names each wrong field with its YAML path and line, what was expected and the valid choices.
        ConfigError: the editorial cut cannot be read, has no such clip, or lies outside the plate.
        MediaError: the plate of a shot with a cut cannot be read.
    """
    path = Path(path)
    if not path.exists():
        raise ShotFileError(f"Shot file {str(path)!r} does not exist", expected="a YAML shot file",
                            found="no such file", fix="check the path; `vfx demo` writes an example shot file")
    if path.is_dir():
        raise ShotFileError(f"Shot file {str(path)!r} is a directory", expected="a YAML file, e.g. shots/sh010.yaml",
                            found="a directory", fix="pass the shot file inside it")
    try:
        info = path.stat()  # the size is checked before anything is read
        if not stat.S_ISREG(info.st_mode):
            raise ShotFileError(f"Shot file {str(path)!r} is not a regular file", expected="a YAML file",
                                found="a device, pipe or socket", fix="pass the shot file itself")
        _check_size(info.st_size, str(path))
        with path.open("rb") as handle:
            data = handle.read(MAX_SHOT_BYTES + 1)
        _check_size(len(data), str(path))  # it grew while we looked
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ShotFileError(f"Cannot read shot file {str(path)!r}", expected="a UTF-8 YAML file", found=str(err),
                            fix="check the file's permissions, and save it as UTF-8 text") from None
    return apply_cut(parse_shot(text, base_dir=path.parent.absolute(), source=str(path)))


def parse_shot(text: str, *, base_dir: Path | None = None, source: str = "<string>") -> Shot:
    """Validate shot YAML text. Relative paths are joined to ``base_dir`` when it is given.

    The YAML is read with limits (:func:`safe_load_limited`): size, nesting depth, aliases and expanded size.
    """
    root, raw = _load_yaml(text, source)
    if raw is None:
        raise ShotFileError(f"{source} is empty", expected=f"a YAML mapping starting with 'schema: {SCHEMA}'",
                            found="no document", fix="start from one of the examples in shots/ or the shot file "
                            "`vfx demo` writes")
    if not isinstance(raw, dict):
        raise ShotFileError(f"{source} is not a YAML mapping", expected="keys such as schema, name, plate",
                            found=f"a {type(raw).__name__}", fix="start from one of the examples in shots/")
    _check_text(raw, root, source)
    schema = raw.get("schema")
    if schema is None:
        raise ShotFileError(f"{source} has no 'schema' field", expected=f"'schema: {SCHEMA}' as the first line",
                            found="no schema", fix=f"add 'schema: {SCHEMA}'")
    while isinstance(schema, str) and schema in _UPGRADES:
        raw = _UPGRADES[schema](raw)
        schema = raw["schema"]
    if schema != SCHEMA:
        shown = repr(schema) if len(repr(schema)) <= 80 else repr(schema)[:77] + "..."
        raise ShotFileError(f"{source} has an unsupported schema {shown}", expected=f"one of: {SCHEMA}",
                            found=shown, fix="this vfx version reads vfx.Shot/1; upgrade vfx for newer shot files")
    try:
        shot = Shot.model_validate(raw, context={"base_dir": base_dir})
    except ValidationError as err:
        raise ShotFileError(_describe(err, root, source)) from None
    check_cut_fields(shot.plate)  # plate.frames with plate.edit: refused (the cut is applied by load_shot)
    return shot


def dump_shot(shot: Shot) -> str:
    """The shot as YAML text, every default filled in (what `vfx shot show` prints).

    A shot whose frames come from its editorial cut (``plate.edit``) is written without ``plate.frames``
    (the cut sets them again when the file is loaded); they are shown in a comment above the YAML.
    """
    data = shot.to_dict()
    note = ""
    plate = data.get("plate")
    if isinstance(plate, dict) and plate.get("edit") is not None and plate.get("frames") is not None:
        note = f"# plate.frames {plate.pop('frames')} come from the editorial cut (plate.edit)\n"
    return note + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)


def save_shot(shot: Shot, path: str | os.PathLike[str]) -> None:
    """Write the shot as YAML, atomically."""
    atomic_write_text(path, dump_shot(shot))


def safe_load_limited(text: str, source: str = "<string>", *, max_bytes: int = MAX_SHOT_BYTES,
                      what: str = "shot file") -> Any:
    """``yaml.safe_load`` with limits: at most ``max_bytes`` of text, :data:`MAX_DEPTH` levels of nesting,
    :data:`MAX_ALIASES` aliases, :data:`MAX_VALUES` nodes with every alias expanded, no recursive
    aliases and no duplicate keys. For any YAML the toolkit reads back from a user-editable file.

    Raises:
        ShotFileError: what limit was exceeded (or where the YAML is broken), and how to fix it.
    """
    return _load_yaml(text, source, max_bytes=max_bytes, what=what)[1]


def _check_size(size: int, source: str, max_bytes: int = MAX_SHOT_BYTES, what: str = "shot file") -> None:
    if size > max_bytes:
        raise ShotFileError(f"{source} is too large for a {what}", expected=f"at most {_size(max_bytes)} "
                            f"(a {what} is a few KB)", found=_size(size),
                            fix=f"pass the {what} itself; media, weights and lists of frames belong in files it names")


def _size(count: int) -> str:
    return f"{count / 1024 ** 2:.1f} MB" if count >= 1024 ** 2 else f"{count} bytes"


#: libyaml's loader where PyYAML was built with it (30x faster on a large file); the limits are the same.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_events(text: str, source: str) -> int:
    """Walk the YAML's events (no document is built): refuse deep nesting, many aliases, many values and
    duplicate keys before the composer (which recurses once per level) sees them. Returns the alias count."""
    loader = _Loader(text)
    aliases = nodes = 0
    # One entry per open mapping or list: [is a mapping, nodes seen in it, its keys so far (key -> line)].
    stack: list[list[Any]] = []
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                stack.pop()
                continue
            if not isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.SequenceStartEvent,
                                      yaml.MappingStartEvent)):
                continue
            line = event.start_mark.line + 1
            nodes += 1
            if nodes > MAX_VALUES:
                raise ShotFileError(f"{source} holds too many values (line {line})",
                                    expected=f"at most {MAX_VALUES} values", found=f"more than {MAX_VALUES}",
                                    fix="keep long lists in files the shot names")
            if stack and stack[-1][0]:
                parent = stack[-1]
                if parent[1] % 2 == 0 and isinstance(event, yaml.ScalarEvent) and not (
                        event.value == "<<" and event.implicit[0]):
                    _check_key(parent[2], event, line, source)
                parent[1] += 1
            if isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise ShotFileError(f"{source} has too many YAML aliases (line {line})",
                                        expected=f"at most {MAX_ALIASES} aliases (*name)",
                                        found=f"more than {MAX_ALIASES}",
                                        fix="write the values out; a file of many aliases is a YAML bomb")
            elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                stack.append([isinstance(event, yaml.MappingStartEvent), 0, {}])
                if len(stack) > MAX_DEPTH:
                    raise ShotFileError(f"{source} nests too deeply (line {line})",
                                        expected=f"at most {MAX_DEPTH} levels of mappings and lists",
                                        found=f"more than {MAX_DEPTH}", fix="flatten the structure at that line")
    finally:
        loader.dispose()
    return aliases


def _check_key(seen: dict[tuple[Any, ...], int], event: yaml.ScalarEvent, line: int, source: str) -> None:
    key = (event.value, event.tag, event.implicit[0])
    first = seen.get(key)
    if first is not None:
        shown = event.value if len(event.value) <= 60 else event.value[:57] + "..."
        raise ShotFileError(f"{source} has the key {shown!r} twice (lines {first} and {line})",
                            expected="each key once in a mapping", found=f"a second {shown!r} at line {line}",
                            fix="keep one of them (YAML would silently keep only the last)")
    seen[key] = line


def _load_yaml(text: str, source: str, *, max_bytes: int = MAX_SHOT_BYTES,
               what: str = "shot file") -> tuple[yaml.Node | None, Any]:
    """The composed node graph (for line numbers) and the constructed data of ``text``, read with limits."""
    if len(text) > max_bytes // 4:  # characters: at least a quarter as many bytes
        _check_size(len(text.encode("utf-8", "surrogatepass")), source, max_bytes, what)
    try:
        aliases = _check_events(text, source)
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            if root is not None and aliases:
                _check_graph(root, source)
            raw = None if root is None else loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        problem = " ".join(str(problem).split())[:300]
        raise ShotFileError(f"{source} is not valid YAML{where}",
                            expected="YAML: `key: value` lines, lists as `- item`, one document", found=problem,
                            fix="check indentation and quoting around that line") from None
    except (ValueError, OverflowError, RecursionError) as err:  # e.g. an integer of 5000 digits, a 13th month
        raise ShotFileError(f"{source} holds a value YAML cannot read", expected="numbers, dates and text of "
                            "ordinary size", found=f"{type(err).__name__}: {str(err)[:200]}",
                            fix="quote the value or correct it") from None
    return root, raw


def _check_text(raw: Any, root: yaml.Node | None, source: str) -> None:
    """Refuse text no path or name can hold: a NUL character, or a lone surrogate (``"\\uD800"``), which YAML's
    escapes can write but no file system, terminal or JSON encoder takes."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(raw, ())]
    seen: set[int] = set()
    while stack:
        value, loc = stack.pop()
        if isinstance(value, (dict, list)):
            if id(value) in seen:  # an alias: checked where it was defined
                continue
            seen.add(id(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                stack.append((key, loc) if isinstance(key, str) else (None, loc))
                stack.append((item, (*loc, key)))
        elif isinstance(value, str):
            problem = "a NUL character" if "\0" in value else None
            if problem is None:
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    problem = "a lone surrogate (an escape such as \\uD800 that names no character)"
            if problem:
                dotted = _dotted(loc) or "(top level)"
                line = _line_of(root, loc)
                raise ShotFileError(f"{source}: {dotted}{f' (line {line})' if line else ''} holds {problem}",
                                    expected="text without control characters", found=repr(value[:60]),
                                    fix="remove the escape from that value")


def _check_graph(root: yaml.Node, source: str) -> None:
    """Refuse recursive aliases and a document whose size with every alias expanded is over the cap."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    # Iterative post-order walk; the composed graph is a DAG unless an alias refers to its own ancestor.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            children = _children(node)
            total = 1 + sum(sizes[id(c)] for c in children)
            if total > MAX_VALUES:
                raise ShotFileError(f"{source} expands to too many values (line {node.start_mark.line + 1})",
                                    expected=f"at most {MAX_VALUES} values with every alias expanded",
                                    found=f"more than {MAX_VALUES}",
                                    fix="write the values out instead of nesting aliases; this is a YAML bomb")
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise ShotFileError(f"{source} has a recursive YAML alias (line {node.start_mark.line + 1})",
                                expected="aliases to values defined before them", found="an alias inside the "
                                "value it names", fix="remove the alias at that line")
        open_nodes.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                raise ShotFileError(f"{source} has a recursive YAML alias (line {child.start_mark.line + 1})",
                                    expected="aliases to values defined before them", found="an alias inside "
                                    "the value it names", fix="remove the alias at that line")
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _describe(err: ValidationError, root: yaml.Node | None, source: str) -> str:
    problems = []
    items = err.errors(include_url=False)
    for item in items[:_MAX_PROBLEMS]:
        loc = tuple(item["loc"])
        loc = tuple(part for part in loc if not (isinstance(part, str) and part.startswith("function-")))
        loc, owner = _walk(loc)
        if item["type"] == "union_tag_invalid":
            loc += (_discriminator(item),)  # point at the tag's own field (`kind`), not the whole entry
        dotted = _dotted(loc) or "(top level)"
        line = _line_of(root, loc)
        where = f"{dotted} (line {line})" if line else dotted
        problems.append(f"  - {where}: {_explain(item, loc, owner)}")
    count = len(items)
    if count > _MAX_PROBLEMS:
        problems.append(f"  ... and {count - _MAX_PROBLEMS} more")
    head = f"{source} does not match {SCHEMA} ({count} problem{'s' if count > 1 else ''}):"
    tail = (f"Expected: the fields and values {SCHEMA} allows. Found: the problem{'s' if count > 1 else ''} above. "
            "Fix: correct the fields above; `vfx shot show` prints a resolved example.")
    return "\n".join([head, *problems, tail])


def _explain(item: dict[str, Any], loc: tuple[Any, ...], owner: Any) -> str:
    """What is wrong at ``loc``; ``owner`` is the model whose field (or unknown key) ``loc`` ends in."""
    kind = item["type"]
    if kind == "extra_forbidden":
        valid = _fields_of(owner)
        hint = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        text = f"unknown field {loc[-1]!r}; valid fields here: {', '.join(valid)}"
        return text + (f"; did you mean {hint[0]!r}?" if hint else "")
    if kind == "missing":
        instead = getattr(owner, "SHORTHAND_FIELDS", {}).get(loc[-1]) if loc else None
        return "required field is missing" + (f" (or give {_or(instead)} in its place)" if instead else "")
    message = item["msg"].removeprefix("Value error, ")
    if kind == "union_tag_invalid":
        tags = [t.strip(" '") for t in str(item.get("ctx", {}).get("expected_tags", "")).split(",")]
        hint = difflib.get_close_matches(str(item.get("ctx", {}).get("tag")), tags, n=1)
        return (f"unknown {loc[-1]} {item.get('ctx', {}).get('tag')!r}; valid choices: {', '.join(tags)}"
                + (f"; did you mean {hint[0]!r}?" if hint else ""))
    if kind == "literal_error":
        choices = [c.strip(" '") for c in item.get("ctx", {}).get("expected", "").replace(" or ", ",").split(",")]
        hint = difflib.get_close_matches(str(item.get("input")), [c for c in choices if c], n=1)
        message = f"{message} (valid choices); found {item.get('input')!r}" + (
            f"; did you mean {hint[0]!r}?" if hint else "")
    found = item.get("input")
    if kind != "literal_error" and not isinstance(found, (dict, list)) and "found " not in message:
        shown = repr(found)
        message += f"; found {shown if len(shown) <= 200 else shown[:197] + '...'}"
    return message


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest YAML node along ``loc`` (a key's own line where the key exists)."""
    node, line = root, None
    if node is not None:
        line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part) or (part == "schema_" and key.value == "schema"):
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _walk(loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any]:
    """``loc`` as the shot file spells it, and the model that holds its last part (walking from :class:`Shot`).

    Pydantic puts a tagged union's tag into the location (``retouch.0.relabel.source``); the file has no such
    level, so the tag is dropped (``retouch[0].source``) and picks the union's model for the parts after it.
    """
    model: Any = Shot
    owner: Any = None
    shown: list[Any] = []
    for part in loc:
        if isinstance(model, dict) and part in model:  # a tagged union's tag
            model = model[part]
            continue
        owner = model
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(part)) or next(
                (f for f in model.model_fields.values() if f.alias == part), None
            )
            if field is not None:  # else a list index or a dict key (a persona name): same model
                model = _inner_model(field.annotation)
        shown.append(part)
    return tuple(shown), owner


def _discriminator(item: dict[str, Any]) -> str:
    """The field a ``union_tag_invalid`` error's union is tagged by (pydantic quotes it: ``'kind'``)."""
    return str(item.get("ctx", {}).get("discriminator", "kind")).strip("'")


def _fields_of(model: Any) -> list[str]:
    """Valid field names of ``model`` (a model's shorthands, such as a group edit's ``move``, included)."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    names = [field.alias or name for name, field in model.model_fields.items()]
    shorthands = [name for names_ in getattr(model, "SHORTHAND_FIELDS", {}).values() for name in names_]
    return names + [name for name in shorthands if name not in names]


def _or(names: tuple[str, ...]) -> str:
    """``('a', 'b', 'c')`` -> ``a, b or c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _inner_model(annotation: Any) -> Any:
    """The pydantic model inside ``X | None``, ``dict[str, X]`` or ``list[X]``, else the annotation; a union
    tagged by a field (``Field(discriminator=...)``) gives a mapping of tag -> model."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *metadata = typing.get_args(annotation)
        tag = next((m.discriminator for m in metadata if isinstance(getattr(m, "discriminator", None), str)), None)
        if tag is None:
            return _inner_model(inner)
        members = [m for m in typing.get_args(inner) if isinstance(m, type) and issubclass(m, BaseModel)]
        return {value: m for m in members for value in typing.get_args(m.model_fields[tag].annotation)}
    if origin in (typing.Union, types.UnionType, dict, list):
        for arg in reversed(typing.get_args(annotation)):
            inner = _inner_model(arg)
            if isinstance(inner, dict) or (isinstance(inner, type) and issubclass(inner, BaseModel)):
                return inner
    return annotation
