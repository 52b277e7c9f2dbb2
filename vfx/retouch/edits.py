"""Retouch edits on the semantic face layout, as a shot file declares them, and the layouts they make.

An artist states an edit once; it applies to every frame because it is expressed in the face's own terms:

- ``group``: move, scale or rotate a named landmark group (``mouth``, ``upper_lip``, ``lower_lip``,
  ``left_brow``, ``right_brow``, ``left_eye``, ``right_eye``, ``nose``, ``jaw``). Moves are in inter-ocular
  distances along the face's axes (x across the face towards image-right, y down the face), scales along
  the same axes about the group's centre, rotations in degrees (positive: counter-clockwise on screen).
  Values are keyed on frames and interpolated linearly between keys, held before the first and after the
  last (``keys: [{frame: 1001, scale: [1, 1]}, {frame: 1010, scale: [1.15, 1]}]`` grows a smile over ten
  frames).
- ``relabel``: every pixel of one region becomes another (``mouth`` -> ``upper_lip`` closes an open mouth).
- ``paint``: a label map painted on one keyframe's aligned crop (a PNG of label values 0..7, or of the
  layout colours of :data:`vfx.face.mask.LABEL_COLOURS`, the size of the retouch crop); the pixels where it
  differs from that frame's own layout are carried to every other frame through the landmark alignment
  (a thin-plate spline from the keyframe's landmarks to the frame's), so a blemish painted as skin stays on
  the cheek as the face moves.

Edits apply in the order listed: group edits move the landmarks the layout is drawn from, then relabels and
paints change the drawn layout. The edit models (:class:`GroupEdit`, :class:`RelabelEdit`, :class:`PaintEdit`,
:data:`Edit`) live in :mod:`vfx.shot.edits`, so a shot file's ``retouch:`` list is validated when the shot
loads; they are re-exported here. ``edits_from_shot`` validates a list of raw edits (and passes loaded ones
through).

Convention:
    - Landmarks (68, 2) crop pixels (x, y); label maps (H, W) uint8 of :class:`vfx.face.mask.FaceLabel`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from vfx.errors import ConfigError
from vfx.face.layout import LABEL_NAMES, face_layout, read_painted_map
from vfx.face.mask import face_axes
from vfx.face.types import LANDMARK_GROUPS
from vfx.shot.edits import (
    EDIT_GROUP_NAMES,
    EDIT_KINDS,
    Edit,
    GroupEdit,
    GroupKey,
    GroupName,
    PaintEdit,
    RegionName,
    RelabelEdit,
    complete_edit,
    duplicate_edit_names,
)

__all__ = [
    "EDIT_GROUPS",
    "Edit",
    "GroupEdit",
    "GroupKey",
    "GroupName",
    "PaintEdit",
    "PaintedMap",
    "RegionName",
    "RelabelEdit",
    "edit_landmarks",
    "edited_layout",
    "edits_from_shot",
    "landmark_field",
    "read_painted_map",
    "select_edits",
    "warp_labels",
]

# The corners (48, 54) and inner corners (60, 64) belong to both lips: a lip edit leaves them in place.
_LIP_POINTS: dict[str, tuple[int, ...]] = {
    "upper_lip": (49, 50, 51, 52, 53, 61, 62, 63),
    "lower_lip": (55, 56, 57, 58, 59, 65, 66, 67),
}

EDIT_GROUPS: dict[str, tuple[int, ...]] = {
    name: _LIP_POINTS[name] if name in _LIP_POINTS else LANDMARK_GROUPS[name] for name in EDIT_GROUP_NAMES
}
"""Landmark groups an edit can move (iBUG 68-point indices), keyed by :data:`vfx.shot.edits.EDIT_GROUP_NAMES`;
"left" is the subject's left (image-right)."""

_EDIT = TypeAdapter(Edit)


def _edit_error(index: int, raw: Any, err: ValidationError) -> ConfigError:
    name = raw.get("name", f"#{index + 1}") if isinstance(raw, dict) else f"#{index + 1}"
    problems = []
    for e in err.errors():
        loc = list(e["loc"])
        if loc and loc[0] in EDIT_KINDS:
            loc = loc[1:]  # the union's tag, not a field
        where = ".".join(str(p) for p in loc) or "edit"
        message = e["msg"]
        if e["type"] == "literal_error" and loc == ["group"]:
            message = f"unknown group {e.get('input')!r}; groups: {', '.join(EDIT_GROUPS)}"
        elif e["type"] == "literal_error" and loc and loc[-1] in ("source", "target"):
            message = f"unknown region {e.get('input')!r}; regions: {', '.join(LABEL_NAMES)}"
        problems.append(f"{where}: {message}")
    return ConfigError(f"Invalid retouch edit {name!r}", expected="kind group (group, move/scale/rotate or keys), "
                       "relabel (source, target) or paint (keyframe, map)", found="; ".join(problems),
                       fix=f"groups: {', '.join(EDIT_GROUPS)}; regions: {', '.join(LABEL_NAMES)}")


def edits_from_shot(raw_edits: Sequence[Edit | dict[str, Any]], *,
                    base_dir: str | os.PathLike[str] | None = None) -> list[Edit]:
    """Validate a ``retouch:`` list; relative paint maps resolve against ``base_dir``.

    A loaded shot's ``Shot.retouch`` holds edits validated already (they pass through as they are); raw
    mappings, as a shot file spells them, are validated here, with ``kind`` and ``name`` defaulted as on load.

    Raises:
        ConfigError: an invalid edit (unknown group or region, bad keys), with the valid names listed;
            two edits with one name.
    """
    edits: list[Edit] = []
    for index, raw in enumerate(raw_edits):
        if isinstance(raw, (GroupEdit, RelabelEdit, PaintEdit)):
            edit = raw
        else:
            raw = complete_edit(index, raw)
            try:
                edit = _EDIT.validate_python(raw)
            except ValidationError as err:
                raise _edit_error(index, raw, err) from None
        if isinstance(edit, PaintEdit) and base_dir is not None and not edit.map.is_absolute():
            edit = edit.model_copy(update={"map": Path(base_dir) / edit.map})
        edits.append(edit)
    duplicates = duplicate_edit_names(edits)
    if duplicates:
        raise ConfigError("Retouch edits share a name", expected="one name per edit", found=", ".join(duplicates),
                          fix="rename the edits so that each `name:` in `retouch:` is used once")
    return edits


def select_edits(edits: Sequence[Edit], names: Sequence[str] | None) -> list[Edit]:
    """The edits named (``vfx retouch --edit``), in the shot's order; all of them when ``names`` is empty."""
    if not names:
        return list(edits)
    known = {e.name for e in edits}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"Unknown retouch edit {', '.join(map(repr, unknown))}",
                          expected=f"one of the shot's edits: {', '.join(sorted(known)) or 'none declared'}",
                          found=", ".join(map(repr, unknown)), fix="check the spelling against the edits' `name:` in "
                          "the shot file, or leave --edit out to apply them all")
    return [e for e in edits if e.name in names]


# ---------------------------------------------------------------------------------------------- geometry

def edit_landmarks(landmarks: np.ndarray, group: str, key: GroupKey) -> np.ndarray:
    """The landmarks with ``group`` moved, scaled and rotated by ``key``'s values (a new array)."""
    if group not in EDIT_GROUPS:
        raise ConfigError(f"Unknown landmark group {group!r}", expected=f"one of {', '.join(EDIT_GROUPS)}",
                          found=repr(group), fix=f"set `group:` to one of {', '.join(EDIT_GROUPS)}")
    points = np.array(landmarks, dtype=np.float64)
    across, up, distance = face_axes(points)
    down = -up
    index = list(EDIT_GROUPS[group])
    part = points[index]
    centre = part.mean(axis=0)
    local = np.stack([(part - centre) @ across, (part - centre) @ down], axis=1) * np.array(key.scale)
    angle = math.radians(-key.rotate)  # counter-clockwise on screen is clockwise in (across, down) axes
    cos, sin = math.cos(angle), math.sin(angle)
    local = local @ np.array([[cos, sin], [-sin, cos]])
    moved = centre + distance * (key.move[0] * across + key.move[1] * down)
    points[index] = moved + local[:, :1] * across + local[:, 1:] * down
    return points


def landmark_field(from_points: np.ndarray, to_points: np.ndarray, size: tuple[int, int], *,
                   step: int = 4) -> np.ndarray:
    """A smooth backward map that takes ``to_points`` back onto ``from_points``: for every pixel of the
    ``to`` image, the position in the ``from`` image it comes from.

    A thin-plate spline through the landmark pairs, pinned to zero displacement on the crop's border (so
    the face's surroundings stay put), evaluated every ``step`` pixels and interpolated bilinearly.

    Returns:
        (H, W, 2) float32 (x, y) source positions, for ``cv2.remap``.
    """
    import cv2
    from scipy.interpolate import RBFInterpolator

    h, w = size
    border = np.array([(x, y) for x in np.linspace(0, w - 1, 9) for y in (0.0, h - 1.0)]
                      + [(x, y) for y in np.linspace(0, h - 1, 9)[1:-1] for x in (0.0, w - 1.0)])
    targets = np.concatenate([np.asarray(to_points, np.float64), border])
    shifts = np.concatenate([np.asarray(from_points, np.float64) - np.asarray(to_points, np.float64),
                             np.zeros_like(border)])
    spline = RBFInterpolator(targets, shifts, kernel="thin_plate_spline", smoothing=1e-6)
    gy, gx = np.mgrid[0:h + step:step, 0:w + step:step].astype(np.float64)
    coarse = spline(np.stack([gx.ravel(), gy.ravel()], axis=1)).reshape(*gx.shape, 2)
    # Coarse sample (i, j) sits at pixel (i * step, j * step): resize with pixel-centre scaling to match.
    dense = cv2.resize(coarse.astype(np.float32), (gx.shape[1] * step, gx.shape[0] * step),
                       interpolation=cv2.INTER_LINEAR)
    shift = (step - 1) / 2.0  # cv2.resize puts coarse centres at (i + 0.5) * step - 0.5
    xs = np.arange(w) + shift
    ys = np.arange(h) + shift
    dense = cv2.remap(dense, np.tile(xs.astype(np.float32), (h, 1)), np.tile(ys.astype(np.float32)[:, None], (1, w)),
                      interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), axis=2)
    return grid + dense


def warp_labels(labels: np.ndarray, field: np.ndarray) -> np.ndarray:
    """A label map carried through a backward map (nearest label, never blended)."""
    import cv2

    return cv2.remap(np.ascontiguousarray(labels), field[..., 0], field[..., 1], interpolation=cv2.INTER_NEAREST,
                     borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class PaintedMap:
    """A paint edit's keyframe, ready to carry: the painted labels where they differ from the keyframe's layout
    (255 elsewhere), and the keyframe's crop landmarks."""

    changes: np.ndarray
    landmarks: np.ndarray


def edited_layout(landmarks: np.ndarray, size: tuple[int, int], edits: Sequence[Edit], frame: int, *,
                  painted: dict[str, PaintedMap] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frame's own layout, the edited layout and the edited landmarks.

    Args:
        landmarks: (68, 2) crop landmarks of the frame.
        size: crop (height, width).
        edits: the edits, applied in order.
        frame: the frame (for keyed values).
        painted: per paint edit name, its keyframe (see :class:`PaintedMap`).

    Returns:
        (layout, edited layout, edited landmarks).
    """
    layout = face_layout(landmarks, size)
    points = np.asarray(landmarks, np.float64)
    for edit in edits:
        if isinstance(edit, GroupEdit):
            points = edit_landmarks(points, edit.group, edit.at(frame))
    edited = face_layout(points, size) if not np.array_equal(points, landmarks) else layout.copy()
    for edit in edits:
        if isinstance(edit, RelabelEdit):
            edited[edited == LABEL_NAMES.index(edit.source)] = LABEL_NAMES.index(edit.target)
        elif isinstance(edit, PaintEdit):
            if painted is None or edit.name not in painted:
                raise ConfigError(f"Paint edit {edit.name!r} has no keyframe loaded",
                                  expected="the keyframe's painted map and landmarks",
                                  found=f"no entry {edit.name!r} in painted",
                                  fix="pass painted={name: PaintedMap(changes, landmarks)} for each paint edit")
            key = painted[edit.name]
            carried = key.changes if frame == edit.keyframe else warp_labels(
                key.changes, landmark_field(key.landmarks, landmarks, size))
            edited[carried != 255] = carried[carried != 255]
    return layout, edited, points


def group_field(landmarks: np.ndarray, group: str, key: GroupKey, size: tuple[int, int], *,
                margin: float = 0.1, band: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """A known smooth field that moves a landmark group's region by ``key`` (the ground truth of the
    known-warp test, and the perturbation the refiner learns to undo).

    Within ``margin`` inter-ocular distances of the edited group's hull the field is exactly the group's
    affine edit (so the group and the skin next to it move rigidly with it); it fades to the identity over
    the next ``band`` inter-ocular distances with a raised cosine.

    Returns:
        (backward map (H, W, 2) for ``cv2.remap``: for every pixel of the edited image its source position,
        the edited landmarks).
    """
    import cv2

    edited = edit_landmarks(landmarks, group, key)
    index = list(EDIT_GROUPS[group])
    # The affine that takes the group's edited points back onto the original ones (exact: the edit is affine).
    back, _ = cv2.estimateAffine2D(edited[index].astype(np.float32), np.asarray(landmarks, np.float32)[index],
                                   method=cv2.LMEDS)
    _, _, distance = face_axes(landmarks)
    h, w = size
    hull = cv2.convexHull(edited[index].astype(np.float32)).reshape(-1, 2)
    inside = np.zeros((h, w), np.uint8)
    cv2.fillPoly(inside, [np.round(hull).astype(np.int32)], 1)
    away = cv2.distanceTransform(np.ascontiguousarray(1 - inside), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    t = np.clip((away - margin * distance) / (band * distance), 0.0, 1.0)
    weight = (0.5 * (1.0 + np.cos(np.pi * t))).astype(np.float32)
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), axis=2)
    source = grid @ back[:, :2].T.astype(np.float32) + back[:, 2].astype(np.float32)
    return grid + weight[..., None] * (source - grid), edited
