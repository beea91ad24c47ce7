"""The probe-task contract: what a task needs from the cache and the dataset, and what it returns."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dvx.config import ProbeConfig
from dvx.data.base import VideoDataset, VideoRef
from dvx.probe.results import ResultRecord, normalize_store
from dvx.store.group import RecipeGroup
from dvx.store.index import now_iso


@dataclass
class ProbeContext:
    cfg: ProbeConfig
    group: RecipeGroup  # opened read-only: a probe never writes to the store
    dataset: VideoDataset
    dataset_name: str
    out: Path | None  # predictions, checkpoints and logs go here
    device: str
    log: Callable[[str], None]
    videos: tuple[str, ...] = ()  # the ids whose features the probe reads (set by the runner)


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
    #: option names this task reads from ProbeConfig.options (others given on the command line are an error)
    option_names: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, name: str, cfg: ProbeConfig) -> None:
        self.name = name
        self.cfg = cfg

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """The resolved probe settings that determine the result (recorded, and part of the record key)."""

    @abstractmethod
    def videos(self, ctx: ProbeContext) -> list[VideoRef]:
        """The videos this probe reads features of (all must be cached)."""

    @abstractmethod
    def run(self, ctx: ProbeContext, pairs: list[tuple[int, str]]) -> list[ResultRecord]:
        """Score each (T, block); tasks that train may train the heads of a sweep side by side."""

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
            details=dict(details or {}),
            videos=videos,
            created_at=now_iso(),
        )
