from fractions import Fraction
from pathlib import Path

import pytest

from vfx.errors import ShotFileError
from vfx.shot import FrameRange, dump_shot, load_shot, parse_shot, save_shot

SHOTS = Path(__file__).resolve().parents[1] / "shots"

MINIMAL = """\
schema: vfx.Shot/1
name: sh010
plate:
  path: plates/sh010.####.exr
  frames: 1001-1010
  fps: 24000/1001
  colorspace: ACEScg
"""


@pytest.mark.parametrize("path", sorted(SHOTS.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid(path):
    shot = load_shot(path)
    assert shot.name
    assert shot.plate.path.is_absolute()


def test_round_trip(tmp_path):
    shot = load_shot(SHOTS / "sh010.yaml")
    save_shot(shot, tmp_path / "a.yaml")
    again = load_shot(tmp_path / "a.yaml")
    assert again == shot
    assert (tmp_path / "a.yaml").read_text() == dump_shot(shot)
    assert again.content_hash() == shot.content_hash()


def test_types_and_defaults(tmp_path):
    shot = parse_shot(MINIMAL, base_dir=tmp_path)
    assert shot.plate.fps == Fraction(24000, 1001)
    assert shot.plate.frames == FrameRange.from_bounds(1001, 1010)
    assert shot.plate.path == tmp_path / "plates/sh010.####.exr"
    assert shot.plate.is_sequence
    assert shot.farm.chunk_size == 10 and shot.blend.method == "enhanced"
    text = dump_shot(shot)
    assert "fps: 24000/1001" in text and "frames: 1001-1010" in text


def test_hash_changes_with_content(tmp_path):
    a = parse_shot(MINIMAL, base_dir=tmp_path)
    b = parse_shot(MINIMAL.replace("1001-1010", "1001-1011"), base_dir=tmp_path)
    assert a.content_hash() != b.content_hash()


def test_frozen(tmp_path):
    shot = parse_shot(MINIMAL, base_dir=tmp_path)
    with pytest.raises(ValueError):  # pydantic's ValidationError: the model is frozen
        shot.name = "other"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", r"is empty.*schema: vfx.Shot/1"),
        ("- a\n- b\n", "not a YAML mapping"),
        ("name: [unclosed\n", r"not valid YAML at line \d+"),
        ("name: sh010\n", "no 'schema' field"),
        ("schema: vfx.Shot/9\nname: a\n", "unsupported schema 'vfx.Shot/9'"),
        (MINIMAL + "colour: red\n", r"colour \(line 8\): unknown field 'colour'; valid fields here: schema, name"),
        (MINIMAL.replace("  colorspace", "  colourspace"), r"plate.colourspace \(line 7\).*did you mean 'colorspace'"),
        (MINIMAL.replace("24000/1001", "fast"), r"plate.fps \(line 6\).*frame rate"),
        (MINIMAL.replace("1001-1010", "1001-10x"), r"plate.frames \(line 5\).*integer frames"),
        (MINIMAL + "blend: {method: poison}\n", r"blend.method \(line 8\).*'enhanced', 'multiband', 'alpha' or 'poisson'.*did you mean 'poisson'"),
        (MINIMAL + "farm: {chunk_size: many}\n", r"farm.chunk_size \(line 8\): Input should be a valid integer.*found 'many'"),
        (MINIMAL + "model: {checkpoint: m.safetensors, resolution: 300}\n", r"model.resolution.*power of two"),
        (MINIMAL + "swap: {persona: nobody}\n", r"'nobody' is not one of the shot's personas"),
        (MINIMAL + "personas: {a: {}}\n", r"personas.a.*exactly one of 'footage'"),
        (MINIMAL + "outputs: {exr: out/sh010.exr}\n", r"outputs.exr.*sequence pattern"),
        ("schema: vfx.Shot/1\nname: sh010\n", r"plate \(line 1\): required field is missing"),
        (MINIMAL.replace("name: sh010", "name: 'sh 010'"), r"name \(line 2\).*pattern"),
    ],
)
def test_validation_errors(text, pattern, tmp_path):
    with pytest.raises(ShotFileError, match=f"(?s){pattern}"):
        parse_shot(text, base_dir=tmp_path)


def test_missing_and_directory(tmp_path):
    with pytest.raises(ShotFileError, match="does not exist"):
        load_shot(tmp_path / "nope.yaml")
    with pytest.raises(ShotFileError, match="is a directory"):
        load_shot(tmp_path)
