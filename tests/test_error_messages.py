"""Issue 17: every user-facing error says what was expected, what was found and how to fix it.

A static scan of vfx/: each call that builds a :class:`vfx.errors.VfxError` (or a subclass, wherever it is
defined) passes ``expected=``, ``found=`` and ``fix=``. ShapeError and InternalError are exempt: they are
Python-API and bug errors, not a compositor's. Calls that forward ``**kwargs`` are skipped (their caller is
scanned instead).
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "vfx"

REQUIRED = ("expected", "found", "fix")
EXEMPT_CLASSES = {"ShapeError", "InternalError"}
"""Python-API misuse and broken invariants: their messages are for a developer, not checked here."""

EXCLUDED_FILES: set[str] = set()
"""Files not yet swept (being edited elsewhere); remove each entry once its raises are complete."""


def _sources() -> dict[str, ast.Module]:
    return {path.relative_to(REPO).as_posix(): ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for path in sorted(PACKAGE.rglob("*.py"))}


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _error_classes(trees: dict[str, ast.Module]) -> set[str]:
    """VfxError and every class in vfx/ deriving from it (by name, through any number of levels), less the
    exempt ones and their own subclasses."""
    bases = {node.name: {_name(b) for b in node.bases} for tree in trees.values() for node in ast.walk(tree)
             if isinstance(node, ast.ClassDef)}
    found = {"VfxError"}
    while True:
        more = {name for name, parents in bases.items()
                if name not in found and name not in EXEMPT_CLASSES and parents & found}
        if not more:
            return found
        found |= more


def _excluded(path: str) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in EXCLUDED_FILES)


def _empty(value: ast.expr) -> bool:
    return isinstance(value, ast.Constant) and value.value in (None, "")


MESSAGE_BUILDERS = {"_describe"}
"""Functions that build a whole message with its expected / found / fix parts (a shot file's schema problems,
one line each, are listed between them)."""


def _scan() -> tuple[int, list[str]]:
    """(raise sites scanned, the sites lacking a keyword as ``path:line Class: missing ...``)."""
    trees = _sources()
    classes = _error_classes(trees)
    sites, incomplete = 0, []
    for path, tree in trees.items():
        if _excluded(path):
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _name(node.func) in classes):
                continue
            if any(k.arg is None for k in node.keywords):  # **kwargs: forwarded, checked at its caller
                continue
            if node.args and isinstance(node.args[0], ast.Call) and _name(node.args[0].func) in MESSAGE_BUILDERS:
                continue  # a message built whole, its Expected/Found/Fix lines included
            sites += 1
            given = {k.arg for k in node.keywords if not _empty(k.value)}
            missing = [k for k in REQUIRED if k not in given]
            if missing:
                incomplete.append(f"{path}:{node.lineno} {_name(node.func)}: missing {', '.join(missing)}")
    return sites, incomplete


def test_error_classes_are_found() -> None:
    classes = _error_classes(_sources())
    assert {"VfxError", "ConfigError", "ShotFileError", "FrameRangeError", "MediaError", "MissingFramesError",
            "InvalidPixelsError", "ColorError", "ExternalToolError", "TaskRecordError",
            "PrerequisiteError"} <= classes
    assert not classes & EXEMPT_CLASSES


def test_excluded_files_exist() -> None:
    """A stale entry (a file renamed or removed) would silently excuse nothing; keep the list honest."""
    files = [p.relative_to(REPO).as_posix() for p in PACKAGE.rglob("*.py")]
    stale = sorted(pattern for pattern in EXCLUDED_FILES if not any(fnmatch.fnmatch(f, pattern) for f in files))
    assert not stale, f"EXCLUDED_FILES entries that match no file: {stale}"


def test_every_user_error_says_expected_found_and_fix() -> None:
    sites, incomplete = _scan()
    assert sites > 100, f"the scan found only {sites} raise sites: is it still looking at vfx/?"
    assert not incomplete, (
        f"{len(incomplete)} of {sites} VfxError raise sites lack expected=/found=/fix= (issue 17):\n"
        + "\n".join(incomplete)
    )
