"""Logging set-up. Only the CLI calls :func:`configure_logging`; library modules just use
``logging.getLogger(__name__)`` and never add handlers."""

from __future__ import annotations

import json
import logging
import os
import sys

__all__ = ["configure_logging"]


class _JsonFormatter(logging.Formatter):
    """One JSON object per line, for farm managers that parse logs."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record), "level": record.levelname.lower(),
                           "logger": record.name, "message": record.getMessage()})


def configure_logging(verbosity: str | None = None, *, json_lines: bool = False) -> None:
    """Send ``vfx`` logs to stderr at ``verbosity`` (or ``$VFX_VERBOSITY``, default ``warning``)."""
    level_name = (verbosity or os.environ.get("VFX_VERBOSITY") or "warning").upper()
    level = logging.getLevelName(level_name)
    if not isinstance(level, int):
        level = logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("vfx")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
