"""A picklable handle on one recipe group of a feature store, opened read-only where it is used.

DataLoader workers receive a copy of the dataset; each opens the store itself (never sharing the parent's
zarr/fsspec objects, which are not fork-safe for remote stores) and only reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from dvx.store.group import RecipeGroup

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

    @classmethod
    def of(cls, group: RecipeGroup) -> FeatureSource:
        return cls(group.backend.location, group.dataset, group.recipe.model, group.recipe.fingerprint)

    def open(self) -> RecipeGroup:
        """The recipe group, opened read-only (a fresh index: callers keep it for as long as they read)."""
        from dvx.store.root import FeatureStore

        store = FeatureStore.open(self.location, mode="r")
        return store.find(self.dataset, self.model, recipe=self.fingerprint)
