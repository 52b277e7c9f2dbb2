"""The comb network: Fig. 3A/3B layer by layer, progressive growing with fade-in, tied decoder levels."""

from __future__ import annotations

import pytest
import torch

from vfx.comb.network import TIED_LEVELS, CombConfig, CombNetwork, level_size
from vfx.errors import ConfigError


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# (level, first conv, second conv) parameter counts of Fig. 3A and 3B at width 1.0, exact values behind the
# tables' rounded figures ("2.4M" = 2,359,808 = 512 * 512 * 9 + 512).
ENCODER_TABLE = [(8, 2_320, 4_640), (7, 9_248, 18_496), (6, 36_928, 73_856), (5, 147_584, 295_168),
                 (4, 590_080, 1_180_160), (3, 2_359_808, 2_359_808), (2, 2_359_808, 2_359_808),
                 (1, 2_359_808, 2_359_808), (0, 2_359_808, 4_194_816)]
DECODER_TABLE = [(0, 4_194_816, 2_359_808), (1, 2_359_808, 2_359_808), (2, 2_359_808, 2_359_808),
                 (3, 2_359_808, 2_359_808), (4, 1_179_904, 590_080), (5, 295_040, 147_584), (6, 73_792, 36_928),
                 (7, 18_464, 9_248), (8, 4_624, 2_320)]


@pytest.fixture(scope="module")
def full_network() -> CombNetwork:
    with torch.device("meta"):  # 58 M parameters without allocating them
        return CombNetwork(CombConfig(resolution=1024, width=1.0, personas=("a", "b")))


def test_encoder_matches_fig_3a_layer_by_layer(full_network):
    encoder = full_network.encoder
    for level, first, second in ENCODER_TABLE:
        assert (count(encoder.levels[level].conv1), count(encoder.levels[level].conv2)) == (first, second), level
    assert count(encoder.from_rgb[8]) == 64  # the 1x1 input convolution at 1024²
    total = sum(count(level) for level in encoder.levels) + count(encoder.from_rgb[8])
    assert round(total / 1e6, 1) == 23.1


def test_decoder_matches_fig_3b_layer_by_layer(full_network):
    decoder = full_network.decoders["a"]
    levels = [*full_network.tied["levels"], *decoder.levels]
    for level, first, second in DECODER_TABLE:
        assert (count(levels[level].conv1), count(levels[level].conv2)) == (first, second), level
    assert count(decoder.to_rgb[-1]) == 51  # the 1x1 sigmoid output at 1024²
    total = sum(count(level) for level in levels) + count(decoder.to_rgb[-1])
    assert round(total / 1e6, 1) == 23.1


@pytest.mark.parametrize("personas", [("x", "y"), ("p1", "p2", "p3", "p4")])
def test_every_level_has_the_right_shapes(personas):
    net = CombNetwork(CombConfig(resolution=64, width=0.1, personas=personas)).requires_grad_(False)
    latent = net.config.latent_channels
    for level in range(net.config.top_level + 1):
        for alpha in (0.0, 0.5, 1.0):
            net.grow(level, alpha)
            size = level_size(level)
            z = net.encode(torch.rand(2, 3, size, size))
            assert z.shape == (2, latent, 1, 1)
            for persona in personas:
                out = net.decode(z, persona)
                assert out.shape == (2, 3, size, size) and 0.0 <= float(out.min()) and float(out.max()) <= 1.0


def test_alpha_zero_reproduces_the_previous_level_upsampled():
    torch.manual_seed(0)
    net = CombNetwork(CombConfig(resolution=32, width=0.1, personas=("x", "y")))
    x = torch.rand(2, 3, 32, 32)
    for level in range(1, net.config.top_level + 1):
        size = level_size(level)
        image = torch.nn.functional.interpolate(x, size=(size, size), mode="area")
        net.grow(level - 1)
        previous = net.decode(net.encode(torch.nn.functional.avg_pool2d(image, 2)), "y")
        net.grow(level, alpha=0.0)
        faded = net.decode(net.encode(image), "y")
        expected = torch.nn.functional.interpolate(previous, scale_factor=2.0, mode="nearest")
        assert torch.equal(faded, expected), level


def test_tied_levels_are_one_set_of_tensors_and_stay_so_after_a_step():
    net = CombNetwork(CombConfig(resolution=16, width=0.1, personas=("x", "y", "z")))
    tied = {id(p) for p in net.tied.parameters()}
    for persona in net.personas:
        own = {id(p) for p in net.own_parameters(persona)}
        assert not own & tied, "a decoder's own parameters exclude the tied levels"
    assert len(net.tied["levels"]) == TIED_LEVELS
    # The network holds each tied tensor once (state dict and optimiser see one copy).
    assert not any(".tied." in key for key in net.state_dict() if key.startswith("decoders."))
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.grow(2)
    before = {name: p.detach().clone() for name, p in net.tied.named_parameters()}
    loss = net(torch.rand(2, 3, 16, 16), "x").mean()
    loss.backward()
    optimiser.step()
    changed = [name for name, p in net.tied.named_parameters() if not torch.equal(p, before[name])]
    assert changed, "the tied levels train"
    z = net.encode(torch.rand(1, 3, 16, 16))
    net.grow(1)
    # At the tied levels every decoder is the same function of the latent.
    outs = [net.decoders[p](z, 1) for p in net.personas]
    assert all(torch.equal(outs[0], o) for o in outs[1:])


def test_a_step_on_one_persona_leaves_the_other_decoders_own_levels_alone():
    net = CombNetwork(CombConfig(resolution=16, width=0.1, personas=("x", "y")))
    net.grow(2)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    y_before = [p.detach().clone() for p in net.own_parameters("y")]
    x_before = [p.detach().clone() for p in net.own_parameters("x")]
    net(torch.rand(2, 3, 16, 16), "x").mean().backward()
    optimiser.step()
    assert all(torch.equal(a, b) for a, b in zip(y_before, net.own_parameters("y")))
    assert not all(torch.equal(a, b) for a, b in zip(x_before, net.own_parameters("x")))


@pytest.mark.parametrize("bad", [{"resolution": 100}, {"resolution": 2048}, {"width": 0}, {"personas": ()},
                                 {"personas": ("a", "a")}])
def test_bad_configs_are_refused(bad):
    with pytest.raises(ConfigError):
        CombConfig(**bad)


def test_bad_level_persona_and_shape_are_refused():
    net = CombNetwork(CombConfig(resolution=16, width=0.1, personas=("x", "y")))
    with pytest.raises(ConfigError, match="Invalid level"):
        net.grow(3)
    net.grow(1)
    with pytest.raises(ConfigError, match=r"\(B, 3, 8, 8\) at level 1"):
        net.encode(torch.rand(1, 3, 16, 16))
    with pytest.raises(ConfigError, match="Unknown persona 'w'"):
        net.decode(torch.rand(1, net.config.latent_channels, 1, 1), "w")
