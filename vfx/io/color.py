"""Colour conversion through OpenColorIO and its built-in ACES configs.

The config comes from, in order: the ``config`` argument, ``$OCIO``, then OpenColorIO's built-in
``ocio://studio-config-latest`` (ACES 2.x studio config, which also holds the camera log spaces). Colour-space
names are resolved by OpenColorIO itself, so canonical names ("ACEScg"), aliases ("lin_ap1", "srgb_tx"),
interop IDs ("lin_ap1_scene", as written to EXR ``colorInteropID``) and roles ("scene_linear") all work,
case-insensitively.

The face networks work in display-referred sRGB, :data:`WORKING_SPACE`. :func:`to_working` and
:func:`from_working` move plates in and out of it with one invertible transform. The built-in configs do not
clamp it: scene values above the sRGB range come out above 1.0 and out-of-gamut colours come out negative, and
both still round-trip to float precision. A network trained on [0, 1] will not reproduce them, so callers
composite back only inside the face matte.

Convention:
    Images are numpy arrays shaped (H, W, C), float32, C = 3 (RGB) or 4 (RGBA). Alpha is never touched by a
    colour conversion. Sizes are (height, width).
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import threading
from typing import TypeAlias

import numpy as np
import PyOpenColorIO as ocio

from vfx.errors import ColorError, ShapeError

__all__ = [
    "DEFAULT_CONFIG",
    "WORKING_SPACE",
    "ConfigLike",
    "ColorConverter",
    "load_config",
    "list_colorspaces",
    "resolve_colorspace",
    "interop_id",
    "convert",
    "to_working",
    "from_working",
    "DisplayView",
    "display_view",
    "list_displays",
    "list_views",
]

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = "ocio://studio-config-latest"
"""Built-in config used when neither a ``config`` argument nor ``$OCIO`` is given."""

WORKING_SPACE = "sRGB Encoded Rec.709 (sRGB)"
"""The networks' working space: display-referred sRGB-encoded Rec.709 primaries, nominally [0, 1]."""

ConfigLike: TypeAlias = str | os.PathLike[str] | ocio.Config | None

# LOSSLESS keeps OCIO from swapping pow/log for fast approximations: the default optimisation leaves a
# ~2e-5 round-trip error on ACEScg <-> sRGB, LOSSLESS ~1e-6, for about 25 % more CPU time.
_OPTIMIZATION = ocio.OPTIMIZATION_LOSSLESS

_processor_lock = threading.Lock()
_processors: dict[tuple[str, ...], ocio.CPUProcessor] = {}


def _config_source(config: str | os.PathLike[str] | None) -> str:
    if config is not None:
        return os.fspath(config)
    env = os.environ.get("OCIO", "").strip()
    return env or DEFAULT_CONFIG


@functools.lru_cache(maxsize=16)
def _load_config_cached(source: str) -> ocio.Config:
    try:
        return ocio.Config.CreateFromFile(source)
    except Exception as exc:  # OCIO raises several Exception subclasses; all mean "this config is unusable"
        builtins = ", ".join(f"ocio://{name}" for name, *_ in ocio.BuiltinConfigRegistry().getBuiltinConfigs())
        raise ColorError(
            "Cannot load the OpenColorIO config",
            expected="a path to a .ocio config or a built-in URI such as ocio://studio-config-latest",
            found=f"{source!r} ({exc})",
            fix=f"point $OCIO (or the config argument) at a valid config, or unset $OCIO to use {DEFAULT_CONFIG}; "
            f"built-in configs: ocio://studio-config-latest, ocio://cg-config-latest, {builtins}",
        ) from exc


def load_config(config: ConfigLike = None) -> ocio.Config:
    """Return the OpenColorIO config to use.

    Args:
        config: A loaded ``ocio.Config``, a path to a ``.ocio`` file or an ``ocio://`` URI. ``None`` means
            ``$OCIO`` when set and non-empty, else :data:`DEFAULT_CONFIG`.

    Returns:
        The config. Configs loaded from a path or URI are cached per source string.

    Raises:
        ColorError: The config cannot be loaded.

    Convention:
        ``$OCIO`` is read at every call, so changing it takes effect without restarting.
    """
    if isinstance(config, ocio.Config):
        return config
    return _load_config_cached(_config_source(config))


def _config_label(cfg: ocio.Config) -> str:
    return cfg.getName() or "the OpenColorIO config"


def list_colorspaces(config: ConfigLike = None, *, include_aliases: bool = False) -> list[str]:
    """List the colour-space names a config offers.

    Args:
        config: See :func:`load_config`.
        include_aliases: Also list every alias after its colour space's name.

    Returns:
        Active colour-space names in config order (plus aliases if asked). Inactive spaces still resolve by
        name but are left out, as the config's author hid them on purpose.

    Convention:
        Names are OpenColorIO's canonical spelling, e.g. ``"ACEScg"``, ``"sRGB Encoded Rec.709 (sRGB)"``.
    """
    cfg = load_config(config)
    names: list[str] = []
    for cs in cfg.getColorSpaces():
        names.append(cs.getName())
        if include_aliases:
            names.extend(cs.getAliases())
    return names


def _all_spellings(cfg: ocio.Config) -> dict[str, str]:
    """Lower-cased name/alias/role -> canonical name, over active and inactive spaces."""
    spellings: dict[str, str] = {}
    for cs in cfg.getColorSpaces(ocio.SEARCH_REFERENCE_SPACE_ALL, ocio.COLORSPACE_ALL):
        spellings[cs.getName().lower()] = cs.getName()
        for alias in cs.getAliases():
            spellings.setdefault(alias.lower(), cs.getName())
    for role, target in cfg.getRoles():
        spellings.setdefault(role.lower(), target)
    return spellings


def resolve_colorspace(name: str, config: ConfigLike = None) -> str:
    """Return the canonical colour-space name for a name, alias, interop ID or role.

    Args:
        name: E.g. ``"ACEScg"``, ``"acescg"``, ``"lin_ap1"``, ``"lin_ap1_scene"``, ``"scene_linear"``.
        config: See :func:`load_config`.

    Returns:
        The config's canonical name, e.g. ``"ACEScg"``.

    Raises:
        ColorError: The config knows no such colour space; the message suggests the closest names.

    Example:
        >>> resolve_colorspace("srgb_tx", "ocio://studio-config-latest")
        'sRGB Encoded Rec.709 (sRGB)'
    """
    cfg = load_config(config)
    cs = cfg.getColorSpace(name) if isinstance(name, str) and name else None
    if cs is not None:
        return str(cs.getName())
    spellings = _all_spellings(cfg)
    close = difflib.get_close_matches(str(name).lower(), list(spellings), n=5, cutoff=0.5)
    suggestions = list(dict.fromkeys(spellings[c] for c in close))
    # Scene-referred spaces first: plates are tagged with those, display spaces are rarely what was meant.
    valid = [cs.getName() for cs in cfg.getColorSpaces(ocio.SEARCH_REFERENCE_SPACE_SCENE, ocio.COLORSPACE_ACTIVE)]
    valid += [n for n in list_colorspaces(cfg) if n not in valid]
    shown = 8
    fix = f"did you mean {suggestions[0]!r}? " if suggestions else ""
    if len(suggestions) > 1:
        fix += f"Close names: {', '.join(repr(s) for s in suggestions)}; "
    fix += f"valid names include {', '.join(repr(v) for v in valid[:shown])}"
    if len(valid) > shown:
        fix += f" and {len(valid) - shown} more (vfx.io.color.list_colorspaces() lists them all)"
    raise ColorError(
        f"Unknown colour space {name!r}",
        expected=f"a colour-space name, alias or role from {_config_label(cfg)}",
        found=repr(name),
        fix=fix,
    )


def interop_id(name: str, config: ConfigLike = None) -> str | None:
    """Return the colour space's interop ID (the EXR ``colorInteropID`` value), if the config defines one.

    Args:
        name: Any spelling :func:`resolve_colorspace` accepts.
        config: See :func:`load_config`.

    Returns:
        E.g. ``"lin_ap1_scene"`` for ACEScg, or ``None`` for configs older than OCIO 2.5 that define none.

    Raises:
        ColorError: Unknown colour space.
    """
    cfg = load_config(config)
    cs = cfg.getColorSpace(resolve_colorspace(name, cfg))
    getter = getattr(cs, "getInteropID", None)
    value = getter() if getter is not None else ""
    return str(value) or None


def _processor(cfg: ocio.Config, src: str, dst: str) -> ocio.CPUProcessor:
    key = (cfg.getCacheID(), src, dst)
    with _processor_lock:
        cpu = _processors.get(key)
    if cpu is None:
        try:
            cpu = cfg.getProcessor(src, dst).getOptimizedCPUProcessor(_OPTIMIZATION)
        except Exception as exc:  # a config whose transforms reference missing LUT files fails only here
            raise ColorError(
                f"Cannot build the colour conversion {src!r} -> {dst!r}",
                expected="a config whose transforms and LUT files load",
                found=str(exc),
                fix="check the config with `ociocheck`, or unset $OCIO to use the built-in ACES config",
            ) from exc
        with _processor_lock:
            _processors.setdefault(key, cpu)
        logger.debug("built OCIO processor %s -> %s (%s)", src, dst, _config_label(cfg))
    return cpu


class ColorConverter:
    """Convert RGB(A) pixels from one colour space to another.

    Args:
        src: Source colour space (name, alias, interop ID or role).
        dst: Destination colour space.
        config: See :func:`load_config`.

    Raises:
        ColorError: Unknown colour space or unusable config.

    Example:
        >>> conv = ColorConverter("ACEScg", "sRGB Encoded Rec.709 (sRGB)")
        >>> px = np.full((2, 2, 3), 0.214, np.float32)
        >>> round(float(conv.apply(px)[0, 0, 0]), 3)
        0.5

    Convention:
        Pixels are (H, W, 3|4) float32; alpha (channel 3) is copied through bit-identical. OCIO processors
        are cached per (config, src, dst), so constructing converters in a frame loop is cheap.
    """

    def __init__(self, src: str, dst: str, *, config: ConfigLike = None) -> None:
        self._config = load_config(config)
        self.src: str = resolve_colorspace(src, self._config)
        self.dst: str = resolve_colorspace(dst, self._config)
        self._cpu: ocio.CPUProcessor | None = None
        if self.src != self.dst:
            cpu = _processor(self._config, self.src, self.dst)
            # Spaces that differ only in name (e.g. two equal linear spaces) give a no-op processor.
            self._cpu = None if cpu.isNoOp() else cpu

    @property
    def is_identity(self) -> bool:
        """True when :meth:`apply` returns its input unchanged."""
        return self._cpu is None

    @property
    def config(self) -> ocio.Config:
        """The OpenColorIO config this converter uses."""
        return self._config

    def inverse(self) -> ColorConverter:
        """Return the converter for the opposite direction, in the same config."""
        return ColorConverter(self.dst, self.src, config=self._config)

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """Convert pixels; the input array is never modified.

        Args:
            pixels: (H, W, 3) or (H, W, 4) floating-point array. (N, 3|4) rows also work.

        Returns:
            A new float32 array of the same shape, or ``pixels`` itself (same object, bit-identical) when the
            conversion is an identity.

        Raises:
            ValueError: Wrong shape or a non-float dtype (integer codes must be normalised first).
        """
        arr = np.asarray(pixels)
        if arr.ndim < 2 or arr.shape[-1] not in (3, 4):
            raise ShapeError(f"expected pixels shaped (H, W, 3|4), got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.floating):
            raise ShapeError(f"expected float pixels normalised to [0, 1], got dtype {arr.dtype}")
        if self._cpu is None:
            return pixels
        out = np.array(arr, dtype=np.float32, order="C", copy=True)
        if out.shape[-1] == 3:
            self._cpu.applyRGB(out)
        else:
            self._cpu.applyRGBA(out)
            # Some op types may scale alpha; the contract is that alpha passes through bit-identical.
            out[..., 3] = arr[..., 3]
        return out

    def __repr__(self) -> str:
        return f"ColorConverter({self.src!r} -> {self.dst!r}, config={_config_label(self._config)!r})"


def convert(pixels: np.ndarray, src: str, dst: str, *, config: ConfigLike = None) -> np.ndarray:
    """Convert pixels from ``src`` to ``dst``; shorthand for ``ColorConverter(src, dst).apply(pixels)``.

    Convention:
        (H, W, 3|4) float32; alpha untouched; identity returns the input object.
    """
    return ColorConverter(src, dst, config=config).apply(pixels)


def to_working(pixels: np.ndarray, colorspace: str, *, config: ConfigLike = None) -> np.ndarray:
    """Convert plate pixels from ``colorspace`` into the networks' :data:`WORKING_SPACE`.

    Args:
        pixels: (H, W, 3|4) float32 in ``colorspace``.
        colorspace: The plate's colour space, e.g. ``"ACEScg"``.
        config: See :func:`load_config`.

    Returns:
        Pixels in display-referred sRGB. Not clamped: bright scene values come out above 1.0 and
        out-of-gamut colours below 0.0 (the built-in configs keep the transform invertible).

    Convention:
        (H, W, 3|4) float32; alpha untouched.
    """
    return ColorConverter(colorspace, WORKING_SPACE, config=config).apply(pixels)


def from_working(pixels: np.ndarray, colorspace: str, *, config: ConfigLike = None) -> np.ndarray:
    """Convert network output from :data:`WORKING_SPACE` back into the plate's ``colorspace``.

    Args:
        pixels: (H, W, 3|4) float32 in display-referred sRGB.
        colorspace: The plate's colour space, e.g. ``"ACEScg"``.
        config: See :func:`load_config`.

    Returns:
        Pixels in ``colorspace``.

    Convention:
        (H, W, 3|4) float32; alpha untouched.
    """
    return ColorConverter(WORKING_SPACE, colorspace, config=config).apply(pixels)


# ------------------------------------------------------------------------------------------ display / view


def list_displays(config: ConfigLike = None) -> list[str]:
    """The displays a config offers (its active displays, in config order), e.g. ``"sRGB - Display"``.

    Args:
        config: See :func:`load_config`.
    """
    return [str(d) for d in load_config(config).getDisplays()]


def list_views(display: str, config: ConfigLike = None) -> list[str]:
    """The views of ``display`` (active views, in config order), e.g. ``"ACES 2.0 - SDR 100 nits (Rec.709)"``.

    Raises:
        ColorError: the config has no such display; the message lists the valid ones.
    """
    cfg = load_config(config)
    return [str(v) for v in cfg.getViews(_check_display(cfg, display))]


def _check_display(cfg: ocio.Config, display: str) -> str:
    return _pick(display, [str(d) for d in cfg.getDisplays()], f"Unknown display {display!r}",
                 f"a display of {_config_label(cfg)}", "pass one of the displays listed (--display, or review.display "
                 f"in the shot file); leave it out for the config's default display {cfg.getDefaultDisplay()!r}")


def _check_view(cfg: ocio.Config, display: str, view: str) -> str:
    return _pick(view, [str(v) for v in cfg.getViews(display)], f"Unknown view {view!r} for display {display!r}",
                 f"a view of {display!r} in {_config_label(cfg)}", "pass one of the views listed (--view, or "
                 f"review.view in the shot file); leave it out for the display's default view "
                 f"{cfg.getDefaultView(display)!r}")


def _pick(name: str, choices: list[str], message: str, expected: str, fix: str) -> str:
    """``name`` among ``choices`` (exactly, else ignoring case), or a ColorError listing them all."""
    if name in choices:
        return name
    lower = {c.lower(): c for c in choices}
    if name.lower() in lower:
        return lower[name.lower()]
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    raise ColorError(message, expected=f"{expected}: " + ", ".join(repr(c) for c in choices), found=repr(name),
                     fix=(f"did you mean {close[0]!r}? " if close else "") + fix)


class DisplayView:
    """The show's display/view transform: scene (or plate) pixels to what a monitor shows.

    Built from an OCIO ``DisplayViewTransform`` (colour space -> display, view), the same processor OCIO-aware
    viewers (RV, Nuke's viewer, ``ociodisplay``) apply, so a review made with it looks like the plate does there.

    Args:
        src: The pixels' colour space (the plate's), any spelling :func:`resolve_colorspace` accepts.
        display: OCIO display, e.g. ``"sRGB - Display"``. ``None``: the config's default display.
        view: View of that display, e.g. ``"ACES 2.0 - SDR 100 nits (Rec.709)"``. ``None``: the display's
            default view.
        config: See :func:`load_config` (``$OCIO``, else the built-in ACES studio config).

    Raises:
        ColorError: unknown colour space, display or view (the message lists the valid displays or views), or a
            config whose transforms do not load.

    Example:
        >>> dv = DisplayView("ACEScg")
        >>> dv.display, dv.view
        ('sRGB - Display', 'ACES 2.0 - SDR 100 nits (Rec.709)')

    Convention:
        Pixels in are (H, W, 3|4) float32 in ``src``; pixels out are display code values, nominally [0, 1]
        (not clipped here), alpha untouched. Names are matched case-insensitively and kept in the config's
        spelling.
    """

    def __init__(self, src: str, display: str | None = None, view: str | None = None, *,
                 config: ConfigLike = None) -> None:
        cfg = load_config(config)
        self._config = cfg
        self.src: str = resolve_colorspace(src, cfg)
        self.display: str = _check_display(cfg, display) if display is not None else str(cfg.getDefaultDisplay())
        self.view: str = (_check_view(cfg, self.display, view) if view is not None
                          else str(cfg.getDefaultView(self.display)))
        key = (cfg.getCacheID(), "display/view", self.src, self.display, self.view)
        with _processor_lock:
            cpu = _processors.get(key)
        if cpu is None:
            transform = ocio.DisplayViewTransform(src=self.src, display=self.display, view=self.view)
            try:
                cpu = cfg.getProcessor(transform).getOptimizedCPUProcessor(_OPTIMIZATION)
            except Exception as exc:  # a view whose LUT file is missing fails only here
                raise ColorError(
                    f"Cannot build the display/view transform {self.display!r} / {self.view!r}",
                    expected="a config whose views and LUT files load",
                    found=str(exc),
                    fix="check the config with `ociocheck`, or unset $OCIO to use the built-in ACES config",
                ) from exc
            with _processor_lock:
                _processors.setdefault(key, cpu)
        self._cpu: ocio.CPUProcessor = cpu

    @property
    def config(self) -> ocio.Config:
        """The OpenColorIO config this transform comes from."""
        return self._config

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """Apply the display/view; the input is never modified.

        Returns:
            A new float32 array of the same shape: display code values (not clipped).

        Raises:
            ShapeError: not (..., 3|4) float pixels.
        """
        arr = np.asarray(pixels)
        if arr.ndim < 2 or arr.shape[-1] not in (3, 4):
            raise ShapeError(f"expected pixels shaped (H, W, 3|4), got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.floating):
            raise ShapeError(f"expected float pixels, got dtype {arr.dtype}")
        out = np.array(arr, dtype=np.float32, order="C", copy=True)
        if out.shape[-1] == 3:
            self._cpu.applyRGB(out)
        else:
            self._cpu.applyRGBA(out)
            out[..., 3] = arr[..., 3]
        return out

    def __repr__(self) -> str:
        return f"DisplayView({self.src!r} -> {self.display!r} / {self.view!r}, config={_config_label(self._config)!r})"


def display_view(src: str, display: str | None = None, view: str | None = None, *,
                 config: ConfigLike = None) -> DisplayView:
    """The display/view processor from ``src`` to ``display``/``view``; see :class:`DisplayView`.

    Defaults: the config's default display and that display's default view (for the built-in ACES studio
    config, ``"sRGB - Display"`` / ``"ACES 2.0 - SDR 100 nits (Rec.709)"``).

    Raises:
        ColorError: unknown colour space, display or view; the message lists the valid ones.
    """
    return DisplayView(src, display, view, config=config)
