"""The house rules CI checks by running pytest: import-linter's contracts and ruff.

The contracts are in ``pyproject.toml`` (``[tool.importlinter]``): the floors of DESIGN.md's "Layout" (a lower
floor never imports a higher one, lazy imports inside functions included), the frame stages ``vfx.swap``,
``vfx.retouch`` and ``vfx.edit`` never importing each other, and no production code importing ``vfx.eval``.
The ruff rules are in ``[tool.ruff]``. Both tools come with the ``test`` extra.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], what: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0:
        pytest.fail(f"{what} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}", pytrace=False)


def test_import_contracts() -> None:
    """lint-imports: the layers, the stages' independence, and vfx.eval kept out of production code."""
    pytest.importorskip("importlinter", reason="import-linter comes with the test extra: pip install -e .[test]")
    _run(["-c", "from importlinter.cli import lint_imports_command; lint_imports_command()", "--no-cache",
          "--no-logo"], "lint-imports")


def test_ruff() -> None:
    """ruff check over the library, the tests and the tools."""
    pytest.importorskip("ruff", reason="ruff comes with the test extra: pip install -e .[test]")
    _run(["-m", "ruff", "check", "--no-cache", "vfx", "tests", "tools"], "ruff check")
