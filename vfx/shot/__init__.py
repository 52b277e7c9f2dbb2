"""Shot files (schema ``vfx.Shot/1``), frame ranges, frame rates and sequence patterns."""

from vfx.shot.file import dump_shot, load_shot, parse_shot, save_shot
from vfx.shot.frames import (
    DEFAULT_START_FRAME,
    FrameRange,
    SequencePattern,
    format_frames,
    is_sequence_pattern,
    parse_fps,
)
from vfx.shot.schema import SCHEMA, Shot

__all__ = [
    "DEFAULT_START_FRAME",
    "FrameRange",
    "SCHEMA",
    "SequencePattern",
    "Shot",
    "dump_shot",
    "format_frames",
    "is_sequence_pattern",
    "load_shot",
    "parse_fps",
    "parse_shot",
    "save_shot",
]
