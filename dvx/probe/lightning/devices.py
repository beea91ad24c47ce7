"""``--device`` / ``--devices`` as Lightning understands them (no Lightning import: tasks validate early)."""

from __future__ import annotations

from typing import Any

from dvx.errors import ConfigError


def parse_devices(devices: str | int | None) -> Any:
    """``--devices``: "auto", a count ("2", also -1 for all), or a list of indices ("0,1")."""
    if devices is None:
        return "auto"
    text = str(devices).strip()
    if text == "auto":
        return "auto"
    try:
        if "," in text:
            return [int(d) for d in text.split(",") if d.strip() != ""]
        return int(text)
    except ValueError:
        raise ConfigError(f"--devices must be 'auto', a count or a list like 0,1; got {devices!r}") from None


def accelerator_for(device: str) -> tuple[str, Any]:
    """``--device`` (cpu, cuda, cuda:1, mps, auto) -> Lightning (accelerator, devices default)."""
    if device in ("auto", ""):
        return "auto", "auto"
    kind, _, index = device.partition(":")
    accel = {"cuda": "gpu", "gpu": "gpu", "cpu": "cpu", "mps": "mps"}.get(kind)
    if accel is None:
        raise ConfigError(f"--device {device!r} is not one of cpu, cuda, cuda:N, mps, auto")
    if index:
        if not index.isdigit():
            raise ConfigError(f"--device {device!r}: the index after ':' must be a number (cuda:0)")
        return accel, [int(index)]
    return accel, 1 if accel == "cpu" else "auto"
