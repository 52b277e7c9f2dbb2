"""``python -m vfx``: the ``vfx`` command, for farm nodes and engines that start it through a Python."""

from vfx.cli import main

main()
