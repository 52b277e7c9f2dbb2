"""Plate readers and writers: plates by frame number (:mod:`vfx.io.plate`), images and EXR with windows and
layers (:mod:`vfx.io.image`), EXR metadata and timecode (:mod:`vfx.io.exr_metadata`), video probe / reader /
encoder through ffmpeg (:mod:`vfx.io.video`), colour through OpenColorIO (:mod:`vfx.io.color`).

Floor 3 (above :mod:`vfx.shot`, whose frame ranges it reads): knows nothing of faces, models or farms; atomic
writes live in :mod:`vfx.utils.atomic`.
"""

from vfx.io import plate_clock as _plate_clock  # noqa: F401  (registers the clock load_shot maps a cut through)
from vfx.io.color import WORKING_SPACE, ColorConverter
from vfx.io.exr_metadata import ExrMetadata
from vfx.io.image import Image, ImageHeader, read_image, read_image_header, write_image
from vfx.io.plate import Plate, open_media, open_plate
from vfx.io.video import VideoInfo, VideoReader, encode_video, probe_video

__all__ = [
    "WORKING_SPACE",
    "ColorConverter",
    "ExrMetadata",
    "Image",
    "ImageHeader",
    "Plate",
    "VideoInfo",
    "VideoReader",
    "encode_video",
    "open_media",
    "open_plate",
    "probe_video",
    "read_image",
    "read_image_header",
    "write_image",
]
