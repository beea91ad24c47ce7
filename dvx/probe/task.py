"""The probe-task contract: what a task needs from the cache and the dataset, and what it returns.

A task is one file in ``dvx/probe/tasks/`` plus one registry line in ``dvx/probe/__init__.py``:

- ``options_class``: a frozen :class:`~dvx.options.Options` dataclass declaring every option the task takes
  (default, help text, checks, once). ``dvx probe --task NAME`` gets exactly these flags; a registry
  entry's ``defaults={...}`` replaces a default for that task name (movi-e's slot count);
- ``videos(ctx)``: the videos it would read (from the dataset, whose split the dataset reader picks);
  the runner then applies ``--videos`` / ``--exclude`` / the store's failed videos and hands the
  selection to ``run`` as ``ctx.refs``;
- ``run(ctx, pairs)``: one :class:`~dvx.results.ResultRecord` per (T, block), made by :meth:`Task.record`
  (which stamps the main metric, its direction and the resolved config);
- a task that writes predictions subclasses :class:`PredictionTask`: it writes them into
  ``ctx.prediction_dir(t, block)`` and scores a folder of them in ``score_predictions``, which is what
  ``dvx eval <task>`` runs, so eval reads exactly what the probe wrote.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dvx.data.base import VideoDataset, VideoRef
from dvx.errors import ConfigError
from dvx.options import Options, build
from dvx.results import ResultRecord, normalize_store
from dvx.store.index import now_iso

if TYPE_CHECKING:
    from dvx.config import ProbeConfig
    from dvx.store.group import RecipeGroup


def task_class(name: str) -> type[Task]:
    from dvx.probe import TASKS

    cls: type[Task] = TASKS.load(name)
    return cls


def task_defaults(name: str) -> Mapping[str, Any]:
    """The per-name option defaults of a registry entry (e.g. ``{"slots": 24}`` for movi-e)."""
    from dvx.probe import TASKS

    defaults: Mapping[str, Any] = TASKS.entry(name).options.get("defaults", {})
    return defaults


def task_dataset(name: str) -> str:
    """The dataset reader a registered task reads by default."""
    from dvx.probe import TASKS

    dataset: str = TASKS.entry(name).options["dataset"]
    return dataset


def task_options(name: str, given: Options | Mapping[str, Any] | None) -> Options:
    """Task ``name``'s typed options from ``given`` (a mapping, or an instance of its options class) over
    the registry's per-name defaults; an option the task does not take is a ConfigError naming the task."""
    cls = task_class(name).options_class
    if isinstance(given, cls):
        return given
    if isinstance(given, Options):
        raise ConfigError(f"task {name!r} takes {cls.__name__}, not {type(given).__name__}")
    values = dict(given or {})
    unknown = sorted(k for k in values if k not in cls.__dataclass_fields__)
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise ConfigError(
            f"task {name!r} does not take option(s) {flags} "
            f"(`dvx probe --task {name} --help` lists its options)"
        )
    return build(cls, values, task_defaults(name))


@dataclass
class ProbeContext:
    cfg: ProbeConfig
    group: RecipeGroup  # opened read-only: a probe never writes to the store
    dataset: VideoDataset
    dataset_name: str
    out: Path | None  # predictions, checkpoints and logs go under here
    device: str
    log: Callable[[str], None]
    refs: tuple[VideoRef, ...] = ()  # the videos the probe reads (selected by the runner)
    left_out: dict[str, list[str]] = field(default_factory=dict)  # why -> video ids (recorded)

    @property
    def videos(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.refs)

    def selected(self, refs: Sequence[VideoRef]) -> list[VideoRef]:
        """``refs`` (e.g. one split of a trained task) restricted to the runner's selection."""
        keep = set(self.videos)
        return [r for r in refs if r.id in keep]

    def output_root(self, task: str) -> Path | None:
        """``<out>/<task>/<dataset>/<model>@<fp8>``: this probe's outputs, apart from every other
        task, dataset and recipe (None without ``--out``)."""
        if self.out is None:
            return None
        return self.out / task / self.dataset_name / self.group.recipe.name

    def prediction_dir(self, task: str, t: int, block: str) -> Path | None:
        """``<out>/<task>/<dataset>/<model>@<fp8>/T<T>/<block>``: one (T, block)'s predictions."""
        root = self.output_root(task)
        return None if root is None else root / f"T{t}" / block


def scored_videos(ctx: ProbeContext) -> dict[str, Any]:
    """What a record's key needs about the data: the split asked for and a digest of the video ids read,
    so a probe on other videos (another split, a subset) never reuses or replaces this record."""
    digest = hashlib.sha256("\n".join(sorted(ctx.videos)).encode()).hexdigest()[:16]
    return {"split": ctx.cfg.split, "videos_sha": digest}


class Task(ABC):
    """One probe protocol. ``run`` scores every requested (T, block) pair and returns one record each."""

    #: the metric shown in T x block tables (and used for "best" in reports)
    main_metric: ClassVar[str]
    #: True when a larger main metric is better
    higher_is_better: ClassVar[bool] = True
    #: the task's options, declared once (see dvx.options); the CLI is generated from it
    options_class: ClassVar[type[Options]] = Options

    def __init__(self, name: str, cfg: ProbeConfig) -> None:
        self.name = name
        self.cfg = cfg
        self.dataset_name = cfg.dataset or task_dataset(name)
        self.options: Options = task_options(name, cfg.options)

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """The resolved probe settings that determine the result (recorded, and part of the record key)."""

    @abstractmethod
    def videos(self, ctx: ProbeContext) -> list[VideoRef]:
        """The videos this probe would read features of (the runner narrows them to ``ctx.refs``)."""

    @abstractmethod
    def run(self, ctx: ProbeContext, pairs: list[tuple[int, str]]) -> list[ResultRecord]:
        """Score each (T, block) on ``ctx.refs``; tasks that train may train a sweep's heads side by side."""

    def extra_lines(self, records: list[ResultRecord]) -> list[str]:
        """Lines printed under the T x block table (e.g. baselines)."""
        return []

    def record(
        self,
        ctx: ProbeContext,
        t: int,
        block: str,
        metrics: Mapping[str, Any],
        details: Mapping[str, Any] | None = None,
        videos: int = 0,
    ) -> ResultRecord:
        return ResultRecord(
            task=self.name,
            model=ctx.group.recipe.model,
            recipe=ctx.group.recipe.fingerprint,
            dataset=ctx.dataset_name,
            store=normalize_store(ctx.group.backend.location),
            T=t,
            block=block,
            probe={**self.settings(), **scored_videos(ctx)},
            metrics=dict(metrics),
            main_metric=self.main_metric,
            higher_is_better=self.higher_is_better,
            details=dict(details or {}),
            videos=videos,
            left_out={k: list(v) for k, v in ctx.left_out.items() if v},
            config=ctx.cfg.to_json(),
            created_at=now_iso(),
        )

    def output_config(self, ctx: ProbeContext, t: int, block: str) -> dict[str, Any]:
        """What ``dvx-config.json`` beside an output holds: the record's key fields, the main metric and
        the resolved config (no results)."""
        rec = self.record(ctx, t, block, {}).to_json()
        return {k: v for k, v in rec.items() if k not in ("metrics", "details", "videos", "created_at")}


@dataclass
class Scores:
    """What scoring one (T, block)'s predictions gives: the record's metrics and details, and how many
    videos were scored."""

    metrics: dict[str, Any]
    details: dict[str, Any]
    videos: int


class PredictionTask(Task):
    """A task that writes per-video predictions under ``ctx.prediction_dir`` and can score a folder of
    them again: ``dvx eval <task>`` calls :meth:`score_predictions` on what ``dvx probe --out`` wrote."""

    #: the options that change how predictions are scored (offered by ``dvx eval <task>`` too)
    score_options: ClassVar[type[Options]] = Options

    @classmethod
    @abstractmethod
    def score_predictions(cls, folder: Path, dataset: VideoDataset, options: Options) -> Scores:
        """Score the predictions in ``folder`` against ``dataset``'s annotations."""
