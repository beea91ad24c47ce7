"""Probe results: one JSON record per (task, model, recipe, dataset, store, T, block, probe settings).

Records live in a results directory, never in the feature store (a shared cache is read-only for probes).
A record's file name is a hash of its key, so re-running the same probe finds it: it is reused, or with
``--force`` replaced, never silently overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dvx import __version__
from dvx.errors import DataError
from dvx.store.index import now_iso


def results_dir(explicit: str | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("DVX_RESULTS_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME")
    return (Path(base) if base else Path.home() / ".local" / "share") / "dvx" / "results"


def normalize_store(location: str) -> str:
    return location if "://" in location else str(Path(location).expanduser().resolve())


@dataclass(frozen=True)
class ResultRecord:
    task: str
    model: str
    recipe: str  # full fingerprint of the features' recipe
    dataset: str
    store: str  # where the features were read (normalised)
    T: int
    block: str
    probe: Mapping[str, Any]  # the settings that determine the result (preset, k, tau, epochs, seed, ...)
    metrics: Mapping[str, Any]  # task metric name -> value, e.g. {"JF_mean": ...} or {"top1": ...}
    details: Mapping[str, Any] = field(default_factory=dict)  # per-sequence / per-class breakdowns
    videos: int = 0
    created_at: str = ""
    dvx_version: str = __version__

    def key(self) -> str:
        ident = {
            "task": self.task,
            "model": self.model,
            "recipe": self.recipe,
            "dataset": self.dataset,
            "store": self.store,
            "T": self.T,
            "block": self.block,
            "probe": dict(self.probe),
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["probe"] = dict(self.probe)
        out["metrics"] = dict(self.metrics)
        out["details"] = dict(self.details)
        return out

    def flat(self) -> dict[str, Any]:
        """The record as ``--json`` prints it: metrics and details at top level next to the key fields."""
        return {
            "task": self.task,
            "model": self.model,
            "recipe": self.recipe[:8],
            "dataset": self.dataset,
            "T": self.T,
            "block": self.block,
            **dict(self.metrics),
            **dict(self.details),
            "probe": dict(self.probe),
            "videos": self.videos,
        }


class ResultsDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _file(self, record: ResultRecord) -> Path:
        return self.path / record.task / f"{record.key()}.json"

    def find(self, like: ResultRecord) -> ResultRecord | None:
        f = self._file(like)
        return self._load(f) if f.exists() else None

    @staticmethod
    def _load(f: Path) -> ResultRecord:
        try:
            return ResultRecord(**json.loads(f.read_text()))
        except (ValueError, TypeError) as err:  # bad JSON, or JSON that is not a record
            raise DataError(
                f"{f}: not a dvx results record ({err}); move it out of the results directory"
            ) from None

    def save(self, record: ResultRecord, force: bool = False) -> Path:
        f = self._file(record)
        if f.exists() and not force:
            raise DataError(f"{f} exists (written meanwhile by another probe?); use --force to replace it)")
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_name(f"{f.name}.{uuid.uuid4().hex[:8]}.tmp")
        data = record.to_json()
        data["created_at"] = data["created_at"] or now_iso()
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, f)
        return f

    def records(self, store: str | None = None) -> Iterator[ResultRecord]:
        """Every record in the directory, or those whose features were read from ``store``."""
        if not self.path.exists():
            return
        where = None if store is None else normalize_store(store)
        for f in sorted(self.path.glob("*/*.json")):
            rec = self._load(f)
            if where is None or rec.store == where:
                yield rec
