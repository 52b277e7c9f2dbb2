"""Frame-accurate video reading and writing through the ffmpeg binary.

Three pieces:

* :func:`probe_video` lists every packet of the video stream (``ffmpeg -c copy -f framecrc``, no
  decoding: 25-50 ms for a 30 s clip) and returns a :class:`VideoInfo` with the exact frame count,
  the exact rational frame rate and every frame's presentation timestamp.
* :class:`VideoReader` streams decoded frames from one ffmpeg process. Reading the next frame continues
  the pipe; reading elsewhere restarts ffmpeg at the keyframe before the wanted frame and drops frames
  with a ``select`` on the exact timestamps from the probe, so frame N is the same pixels whether reached
  by seeking or by decoding from the start.
* :func:`encode_video` pipes numpy frames into an H.264 review proxy, ProRes 422 HQ or DNxHR HQ editorial
  media, or a ProRes 4444 master, written atomically, and checks the result's frame count and frame rate
  before it replaces the destination. :func:`check_movie_output` refuses, before any work, a codec the ffmpeg
  in use cannot encode or a container that does not fit it.

Convention:
    Frames are numpy arrays (H, W, 3) RGB, or (H, W, 4) RGBA, top row first; uint8 for 8-bit and uint16
    (full 0..65535 range) for 16-bit. Sizes are (height, width). Frame numbers are VFX frame numbers:
    the first frame of a clip is ``start_frame`` (1001 by default); "index" means the 0-based position
    in presentation order. Timestamps are integers in ``time_base`` units (seconds = ts * time_base).
"""

from vfx.io.video.encode import check_movie_output, encode_video
from vfx.io.video.probe import VideoInfo, probe_video
from vfx.io.video.reader import VideoReader

__all__ = ["VideoInfo", "VideoReader", "check_movie_output", "encode_video", "probe_video"]
