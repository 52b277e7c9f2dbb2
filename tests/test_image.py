"""Still-image I/O: every format round-trips, EXR keeps layers and metadata, bad media fails cleanly."""

from __future__ import annotations

import logging
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from vfx.errors import ColorError, ConfigError, InvalidPixelsError, MediaError
from vfx.io.image import (
    HALF_MAX,
    ExrMetadata,
    Image,
    Window,
    read_image,
    write_image,
)

H, W = 48, 64
OIIOTOOL = Path(sys.executable).parent / "oiiotool"


@pytest.fixture(autouse=True)
def _builtin_ocio_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Colour-space tags resolve against the built-in studio config, whatever the shell's $OCIO says."""
    monkeypatch.delenv("OCIO", raising=False)


def _pixels(channels: int, *, seed: int = 0, smooth: bool = False) -> np.ndarray:
    """(H, W, C) float32 in [0, 1]: noise, or a smooth ramp that a lossy codec keeps."""
    rng = np.random.default_rng(seed)
    if not smooth:
        return rng.random((H, W, channels), dtype=np.float32)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    planes = [(0.1 + 0.8 * (np.sin(xx / (7 + c) + yy / (11 + c)) * 0.5 + 0.5)) for c in range(channels)]
    return np.stack(planes, axis=-1).astype(np.float32)


def _quantised(px: np.ndarray, maxcode: int) -> tuple[np.ndarray, np.ndarray]:
    codes = np.rint(px * maxcode).astype(np.uint32)
    return codes, codes.astype(np.float32) / np.float32(maxcode)


def _write_raw_exr(path: Path, px: np.ndarray, fmt: object = oiio.FLOAT) -> None:
    """Write with OIIO directly, bypassing write_image's checks (how foreign bad frames arrive)."""
    spec = oiio.ImageSpec(px.shape[1], px.shape[0], px.shape[2], fmt)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    assert out.write_image(np.ascontiguousarray(px, dtype=np.float32))
    assert out.close()


# ----------------------------------------------------------------------------------------------------------------
# Round trips


INT_CASES = [
    ("png", "uint8", 255, 4),
    ("png", "uint16", 65535, 4),
    ("png", "uint8", 255, 1),
    ("tif", "uint8", 255, 4),
    ("tif", "uint16", 65535, 4),
    ("dpx", "uint8", 255, 3),
    ("dpx", "uint10", 1023, 3),
    ("dpx", "uint16", 65535, 4),
]


@pytest.mark.parametrize(("ext", "dtype", "maxcode", "nch"), INT_CASES)
def test_integer_formats_round_trip_exactly(tmp_path: Path, ext: str, dtype: str, maxcode: int, nch: int) -> None:
    codes, expected = _quantised(_pixels(nch), maxcode)
    path = write_image(tmp_path / f"img.{ext}", expected, dtype=dtype)  # type: ignore[arg-type]
    img = read_image(path)
    assert img.pixels.dtype == np.float32 and img.pixels.shape == (H, W, nch)
    np.testing.assert_array_equal(img.pixels, expected)
    np.testing.assert_array_equal(np.rint(img.pixels * maxcode).astype(np.uint32), codes)
    assert set(img.channel_types) == {dtype}
    assert img.bit_depth == {"uint8": 8, "uint10": 10, "uint16": 16}[dtype]


def test_integer_codes_written_as_given(tmp_path: Path) -> None:
    codes = (np.arange(H * W * 3, dtype=np.uint32) % 65536).astype(np.uint16).reshape(H, W, 3)
    img = read_image(write_image(tmp_path / "codes.tif", codes))
    np.testing.assert_array_equal(img.pixels, codes.astype(np.float32) / np.float32(65535))


def test_png_alpha_is_stored_straight(tmp_path: Path) -> None:
    # OIIO's PNG default would unpremultiply on write and premultiply on read; we keep values as given.
    _, px = _quantised(_pixels(4), 255)
    px[..., 3] = np.where(px[..., 3] < 0.5, 0.0, px[..., 3])  # zero alpha under non-zero colour
    img = read_image(write_image(tmp_path / "a.png", px))
    np.testing.assert_array_equal(img.pixels, px)
    assert img.channels == ("R", "G", "B", "A")


def test_tiff_written_by_oiio_directly_reads_exact(tmp_path: Path) -> None:
    codes = np.random.default_rng(3).integers(0, 65536, (H, W, 3), dtype=np.uint16)
    path = tmp_path / "direct.tif"
    spec = oiio.ImageSpec(W, H, 3, oiio.UINT16)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec) and out.write_image(codes) and out.close()
    img = read_image(path)
    np.testing.assert_array_equal(img.pixels, codes.astype(np.float32) / np.float32(65535))
    assert img.file_format == "tiff"


def test_float_tiff_is_exact(tmp_path: Path) -> None:
    px = (_pixels(3) * 8.0 - 2.0).astype(np.float32)
    img = read_image(write_image(tmp_path / "f.tiff", px, dtype="float"))
    np.testing.assert_array_equal(img.pixels, px)


def test_jpeg_round_trip_is_close(tmp_path: Path) -> None:
    px = _pixels(3, smooth=True)
    img = read_image(write_image(tmp_path / "a.jpg", px))
    assert img.file_format == "jpeg" and img.channels == ("R", "G", "B")
    assert np.abs(img.pixels - px).mean() < 0.01
    assert np.abs(img.pixels - px).max() < 0.06


def test_exr_float_is_exact_and_keeps_out_of_range_values(tmp_path: Path) -> None:
    px = (_pixels(4) * 200.0 - 50.0).astype(np.float32)
    img = read_image(write_image(tmp_path / "f.exr", px, dtype="float"))
    np.testing.assert_array_equal(img.pixels, px)
    assert img.channel_types == ("float",) * 4 and img.file_format == "openexr"


def test_exr_half_within_half_precision(tmp_path: Path) -> None:
    px = (_pixels(4) * 4.0).astype(np.float32)
    img = read_image(write_image(tmp_path / "h.exr", px))
    assert img.channel_types == ("half",) * 4
    np.testing.assert_allclose(img.pixels, px, rtol=2.0**-11, atol=2.0**-24)
    np.testing.assert_array_equal(img.pixels, px.astype(np.float16).astype(np.float32))


def test_exr_keeps_alpha_and_layer_channels(tmp_path: Path) -> None:
    names = ("R", "G", "B", "A", "matte.A")
    px = _pixels(5)
    img = read_image(write_image(tmp_path / "layers.exr", px, channels=names))
    assert img.channels == names
    np.testing.assert_array_equal(img.channel("matte.A"), px[..., 4].astype(np.float16).astype(np.float32))
    with pytest.raises(ConfigError, match="matte.A"):
        img.channel("matte.a")


def test_exr_per_channel_types(tmp_path: Path) -> None:
    # STMaps must stay float: half loses up to a pixel at 2K.
    names = ("R", "G", "B", "A", "stmap.red", "stmap.green")
    px = _pixels(6)
    types = ("half", "half", "half", "half", "float", "float")
    img = read_image(write_image(tmp_path / "mixed.exr", px, channels=names, dtype=types))  # type: ignore[arg-type]
    assert img.channels == names and img.channel_types == types and img.pixel_type == "float"
    np.testing.assert_array_equal(img.pixels[..., 4:], px[..., 4:])
    np.testing.assert_array_equal(img.pixels[..., :4], px[..., :4].astype(np.float16).astype(np.float32))


def test_exr_windows_round_trip(tmp_path: Path) -> None:
    px = _pixels(4)
    img = read_image(
        write_image(
            tmp_path / "patch.exr", px, data_window=Window(400, 900, H, W), display_window=Window(0, 0, 1080, 1920)
        )
    )
    assert img.data_window == Window(400, 900, H, W)
    assert img.display_window == Window(0, 0, 1080, 1920)
    full = img.in_display_window()
    assert full.shape == (1080, 1920, 4)
    np.testing.assert_array_equal(full[400 : 400 + H, 900 : 900 + W], img.pixels)
    assert float(np.abs(full).sum()) == pytest.approx(float(np.abs(img.pixels).sum()), rel=1e-6)


def test_image_object_rewrites_with_its_channels_types_and_metadata(tmp_path: Path) -> None:
    names = ("R", "G", "B", "A", "stmap.red")
    src = write_image(
        tmp_path / "src.exr",
        _pixels(5),
        channels=names,
        dtype=("half", "half", "half", "half", "float"),
        metadata=ExrMetadata(timecode="01:00:00:01", fps=Fraction(25), vfx_version="1.2.3"),
    )
    first = read_image(src)
    second = read_image(write_image(tmp_path / "copy.exr", first))
    assert second.channels == names and second.channel_types == first.channel_types
    np.testing.assert_array_equal(second.pixels, first.pixels)
    assert second.exr_metadata == first.exr_metadata


# ----------------------------------------------------------------------------------------------------------------
# EXR metadata


def _full_metadata() -> ExrMetadata:
    return ExrMetadata(
        timecode="01:00:41:17",
        fps=Fraction(24000, 1001),
        colorspace="ACEScg",
        vfx_version="0.1.0",
        shot_hash="3f2a9c",
        extra={"model": "inswapper_128", "seed": 7, "strength": 0.75},
    )


def test_exr_metadata_round_trip(tmp_path: Path) -> None:
    md = _full_metadata()
    img = read_image(write_image(tmp_path / "md.exr", _pixels(4), metadata=md))
    assert img.exr_metadata == md
    assert img.metadata["framesPerSecond"] == Fraction(24000, 1001)
    assert isinstance(img.metadata["framesPerSecond"], Fraction)
    assert img.metadata["smpte:TimeCode"] == "01:00:41:17"
    assert img.metadata["colorInteropID"] == "lin_ap1_scene"
    assert img.metadata["vfx/version"] == "0.1.0"
    assert img.metadata["vfx/seed"] == 7


def test_exr_metadata_drop_frame_and_camera_space(tmp_path: Path) -> None:
    # OIIO silently drops oiio:ColorSpace names outside its own config ("ARRI LogC4"); ours must survive.
    md = ExrMetadata(timecode="00:59:59;29", fps=Fraction(30000, 1001), colorspace="arri_logc4")
    img = read_image(write_image(tmp_path / "cam.exr", _pixels(3), metadata=md))
    got = img.exr_metadata
    assert got.timecode == "00:59:59;29" and got.fps == Fraction(30000, 1001)
    assert got.colorspace == "ARRI LogC4"
    assert img.metadata["colorInteropID"] == "ocio:arrilogc4_awg4_scene"


def test_exr_metadata_from_foreign_file_uses_interop_id(tmp_path: Path) -> None:
    path = tmp_path / "foreign.exr"
    spec = oiio.ImageSpec(W, H, 3, oiio.HALF)
    spec.attribute("oiio:ColorSpace", "ACEScg")
    spec.attribute("FramesPerSecond", oiio.TypeRational, (24, 1))  # the non-standard spelling some tools write
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec) and out.write_image(_pixels(3)) and out.close()
    md = read_image(path).exr_metadata
    assert md.colorspace == "lin_ap1_scene" and md.fps == Fraction(24)


def test_metadata_header_uses_standard_exr_attribute_names(tmp_path: Path) -> None:
    path = write_image(tmp_path / "hdr.exr", _pixels(4), metadata=_full_metadata())
    header = path.read_bytes()[:4096]
    # OpenEXR headers are NUL-terminated "name type size value" records.
    assert b"timeCode\x00timecode\x00" in header
    assert b"framesPerSecond\x00rational\x00" in header
    assert b"colorInteropID\x00string\x00" in header
    assert b"compression\x00compression\x00" in header
    assert b"FramesPerSecond" not in header


@pytest.mark.skipif(not OIIOTOOL.exists(), reason="oiiotool not installed next to the interpreter")
def test_oiiotool_reads_our_exr(tmp_path: Path) -> None:
    path = write_image(
        tmp_path / "sh010_comp_v001.1001.exr",
        _pixels(5),
        channels=("R", "G", "B", "A", "matte.A"),
        metadata=ExrMetadata(
            timecode="01:00:00:01", fps=Fraction(24000, 1001), colorspace="ACEScg", vfx_version="0.1.0",
            shot_hash="abc123", extra={"source_plate": "plate.1001.exr"},
        ),
    )  # fmt: skip
    info = subprocess.run(
        [str(OIIOTOOL), "--info", "-v", str(path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "channel list: R, G, B, A, matte.A" in info
    assert 'compression: "piz"' in info
    assert "framesPerSecond: 24000/1001" in info
    # oiiotool names EXR timeCode by OIIO's generic name; the header bytes test checks the EXR name.
    assert "TimeCode: 01:00:00:01" in info
    assert 'colorInteropID: "lin_ap1_scene"' in info
    assert 'vfx/version: "0.1.0"' in info
    assert 'vfx/shot_hash: "abc123"' in info
    assert 'vfx/source_plate: "plate.1001.exr"' in info
    assert 'vfx/colorspace: "ACEScg"' in info


def test_bad_metadata_is_refused() -> None:
    with pytest.raises(ConfigError, match="timecode"):
        ExrMetadata(timecode="1:00:00:01")
    with pytest.raises(ConfigError, match="24000/1001"):
        ExrMetadata(fps=23.976)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="version"):
        ExrMetadata(extra={"version": "x"})
    assert ExrMetadata(fps="24000/1001").fps == Fraction(24000, 1001)  # type: ignore[arg-type]


def test_unknown_colorspace_in_metadata(tmp_path: Path) -> None:
    with pytest.raises(ColorError, match="ACEScg"):
        write_image(tmp_path / "x.exr", _pixels(3), metadata=ExrMetadata(colorspace="ACEScgg"))
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------------------------------
# Bad input


def test_missing_file(tmp_path: Path) -> None:
    (tmp_path / "plate.1001.exr").write_bytes(b"")
    with pytest.raises(MediaError, match="nothing at that path") as err:
        read_image(tmp_path / "plate.1010.exr")
    assert "plate.1001.exr" in str(err.value)  # closest sibling suggested


def test_directory(tmp_path: Path) -> None:
    d = tmp_path / "frames.exr"
    d.mkdir()
    with pytest.raises(MediaError, match="directory"):
        read_image(d)


def test_text_file_named_exr(tmp_path: Path) -> None:
    p = tmp_path / "notes.exr"
    p.write_text("this is not an image\n")
    with pytest.raises(MediaError, match="Cannot read image"):
        read_image(p)


@pytest.mark.parametrize("keep", [0.5, 0.05, 0.0])
def test_truncated_exr(tmp_path: Path, keep: float) -> None:
    full = write_image(tmp_path / "full.exr", _pixels(4))
    data = full.read_bytes()
    cut = tmp_path / "cut.exr"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(MediaError) as err:
        read_image(cut)
    assert not isinstance(err.value, InvalidPixelsError)


@pytest.mark.parametrize(("bad", "label"), [(np.nan, "1 NaN"), (np.inf, "1 Inf"), (-np.inf, "1 Inf")])
def test_non_finite_exr(tmp_path: Path, bad: float, label: str) -> None:
    px = _pixels(4)
    px[5, 7, 1] = bad
    path = tmp_path / "bad.exr"
    _write_raw_exr(path, px)
    with pytest.raises(InvalidPixelsError) as err:
        read_image(path)
    msg = str(err.value)
    assert "1 non-finite values" in msg and label in msg
    assert "row 5, column 7, channel 'G'" in msg
    assert np.isnan(read_image(path, check_finite=False).pixels[5, 7, 1]) == bool(np.isnan(bad))


def test_non_finite_count_in_half_exr(tmp_path: Path) -> None:
    px = _pixels(3)
    px[0, 3, 2] = np.nan
    px[10:12, 0, 0] = np.inf
    path = tmp_path / "bad_half.exr"
    _write_raw_exr(path, px, oiio.HALF)
    with pytest.raises(InvalidPixelsError, match=r"3 non-finite values \(1 NaN, 2 Inf\), first nan at row 0"):
        read_image(path)


def test_nan_write_leaves_no_file(tmp_path: Path) -> None:
    px = _pixels(4)
    px[2, 2, 0] = np.nan
    with pytest.raises(InvalidPixelsError, match="row 2, column 2"):
        write_image(tmp_path / "out" / "nan.exr", px)
    assert not (tmp_path / "out" / "nan.exr").exists()
    assert not list(tmp_path.rglob("*.exr"))


def test_failed_write_keeps_previous_file(tmp_path: Path) -> None:
    dest = write_image(tmp_path / "keep.exr", _pixels(3))
    before = dest.read_bytes()
    px = _pixels(3)
    px[0, 0, 0] = np.inf
    with pytest.raises(InvalidPixelsError):
        write_image(dest, px)
    assert dest.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.exr"]


def test_half_overflow_refused(tmp_path: Path) -> None:
    px = _pixels(3)
    px[1, 2, 0] = HALF_MAX * 2
    with pytest.raises(InvalidPixelsError, match="dtype='float'"):
        write_image(tmp_path / "over.exr", px)
    assert read_image(write_image(tmp_path / "over_f.exr", px, dtype="float")).pixels[1, 2, 0] == HALF_MAX * 2


def test_write_option_errors(tmp_path: Path) -> None:
    px = _pixels(3)
    with pytest.raises(ConfigError, match="did you mean '.exr'"):
        write_image(tmp_path / "a.exrr", px)
    with pytest.raises(ConfigError, match="did you mean 'piz'"):
        write_image(tmp_path / "a.exr", px, compression="pizz")
    with pytest.raises(ConfigError, match="uint8"):
        write_image(tmp_path / "a.png", px, dtype="half")
    with pytest.raises(ConfigError, match="channels"):
        write_image(tmp_path / "a.png", _pixels(5))  # OIIO's PNG writer would crash
    with pytest.raises(ConfigError, match="channels"):
        write_image(tmp_path / "a.jpg", _pixels(4))  # JPEG would silently drop alpha
    with pytest.raises(ConfigError, match="one name per channel"):
        write_image(tmp_path / "a.exr", px, channels=("R", "G"))
    with pytest.raises(ConfigError, match="mixed channel types"):
        write_image(tmp_path / "a.tif", px, dtype=("uint8", "uint16", "uint16"))  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_channel_names_lost_outside_exr_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vfx.io.image"):
        img = read_image(write_image(tmp_path / "m.tif", _pixels(5), channels=("R", "G", "B", "A", "matte.A")))
    assert "stores no channel names" in caplog.text
    assert img.channels[:4] == ("R", "G", "B", "A") and img.pixels.shape[2] == 5


def test_clipping_for_integer_formats_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    px = _pixels(3)
    px[0, 0, 0] = 1.5
    px[0, 1, 0] = -0.5
    with caplog.at_level(logging.WARNING, logger="vfx.io.image"):
        img = read_image(write_image(tmp_path / "c.png", px))
    assert "2 values outside [0, 1] clipped" in caplog.text
    assert img.pixels[0, 0, 0] == 1.0 and img.pixels[0, 1, 0] == 0.0


def test_image_rejects_bad_arrays() -> None:
    with pytest.raises(ValueError):
        Image(np.zeros((4, 4, 3), np.float64), ("R", "G", "B"))
    with pytest.raises(ValueError):
        Image(np.zeros((4, 4, 3), np.float32), ("R", "G"))
