"""Hand-off, built from the rendered frames (the EXR sequence `vfx swap` writes): compositor package, dailies
review, review page, OTIO timeline, contact sheet.

- :mod:`vfx.render.rendered`: the rendered-frame contract (beauty + matte + metadata), read and written.
- :mod:`vfx.export.comp`: the compositor package ``vfx.CompPackage/1`` (premultiplied face patch, matte,
  transforms, a Nuke script) and :func:`rebuild_frame`, the script's graph in numpy.
- :mod:`vfx.export.review`: the dailies review movie (the show's OCIO display/view, burn-ins and slate from
  :mod:`vfx.export.burnin`, h264 / ProRes 422 HQ / ProRes 4444 / DNxHR HQ, plate fps and audio, optional side
  by side), and how the plate is shown (:func:`~vfx.export.review.as_delivered`: its format, desqueezed).
- :mod:`vfx.export.otio`: the OpenTimelineIO timeline of the plate and each rendered version.
- :mod:`vfx.export.sheet`: a still contact sheet plate | swap | matte.
- :mod:`vfx.export.review_page`: the shot's review page (``vfx review``), a static folder opened from disk:
  flipbook, per-frame QC plots, contact sheets, model card, training preview, farm status.
"""

from vfx.export.comp import (
    CompPackageLayout,
    CompPackageSummary,
    cut_patch,
    nuke_script,
    rebuild_frame,
    write_comp_package,
)
from vfx.export.review import write_review
from vfx.export.review_page import plan_review_page, review_page_folder, write_review_page
from vfx.export.sheet import write_swap_sheet
from vfx.render.rendered import (
    SYNTHETIC_NOTICE,
    RenderedFrame,
    RenderInfo,
    frame_timecode,
    read_rendered_frame,
    write_rendered_frame,
)

__all__ = [
    "SYNTHETIC_NOTICE",
    "CompPackageLayout",
    "CompPackageSummary",
    "RenderInfo",
    "RenderedFrame",
    "cut_patch",
    "frame_timecode",
    "nuke_script",
    "plan_review_page",
    "read_rendered_frame",
    "rebuild_frame",
    "review_page_folder",
    "write_comp_package",
    "write_rendered_frame",
    "write_review",
    "write_review_page",
    "write_swap_sheet",
]
