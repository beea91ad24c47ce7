"""Runners behind ``dvx eval``: score predictions on disk and return records (plus a table).

- ``dvx eval <task>`` (every task that writes predictions: davis17, jhmdb, synthetic-propagation, ...):
  the task's own scoring (:meth:`PredictionTask.score_predictions`) on what ``dvx probe --out`` wrote, with
  the dataset, split and scoring options the probe recorded in the folder's dvx-config.json; the same
  numbers as the probe's records (tests/probe/test_eval_roundtrip.py).
- ``dvx eval davis``: any DAVIS submission folder against an ``Annotations/480p`` folder (the official
  tool's inputs), for predictions made elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvx.data import open_dataset
from dvx.errors import ConfigError, DataError
from dvx.options import Options, build, option
from dvx.probe.prediction_io import prediction_folders
from dvx.probe.task import PredictionTask, task_class, task_dataset
from dvx.results import read_config


@dataclass(frozen=True)
class DavisEvalConfig:
    """``pred``: <sequence>/<frame>.png folders; ``gt``: Annotations/480p (either may be one sequence)."""

    pred: Path
    gt: Path
    sequences: tuple[str, ...] | None = None


def run_davis_eval(cfg: DavisEvalConfig) -> dict[str, Any]:
    """J&F of the predictions (official davis2017-evaluation semi-supervised protocol), as a record."""
    from dvx.probe.jandf import evaluate_folders
    from dvx.probe.tasks.davis import davis_scores

    scores = davis_scores(evaluate_folders(cfg.pred, cfg.gt, cfg.sequences).sequences)
    return {
        "task": "davis",
        "metrics": scores.metrics,
        "main_metric": "JF_mean",
        "higher_is_better": True,
        "details": scores.details,
        "videos": scores.videos,
        "pred": str(cfg.pred),
        "config": {"pred": str(cfg.pred), "gt": str(cfg.gt), "sequences": cfg.sequences},
    }


@dataclass(frozen=True)
class TaskEvalConfig(Options):
    """What ``dvx eval <task>`` reads (its CLI is generated from these fields)."""

    pred: str = option(
        help="Predictions: what `dvx probe --out OUT` wrote (OUT itself or any folder below it; every "
        "prediction folder of the task found there is scored), or a plain folder of predictions."
    )
    data_root: str = option(help="Dataset folder with the ground truth.")
    dataset: str | None = option(None, "Dataset reader [default: the probe's, else the task's].")
    split: str | None = option(None, "Dataset split [default: the probe's, else the dataset's].")


def run_task_eval(
    task: str, cfg: TaskEvalConfig, given: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Score every prediction folder of ``task`` under ``cfg.pred`` as the probe scored it: one record each
    (the results-record structure: metrics nested, main metric and direction, the probe's key fields when
    the folder has a dvx-config.json). ``given``: scoring options given explicitly; the rest come from the
    probe's recorded options, else their defaults."""
    cls = task_class(task)
    if not issubclass(cls, PredictionTask):
        raise ConfigError(f"task {task!r} writes no predictions to evaluate")
    records = []
    for folder in prediction_folders(Path(cfg.pred).expanduser()):
        meta = read_config(folder) or {}
        if meta and meta.get("task") != task:
            continue  # another task's folder under the same --out
        probe_cfg = meta.get("config") or {}
        recorded = probe_cfg.get("options") or {}
        fields = cls.score_options.__dataclass_fields__
        options = build(
            cls.score_options, {**{k: v for k, v in recorded.items() if k in fields}, **(given or {})}
        )
        dataset_name = cfg.dataset or meta.get("dataset") or task_dataset(task)
        split = cfg.split if cfg.split is not None else probe_cfg.get("split")
        scores = cls.score_predictions(folder, open_dataset(dataset_name, cfg.data_root, split), options)
        records.append(
            {
                "task": task,
                **{k: meta.get(k) for k in ("model", "recipe", "store", "T", "block", "probe")},
                "dataset": dataset_name,
                "metrics": scores.metrics,
                "main_metric": cls.main_metric,
                "higher_is_better": cls.higher_is_better,
                "details": scores.details,
                "videos": scores.videos,
                "pred": str(folder),
                "config": {**cfg.to_json(), "split": split, "options": options.to_json()},
            }
        )
    if not records:
        raise DataError(
            f"{cfg.pred}: no prediction folder of task {task!r} (dvx-config.json names another task)"
        )
    return records


def format_table(record: Mapping[str, Any]) -> str:
    """A readable table of an eval record: one row per video, then the dataset figures (J&F records: the
    mean over objects; PCK records: the mean over joints)."""
    metrics, details = record["metrics"], record["details"]
    keys = list(metrics)
    per_video = details.get("per_sequence") or details.get("per_video") or {}
    rows = [("video", *keys)]
    for name, vals in per_video.items():
        rows.append((name, *(f"{vals[k]:.4f}" for k in keys)))
    rows.append(("ALL", *(f"{metrics[k]:.4f}" for k in keys)))
    head = f"{record['task']}: {record['pred']}"
    if record.get("model"):
        head += f" ({record['model']} {str(record.get('recipe'))[:8]}, T={record['T']}, {record['block']})"
    extra = "  ".join(
        f"{k} {details[k]:.4f}" for k in ("J_recall", "J_decay", "F_recall", "F_decay") if k in details
    )
    if "visibility" in details:
        extra = f"visibility: {details['visibility']}, scored joints: {details['n_scored_joints']}"
    return "\n".join([head, rows_table(rows), *([extra] if extra else [])])


def rows_table(rows: Sequence[Sequence[str]]) -> str:
    """Rows of cells as an aligned text table: first column left, the rest right; rules under the header
    and above the last row (the dataset figures)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)
