"""The one frame loop (:mod:`vfx.render.loop`) and the rendered-frame contract (:mod:`vfx.render.rendered`).

Every frame stage (the swap, the latent edit, the layout retouch) is a plan plus a per-batch
:class:`~vfx.render.loop.FrameStage`; :func:`~vfx.render.loop.render` opens nothing twice, skips frames on
disk, reads ahead, writes behind, pastes back and writes the rendered EXR (beauty, matte, metadata) and the
plate-format copy.
"""

from vfx.render.loop import FrameJob, FrameOutput, FrameStage, RenderContext, RenderPlan, RenderSummary, render
from vfx.render.rendered import (
    EDIT_MATTE_CHANNEL,
    RETOUCH_MATTE_CHANNEL,
    SYNTHETIC_NOTICE,
    RenderedFrame,
    RenderInfo,
    check_rendered_frames,
    frame_timecode,
    read_rendered_frame,
    write_rendered_frame,
)

__all__ = [
    "EDIT_MATTE_CHANNEL",
    "RETOUCH_MATTE_CHANNEL",
    "SYNTHETIC_NOTICE",
    "FrameJob",
    "FrameOutput",
    "FrameStage",
    "RenderContext",
    "RenderInfo",
    "RenderPlan",
    "RenderSummary",
    "RenderedFrame",
    "check_rendered_frames",
    "frame_timecode",
    "read_rendered_frame",
    "render",
    "write_rendered_frame",
]
