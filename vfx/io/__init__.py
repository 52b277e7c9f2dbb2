"""Plate readers and writers: image sequences and EXR (OpenImageIO), video (ffmpeg), colour (OpenColorIO),
atomic writes. Lower layer: knows nothing of faces, models or farms."""
