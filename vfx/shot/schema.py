"""The shot file schema, ``vfx.Shot/1``: one YAML file describes everything the toolkit does to a shot.

Each model is frozen and rejects unknown fields, so a typo in a shot file is an error, not a silently
ignored setting. Relative paths are resolved against the shot file's folder when the file is loaded
(:func:`vfx.shot.load_shot`), so a resolved shot holds absolute paths only.
"""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)

from vfx.errors import VfxError
from vfx.shot.edits import Edit, complete_edit, duplicate_edit_names
from vfx.shot.frames import DEFAULT_START_FRAME, FrameRange, SequencePattern, is_sequence_pattern, parse_fps

__all__ = [
    "SCHEMA",
    "Shot",
    "PlateConfig",
    "PersonaConfig",
    "ModelConfig",
    "ModelTraining",
    "SwapConfig",
    "RetouchOptions",
    "EditVectorConfig",
    "EditOptions",
    "StrengthKey",
    "BlendConfig",
    "OutputsConfig",
    "FarmConfig",
    "ReviewOptions",
]

SCHEMA = "vfx.Shot/1"


def _validate_fps(value: Any) -> Fraction:
    try:
        return parse_fps(value)
    except VfxError as err:
        raise ValueError(err.message + (f"; found {err.found}" if err.found else "")) from None


def _validate_frames(value: Any) -> FrameRange:
    try:
        return FrameRange.parse(value)
    except VfxError as err:
        raise ValueError(f"{err.message}; expected {err.expected}") from None


def _resolve_path(value: Any, info: ValidationInfo) -> Path:
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise ValueError("expected a file or folder path (a non-empty string)")
    path = Path(str(value)).expanduser()
    base = (info.context or {}).get("base_dir")
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    return Path(str(path))  # keep as given; resolve() would follow symlinks studios rely on


def _serialise_fps(fps: Fraction) -> int | str:
    return fps.numerator if fps.denominator == 1 else str(fps)


Fps = Annotated[Fraction, PlainValidator(_validate_fps), PlainSerializer(_serialise_fps)]
"""A frame rate: ``24``, ``25``, ``30000/1001``; kept as an exact fraction."""

Frames = Annotated[FrameRange, PlainValidator(_validate_frames), PlainSerializer(str, return_type=str)]
"""A frame range in farm syntax: ``1001-1100``, ``1001-1100x2``, ``1001,1005,1010-1020``."""

ShotPath = Annotated[Path, PlainValidator(_resolve_path), PlainSerializer(str, return_type=str)]
"""A path; relative ones are taken from the shot file's folder."""

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False)


class PlateConfig(_Frozen):
    """The shot's source footage."""

    path: ShotPath = Field(description="An image sequence (`plates/sh010.####.exr`, `%04d`, `@`) or a video file.")
    frames: Frames | None = Field(
        default=None, description="Frames to work on, inclusive (`1001-1100`). Default: every frame of the plate."
    )
    fps: Fps | None = Field(default=None, description="Frame rate as a fraction (`24000/1001`). Default: the video's own rate, or 24 for sequences.")
    colorspace: str = Field(
        default="sRGB Encoded Rec.709 (sRGB)",
        description="OpenColorIO colour space of the plate's pixels (`ACEScg` for scene-linear EXR plates).",
    )
    start_frame: int = Field(
        default=DEFAULT_START_FRAME, ge=-999_999_999, le=999_999_999,
        description="Frame number of a video's first frame (VFX convention: 1001)."
    )
    audio: ShotPath | None = Field(
        default=None, description="Media file whose audio the review video carries. Default: the plate itself "
        "when it is a video (an image sequence has no audio).",
    )
    pixel_aspect: float | None = Field(
        default=None, gt=0, le=4, description="Width of one plate pixel over its height (2.0 for a 2x anamorphic "
        "squeeze). Default: the plate's own (EXR `pixelAspectRatio`, a movie's sample aspect ratio), else 1. Faces "
        "are found and aligned on the desqueezed picture; the output keeps the plate's squeeze.",
    )
    edit: ShotPath | None = Field(
        default=None, description="An editorial cut (`cut.otio`, or a CMX 3600 `cut.edl`) whose clip for this shot "
        "sets the frames to work on (its source range, plus `handles`).",
    )
    edit_clip: str | None = Field(
        default=None, min_length=1, max_length=256,
        description="Name of the shot's clip in `edit` (default: the shot's name).",
    )
    handles: int = Field(default=0, ge=0, le=10_000, description="Frames kept either side of the cut's range (with `edit`).")
    cuts: Literal["none"] | Frames | None = Field(
        default=None, description="Frames that start a new camera shot inside the plate (`1050,1102`): no face "
        "track, smoothing or interpolation crosses them. Default: found by PySceneDetect's content detector; an "
        "editor's list here wins; `none` for a plate with no cut.",
    )

    @field_validator("cuts", mode="before")
    @classmethod
    def _cut_list(cls, value: Any) -> Any:
        """``cuts: [1050, 1102]`` as well as ``cuts: 1050,1102``."""
        if isinstance(value, list | tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return ",".join(str(v) for v in value) if value else "none"
        return value

    @property
    def cut_list(self) -> tuple[int, ...] | None:
        """The frames that start a camera shot, as the shot file gives them: ``()`` for ``cuts: none``, None
        where they are to be detected."""
        if self.cuts is None:
            return None
        return () if self.cuts == "none" else tuple(self.cuts)

    @property
    def audio_source(self) -> Path | None:
        """Where the review video's audio comes from: ``audio``, else a video plate, else nothing."""
        if self.audio is not None:
            return self.audio
        return None if self.is_sequence else self.path

    @property
    def is_sequence(self) -> bool:
        return is_sequence_pattern(self.path)

    @property
    def sequence(self) -> SequencePattern:
        return SequencePattern(str(self.path))


class PersonaConfig(_Frozen):
    """Where a persona's training faces come from: footage to extract from, or an extracted faceset."""

    footage: ShotPath | None = Field(default=None, description="A video or image sequence of the persona.")
    faceset: ShotPath | None = Field(default=None, description="A faceset folder made by `vfx extract`.")
    start_frame: int = Field(default=DEFAULT_START_FRAME, ge=-999_999_999, le=999_999_999, description="Frame number of the footage's first frame.")
    consent: str | None = Field(default=None, description="Consent record: who agreed, to what use, until when "
                                "(free text). `vfx train` refuses a persona without one unless --no-consent-record.")

    @model_validator(mode="after")
    def _one_source(self) -> PersonaConfig:
        if (self.footage is None) == (self.faceset is None):
            raise ValueError("give exactly one of 'footage' (a video or sequence) or 'faceset' (a folder)")
        return self


class ModelConfig(_Frozen):
    """The comb autoencoder this shot uses."""

    checkpoint: ShotPath = Field(description="Training run folder written by `vfx train` (its newest step_* "
                                 "checkpoint is used), or one step_* checkpoint folder.")
    resolution: int = Field(default=256, description="Face crop size r (a power of two, 4..1024).")
    width: float = Field(default=1.0, gt=0, le=4, description="Channel-width multiplier (1.0 is the patent's network).")
    training: ModelTraining | None = Field(
        default=None, description="Train the model as part of a farm run (`vfx farm run`), from the personas' "
        "facesets, into `checkpoint`. Default: the checkpoint is trained beforehand (`vfx train`).",
    )

    @field_validator("resolution")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value < 4 or value > 1024 or value & (value - 1):
            raise ValueError(f"expected a power of two from 4 to 1024, found {value}")
        return value


class ModelTraining(_Frozen):
    """How the shot's model is trained, by a farm run (the `train` task) and by `vfx train SHOT` alike.

    The one statement of the training defaults: `vfx train` without a shot's `model.training` uses
    ``ModelTraining()``, and :class:`vfx.comb.train.TrainConfig` takes its defaults from here. Without
    `model.training` a farm run does not train (the checkpoint is trained beforehand).
    """

    iters_per_level: int = Field(default=1000, ge=1, le=1_000_000_000, description="Iterations per level of progressive growing "
                                 "(the patent: 100000).")
    fine_tune_iters: int = Field(default=0, ge=0, le=1_000_000_000, description="Iterations at lr 1e-5 after the last level.")
    batch_size: int = Field(default=8, ge=1, le=65536, description="Crops per step.")
    seed: int = Field(default=0, ge=0, le=2**63 - 1, description="Seed of the weights, batches and augmentation.")
    mask: Literal["target", "both"] = Field(default="target", description="Loss mask: on the target (Eq. 1) or "
                                            "on both images (Eq. 2).")
    holdout: float = Field(default=0.1, ge=0, lt=1, description="Fraction of each faceset (its last faces) kept out "
                           "of training, for the previews and the held-out SSIM.")
    checkpoint_every: int | None = Field(default=None, ge=0, le=1_000_000_000, description="Iterations between checkpoints (0: only "
                                         "at the end). Default: min(500, iters_per_level).")
    gpus: int = Field(default=1, ge=1, le=64, description="GPUs of one node the farm task trains on (torchrun above 1).")


class SwapConfig(_Frozen):
    """Which face is swapped for which persona."""

    persona: Name = Field(description="Persona whose decoder renders the new face (a key of `personas`).")
    track: int = Field(default=0, ge=0, le=10_000, description="Face track to swap (0: the largest face of the shot).")
    skip: list[Literal["small", "profile", "blurred"]] = Field(
        default_factory=list, max_length=3, description="Faces passed through untouched instead of swapped: "
        "`small` (under 48 px wide), `profile` (head turned past 40°), `blurred`. Default: every face is swapped, "
        "and such faces are flagged in the frames' metadata and the summary.")


class BlendConfig(_Frozen):
    """How the swapped face is blended back into the plate."""

    method: Literal["enhanced", "multiband", "alpha", "poisson"] = Field(
        default="enhanced", description="Enhanced multi-band (Fig. 5 of the source patent) or a baseline."
    )
    target_face_levels: int = Field(
        default=2, ge=0, description="How many of the coarsest pyramid levels (counted from the 2x2 residual) take "
        "the face from the plate, so the new face keeps the shot's lighting (Fig. 5: i <= 2).",
    )
    mask_blur_sigma_px: float = Field(default=1.0, ge=0, le=1000, description="Inward smoothing σ of the face mask, in pixels "
                                      "of each pyramid level (the outline itself is never blurred).")


class OutputsConfig(_Frozen):
    """Where results go. Unset outputs are not written."""

    exr: ShotPath | None = Field(default=None, description="Swapped plate as an EXR sequence (`out/sh010.####.exr`).")
    exr_dtype: Literal["half", "float"] = Field(default="half", description="EXR pixel type.")
    exr_compression: Literal["piz", "zip"] = Field(default="piz", description="Lossless EXR compression.")
    frames: ShotPath | None = Field(
        default=None, description="Swapped plate also in the plate's own format and bit depth "
        "(`out/sh010_swap.####.png`): outside the matte every code value is the plate's.",
    )
    review: ShotPath | None = Field(default=None, description="H.264 review video (`out/sh010_review.mp4`).")
    side_by_side: bool = Field(default=False, description="Also write the review with the plate beside the result.")
    comp_package: ShotPath | None = Field(default=None, description="Folder for the compositor package.")
    retouch: ShotPath | None = Field(
        default=None, description="Retouched frames as an EXR sequence (default: `<shot>_retouch.####.exr` beside "
        "`exr`); when the shot has retouch edits, the review and the compositor package are made from them.",
    )

    edit: ShotPath | None = Field(
        default=None, description="Frames with the latent edit vectors applied (`vfx edit apply`), an EXR sequence "
        "(default: `<shot>_edit.####.exr` beside `exr`); when the shot lists `edit_vectors`, the review and the "
        "compositor package are made from them.",
    )

    @field_validator("exr", "retouch", "edit")
    @classmethod
    def _exr_is_sequence(cls, value: Path | None) -> Path | None:
        if value is not None and (not is_sequence_pattern(value) or value.suffix.lower() != ".exr"):
            raise ValueError(f"expected an EXR sequence pattern such as out/sh010.####.exr, found {str(value)!r}")
        return value

    @field_validator("frames")
    @classmethod
    def _frames_is_sequence(cls, value: Path | None) -> Path | None:
        if value is not None and not is_sequence_pattern(value):
            raise ValueError(f"expected an image sequence pattern such as out/sh010.####.png, found {str(value)!r}")
        return value


class RetouchOptions(_Frozen):
    """How the retouch edits (the shot's `retouch:` list) are rendered."""

    source: Literal["auto", "plate", "swap"] = Field(
        default="auto", description="Retouch the plate actor or the swapped frames (`auto`: the swap's frames when "
        "the shot has a `swap:` section).",
    )
    resolution: int = Field(default=256, description="Side of the aligned face crop the retouch works in (64-1024, "
                            "a power of two).")
    refiner: bool = Field(default=True, description="Refine the warp with the per-shot layout refiner.")
    refiner_seconds: float = Field(default=120.0, gt=0, le=7 * 24 * 3600, description="Training budget of the per-shot refiner (s).")
    refiner_width: float = Field(default=0.25, gt=0, le=2, description="Width multiplier of the refiner.")
    refiner_samples: int = Field(default=48, ge=4, le=100_000, description="Perturbed training samples cut from the shot.")

    @field_validator("resolution")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value < 64 or value > 1024 or value & (value - 1):
            raise ValueError(f"expected a power of two from 64 to 1024, found {value}")
        return value


class StrengthKey(_Frozen):
    """One key of an edit vector's strength curve."""

    frame: int = Field(ge=-999_999_999, le=999_999_999, description="Frame number of the key.")
    value: float = Field(description="Strength s at that frame (0: no edit, 1: the keyframe's edit, < 0: the reverse).")


class EditVectorConfig(_Frozen):
    """An edit vector (`vfx edit learn`) applied to the shot: z_t + s(t)·δ on every frame."""

    vector: ShotPath = Field(description="The vector folder written by `vfx edit learn` (`edits/lips.vfxedit`).")
    strength: float | list[StrengthKey] = Field(
        default=1.0, description="A constant strength, or keys `[{frame: 1001, value: 0}, {frame: 1010, value: 1}]`: "
        "linear between keys, held before the first and after the last.",
    )

    @field_validator("strength")
    @classmethod
    def _keys_in_order(cls, value: float | list[StrengthKey]) -> float | list[StrengthKey]:
        if isinstance(value, list):
            frames = [k.frame for k in value]
            if not frames or frames != sorted(set(frames)):
                raise ValueError(f"expected strength keys on increasing, distinct frames, found frames {frames}")
        return value


class EditOptions(_Frozen):
    """How the latent edits (`vfx edit learn` / `vfx edit apply`) run."""

    refine_steps: int = Field(default=10, ge=0, le=100_000, description="Self-supervised refinement steps per frame when a "
                              "vector is applied (0: the vector alone).")
    keyframe_steps: int = Field(default=100, ge=1, le=1_000_000, description="Optimisation steps of the keyframe edit.")
    buffer: float = Field(default=0.03, ge=0, lt=0.5, description="Region buffer around the edited labels, as a "
                          "fraction of the crop side.")
    seg_head_steps: int = Field(default=1500, ge=1, le=10_000_000, description="Training steps of a persona's segmentation head.")


class FarmConfig(_Frozen):
    """How the shot is cut into farm tasks."""

    chunk_size: int = Field(default=10, ge=1, le=100_000, description="Frames per swap, retouch or edit task (extract tasks "
                            "round it up to whole 10-frame landmark chunks).")
    halo: int = Field(default=3, ge=0, le=1000, description="Frames before its own that an edit task renders and discards, so "
                      "its frame-to-frame warm start arrives at its first frame as a whole-shot run would.")
    pool: str | None = Field(default=None, min_length=1, max_length=128, description="Farm pool the exported job "
                             "runs in (Deadline pool, OpenCue facility/show pool).")
    group: str | None = Field(default=None, min_length=1, max_length=128, description="Farm group (Deadline group, "
                              "OpenCue service) of the CPU tasks.")
    gpu_group: str | None = Field(default=None, min_length=1, max_length=128, description="Farm group of the tasks "
                                  "that want a GPU (training, swap, edit); default: `group`.")
    priority: int = Field(default=50, ge=0, le=100, description="Job priority on the farm (0-100; Deadline's scale, "
                          "mapped onto OpenCue's).")


class ReviewOptions(_Frozen):
    """How the dailies review movie looks."""

    display: str | None = Field(default=None, min_length=1, max_length=256, description="OCIO display the review is "
                                "viewed on (default: the config's default display).")
    view: str | None = Field(default=None, min_length=1, max_length=256, description="OCIO view, the show's look "
                             "(default: the display's default view).")
    codec: Literal["h264", "prores422hq", "prores4444", "dnxhr_hq"] = Field(
        default="h264", description="Movie codec: `h264` (a small proxy), `prores422hq`, `prores4444` or `dnxhr_hq`.")
    slate: bool = Field(default=False, description="Start the movie with a slate frame naming the shot and version.")
    burn_ins: bool = Field(default=True, description="Burn shot, version, frame, timecode, persona and a SYNTHETIC "
                           "FACE tag into the picture.")


class Shot(_Frozen):
    """A shot file, schema ``vfx.Shot/1``."""

    schema_: Literal["vfx.Shot/1"] = Field(default=SCHEMA, alias="schema", description="Schema and version.")
    name: Name = Field(description="Shot name, e.g. sh010.")
    plate: PlateConfig
    personas: dict[Name, PersonaConfig] = Field(default_factory=dict, description="Persona name -> source of faces.")
    model: ModelConfig | None = None
    swap: SwapConfig | None = None
    blend: BlendConfig = Field(default_factory=BlendConfig)
    retouch: list[Edit] = Field(
        default_factory=list, description="Retouch edits on the semantic layout, applied in order: `group` (the "
        "default kind), `relabel` or `paint` (see vfx.shot.edits).",
    )
    retouch_options: RetouchOptions = Field(default_factory=RetouchOptions)
    edit_vectors: list[EditVectorConfig] = Field(
        default_factory=list, description="Latent edit vectors applied by `vfx edit apply`; several add.")
    edit_options: EditOptions = Field(default_factory=EditOptions)
    outputs: OutputsConfig = Field(default_factory=OutputsConfig)
    review: ReviewOptions = Field(default_factory=ReviewOptions)
    farm: FarmConfig = Field(default_factory=FarmConfig)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, arbitrary_types_allowed=True,
                              allow_inf_nan=False)

    @field_validator("retouch", mode="before")
    @classmethod
    def _edit_defaults_and_paint_maps(cls, value: Any, info: ValidationInfo) -> Any:
        """Each edit's defaults (``kind: group``, ``name: edit<N>``); a paint edit's relative ``map`` is taken
        from the shot file's folder, like every other path."""
        if not isinstance(value, list):
            return value
        value = [complete_edit(index, e) for index, e in enumerate(value)]
        base = (info.context or {}).get("base_dir")
        if base is None:
            return value
        return [{**e, "map": str(Path(base) / e["map"])} if isinstance(e, dict) and isinstance(e.get("map"), str)
                and not Path(e["map"]).is_absolute() else e for e in value]

    @field_validator("retouch")
    @classmethod
    def _edit_names_distinct(cls, value: list[Edit]) -> list[Edit]:
        duplicates = duplicate_edit_names(value)
        if duplicates:
            raise ValueError(f"edits share a name ({', '.join(duplicates)}); give each edit its own name, "
                             "`vfx retouch --edit NAME` picks them by it")
        return value

    @model_validator(mode="after")
    def _swap_persona_exists(self) -> Shot:
        if self.swap is not None and self.swap.persona not in self.personas:
            known = ", ".join(sorted(self.personas)) or "none declared"
            raise ValueError(f"swap.persona {self.swap.persona!r} is not one of the shot's personas ({known})")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain data (str paths, fractions as ``a/b`` text), ready for YAML or JSON."""
        return self.model_dump(mode="json", by_alias=True)

    def content_hash(self) -> str:
        """A short, stable hash of the resolved shot, stamped into every output so a frame names its recipe."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
