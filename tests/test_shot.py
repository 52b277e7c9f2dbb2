from fractions import Fraction
from pathlib import Path

import pytest

from vfx.cli import entrypoint
from vfx.errors import ShotFileError
from vfx.shot import FrameRange, dump_shot, load_shot, parse_shot, save_shot
from vfx.shot.edits import EDIT_GROUP_NAMES, LABEL_NAMES, GroupEdit, PaintEdit, RegionName, RelabelEdit

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
        (MINIMAL + "retouch: [{kind: relabl, source: mouth, target: skin}]\n",
         r"retouch\[0\].kind \(line 8\): unknown kind 'relabl'; valid choices: group, relabel, paint; "
         r"did you mean 'relabel'"),
        (MINIMAL + "retouch:\n  - {kind: relabel, source: mouth, target: cheek}\n",
         r"retouch\[0\].target \(line 9\).*'upper_lip', 'lower_lip' or 'mouth' \(valid choices\); found 'cheek'"),
        (MINIMAL + "retouch:\n  - name: p\n    kind: paint\n    keyframe: soon\n    map: p.png\n",
         r"retouch\[0\].keyframe \(line 11\).*valid integer.*found 'soon'"),
        (MINIMAL + "retouch: [{group: nose, keys: [{frame: 5}, {frame: 2}]}]\n", r"retouch\[0\].keys.*increasing"),
        (MINIMAL + "retouch: [{name: a, group: nose, scale: 1.1}, {name: a, group: jaw, scale: 0.9}]\n",
         r"retouch \(line 8\): edits share a name \(a\)"),
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


# ---------------------------------------------------------------------------------------------- retouch edits

EDITS = """\
retouch:
  - {name: smile, group: mouth, keys: [{frame: 1001}, {frame: 1010, move: [0, -0.02], scale: [1.15, 1.0]}]}
  - {group: left_brow, move: [0, -0.04]}
  - {name: close, kind: relabel, source: mouth, target: upper_lip}
  - {name: blemish, kind: paint, keyframe: 1005, map: paint/blemish.png}
"""


def _shot_file(tmp_path: Path, retouch: str) -> Path:
    text = (SHOTS / "sh010.yaml").read_text()
    assert "\nretouch: []\n" in text
    path = tmp_path / "sh010.yaml"
    path.write_text(text.replace("\nretouch: []\n", "\n" + retouch))
    return path


def test_a_misspelt_group_exits_2_naming_the_path_line_and_the_groups(tmp_path, capsys):
    path = _shot_file(tmp_path, "retouch: [{group: mouht}]\n")
    line = path.read_text().splitlines().index("retouch: [{group: mouht}]") + 1
    assert entrypoint(["shot", "validate", "--schema-only", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"retouch[0].group (line {line}):" in err
    assert all(f"'{group}'" in err for group in EDIT_GROUP_NAMES)
    assert "found 'mouht'" in err and "did you mean 'mouth'?" in err
    assert f"retouch[0].keys (line {line}): required field is missing (or give move, scale or rotate" in err


def test_an_unknown_edit_field_is_named_with_the_valid_fields(tmp_path, capsys):
    path = _shot_file(tmp_path, "retouch:\n  - {group: mouth, scale: 1.1}\n  - {group: nose, nmae: oops}\n")
    with pytest.raises(ShotFileError, match=r"retouch\[1\].nmae \(line \d+\): unknown field 'nmae'; valid fields here: "
                       r"name, kind, group, keys, move, scale, rotate; did you mean 'name'"):
        load_shot(path)
    assert entrypoint(["shot", "validate", "--schema-only", str(path)]) == 2
    err = capsys.readouterr().err
    assert "retouch[1].nmae" in err and "retouch[0]" not in err  # the valid edit is not blamed


def test_every_edit_kind_loads_typed_with_its_defaults(tmp_path):
    shot = load_shot(_shot_file(tmp_path, EDITS))
    smile, brow, close, blemish = shot.retouch
    assert isinstance(smile, GroupEdit) and smile.at(1010).scale == (1.15, 1.0)
    assert isinstance(brow, GroupEdit) and brow.name == "edit2" and brow.kind == "group"
    assert brow.at(1001).move == (0.0, -0.04)
    assert isinstance(close, RelabelEdit) and (close.source, close.target) == ("mouth", "upper_lip")
    assert isinstance(blemish, PaintEdit) and blemish.map == tmp_path / "paint/blemish.png"
    save_shot(shot, tmp_path / "again.yaml")
    again = load_shot(tmp_path / "again.yaml")
    assert again == shot and again.content_hash() == shot.content_hash()


def test_shot_show_prints_the_edits(tmp_path, capsys):
    path = _shot_file(tmp_path, EDITS)
    assert entrypoint(["shot", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "retouch:\n- name: smile\n  kind: group\n  group: mouth\n  keys:\n  - frame: 1001\n" in out
    assert "- name: edit2\n  kind: group\n  group: left_brow\n" in out
    assert "- name: close\n  kind: relabel\n  source: mouth\n  target: upper_lip\n" in out
    assert f"- name: blemish\n  kind: paint\n  keyframe: 1005\n  map: {tmp_path / 'paint/blemish.png'}\n" in out


def test_the_relabel_regions_are_the_face_labels():
    from typing import get_args

    from vfx.face import mask
    from vfx.retouch import edits
    from vfx.shot import edits as shot_edits

    assert get_args(RegionName) == LABEL_NAMES == mask.LABEL_NAMES
    assert mask.FaceLabel is shot_edits.FaceLabel and edits.GroupEdit is GroupEdit
    assert tuple(edits.EDIT_GROUPS) == EDIT_GROUP_NAMES
