"""Hostile files: every one is a clear refusal (exit 2, expected / found / fix, no traceback), fast, and leaves the
disk as it was. Shot YAML (bombs, oversize, nesting), faceset indexes (corrupt lines, crop paths out of the
folder), edit vectors (bad schema, foreign tensors), comp transforms, and media names ffmpeg would read as URLs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vfx.cli import entrypoint

BASELINES = Path(__file__).resolve().parent / "baselines"
SHOTS = Path(__file__).resolve().parents[1] / "shots"


def run(capsys, *argv):
    code = entrypoint([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every path under ``folder`` (symlinks not followed) with a hash of its bytes and its mtime."""
    state = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            state[rel] = ("link:" + os.readlink(path), 0)
        elif path.is_file():
            state[rel] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        else:
            state[rel] = ("dir", 0)
    return state


def assert_refused(capsys, folder: Path, argv: list, *, words: tuple[str, ...] = (), max_seconds: float | None = None):
    """Run the CLI on ``argv`` inside ``folder``: exit 2, expected/found/fix, no traceback, nothing written."""
    before = snapshot(folder)
    started = time.perf_counter()
    code, out, err = run(capsys, *argv)
    seconds = time.perf_counter() - started
    assert code == 2, f"exit {code}\n{out}\n{err}"
    assert "Traceback" not in err and "internal error" not in err, err
    low = err.lower()
    assert "expected" in low and "found" in low and "fix" in low, err
    for word in words:
        assert word.lower() in low, f"{word!r} not in: {err}"
    assert snapshot(folder) == before, "files were written or changed"
    if max_seconds is not None:
        assert seconds < max_seconds, f"took {seconds:.2f} s"
    return err


# ---------------------------------------------------------------------------------------------- shot YAML

SH010 = (SHOTS / "sh010.yaml").read_text()

BOMB = "\n".join(
    ["    lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"    lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 9) + "]" for i in range(1, 10)]
)


def _with(text: str) -> Callable[[Path], str]:
    return lambda tmp: text


def _bomb_under_retouch(tmp: Path) -> str:
    return SH010.replace("retouch: []", "retouch:\n  - kind: group\n    group: mouth\n    defs:\n"
                         + BOMB.replace("    lol", "      lol") + "\n    move: *lol9")


def _bomb_moved_first(tmp: Path) -> str:  # anchors before use, under an unknown key, aliases in retouch
    return "defs:\n" + BOMB + "\n" + SH010.replace("retouch: []", "retouch: [{group: mouth, move: *lol9}]")


SHOT_CASES: dict[str, tuple[Callable[[Path], str | bytes], tuple[str, ...]]] = {
    "alias bomb under retouch": (_bomb_under_retouch, ("YAML bomb",)),
    "alias bomb defined at the top": (_bomb_moved_first, ("YAML bomb",)),
    "too many aliases": (lambda tmp: SH010 + "a: &a 1\nb: [" + ", ".join(["*a"] * 1000) + "]\n", ("aliases",)),
    "recursive alias": (lambda tmp: SH010 + "loop: &loop [*loop]\n", ("recursive",)),
    "recursive alias in a mapping": (lambda tmp: SH010 + "loop: &loop {again: *loop}\n", ("recursive",)),
    "deep block nesting": (lambda tmp: SH010 + "".join("  " * i + f"k{i}:\n" for i in range(100)) + "  " * 100
                           + "x: 1\n", ("nests too deeply",)),
    "deep flow nesting": (lambda tmp: SH010 + "deep: " + "[" * 200 + "]" * 200 + "\n", ("nest",)),
    "very deep flow nesting": (lambda tmp: SH010 + "deep: " + "[" * 100000 + "]" * 100000 + "\n", ("nest",)),
    "too many values": (lambda tmp: SH010 + "many: [" + ", ".join(["1"] * 60000) + "]\n", ("too many values",)),
    "duplicate key": (lambda tmp: SH010 + "name: sh011\n", ("twice",)),
    "duplicate key in a flow mapping": (lambda tmp: SH010.replace("retouch: []", "retouch: [{group: mouth, "
                                                                  "group: eyes}]"), ("twice",)),
    "5000-digit integer": (lambda tmp: SH010.replace("chunk_size: 10", "chunk_size: " + "9" * 5000), ("4300",)),
    "month 13": (lambda tmp: SH010 + "when: 2020-13-45\n", ("month",)),
    "NUL escape in a path": (lambda tmp: SH010.replace("plates/sh010.####.exr", '"plates/sh010\\0.####.exr"'),
                             ("NUL",)),
    "python object tag": (lambda tmp: SH010 + "x: !!python/object/apply:os.system ['echo pwned']\n",
                          ("constructor",)),
    "two documents": (lambda tmp: SH010 + "---\n" + SH010, ("another document",)),
    "not UTF-8": (lambda tmp: SH010.encode() + b"\nname: \xff\xfe\n", ("UTF-8",)),
    "control character": (lambda tmp: SH010 + "x: \x07\n", ("control",)),
    "schema a list": (lambda tmp: SH010.replace("schema: vfx.Shot/1", "schema: [vfx.Shot/1]"), ("schema",)),
    "schema a mapping": (lambda tmp: SH010.replace("schema: vfx.Shot/1", "schema: {a: 1}"), ("schema",)),
}


@pytest.mark.parametrize("name", list(SHOT_CASES), ids=list(SHOT_CASES))
def test_hostile_shot_yaml_is_refused_fast(name, tmp_path, capsys):
    make, words = SHOT_CASES[name]
    content = make(tmp_path)
    path = tmp_path / "shot.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    assert_refused(capsys, tmp_path, ["shot", "validate", "--schema-only", path], words=words, max_seconds=5.0)


def test_a_30_mb_shot_file_is_refused_before_it_is_read(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    with path.open("w") as handle:
        handle.write(SH010)
        line = "# " + "x" * 1022 + "\n"
        for _ in range(30 * 1024):
            handle.write(line)
    err = assert_refused(capsys, tmp_path, ["shot", "validate", path], words=("too large", "1.0 MB", "30.0 MB"),
                         max_seconds=1.0)
    assert "huge.yaml" in err


def test_a_fifo_is_not_a_shot_file(tmp_path, capsys):
    fifo = tmp_path / "shot.yaml"
    os.mkfifo(fifo)  # opening it for reading would block forever
    assert_refused(capsys, tmp_path, ["shot", "validate", fifo], words=("not a regular file",), max_seconds=5.0)


def test_merge_keys_and_a_few_aliases_still_load(tmp_path, capsys):
    text = SH010.replace("blend:\n  method: enhanced\n  target_face_levels: 2\n",
                         "blend: &blend\n  method: enhanced\n  target_face_levels: 2\n")
    path = tmp_path / "shot.yaml"
    path.write_text(text)
    code, out, err = run(capsys, "shot", "validate", "--schema-only", path)
    assert code == 0, err


# ---------------------------------------------------------------------------------------------- facesets

def _faceset(tmp: Path) -> Path:
    folder = tmp / "fs"
    shutil.copytree(BASELINES / "faceset_v1", folder)
    return folder


def _line(**changes) -> str:
    data = json.loads((BASELINES / "faceset_v1" / "index.jsonl").read_text().splitlines()[0])
    for key, value in changes.items():
        if value is ...:
            data.pop(key)
        else:
            data[key] = value
    return json.dumps(data)


def _write_index(*lines: str) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        (folder / "index.jsonl").write_text("".join(line + "\n" for line in lines))
    return make


def _symlink_out(folder: Path) -> None:
    outside = folder.parent / "outside"
    outside.mkdir()
    shutil.copy(folder / "crops" / "t00" / "1001.png", outside / "secret.png")
    os.symlink(outside / "secret.png", folder / "crops" / "t00" / "1002.png")
    _write_index(_line(), _line(frame=1002, crop="crops/t00/1002.png"))(folder)


def _symlinked_dir_out(folder: Path) -> None:
    outside = folder.parent / "elsewhere"
    (outside / "t00").mkdir(parents=True)
    shutil.copy(folder / "crops" / "t00" / "1001.png", outside / "t00" / "1001.png")
    os.symlink(outside, folder / "crops2")
    _write_index(_line(crop="crops2/t00/1001.png"))(folder)


def _info(**changes) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        data = json.loads((folder / "faceset.json").read_text())
        for key, value in changes.items():
            if value is ...:
                data.pop(key)
            else:
                data[key] = value
        (folder / "faceset.json").write_text(json.dumps(data))
    return make


FACESET_CASES: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "index line not JSON": (_write_index(_line(), '{"frame": 1002, "track": 0'), ("line 2", "not valid JSON")),
    "index line a list": (_write_index("[1, 2, 3]"), ("line 1",)),
    "index line missing quality": (_write_index(_line(quality=...)), ("line 1", "quality", "missing")),
    "index line missing landmarks": (_write_index(_line(landmarks=...)), ("line 1", "landmarks")),
    "index frame a string": (_write_index(_line(frame="1001")), ("line 1", "frame")),
    "index track negative": (_write_index(_line(track=-1)), ("track",)),
    "index quality unknown": (_write_index(_line(quality="great")), ("quality",)),
    "index 67 landmarks": (_write_index(_line(crop_landmarks=[[1.0, 2.0]] * 67)), ("crop_landmarks",)),
    "index NaN in a box": (_write_index('{"frame":1001,"track":0,"quality":"ok","box":[NaN,0,1,1]}'), ("box",)),
    "index matrix 3x3": (_write_index(_line(matrix=[[1, 0, 0], [0, 1, 0], [0, 0, 1]])), ("matrix",)),
    "index unknown field": (_write_index(_line(shell="rm -rf /")), ("shell",)),
    "index line too long": (_write_index(_line(crop="crops/" + "x" * 70000 + ".png")), ("too long",)),
    "crop absolute path": (_write_index(_line(crop="/etc/passwd")), ("crop path", "absolute")),
    "crop ../ escape": (_write_index(_line(crop="../../../../etc/passwd")), ("crop path", "out of the folder")),
    "crop ../ to a sibling": (_write_index(_line(crop="../other/crops/t00/1001.png")), ("out of the folder",)),
    "crop symlink out of the folder": (_symlink_out, ("symlink",)),
    "crops folder a symlink out": (_symlinked_dir_out, ("symlink",)),
    "crop the folder itself": (_write_index(_line(crop=".")), ("folder itself",)),
    "faceset.json missing crop_size": (_info(crop_size=...), ("crop_size", "missing")),
    "faceset.json crop_size a string": (_info(crop_size="256"), ("crop_size",)),
    "faceset.json unknown field": (_info(evil=1), ("evil",)),
    "faceset.json not JSON": (lambda folder: (folder / "faceset.json").write_text("{nope"), ("faceset",)),
    "faceset.json nested too deep": (lambda folder: (folder / "faceset.json").write_text("[" * 100000
                                                                                        + "]" * 100000),
                                     ("RecursionError",)),
}


@pytest.mark.parametrize("name", list(FACESET_CASES), ids=list(FACESET_CASES))
def test_hostile_faceset_is_refused_before_training(name, tmp_path, capsys):
    folder = _faceset(tmp_path)
    make, words = FACESET_CASES[name]
    make(folder)
    assert_refused(capsys, tmp_path, ["train", "--persona", f"a={folder}", "--out", tmp_path / "run", "--res", 8,
                                      "--iters-per-level", 1, "--no-consent-record", "--device", "cpu"],
                   words=words, max_seconds=60.0)
    assert not (tmp_path / "run").exists()


def test_a_good_faceset_index_reads_and_its_crops_stay_inside(tmp_path):
    from vfx.faceset import Faceset

    folder = _faceset(tmp_path)
    faceset = Faceset.open(folder)
    faces = faceset.faces()
    assert faces and all(faceset.crop_file(r).is_relative_to(folder.resolve()) for r in faces)


def test_the_dataset_refuses_a_crop_that_moved_out_after_the_index_was_read(tmp_path):
    from vfx.errors import MediaError
    from vfx.faceset import Faceset
    from vfx.faceset.dataset import FacesetDataset

    folder = _faceset(tmp_path)
    data = FacesetDataset(Faceset.open(folder))
    crop = folder / data.records[0].crop
    outside = tmp_path / "outside.png"
    shutil.move(crop, outside)
    os.symlink(outside, crop)
    with pytest.raises(MediaError, match="symlink"):
        data[0]


# ---------------------------------------------------------------------------------------------- edit vectors

def _vector(tmp: Path) -> Path:
    folder = tmp / "lips.vfxedit"
    shutil.copytree(BASELINES / "edit_vector_v1.vfxedit", folder)
    return folder


def _edit_json(**changes) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        data = json.loads((folder / "edit.json").read_text())
        for key, value in changes.items():
            if value is ...:
                data.pop(key)
            else:
                data[key] = value
        (folder / "edit.json").write_text(json.dumps(data))
    return make


def _tensors(tensors: dict, metadata: dict | None = None) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        import torch
        from safetensors.torch import save_file

        save_file({k: torch.zeros(*shape, dtype=getattr(torch, dtype)) for k, (shape, dtype) in tensors.items()},
                  str(folder / "delta.safetensors"),
                  metadata={"schema": "vfx.EditVector/1"} if metadata is None else metadata)
    return make


def _truncate(folder: Path) -> None:
    data = (folder / "delta.safetensors").read_bytes()
    (folder / "delta.safetensors").write_bytes(data[: len(data) // 2])


EDIT_CASES: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "edit.json missing persona": (_edit_json(persona=...), ("persona", "missing")),
    "edit.json classes a string": (_edit_json(classes="5"), ("classes",)),
    "edit.json class out of the labels": (_edit_json(classes=[99]), ("label",)),
    "edit.json latent channels huge": (_edit_json(latent_channels=10**12), ("latent_channels",)),
    "edit.json buffer NaN": (lambda f: (f / "edit.json").write_text(
        (f / "edit.json").read_text().replace('"buffer": 0.03', '"buffer": NaN')), ("buffer",)),
    "edit.json unknown field": (_edit_json(payload="x"), ("payload",)),
    "edit.json another schema": (_edit_json(schema="vfx.CombModel/1"), ("schema",)),
    "edit.json newer version": (_edit_json(schema="vfx.EditVector/99"), ("newer",)),
    "edit.json not JSON": (lambda f: (f / "edit.json").write_text("not json"), ("JSON",)),
    "edit.json nested too deep": (lambda f: (f / "edit.json").write_text("[" * 100000 + "]" * 100000),
                                  ("RecursionError",)),
    "foreign tensor names": (_tensors({"weight": ((8,), "float32")}), ("foreign", "weight")),
    "an extra tensor": (_tensors({"delta": ((8,), "float32"), "payload": ((1000,), "float32")}), ("payload",)),
    "delta of the wrong shape": (_tensors({"delta": ((8, 8), "float32")}), ("8x8",)),
    "delta of the wrong length": (_tensors({"delta": ((9,), "float32")}), ("9 F32",)),
    "delta of the wrong dtype": (_tensors({"delta": ((8,), "float64")}), ("F64",)),
    "weights without our schema": (_tensors({"delta": ((8,), "float32")}, metadata={}), ("schema",)),
    "weights of another schema": (_tensors({"delta": ((8,), "float32")}, metadata={"schema": "evil/1"}),
                                  ("evil/1",)),
    "truncated weights": (_truncate, ("safetensors",)),
    "weights not safetensors": (lambda f: (f / "delta.safetensors").write_bytes(b"\x80\x04pickle"),
                                ("safetensors",)),
}


@pytest.mark.parametrize("name", list(EDIT_CASES), ids=list(EDIT_CASES))
def test_hostile_edit_vector_is_refused_before_work(name, tmp_path, capsys):
    shot = tmp_path / "shot.yaml"
    shot.write_text(SH010)
    vector = _vector(tmp_path)
    make, words = EDIT_CASES[name]
    make(vector)
    assert_refused(capsys, tmp_path, ["edit", "apply", shot, "--vector", vector, "--device", "cpu"], words=words,
                   max_seconds=60.0)


def test_the_baseline_edit_vector_still_loads():
    from vfx.edit.vectors import load_edit_vector

    vector = load_edit_vector(BASELINES / "edit_vector_v1.vfxedit")
    assert tuple(vector.delta.shape) == (8,) and vector.classes == (5, 6)


# ---------------------------------------------------------------------------------------------- comp transforms

@pytest.mark.parametrize("frames", [
    {"1001": {"plate_to_crop": "x"}},
    {"1001": {"plate_to_crop": [[1, 0, 0], [0, 1, 0]], "crop_to_plate": [[1, 0, 0], [0, 1, "NaN"]]}},
    {"frame one": None},
    [1, 2, 3],
], ids=["matrix a string", "matrix with a string", "frame key not a number", "frames a list"])
def test_a_mistyped_comp_transforms_file_is_exit_2_naming_the_field(frames, tmp_path):
    from vfx.errors import MediaError
    from vfx.export.comp import TRANSFORMS_SCHEMA, _previous_transforms

    path = tmp_path / "transforms.json"
    path.write_text(json.dumps({"schema": TRANSFORMS_SCHEMA, "shot_hash": "abc", "crop_size": 256,
                                "frames": frames}))
    with pytest.raises(MediaError) as err:
        _previous_transforms(path, "abc")
    assert err.value.exit_code == 2 and "frames" in str(err.value) and err.value.fix
    assert _previous_transforms(path, "another recipe") == {}
    assert _previous_transforms(tmp_path / "none.json", "abc") == {}


# ---------------------------------------------------------------------------------------------- ffmpeg URLs

def _clip(path: Path, size: str, seconds: float) -> None:
    from vfx.io import ffmpeg as ff

    tmp = path.with_name("making.mp4")
    subprocess.run([ff.find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={size}:rate=25:duration={seconds}", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    str(tmp)], check=True, capture_output=True)
    tmp.rename(path)  # ffmpeg itself would read the odd name as a URL


@pytest.fixture
def odd_names(tmp_path: Path) -> Path:
    _clip(tmp_path / "a.mp4", "64x48", 0.2)  # 5 frames
    _clip(tmp_path / "concat:a.mp4|a.mp4", "32x24", 0.12)  # 3 frames
    return tmp_path


@pytest.mark.parametrize("relative", [True, False], ids=["relative", "absolute"])
def test_a_file_named_like_a_concat_url_is_read_as_that_file(odd_names, relative, capsys, monkeypatch):
    monkeypatch.chdir(odd_names)
    name = "concat:a.mp4|a.mp4" if relative else str(odd_names / "concat:a.mp4|a.mp4")
    before = snapshot(odd_names)
    code, out, err = run(capsys, "probe", "--json", name)
    assert code == 0, err
    info = json.loads(out)
    assert (info["width"], info["height"], info["frame_count"]) == (32, 24, 3), info  # not a.mp4 (64x48, 5)
    assert snapshot(odd_names) == before


def test_the_reader_and_the_encoder_take_odd_names_as_files(odd_names, monkeypatch):
    import numpy as np

    from vfx.io.video import VideoReader, encode_video, probe_video

    monkeypatch.chdir(odd_names)
    reader = VideoReader("concat:a.mp4|a.mp4")
    try:
        assert reader.read(reader.frame_range[0]).shape == (24, 32, 3)
    finally:
        reader.close()
    frames = [np.full((16, 16, 3), 40 * i, np.uint8) for i in range(2)]
    encode_video(frames, "-y:out.mp4", fps=25)
    encode_video(frames, "concat:o.mp4|a.mp4", fps=25)
    assert probe_video("-y:out.mp4").frame_count == 2
    assert probe_video("concat:o.mp4|a.mp4").frame_count == 2
    assert probe_video("a.mp4").frame_count == 5, "a.mp4 untouched"


def test_media_args_never_reach_ffmpeg_as_urls_or_options():
    from vfx.io import ffmpeg as ff

    for name in ("concat:a.mp4|a.mp4", "http://x/a.mp4", "pipe:0", "-", "-y.mp4", "subfile,,start,0,end,9,,:a.mp4",
                 "file:a.mp4", "data:,x"):
        arg = ff.media_arg(name)
        assert arg == "file:" + os.path.abspath(name), (name, arg)
    assert ff.media_arg("plate.mp4") == "plate.mp4"
    assert ff.media_arg("/x/concat:a.mp4") == "/x/concat:a.mp4"
    argv = ff.probe_argv("ffmpeg", "concat:a.mp4")
    assert argv[argv.index("-protocol_whitelist") + 1] == "file" and argv.index("-protocol_whitelist") < argv.index("-i")
    out = ff.encode_argv("ffmpeg", "-o.mp4", width=8, height=8, input_pix_fmt="rgb24", fps=25, codec="h264")
    assert out[-1] == "file:" + os.path.abspath("-o.mp4")
    with pytest.raises(Exception, match="Invalid media path"):
        ff.media_arg("a\0b.mp4")


def test_a_playlist_posing_as_a_movie_cannot_make_ffmpeg_open_urls(tmp_path, capsys):
    fake = tmp_path / "plate.mp4"
    fake.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n")
    assert_refused(capsys, tmp_path, ["probe", fake], max_seconds=30.0)


@pytest.mark.parametrize("name", ["x" * 5000 + ".mp4", "/dev/zero", "fifo.mp4"], ids=["name too long", "a device",
                                                                                       "a fifo"])
def test_probing_a_name_no_file_can_have_or_a_device_is_exit_2(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if name == "fifo.mp4":
        os.mkfifo(tmp_path / name)  # ffmpeg would wait on it forever
    assert_refused(capsys, tmp_path, ["probe", name], max_seconds=30.0)


@pytest.mark.parametrize("out", ["y" * 250 + ".mp4", "missing/x.mp4", "a.mp4/x.mp4"],
                         ids=["name too long", "no folder", "folder is a file"])
def test_encoding_to_an_impossible_output_is_refused_before_work(out, tmp_path, monkeypatch):

    from vfx.errors import ConfigError
    from vfx.io.video import encode_video

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.mp4").write_bytes(b"")
    before = snapshot(tmp_path)

    def frames():
        raise AssertionError("no frame may be asked for")
        yield

    with pytest.raises(ConfigError) as err:
        encode_video(frames(), out, fps=25)
    assert err.value.exit_code == 2 and err.value.expected and err.value.found and err.value.fix
    assert snapshot(tmp_path) == before
