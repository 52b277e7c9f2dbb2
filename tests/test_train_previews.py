"""Training you can watch: preview.png, loss.png and the per-level timelapse strips, refreshed at every checkpoint by
train_comb (the one place they are drawn), without touching training's random streams: a resumed run still matches
an uninterrupted one bit for bit, and so do its pictures."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from vfx.comb import train as train_module
from vfx.comb.checkpoint import latest_checkpoint, load_checkpoint
from vfx.comb.data import PersonaData
from vfx.comb.network import CombConfig, CombNetwork
from vfx.comb.preview import (
    LOSS_FILE,
    PREVIEW_FILE,
    TIMELAPSE_ROWS,
    preview_grid,
    timelapse_file,
    timelapse_kept,
    training_pictures,
)
from vfx.comb.train import TrainConfig, describe, train_comb
from vfx.io.image import read_image, read_image_size
from vfx.utils.atomic import TEMP_MARKER

TILE, HEADER = 64, 18  # a timelapse row's tile side at small levels, and the strip's header band


def _persona(name: str, seed: int, count: int = 8, size: int = 8, holdout: float = 0.25) -> PersonaData:
    rng = np.random.default_rng(seed)
    base = rng.random((1, size, size, 3))
    images = np.clip(base + rng.normal(0, 0.05, (count, size, size, 3)), 0, 1)
    return PersonaData.from_arrays(name, images, holdout=holdout)


def _personas() -> dict[str, PersonaData]:
    return {"p0": _persona("p0", 0), "p1": _persona("p1", 1)}


# 8² (2 levels), 4 iterations a level and 2 of fine-tuning: 10 iterations, a checkpoint every 2.
CONFIG = TrainConfig(iters_per_level=4, fine_tune_iters=2, batch_size=2, checkpoint_every=2, log_every=1)


def _rows(path) -> int:
    height, _ = read_image_size(path)
    assert (height - HEADER) % TILE == 0, height
    return (height - HEADER) // TILE


def test_timelapse_keeps_at_most_12_evenly_thinned_rows_each_within_the_last():
    assert timelapse_kept(1) == [1] and timelapse_kept(12) == list(range(1, 13))
    assert timelapse_kept(13) == [2, 4, 6, 8, 10, 12, 13] and timelapse_kept(30) == [4, 8, 12, 16, 20, 24, 28, 30]
    previous: list[int] = []
    for index in range(1, 2000):
        kept = timelapse_kept(index)
        assert kept[-1] == index and len(kept) <= TIMELAPSE_ROWS and kept == sorted(set(kept))
        gaps = np.diff(kept[:-1]) if len(kept) > 2 else np.array([1])
        assert len(set(gaps.tolist())) == 1, (index, kept)  # evenly spaced, the newest aside
        assert set(kept) <= set(previous) | {index}, index  # a row dropped once is never needed again
        previous = kept


def test_pictures_are_written_at_the_first_checkpoint_and_refreshed_at_the_next(tmp_path):
    run = tmp_path / "run"
    train_comb(_personas(), run, resolution=8, width=0.05, config=CONFIG, stop_after=2)
    preview, loss, strip = run / PREVIEW_FILE, run / LOSS_FILE, run / timelapse_file(0)
    assert preview.is_file() and loss.is_file() and strip.is_file(), sorted(os.listdir(run))
    assert _rows(strip) == 1
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (preview, loss, strip)}
    assert not list(run.rglob(f"*{TEMP_MARKER}*"))
    time.sleep(0.01)
    train_comb(_personas(), run, resolution=8, width=0.05, config=CONFIG, resume=True, stop_after=4)
    for path, (mtime, data) in before.items():
        assert path.stat().st_mtime_ns > mtime and path.read_bytes() != data, path.name
    assert _rows(strip) == 2 and not (run / timelapse_file(1)).exists()
    assert sorted(p.name for p in (run / "timelapse" / "level0").iterdir()) == ["00000002.png", "00000004.png"]
    # Level 1 starts its own strip at its first checkpoint; fine-tuning rows join the top level's.
    train_comb(_personas(), run, resolution=8, width=0.05, config=CONFIG, resume=True)
    assert _rows(strip) == 2 and _rows(run / timelapse_file(1)) == 3  # iterations 6, 8 and 10
    found = training_pictures(latest_checkpoint(run))  # a step_* folder names its run's pictures
    assert found == {"preview": preview, "loss": loss, "timelapse_level0": strip,
                     "timelapse_level1": run / timelapse_file(1)}
    info = describe(load_checkpoint(run)[1], run)
    assert info["preview"] == str(preview) and info["timelapse_level1"] == str(run / timelapse_file(1))


def test_a_preview_row_shows_each_held_out_face_then_every_decoder(tmp_path):
    run = tmp_path / "run"
    train_comb(_personas(), run, resolution=8, width=0.05, config=CONFIG, stop_after=2)
    strip = read_image(run / timelapse_file(0)).pixels
    assert strip.shape[1] == 88 + 2 * 3 * TILE  # the label column, then per persona: its face + 2 decoders
    held = _personas()["p0"].held_out[0][0].float().div(255.0)  # (3, 8, 8), at level 0 (4²): 2x2 means
    expected = held.reshape(3, 4, 2, 4, 2).mean(dim=(2, 4)).permute(1, 2, 0).numpy()
    tile = strip[HEADER:HEADER + TILE, 88:88 + TILE]
    np.testing.assert_allclose(tile[8::16, 8::16], expected, atol=1 / 255 + 1e-6)


def test_pictures_do_not_change_training_and_resume_draws_them_again_exactly(tmp_path, monkeypatch):
    """Bit-identical weights with and without the pictures; a run stopped between checkpoints and resumed ends
    with the weights, the preview and the timelapse rows of an uninterrupted one."""
    _, straight = train_comb(_personas(), tmp_path / "a", resolution=8, width=0.05, config=CONFIG)
    for stop in (3, 7):  # mid-interval: no timelapse row where a chunk stops
        train_comb(_personas(), tmp_path / "b", resolution=8, width=0.05, config=CONFIG, stop_after=stop,
                   resume=stop != 3)
    # A kill during a picture write leaves a temporary file; the resume removes it.
    stale = tmp_path / "b" / "timelapse" / "level1" / f".00000008.x1{TEMP_MARKER}.png"
    stale.write_bytes(b"half")
    (tmp_path / "b" / f".preview.x2{TEMP_MARKER}.png").write_bytes(b"half")
    _, resumed = train_comb(_personas(), tmp_path / "b", resolution=8, width=0.05, config=CONFIG, resume=True)
    assert not list((tmp_path / "b").rglob(f"*{TEMP_MARKER}*"))
    assert resumed.losses == straight.losses
    with monkeypatch.context() as patch:
        patch.setattr(train_module, "write_training_pictures", lambda *args, **kwargs: {})
        train_comb(_personas(), tmp_path / "c", resolution=8, width=0.05, config=CONFIG)
    assert not (tmp_path / "c" / PREVIEW_FILE).exists()
    weights = [load_checkpoint(tmp_path / name)[0].state_dict() for name in ("a", "b", "c")]
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]) and torch.equal(value, weights[2][key]), key
    for relative in (PREVIEW_FILE, timelapse_file(0), timelapse_file(1), "timelapse/level1/00000010.png"):
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes(), relative


def test_a_long_level_keeps_12_rows_at_most(tmp_path):
    config = TrainConfig(iters_per_level=30, batch_size=1, checkpoint_every=1, log_every=10)
    train_comb({"p0": _persona("p0", 0, size=4)}, tmp_path / "run", resolution=4, width=0.05, config=config)
    rows = sorted(int(p.stem) for p in (tmp_path / "run" / "timelapse" / "level0").iterdir())
    assert rows == [4, 8, 12, 16, 20, 24, 28, 30]
    assert _rows(tmp_path / "run" / timelapse_file(0)) == 8


@pytest.mark.parametrize("mode", [True, False])
def test_the_preview_restores_the_network_mode_and_uses_no_global_random_stream(mode):
    torch.manual_seed(0)
    net = CombNetwork(CombConfig(resolution=8, width=0.05, personas=("p0", "p1")))
    net.grow(1)
    net.train(mode)
    state = torch.get_rng_state()
    grid = preview_grid(net, {"p0": _persona("p0", 0, count=4, holdout=0)}, count=2)  # no held-out crops: its own generator
    assert grid.shape == (2 * 8, 3 * 8, 3) and grid.dtype == np.float32
    assert net.training is mode and torch.equal(torch.get_rng_state(), state)
    assert all(p.grad is None for p in net.parameters())
