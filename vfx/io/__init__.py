"""Plate readers and writers: image sequences and EXR (OpenImageIO), video (ffmpeg), colour (OpenColorIO).
Floor 3 (above :mod:`vfx.shot`, whose frame ranges it reads): knows nothing of faces, models or farms; atomic
writes live in :mod:`vfx.utils.atomic`."""
