"""Result tables from probe records (plain Python: no torch, no matplotlib).

- **Table 2** (seed 002): rows = models, columns = each task's metrics. A cell holds the metrics of the
  model's best record on that task (by the task's main metric, over every (T, block) and probe setting
  recorded); which (T, block) it came from is listed with the table.
- **Table 3**: one T x block grid of a task's main metric per (model, recipe, task, probe settings),
  rendered by :class:`dvx.results.Grid` (the same table ``dvx probe`` prints).

Every record names its main metric and direction, so a report never imports a task to rank records.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dvx.results import Grid, ResultRecord, block_order, fmt, number

#: task order of the tables (seed 002's Table 2 order, then the synthetic world); others follow by name
TASK_ORDER = (
    "ucf101", "hmdb51", "movi-c", "movi-e", "cityscapes-seg", "cityscapes-depth", "davis17", "jhmdb",
    "tapvid-davis", "tapvid-kinetics", "tapvid-rgb-stacking",
    "synthetic-action", "synthetic-discovery", "synthetic-seg", "synthetic-depth", "synthetic-propagation",
    "synthetic-tracking",
)  # fmt: skip


def task_order(label: str) -> tuple[int, str]:
    task = label.partition("@")[0]
    return (TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER), label)


def task_labels(records: Iterable[ResultRecord]) -> dict[tuple[str, str], str]:
    """(task, dataset) -> the column label: the task name, or ``task@dataset`` when the records hold the
    task on several datasets (e.g. cityscapes-seg on the real data and on the synthetic world's layout),
    so results of different data never share a cell."""
    datasets: dict[str, set[str]] = {}
    for r in records:
        datasets.setdefault(r.task, set()).add(r.dataset)
    return {(t, d): (t if len(ds) == 1 else f"{t}@{d}") for t, ds in datasets.items() for d in ds}


def settings_tag(record: ResultRecord) -> str:
    """8 hex digits naming a record's probe settings."""
    return hashlib.sha256(json.dumps(dict(record.probe), sort_keys=True, default=str).encode()).hexdigest()[
        :8
    ]


def model_labels(records: Iterable[ResultRecord]) -> dict[tuple[str, str], str]:
    """(model, recipe) -> the row label: the model name, or ``model@fp8`` when it has several recipes."""
    recipes: dict[str, set[str]] = {}
    for r in records:
        recipes.setdefault(r.model, set()).add(r.recipe)
    return {(m, fp): (m if len(fps) == 1 else f"{m}@{fp[:8]}") for m, fps in recipes.items() for fp in fps}


def better(a: ResultRecord, b: ResultRecord) -> bool:
    """True when ``a`` beats ``b`` on their main metric (a record without a number never wins)."""
    va, vb = a.main_value, b.main_value
    if va is None:
        return False
    if vb is None:
        return True
    return va > vb if a.higher_is_better else va < vb


@dataclass
class Table2:
    rows: list[str]  # model labels
    columns: list[tuple[str, str]]  # (task label, metric)
    best: dict[tuple[str, str], ResultRecord]  # (row, task label) -> the chosen record
    main: dict[str, tuple[str, bool]]  # task label -> (main metric, higher is better)


def table2(records: Sequence[ResultRecord]) -> Table2:
    labels, columns_of = model_labels(records), task_labels(records)
    main: dict[str, tuple[str, bool]] = {}
    metrics: dict[str, list[str]] = {}
    best: dict[tuple[str, str], ResultRecord] = {}
    for r in records:
        column = columns_of[(r.task, r.dataset)]
        main.setdefault(column, (r.main_metric, r.higher_is_better))
        names = metrics.setdefault(column, [])
        names += [m for m in r.metrics if m not in names]
        key = (labels[(r.model, r.recipe)], column)
        if key not in best or better(r, best[key]):
            best[key] = r
    tasks = sorted(metrics, key=task_order)
    columns = []
    for t in tasks:
        first = main[t][0]
        columns += [(t, m) for m in sorted(metrics[t], key=lambda m: (m != first, metrics[t].index(m)))]
    return Table2(sorted(set(labels.values())), columns, best, main)


def table2_markdown(t: Table2) -> str:
    head = [
        "model",
        *(f"{task} {metric}{'' if t.main[task][1] else ' ↓'}" for task, metric in t.columns),
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in t.rows:
        cells = [row]
        for task, metric in t.columns:
            rec = t.best.get((row, task))
            cells.append(fmt(rec.metrics.get(metric)) if rec else "-")
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        f"- {row} / {task}: T={rec.T}, {rec.block}"
        for (row, task), rec in sorted(t.best.items(), key=lambda kv: (kv[0][0], task_order(kv[0][1])))
    ]
    return "\n".join(
        [*lines, "", "Cells come from the best record of each model and task; chosen (T, block):", *notes]
    )


def table2_csv(t: Table2) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    tasks = list(dict.fromkeys(task for task, _ in t.columns))
    w.writerow(
        [
            "model",
            *(f"{task}/{m}" for task, m in t.columns),
            *(f"{task}/{k}" for task in tasks for k in ("T", "block")),
        ]
    )
    for row in t.rows:
        values = []
        for task, metric in t.columns:
            rec = t.best.get((row, task))
            v = number(rec.metrics.get(metric)) if rec else None
            values.append("" if v is None else repr(v))
        where: list[object] = []
        for task in tasks:
            rec = t.best.get((row, task))
            where += [rec.T, rec.block] if rec else ["", ""]
        w.writerow([row, *values, *where])
    return buf.getvalue()


@dataclass
class LabelledGrid:
    """One Table-3 grid and what it is of."""

    label: str  # model label
    recipe: str
    task: str  # task label (``task@dataset`` when the task was run on several datasets)
    settings: str  # settings tag
    grid: Grid


def grids(records: Sequence[ResultRecord]) -> list[LabelledGrid]:
    """One grid per (model, recipe, task and dataset, probe settings), rows T ascending, blocks in network
    order."""
    labels, columns_of = model_labels(records), task_labels(records)
    groups: dict[tuple[str, str, str, str], list[ResultRecord]] = {}
    for r in records:
        key = (labels[(r.model, r.recipe)], r.recipe, columns_of[(r.task, r.dataset)], settings_tag(r))
        groups.setdefault(key, []).append(r)
    return [
        LabelledGrid(label, recipe, task, tag, Grid.of(recs))
        for (label, recipe, task, tag), recs in sorted(
            groups.items(), key=lambda kv: (kv[0][0], task_order(kv[0][2]), kv[0][1], kv[0][3])
        )
    ]


def records_csv(records: Sequence[ResultRecord]) -> str:
    """Every record, one row each: key fields, every metric, and the probe settings as JSON."""
    metric_names = list(dict.fromkeys(m for r in records for m in r.metrics))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        ["task", "model", "recipe", "dataset", "T", "block", *metric_names, "videos", "probe", "created_at"]
    )
    for r in sorted(
        records, key=lambda r: (task_order(r.task), r.model, r.recipe, r.T, block_order(r.block))
    ):
        values = [number(r.metrics.get(m)) for m in metric_names]
        w.writerow([
            r.task, r.model, r.recipe[:8], r.dataset, r.T, r.block,
            *("" if v is None else repr(v) for v in values),
            r.videos, json.dumps(dict(r.probe), sort_keys=True, default=str), r.created_at,
        ])  # fmt: skip
    return buf.getvalue()
