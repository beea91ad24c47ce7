"""The feature store: a Zarr v3 hierarchy keyed by (dataset, model@recipe-fingerprint, T, block).

See docs/store.md for the layout and the commit protocol, docs/api.md for reading it from Python.
``open_store``, ``FeatureStore`` and ``RecipeGroup`` are imported on first use (``import dvx.store`` stays
cheap).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from dvx.store.group import RecipeGroup
    from dvx.store.root import FeatureStore

__all__ = ["FeatureStore", "RecipeGroup", "open_store"]
_LAZY = {"FeatureStore": "dvx.store.root", "RecipeGroup": "dvx.store.group"}


def open_store(
    location: str, mode: Literal["r", "a"] = "r", storage_options: Mapping[str, Any] | None = None
) -> FeatureStore:
    """The dvx feature store at a local path or fsspec URL (``s3://...``); ``mode="r"`` never writes."""
    from dvx.store.root import FeatureStore

    return FeatureStore.open(str(location), mode=mode, storage_options=storage_options)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'dvx.store' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
