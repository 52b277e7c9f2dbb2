"""The bad-input suite: what a tired artist at 2 a.m. (or someone reading files they should not) hands every
command, each refused the way the README promises.

Every case runs the CLI in-process on a copy-free world (the demo shot with a tiny model, swapped once) and
asserts: exit code 2; a message that says what was expected, what was found and how to fix it (or, for an
option typer itself rejects, its "Invalid value" line); no traceback; nothing new or changed on disk in the
world or the case's folder; the inputs byte for byte unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from vfx.cli import entrypoint
from vfx.io.image import read_image, write_image

World = dict[str, Path]


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file under ``folders`` (symlinks as their target's name) by path, with its content hash."""
    seen: dict[str, str] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink():
                seen[str(path)] = "-> " + os.readlink(path)
            elif path.is_file():
                seen[str(path)] = hashlib.sha1(path.read_bytes()).hexdigest()
            elif path.is_dir():
                seen[str(path)] = "dir"
    return seen


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    """The 8-frame 128² demo shot with a tiny untrained model (32², width 0.05), swapped once: its rendered
    frames, the plate's tracked faces and its review exist, as on a shot mid-production."""
    from tests.test_swap import save_tiny_model
    from vfx.demo import build_demo
    from vfx.shot import load_shot

    folder = tmp_path_factory.mktemp("world")
    result = build_demo(folder, num_frames=8, size=128)
    save_tiny_model(folder / "models" / "tiny")
    data = yaml.safe_load(result.shot_file.read_text())
    data["model"] = {"checkpoint": "models/tiny", "resolution": 32, "width": 0.05}
    data["edit_options"] = {"refine_steps": 1, "keyframe_steps": 2, "seg_head_steps": 2}
    data["retouch_options"] = {"resolution": 64, "refiner": False}
    data["outputs"]["comp_package"] = None
    good = folder / "good.yaml"
    good.write_text(yaml.safe_dump(data, sort_keys=False))
    load_shot(good)
    assert entrypoint(["swap", str(good), "--device", "cpu", "--workers", "1"]) == 0
    faceset = folder / "hopper_faces"
    assert entrypoint(["extract", str(folder / "media" / "hopper.mp4"), "--out", str(faceset), "--size", "64",
                       "--workers", "1", "--frames", "1001-1003", "--jitter-shifts", "0", "--min-face-px", "40"]) == 0
    return {"root": folder, "good": good, "faceset": faceset, "model": folder / "models" / "tiny"}


# ---------------------------------------------------------------------------------------------- helpers

def variant(world: World, case: Path, change: Callable[[dict], None], name: str = "shot.yaml") -> Path:
    """A copy of the good shot in the case folder, changed by ``change`` (paths made absolute to the world)."""
    data = yaml.safe_load(world["good"].read_text())
    root = world["root"]
    data["plate"]["path"] = str(root / data["plate"]["path"])
    data["plate"]["audio"] = str(root / data["plate"]["audio"])
    for persona in data["personas"].values():
        if persona.get("footage"):
            persona["footage"] = str(root / persona["footage"])
    data["model"]["checkpoint"] = str(root / data["model"]["checkpoint"])
    data["outputs"] = {"exr": str(case / "out" / "sh.####.exr"), "review": str(case / "out" / "sh.mp4")}
    data["_world_exr"] = str(root / "out" / "demo_swap_v001.####.exr")  # the world's swapped frames
    change(data)
    del data["_world_exr"]
    path = case / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def copy_plate(world: World, case: Path) -> Path:
    """The plate's EXR frames copied into the case folder (to break one); returns its pattern."""
    plates = case / "plates"
    shutil.copytree(world["root"] / "plates", plates)
    return plates / "astronaut.####.exr"


def with_plate(world: World, case: Path, broken: Callable[[Path], None]) -> Path:
    """A shot whose plate is a copy with one frame broken by ``broken(frame_1005_path)``."""
    pattern = copy_plate(world, case)
    broken(Path(str(pattern).replace("####", "1005")))
    return variant(world, case, lambda d: d["plate"].update(path=str(pattern)))


def write_nan(path: Path) -> None:
    import OpenImageIO as oiio

    pixels = read_image(path).pixels.copy()
    pixels[10, 10, 1] = np.nan
    out = oiio.ImageOutput.create(str(path))
    out.open(str(path), oiio.ImageSpec(pixels.shape[1], pixels.shape[0], pixels.shape[2], "half"))
    out.write_image(pixels)
    out.close()


def write_smaller(path: Path) -> None:
    image = read_image(path)
    write_image(path, image.pixels[:64, :64], channels=image.channels, dtype="half")


def png_sequence(case: Path, sizes: list[int]) -> str:
    folder = case / "pngs"
    folder.mkdir()
    for index, size in enumerate(sizes):
        write_image(folder / f"f.{1001 + index:04d}.png", np.full((size, size, 3), 0.5, np.float32),
                    channels=("R", "G", "B"), dtype="uint8")
    return str(folder / "f.####.png")


def checkpoint_copy(world: World, case: Path, damage: Callable[[Path], None]) -> Path:
    """A copy of the tiny model in the case folder, damaged by ``damage(step_folder)``; returns a shot using it."""
    run = case / "model"
    shutil.copytree(world["model"], run)
    step = sorted(run.glob("step_*"))[-1]
    damage(step)
    return variant(world, case, lambda d: d["model"].update(checkpoint=str(run)))


def truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 3])


def foreign_weights(step: Path) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({"conv.weight": torch.zeros(3, 3)}, str(step / "model.safetensors"))


def misshaped_weights(step: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(step / "model.safetensors"), "pt") as handle:
        metadata = handle.metadata()  # its schema stamp kept: only one tensor's shape is wrong
    tensors = load_file(str(step / "model.safetensors"))
    name = sorted(tensors)[0]
    tensors[name] = tensors[name].flatten()[:1].clone()
    save_file(tensors, str(step / "model.safetensors"), metadata=metadata)


def edit_manifest(step: Path, change: Callable[[dict], None]) -> None:
    manifest = json.loads((step / "manifest.json").read_text())
    change(manifest)
    (step / "manifest.json").write_text(json.dumps(manifest))


def read_only_folder() -> str:
    """A folder no one can write in, even root: under /proc."""
    return "/proc/1/vfx_out"


def symlinked_plate_output(world: World, case: Path) -> Path:
    (case / "link").symlink_to(world["root"] / "plates")
    return variant(world, case, lambda d: d["outputs"].update(exr=str(case / "link" / "astronaut.%04d.exr")))


def text(case: Path, name: str, content: str | bytes) -> Path:
    path = case / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def retouch(edits: list) -> Callable[[dict], None]:
    return lambda d: d.update(retouch=edits)


# ---------------------------------------------------------------------------------------------- cases

# Each case: (id, prep(world, case) -> dict of names for the argv, argv, words the message must hold).
# The argv names {good}, {root}, {case}, {shot}, {media}, {x} (anything prep returns) are filled in.
Prep = Callable[[World, Path], dict]


def none(world: World, case: Path) -> dict:
    return {}


def shot(change: Callable[[dict], None]) -> Prep:
    return lambda w, c: {"shot": variant(w, c, change)}


def plate_broken(broken: Callable[[Path], None]) -> Prep:
    return lambda w, c: {"shot": with_plate(w, c, broken)}


def model_broken(damage: Callable[[Path], None]) -> Prep:
    return lambda w, c: {"shot": checkpoint_copy(w, c, damage)}


def tracked(change: Callable[[dict], None]) -> Prep:
    """A changed shot whose plate's faces are already tracked (the world's cache copied beside its outputs)."""
    def prep(w: World, c: Path) -> dict:
        shutil.copytree(w["root"] / "out" / "demo_plate_faces", c / "out" / "demo_plate_faces")
        return {"shot": variant(w, c, change)}
    return prep


def faceset_copies(change: Callable[[list[dict]], None]) -> Prep:
    """Two copies of the world's faceset as training personas, the first's index changed by ``change``."""
    def prep(w: World, c: Path) -> dict:
        for name in ("a", "b"):
            shutil.copytree(w["faceset"], c / name)
        index = c / "a" / "index.jsonl"
        records = [json.loads(line) for line in index.read_text().splitlines()]
        change(records)
        index.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
        return {}
    return prep


def foreign_vector(w: World, c: Path) -> dict:
    import torch
    from safetensors.torch import save_file

    vector = c / "v.vfxedit"
    vector.mkdir()
    save_file({"weights": torch.zeros(4)}, str(vector / "delta.safetensors"))
    (vector / "edit.json").write_text(json.dumps({"schema": "vfx.EditVector/1", "persona": "hopper"}))
    return {"x": vector}


def run_copy(damage: Callable[[Path], None]) -> Prep:
    def prep(w: World, c: Path) -> dict:
        shutil.copytree(w["model"], c / "model")
        damage(sorted((c / "model").glob("step_*"))[-1])
        return {"x": c / "model"}
    return prep


def file_in(name: str, content: str | bytes = "x") -> Prep:
    return lambda w, c: {"x": text(c, name, content)}


def cut(clip: str, first: int, count: int) -> Prep:
    """A shot whose frames come from an OTIO cut holding one clip ``clip`` over frames ``first``.. (24 fps)."""
    import opentimelineio as otio

    def prep(w: World, c: Path) -> dict:
        timeline = otio.schema.Timeline(name="reel1")
        track = otio.schema.Track(name="V1")
        track.append(otio.schema.Clip(name=clip, source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(first, 24), otio.opentime.RationalTime(count, 24))))
        timeline.tracks.append(track)
        otio.adapters.write_to_file(timeline, str(c / "cut.otio"))

        def change(d: dict) -> None:
            d["plate"].pop("frames", None)
            d["plate"]["edit"] = str(c / "cut.otio")
        return {"shot": variant(w, c, change)}
    return prep


def video_plate(change: Callable[[dict], None]) -> Prep:
    """A shot on the demo's astronaut movie, changed by ``change``."""
    def prep(w: World, c: Path) -> dict:
        def on_video(d: dict) -> None:
            d["plate"] = {"path": str(w["root"] / "media" / "astronaut.mp4")}
            change(d)
        return {"shot": variant(w, c, on_video)}
    return prep


CASES: list[tuple[str, Prep, list[str], str]] = [
    # --- issue 18: plates, dailies, review page, OTIO, farm placement
    ("export-unknown-display", none, ["export", "{good}", "--display", "Cinema 4K"], "sRGB - Display"),
    ("export-unknown-view", none, ["export", "{good}", "--view", "Filmic"], "ACES 2.0 - SDR 100 nits"),
    ("export-prores-in-mp4", none, ["export", "{good}", "--codec", "prores4444"], ".mov"),
    ("swap-unknown-view-in-shot", shot(lambda d: d.update(review={"view": "Filmic"})),
     ["swap", "{shot}", "--device", "cpu"], "view"),
    ("swap-review-codec-container", shot(lambda d: d.update(review={"codec": "dnxhr_hq"})),
     ["swap", "{shot}", "--device", "cpu"], ".mov"),
    ("export-otio-not-otio", none, ["export", "{good}", "--otio", "{case}/timeline.txt"], ".otio"),
    ("shot-cut-outside-plate", cut("demo", 2000, 10), ["shot", "validate", "{shot}"], "outside"),
    ("shot-cut-without-the-clip", cut("sh999", 1001, 4), ["shot", "validate", "{shot}"], "sh999"),
    ("swap-cut-outside-plate", cut("demo", 990, 20), ["swap", "{shot}", "--device", "cpu"], "outside"),
    ("swap-video-pixel-aspect-disagrees", video_plate(lambda d: d["plate"].update(pixel_aspect=2.0)),
     ["swap", "{shot}", "--device", "cpu"], "container"),
    ("review-not-rendered", shot(lambda d: None), ["review", "{shot}"], "vfx swap"),
    # --- issue 19: real shots
    ("shot-skip-unknown-flag", shot(lambda d: d["swap"].update(skip=["sideways"])), ["shot", "validate", "{shot}"],
     "profile"),
    ("shot-cuts-outside-plate", shot(lambda d: d["plate"].update(cuts=[1004, 2000])), ["shot", "validate", "{shot}"],
     "outside the plate"),
    ("swap-cuts-outside-plate", shot(lambda d: d["plate"].update(cuts="900")), ["swap", "{shot}", "--device", "cpu"],
     "outside the plate"),
    ("extract-bad-cuts", none, ["extract", "{root}/media/hopper.mp4", "--out", "{case}/f", "--cuts", "soon"],
     "frame"),
    ("farm-export-bad-priority", none, ["farm", "export", "{good}", "--to", "deadline", "{case}/jobs",
                                        "--priority", "101"], "priority"),
    ("farm-export-bad-pool", none, ["farm", "export", "{good}", "--to", "deadline", "{case}/jobs",
                                    "--pool", "rush; rm -rf"], "pool"),
    # --- probe
    ("probe-missing", none, ["probe", "{case}/missing.mp4"], "not found"),
    ("probe-directory", lambda w, c: {"x": (c / "d.mp4").mkdir() or c / "d.mp4"}, ["probe", "{x}"], "directory"),
    ("probe-text-as-video", file_in("notes.mp4", "not a video\n"), ["probe", "{x}"], "video"),
    ("probe-zero-byte-exr", file_in("empty.exr", b""), ["probe", "{x}"], "cannot read"),
    ("probe-truncated-video", lambda w, c: {"x": text(c, "half.mp4", (w["root"] / "media" / "hopper.mp4")
                                                 .read_bytes()[:20000])}, ["probe", "{x}"], "truncated"),
    ("probe-nan-exr", lambda w, c: {"x": (shutil.copy(w["root"] / "plates" / "astronaut.1001.exr", c / "n.exr"),
                                          write_nan(c / "n.exr"), c / "n.exr")[2]}, ["probe", "{x}"], "NaN"),
    ("probe-file-named-like-a-url", file_in("concat:a.mp4|a.mp4", "not a video\n"), ["probe", "{x}"], "video"),
    ("probe-url-name", none, ["probe", "concat:{case}/a.mp4|{case}/a.mp4"], "not found"),
    ("probe-bad-start-frame", none, ["probe", "{case}/x.####.exr", "--start-frame", "ten"], "invalid value"),
    # --- shot validate: the file itself
    ("shot-empty", file_in("s.yaml", ""), ["shot", "validate", "{x}"], "empty"),
    ("shot-not-yaml", file_in("s.yaml", "plate: [unclosed\n  : :"), ["shot", "validate", "{x}"], "yaml"),
    ("shot-a-list", file_in("s.yaml", "- plate\n- name\n"), ["shot", "validate", "{x}"], "mapping"),
    ("shot-binary", file_in("s.yaml", b"\xff\xfe\x00garbage\x00"), ["shot", "validate", "{x}"], "utf-8"),
    ("shot-missing-file", none, ["shot", "validate", "{case}/nope.yaml"], "does not exist"),
    ("shot-a-folder", lambda w, c: {"x": (c / "d.yaml").mkdir() or c / "d.yaml"}, ["shot", "validate", "{x}"],
     "directory"),
    ("shot-unknown-field", shot(lambda d: d.update(shot_colour="red")), ["shot", "validate", "{shot}"],
     "shot_colour"),
    ("shot-duplicate-key", file_in("s.yaml", "schema: vfx.Shot/1\nname: a\nname: b\nplate: {path: p.mp4}\n"),
     ["shot", "validate", "{x}"], "twice"),
    ("shot-alias-bomb", file_in("s.yaml", "schema: vfx.Shot/1\nname: a\nplate: {path: p.mp4}\n"
                                + "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
                                + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n"
                                          for i in range(1, 9))
                                + "retouch: *a8\n"), ["shot", "validate", "{x}"], "alias"),
    ("shot-huge", lambda w, c: {"x": text(c, "s.yaml", "name: a\n" + "# padding\n" * 3_000_000)},
     ["shot", "validate", "{x}"], "MB"),
    ("shot-bad-name", shot(lambda d: d.update(name="../../etc")), ["shot", "validate", "{shot}"], "name"),
    ("shot-typo-group", shot(retouch([{"group": "mouht", "move": [0.01, 0]}])), ["shot", "validate", "{shot}"],
     "did you mean 'mouth'"),
    ("shot-negative-resolution", shot(lambda d: d["model"].update(resolution=-64)), ["shot", "validate", "{shot}"],
     "resolution"),
    ("shot-zero-width", shot(lambda d: d["model"].update(width=0)), ["shot", "validate", "{shot}"], "width"),
    ("shot-zero-fps", shot(lambda d: d["plate"].update(fps=0)), ["shot", "validate", "{shot}"], "fps"),
    ("shot-huge-chunk", shot(lambda d: d.update(farm={"chunk_size": 10**30})), ["shot", "validate", "{shot}"],
     "chunk_size"),
    ("shot-negative-track", shot(lambda d: d["swap"].update(track=-1)), ["shot", "validate", "{shot}"], "track"),
    ("shot-reversed-frames", shot(lambda d: d["plate"].update(frames="1008-1001")), ["shot", "validate", "{shot}"],
     "frames"),
    ("shot-unknown-persona", shot(lambda d: d["swap"].update(persona="nobody")), ["shot", "validate", "{shot}"],
     "nobody"),
    ("shot-nan-blur", shot(lambda d: d["blend"].update(mask_blur_sigma_px=float("nan"))),
     ["shot", "validate", "{shot}"], "mask_blur_sigma_px"),
    ("shot-absurd-refine-steps", shot(lambda d: d["edit_options"].update(refine_steps=10**12)),
     ["shot", "validate", "{shot}"], "refine_steps"),
    ("shot-unknown-colorspace", shot(lambda d: d["plate"].update(colorspace="Kodak 5219")),
     ["shot", "validate", "{shot}"], "colo"),
    # --- shot validate: the media it names
    ("shot-frames-outside", shot(lambda d: d["plate"].update(frames="1001-1100")), ["shot", "validate", "{shot}"],
     "outside"),
    ("shot-missing-plate", shot(lambda d: d["plate"].update(path="/nonexistent/plate.####.exr")),
     ["shot", "validate", "{shot}"], "no frames"),
    ("shot-missing-footage", shot(lambda d: d["personas"]["hopper"].update(footage="/nonexistent/h.mp4")),
     ["shot", "validate", "{shot}"], "not found"),
    ("shot-zero-byte-frame", plate_broken(lambda f: f.write_bytes(b"")), ["shot", "validate", "{shot}"],
     "cannot read"),
    ("shot-frame-changes-size", plate_broken(write_smaller), ["shot", "validate", "{shot}"], "size"),
    ("shot-missing-frame", plate_broken(lambda f: f.unlink()), ["shot", "validate", "{shot}"], "missing"),
    ("shot-output-onto-plate", shot(lambda d: d["outputs"].update(exr=d["plate"]["path"])),
     ["shot", "validate", "{shot}"], "overwrite the plate"),
    ("shot-output-onto-plate-by-symlink", lambda w, c: {"shot": symlinked_plate_output(w, c)},
     ["shot", "validate", "{shot}"], "overwrite the plate"),
    ("shot-review-onto-footage", shot(lambda d: d["outputs"].update(review=d["personas"]["hopper"]["footage"])),
     ["shot", "validate", "{shot}"], "overwrite personas.hopper.footage"),
    ("shot-package-onto-plates", shot(lambda d: d["outputs"].update(comp_package=str(Path(d["plate"]["path"])
                                                                                     .parent))),
     ["shot", "validate", "{shot}"], "overwrite the plate"),
    ("shot-output-in-checkpoint", shot(lambda d: d["outputs"].update(
        exr=str(Path(d["model"]["checkpoint"]) / "sh.####.exr"))), ["shot", "validate", "{shot}"],
     "overwrite model.checkpoint"),
    ("shot-bad-frames-option", none, ["shot", "validate", "{good}", "--frames", "abc"], "frame"),
    # --- extract
    ("extract-no-cuda", none, ["extract", "{root}/media/hopper.mp4", "--out", "{case}/fs", "--device", "cuda:99"],
     "not available"),
    ("extract-odd-size", none, ["extract", "{root}/media/hopper.mp4", "--out", "{case}/fs", "--size", "100"],
     "power of two"),
    ("extract-out-is-a-file", file_in("fs", "x"), ["extract", "{root}/media/hopper.mp4", "--out", "{x}"], "file"),
    ("extract-into-the-plate-folder", none, ["extract", "{root}/plates/astronaut.####.exr", "--out", "{root}/plates"],
     "overwrite"),
    ("extract-unknown-landmarker", none, ["extract", "{root}/media/hopper.mp4", "--out", "{case}/fs",
                                          "--landmarker", "magic"], "dlib"),
    ("extract-unknown-persona", none, ["extract", "{good}", "--persona", "nobody", "--out", "{case}/fs"], "nobody"),
    ("extract-persona-without-shot", none, ["extract", "{root}/media/hopper.mp4", "--persona", "hopper",
                                            "--out", "{case}/fs"], "needs a shot"),
    ("extract-frames-outside", none, ["extract", "{root}/media/hopper.mp4", "--out", "{case}/fs", "--frames",
                                      "1-5"], "outside"),
    ("extract-size-changes", lambda w, c: {"x": png_sequence(c, [96, 96, 64])},
     ["extract", "{x}", "--out", "{case}/fs"], "size"),
    ("extract-even-smoothing", none, ["extract", "{root}/media/hopper.mp4", "--out", "{case}/fs",
                                      "--smooth-window", "4"], "odd"),
    ("extract-negative-jitter", none, ["extract", "{root}/media/hopper.mp4", "--out", "{case}/fs",
                                       "--jitter-beta", "-1"], "jitter"),
    # --- train
    ("train-negative-res", none, ["train", "{good}", "--res", "-64", "--no-consent-record", "--out", "{case}/run"], "res"),
    ("train-zero-width", none, ["train", "{good}", "--width", "0", "--no-consent-record", "--out", "{case}/run"], "width"),
    ("train-no-cuda", none, ["train", "{good}", "--device", "cuda:99", "--no-consent-record", "--out", "{case}/run"], "not available"),
    ("train-persona-not-pair", none, ["train", "--persona", "hopper", "--out", "{case}/run"], "NAME=VALUE"),
    ("train-persona-missing-faceset", none, ["train", "--persona", "a={case}/none", "--persona", "b={case}/none2",
                                             "--out", "{case}/run", "--no-consent-record"], "faceset"),
    ("train-unknown-mask", none, ["train", "{good}", "--mask", "face", "--no-consent-record", "--out", "{case}/run"], "target"),
    ("train-unknown-amp", none, ["train", "{good}", "--amp", "fp8", "--no-consent-record", "--out", "{case}/run"], "bf16"),
    ("train-holdout-above-one", none, ["train", "{good}", "--holdout", "1.5", "--no-consent-record", "--out", "{case}/run"], "holdout"),
    ("train-zero-batch", none, ["train", "{good}", "--batch", "0", "--no-consent-record", "--out", "{case}/run"], "batch"),
    ("train-resume-nothing", none, ["train", "--persona", "a={root}/hopper_faces", "--persona",
                                    "b={root}/hopper_faces", "--out", "{case}/run", "--resume",
                                    "--no-consent-record"], "resume"),
    ("train-index-line-corrupt", faceset_copies(lambda r: r.__setitem__(1, "{not json")),
     ["train", "--persona", "a={case}/a", "--persona", "b={case}/b", "--out", "{case}/run", "--no-consent-record"],
     "index.jsonl"),
    ("train-index-crop-escapes", faceset_copies(lambda r: r[0].update(crop="../../../../etc/hostname")),
     ["train", "--persona", "a={case}/a", "--persona", "b={case}/b", "--out", "{case}/run", "--no-consent-record"],
     "crop"),
    ("train-index-crop-absolute", faceset_copies(lambda r: r[0].update(crop="/etc/hostname")),
     ["train", "--persona", "a={case}/a", "--persona", "b={case}/b", "--out", "{case}/run", "--no-consent-record"],
     "crop"),
    ("train-index-wrong-type", faceset_copies(lambda r: r[0].update(frame="first")),
     ["train", "--persona", "a={case}/a", "--persona", "b={case}/b", "--out", "{case}/run", "--no-consent-record"],
     "frame"),
    ("train-out-is-a-file", file_in("run", "x"), ["train", "{good}", "--no-consent-record", "--out", "{x}"], "file"),
    ("train-no-consent", none, ["train", "{good}", "--out", "{case}/run"], "consent"),
    # --- swap
    ("swap-no-cuda", none, ["swap", "{good}", "--device", "cuda:99"], "not available"),
    ("swap-unknown-blend", none, ["swap", "{good}", "--blend", "feather"], "enhanced"),
    ("swap-frames-outside", none, ["swap", "{good}", "--frames", "900-1001"], "outside"),
    ("swap-unknown-track", tracked(lambda d: d["swap"].update(track=7)), ["swap", "{shot}", "--device", "cpu"],
     "no face track 7"),
    ("swap-truncated-checkpoint", model_broken(lambda s: truncate(s / "model.safetensors")),
     ["swap", "{shot}", "--device", "cpu"], "model.safetensors"),
    ("swap-foreign-checkpoint", model_broken(foreign_weights), ["swap", "{shot}", "--device", "cpu"],
     "model.safetensors"),
    ("swap-misshaped-checkpoint", model_broken(misshaped_weights), ["swap", "{shot}", "--device", "cpu"],
     "mismatched tensor"),
    ("swap-manifest-not-json", model_broken(lambda s: (s / "manifest.json").write_text("{oops")),
     ["swap", "{shot}", "--device", "cpu"], "manifest"),
    ("swap-no-checkpoint", shot(lambda d: d["model"].update(checkpoint="/nonexistent/run")),
     ["swap", "{shot}", "--device", "cpu"], "checkpoint"),
    ("swap-persona-not-in-model", none, ["swap", "{good}", "--persona", "nobody", "--device", "cpu"], "nobody"),
    ("swap-nan-frame", plate_broken(write_nan), ["swap", "{shot}", "--device", "cpu", "--workers", "1"], "NaN"),
    ("swap-read-only-output", shot(lambda d: d["outputs"].update(exr=read_only_folder() + "/sh.####.exr",
                                                                 review=None)),
     ["swap", "{shot}", "--device", "cpu"], "cannot write"),
    ("swap-output-onto-plate", shot(lambda d: d["outputs"].update(exr=d["plate"]["path"])),
     ["swap", "{shot}", "--device", "cpu"], "overwrite the plate"),
    ("swap-review-a-folder", lambda w, c: {"shot": variant(w, c, lambda d: d["outputs"].update(
        review=str((c / "review.mp4").mkdir() or c / "review.mp4")))}, ["swap", "{shot}", "--device", "cpu"],
     "is a folder"),
    ("swap-package-onto-a-file", lambda w, c: {"shot": variant(w, c, lambda d: d["outputs"].update(
        comp_package=str(text(c, "pkg", "x"))))}, ["swap", "{shot}", "--device", "cpu"], "file"),
    ("swap-no-model", shot(lambda d: d.update(model=None)), ["swap", "{shot}", "--device", "cpu"], "model"),
    # --- retouch
    ("retouch-no-edits", none, ["retouch", "{good}", "--device", "cpu"], "retouch"),
    ("retouch-unknown-edit", shot(retouch([{"name": "lips", "group": "mouth", "move": [0.01, 0.0]}])),
     ["retouch", "{shot}", "--edit", "nose_job", "--device", "cpu"], "nose_job"),
    ("retouch-missing-paint-map", shot(lambda d: (retouch([{"name": "p", "kind": "paint", "keyframe": 1001,
                                                           "map": "/nonexistent/map.png"}])(d),
                                                  d["outputs"].update(exr=d["_world_exr"], review=None))),
     ["retouch", "{shot}", "--device", "cpu"], "map"),
    # --- edit
    ("edit-labels-keyframe-outside", none, ["edit", "labels", "{good}", "--keyframe", "5000", "--out",
                                            "{case}/l.png", "--device", "cpu"], "outside the plate"),
    ("edit-labels-out-not-png", none, ["edit", "labels", "{good}", "--keyframe", "1001", "--out", "{case}/l.exr",
                                       "--device", "cpu"], "png"),
    ("edit-labels-onto-a-paint-map", lambda w, c: {"x": text(c, "map.png", b"png"), "shot": variant(w, c, retouch(
        [{"name": "p", "kind": "paint", "keyframe": 1001, "map": str(c / "map.png")}]))},
     ["edit", "labels", "{shot}", "--keyframe", "1001", "--out", "{x}", "--device", "cpu"], "overwrite"),
    ("edit-learn-missing-labels", none, ["edit", "learn", "{good}", "--keyframe", "1001", "--labels",
                                         "{case}/none.png", "--device", "cpu"], "label map"),
    ("edit-apply-no-vectors", none, ["edit", "apply", "{good}", "--device", "cpu"], "edit vectors"),
    ("edit-apply-strength-alone", none, ["edit", "apply", "{good}", "--strength", "0.5"], "--vector"),
    ("edit-apply-foreign-vector", foreign_vector, ["edit", "apply", "{good}", "--vector", "{x}", "--device", "cpu"],
     "v.vfxedit"),
    ("edit-apply-missing-vector", none, ["edit", "apply", "{good}", "--vector", "{case}/v.vfxedit",
                                         "--device", "cpu"], "v.vfxedit"),
    # --- export
    ("export-comp-onto-a-file", file_in("comp", "x"), ["export", "{good}", "--comp", "{x}"], "file"),
    ("export-review-onto-footage", none, ["export", "{good}", "--review", "{root}/media/hopper.mp4"], "overwrite"),
    ("export-comp-onto-plates", none, ["export", "{good}", "--comp", "{root}/plates"], "overwrite the plate"),
    ("export-review-a-folder", lambda w, c: {"x": (c / "r.mp4").mkdir() or c / "r.mp4"},
     ["export", "{good}", "--review", "{x}"], "folder"),
    ("export-not-rendered", shot(lambda d: None), ["export", "{shot}"], "vfx swap"),
    # --- farm and task
    ("task-unknown-stage", none, ["task", "run", "{good}", "--stage", "render"], "swap"),
    ("task-swap-before-track", shot(lambda d: None), ["task", "run", "{shot}", "--stage", "swap", "--frames",
                                                      "1001-1002"], "track"),
    ("task-bad-frame-syntax", none, ["task", "run", "{good}", "--stage", "swap", "--frame-syntax", "nuke"],
     "openjd"),
    ("farm-unknown-engine", none, ["farm", "run", "{good}", "--engine", "slurm"], "local"),
    ("farm-export-unknown-manager", none, ["farm", "export", "{good}", "--to", "tractor", "{case}/jobs"], "opencue"),
    ("farm-export-out-a-file", file_in("jobs", "x"), ["farm", "export", "{good}", "--to", "openjd", "{x}"], "file"),
    # --- faceset curation (issue 19)
    ("faceset-exclude-not-a-faceset", lambda w, c: {"x": (c / "plain").mkdir() or c / "plain"},
     ["faceset", "exclude", "{x}", "1001"], "faceset.json"),
    ("faceset-exclude-frames-it-lacks", lambda w, c: {"x": shutil.copytree(w["faceset"], c / "fs")},
     ["faceset", "exclude", "{x}", "1001-1002,1050"], "no face"),
    ("faceset-exclude-track-it-lacks", lambda w, c: {"x": shutil.copytree(w["faceset"], c / "fs")},
     ["faceset", "exclude", "{x}", "1001", "--track", "7"], "track 7"),
    ("faceset-exclude-bad-frames", lambda w, c: {"x": shutil.copytree(w["faceset"], c / "fs")},
     ["faceset", "exclude", "{x}", "10O1"], "frame range"),
    ("faceset-exclude-damaged-list", lambda w, c: {"x": (shutil.copytree(w["faceset"], c / "fs"),
                                                         text(c / "fs", "exclude.json", "{oops"))[0]},
     ["faceset", "exclude", "{x}", "1001"], "exclude"),
    ("faceset-report-not-a-faceset", none, ["faceset", "report", "{case}/none"], "no faceset"),
    ("faceset-report-out-a-file", lambda w, c: {"x": text(c, "r", "x")},
     ["faceset", "report", "{root}/hopper_faces", "--out", "{x}"], "file"),
    ("faceset-report-bad-override", lambda w, c: {"x": (shutil.copytree(w["faceset"], c / "fs"), text(
        c / "fs", "overrides.jsonl", '{"frame": 1001, "track": 0, "points": {"99": [1, 2]}}\n'))[0]},
     ["faceset", "report", "{x}"], "overrides.jsonl"),
    # --- model info
    ("model-missing", none, ["model", "info", "{case}/none"], "checkpoint"),
    ("model-manifest-not-json", run_copy(lambda s: (s / "manifest.json").write_text("nope")),
     ["model", "info", "{x}"], "manifest"),
    ("model-manifest-missing-keys", run_copy(lambda s: edit_manifest(s, lambda m: m.pop("config"))),
     ["model", "info", "{x}"], "config"),
    ("model-manifest-wrong-type", run_copy(lambda s: edit_manifest(s, lambda m: m.update(step="many"))),
     ["model", "info", "{x}"], "step"),
    # --- demo
    ("demo-out-a-file", file_in("d", "x"), ["demo", "--out", "{x}", "--device", "cpu"], "file"),
    ("demo-odd-size", none, ["demo", "--out", "{case}/d", "--size", "129"], "even"),
    ("demo-no-cuda", none, ["demo", "--out", "{case}/d", "--device", "cuda:99"], "not available"),
]


# A NaN is in the pixels, not the header: it is found when the frame is first decoded, by the tracking pass,
# which by then has made the faces folder (its settings file only: no crops, no index, no frame).
# A refused farm task records why in its task record: that is how `vfx farm status` shows the reason.
ALLOWED_WRITES = {"swap-nan-frame": "out/demo_plate_faces", "task-swap-before-track": "out/demo_farm"}


@pytest.mark.parametrize(("name", "prep", "argv", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_cleanly(world, tmp_path, capsys, monkeypatch, name, prep, argv, words):
    case = tmp_path / "case"
    case.mkdir()
    monkeypatch.chdir(case)
    names = {"good": world["good"], "root": world["root"], "case": case}
    names.update(prep(world, case) or {})
    args = [a.format(**{k: str(v) for k, v in names.items()}) for a in argv]
    before = snapshot(world["root"], case)
    code = entrypoint(args)
    out, err = capsys.readouterr()
    assert code == 2, f"exit {code}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in err and "internal error" not in err, err
    assert words.lower() in err.lower(), err
    if "Invalid value" not in err and "No such option" not in err:  # typer's own usage errors name the option
        assert "Expected:" in err and "Found:" in err and "Fix:" in err, err
    after = snapshot(world["root"], case)
    allowed = str(case / ALLOWED_WRITES[name]) if name in ALLOWED_WRITES else None
    if allowed is not None:
        made = [p for p in after if p.startswith(allowed + "/") and after[p] != "dir"]
        assert all(p.endswith(("faceset.json", ".json")) for p in made), made
        after = {p: h for p, h in after.items() if not (p == allowed or p.startswith(allowed + "/")
                                                         or (p not in before and allowed.startswith(p + "/")))}
    assert after == before, "files changed on disk"


def test_the_suite_covers_every_command():
    commands = {c[2][0] if c[2][0] not in ("shot", "edit", "task", "farm", "model", "faceset") else " ".join(c[2][:2])
                for c in CASES}
    assert {"probe", "shot validate", "extract", "train", "swap", "retouch", "edit labels", "edit learn",
            "edit apply", "export", "task run", "farm run", "farm export", "model info", "demo", "review",
            "faceset report", "faceset exclude"} <= commands
    assert len(CASES) >= 60
