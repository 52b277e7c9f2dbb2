"""A shot as farm tasks: the task graph (:mod:`vfx.farm.graph`), the one task command and its records
(:mod:`vfx.farm.task`, :mod:`vfx.farm.stages`), the local engine (:mod:`vfx.farm.local`), the Ray engine
(:mod:`vfx.farm.ray_engine`), ``vfx farm status`` (:mod:`vfx.farm.status`) and the OpenCue / OpenJD /
Deadline export (:mod:`vfx.farm.export`).

Example:
    >>> from vfx.farm import build_graph, run_local  # doctest: +SKIP
    >>> print(run_local(build_graph("shots/sh010.yaml", chunk=10), workers=2).describe())
"""

from vfx.farm.graph import STAGES, Task, TaskGraph, build_graph
from vfx.farm.local import EngineSummary, run_local
from vfx.farm.task import TaskOptions, TaskRecord, run_task

__all__ = ["STAGES", "EngineSummary", "Task", "TaskGraph", "TaskOptions", "TaskRecord", "build_graph", "run_local",
           "run_task"]
