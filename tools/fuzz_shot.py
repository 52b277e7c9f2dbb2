"""Fuzz `vfx shot validate` with mutated shot files: every bad file must be a clear exit 2, fast, in bounded memory.

Starts from valid shot files (the demo shot `vfx.demo.build_demo` writes, with real media beside it, and the
examples in ``shots/`` and the tests), mutates them (types, ranges, paths, unicode, huge and negative numbers,
deep nesting, aliases, deletions, duplicated keys, random bytes, oversized files) and runs each mutant through
``vfx shot validate`` in this process (``vfx.cli.entrypoint``), capturing its output.

A finding is:

- an exception that is not a :class:`vfx.errors.VfxError` (the CLI's "internal error, this is a bug", exit 1),
  or a VfxError whose exit code is not 2 (bad input must never look retryable);
- a run longer than ``--max-seconds`` (1 s), or one that does not finish within ``--hang-seconds``;
- a run whose peak traced memory (``tracemalloc``) is over ``--max-mb``.

Prints a summary table (iterations, exits by code, slowest run, peak memory, findings) and each finding with its
input file (kept under ``--keep``) and traceback. Exits 1 when there are findings, 0 otherwise.

Usage::

    python tools/fuzz_shot.py --iterations 3000 --seed 0
    python tools/fuzz_shot.py --iterations 200 --keep /tmp/fuzz_findings
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import re
import resource
import signal
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# ---------------------------------------------------------------------------------------------- seeds

MINIMAL = """\
schema: vfx.Shot/1
name: sh010
plate:
  path: plates/sh010.####.exr
  frames: 1001-1010
  fps: 24000/1001
  colorspace: ACEScg
"""

EDITS = """\
retouch:
  - {name: smile, group: mouth, keys: [{frame: 1001}, {frame: 1010, move: [0, -0.02], scale: [1.15, 1.0]}]}
  - {group: left_brow, move: [0, -0.04]}
  - {name: close, kind: relabel, source: mouth, target: upper_lip}
  - {name: blemish, kind: paint, keyframe: 1005, map: paint/blemish.png}
"""

EDIT_VECTORS = """\
edit_vectors:
  - {vector: edits/lips.vfxedit, strength: 0.5}
  - {vector: edits/eyes.vfxedit, strength: [{frame: 1001, value: 0}, {frame: 1008, value: 1}]}
"""


def seed_texts(demo_folder: Path | None) -> list[str]:
    """Valid shot texts to start from: the demo's (real media beside it), the repository's examples, the tests'."""
    texts = []
    if demo_folder is not None:
        texts.append((demo_folder / "demo.yaml").read_text())
    for path in sorted((ROOT / "shots").glob("*.yaml")):
        texts.append(path.read_text())
    texts.append(MINIMAL)
    sh010 = (ROOT / "shots" / "sh010.yaml")
    if sh010.is_file():
        base = sh010.read_text()
        texts.append(base.replace("\nretouch: []\n", "\n" + EDITS))
        texts.append(base + EDIT_VECTORS)
    if demo_folder is not None:  # the demo shot with edits, so edits meet real media too
        demo = (demo_folder / "demo.yaml").read_text()
        texts.append(demo.replace("\nretouch: []\n", "\n" + EDITS.replace("1010", "1008")))
    return texts


# ---------------------------------------------------------------------------------------------- mutations

HOSTILE_STRINGS = [
    "", " ", "\t", "~", "null", "yes", "no", "0x1F", "0o17", ".inf", "-.inf", ".nan", "1e309", "-0",
    "1001-1000", "1001-", "-1001", "1-999999999", "1001-1010x2", "1001-1010:0", "0-0", "1001,1001,1001",
    "24000/0", "0/0", "-24", "1/3", "23.976", "nan", "inf", "24000/1001/2", "9" * 400,
    "../../../../etc/passwd", "/etc/passwd", "/dev/zero", "/dev/stdin", "/proc/self/mem", "/", ".", "..",
    "concat:a.mp4|a.mp4", "http://example.com/a.mp4", "file:/etc/passwd", "pipe:0", "-y", "--help",
    "plates/sh010.####.exr", "plates/x.%04d.exr", "plates/x.@@@@.exr", "plates/x.#.exr", "plates/x." + "#" * 40 + ".exr",
    "out/../../../escape.####.exr", "C:\\plates\\x.exr", "\\\\server\\share\\x.exr",
    "\u202egnp.exe", "\u0000", "\x7f", "\ud7ff", "💥🎬", "ñandú", "Ａ", "\u200b", "ACEScg\u200b", "a" * 5000,
    "%s%s%s%n", "{0}", "${HOME}", "$(rm -rf /)", "'; DROP TABLE shots; --", "<script>",
    "vfx.Shot/1", "vfx.Shot/2", "vfx.Shot/0", "vfx.Shot/-1", "vfx.Shot/99999999999999999999",
]
HOSTILE_NUMBERS: list[Any] = [
    0, 1, -1, 2, 3, 7, 8, 63, 64, 65, 255, 256, 1000, 1001, 1024, 4096, 8192, 65536, 10**9, -(10**9), 2**31 - 1,
    2**31, -(2**31), 2**63 - 1, 2**63, -(2**63), 2**64, 10**18, 10**30, 10**300, -(10**300),
    0.0, -0.0, 0.5, -0.5, 1e-300, 5e-324, 1e300, 1.7976931348623157e308, -1e308, float("inf"), float("-inf"),
    float("nan"), True, False, None,
]
KEYS = ["schema", "name", "plate", "path", "frames", "fps", "colorspace", "start_frame", "personas", "footage",
        "faceset", "model", "checkpoint", "resolution", "swap", "persona", "track", "blend", "method", "retouch",
        "outputs", "exr", "review", "comp_package", "farm", "chunk_size", "halo", "edit_vectors", "vector",
        "strength", "kind", "group", "keys", "frame", "move", "scale", "rotate", "<<", "consent", "training"]


def random_unicode(rng: random.Random, n: int) -> str:
    out = []
    for _ in range(n):
        block = rng.choice([(0x20, 0x7E), (0xA0, 0x2FF), (0x370, 0x3FF), (0x4E00, 0x4E80), (0x1F300, 0x1F3FF),
                            (0x200B, 0x202E), (0xFFF0, 0xFFFD), (0x0, 0x1F)])
        out.append(chr(rng.randint(*block)))
    return "".join(out)


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.random()
    if kind < 0.3:
        return rng.choice(HOSTILE_STRINGS)
    if kind < 0.55:
        return rng.choice(HOSTILE_NUMBERS)
    if kind < 0.65:
        return rng.randint(-(10**rng.randint(1, 20)), 10**rng.randint(1, 20))
    if kind < 0.72:
        return rng.uniform(-1e6, 1e6)
    if kind < 0.8:
        return random_unicode(rng, rng.randint(0, 40))
    if depth > 3:
        return None
    if kind < 0.9:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(KEYS): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _containers(node: Any, out: list[Any]) -> list[Any]:
    if isinstance(node, dict):
        out.append(node)
        for value in node.values():
            _containers(value, out)
    elif isinstance(node, list):
        out.append(node)
        for value in node:
            _containers(value, out)
    return out


def _nested(rng: random.Random, depth: int) -> Any:
    value: Any = rng.choice([1, "x", None, []])
    for _ in range(depth):
        value = [value] if rng.random() < 0.5 else {"a": value}
    return value


def mutate_tree(data: Any, rng: random.Random) -> Any:
    """One to a few structural mutations of the parsed shot (in place where possible; returns the new root)."""
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        holders = _containers(data, [])
        if not holders:
            return random_value(rng)
        node = rng.choice(holders)
        keys: list[Any] = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
        op = rng.random()
        if not keys or op < 0.08:  # add an unknown or misplaced key / item
            if isinstance(node, dict):
                node[rng.choice(KEYS + ["zzz", "Name", "plate ", "fpss"])] = random_value(rng)
            else:
                node.append(random_value(rng))
            continue
        key = rng.choice(keys)
        value = node[key]
        if op < 0.45:
            node[key] = random_value(rng)
        elif op < 0.55:  # delete
            del node[key]
        elif op < 0.62 and isinstance(value, (int, float)) and not isinstance(value, bool):  # near a boundary
            node[key] = rng.choice([value + 1, value - 1, -value, value * 10**rng.randint(1, 30), 0, value / 3])
        elif op < 0.68:  # another type of the same content
            node[key] = [value] if not isinstance(value, list) else ({str(i): v for i, v in enumerate(value)}
                                                                     if value else {})
        elif op < 0.73:
            node[key] = str(value) if not isinstance(value, str) else (value * rng.randint(2, 50))
        elif op < 0.78:  # deep nesting (up to past the cap)
            node[key] = _nested(rng, rng.choice([5, 20, 60, 70, 200]))
        elif op < 0.83 and isinstance(node, dict):  # rename (a typo, a case change, unicode)
            new = rng.choice([str(key).upper(), str(key) + "s", str(key)[:-1], str(key).replace("a", "а"),
                              f" {key}", rng.choice(KEYS)])
            node[new] = node.pop(key)
        elif op < 0.88 and isinstance(value, str):  # path games
            node[key] = rng.choice(["../" * rng.randint(1, 8) + value, "/" + value, value + "/", value + "\x00",
                                    value.replace("/", "//"), "~/" + value, value + "/..", value.upper()])
        elif op < 0.93:  # huge list
            node[key] = [rng.choice(HOSTILE_NUMBERS + ["1001"]) for _ in range(rng.choice([100, 1000, 30000]))]
        else:
            node[key] = random_value(rng)
    return data


BOMB = """\
lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]
lol1: &lol1 [*lol0, *lol0, *lol0, *lol0, *lol0, *lol0, *lol0, *lol0, *lol0]
lol2: &lol2 [*lol1, *lol1, *lol1, *lol1, *lol1, *lol1, *lol1, *lol1, *lol1]
lol3: &lol3 [*lol2, *lol2, *lol2, *lol2, *lol2, *lol2, *lol2, *lol2, *lol2]
lol4: &lol4 [*lol3, *lol3, *lol3, *lol3, *lol3, *lol3, *lol3, *lol3, *lol3]
lol5: &lol5 [*lol4, *lol4, *lol4, *lol4, *lol4, *lol4, *lol4, *lol4, *lol4]
lol6: &lol6 [*lol5, *lol5, *lol5, *lol5, *lol5, *lol5, *lol5, *lol5, *lol5]
lol7: &lol7 [*lol6, *lol6, *lol6, *lol6, *lol6, *lol6, *lol6, *lol6, *lol6]
lol8: &lol8 [*lol7, *lol7, *lol7, *lol7, *lol7, *lol7, *lol7, *lol7, *lol7]
"""


def mutate_text(text: str, rng: random.Random) -> str | bytes:
    """A mutation of the YAML text itself: bytes, lines, indentation, aliases, oversize."""
    lines = text.splitlines(keepends=True) or ["\n"]
    op = rng.random()
    if op < 0.12:  # random bytes somewhere (invalid UTF-8 and control characters included)
        data = bytearray(text.encode("utf-8"))
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(data) + 1)
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        return bytes(data)
    if op < 0.2:  # flip bytes
        data = bytearray(text.encode("utf-8"))
        for _ in range(rng.randint(1, 5)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if op < 0.28:  # duplicate a line (a duplicated key)
        i = rng.randrange(len(lines))
        lines.insert(i + rng.randint(0, 3), lines[i])
    elif op < 0.36:  # delete lines
        for _ in range(rng.randint(1, 3)):
            if lines:
                del lines[rng.randrange(len(lines))]
    elif op < 0.42:  # truncate
        return text[: rng.randrange(len(text) + 1)]
    elif op < 0.48:  # indentation and tabs
        i = rng.randrange(len(lines))
        lines[i] = rng.choice(["\t", "  ", "    ", " "]) + lines[i] if rng.random() < 0.7 else lines[i].lstrip()
    elif op < 0.55:  # an alias bomb, under retouch: or at the top
        where = rng.choice(["top", "retouch", "extra"])
        if where == "top":
            return BOMB + text
        bomb = "\n".join("  " + line for line in BOMB.splitlines())
        if where == "retouch" and "retouch:" in text:
            return re.sub(r"(?m)^retouch:.*$", "retouch:\n  - kind: group\n    group: mouth\n    move: *lol8\n"
                          "    x:\n" + "\n".join("    " + line for line in bomb.splitlines()), text, count=1)
        return text + "bomb:\n" + bomb + "\nuse: *lol8\n"
    elif op < 0.6:  # many aliases, a recursive alias, an undefined alias, a merge key
        return text + rng.choice([
            "a: &a 1\nb: [" + ", ".join(["*a"] * rng.choice([10, 300, 5000])) + "]\n",
            "r: &r [*r]\n", "u: *nowhere\n", "m: &m {x: 1}\nn: {<<: *m, y: 2}\n",
            "plate: &p {path: x}\nswap: *p\n"])
    elif op < 0.65:  # deep nesting in flow or block style
        depth = rng.choice([50, 65, 200, 2000, 100000])
        if rng.random() < 0.5:
            return text + "deep: " + "[" * depth + "]" * depth + "\n"
        return text + "".join("  " * i + f"k{i}:\n" for i in range(min(depth, 500))) + "  " * 500 + "x: 1\n"
    elif op < 0.68:  # oversize (over the 1 MB cap) or just under it
        size = rng.choice([1024 * 1024 + 10, 900 * 1024])
        return text + "# " + "x" * size + "\n"
    elif op < 0.72:  # many small values
        return text + "many: [" + ", ".join("1" for _ in range(rng.choice([1000, 60000]))) + "]\n"
    elif op < 0.76:  # tags
        return text + rng.choice(["x: !!python/object/apply:os.system ['echo pwned']\n", "x: !!binary AAAA\n",
                                  "x: !!timestamp 2020-13-45\n", "x: !!float abc\n", "x: !!int 0x\n",
                                  "x: !custom 1\n", "x: !!set {a, b}\n", "x: !!omap [a: 1]\n"])
    elif op < 0.8:  # several documents, directives, BOM
        return rng.choice(["---\n" + text + "---\n" + text, "%YAML 1.1\n---\n" + text, "\ufeff" + text,
                           text + "\n...\n", "%TAG ! tag:x,2000:\n---\n" + text])
    elif op < 0.85:  # a huge or odd scalar in place of a value
        i = rng.randrange(len(lines))
        if ":" in lines[i]:
            head = lines[i].split(":", 1)[0]
            lines[i] = head + ": " + rng.choice(["9" * 5000, "1" + "0" * 400, "-" + "9" * 30, "1e99999",
                                                 "0x" + "f" * 100, "2020-13-45", "2020-02-30 25:61:61",
                                                 "'" + "x" * 100000 + "'", "\"\\uD800\"", "\"\\x00\"",
                                                 "|\n  a\n  b", "? complex\n  : key"]) + "\n"
    else:  # unicode in a random line
        i = rng.randrange(len(lines))
        pos = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:pos] + random_unicode(rng, rng.randint(1, 10)) + lines[i][pos:]
    return "".join(lines)


def mutate(seed_text: str, rng: random.Random) -> str | bytes:
    """A mutant of ``seed_text``: a structural mutation (re-dumped as YAML), a text one, or both."""
    op = rng.random()
    if op < 0.5:
        data = yaml.safe_load(seed_text)
        data = mutate_tree(data, rng)
        try:
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=rng.random() < 0.5, width=120)
        except (yaml.YAMLError, ValueError, RecursionError):
            text = seed_text
        return mutate_text(text, rng) if rng.random() < 0.25 else text
    return mutate_text(seed_text, rng)


# ---------------------------------------------------------------------------------------------- running

class _Hang(BaseException):
    """Raised by the alarm when a run does not finish (a BaseException, so no `except Exception` swallows it)."""


@dataclass
class Finding:
    iteration: int
    kind: str
    detail: str
    input_file: str
    stderr: str = ""
    traceback: str = ""


@dataclass
class Stats:
    iterations: int = 0
    exits: Counter[int] = field(default_factory=Counter)
    slowest_ms: float = 0.0
    slowest_iteration: int = -1
    peak_mb: float = 0.0
    total_s: float = 0.0
    traced: bool = False
    findings: list[Finding] = field(default_factory=list)


def _rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(path: Path, argv_extra: list[str], hang_s: float, *, trace_memory: bool = False) -> tuple[int, str, str,
                                                                                                      float, float]:
    """Run `vfx shot validate` on ``path`` in-process: exit code, stdout, stderr (the CLI logs an internal error's
    traceback there), seconds, and memory: the growth of the process's peak RSS in MB, or with ``trace_memory``
    the run's peak traced allocation (tracemalloc: exact, but about ten times slower)."""
    from vfx.cli import entrypoint

    out, err = io.StringIO(), io.StringIO()
    if trace_memory:
        tracemalloc.start()
    rss_before = _rss_mb()
    signal.setitimer(signal.ITIMER_REAL, hang_s)
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = entrypoint(["shot", "validate", *argv_extra, str(path)])
    except _Hang:
        code = -1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - started
    if trace_memory:
        memory_mb = tracemalloc.get_traced_memory()[1] / 1024**2
        tracemalloc.stop()
    else:
        memory_mb = _rss_mb() - rss_before
    return code, out.getvalue(), err.getvalue(), seconds, memory_mb


def fuzz(iterations: int, seed: int, *, max_seconds: float = 1.0, max_mb: float = 256.0, hang_seconds: float = 20.0,
         keep: Path | None = None, demo: bool = True, progress: bool = False, trace_memory: bool = False) -> Stats:
    """Run ``iterations`` mutants; return the statistics and findings.

    With ``trace_memory`` each run's memory is its tracemalloc peak and runs are not timed against
    ``max_seconds`` (tracing slows them tenfold); otherwise memory is the growth of the process's peak RSS.
    """
    rng = random.Random(seed)
    stats = Stats(traced=trace_memory)

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Hang()

    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    try:
        with tempfile.TemporaryDirectory(prefix="vfx_fuzz_") as tmp:
            work = Path(tmp)
            demo_folder = None
            if demo:
                from vfx.demo import build_demo

                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    demo_folder = build_demo(work / "demo", num_frames=8, size=64).folder
            seeds = seed_texts(demo_folder)
            folder = demo_folder or work
            path = folder / "fuzz.yaml"
            # Warm-up (imports, the first plate read): the seeds themselves, untimed.
            for text in seeds:
                path.write_text(text)
                run_one(path, [], 120.0)
            started = time.perf_counter()
            for i in range(iterations):
                mutant = mutate(rng.choice(seeds), rng)
                if isinstance(mutant, bytes):
                    path.write_bytes(mutant)
                else:
                    path.write_bytes(mutant.encode("utf-8", "surrogatepass"))
                extra: list[str] = []
                roll = rng.random()
                if roll < 0.1:
                    extra = ["--schema-only"]
                elif roll < 0.18:
                    extra = ["--frames", str(rng.choice(HOSTILE_STRINGS[:30] + ["1001-1004", "1001", "1-5", "1001-1001x0"]))]
                code, _, err, seconds, peak_mb = run_one(path, extra, hang_seconds, trace_memory=trace_memory)
                trace = err[err.find("Traceback"):] if "Traceback" in err else ""
                stats.iterations += 1
                stats.exits[code] += 1
                if seconds * 1000 > stats.slowest_ms:
                    stats.slowest_ms, stats.slowest_iteration = seconds * 1000, i
                stats.peak_mb = max(stats.peak_mb, peak_mb)
                problems = []
                if code == -1:
                    problems.append(("hang", f"no result within {hang_seconds:.0f} s"))
                elif trace or "internal error" in err:
                    lines = [line for line in trace.splitlines() if line and not line.startswith((" ", "vfx:"))]
                    problems.append(("exception", (lines[-1] if lines else "internal error")[:300]))
                elif code not in (0, 2):
                    problems.append(("exit code", f"exit {code}: {err.strip().splitlines()[-1] if err.strip() else ''}"))
                if code != -1 and seconds > max_seconds and not trace_memory:
                    problems.append(("slow", f"{seconds * 1000:.0f} ms"))
                if peak_mb > max_mb:
                    problems.append(("memory", f"{peak_mb:.0f} MB peak"))
                for kind, detail in problems:
                    kept = ""
                    if keep is not None:
                        keep.mkdir(parents=True, exist_ok=True)
                        kept_path = keep / f"finding_{seed}_{i:06d}.yaml"
                        kept_path.write_bytes(path.read_bytes())
                        kept = str(kept_path)
                    stats.findings.append(Finding(i, kind, detail, kept, err[-2000:], trace[-4000:]))
                if progress and (i + 1) % 500 == 0:
                    print(f"  {i + 1}/{iterations}: {len(stats.findings)} findings", file=sys.stderr)
            stats.total_s = time.perf_counter() - started
    finally:
        signal.signal(signal.SIGALRM, previous_handler)
    return stats


def _short_traceback(text: str) -> str:
    """The traceback's frames in vfx's own files (each with its code line) and the exception line."""
    lines = text.strip().splitlines()
    kept = []
    for i, line in enumerate(lines):
        if line.startswith("  File ") and f"{ROOT / 'vfx'}" in line:
            kept.append(line.strip())
            if i + 1 < len(lines) and not lines[i + 1].startswith("  File "):
                kept.append("    " + lines[i + 1].strip())
    exceptions = [line for line in lines if line and not line.startswith((" ", "vfx:", "Traceback", "ERROR"))]
    return "\n".join(kept + [line[:300] for line in exceptions[-1:]])


def summary(stats: Stats, seed: int) -> str:
    rows = [
        ("iterations", str(stats.iterations)),
        ("seed", str(seed)),
        ("exits", ", ".join(f"{code}: {count}" for code, count in sorted(stats.exits.items()))),
        ("slowest run", f"{stats.slowest_ms:.1f} ms (iteration {stats.slowest_iteration})"),
        ("memory", f"largest growth of peak RSS in one run {stats.peak_mb:.1f} MB; process peak RSS "
                   f"{_rss_mb():.0f} MB" if not stats.traced else f"largest traced peak of one run {stats.peak_mb:.1f} MB"),
        ("wall time", f"{stats.total_s:.1f} s ({1000 * stats.total_s / max(stats.iterations, 1):.1f} ms per run)"),
        ("findings", str(len(stats.findings)) + (" (" + ", ".join(f"{k}: {n}" for k, n in sorted(
            Counter(f.kind for f in stats.findings).items())) + ")" if stats.findings else "")),
    ]
    width = max(len(name) for name, _ in rows)
    lines = ["vfx shot validate fuzz", "-" * (width + 40)]
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    for finding in stats.findings[:50]:
        lines.append(f"\n[{finding.kind}] iteration {finding.iteration}: {finding.detail}"
                     + (f"\n  input: {finding.input_file}" if finding.input_file else ""))
        if finding.traceback:
            lines.append("  " + _short_traceback(finding.traceback).replace("\n", "\n  "))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=3000, help="mutants to run (default 3000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--max-seconds", type=float, default=1.0, help="a run slower than this is a finding")
    parser.add_argument("--max-mb", type=float, default=256.0,
                        help="a run that grows the peak RSS (or, traced, allocates at its peak) by more is a finding")
    parser.add_argument("--trace-memory", action="store_true",
                        help="measure each run's memory with tracemalloc (exact, ten times slower; no time limit)")
    parser.add_argument("--hang-seconds", type=float, default=20.0, help="stop a run after this long (a finding)")
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep each finding's input file in")
    parser.add_argument("--no-demo", action="store_true", help="do not build the demo shot (no real media)")
    parser.add_argument("--progress", action="store_true", help="report progress every 500 iterations")
    args = parser.parse_args(argv)
    stats = fuzz(args.iterations, args.seed, max_seconds=args.max_seconds, max_mb=args.max_mb,
                 hang_seconds=args.hang_seconds, keep=args.keep, demo=not args.no_demo, progress=args.progress,
                 trace_memory=args.trace_memory)
    print(summary(stats, args.seed))
    return 1 if stats.findings else 0


if __name__ == "__main__":
    sys.exit(main())
