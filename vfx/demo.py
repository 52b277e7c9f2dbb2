"""The demo shot, built from two public-domain portraits that ship inside installed packages.

``grace_hopper.jpg`` (matplotlib's sample data; US Navy photo, public domain) and ``skimage.data.astronaut()``
(NASA photo of Eileen Collins, public domain) each become a short "performance": the portrait moves as a
head would (a slow drift, a nod, a tilt, a push-in) with sub-pixel motion, so every later stage (tracking,
alignment, swap, blend) sees realistic, smooth, non-integer movement. Each clip is written as an H.264
video with an audio track and as a scene-linear ACEScg EXR sequence; a shot file points at them.
"""

from __future__ import annotations

import math
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from vfx.errors import ConfigError
from vfx.io.atomic import atomic_path
from vfx.shot import DEFAULT_START_FRAME, FrameRange, Shot, save_shot

__all__ = ["DemoResult", "build_demo", "load_portrait", "performance_frames", "PORTRAITS"]

PORTRAITS = ("hopper", "astronaut")
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
        raise ConfigError(f"Unknown demo portrait {name!r}", expected=f"one of {', '.join(PORTRAITS)}")
    return np.ascontiguousarray(image, dtype=np.float32) / 255.0


def _head_motion(t: float) -> tuple[float, float, float, float]:
    """Smooth head-like motion at time ``t`` in [0, 1]: (dx, dy) in output pixels per 256, degrees, scale."""
    dx = 6.0 * math.sin(2 * math.pi * t) + 1.7 * math.sin(6 * math.pi * t + 0.4)
    dy = 3.0 * math.sin(4 * math.pi * t + 1.1)  # a nod
    angle = 4.0 * math.sin(2 * math.pi * t + 0.7)  # a tilt
    scale = 1.0 + 0.06 * (1 - math.cos(2 * math.pi * t)) / 2  # a slow push-in and back
    return dx, dy, angle, scale


def performance_frames(portrait: np.ndarray, num_frames: int, size: int) -> Iterator[np.ndarray]:
    """Yield ``num_frames`` frames of ``size``x``size`` with the portrait moving like a head.

    The portrait is zoomed in by 15 % so no border ever shows; positions are sub-pixel (cubic resampling).

    Convention:
        - portrait: (H, W, 3) float32 in [0, 1]; yields (size, size, 3) float32 in [0, 1]
    """
    from skimage.transform import SimilarityTransform, warp

    height, width = portrait.shape[:2]
    zoom = size / min(height, width) * 1.15
    centre_in = np.array([width / 2, height / 2])
    centre_out = np.array([size / 2, size / 2])
    for index in range(num_frames):
        dx, dy, angle, scale = _head_motion(index / num_frames)
        # output = T(centre_out + d) . R(angle) . S(zoom * scale) . T(-centre_in), in (x, y) pixel centres
        to_origin = SimilarityTransform(translation=-centre_in)
        move = SimilarityTransform(scale=zoom * scale, rotation=math.radians(angle),
                                   translation=centre_out + np.array([dx, dy]) * size / 256)
        transform = SimilarityTransform(move.params @ to_origin.params)
        frame = warp(portrait, transform.inverse, output_shape=(size, size), order=3, mode="edge")
        yield np.clip(frame, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class DemoResult:
    """What :func:`build_demo` made."""

    folder: Path
    shot_file: Path
    videos: dict[str, Path]
    sequences: dict[str, str]
    probes: dict[str, dict[str, object]] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"demo shot: {self.shot_file}"]
        for name, info in self.probes.items():
            details = ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("path", "kind"))
            lines.append(f"  {name}: {details}")
        lines.append(f"next: vfx shot show {self.shot_file}")
        return "\n".join(lines)
