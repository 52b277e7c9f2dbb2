"""A plate's clock: its frames, rate and start timecode, which an editorial cut (:mod:`vfx.shot.cut`) and the
OTIO hand-off (:mod:`vfx.export.otio`) map timecode through.

The start timecode is the plate's own: a sequence's first-frame EXR ``timeCode`` header attribute, a video's
``timecode`` tag (stream or container); none where the plate carries none. Importing this module registers
:func:`read_plate_clock` with :func:`vfx.shot.cut.use_plate_clock`, so :func:`vfx.shot.load_shot` can set a
shot's frames from its cut without the shot floor importing this one.

Convention:
    - The timecode belongs to ``frames.first``; counts are frames since ``00:00:00:00``
      (:func:`vfx.io.timecode.timecode_to_frames`: drop-frame where written with ``;``).
"""

from __future__ import annotations

from vfx.errors import ConfigError, MediaError
from vfx.io.image import read_image_header
from vfx.io.plate import Plate, open_media
from vfx.io.timecode import timecode_to_frames
from vfx.shot.cut import PlateClock, use_plate_clock
from vfx.shot.frames import SequencePattern
from vfx.shot.schema import PlateConfig

__all__ = ["plate_clock", "read_plate_clock"]


def plate_clock(plate: Plate) -> PlateClock:
    """The clock of an open plate.

    Raises:
        MediaError: the plate's timecode is not a valid timecode at its rate.
    """
    if plate.video is not None:
        timecode = plate.video.info.timecode
    else:
        timecode = read_image_header(SequencePattern(plate.path).path(plate.frame_range.first)).exr_metadata.timecode
    if not timecode:
        return PlateClock(fps=plate.fps, frames=plate.frame_range)
    try:
        count = timecode_to_frames(timecode, plate.fps)
    except ConfigError as err:
        raise MediaError(f"Plate {plate.path!r} carries a timecode that does not fit its rate",
                         expected=err.expected, found=err.found,
                         fix="set plate.fps to the plate's real rate, or re-stamp the plate's timecode") from None
    return PlateClock(fps=plate.fps, frames=plate.frame_range, start_count=count, timecode=timecode)


def read_plate_clock(config: PlateConfig) -> PlateClock:
    """The clock of a shot's plate: opened (headers only), read and closed.

    Raises:
        MediaError: the plate cannot be read.
    """
    with open_media(config.path, start_frame=config.start_frame, fps=config.fps,
                    colorspace=config.colorspace) as plate:
        return plate_clock(plate)


use_plate_clock(read_plate_clock)
