"""Hand a rendered shot on: the review video(s) and the compositor package, from the rendered frames."""

from __future__ import annotations

from pathlib import Path

from vfx.errors import ConfigError
from vfx.io.plate import open_plate
from vfx.shot.frames import FrameRange, format_frames
from vfx.shot.layout import check_handoff_destinations
from vfx.shot.schema import ReviewOptions, Shot

__all__ = ["write_handoff"]


def write_handoff(shot: Shot, *, comp: Path | None = None, review: Path | None = None,
                  side_by_side: bool | None = None, frames: FrameRange | None = None,
                  require: bool = False, review_options: ReviewOptions | None = None) -> list[str]:
    """Write the review video (and side-by-side) and the compositor package a shot asks for (or those given).

    Args:
        shot: the shot; its ``outputs.exr`` frames must be rendered.
        comp, review: destinations overriding ``outputs.comp_package`` / ``outputs.review``.
        side_by_side: also the plate | swap review (default: ``outputs.side_by_side``).
        frames: the frames to hand on (default: the shot's).
        require: ``vfx export``: missing frames or nothing to write are errors. Otherwise (after a partial
            ``vfx swap``) they are reported and nothing is written.
        review_options: display, view, codec, slate, burn-ins of the review (default: the shot's ``review:``
            block; see :func:`vfx.export.review.review_options`).

    Returns:
        One line per thing written (or waiting), for the CLI to print.

    Raises:
        ConfigError: ``require`` and nothing to write, or no ``outputs.exr`` to read from; a review codec this
            ffmpeg cannot encode, a container that does not fit it, an unknown display or view (all checked
            before anything is written).
        MediaError: ``require`` and rendered frames are missing.
    """
    from vfx.export.comp import write_comp_package
    from vfx.export.review import check_review, write_review
    from vfx.shot.layout import rendered_sequence, side_by_side_path

    comp = comp or shot.outputs.comp_package
    review = review or shot.outputs.review
    side_by_side = shot.outputs.side_by_side if side_by_side is None else side_by_side
    if comp is None and review is None:
        if require:
            raise ConfigError(f"Nothing to export for shot {shot.name!r}", expected="--comp DIR and/or --review FILE, "
                              "or outputs.comp_package / outputs.review in the shot file",
                              found="no --comp, --review, outputs.comp_package or outputs.review",
                              fix="pass --comp DIR or --review FILE, or add `outputs: {review: out/NAME.mp4}` to the shot")
        return []
    check_handoff_destinations(shot, comp=comp, review=review, side_by_side=side_by_side)
    if review is not None:  # codec, container, display and view: refused before anything is written
        check_review(shot, review, review_options)
    rendered = rendered_sequence(shot)
    plate, frames = open_plate(shot.plate, frames)  # once, for every file written: the shot's frames, else all
    with plate:
        missing = rendered.missing(frames)
        if missing and not require:
            waiting = (f"review and compositor package: waiting for {len(missing)} frames not rendered yet "
                       f"({format_frames(missing)}); `vfx export` writes them once they are")
            return [waiting]
        lines = []
        if review is not None:
            options = review_options or shot.review
            info = write_review(shot, review, frames, plate=plate, options=options)
            extras = "".join([", slate" if options.slate else "", ", burn-ins" if options.burn_ins else ""])
            lines.append(f"review: {review} ({info.frame_count} frames, {info.fps} fps, {options.codec}{extras})")
            if side_by_side:
                path = side_by_side_path(review)
                write_review(shot, path, frames, side_by_side=True, plate=plate, options=options)
                lines.append(f"side-by-side review: {path}")
        if comp is not None:
            write_comp_package(shot, comp, frames, plate=plate)
            lines.append(f"compositor package: {comp} (Nuke script {comp / (shot.name + '.nk')})")
    return lines
