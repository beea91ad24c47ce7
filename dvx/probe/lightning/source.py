"""A picklable handle on one recipe group of a feature store, opened read-only once per process.

DataLoader workers receive a copy of the dataset; each opens the store itself (never sharing the parent's
zarr/fsspec objects, which are not fork-safe for remote stores) and only reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dvx.store.group import RecipeGroup
from dvx.store.index import Commit

Pair = tuple[int, str]


def pair_key(pair: Pair) -> str:
    """A (T, block) pair as a module/metric name: ``t0050_up_1`` (ModuleDict keys may not hold dots)."""
    t, block = pair
    return f"t{t:04d}_{block.replace('.', '_')}"


@dataclass(frozen=True)
class FeatureSource:
    """Where a probe's features live: store location, dataset and the full recipe fingerprint."""

    location: str
    dataset: str
    model: str
    fingerprint: str
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, group: RecipeGroup) -> FeatureSource:
        return cls(group.backend.location, group.dataset, group.recipe.model, group.recipe.fingerprint)

    def open(self) -> RecipeGroup:
        """The recipe group, opened read-only in this process (cached per process id)."""
        key = (os.getpid(), self)
        group = _OPEN.get(key)
        if group is None:
            from dvx.store.root import FeatureStore

            store = FeatureStore.open(self.location, mode="r", storage_options=dict(self.storage_options))
            group = store.find(self.dataset, self.model, recipe=self.fingerprint)
            _OPEN[key] = group
        return group

    def read(self, video: str, pair: Pair) -> np.ndarray:
        return self.open().read(video, pair[0], pair[1])

    def commit(self, video: str, pair: Pair) -> Commit:
        return self.open().commit_for(video, pair[0], pair[1])

    def __hash__(self) -> int:
        return hash((self.location, self.dataset, self.model, self.fingerprint))


_OPEN: dict[tuple[int, FeatureSource], RecipeGroup] = {}
