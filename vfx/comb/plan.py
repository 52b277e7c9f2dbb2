"""A shot (plus command-line overrides) -> one training plan: what ``vfx train SHOT`` and the farm's train task run.

Both entry points make the plan with :func:`plan_training`, extract the personas given as footage with
:func:`extract_personas`, and hand the plan to :func:`vfx.comb.train.train_comb`, so a shot trains the same
model whichever way it is run. The plan checks everything before any work and writes nothing:

- **Personas**: each persona of the shot trains from its faceset; a persona given as footage trains from the
  faceset extracted from it at :func:`vfx.shot.layout.persona_faceset_folder`. ``--persona NAME=FOLDER`` adds
  facesets (and personas). Facesets must exist, footage must open (:class:`~vfx.errors.ConfigError`, exit 2).
- **Defaults**: the shot's ``model.training`` when present, else ``ModelTraining()``: the one statement of
  the training defaults (:class:`vfx.shot.schema.ModelTraining`, which :class:`~vfx.comb.train.TrainConfig`
  also takes its defaults from). Resolution and width: the override, else the ``--base`` model's, else the
  shot's ``model``, else :data:`DEFAULT_RESOLUTION` and :data:`DEFAULT_WIDTH` (no shot model). The checkpoint
  interval: the override, else ``model.training.checkpoint_every``, else TrainConfig's one rule,
  ``min(500, iters_per_level)``.
- **Settings and files** are checked here, before any work: every setting's range (:class:`TrainConfig`,
  :class:`~vfx.comb.network.CombConfig`: ``--res`` a power of two from 4 to 1024, ``--width`` in (0, 4]), the
  device (:func:`vfx.utils.device.resolve_device`: an unavailable CUDA device is refused), the run folder (a
  writable folder, never a faceset's; a new run must not find a model there, ``--resume`` must find one whose
  architecture and files check out: :func:`vfx.comb.checkpoint.check_checkpoint`) and the ``--base`` model.
- **Consent** (:func:`consent_refusal`): a persona without a consent record (``personas.NAME.consent`` or
  ``--consent NAME=TEXT``) is refused, unless ``no_consent_record`` (``vfx train --no-consent-record``) says
  to train it anyway, which is logged. The farm has no such flag, so it always refuses.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vfx.comb.checkpoint import PersonaRecord, check_checkpoint, latest_checkpoint
from vfx.comb.data import PersonaData
from vfx.comb.network import CombConfig
from vfx.comb.train import TrainConfig
from vfx.errors import ConfigError, MediaError
from vfx.faceset.store import Faceset
from vfx.shot.frames import DEFAULT_START_FRAME
from vfx.shot.layout import persona_faceset_folder
from vfx.shot.schema import ModelTraining, Shot
from vfx.utils.atomic import check_writable
from vfx.utils.device import resolve_device

if TYPE_CHECKING:
    from vfx.faceset.extract import ExtractSummary

__all__ = [
    "DEFAULT_RESOLUTION",
    "DEFAULT_WIDTH",
    "PersonaSource",
    "TrainingOverrides",
    "TrainingPlan",
    "consent_refusal",
    "extract_personas",
    "plan_training",
]

log = logging.getLogger("vfx.train")

DEFAULT_RESOLUTION = 64
"""Final crop size when neither an override, a ``--base`` model nor the shot's ``model`` says."""
DEFAULT_WIDTH = 0.25
"""Channel-width multiplier when neither an override, a ``--base`` model nor the shot's ``model`` says."""


@dataclass(frozen=True)
class PersonaSource:
    """Where one persona's training crops come from.

    Attributes:
        name: the persona (its decoder).
        facesets: faceset folders read in order; a footage persona's extracted faceset comes first.
        consent: the consent record (None: none).
        footage: footage extracted into ``facesets[0]`` before training (:func:`extract_personas`), or None.
        start_frame: number of the footage's first frame.
    """

    name: str
    facesets: tuple[Path, ...]
    consent: str | None
    footage: Path | None = None
    start_frame: int = DEFAULT_START_FRAME

    @property
    def record(self) -> PersonaRecord:
        """The persona's record in the model's manifest."""
        return PersonaRecord(self.name, tuple(str(f.absolute()) for f in self.facesets), self.consent)


@dataclass(frozen=True)
class TrainingOverrides:
    """What the command line changes of a shot's training (None / empty: the shot's, else the default)."""

    personas: tuple[tuple[str, Path], ...] = ()
    """(name, faceset folder) pairs, added to the shot's personas."""
    consent: tuple[tuple[str, str], ...] = ()
    """(name, consent record) pairs, replacing the shot's record."""
    no_consent_record: bool = False
    """Train personas without a consent record (logged); the farm never sets it."""
    out: Path | None = None
    resolution: int | None = None
    width: float | None = None
    iters_per_level: int | None = None
    fine_tune_iters: int | None = None
    batch_size: int | None = None
    mask: str | None = None
    holdout: float | None = None
    seed: int | None = None
    checkpoint_every: int | None = None
    amp: str | None = None
    compile: bool | None = None
    shared_lr_scale: float | None = None
    base: Path | None = None
    resume: bool | None = None
    """True: continue the run folder's newest checkpoint (there must be one); False: a new run (there must be
    none); None (the farm): continue when there is one."""
    device: str | None = None
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``, checked to exist (None: not checked, the plan says ``cpu``)."""


@dataclass(frozen=True)
class TrainingPlan:
    """One training run, resolved and checked.

    Attributes:
        shot: the shot's name (None: personas from the command line only).
        personas: each persona's data sources, in decoder order.
        config: the training settings.
        resolution, width: the architecture.
        run: the run folder (checkpoints).
        holdout: fraction of each faceset kept out of training.
        base: a trained model the personas are added to, or None.
        resume: continue the run folder's newest checkpoint (checked: it fits the plan).
        unconsented: personas trained without a consent record (only with ``no_consent_record``).
        device: the device to train on, checked to exist.
    """

    shot: str | None
    personas: tuple[PersonaSource, ...]
    config: TrainConfig
    resolution: int
    width: float
    run: Path
    holdout: float
    base: Path | None = None
    resume: bool = False
    unconsented: tuple[str, ...] = ()
    device: str = "cpu"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.personas)

    @property
    def records(self) -> dict[str, PersonaRecord]:
        """Each persona's manifest record (facesets and consent)."""
        return {p.name: p.record for p in self.personas}

    @property
    def footage(self) -> tuple[PersonaSource, ...]:
        """The personas given as footage, which :func:`extract_personas` extracts."""
        return tuple(p for p in self.personas if p.footage is not None)

    @property
    def total_iterations(self) -> int:
        """Iterations of the whole run: every level's stage and the fine-tuning."""
        top = CombConfig(resolution=self.resolution, width=self.width, personas=self.names).top_level
        return (top + 1) * self.config.iters_per_level + self.config.fine_tune_iters

    def persona_data(self) -> dict[str, PersonaData]:
        """Each persona's crops, loaded at the plan's resolution (after :func:`extract_personas`)."""
        return {p.name: PersonaData(p.name, list(p.facesets), self.resolution, holdout=self.holdout)
                for p in self.personas}


def consent_refusal(names: tuple[str, ...] | list[str]) -> ConfigError:
    """The one refusal of personas without a consent record, for ``vfx train`` and the farm alike."""
    return ConfigError(f"No consent record for persona(s) {', '.join(names)}",
                       expected="a consent record per persona: personas.NAME.consent in the shot file, or "
                       "vfx train --consent NAME='who agreed, to what use, until when'", found="none",
                       fix="record the consent, or pass --no-consent-record to vfx train to train without one "
                       "(the farm always refuses)")


def plan_training(shot: Shot | None, overrides: TrainingOverrides | None = None) -> TrainingPlan:
    """The training run of a shot (or of command-line personas alone), with the command line's overrides.

    Raises:
        ConfigError: no personas, a ``--consent`` for an unknown persona, a persona without a consent record
            (unless ``no_consent_record``), no run folder, a run folder that is a file, not writable or a faceset's,
            a model there without ``resume`` (or none with it), a faceset folder that is not a faceset, footage
            that does not open, an unavailable device, or invalid settings.
        MediaError: a ``--base`` model or the checkpoint to resume whose manifest or weights do not check out.
    """
    o = overrides or TrainingOverrides()
    model = shot.model if shot is not None else None
    training = model.training if model is not None and model.training is not None else ModelTraining()

    folders: dict[str, list[Path]] = {}
    consent: dict[str, str | None] = {}
    footage: dict[str, tuple[Path, int]] = {}
    for name, persona in (shot.personas.items() if shot is not None else ()):
        consent[name] = persona.consent
        if persona.faceset is not None:
            folders[name] = [Path(persona.faceset)]
            continue
        try:
            folders[name] = [persona_faceset_folder(shot, name)]  # type: ignore[arg-type]
        except ConfigError:
            raise ConfigError(f"Persona {name!r} of shot {shot.name!r} is footage, and the shot names no folder to "  # type: ignore[union-attr]
                              "extract its faces into", expected="outputs.exr or outputs.frames (its faceset goes "
                              f"beside them), or personas.{name}.faceset", found=f"footage {persona.footage}",
                              fix=f"add outputs.exr, or run `vfx extract SHOT --persona {name} --out DIR` and set "
                              f"personas.{name}.faceset: DIR") from None
        footage[name] = (Path(persona.footage), persona.start_frame)  # type: ignore[arg-type]
    for name, folder in o.personas:
        folders.setdefault(name, []).append(Path(folder))
        consent.setdefault(name, None)
    for name, text in o.consent:
        if name not in folders:
            raise ConfigError(f"--consent for an unknown persona {name!r}", expected=", ".join(folders) or "a --persona",
                              found=name, fix="name a persona given with --persona or in the shot file")
        consent[name] = text
    if not folders:
        raise ConfigError("No personas to train", expected="a shot file with personas, or --persona NAME=FACESET",
                          found="none",
                          fix="vfx train SHOT, or vfx train --persona NAME=FACESET (repeat for each persona)")
    unconsented = tuple(name for name in folders if not consent[name])
    if unconsented and not o.no_consent_record:
        raise consent_refusal(unconsented)

    device = resolve_device(o.device) if o.device is not None else "cpu"
    run = o.out or (Path(model.checkpoint) if model is not None else None)
    if run is None:
        raise ConfigError("No run folder", expected="--out DIR (or a shot file with model.checkpoint)", found="none",
                          fix="pass --out models/RUN")
    base_manifest = check_checkpoint(o.base) if o.base is not None else None
    base_config = base_manifest.config if base_manifest is not None else None
    resolution = _pick(o.resolution, base_config.resolution if base_config else model.resolution if model is not None
                       else DEFAULT_RESOLUTION)
    width = _pick(o.width, base_config.width if base_config else model.width if model is not None else DEFAULT_WIDTH)
    names = tuple(folders)
    if base_config is not None:  # train_comb's rule: the base's decoders, then the personas it lacks
        names = base_config.personas + tuple(n for n in names if n not in base_config.personas)
    try:  # the architecture's own checks
        arch = CombConfig(resolution=resolution, width=width, personas=names)  # type: ignore[arg-type]
    except ConfigError as err:
        option = "--res (or model.resolution)" if "resolution" in err.message else "--width (or model.width)" \
            if "width" in err.message else "--persona"
        raise ConfigError(f"{err.message} for {option}", expected=err.expected, found=err.found,
                          fix=f"set {option} to {err.expected}" if "persona" not in option else err.fix) from None
    if base_manifest is not None and ((arch.resolution, arch.width) != (base_config.resolution, base_config.width)
                                      or base_manifest.level != base_config.top_level):
        raise ConfigError(f"Cannot add personas to {o.base}", expected=f"a model grown to {arch.resolution}² at width "
                          f"{arch.width}", found=f"{base_config.resolution}² at width {base_config.width}, level "
                          f"{base_manifest.level} of {base_config.top_level}",
                          fix="finish training it, or leave out --res and --width (the base's are used)")
    holdout = training.holdout if o.holdout is None else o.holdout
    if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0.0 <= holdout < 1.0:
        raise ConfigError("Invalid hold-out fraction", expected="a number in [0, 1)", found=repr(holdout),
                          fix="set --holdout (or model.training.holdout) to a fraction such as 0.1")
    given = {"amp": o.amp, "compile": o.compile, "shared_lr_scale": o.shared_lr_scale}
    config = TrainConfig(
        iters_per_level=_pick(o.iters_per_level, training.iters_per_level),
        fine_tune_iters=_pick(o.fine_tune_iters, training.fine_tune_iters),
        batch_size=_pick(o.batch_size, training.batch_size),
        mask_mode=_pick(o.mask, training.mask),  # type: ignore[arg-type]
        seed=_pick(o.seed, training.seed),
        checkpoint_every=_pick(o.checkpoint_every, training.checkpoint_every),
        **{key: value for key, value in given.items() if value is not None},  # type: ignore[arg-type]
    )

    personas = []
    for name, paths in folders.items():
        source = footage.get(name)
        for index, folder in enumerate(paths):
            if source is not None and index == 0:
                continue  # extracted from the footage before training
            if not (folder / Faceset.INFO_FILE).is_file():
                raise ConfigError(f"No faceset at {folder} for persona {name!r}",
                                  expected="a faceset folder made by vfx extract",
                                  found="no such folder" if not folder.exists() else "a folder without "
                                  f"{Faceset.INFO_FILE}", fix="run `vfx extract` to make it, or fix the path")
        if source is not None:
            _check_footage(name, *source)
        personas.append(PersonaSource(name, tuple(paths), consent[name], *(source or (None, DEFAULT_START_FRAME))))
    resume = _check_run(Path(run), arch, o.resume, tuple(f for p in personas for f in p.facesets))
    if unconsented:
        log.warning("training without a consent record for: %s", ", ".join(unconsented))
    return TrainingPlan(shot=shot.name if shot is not None else None, personas=tuple(personas), config=config,
                        resolution=resolution, width=width, run=Path(run), holdout=holdout, base=o.base,
                        resume=resume, unconsented=unconsented, device=device)


def _check_run(run: Path, arch: CombConfig, resume: bool | None, facesets: tuple[Path, ...]) -> bool:
    """Check the run folder before any work: a writable folder that is no faceset's, holding no model for a new
    run and a sound one of this architecture for a resumed run. Returns whether the run resumes."""
    if run.exists() and not run.is_dir():
        raise ConfigError(f"Run folder {run} is a file", expected="a folder for the checkpoints (new, or a run's)",
                          found="a file", fix="choose another --out (or model.checkpoint)")
    real = run.resolve()
    for folder in facesets:
        inside = folder.resolve()
        if real == inside or inside in real.parents:
            raise ConfigError(f"Run folder {run} lies in the faceset {folder}",
                              expected="a run folder outside every faceset (its checkpoints must not mix with "
                                       "the crops)", found=f"{real}", fix="choose another --out (or model.checkpoint)")
    check_writable(run)
    newest = latest_checkpoint(run)
    if resume is False and newest is not None:
        raise ConfigError(f"Run folder {run} already holds a model", expected="a new run folder, or --resume",
                          found=f"checkpoint {newest.name}", fix="pass --resume to continue it, or choose another --out")
    if resume and newest is None:
        raise ConfigError(f"Nothing to resume in {run}", expected="a run folder with step_* checkpoints",
                          found="none", fix="run without --resume to start training")
    if newest is None:
        return False
    try:
        manifest = check_checkpoint(newest, optimizer=True)
    except MediaError as err:  # the run's own newest checkpoint: the one before it is the way on
        older = sorted(p.name for p in run.glob("step_*") if p != newest and (p / "manifest.json").is_file())
        raise MediaError(err.message, expected=err.expected, found=err.found,
                         fix=f"move {newest} aside to resume from {older[-1]}" if older else
                         "start a new run in another --out (the run has no older checkpoint)") from None
    if manifest.config != arch:
        saved = manifest.config
        raise ConfigError(f"Checkpoint {newest} has another architecture than this run asks",
                          expected=f"{arch.resolution}², width {arch.width}, personas {', '.join(arch.personas)}",
                          found=f"{saved.resolution}², width {saved.width}, personas {', '.join(saved.personas)}",
                          fix="resume with the run's own --res, --width and personas, or choose another --out")
    return True


def _pick(override: object, value: object) -> object:
    return value if override is None else override


def _check_footage(name: str, footage: Path, start_frame: int) -> None:
    from vfx.io.plate import open_media

    try:
        open_media(footage, start_frame=start_frame).close()
    except MediaError as err:
        raise ConfigError(f"Footage of persona {name!r} cannot be read", expected="a video or image sequence",
                          found=err.message if err.found is None else f"{err.message} ({err.found})",
                          fix=f"fix personas.{name}.footage, or extract a faceset with `vfx extract SHOT --persona {name} "
                          f"--out DIR` and give it as personas.{name}.faceset") from None


def extract_personas(plan: TrainingPlan, *, device: str = "cpu", workers: int = 0) -> dict[str, ExtractSummary | None]:
    """Extract the faces of each persona the plan has as footage into its faceset (``facesets[0]``, the shot's
    :func:`~vfx.shot.layout.persona_faceset_folder`), at the plan's resolution: what ``vfx train SHOT`` and
    the farm's ``personas`` task both run before training.

    Resumable and idempotent: an interrupted extraction continues (its stale temporary files removed first),
    and a persona whose faceset is complete is skipped without loading a model. Detection follows the
    plate's recipe (:mod:`vfx.faceset.plate_faces`): a full-frame search at about ``DETECT_LINES`` lines, and on
    smaller footage faces down to ``MIN_FACE_FRACTION`` of its short side.

    Returns:
        Per footage persona, its :class:`~vfx.faceset.extract.ExtractSummary`, or None when it was complete.

    Raises:
        ConfigError: no face found in a persona's footage, a faceset folder holding another faceset, or an
            extraction left to several processes (torchrun): extract first, on one process.
    """
    from vfx.faceset.extract import ExtractConfig, MediaSource, extract_faceset, faceset_info
    from vfx.faceset.plate_faces import DETECT_LINES, MIN_FACE_FRACTION
    from vfx.io.color import WORKING_SPACE
    from vfx.utils.atomic import remove_stale_temps

    done: dict[str, ExtractSummary | None] = {}
    for persona in plan.footage:
        folder = persona.facesets[0]
        source = MediaSource(str(persona.footage), persona.start_frame, WORKING_SPACE, shot=plan.shot)
        with source.open() as media:
            short_side, kind = min(media.size), media.kind
        config = ExtractConfig(crop_size=plan.resolution, device=device, workers=workers,
                               detect_scale=min(1.0, DETECT_LINES / short_side),
                               min_face_px=MIN_FACE_FRACTION * short_side if short_side < DETECT_LINES else None)
        if _complete(folder, faceset_info(source, kind, config).identity()):
            done[persona.name] = None
            continue
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ConfigError(f"Persona {persona.name!r} is not extracted yet", expected=f"its faceset at {folder}",
                              found="a run of several processes (torchrun), which must not extract it each",
                              fix="extract first: run the farm's personas task, or `vfx train` on one process")
        remove_stale_temps(folder, under=True)
        summary = extract_faceset(source, folder, config=config)
        if summary.faces == 0:
            raise ConfigError(f"No face found in the footage of persona {persona.name!r}",
                              expected="footage showing the persona's face", found=f"{summary.frames} frames, no face",
                              fix=f"check {persona.footage}, or give an extracted faceset as personas.NAME.faceset")
        done[persona.name] = summary
    return done


def _complete(folder: Path, identity: dict[str, object]) -> bool:
    """A faceset extracted to the end (its index is written last) with these source and settings."""
    if not (folder / Faceset.INDEX_FILE).is_file() or not (folder / Faceset.INFO_FILE).is_file():
        return False
    try:
        return Faceset.open(folder).info.identity() == identity
    except MediaError:
        return False
