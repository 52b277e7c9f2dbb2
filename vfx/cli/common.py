"""Helpers several commands share: the device, choices, NAME=VALUE pairs, the footage a command reads."""

from __future__ import annotations

from pathlib import Path

__all__ = ["choice", "key_value", "media_source", "resolve_device"]


def key_value(option: str, item: str) -> tuple[str, str]:
    from vfx.errors import ConfigError

    name, sep, value = item.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ConfigError(f"Invalid {option} {item!r}", expected=f"{option} NAME=VALUE", found=item,
                          fix=f"write the name, an equals sign, then the value: {option} hopper=facesets/hopper")
    return name.strip(), value.strip()


def resolve_device(spec: str) -> str:
    """``--device`` resolved and checked to exist here (:func:`vfx.utils.device.resolve_device`)."""
    from vfx.utils.device import resolve_device as resolve

    return resolve(spec)


def choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    import difflib

    from vfx.errors import ConfigError

    if value in choices:
        return value
    hint = difflib.get_close_matches(value, choices, n=1)
    raise ConfigError(f"Invalid {option} {value!r}", expected=" or ".join(choices), found=value,
                      fix=f"did you mean {hint[0]!r}?" if hint else f"use one of {', '.join(choices)}")


def media_source(source: str, *, persona: str | None, start_frame: int, colorspace: str | None):  # type: ignore[no-untyped-def]
    """The footage a command works on, and its default frames: a shot's plate (or persona footage), or media."""
    from vfx.errors import ConfigError
    from vfx.faceset.extract import MediaSource
    from vfx.io.color import WORKING_SPACE
    from vfx.shot import load_shot

    if Path(source).suffix.lower() in (".yaml", ".yml"):
        shot = load_shot(source)
        if persona is None:
            media = MediaSource(str(shot.plate.path), shot.plate.start_frame, colorspace or shot.plate.colorspace,
                                shot=shot.name)
            return media, shot.plate.frames
        if persona not in shot.personas:
            raise ConfigError(f"Shot {shot.name!r} has no persona {persona!r}",
                              expected=f"one of {', '.join(sorted(shot.personas)) or '(none declared)'}", found=persona,
                              fix="check the spelling, or add the persona under `personas:` in the shot file")
        config = shot.personas[persona]
        if config.footage is None:
            raise ConfigError(f"Persona {persona!r} has a faceset, not footage", expected="personas.NAME.footage",
                              found=f"faceset {config.faceset}", fix="its faceset is already extracted")
        return MediaSource(str(config.footage), config.start_frame, colorspace or WORKING_SPACE, shot=shot.name), None
    if persona is not None:
        raise ConfigError("--persona needs a shot file", expected="a .yaml shot file as SOURCE", found=source,
                          fix="pass the shot file as SOURCE, or leave --persona out to extract this media itself")
    return MediaSource(source, start_frame, colorspace or WORKING_SPACE), None

