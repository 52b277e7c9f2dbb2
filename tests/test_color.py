"""Colour conversion through OpenColorIO's built-in ACES configs."""

from __future__ import annotations

import numpy as np
import pytest

from vfx.errors import ColorError
from vfx.io import color
from vfx.io.color import WORKING_SPACE, ColorConverter, from_working, list_colorspaces, resolve_colorspace, to_working


@pytest.fixture(autouse=True)
def _no_env_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests assume the built-in studio config unless they set $OCIO themselves."""
    monkeypatch.delenv("OCIO", raising=False)


def _in_gamut_acescg(shape: tuple[int, ...] = (48, 64)) -> np.ndarray:
    """ACEScg values that land inside [0, 1] in sRGB: made from sRGB values, then converted."""
    srgb = np.random.default_rng(0).uniform(0.02, 0.98, (*shape, 3)).astype(np.float32)
    return from_working(srgb, "ACEScg")


def test_round_trip_acescg_working_acescg() -> None:
    acescg = _in_gamut_acescg()
    working = to_working(acescg, "ACEScg")
    assert working.min() >= 0.0 and working.max() <= 1.0
    back = from_working(working, "ACEScg")
    np.testing.assert_allclose(back, acescg, atol=1e-5, rtol=1e-5)
    assert back.dtype == np.float32 and back.shape == acescg.shape


def test_round_trip_working_acescg_working() -> None:
    srgb = np.random.default_rng(1).uniform(0.0, 1.0, (48, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(to_working(from_working(srgb, "ACEScg"), "ACEScg"), srgb, atol=1e-5)


def test_known_grey_value() -> None:
    grey = np.full((2, 3, 3), 0.5, np.float32)
    acescg = from_working(grey, "ACEScg")
    np.testing.assert_allclose(acescg, 0.21404, atol=2e-4)
    np.testing.assert_allclose(to_working(np.full((1, 1, 3), 0.21404, np.float32), "ACEScg"), 0.5, atol=2e-4)


def test_out_of_range_values_pass_through_unclamped() -> None:
    px = np.array([[[2.0, 1.0, 0.5], [1.0, 0.0, 0.0]]], np.float32)
    working = to_working(px, "ACEScg")
    assert working.max() > 1.0 and working.min() < 0.0  # not clipped: the transform stays invertible
    np.testing.assert_allclose(from_working(working, "ACEScg"), px, atol=1e-5)


def test_identity_returns_input_unchanged() -> None:
    px = np.random.default_rng(2).random((8, 8, 4), dtype=np.float32)
    px[0, 0, 0] = np.nan
    out = ColorConverter("ACEScg", "ACEScg").apply(px)
    assert out is px
    for alias in ("lin_ap1", "lin_ap1_scene", "acescg", "scene_linear"):
        conv = ColorConverter("ACEScg", alias)
        assert conv.is_identity and conv.apply(px) is px
    assert to_working(px, WORKING_SPACE) is px


def test_alpha_untouched_and_input_not_modified() -> None:
    rgba = np.concatenate([_in_gamut_acescg((16, 16)), np.zeros((16, 16, 1), np.float32)], axis=-1)
    rgba[..., 3] = np.linspace(-0.5, 2.5, 256, dtype=np.float32).reshape(16, 16)
    before = rgba.copy()
    out = to_working(rgba, "ACEScg")
    np.testing.assert_array_equal(rgba, before)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    np.testing.assert_allclose(out[..., :3], to_working(rgba[..., :3], "ACEScg"), atol=1e-6)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("ACEScg", "ACEScg"),
        ("acescg", "ACEScg"),
        ("lin_ap1", "ACEScg"),
        ("lin_ap1_scene", "ACEScg"),
        ("ACES - ACEScg", "ACEScg"),
        ("scene_linear", "ACEScg"),
        ("ACES2065-1", "ACES2065-1"),
        ("lin_ap0_scene", "ACES2065-1"),
        ("aces", "ACES2065-1"),
        ("ACEScct", "ACEScct"),
        ("compositing_log", "ACEScct"),
        ("srgb_tx", WORKING_SPACE),
        ("srgb_texture", WORKING_SPACE),
        ("srgb_rec709_scene", WORKING_SPACE),
        ("color_picking", WORKING_SPACE),
        ("lin_srgb", "Linear Rec.709 (sRGB)"),
        ("srgb_display", "sRGB - Display"),
        ("arri_logc4", "ARRI LogC4"),
        ("slog3_sgamut3cine", "S-Log3 S-Gamut3.Cine"),
        ("raw", "Raw"),
        ("data", "Raw"),
    ],
)
def test_names_and_aliases_resolve(name: str, canonical: str) -> None:
    assert resolve_colorspace(name) == canonical


def test_unknown_colorspace_suggests_close_names() -> None:
    with pytest.raises(ColorError) as err:
        ColorConverter("ACEScgg", WORKING_SPACE)
    msg = str(err.value)
    assert "did you mean 'ACEScg'?" in msg and "valid names include" in msg
    with pytest.raises(ColorError, match="did you mean 'sRGB Encoded Rec.709 \\(sRGB\\)'"):
        to_working(np.zeros((1, 1, 3), np.float32), "srgb")


def test_list_colorspaces() -> None:
    names = list_colorspaces()
    assert {"ACEScg", "ACES2065-1", "ACEScct", WORKING_SPACE, "ARRI LogC4"} <= set(names)
    assert "lin_ap1" not in names and "lin_ap1" in list_colorspaces(include_aliases=True)


def test_env_ocio_wins_and_argument_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIO", "ocio://cg-config-latest")
    assert "ARRI LogC4" not in list_colorspaces()  # camera spaces live in the studio config only
    with pytest.raises(ColorError):
        ColorConverter("ARRI LogC4", "ACEScg")
    assert "ARRI LogC4" in list_colorspaces("ocio://studio-config-latest")
    assert ColorConverter("ARRI LogC4", "ACEScg", config="ocio://studio-config-latest").src == "ARRI LogC4"


def test_bad_config_is_a_color_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ColorError, match="Cannot load the OpenColorIO config"):
        ColorConverter("ACEScg", WORKING_SPACE, config=tmp_path / "missing.ocio")
    monkeypatch.setenv("OCIO", str(tmp_path / "missing.ocio"))
    with pytest.raises(ColorError, match="unset \\$OCIO"):
        to_working(np.zeros((1, 1, 3), np.float32), "ACEScg")


def test_interop_ids() -> None:
    assert color.interop_id("ACEScg") == "lin_ap1_scene"
    assert color.interop_id("ACES2065-1") == "lin_ap0_scene"
    assert color.interop_id("srgb_tx") == "srgb_rec709_scene"


def test_processors_are_cached_and_inverse_works() -> None:
    a = ColorConverter("ACEScg", WORKING_SPACE)
    b = ColorConverter("lin_ap1", "srgb_tx")
    assert a._cpu is b._cpu  # same (config, src, dst) after resolving aliases
    px = _in_gamut_acescg((4, 4))
    np.testing.assert_allclose(a.inverse().apply(a.apply(px)), px, atol=1e-5)


def test_bad_shapes_and_dtypes() -> None:
    conv = ColorConverter("ACEScg", WORKING_SPACE)
    with pytest.raises(ValueError):
        conv.apply(np.zeros((4, 4, 2), np.float32))
    with pytest.raises(ValueError):
        conv.apply(np.zeros((4, 4, 3), np.uint8))


# ------------------------------------------------------------------------------------------ display / view


def test_display_view_lists_and_defaults() -> None:
    from vfx.io.color import DisplayView, list_displays, list_views

    displays = list_displays()
    assert displays[0] == "sRGB - Display" and "Rec.1886 Rec.709 - Display" in displays
    assert "Un-tone-mapped" in list_views("sRGB - Display")
    dv = DisplayView("lin_ap1", "srgb - display", "raw")  # names matched case-insensitively, kept as spelled
    assert (dv.src, dv.display, dv.view) == ("ACEScg", "sRGB - Display", "Raw")
    rgba = np.array([[[0.18, 0.18, 0.18, 0.25]]], np.float32)
    assert dv.apply(rgba)[0, 0, 3] == np.float32(0.25)  # alpha untouched


def test_display_view_follows_the_ocio_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import PyOpenColorIO as ocio

    from vfx.io.color import DisplayView

    monkeypatch.setenv("OCIO", "ocio://cg-config-latest")
    cg = ocio.Config.CreateFromFile("ocio://cg-config-latest")
    dv = DisplayView("ACEScg")
    assert dv.config.getCacheID() == cg.getCacheID()
    assert (dv.display, dv.view) == (cg.getDefaultDisplay(), cg.getDefaultView(cg.getDefaultDisplay()))


def test_unknown_display_names_the_valid_ones() -> None:
    from vfx.io.color import DisplayView

    with pytest.raises(ColorError, match="'sRGB - Display'.*'Display P3 - Display'") as err:
        DisplayView("ACEScg", "Rec.709")
    assert err.value.exit_code == 2
    with pytest.raises(ColorError, match="did you mean 'Un-tone-mapped'"):
        DisplayView("ACEScg", "sRGB - Display", "untonemapped")
