"""The one place a device name becomes a device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.

Every command's ``--device`` and every library entry point that takes a device (:func:`vfx.comb.train.train_comb`)
resolves it here, so an unavailable CUDA device is one clear :class:`~vfx.errors.ConfigError` (exit 2, naming the
devices there are) before any work, never a CUDA traceback halfway through a run, and never a silent fall-back
to the CPU.

Floor 2: imports nothing of vfx but :mod:`vfx.errors`; torch is imported inside the function.
"""

from __future__ import annotations

from vfx.errors import ConfigError

__all__ = ["available_devices", "resolve_device"]


def available_devices() -> list[str]:
    """The devices this machine has: ``cpu``, then ``cuda:0`` ... ``cuda:N-1``."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cpu"] + [f"cuda:{index}" for index in range(count)]


def resolve_device(spec: object) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; ``cpu``, ``cuda`` and ``cuda:N`` as given, once
    checked to exist.

    Args:
        spec: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (a :class:`torch.device` is taken by its name).

    Returns:
        The device name to use.

    Raises:
        ConfigError: an unknown name, or a CUDA device this machine does not have (the message names the
            devices there are).

    Example:
        >>> resolve_device("cpu")
        'cpu'
        >>> resolve_device("tpu")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        vfx.errors.ConfigError: Unknown device 'tpu'. Expected: auto, cpu, cuda or cuda:N. ...
    """
    text = str(spec).strip().lower() if spec is not None else ""
    if text == "cpu":
        return "cpu"
    index: int | None = None
    if text.startswith("cuda:") and text[5:].isdigit() and text[5:].isascii():
        index = int(text[5:])
    elif text not in ("auto", "cuda"):
        raise ConfigError(f"Unknown device {spec!r}", expected="auto, cpu, cuda or cuda:N", found=repr(spec),
                          fix="use --device auto (a GPU when there is one, else the CPU)")
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if text == "auto":
        return "cuda" if count > 0 else "cpu"
    if count == 0 or (index is not None and index >= count):
        here = ", ".join(["cpu"] + [f"cuda:{i}" for i in range(count)])
        raise ConfigError(f"CUDA device {text!r} is not available",
                          expected=f"one of the devices here: {here}" if count else "a machine with a CUDA GPU",
                          found=f"devices here: {here}" + ("" if count else " (torch sees no CUDA GPU)"),
                          fix="use --device cpu, or auto (a GPU when there is one, else the CPU)"
                          + (f", or cuda:0 ... cuda:{count - 1}" if count else ""))
    return text
