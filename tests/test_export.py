"""Tests for vfx.export.comp (the compositor package) and vfx.export.review (the review video).

Every shot here is fabricated: a tiny plate (half EXR in ACEScg at 24000/1001 with a separate tone file, an
8-bit sRGB PNG sequence at 25, an H.264 clip with sound at 25) and rendered frames written through the
rendered-frame contract, with a synthetic "face" (a colour blob under a soft disc matte, exactly 0 outside
the disc) on every frame but one. The package is then rebuilt by reading its Nuke script and evaluating the
graph it describes in numpy, independently of :func:`vfx.export.comp.rebuild_frame`.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vfx.align.similarity import compose
from vfx.errors import MediaError
from vfx.export import (
    CompPackageSummary,
    RenderInfo,
    frame_timecode,
    read_rendered_frame,
    rebuild_frame,
    write_comp_package,
    write_rendered_frame,
    write_review,
)
from vfx.export.comp import EMPTY_WINDOW, MATTE_CHANNEL, SCHEMA, TRANSFORMS_SCHEMA
from vfx.export.review import to_display_uint8
from vfx.io.color import WORKING_SPACE, ColorConverter, DisplayView, to_working
from vfx.io.ffmpeg import find_ffmpeg
from vfx.io.image import ExrMetadata, Image, Window, read_image, write_image
from vfx.io.plate import open_media, open_plate
from vfx.io.video import VideoReader, probe_video
from vfx.shot import FrameRange, load_shot, save_shot
from vfx.shot.schema import OutputsConfig, PlateConfig, ReviewOptions, Shot

SIZE = (48, 64)  # (height, width)
FRAMES = FrameRange.from_bounds(1001, 1004)
NO_FACE = 1003
CROP = 32
KINDS = {  # kind -> (fps, colour space)
    "exr": (Fraction(24000, 1001), "ACEScg"),
    "png": (Fraction(25), "sRGB Encoded Rec.709 (sRGB)"),
    "mp4": (Fraction(25), "sRGB Encoded Rec.709 (sRGB)"),
}


# ----------------------------------------------------------------------------------------------- fabrication


def _ffmpeg(*args: str) -> None:
    proc = subprocess.run([find_ffmpeg(), "-hide_banner", "-nostdin", "-y", *args], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]


def _matrix(frame: int) -> np.ndarray:
    """A plate -> crop similarity (scale 0.8, a small rotation) centred on the frame's face."""
    cy, cx = _face_centre(frame)
    angle, scale = math.radians(5 + frame % 7), 0.8
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    linear = np.array([[c, -s], [s, c]])
    return np.concatenate([linear, (np.array([CROP / 2, CROP / 2]) - linear @ [cx, cy])[:, None]], axis=1)


def _face_centre(frame: int) -> tuple[float, float]:
    return 22.0 + 2 * (frame - FRAMES.first), 30.0 + 3 * (frame - FRAMES.first)


def _soft_disc(frame: int) -> np.ndarray:
    """(H, W) matte: 1 inside, a soft edge, exactly 0 beyond radius 11 (and empty on NO_FACE)."""
    if frame == NO_FACE:
        return np.zeros(SIZE, np.float32)
    yy, xx = np.mgrid[0:SIZE[0], 0:SIZE[1]].astype(np.float32)
    cy, cx = _face_centre(frame)
    radius = np.hypot(yy - cy, xx - cx)
    return np.clip((11.0 - radius) / 4.0, 0.0, 1.0).astype(np.float32)


def _plate_pixels(kind: str, frame: int) -> np.ndarray:
    rng = np.random.default_rng(frame)
    yy, xx = np.mgrid[0:SIZE[0], 0:SIZE[1]].astype(np.float32)
    base = np.stack([xx / SIZE[1], yy / SIZE[0], np.full_like(xx, 0.3)], axis=-1)
    pixels = base + rng.normal(0, 0.02, base.shape).astype(np.float32)
    scale = 1.8 if kind == "exr" else 1.0  # scene-linear highlights above 1 for the EXR plate
    return np.clip(pixels * scale, 0.0, None if kind == "exr" else 1.0).astype(np.float32)


def _make_plate(root: Path, kind: str) -> tuple[Path, Path | None]:
    """The plate on disk (and a separate audio file for the EXR plate)."""
    fps, colorspace = KINDS[kind]
    if kind == "mp4":
        plate = root / "plates" / "sh010.mp4"
        plate.parent.mkdir(parents=True)
        _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={SIZE[1]}x{SIZE[0]}:rate=25", "-f", "lavfi", "-i",
                "sine=frequency=440:sample_rate=48000", "-frames:v", str(len(FRAMES)), "-t", "0.16",
                "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(plate))
        return plate, None
    ext = "exr" if kind == "exr" else "png"
    pattern = root / "plates" / f"sh010.####.{ext}"
    for frame in FRAMES:
        path = Path(str(pattern).replace("####", f"{frame:04d}"))
        if kind == "exr":
            write_image(path, _plate_pixels(kind, frame), channels=("R", "G", "B"), dtype="half",
                        metadata=ExrMetadata(fps=fps, colorspace=colorspace))
        else:
            write_image(path, _plate_pixels(kind, frame), channels=("R", "G", "B"), dtype="uint8")
    if kind != "exr":
        return pattern, None
    tone = root / "audio" / "sh010.m4a"
    tone.parent.mkdir()
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=48000:duration=1", "-c:a", "aac", str(tone))
    return pattern, tone


def _make_shot(root: Path, kind: str) -> Shot:
    """A saved and reloaded shot file with its plate and rendered frames (what `vfx swap` leaves)."""
    fps, colorspace = KINDS[kind]
    plate_path, audio = _make_plate(root, kind)
    shot = Shot(
        name="sh010",
        plate=PlateConfig(path=plate_path.relative_to(root), fps=fps, colorspace=colorspace,
                          audio=None if audio is None else audio.relative_to(root)),
        outputs=OutputsConfig(exr=Path("out/sh010_swap.####.exr"), review=Path("out/sh010_review.mp4"),
                              comp_package=Path("out/sh010_comp")),
    )
    save_shot(shot, root / "sh010.yaml")
    shot = load_shot(root / "sh010.yaml")
    plate, frames = open_plate(shot.plate)
    colour = np.array([0.9, 0.35, 0.2], np.float32) * (1.5 if kind == "exr" else 1.0)
    with plate:
        assert frames == FRAMES and plate.size == SIZE
        for frame in frames:
            rgb = plate.read(frame).rgb()
            matte = _soft_disc(frame)
            beauty = rgb * (1 - matte[:, :, None]) + colour * matte[:, :, None]
            rows, cols = np.nonzero(matte)
            face = frame != NO_FACE
            info = RenderInfo(frame=frame, persona="hopper", model="runs/sh010@10", blend="enhanced",
                              matrix=_matrix(frame) if face else None, crop_size=CROP,
                              face_box=(int(rows.min()), int(cols.min()), int(rows.max()) + 1,
                                        int(cols.max()) + 1) if face else None)
            write_rendered_frame(Path(str(shot.outputs.exr).replace("####", str(frame))), beauty, matte, info,
                                 timecode=frame_timecode(frame, plate.fps), fps=plate.fps,
                                 colorspace=plate.colorspace, shot_hash=shot.content_hash())
    return shot


@dataclass(frozen=True)
class Packaged:
    kind: str
    shot: Shot
    summary: CompPackageSummary

    @property
    def fps(self) -> Fraction:
        return KINDS[self.kind][0]


@pytest.fixture(scope="module", params=sorted(KINDS))
def packaged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    """One shot of each plate kind, packaged once."""
    shot = _make_shot(tmp_path_factory.mktemp(request.param), request.param)
    return Packaged(request.param, shot, write_comp_package(shot, progress=False))


@pytest.fixture()
def exr_shot(tmp_path: Path) -> Shot:
    return _make_shot(tmp_path, "exr")


# ------------------------------------------------------------------------------------- a reader of .nk scripts


def _unquote(value: str) -> str:
    if value.startswith('"') and value.endswith('"'):
        value = value[1:-1]
    out, chars = [], iter(value)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            out.append("\n" if nxt == "n" else nxt)
        else:
            out.append(ch)
    return "".join(out)


def _parse_nk(text: str) -> list[tuple[str, dict[str, str]]]:
    """(class, knobs) of each node block, in file order (one knob per line, as vfx writes them)."""
    nodes: list[tuple[str, dict[str, str]]] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if current is None and line.endswith(" {"):
            current = {}
            nodes.append((line[:-2], current))
        elif current is not None and line == "}":
            current = None
        elif current is not None:
            key, _, value = line.strip().partition(" ")
            current[key] = _unquote(value)
    return nodes


def _braces_balance(text: str) -> bool:
    depth, chars = 0, iter(text)
    for ch in chars:
        if ch == "\\":
            next(chars, None)  # an escaped character is literal
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _graph(nodes: list[tuple[str, dict[str, str]]]) -> dict[str, tuple[str, dict[str, str], list[str]]]:
    """Wire the nodes the way Nuke's script stack does: a node pops ``inputs`` items (the top one becomes input
    0) and pushes itself. Returns name -> (class, knobs, input names)."""
    stack: list[str] = []
    graph = {}
    for cls, knobs in nodes:
        if cls == "Root":
            continue
        inputs = [stack.pop() for _ in range(int(knobs.get("inputs", "1")))]
        graph[knobs["name"]] = (cls, knobs, inputs)
        stack.append(knobs["name"])
    return graph


def _evaluate(graph: dict[str, Any], name: str, frame: int, script_dir: Path) -> Image:
    """One frame of a node: Read and Merge2 (over) are all the package script uses. Images are placed on
    their display window, so the patch's data window is honoured independently of rebuild_frame."""
    cls, knobs, inputs = graph[name]
    if cls == "Read":
        path = Path(knobs["file"])
        path = path if path.is_absolute() else script_dir / path
        if "####" in path.name:
            image = read_image(Path(str(path).replace("####", f"{frame:04d}")))
            return Image(image.in_display_window(), image.channels)
        with open_media(path, start_frame=int(knobs["frame"])) as video:
            return Image(video.read(frame).rgb(), ("R", "G", "B"))
    assert cls == "Merge2" and knobs["operation"] == "over" and len(inputs) == 2
    b, a = (_evaluate(graph, n, frame, script_dir) for n in inputs)  # input 0 is B, input 1 is A
    alpha = a.channel("A")[:, :, None]
    return Image(a.rgb() + b.rgb() * (1 - alpha), ("R", "G", "B"))


# --------------------------------------------------------------------------------------------- the package


def test_nuke_graph_rebuilds_every_rendered_frame(packaged: Packaged) -> None:
    shot, summary = packaged.shot, packaged.summary
    layout = summary.layout
    graph = _graph(_parse_nk(layout.nuke_script.read_text()))
    write = next(n for n, (cls, _, _) in graph.items() if cls == "Write")
    merge = graph[write][2][0]
    for frame in FRAMES:
        rendered = read_rendered_frame(Path(str(shot.outputs.exr).replace("####", str(frame))))
        comp = _evaluate(graph, merge, frame, layout.nuke_script.parent).rgb()
        assert comp.shape == (*SIZE, 3)
        np.testing.assert_allclose(comp, rendered.rgb, atol=1e-3, rtol=0, err_msg=f"frame {frame}")
        patch = read_image(layout.patch.path(frame))
        with open_plate(shot.plate)[0] as plate:
            rebuilt = rebuild_frame(plate.read(frame).rgb(), patch.pixels, patch.data_window)
        np.testing.assert_allclose(rebuilt, comp, atol=1e-6, rtol=0)


def test_patch_and_matte_hold_only_the_matte_box(packaged: Packaged) -> None:
    shot, summary = packaged.shot, packaged.summary
    layout = summary.layout
    display = Window(0, 0, *SIZE)
    for frame in FRAMES:
        rendered = read_rendered_frame(Path(str(shot.outputs.exr).replace("####", str(frame))))
        patch, matte = read_image(layout.patch.path(frame)), read_image(layout.matte.path(frame))
        assert patch.channels == ("R", "G", "B", "A") and patch.pixel_type == "float"
        assert matte.channels == (MATTE_CHANNEL,)
        assert patch.display_window == matte.display_window == display
        rows, cols = np.nonzero(rendered.matte)
        if frame == NO_FACE:
            assert rows.size == 0 and patch.data_window == matte.data_window == EMPTY_WINDOW
            assert not patch.pixels.any() and not matte.pixels.any()
            continue
        box = Window(int(rows.min()), int(cols.min()), int(np.ptp(rows)) + 1, int(np.ptp(cols)) + 1)
        assert patch.data_window == matte.data_window == box
        region = np.s_[box.y:box.y + box.height, box.x:box.x + box.width]
        np.testing.assert_array_equal(patch.channel("A"), rendered.matte[region])
        np.testing.assert_array_equal(matte.channel(MATTE_CHANNEL), rendered.matte[region])
        assert not patch.rgb()[rendered.matte[region] == 0].any()  # premultiplied: no colour where A is 0


def test_transforms_round_trip_and_invert(packaged: Packaged) -> None:
    shot, summary = packaged.shot, packaged.summary
    data = json.loads(summary.layout.transforms.read_text())
    fps = packaged.fps
    assert data["schema"] == TRANSFORMS_SCHEMA and data["shot"] == "sh010"
    assert data["shot_hash"] == shot.content_hash()
    assert data["plate_size"] == {"height": SIZE[0], "width": SIZE[1]} and data["crop_size"] == CROP
    assert data["fps"] == f"{fps.numerator}/{fps.denominator}"
    assert sorted(data["frames"]) == [str(f) for f in FRAMES]
    assert data["frames"][str(NO_FACE)] is None
    for frame in FRAMES:
        if frame == NO_FACE:
            continue
        entry = data["frames"][str(frame)]
        np.testing.assert_allclose(entry["plate_to_crop"], _matrix(frame), atol=1e-8)
        np.testing.assert_allclose(compose(np.array(entry["plate_to_crop"]), np.array(entry["crop_to_plate"])),
                                   np.eye(2, 3), atol=1e-9)
        extra = read_image(summary.layout.patch.path(frame)).exr_metadata.extra
        assert json.loads(extra["plate_to_crop"]) == entry["plate_to_crop"]
        assert json.loads(extra["crop_to_plate"]) == entry["crop_to_plate"]
        assert "synthetic" in extra["synthetic"]
    assert summary.no_face == (NO_FACE,)


def test_nuke_script_reads_plate_and_patch_and_writes_the_comp(packaged: Packaged) -> None:
    shot, summary = packaged.shot, packaged.summary
    text = summary.layout.nuke_script.read_text()
    assert _braces_balance(text)
    nodes = _parse_nk(text)
    root = dict(nodes)["Root"]
    assert (root["first_frame"], root["last_frame"]) == ("1001", "1004")
    assert root["format"] == f"{SIZE[1]} {SIZE[0]} 0 0 {SIZE[1]} {SIZE[0]} 1 sh010_plate"
    assert root["fps"] == {"exr": "23.97602398"}.get(packaged.kind, "25")
    assert "script_directory" in root["project_directory"]
    graph = _graph(nodes)
    _, write, (merge,) = graph["Write_comp"]
    assert write["file"] == "render/sh010_comp.####.exr" and (write["first"], write["last"]) == ("1001", "1004")
    assert write["raw"] == "true" and write["channels"] == "rgba"
    assert graph[merge][0] == "Merge2" and graph[merge][1]["operation"] == "over"
    b, a = graph[merge][2]
    assert (b, a) == ("Read_plate", "Read_patch")  # B (input 0) is the plate, A (input 1) the patch
    plate_read, patch_read = graph["Read_plate"][1], graph["Read_patch"][1]
    assert patch_read["file"] == "patch/sh010_patch.####.exr" and patch_read["raw"] == "true"
    assert (patch_read["first"], patch_read["last"]) == ("1001", "1004")
    assert Path(plate_read["file"]).is_absolute() and plate_read["raw"] == "true"
    if shot.plate.is_sequence:
        assert plate_read["file"] == str(shot.plate.path)
        assert (plate_read["first"], plate_read["last"]) == ("1001", "1004")
    else:
        assert plate_read["file"] == str(shot.plate.path) and plate_read["frame_mode"] == "start at"
        assert (plate_read["first"], plate_read["last"], plate_read["frame"]) == ("1", "4", "1001")
    manifest = json.loads(summary.layout.manifest.read_text())
    assert manifest["schema"] == SCHEMA and manifest["shot_hash"] == shot.content_hash()
    assert manifest["frames"] == "1001-1004" and "synthetic face" in manifest["notice"]
    assert manifest["files"]["patch"] == patch_read["file"] and manifest["files"]["nuke_script"] == "sh010.nk"


def test_rerun_writes_nothing(packaged: Packaged) -> None:
    shot, summary = packaged.shot, packaged.summary
    folder = summary.layout.folder
    before = {p: p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}
    again = write_comp_package(shot, progress=False)
    assert (again.written, again.skipped) == (0, len(FRAMES)) and again.frames == summary.frames
    assert {p: p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))} == before


def test_resume_rewrites_only_stale_frames(exr_shot: Shot) -> None:
    layout = write_comp_package(exr_shot, progress=False).layout
    layout.patch.path(1002).unlink()
    rendered = Path(str(exr_shot.outputs.exr).replace("####", "1004"))
    earlier = rendered.stat().st_mtime_ns - 10**9
    os.utime(layout.matte.path(1004), ns=(earlier, earlier))  # as if frame 1004 was re-rendered since
    kept = layout.patch.path(1001).stat().st_mtime_ns
    summary = write_comp_package(exr_shot, progress=False)
    assert (summary.written, summary.skipped) == (2, 2)
    assert layout.patch.path(1002).is_file() and layout.matte.path(1004).stat().st_mtime_ns > earlier
    assert layout.patch.path(1001).stat().st_mtime_ns == kept
    assert write_comp_package(exr_shot, progress=False).written == 0


def test_chunks_add_up_to_one_package(exr_shot: Shot) -> None:
    first = write_comp_package(exr_shot, frames=FrameRange.parse("1001-1002"), progress=False)
    assert str(first.frames) == "1001-1002"
    second = write_comp_package(exr_shot, frames=FrameRange.parse("1003-1004"), progress=False)
    assert second.frames == FRAMES and second.written == 2
    data = json.loads(second.layout.transforms.read_text())
    assert sorted(data["frames"]) == [str(f) for f in FRAMES]
    assert "last_frame 1004" in second.layout.nuke_script.read_text()


def test_missing_rendered_frames_are_named(exr_shot: Shot) -> None:
    Path(str(exr_shot.outputs.exr).replace("####", "1002")).unlink()
    with pytest.raises(MediaError, match="1002") as err:
        write_comp_package(exr_shot, progress=False)
    assert "vfx swap" in str(err.value) and err.value.exit_code == 2
    with pytest.raises(MediaError, match="vfx swap"):
        write_review(exr_shot)
    assert not Path(str(exr_shot.outputs.comp_package)).exists()


# ---------------------------------------------------------------------------------------------- the review


def test_review_keeps_frames_fps_audio_and_timecode(packaged: Packaged, tmp_path: Path) -> None:
    shot = packaged.shot
    info = write_review(shot)
    assert info.path == shot.outputs.review and info.codec == "h264"
    assert info.frame_count == len(FRAMES) and info.fps == packaged.fps
    assert info.size == SIZE
    assert info.has_audio == (packaged.kind != "png")
    assert info.timecode == frame_timecode(FRAMES.first, packaged.fps)
    # without burn-ins the picture is the rendered frame through the config's default display/view (H.264 is
    # lossy: compare on average)
    clean = write_review(shot, tmp_path / "clean.mp4", options=ReviewOptions(burn_ins=False))
    with VideoReader(str(clean.path), start_frame=FRAMES.first) as reader:
        shown = reader.read(1002).astype(np.float32) / 255
    rendered = read_rendered_frame(Path(str(shot.outputs.exr).replace("####", "1002")))
    expected = np.clip(DisplayView(shot.plate.colorspace).apply(rendered.rgb), 0, 1)
    assert float(np.abs(shown - expected).mean()) < 0.03


def test_side_by_side_review_doubles_the_width(packaged: Packaged) -> None:
    shot = packaged.shot
    info = write_review(shot, side_by_side=True)
    assert info.path.name == "sh010_review_side_by_side.mp4"
    assert info.size == (SIZE[0], 2 * SIZE[1]) and info.frame_count == len(FRAMES)


def test_review_of_a_later_range_keeps_its_audio(packaged: Packaged, tmp_path: Path) -> None:
    shot = packaged.shot
    if shot.plate.audio_source is None:
        pytest.skip("a plate without sound")
    info = write_review(shot, tmp_path / "later.mp4", FrameRange.parse("1002-1004"))
    assert info.frame_count == 3 and info.has_audio
    assert info.timecode == frame_timecode(1002, packaged.fps)
    assert probe_video(info.path).frame_count == 3


def test_display_frames_are_padded_to_an_even_size() -> None:
    converter = ColorConverter("ACEScg", WORKING_SPACE)
    codes = to_display_uint8(np.full((5, 7, 3), 0.18, np.float32), converter)
    assert codes.shape == (6, 8, 3) and codes.dtype == np.uint8
    grey = float(to_working(np.full((1, 1, 3), 0.18, np.float32), "ACEScg")[0, 0, 0])
    assert int(codes[-1, -1, 0]) == int(codes[0, 0, 0]) == round(grey * 255)
