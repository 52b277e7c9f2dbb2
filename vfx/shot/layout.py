"""Where a shot's outputs live, and the chain of stages that makes them.

The one place that computes a path of a shot: the rendered sequences of every frame stage (swap, latent
edit, layout retouch) and their copies in the plate's format, the plate's tracked faces, the persona
facesets a farm extracts from footage, the farm's task records, the retouch refiner, learned edit vectors,
the persona models' segmentation heads, the review videos and the compositor package. The farm graph, the
render loop and the hand-off all read it, so a path changes in one place.

The stage chain says, for each stage, what it reads (its prerequisite stages, nearest first) and which
sequence it writes; from it follows which frames are the newest a shot has (retouched, else latent-edited,
else swapped), which is what a later stage and the hand-off read.

Convention:
    - Output paths are the shot file's (already absolute after :func:`vfx.shot.load_shot`); defaults sit
      beside ``outputs.exr``.
    - Sequences are :class:`~vfx.shot.frames.SequencePattern` (``name.####.ext``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vfx.errors import ConfigError
from vfx.shot.frames import SequencePattern, is_sequence_pattern
from vfx.shot.schema import Shot
from vfx.utils.atomic import check_writable

__all__ = [
    "FRAME_STAGES",
    "STAGES",
    "Place",
    "Stage",
    "check_apart",
    "check_handoff_destinations",
    "check_outputs_apart",
    "comp_package_folder",
    "edit_sequence",
    "edit_vector_folder",
    "edits_folder",
    "farm_folder",
    "persona_faceset_folder",
    "plate_faces_folder",
    "plate_format_sequence",
    "refiner_folder",
    "rendered_sequence",
    "retouch_preview_path",
    "retouch_sequence",
    "review_page_folder",
    "review_paths",
    "seg_head_path",
    "shot_inputs",
    "shot_outputs",
    "side_by_side_path",
    "source_sequence",
    "stage_output",
    "stage_prerequisites",
    "swap_sequence",
    "wanted_stages",
]


# ---------------------------------------------------------------------------------------------- stages

@dataclass(frozen=True)
class Stage:
    """One step of a shot.

    Attributes:
        name: the stage's name (``vfx task run --stage``).
        chunked: cut into frame chunks on a farm.
        gpu: wants a GPU.
        reads: the stages whose outputs it reads, nearest first.
        nearest_only: it reads only the newest frames there are, so it waits for the nearest of ``reads``
            present in the shot (which itself waited for the rest).
        description: one line for a farm manager's task list.
    """

    name: str
    chunked: bool
    gpu: bool
    reads: tuple[str, ...]
    nearest_only: bool
    description: str


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("personas", False, False, (), False,
          "extract the faces of the personas given as footage into their facesets"),
    Stage("extract", True, False, (), False, "landmark the plate's faces (chunks of whole 10-frame landmark chunks)"),
    Stage("track", False, False, ("extract",), False,
          "link the faces into tracks, filter them over the whole shot, cut the crops"),
    Stage("train", False, True, ("personas",), False,
          "train the shot's comb model (model.training; torchrun on several GPUs)"),
    Stage("swap", True, True, ("track", "train"), False, "swap, blend and write the frames"),
    Stage("seghead", False, True, ("train",), False, "train the persona's segmentation head for the latent edits"),
    Stage("edit", True, True, ("swap", "seghead"), False, "apply the latent edit vectors (with a halo for the warm start)"),
    Stage("refiner", False, True, ("edit", "swap", "track"), True, "train the shot's retouch refiner"),
    Stage("retouch", True, True, ("refiner", "edit", "swap", "track"), True, "retouch the frames"),
    Stage("package", False, False, ("retouch", "edit", "swap"), True,
          "write the review video and the compositor package"),
)}
"""Every stage, in the order a shot runs them."""

FRAME_STAGES = ("swap", "edit", "retouch")
"""The stages that render frames (through :mod:`vfx.render`), in the order they chain."""


def wanted_stages(shot: Shot) -> list[str]:
    """The stages a shot needs, in chain order."""
    swaps = shot.swap is not None and (shot.outputs.exr is not None or shot.outputs.frames is not None)
    stages = []
    training = shot.model is not None and shot.model.training is not None
    if training and any(p.faceset is None and p.footage is not None for p in shot.personas.values()):
        stages.append("personas")
    if swaps or shot.retouch or shot.edit_vectors:
        stages += ["extract", "track"]
    if training:
        stages.append("train")
    if swaps:
        stages.append("swap")
    if shot.edit_vectors:
        stages += ["seghead", "edit"]
    if shot.retouch:
        stages += ["refiner", "retouch"] if shot.retouch_options.refiner else ["retouch"]
    if stages and (shot.outputs.review is not None or shot.outputs.comp_package is not None):
        stages.append("package")
    return stages


def stage_prerequisites(stage: str, present: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The stages of ``present`` that ``stage`` waits for."""
    spec = STAGES[stage]
    found = tuple(p for p in spec.reads if p in present)
    return found[:1] if spec.nearest_only else found


# ---------------------------------------------------------------------------------------------- frames

def swap_sequence(shot: Shot) -> SequencePattern:
    """The shot's swapped EXR sequence (``outputs.exr``), which ``vfx swap`` renders.

    Raises:
        ConfigError: the shot names no rendered frames.
    """
    if shot.outputs.exr is None:
        raise ConfigError(f"Shot {shot.name!r} names no rendered frames", expected="outputs.exr, the EXR "
                          "sequence `vfx swap` renders", fix="add e.g. `outputs: {exr: out/" + shot.name
                          + "_swap.####.exr}` to the shot file and run `vfx swap`", found="no outputs.exr")
    return SequencePattern(str(shot.outputs.exr))


def retouch_sequence(shot: Shot) -> SequencePattern:
    """The shot's retouched EXR sequence: ``outputs.retouch``, else ``<shot>_retouch.####.exr`` beside ``outputs.exr``.

    Raises:
        ConfigError: neither is set.
    """
    if shot.outputs.retouch is not None:
        return SequencePattern(str(shot.outputs.retouch))
    if shot.outputs.exr is None:
        raise ConfigError(f"Shot {shot.name!r} names no retouched frames", expected="outputs.retouch (an EXR "
                          "sequence) or outputs.exr beside which they go",
                          fix="add e.g. `outputs: {retouch: out/" + shot.name + "_retouch.####.exr}` to the shot file",
                          found="neither outputs.retouch nor outputs.exr")
    return SequencePattern(str(Path(shot.outputs.exr).with_name(f"{shot.name}_retouch.####.exr")))


def edit_sequence(shot: Shot) -> SequencePattern:
    """The shot's latent-edited EXR sequence: ``outputs.edit``, else ``<shot>_edit.####.exr`` beside ``outputs.exr``.

    Raises:
        ConfigError: neither is set.
    """
    if shot.outputs.edit is not None:
        return SequencePattern(str(shot.outputs.edit))
    return SequencePattern(str(swap_sequence(shot).directory / f"{shot.name}_edit.####.exr"))


def stage_output(shot: Shot, stage: str) -> SequencePattern:
    """The EXR sequence a frame stage (``swap``, ``edit``, ``retouch``) writes."""
    outputs = {"swap": swap_sequence, "edit": edit_sequence, "retouch": retouch_sequence}
    if stage not in outputs:
        raise ValueError(f"{stage!r} is not a frame stage: {', '.join(outputs)}")  # an internal misuse
    return outputs[stage](shot)


def plate_format_sequence(shot: Shot, stage: str) -> SequencePattern | None:
    """The copy in the plate's own format a frame stage writes (``outputs.frames``; the retouch's beside it
    with ``_retouch``), or None: the shot asks for none, or the stage writes none (the latent edit)."""
    if shot.outputs.frames is None or stage == "edit":
        return None
    if stage == "swap":
        return SequencePattern(str(shot.outputs.frames))
    path = Path(str(shot.outputs.frames))
    stem, _, frame_part = path.name.partition(".")
    return SequencePattern(str(path.with_name(f"{stem}_{stage}.{frame_part}")))


def _present_frame_stages(shot: Shot) -> list[str]:
    present = []
    if shot.outputs.exr is not None:
        present.append("swap")
    if shot.edit_vectors:
        present.append("edit")
    if shot.retouch:
        present.append("retouch")
    return present


def source_sequence(shot: Shot, stage: str) -> SequencePattern | None:
    """The rendered frames a frame stage starts from: the newest frames of the stages before it in the
    chain (an edit reads the swap; a retouch the latent edit, else the swap), or None for the plate."""
    if stage == "edit":
        return swap_sequence(shot)
    if stage == "retouch":
        before = [s for s in ("edit", "swap") if s in _present_frame_stages(shot)]
        return stage_output(shot, before[0]) if before else None
    return None


def rendered_sequence(shot: Shot) -> SequencePattern:
    """The shot's finished frames, which the review and the compositor package are made from: the retouched
    frames when the shot has retouch edits, else the latent-edited ones when it lists edit vectors, else the
    swapped ones.

    Raises:
        ConfigError: the shot names no rendered frames.
    """
    if shot.retouch:
        return retouch_sequence(shot)
    return edit_sequence(shot) if shot.edit_vectors else swap_sequence(shot)



# ---------------------------------------------------------------------------------------------- folders

def plate_faces_folder(shot: Shot) -> Path:
    """Where the plate's tracked faces are kept between runs: beside the first configured frame output."""
    first = shot.outputs.exr or shot.outputs.frames or shot.outputs.retouch
    if first is None:
        raise ConfigError(f"Shot {shot.name!r} names no frames to render",
                          expected="outputs.exr (an EXR sequence) and/or outputs.frames (the plate's own format)",
                          fix="add e.g. `outputs: {exr: out/" + shot.name + "_swap.####.exr}` to the shot file",
                          found="no outputs.exr, outputs.frames or outputs.retouch")
    return Path(first).parent / f"{shot.name}_plate_faces"


def farm_folder(shot: Shot) -> Path:
    """Where the shot's task records and logs live: ``<shot>_farm`` beside the plate's faces."""
    return plate_faces_folder(shot).with_name(f"{shot.name}_farm")


def persona_faceset_folder(shot: Shot, persona: str) -> Path:
    """The faceset of a persona the shot gives as footage: the one it names (``personas.NAME.faceset``), else
    ``<shot>_personas/<persona>`` beside the plate's faces, where ``vfx train SHOT`` and the farm extract it."""
    config = shot.personas.get(persona)
    if config is not None and config.faceset is not None:
        return Path(config.faceset)
    return plate_faces_folder(shot).with_name(f"{shot.name}_personas") / persona


def refiner_folder(shot: Shot) -> Path:
    """Where the shot's trained retouch refiner is kept: beside the retouched frames."""
    return retouch_sequence(shot).directory / f"{shot.name}_retouch_refiner"


def retouch_preview_path(shot: Shot) -> Path:
    """The retouch's preview PNG (original | edited layout | warp | refined)."""
    return retouch_sequence(shot).directory / f"{shot.name}_retouch_preview.png"


def edits_folder(shot: Shot) -> Path:
    """Where ``vfx edit learn`` puts edit vectors by default: ``edits/`` beside the swapped frames."""
    return swap_sequence(shot).directory / "edits"


def edit_vector_folder(shot: Shot, keyframe: int) -> Path:
    """The default folder of an edit vector learned on ``keyframe``."""
    return edits_folder(shot) / f"{shot.name}_{keyframe}.vfxedit"


def seg_head_path(run: str | Path, persona: str, fingerprint: str) -> Path:
    """Where the segmentation head of ``persona`` for the weights ``fingerprint`` lives, in a model's run
    folder: ``<run>/segmentation/<persona>-<fp>`` (without suffix; the files add ``.safetensors`` and ``.json``)."""
    return Path(run) / "segmentation" / f"{persona}-{fingerprint}"


def side_by_side_path(review: str | Path) -> Path:
    """Where the side-by-side review goes beside the plain one: ``sh010.mp4`` -> ``sh010_side_by_side.mp4``."""
    path = Path(review)
    return path.with_name(f"{path.stem}_side_by_side{path.suffix}")


def review_paths(shot: Shot) -> list[Path]:
    """The review videos the shot asks for (plain, and side by side when ``outputs.side_by_side``)."""
    if shot.outputs.review is None:
        return []
    paths = [Path(shot.outputs.review)]
    if shot.outputs.side_by_side:
        paths.append(side_by_side_path(shot.outputs.review))
    return paths


def comp_package_folder(shot: Shot) -> Path | None:
    """The compositor package folder (``outputs.comp_package``), or None."""
    return None if shot.outputs.comp_package is None else Path(shot.outputs.comp_package)


def review_page_folder(shot: Shot) -> Path:
    """The review page's folder (``vfx review``): ``review/`` beside the first configured frame output, holding
    ``index.html``."""
    return plate_faces_folder(shot).with_name("review")


# ---------------------------------------------------------------------------------------------- inputs kept apart

@dataclass(frozen=True)
class Place:
    """A path the toolkit reads or writes: one file, a folder, or an image sequence (``name.####.exr``).

    Attributes:
        what: how a compositor names it in an error ("outputs.exr", "the plate").
        kind: ``file``, ``folder`` or ``sequence``.
    """

    what: str
    path: Path
    kind: str

    @property
    def real(self) -> Path:
        """The path with every symlink of its existing part resolved (for a sequence, its folder's)."""
        if self.kind == "sequence":
            return Path(os.path.realpath(SequencePattern(str(self.path)).directory))
        return Path(os.path.realpath(self.path))

    def holds(self, file: Path) -> bool:
        """Whether writing (or reading) this place touches ``file`` (a real path)."""
        if self.kind == "file":
            return self.real == file
        if self.kind == "folder":
            return file == self.real or self.real in file.parents
        return file.parent == self.real and SequencePattern(str(self.path)).frame_of(file.name) is not None


def _overlap(out: Place, source: Place) -> bool:
    """Whether writing ``out`` can touch ``source``."""
    if source.kind == "sequence":
        if out.kind == "sequence":
            # the same name around the frame number in one folder: their frames share files
            return out.real == source.real and SequencePattern(str(out.path)).name_parts == \
                SequencePattern(str(source.path)).name_parts
        if out.kind == "folder":  # the sequence's folder is the output folder or inside it
            return out.holds(source.real)
        return source.holds(out.real)
    real = source.real
    if out.holds(real):
        return True
    if source.kind == "folder":  # an output written inside an input folder
        target = out.real
        return target == real or real in target.parents
    return False


def shot_inputs(shot: Shot) -> list[Place]:
    """What a shot reads and no frame stage may write: the plate, its audio, the personas' footage and
    facesets given as such, the paint maps and edit vectors it names, and the model."""
    places = [Place("the plate", Path(shot.plate.path), "sequence" if shot.plate.is_sequence else "file")]
    if shot.plate.audio is not None:
        places.append(Place("plate.audio", Path(shot.plate.audio), "file"))
    for name, persona in shot.personas.items():
        if persona.footage is not None:
            kind = "sequence" if is_sequence_pattern(persona.footage) else "file"
            places.append(Place(f"personas.{name}.footage", Path(persona.footage), kind))
        elif persona.faceset is not None:
            places.append(Place(f"personas.{name}.faceset", Path(persona.faceset), "folder"))
    if shot.model is not None:
        places.append(Place("model.checkpoint", Path(shot.model.checkpoint), "folder"))
    for index, edit in enumerate(shot.retouch):
        paint = getattr(edit, "map", None)
        if paint is not None:
            places.append(Place(f"retouch[{index}].map", Path(paint), "file"))
    for index, vector in enumerate(shot.edit_vectors):
        places.append(Place(f"edit_vectors[{index}].vector", Path(vector.vector), "folder"))
    return places


def shot_outputs(shot: Shot) -> list[Place]:
    """Every place the shot's stages write: the rendered sequences and their plate-format copies, the
    caches and records beside them, the personas' extracted facesets, the review videos and the package."""
    places: list[Place] = []
    if shot.outputs.exr is None and shot.outputs.frames is None and shot.outputs.retouch is None:
        return [Place(f"outputs.{key}", Path(value), "file" if key == "review" else "folder")
                for key, value in (("review", shot.outputs.review), ("comp_package", shot.outputs.comp_package))
                if value is not None]
    named = {"swap": shot.outputs.exr, "edit": shot.outputs.edit, "retouch": shot.outputs.retouch}
    # edit and retouch frames default to beside outputs.exr; without it they exist only where named
    stages = [s for s in FRAME_STAGES if named[s] is not None or (s != "swap" and shot.outputs.exr is not None)]
    for stage in stages:
        places.append(Place(f"the {stage} frames ({_output_key(stage)})", Path(stage_output(shot, stage).pattern),
                            "sequence"))
        copy = plate_format_sequence(shot, stage)
        if copy is not None:
            places.append(Place(f"the {stage} frames in the plate's format", Path(copy.pattern), "sequence"))
    places += [Place("the plate's tracked faces", plate_faces_folder(shot), "folder"),
               Place("the farm's task records", farm_folder(shot), "folder")]
    if "retouch" in stages:
        places += [Place("the retouch refiner", refiner_folder(shot), "folder"),
                   Place("the retouch preview", retouch_preview_path(shot), "file")]
    for name, persona in shot.personas.items():
        if persona.footage is not None:
            places.append(Place(f"the faceset of persona {name!r}", persona_faceset_folder(shot, name), "folder"))
    places += [Place("outputs.review", path, "file") for path in review_paths(shot)]
    places.append(Place("the review page", review_page_folder(shot), "folder"))
    package = comp_package_folder(shot)
    if package is not None:
        places.append(Place("outputs.comp_package", package, "folder"))
    return places


def _output_key(stage: str) -> str:
    return {"swap": "outputs.exr", "edit": "outputs.edit", "retouch": "outputs.retouch"}[stage]


def check_apart(out: Place, inputs: list[Place]) -> None:
    """Refuse an output that would write onto (or into) something the shot reads.

    Raises:
        ConfigError: ``out`` resolves (symlinks followed) onto one of ``inputs``.
    """
    for source in inputs:
        if _overlap(out, source):
            raise ConfigError(
                f"{out.what[0].upper()}{out.what[1:]} would overwrite {source.what}",
                expected="outputs that never resolve onto the shot's inputs (symlinks followed)",
                found=f"{out.path} and {source.path} (real paths {out.real} and {source.real})",
                fix=f"write {out.what} somewhere else (a version folder such as out/)")


def check_outputs_apart(shot: Shot) -> None:
    """Refuse a shot any of whose outputs resolves onto one of its inputs (or onto the shot file itself)."""
    inputs = shot_inputs(shot)
    for out in shot_outputs(shot):
        check_apart(out, inputs)


def check_handoff_destinations(shot: Shot, *, comp: Path | None = None, review: Path | None = None,
                               side_by_side: bool | None = None) -> None:
    """What the hand-off will write (the review videos and the compositor package; default: the shot's
    ``outputs``), checked before the first frame is rendered: a file where a file goes, a writable folder where
    a folder goes, and never onto the shot's inputs.

    Raises:
        ConfigError: a review path that is a folder, a package path that is a file, an unwritable folder, or an
            output that resolves onto an input.
    """
    check_outputs_apart(shot)
    inputs = shot_inputs(shot)
    review = review if review is not None else shot.outputs.review
    comp = comp if comp is not None else comp_package_folder(shot)
    side_by_side = shot.outputs.side_by_side if side_by_side is None else side_by_side
    videos = [] if review is None else [Path(review)] + ([side_by_side_path(review)] if side_by_side else [])
    for video in videos:
        if video.is_dir():
            raise ConfigError(f"The review video {video} is a folder", expected="a file path ending in .mp4 or .mov",
                              found=f"a folder at {video}", fix=f"name a file, e.g. {video / (shot.name + '.mp4')}")
        check_writable(video.parent)
        check_apart(Place("the review video", video, "file"), inputs)
    if comp is not None:
        check_writable(Path(comp))  # refuses a file where the package's folder goes
        check_apart(Place("the compositor package", Path(comp), "folder"), inputs)
