"""The ``vfx`` app under its old name; the commands live by group in the modules beside this one."""

from __future__ import annotations

from vfx.cli.app import app
from vfx.cli.common import resolve_device

__all__ = ["app", "resolve_device"]
