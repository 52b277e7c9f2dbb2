"""Retouch edits as a shot file declares them (its ``retouch:`` list), validated when the shot loads.

An artist states an edit once; it applies to every frame because it is expressed in the face's own terms:

- ``group``: move, scale or rotate a named landmark group (:data:`EDIT_GROUP_NAMES`: ``mouth``, ``upper_lip``,
  ``lower_lip``, ``left_brow``, ``right_brow``, ``left_eye``, ``right_eye``, ``nose``, ``jaw``). Moves are in
  inter-ocular distances along the face's axes (x across the face towards image-right, y down the face), scales
  along the same axes about the group's centre, rotations in degrees (positive: counter-clockwise on screen).
  Values are keyed on frames and interpolated linearly between keys, held before the first and after the
  last (``keys: [{frame: 1001, scale: [1, 1]}, {frame: 1010, scale: [1.15, 1]}]`` grows a smile over ten
  frames).
- ``relabel``: every pixel of one region (:data:`LABEL_NAMES`) becomes another (``mouth`` -> ``upper_lip``
  closes an open mouth).
- ``paint``: a label map painted on one keyframe's aligned crop (a PNG of :class:`FaceLabel` values 0..7, or of
  the layout colours), carried to every other frame through the landmark alignment.

``kind`` defaults to ``group`` and ``name`` to ``edit<N>`` (N: the edit's 1-based place in the list)
(:func:`complete_edit`). The geometry that applies the edits is :mod:`vfx.retouch.edits`; this module holds
only what a shot file needs to be checked: the models and the names they accept.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "EDIT_GROUP_NAMES",
    "EDIT_KINDS",
    "LABEL_NAMES",
    "Edit",
    "FaceLabel",
    "GroupEdit",
    "GroupKey",
    "GroupName",
    "PaintEdit",
    "RegionName",
    "RelabelEdit",
    "complete_edit",
    "duplicate_edit_names",
]


class FaceLabel(IntEnum):
    """Classes of the semantic face layout; the value is the label map's pixel value."""

    BACKGROUND = 0
    SKIN = 1
    BROWS = 2
    EYES = 3
    NOSE = 4
    UPPER_LIP = 5
    LOWER_LIP = 6
    MOUTH = 7
    """The mouth interior (teeth, tongue, the dark gap): empty when the lips are closed."""


LABEL_NAMES: tuple[str, ...] = tuple(label.name.lower() for label in FaceLabel)
"""Name of each label, indexed by its value: ``LABEL_NAMES[FaceLabel.NOSE] == "nose"``; the regions a
``relabel`` edit names."""

GroupName = Literal["mouth", "upper_lip", "lower_lip", "left_brow", "right_brow", "left_eye", "right_eye", "nose",
                    "jaw"]
"""A landmark group an edit can move; "left" is the subject's left (image-right)."""

RegionName = Literal["background", "skin", "brows", "eyes", "nose", "upper_lip", "lower_lip", "mouth"]
"""A region of the layout: one of :data:`LABEL_NAMES`, in their order (a test holds the two together)."""

EDIT_GROUP_NAMES: tuple[str, ...] = get_args(GroupName)
"""The landmark groups an edit can move, in the order error messages list them."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def _pair(value: Any) -> Any:
    """``1.2`` means ``[1.2, 1.2]``."""
    return [value, value] if isinstance(value, (int, float)) else value


class GroupKey(_Model):
    """A group edit's values on one frame."""

    frame: int
    move: tuple[float, float] = Field(default=(0.0, 0.0), description="(across, down) in inter-ocular distances.")
    scale: tuple[float, float] = Field(default=(1.0, 1.0),
                                       description="(across, down) factors about the group's centre.")
    rotate: float = Field(default=0.0, description="Degrees, counter-clockwise on screen.")

    @field_validator("scale", mode="before")
    @classmethod
    def _scale_pair(cls, value: Any) -> Any:
        return _pair(value)

    @field_validator("scale")
    @classmethod
    def _positive(cls, value: tuple[float, float]) -> tuple[float, float]:
        if min(value) <= 0:
            raise ValueError(f"scale factors must be > 0, found {list(value)}")
        return value

    @field_validator("move")
    @classmethod
    def _moderate(cls, value: tuple[float, float]) -> tuple[float, float]:
        if max(abs(v) for v in value) > 1.0:
            raise ValueError(f"a move of {list(value)} inter-ocular distances leaves the face; expected |move| <= 1")
        return value


class GroupEdit(_Model):
    """Move, scale or rotate a landmark group, keyed over the shot."""

    SHORTHAND_FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {"keys": ("move", "scale", "rotate")}
    """Keys accepted in place of a field: ``move`` / ``scale`` / ``rotate`` make one key that holds over the whole
    shot (shot-file errors list them with the fields)."""

    name: str
    kind: Literal["group"] = "group"
    group: GroupName
    keys: list[GroupKey] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _constant(cls, data: Any) -> Any:
        """``move`` / ``scale`` / ``rotate`` given directly: one key that holds over the whole shot."""
        shorthands = cls.SHORTHAND_FIELDS["keys"]
        if isinstance(data, dict) and "keys" not in data and any(k in data for k in shorthands):
            data = dict(data)
            key = {k: data.pop(k) for k in shorthands if k in data}
            data["keys"] = [{"frame": 0, **key}]
        return data

    @field_validator("keys")
    @classmethod
    def _ordered(cls, keys: list[GroupKey]) -> list[GroupKey]:
        frames = [k.frame for k in keys]
        if frames != sorted(set(frames)):
            raise ValueError(f"keys must be on increasing, distinct frames, found frames {frames}")
        return keys

    def at(self, frame: int) -> GroupKey:
        """The values on ``frame``: linear between keys, held outside them."""
        keys = self.keys
        if frame <= keys[0].frame:
            return keys[0].model_copy(update={"frame": frame})
        if frame >= keys[-1].frame:
            return keys[-1].model_copy(update={"frame": frame})
        after = next(i for i, k in enumerate(keys) if k.frame >= frame)
        a, b = keys[after - 1], keys[after]
        t = (frame - a.frame) / (b.frame - a.frame)

        def lerp(x: tuple[float, float], y: tuple[float, float]) -> tuple[float, float]:
            return (x[0] + t * (y[0] - x[0]), x[1] + t * (y[1] - x[1]))

        return GroupKey(frame=frame, move=lerp(a.move, b.move), scale=lerp(a.scale, b.scale),
                        rotate=a.rotate + t * (b.rotate - a.rotate))


class RelabelEdit(_Model):
    """Every pixel of region ``source`` becomes region ``target``."""

    name: str
    kind: Literal["relabel"]
    source: RegionName
    target: RegionName


class PaintEdit(_Model):
    """A label map painted on one keyframe's aligned crop, carried to the other frames."""

    name: str
    kind: Literal["paint"]
    keyframe: int
    map: Path = Field(description="PNG of label values 0..7 or of the layout colours, the retouch crop's size.")


Edit = Annotated[GroupEdit | RelabelEdit | PaintEdit, Field(discriminator="kind")]
"""One retouch edit; ``kind`` says which."""

EDIT_KINDS: tuple[str, ...] = ("group", "relabel", "paint")


def complete_edit(index: int, raw: Any) -> Any:
    """A ``retouch:`` entry (the ``index``-th, 0-based) with its defaults: ``kind: group``, ``name: edit<index+1>``.

    Anything but a mapping is returned as it is (validation then says what is wrong with it).
    """
    if isinstance(raw, dict) and "kind" not in raw:
        raw = {**raw, "kind": "group"}
    if isinstance(raw, dict) and "name" not in raw:
        raw = {**raw, "name": f"edit{index + 1}"}
    return raw


def duplicate_edit_names(edits: Sequence[GroupEdit | RelabelEdit | PaintEdit]) -> list[str]:
    """The names more than one edit has, sorted (``--edit NAME`` picks edits by name)."""
    names = [e.name for e in edits]
    return sorted({n for n in names if names.count(n) > 1})
