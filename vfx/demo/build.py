"""The demo shot, built from two public-domain portraits that ship inside installed packages.

``grace_hopper.jpg`` (matplotlib's sample data; US Navy photo, public domain) and ``skimage.data.astronaut()``
(NASA photo of Eileen Collins, public domain) each become a short "performance": the portrait moves as a
head would (a slow drift, a nod, a tilt, a push-in) with sub-pixel motion, so every later stage (tracking,
alignment, swap, blend) sees realistic, smooth, non-integer movement. Each clip is written as an H.264
video with an audio track and as a scene-linear ACEScg EXR sequence; a shot file points at them. The motion
comes from :mod:`vfx.align.motion`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from vfx.align.motion import head_motion_matrix, performance_frames, render_motion
from vfx.errors import ConfigError
from vfx.io.color import ColorConverter
from vfx.io.ffmpeg import find_ffmpeg, run_ffmpeg
from vfx.io.image import ExrMetadata, write_image
from vfx.io.plate import probe_media
from vfx.io.video import encode_video
from vfx.shot import DEFAULT_START_FRAME, FrameRange, SequencePattern, Shot, save_shot
from vfx.shot.schema import OutputsConfig, PersonaConfig, PlateConfig, SwapConfig
from vfx.utils.atomic import atomic_path, check_writable
from vfx.utils.progress import progress

__all__ = ["DemoResult", "build_demo", "extract_demo_facesets", "swap_demo", "train_demo_model", "head_motion_matrix",
           "load_portrait", "performance_frames", "render_motion", "PORTRAITS"]

PORTRAITS = ("hopper", "astronaut")
_CREDITS = {"hopper": "US Navy photo of Grace Hopper, via matplotlib", "astronaut": "NASA photo of Eileen Collins, "
            "via scikit-image"}
DEMO_FPS = Fraction(24)
PLATE_COLORSPACE = "ACEScg"
WORKING_COLORSPACE = "sRGB Encoded Rec.709 (sRGB)"


def load_portrait(name: str) -> np.ndarray:
    """One of the bundled portraits as (H, W, 3) float32 sRGB in [0, 1], square, face centred.

    Convention:
        - returns (H, W, 3) float32, display-referred sRGB, values in [0, 1]
    """
    if name == "hopper":
        import matplotlib.cbook
        from matplotlib.image import imread

        image = imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))  # (600, 512, 3)
        image = image[20:532]  # square 512x512 around the face
    elif name == "astronaut":
        import skimage.data

        image = skimage.data.astronaut()[0:320, 80:400]  # (512, 512, 3) -> 320x320 around the face
    else:
        raise ConfigError(f"Unknown demo portrait {name!r}", expected=f"one of {', '.join(PORTRAITS)}",
                          found=repr(name), fix=f"pick one of {', '.join(PORTRAITS)}")
    return np.ascontiguousarray(image, dtype=np.float32) / 255.0


@dataclass(frozen=True)
class DemoResult:
    """What :func:`build_demo` made (and :func:`extract_demo_facesets` added)."""

    folder: Path
    shot_file: Path
    videos: dict[str, Path]
    sequences: dict[str, str]
    probes: dict[str, dict[str, object]] = field(default_factory=dict)
    facesets: dict[str, str] = field(default_factory=dict)
    model: str = ""
    outputs: tuple[str, ...] = ()

    def summary(self) -> str:
        lines = [f"demo shot: {self.shot_file}"]
        for name, info in self.probes.items():
            details = ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("path", "kind"))
            lines.append(f"  {name}: {details}")
        lines += [f"  {text}" for text in self.facesets.values()]
        if self.model:
            lines.append(f"  {self.model}")
        lines += [f"  {text}" for text in self.outputs]
        lines.append(f"next: vfx shot show {self.shot_file}")
        return "\n".join(lines)


def extract_demo_facesets(result: DemoResult, *, crop_size: int = 128) -> DemoResult:
    """Extract both demo personas' footage into ``facesets/<name>`` with a contact sheet and a jitter plot.

    The demo faces are small (90-125 px in a 256² frame), so detection runs at full resolution.
    """
    from dataclasses import replace

    from vfx.faceset.extract import ExtractConfig, MediaSource, extract_faceset
    from vfx.faceset.qc import write_contact_sheet, write_jitter_plot
    from vfx.faceset.store import Faceset

    config = ExtractConfig(crop_size=crop_size, detect_scale=1.0, min_face_px=64)
    facesets = {}
    for name, video in result.videos.items():
        out = result.folder / "facesets" / name
        summary = extract_faceset(MediaSource(str(video), shot="demo"), out, config=config)
        faceset = Faceset.open(out)
        write_contact_sheet(faceset, out / "contact_sheet.png")
        write_jitter_plot(faceset, out / "qc_jitter.png")
        facesets[name] = (f"faceset {name}: {out} ({summary.faces} faces on {summary.frames} frames, "
                          f"{summary.tracks} track(s); contact_sheet.png, qc_jitter.png)")
    return replace(result, facesets=facesets)


DEMO_MODEL_RESOLUTION = 64
DEMO_MODEL_WIDTH = 0.25
DEMO_ITERS_PER_LEVEL = 100
"""A few minutes of training on a 2-core CPU: enough for a recognisable, soft persona at 64², not a film model."""


def train_demo_model(result: DemoResult, *, iters_per_level: int = DEMO_ITERS_PER_LEVEL,
                     resolution: int = DEMO_MODEL_RESOLUTION, width: float = DEMO_MODEL_WIDTH,
                     device: str = "cpu") -> DemoResult:
    """Train a small comb model on both demo facesets into ``models/demo_comb`` and point the shot at it.

    A rerun resumes (or reuses) the run that is there.
    """
    from dataclasses import replace

    from vfx.comb.checkpoint import PersonaRecord, latest_checkpoint, read_manifest
    from vfx.comb.data import PersonaData
    from vfx.comb.train import TrainConfig, train_comb
    from vfx.shot import load_shot
    from vfx.shot.schema import ModelConfig

    run = result.folder / "models" / "demo_comb"
    folders = {name: result.folder / "facesets" / name for name in PORTRAITS}
    # A checkpoint (so preview.png, loss.png and a timelapse row) four times a level.
    config = TrainConfig(iters_per_level=iters_per_level, fine_tune_iters=iters_per_level // 2, batch_size=8,
                         checkpoint_every=max(1, iters_per_level // 4), log_every=max(1, iters_per_level // 2))
    total = (resolution.bit_length() - 2) * iters_per_level + config.fine_tune_iters
    newest = latest_checkpoint(run)
    if newest is None or read_manifest(newest).step < total:
        data = {name: PersonaData(name, [folder], resolution, holdout=0.1) for name, folder in folders.items()}
        records = {name: PersonaRecord(name, (str(folder),), f"{name}: public-domain portrait ({_CREDITS[name]}); "
                                       "demo use") for name, folder in folders.items()}
        # train_comb draws preview.png, loss.png and timelapse_level<N>.png at every checkpoint.
        train_comb(data, run, resolution=resolution, width=width, config=config, records=records, device=device,
                   resume=newest is not None,
                   report=lambda p: print(f"train: {p.line()}", file=sys.stderr, flush=True))
    shot = load_shot(result.shot_file)
    shot = shot.model_copy(update={"model": ModelConfig(checkpoint=Path("models/demo_comb"), resolution=resolution,
                                                        width=width)})
    save_shot(shot, result.shot_file)
    steps = read_manifest(run).step
    return replace(result, model=f"comb model: {run} ({resolution}², width {width}, {steps} iterations)")


def swap_demo(result: DemoResult, *, device: str = "cpu") -> DemoResult:
    """Swap hopper onto the astronaut plate, write the EXR sequence, review video, compositor package and a
    contact sheet (plate | swap | matte)."""
    from dataclasses import replace

    from vfx.export.handoff import write_handoff
    from vfx.export.sheet import write_swap_sheet
    from vfx.io.plate import open_plate
    from vfx.shot import load_shot
    from vfx.swap import swap_shot

    shot = load_shot(result.shot_file)
    summary = swap_shot(shot, device=device)
    lines = [f"swap: {line}" for line in summary.describe().splitlines()]
    lines += write_handoff(shot)
    sheet = result.folder / "out" / "demo_contact_sheet.png"
    plate, frames = open_plate(shot.plate)
    with plate:
        write_swap_sheet(plate, str(shot.outputs.exr), list(frames), sheet)
    lines.append(f"contact sheet (plate | swap | matte): {sheet}")
    return replace(result, outputs=tuple(lines))


def build_demo(
    folder: str | Path,
    *,
    num_frames: int = 48,
    size: int = 256,
    start_frame: int = DEFAULT_START_FRAME,
    fps: Fraction = DEMO_FPS,
) -> DemoResult:
    """Build the demo shot in ``folder``: two clips as videos and EXR sequences, and a shot file.

    Layout: ``media/<name>.mp4`` (H.264 with a tone on an AAC audio track), ``plates/<name>.####.exr``
    (ACEScg, half, PIZ), ``demo.yaml`` (plate: the astronaut sequence; personas from the videos).
    Running it again rewrites the media; every file is written atomically.

    Raises:
        ConfigError: ``size`` is odd or too small, or ``num_frames`` is below 8.
    """
    if size < 64 or size > 4096 or size % 2:
        raise ConfigError("Invalid demo size", expected="an even number of pixels from 64 to 4096", found=str(size),
                          fix="--size 256 (the default) or 128 for a quicker run")
    if not 8 <= num_frames <= 10_000:
        raise ConfigError("Invalid number of demo frames", expected="8 to 10000", found=str(num_frames),
                          fix="--frames 48 (the default)")
    folder = Path(folder).absolute()
    check_writable(folder)
    frame_range = FrameRange.from_bounds(start_frame, start_frame + num_frames - 1)
    tone = _write_tone(folder / "media" / "tone.m4a", seconds=float(num_frames / fps) + 1.0)
    to_plate = ColorConverter("sRGB Encoded Rec.709 (sRGB)", PLATE_COLORSPACE)
    metadata = ExrMetadata(fps=fps, colorspace=PLATE_COLORSPACE, extra={"source": "vfx demo"})

    videos: dict[str, Path] = {}
    sequences: dict[str, str] = {}
    for name in PORTRAITS:
        portrait = load_portrait(name)
        pattern = SequencePattern(str(folder / "plates" / f"{name}.####.exr"))
        video = folder / "media" / f"{name}.mp4"

        def frames_8bit(portrait: np.ndarray = portrait, pattern: SequencePattern = pattern,
                        name: str = name) -> Iterator[np.ndarray]:
            # One pass renders both forms: the EXR frame on the side, the 8-bit frame to the encoder.
            motion = performance_frames(portrait, num_frames, size)
            for frame, rgb in progress(zip(frame_range, motion), total=num_frames, desc=f"demo {name}"):
                write_image(pattern.path(frame), to_plate.apply(rgb), channels=("R", "G", "B"), dtype="half",
                            compression="piz", metadata=metadata)
                yield np.round(rgb * 255.0).astype(np.uint8)

        encode_video(frames_8bit(), video, fps=fps, codec="h264", audio_from=tone)
        videos[name] = video
        sequences[name] = pattern.pattern
    tone.unlink()

    # Paths relative to the shot file, so the demo folder can be moved or copied to a farm share.
    shot = Shot(
        name="demo",
        plate=PlateConfig(path=Path("plates/astronaut.####.exr"), frames=frame_range, fps=fps,
                          colorspace=PLATE_COLORSPACE, audio=Path("media/astronaut.mp4")),
        personas={name: PersonaConfig(footage=Path(f"media/{name}.mp4"), start_frame=start_frame)
                  for name in PORTRAITS},
        swap=SwapConfig(persona="hopper"),
        outputs=OutputsConfig(
            exr=Path("out/demo_swap_v001.####.exr"),
            review=Path("out/demo_swap_v001.mp4"),
            comp_package=Path("out/demo_comp_v001"),
        ),
    )
    shot_file = folder / "demo.yaml"
    save_shot(shot, shot_file)
    probes = {f"{name}.mp4": probe_media(path, start_frame=start_frame) for name, path in videos.items()}
    probes.update({f"{name} plate": probe_media(pattern) for name, pattern in sequences.items()})
    return DemoResult(folder=folder, shot_file=shot_file, videos=videos, sequences=sequences, probes=probes)


def _write_tone(path: Path, *, seconds: float) -> Path:
    """A quiet 440 Hz tone as AAC, so the demo clips carry audio for later stages to copy."""
    with atomic_path(path) as tmp:
        run_ffmpeg([find_ffmpeg(), "-hide_banner", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency=440:sample_rate=48000:duration={seconds:.3f}", "-af", "volume=0.2",
                    "-c:a", "aac", "-b:a", "96k", str(tmp)], what="making the demo's audio tone")
    return path
