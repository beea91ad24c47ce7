"""Lazy string registries: ``name -> "module:attr"`` with did-you-mean errors.

Registering a name imports nothing; :meth:`Registry.load` imports the target on first use. This keeps
``import dvx`` and ``dvx --help`` fast (no torch model code) and lets every model, dataset and task live
in its own self-contained module.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dvx.errors import UnknownNameError


@dataclass(frozen=True)
class Entry:
    """One registered name: where its implementation lives and the options it is built with."""

    name: str
    target: Any  # "package.module:attr", imported on first load, or the object itself (plugins, tests)
    help: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        if not isinstance(self.target, str):
            return self.target
        module_name, _, attr = self.target.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attr) if attr else module


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


class Registry:
    """A named collection of lazily imported entries (models, datasets, tasks)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, target: Any, help: str = "", **options: Any) -> None:
        """Register ``name``; ``target`` is "package.module:attr" (lazy) or the object itself."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        if isinstance(target, str) and ":" not in target:
            raise ValueError(f"target {target!r} must look like 'package.module:attr'")
        self._entries[name] = Entry(name=name, target=target, help=help, options=dict(options))

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries[n] for n in self.names())

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            known = self.names()
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{did_you_mean(name, known)} Known: {', '.join(known)}"
            ) from None

    def load(self, name: str) -> Any:
        return self.entry(name).load()
