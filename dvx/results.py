"""Probe results: one JSON record per (task, model, recipe, dataset, store, T, block, probe settings), and
the one T x block table of them.

A neutral module: ``dvx probe`` writes records, ``dvx report`` and notebooks read them, and neither side
imports the other. A record carries everything a reader needs: its metrics, which of them is the main one
and whether higher is better (so no reader guesses a direction), the resolved probe config that produced
it, and the videos it left out.

Records live in a results directory, never in the feature store (a shared cache is read-only for probes).
A record's file name is a hash of its key, so re-running the same probe finds it: it is reused, or with
``--force`` replaced, never silently overwritten. ``--json`` prints exactly the saved structure, one record
per line (JSON Lines).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    main_metric: str  # the metric tables show and "best" ranks by
    higher_is_better: bool  # the main metric's direction
    details: Mapping[str, Any] = field(default_factory=dict)  # per-sequence / per-class breakdowns
    videos: int = 0  # videos scored
    left_out: Mapping[str, list[str]] = field(default_factory=dict)  # why -> ids (e.g. {"failed": [...]})
    config: Mapping[str, Any] = field(default_factory=dict)  # the resolved probe config (not in the key)
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
        """The record as saved (and as ``--json`` prints it)."""
        out = asdict(self)
        for name in ("probe", "metrics", "details", "left_out", "config"):
            out[name] = json.loads(json.dumps(getattr(self, name), default=str))
        return out

    @property
    def main_value(self) -> float | None:
        return number(self.metrics.get(self.main_metric))


def json_lines(records: Iterable[ResultRecord | Mapping[str, Any]]) -> str:
    """Records as JSON Lines: one record per line, the saved structure (``--json`` of every command)."""
    rows = (r.to_json() if isinstance(r, ResultRecord) else r for r in records)
    return "\n".join(json.dumps(row, sort_keys=True, default=str) for row in rows)


#: written beside every output (prediction folders, trained runs, reports): what produced it, with the
#: resolved config (as litgpt saves hyperparameters beside its outputs)
CONFIG_FILE = "dvx-config.json"


def write_config(folder: Path, payload: Mapping[str, Any]) -> Path:
    """Write ``folder/dvx-config.json`` (atomically: a reader never sees half of it)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CONFIG_FILE
    tmp = path.with_name(f"{CONFIG_FILE}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)
    return path


def read_config(folder: Path) -> dict[str, Any] | None:
    """``folder/dvx-config.json``, or None when the folder has none (predictions from another tool)."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(
            f"{path}: unreadable ({err}); rewrite it with dvx probe --out, or delete it"
        ) from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: not a dvx config (a JSON object is expected)")
    return data


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
            data = json.loads(f.read_text())
            if isinstance(data, dict) and "metrics" in data and "main_metric" not in data:
                raise DataError(
                    f"{f}: a results record from an older dvx (no main metric recorded); re-run its probe "
                    "with --force to rewrite it, or move it out of the results directory"
                )
            return ResultRecord(**data)
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


# ---- the T x block table -------------------------------------------------------------------------------


def number(value: Any) -> float | None:
    """A metric value as a float; None for a missing, non-numeric or NaN value."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def fmt(value: Any) -> str:
    v = number(value)
    if v is None:
        return "-"
    return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"


def block_order(name: str) -> tuple[int, str, int, tuple[tuple[int, int, str], ...]]:
    """Network order of block names: down.N, mid, up.N, layer.N, then others (by name); within a block,
    numbers in the rest of the name count as numbers (``attn1.q.h2`` before ``attn1.q.h10``)."""
    head, _, rest = name.partition(".")
    idx, _, tail = rest.partition(".")
    order = {"down": 0, "mid": 1, "up": 2, "layer": 3}
    natural = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", tail) if p)
    return (order.get(head, 4), head, int(idx) if idx.isdigit() else -1, natural)


@dataclass
class Grid:
    """The main metric of records of one (model, recipe, task, settings) over T x block: ``values[i][j]``
    at (timesteps[i], blocks[j]), None where no record is; the newest record of a cell wins."""

    metric: str
    higher_is_better: bool
    timesteps: list[int]
    blocks: list[str]
    values: list[list[float | None]]

    @classmethod
    def of(cls, records: Sequence[ResultRecord]) -> Grid:
        if not records:
            raise ValueError("a grid needs at least one record")
        metric, higher = records[0].main_metric, records[0].higher_is_better
        ts = sorted({r.T for r in records})
        bs = sorted({r.block for r in records}, key=block_order)
        newest: dict[tuple[int, str], ResultRecord] = {}
        for r in sorted(records, key=lambda r: r.created_at):
            newest[(r.T, r.block)] = r
        values = [[newest[(t, b)].main_value if (t, b) in newest else None for b in bs] for t in ts]
        return cls(metric, higher, ts, bs, values)

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    def render(self, markdown: bool = False) -> str:
        """Rows T, columns blocks: aligned text for a terminal, or a markdown table."""
        head = ["T \\ block" if markdown else f"{self.metric}", *self.blocks]
        rows = [
            [str(t) if markdown else f"T={t}", *(fmt(v) for v in row)]
            for t, row in zip(self.timesteps, self.values, strict=True)
        ]
        if markdown:
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        text = [
            " | ".join(
                c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in [head, *rows]
        ]
        text.insert(1, "-" * len(text[0]))
        return "\n".join([*text, f"({self.metric}: {self.direction})"])
