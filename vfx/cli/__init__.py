"""The ``vfx`` command: a thin typer layer over the library.

This is the only place that sets up logging, picks a device and maps errors to exit codes:
0 success, 2 bad input or configuration (a farm must not retry), 1 internal failure (a retry may help).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from vfx.errors import VfxError

__all__ = ["app", "entrypoint", "main"]

log = logging.getLogger("vfx.cli")


def entrypoint(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code instead of exiting."""
    from vfx.cli.app import app

    try:
        # Standalone mode lets typer report usage errors itself (exit 2) and exit 0 on success.
        app(args=list(argv) if argv is not None else None, prog_name="vfx")
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except VfxError as err:
        sys.stderr.write(f"vfx: error: {err}\n")
        return err.exit_code
    except Exception:  # an internal failure: keep the traceback for the bug report
        log.exception("internal error")
        sys.stderr.write("vfx: internal error (traceback above); this is a bug, please report it\n")
        return 1
    return 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(entrypoint())


def __getattr__(name: str) -> object:
    if name == "app":
        from vfx.cli.app import app

        return app
    raise AttributeError(name)
