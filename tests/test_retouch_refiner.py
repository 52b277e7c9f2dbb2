"""The retouch refiner: Eq. 12 compositing, size rules, discriminator and losses, learning on a toy shot, saving."""

from __future__ import annotations

import json

import pytest
import torch

from vfx.errors import ConfigError
from vfx.face.layout import FaceLabel
from vfx.retouch.refiner import (
    MANIFEST_FILE,
    REFINER_SCHEMA,
    WEIGHTS_FILE,
    LayoutRefiner,
    MultiScaleDiscriminator,
    RefinerConfig,
    RefinerSample,
    feature_matching_loss,
    hinge_d_loss,
    hinge_g_loss,
    kl_divergence,
    layout_onehot,
    load_refiner,
    masked_l1,
    masked_ssim_loss,
    refine,
    save_refiner,
    train_refiner,
)

TINY = RefinerConfig(width=0.125, mapping_layers=2, disc_scales=2)
# Per-class colours of the toy faces (background, skin, brows, eyes, nose, upper lip, lower lip, mouth).
COLOURS = torch.tensor([[0.2, 0.3, 0.5], [0.85, 0.65, 0.55], [0.3, 0.2, 0.1], [0.95, 0.95, 0.95],
                        [0.8, 0.55, 0.45], [0.75, 0.3, 0.35], [0.7, 0.25, 0.3], [0.15, 0.05, 0.05]])


def toy_samples(count: int, size: int, seed: int) -> list[RefinerSample]:
    """Smooth toy faces (per-class colours times a shading ramp); the warp filled a random square hole with grey."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    samples = []
    for _ in range(count):
        cx, cy = ((torch.rand(2, generator=g) - 0.5) * 0.3).tolist()
        labels = torch.zeros(size, size, dtype=torch.long)
        labels[((xs - cx) / 0.75) ** 2 + ((ys - cy) / 0.9) ** 2 < 1] = FaceLabel.SKIN
        for ex in (-0.3, 0.3):
            labels[((xs - cx - ex) / 0.15) ** 2 + ((ys - cy + 0.25) / 0.08) ** 2 < 1] = FaceLabel.EYES
        labels[((xs - cx) / 0.35) ** 2 + ((ys - cy - 0.4) / 0.06) ** 2 < 1] = FaceLabel.UPPER_LIP
        labels[((xs - cx) / 0.35) ** 2 + ((ys - cy - 0.52) / 0.06) ** 2 < 1] = FaceLabel.LOWER_LIP
        shade = 0.85 + 0.15 * (xs * float(torch.rand(1, generator=g)) - ys * 0.5)
        target = (COLOURS[labels].permute(2, 0, 1) * shade).clamp(0, 1)
        side = size // 4 + int(torch.randint(0, size // 4, (1,), generator=g))
        y0, x0 = (int(torch.randint(0, size - side, (1,), generator=g)) for _ in range(2))
        hole = torch.zeros(1, size, size)
        hole[:, y0:y0 + side, x0:x0 + side] = 1
        samples.append(RefinerSample(labels, target * (1 - hole) + 0.5 * hole, hole, target))
    return samples


def stack(samples: list[RefinerSample]) -> tuple[torch.Tensor, ...]:
    return tuple(torch.stack([getattr(s, name) for s in samples]) for name in ("layout", "warped", "hole", "target"))


def random_inputs(config: RefinerConfig, b: int = 2, h: int = 32, w: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    layout = layout_onehot(torch.randint(0, config.num_labels, (b, h, w), generator=g), config.num_labels)
    warped = torch.rand(b, 3, h, w, generator=g)
    hole = (torch.rand(b, 1, h, w, generator=g) < 0.3).float()
    return layout, warped, hole


@pytest.fixture(scope="module")
def trained():
    """A refiner trained 120 steps on 12 toy faces at 32x32 (a few seconds on two CPU cores)."""
    config = RefinerConfig(width=0.25, mapping_layers=2, disc_scales=2, lr=1e-3, seed=0)
    return train_refiner(toy_samples(12, 32, seed=0), config, steps=120, batch_size=4, log_every=20)


def test_default_config_matches_the_sources():
    config = RefinerConfig()
    assert config.num_labels == len(FaceLabel) == 8
    assert (config.depth, config.bottom_up_levels, config.z_dim, config.mapping_layers) == (2, 3, 64, 8)
    assert config.disc_scales == 3 and config.size_multiple == 32
    assert (config.l1_weight, config.ssim_weight, config.fm_weight, config.adv_weight, config.kl_weight) == (
        1.0, 1.0, 10.0, 1.0, 0.01)
    assert config.lr == 2e-4 and config.betas == (0.5, 0.999)
    assert RefinerConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("bad", [{"width": 0}, {"depth": 0}, {"num_labels": 1.5}, {"kl_weight": -1},
                                 {"betas": (0.5, 1.0)}, {"lr": 0}])
def test_invalid_config_is_refused(bad):
    with pytest.raises(ConfigError):
        RefinerConfig(**bad)


@pytest.mark.parametrize("size", [(32, 32), (32, 64), (64, 32)])
def test_shapes_and_eq_12_outside_the_hole(size):
    net = LayoutRefiner(TINY).eval()
    layout, warped, hole = random_inputs(TINY, 2, *size)
    with torch.no_grad():
        result = net(layout, warped, hole, return_latent=True)
    assert result.image.shape == (2, 3, *size) and result.image.dtype == torch.float32
    assert result.mu.shape == result.logvar.shape == (2, TINY.z_dim)
    outside = (hole == 0).expand_as(warped)
    assert torch.equal(result.image[outside], warped[outside])  # Eq. 12: the warped input, bit for bit
    assert not torch.equal(result.image[~outside], warped[~outside])


def test_an_empty_hole_returns_the_warped_image_exactly():
    net = LayoutRefiner(TINY)
    layout, warped, _ = random_inputs(TINY)
    empty = torch.zeros(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(net.eval()(layout, warped, empty), warped)
        assert torch.equal(net.train()(layout, warped, empty), warped)
    assert torch.equal(refine(net, layout, warped, empty), warped)


def test_eval_is_deterministic_and_every_parameter_learns():
    net = LayoutRefiner(TINY)
    layout, warped, hole = random_inputs(TINY)
    with torch.no_grad():
        assert torch.equal(net.eval()(layout, warped, hole), net(layout, warped, hole))
    out = net.train()(layout, warped, hole, return_latent=True)
    (out.image.sum() + kl_divergence(out.mu, out.logvar)).backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize("size", [(48, 32), (32, 40), (16, 16)])
def test_a_size_that_is_not_a_multiple_raises(size):
    net = LayoutRefiner(TINY)
    layout, warped, hole = random_inputs(TINY, 1, *size)
    with pytest.raises(ConfigError, match=f"{size[0]}x{size[1]}.*multiple of 32"):
        net(layout, warped, hole)


def test_wrong_layout_channels_raise():
    net = LayoutRefiner(TINY)
    layout, warped, hole = random_inputs(TINY)
    with pytest.raises(ConfigError, match="layout"):
        net(layout[:, :5], warped, hole)
    with pytest.raises(ConfigError, match="hole"):
        net(layout, warped, hole[:, :, :16])


def test_layout_onehot_round_trip_and_range():
    labels = torch.randint(0, 8, (2, 8, 8))
    onehot = layout_onehot(labels)
    assert onehot.shape == (2, 8, 8, 8) and torch.equal(onehot.argmax(1), labels)
    assert layout_onehot(labels[0]).shape == (8, 8, 8)
    with pytest.raises(ConfigError, match="out of range"):
        layout_onehot(torch.full((4, 4), 8))


def test_discriminator_features_per_scale_and_feature_matching():
    disc = MultiScaleDiscriminator(TINY)
    layout, warped, hole = random_inputs(TINY)
    outputs = disc(warped, layout, hole)
    assert len(outputs) == TINY.disc_scales
    for out in outputs:
        assert len(out.features) == TINY.disc_layers + 1 and out.logits.shape[:2] == (2, 1)
    assert outputs[1].features[0].shape[-1] < outputs[0].features[0].shape[-1]  # the pyramid's next level
    disc.eval()  # in training mode each call takes a power-iteration step of the spectral norms
    with torch.no_grad():
        outputs = disc(warped, layout, hole)
        assert float(feature_matching_loss(outputs, disc(warped.clone(), layout, hole))) == 0.0
        other = disc(torch.rand_like(warped), layout, hole)
        assert float(feature_matching_loss(other, outputs)) > 0
        assert float(hinge_d_loss(outputs, other)) >= 0 and hinge_g_loss(other).ndim == 0


def test_kl_and_masked_losses():
    zeros = torch.zeros(3, 64)
    assert float(kl_divergence(zeros, zeros)) == 0.0
    assert float(kl_divergence(torch.ones(3, 64), zeros)) == pytest.approx(32.0)
    image, hole = torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    hole[..., 8:20, 8:20] = 1
    assert float(masked_l1(image, image, hole)) == 0.0
    assert float(masked_ssim_loss(image, image, hole)) == pytest.approx(0.0, abs=1e-5)
    moved = image.clone()
    moved[..., 28:32, 28:32] = 0  # outside the hole and beyond the SSIM window: no loss
    assert float(masked_l1(moved, image, hole)) == 0.0
    assert float(masked_ssim_loss(moved, image, hole)) == pytest.approx(0.0, abs=1e-5)
    assert float(masked_l1(image + 0.25, image, hole)) == pytest.approx(0.25)
    assert float(masked_l1(image, image + 1, torch.zeros_like(hole))) == 0.0


def test_training_learns_the_toy_shot(trained):
    assert trained.steps == 120 and trained.size == (32, 32) and not trained.generator.training
    assert [row["step"] for row in trained.history] == [20.0, 40.0, 60.0, 80.0, 100.0, 120.0]
    assert trained.history[-1]["l1"] < 0.7 * trained.history[0]["l1"]
    layout, warped, hole, target = stack(toy_samples(8, 32, seed=1))  # held-out faces
    refined = refine(trained, layout, warped, hole)
    assert refined.shape == warped.shape and float(refined.min()) >= 0 and float(refined.max()) <= 1
    before, after = float(masked_l1(warped, target, hole)), float(masked_l1(refined, target, hole))
    assert after < 0.7 * before, (after, before)
    outside = (hole == 0).expand_as(warped)
    assert torch.equal(refined[outside], warped[outside])
    assert torch.equal(refine(trained, layout_onehot(layout), warped, hole), refined)  # one-hot layouts too


def test_training_is_deterministic_and_leaves_the_global_rng_alone():
    samples = toy_samples(4, 32, seed=2)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    runs = [train_refiner(samples, TINY, steps=3, batch_size=2, log_every=1) for _ in range(2)]
    assert torch.equal(torch.get_rng_state(), state)
    assert runs[0].history and [
        {k: v for k, v in row.items() if k != "seconds"} for row in runs[0].history] == [
        {k: v for k, v in row.items() if k != "seconds"} for row in runs[1].history]
    for a, b in zip(runs[0].generator.state_dict().values(), runs[1].generator.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    other = train_refiner(samples, RefinerConfig(width=0.125, mapping_layers=2, disc_scales=2, seed=1), steps=3,
                          batch_size=2, log_every=1)
    assert other.history[-1]["g_total"] != runs[0].history[-1]["g_total"]


def test_training_budget_and_sample_checks():
    samples = toy_samples(2, 32, seed=3)
    with pytest.raises(ConfigError, match="budget"):
        train_refiner(samples, TINY)
    rows = []
    timed = train_refiner(samples, TINY, seconds=0.2, batch_size=1, log_every=1000, progress=rows.append)
    assert timed.steps >= 1 and rows == timed.history and rows[-1]["step"] == timed.steps
    bad = RefinerSample(torch.zeros(40, 32, dtype=torch.long), torch.rand(3, 40, 32), torch.ones(1, 40, 32),
                        torch.rand(3, 40, 32))
    with pytest.raises(ConfigError, match="40x32"):
        train_refiner([bad], TINY, steps=1)
    onehot = RefinerSample(layout_onehot(samples[0].layout), *(getattr(samples[0], n) for n in ("warped", "hole",
                                                                                                 "target")))
    with pytest.raises(ConfigError, match="integer labels"):
        train_refiner([onehot], TINY, steps=1)


def test_save_load_round_trip(trained, tmp_path):
    folder = save_refiner(tmp_path / "refiner", trained)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["schema"] == REFINER_SCHEMA and manifest["steps"] == 120 and manifest["size"] == [32, 32]
    assert manifest["config"] == trained.config.to_dict() and manifest["history"] == trained.history
    assert not [p.name for p in folder.iterdir() if p.name not in (MANIFEST_FILE, WEIGHTS_FILE)]
    loaded = load_refiner(folder, "cpu")
    assert loaded.config == trained.config and loaded.steps == trained.steps and not loaded.generator.training
    layout, warped, hole, _ = stack(toy_samples(3, 32, seed=4))
    assert torch.equal(refine(loaded, layout, warped, hole), refine(trained, layout, warped, hole))


def test_load_errors_say_how_to_make_a_refiner(trained, tmp_path):
    with pytest.raises(ConfigError, match="not found.*vfx retouch SHOT"):
        load_refiner(tmp_path / "nowhere")
    folder = save_refiner(tmp_path / "refiner", trained)
    (folder / WEIGHTS_FILE).unlink()
    with pytest.raises(ConfigError, match=f"{WEIGHTS_FILE} not found.*vfx retouch SHOT"):
        load_refiner(folder)
    folder = save_refiner(tmp_path / "other", trained)
    data = json.loads((folder / MANIFEST_FILE).read_text())
    (folder / MANIFEST_FILE).write_text(json.dumps(data | {"schema": "vfx.Refiner/0"}))
    with pytest.raises(ConfigError, match="schema"):
        load_refiner(folder)
