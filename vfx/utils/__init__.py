"""Small helpers shared by every stage: atomic writes (:mod:`vfx.utils.atomic`), schema-stamped files (weights +
JSON, version, upgrade registry: :mod:`vfx.utils.stamped`), PSNR over a mask (:mod:`vfx.utils.psnr`), progress
reporting, logging set-up, threads and headless plots.

Floor 2: imports nothing of vfx but :mod:`vfx.errors`."""
