"""Reproduction plans: a TOML file listing the extractions and probes behind a paper's tables.

Schema (``dvx/plan/seed002.toml`` is the shipped example):

- ``[plan]``: ``name``, ``description``.
- ``[data.<key>]``: ``reader`` (a dvx dataset reader); ``tiny_reader`` optionally replaces it under
  ``--tiny``. A run gives each key's folder with ``--data-root <key>=PATH``.
- ``[models.<label>]``: ``model`` (a registered dvx model) and ``tiny`` (its tiny twin, for ``--tiny``).
- ``[[extract]]``: ``data``, ``models`` (labels), optional ``preset`` and explicit ``timesteps`` /
  ``blocks`` / ``resolution`` overriding it (as options beside ``dvx extract --preset``).
- ``[[probe]]``: ``task``, ``data``, ``models``, ``timesteps`` and ``blocks`` (lists, or ``"seed002"`` for
  seed 002's per-family choice), optional ``options`` (the task's options, as ``dvx probe`` takes them).
- ``[tiny]``: what ``--tiny`` changes besides the models: ``resolution`` and ``clip_len`` per tiny model
  (``resolution.default`` for the others), a ``blocks`` rename map (names the twins lack), ``probe_options``
  (for the tasks that take them).

Loading validates names against the registries (models, dataset readers, tasks) so a typo fails before
anything runs. Python 3.11's ``tomllib`` reads the file (``tomli``, the same parser, on 3.10).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from dvx.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: per-family choice of T or blocks in a probe entry (dvx.extract.presets)
SEED002 = "seed002"
SHIPPED = ("seed002",)


@dataclass(frozen=True)
class DataSpec:
    key: str
    reader: str
    tiny_reader: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    label: str
    model: str
    tiny: str


@dataclass(frozen=True)
class ExtractEntry:
    data: str
    models: tuple[str, ...]
    preset: str | None = None
    timesteps: tuple[int, ...] | None = None
    blocks: tuple[str, ...] | None = None
    resolution: str | None = None


@dataclass(frozen=True)
class ProbeEntry:
    task: str
    data: str
    models: tuple[str, ...]
    timesteps: tuple[int, ...] | str
    blocks: tuple[str, ...] | str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TinySettings:
    resolution: Mapping[str, str] = field(default_factory=dict)  # tiny model (or "default") -> HxW or preset
    clip_len: Mapping[str, int] = field(default_factory=dict)  # tiny video model -> frames per clip
    blocks: Mapping[str, str] = field(default_factory=dict)
    probe_options: Mapping[str, Any] = field(default_factory=dict)

    def resolution_for(self, model: str) -> str | None:
        return self.resolution.get(model, self.resolution.get("default"))


@dataclass(frozen=True)
class Plan:
    name: str
    description: str
    source: str  # the file it was read from
    data: Mapping[str, DataSpec]
    models: Mapping[str, ModelSpec]
    extract: tuple[ExtractEntry, ...]
    probe: tuple[ProbeEntry, ...]
    tiny: TinySettings


def plan_path(name_or_path: str) -> Path:
    """A shipped plan by name (``seed002``) or a TOML file."""
    if name_or_path in SHIPPED:
        return Path(str(resources.files("dvx.plan").joinpath(f"{name_or_path}.toml")))
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"plan {name_or_path!r} is neither a shipped plan ({', '.join(SHIPPED)}) nor a file"
        )
    return path


def load_plan(name_or_path: str) -> Plan:
    path = plan_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"plan {path}: {err}") from err
    try:
        plan = _parse(raw, str(path))
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"plan {path}: malformed ({type(err).__name__}: {err})") from err
    _validate(plan)
    return plan


def _choice(value: Any, what: str, cast: type) -> tuple[Any, ...] | str:
    if value == SEED002:
        return SEED002
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{what} must be a non-empty list or {SEED002!r}, got {value!r}")
    return tuple(cast(v) for v in value)


def _parse(raw: Mapping[str, Any], source: str) -> Plan:
    head = raw["plan"]
    data = {k: DataSpec(k, v["reader"], v.get("tiny_reader")) for k, v in raw["data"].items()}
    models = {k: ModelSpec(k, v["model"], v["tiny"]) for k, v in raw["models"].items()}
    extract = tuple(
        ExtractEntry(
            data=e["data"],
            models=tuple(e["models"]),
            preset=e.get("preset"),
            timesteps=tuple(int(t) for t in e["timesteps"]) if "timesteps" in e else None,
            blocks=tuple(e["blocks"]) if "blocks" in e else None,
            resolution=e.get("resolution"),
        )
        for e in raw.get("extract", [])
    )
    probe = tuple(
        ProbeEntry(
            task=p["task"],
            data=p["data"],
            models=tuple(p["models"]),
            timesteps=_choice(p["timesteps"], f"probe {p['task']!r} timesteps", int),
            blocks=_choice(p["blocks"], f"probe {p['task']!r} blocks", str),
            options=dict(p.get("options", {})),
        )
        for p in raw.get("probe", [])
    )
    t = raw.get("tiny", {})
    tiny = TinySettings(
        dict(t.get("resolution", {})),
        {k: int(v) for k, v in t.get("clip_len", {}).items()},
        dict(t.get("blocks", {})),
        dict(t.get("probe_options", {})),
    )
    return Plan(head["name"], head.get("description", ""), source, data, models, extract, probe, tiny)


def _validate(plan: Plan) -> None:
    """Every name resolves: data keys, model labels, registered models, readers, tasks and presets."""
    from dvx.data import DATASETS
    from dvx.extract import MODELS
    from dvx.extract.presets import PRESETS
    from dvx.probe import TASKS

    for data in plan.data.values():
        for reader in filter(None, (data.reader, data.tiny_reader)):
            DATASETS.entry(reader)
    for model in plan.models.values():
        MODELS.entry(model.model)
        MODELS.entry(model.tiny)
    for name in (*plan.tiny.clip_len, *(k for k in plan.tiny.resolution if k != "default")):
        MODELS.entry(name)
    entries: list[ExtractEntry | ProbeEntry] = [*plan.extract, *plan.probe]
    for entry in entries:
        if entry.data not in plan.data:
            raise ConfigError(f"plan {plan.name}: data {entry.data!r} is not declared under [data]")
        unknown = [m for m in entry.models if m not in plan.models]
        if unknown:
            raise ConfigError(f"plan {plan.name}: model(s) {unknown} are not declared under [models]")
    for e in plan.extract:
        if e.preset is not None and e.preset not in PRESETS:
            raise ConfigError(f"plan {plan.name}: unknown preset {e.preset!r}")
    for p in plan.probe:
        TASKS.entry(p.task)
