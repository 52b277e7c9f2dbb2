import io
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from vfx.errors import ExternalToolError, MediaError, VfxError
from vfx.utils.atomic import atomic_path, atomic_write_text
from vfx.utils.progress import progress, progress_enabled


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_error_message_parts():
    err = MediaError("Cannot read plate", expected="an EXR", found="a folder", fix="pass a file")
    assert str(err) == "Cannot read plate. Expected: an EXR. Found: a folder. Fix: pass a file."
    assert err.exit_code == 2 and isinstance(err, VfxError)
    assert ExternalToolError("ffmpeg crashed").exit_code == 1


def test_progress_plain_lines_when_not_a_tty():
    buf = io.StringIO()
    assert list(progress(range(1001, 1004), desc="swap", stream=buf)) == [1001, 1002, 1003]
    assert buf.getvalue().splitlines() == ["swap: frame 1/3 (33%)", "swap: frame 2/3 (66%)", "swap: frame 3/3 (100%)"]


def test_progress_bar_on_tty_and_switch_off(monkeypatch):
    monkeypatch.delenv("VFX_NO_PROGRESS", raising=False)
    assert progress_enabled(_Tty())
    buf = _Tty()
    assert list(progress(range(3), desc="decode", stream=buf)) == [0, 1, 2]
    assert "decode" in buf.getvalue() and "frame 1/3" not in buf.getvalue()
    monkeypatch.setenv("VFX_NO_PROGRESS", "1")
    assert not progress_enabled(_Tty())


def test_atomic_write_replaces_and_cleans_up(tmp_path):
    out = tmp_path / "sub" / "a.txt"
    atomic_write_text(out, "one")
    atomic_write_text(out, "two")
    assert out.read_text() == "two"
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert out.read_text() == "two"
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.txt"]


def test_atomic_write_survives_kill(tmp_path):
    """A process killed mid-write leaves the old file, never a half-written one."""
    out = tmp_path / "frame.bin"
    out.write_bytes(b"old")
    script = textwrap.dedent(f"""
        import os, sys
        from vfx.utils.atomic import atomic_path
        with atomic_path({str(out)!r}) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"x" * 1000)
                f.flush()
                print("writing", flush=True)
                sys.stdin.read()  # wait to be killed
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert out.read_bytes() == b"old"
    # A SIGKILL can leave the hidden temporary file, which is named as such and never taken for a frame.
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "frame.bin"]
    assert all(name.startswith(".") and ".vfxtmp" in name for name in leftovers)


def test_remove_stale_temps_removes_folders_a_kill_left(tmp_path):
    """A checkpoint is written as a temporary folder; a kill mid-write leaves it, and the farm's retry must
    clear it instead of failing on it forever."""
    from vfx.utils.atomic import TEMP_MARKER, remove_stale_temps

    run = tmp_path / "run"
    half = run / f".step_00000004{TEMP_MARKER}x"
    half.mkdir(parents=True)
    (half / "model.safetensors").write_bytes(b"half")
    (run / f".loss{TEMP_MARKER}1.png").write_bytes(b"x")
    (run / "step_00000002").mkdir()
    assert remove_stale_temps(run, under=True) == 2
    assert sorted(p.name for p in run.iterdir()) == ["step_00000002"]
