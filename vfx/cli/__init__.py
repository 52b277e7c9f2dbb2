"""The ``vfx`` command: a thin typer layer over the library.

This is the only place that sets up logging, picks a device and maps errors to exit codes:
0 success, 2 bad input or configuration (a farm must not retry), 1 internal failure (a retry may help).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import click
import typer

from vfx.errors import VfxError

__all__ = ["app", "entrypoint", "main"]

log = logging.getLogger("vfx.cli")


def entrypoint(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code instead of exiting."""
    from vfx.cli.commands import app

    command = typer.main.get_command(app)
    try:
        result = command.main(args=list(argv) if argv is not None else None, prog_name="vfx", standalone_mode=False)
    except click.exceptions.Exit as err:
        return err.exit_code
    except click.exceptions.ClickException as err:  # usage errors: bad option, missing argument
        err.show()
        return 2
    except click.exceptions.Abort:
        sys.stderr.write("vfx: aborted\n")
        return 130
    except KeyboardInterrupt:
        sys.stderr.write("vfx: interrupted\n")
        return 130
    except VfxError as err:
        sys.stderr.write(f"vfx: error: {err}\n")
        return err.exit_code
    except Exception:  # an internal failure: keep the traceback for the bug report
        log.exception("internal error")
        sys.stderr.write("vfx: internal error (see the traceback above); this is a bug, please report it\n")
        return 1
    return result if isinstance(result, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(entrypoint())


def __getattr__(name: str) -> object:
    if name == "app":
        from vfx.cli.commands import app

        return app
    raise AttributeError(name)
