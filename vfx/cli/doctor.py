"""`vfx doctor`: what this machine has for the toolkit (versions, ffmpeg, the OCIO config, model files, GPUs),
so a TD or a farm's health check sees in one place why a node cannot render.

Exit 0 when every essential is found, 2 (do not retry: the node needs fixing) naming what is missing.
Essentials: torch, numpy, OpenImageIO, OpenColorIO with a loadable config, OpenTimelineIO, an ffmpeg, and
dlib's two model files (68-point landmarks, face recognition). Reported but optional: the FAN/S3FD weights,
CUDA devices, the CMX 3600 EDL adapter, pyoutline (OpenCue export).
"""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from typing import Annotated, Any

import typer

__all__ = ["collect_report", "doctor", "format_report"]


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _check(report: dict[str, Any], section: str, key: str, missing_fix: str | None, probe) -> Any:  # type: ignore[no-untyped-def]
    """Run one probe; a failure is recorded (and, for an essential, counted as missing with its fix)."""
    try:
        value = probe()
    except Exception as err:  # noqa: BLE001  (doctor reports whatever broke; it never crashes)
        value = None
        reason = str(getattr(err, "message", "") or err).strip().splitlines()
        report["problems"].append({"what": f"{section}.{key}", "found": reason[0][:300] if reason else type(err).__name__,
                                   "fix": missing_fix or getattr(err, "fix", None), "essential": missing_fix is not None})
    report[section][key] = value
    if value is None and missing_fix is not None and not any(p["what"] == f"{section}.{key}" for p in report["problems"]):
        report["problems"].append({"what": f"{section}.{key}", "found": "not found", "fix": missing_fix,
                                   "essential": True})
    return value


def _ffmpeg() -> dict[str, str]:
    from vfx.io.ffmpeg import find_ffmpeg

    exe = find_ffmpeg()
    out = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True, timeout=30, check=False)
    return {"path": exe, "version": (out.stdout.strip().splitlines() or ["(no version line)"])[0]}


def _ocio() -> dict[str, Any]:
    import os

    from vfx.io.color import DEFAULT_CONFIG, load_config

    cfg = load_config()
    source = os.environ.get("OCIO", "").strip()
    display = cfg.getDefaultDisplay()
    return {"config": source or DEFAULT_CONFIG, "from": "$OCIO" if source else "built-in",
            "name": cfg.getName() or None, "default_display": display, "default_view": cfg.getDefaultView(display)}


def _dlib(filename: str, what: str) -> str:
    from vfx.face.landmark import find_dlib_model

    return str(find_dlib_model(filename, what))


def _fan() -> dict[str, Any]:
    from vfx.face.landmark.fan import (
        FAN_LEGACY_WEIGHTS_FILE,
        FAN_WEIGHTS_FILE,
        SFD_WEIGHTS_FILE,
        _default_torch_models_dir,
    )

    folder = _default_torch_models_dir()
    names = (FAN_WEIGHTS_FILE, FAN_LEGACY_WEIGHTS_FILE, SFD_WEIGHTS_FILE)
    return {"folder": str(folder), "found": [n for n in names if (folder / n).is_file()]}


def _cuda() -> list[dict[str, Any]]:
    import torch

    if not torch.cuda.is_available():
        return []
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        devices.append({"device": f"cuda:{index}", "name": props.name,
                        "memory_gib": round(props.total_memory / 1024 ** 3, 1),
                        "capability": f"{props.major}.{props.minor}"})
    return devices


def collect_report() -> dict[str, Any]:
    """Everything `vfx doctor` prints, as plain data (``--json``). ``ok`` is False when an essential is missing;
    ``problems`` lists each thing not found (``essential`` says whether it stops the toolkit) and its fix."""
    import vfx

    report: dict[str, Any] = {"versions": {}, "ffmpeg": {}, "ocio": {}, "models": {}, "cuda": {}, "optional": {},
                              "problems": []}
    versions = report["versions"]
    versions["vfx"] = vfx.__version__
    versions["python"] = platform.python_version()
    for key, dist, fix in (("torch", "torch", "pip install torch"), ("numpy", "numpy", "pip install numpy"),
                           ("OpenImageIO", "OpenImageIO", "pip install OpenImageIO"),
                           ("OpenColorIO", "opencolorio", "pip install opencolorio"),
                           ("OpenTimelineIO", "opentimelineio", "pip install opentimelineio")):
        _check(report, "versions", key, fix, lambda dist=dist: _dist_version(dist))
    ffmpeg = _check(report, "ffmpeg", "found", "install ffmpeg on PATH, or pip install imageio-ffmpeg", _ffmpeg)
    report["ffmpeg"] = ffmpeg or {}
    report["ocio"] = _check(report, "ocio", "config", "unset $OCIO to use the built-in config, or point it at a "
                            "valid config.ocio", _ocio) or {}
    _check(report, "models", "dlib_landmarks", "pip install face_recognition_models",
           lambda: _dlib("shape_predictor_68_face_landmarks.dat", "68-point shape predictor"))
    _check(report, "models", "dlib_face_recognition", "pip install face_recognition_models",
           lambda: _dlib("dlib_face_recognition_resnet_model_v1.dat", "face recognition model"))
    _check(report, "models", "fan", None, _fan)
    report["cuda"] = _check(report, "cuda", "devices", None, _cuda) or []
    _check(report, "optional", "otio_cmx3600_adapter", None, lambda: _dist_version("otio-cmx3600-adapter"))
    _check(report, "optional", "opencue_pyoutline", None, lambda: _dist_version("opencue-pyoutline"))
    report["ok"] = not any(p["essential"] for p in report["problems"])
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as the lines `vfx doctor` prints."""
    lines = ["versions"]
    lines += [f"  {k:<16}{v or 'MISSING'}" for k, v in report["versions"].items()]
    ff = report["ffmpeg"]
    lines += ["ffmpeg", f"  {'path':<16}{ff.get('path', 'MISSING')}", f"  {'version':<16}{ff.get('version', '-')}"]
    oc = report["ocio"]
    lines += ["OCIO config", f"  {'config':<16}{oc.get('config', 'MISSING')} ({oc.get('from', '-')})",
              f"  {'display':<16}{oc.get('default_display', '-')}", f"  {'view':<16}{oc.get('default_view', '-')}"]
    models = report["models"]
    fan = models.get("fan") or {}
    lines += ["models",
              f"  {'dlib landmarks':<16}{models.get('dlib_landmarks') or 'MISSING'}",
              f"  {'dlib identity':<16}{models.get('dlib_face_recognition') or 'MISSING'}",
              f"  {'FAN/S3FD':<16}{', '.join(fan.get('found', [])) or 'none'} in {fan.get('folder', '-')} (optional)"]
    cuda = report["cuda"]
    lines += ["CUDA devices"] + ([f"  {d['device']:<16}{d['name']}, {d['memory_gib']} GiB, sm {d['capability']}"
                                   for d in cuda] or ["  none (CPU only)"])
    lines += ["optional", *(f"  {k:<22}{v or 'not installed'}" for k, v in report["optional"].items())]
    essential = [p for p in report["problems"] if p["essential"]]
    lines.append("all essentials found" if not essential else
                 "MISSING: " + "; ".join(f"{p['what']} ({p['found']}; fix: {p['fix']})" for p in essential))
    return "\n".join(lines)


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON (for a farm's node check).")] = False,
) -> None:
    """Check this machine for the toolkit: versions of vfx, Python, torch, OpenImageIO, OpenColorIO,
    OpenTimelineIO, ffmpeg and numpy; the OCIO config and its default display/view; the face model files;
    CUDA devices. Exit 0 when everything essential is there, 2 naming what is missing."""
    report = collect_report()
    typer.echo(json.dumps(report, indent=2) if as_json else format_report(report))
    if not report["ok"]:
        missing = ", ".join(p["what"] for p in report["problems"] if p["essential"])
        typer.echo(f"vfx doctor: missing {missing}; see the fixes above", err=True)
        raise typer.Exit(2)
