"""dvx: a feature cache + probe pipeline for diffusion-model representations of video.

The public Python API (docs/api.md), for notebooks and scripts::

    import dvx
    store = dvx.open_store("/shared/dvx-cache")          # read-only unless mode="a"
    group = store.groups(dataset="davis", model="svd")[0]
    x = group.tensor("bear", 50, "up.1")                  # (stored frames, C, h, w) torch tensor
    da = group.dataarray(50, "up.1", dtype="float32")     # lazy xarray: video, frame, channel, y, x

Importing dvx is cheap: every name below is imported on first use (no torch, diffusers or transformers
is imported by ``import dvx``; tests/test_api.py checks it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> "module:attr", imported on first access
_LAZY = {
    "open_store": "dvx.store:open_store",
    "FeatureStore": "dvx.store:FeatureStore",
    "RecipeGroup": "dvx.store:RecipeGroup",
    "open_dataset": "dvx.data:open_dataset",
    "ExtractConfig": "dvx.config:ExtractConfig",
    "ProbeConfig": "dvx.config:ProbeConfig",
    "run_extract": "dvx.extract.runner:run_extract",
    "run_probe": "dvx.probe.runner:run_probe",
    "ResultRecord": "dvx.results:ResultRecord",
    "ResultsDir": "dvx.results:ResultsDir",
    "results_dir": "dvx.results:results_dir",
    "DvxError": "dvx.errors:DvxError",
}
__all__ = [
    "DvxError",
    "ExtractConfig",
    "FeatureStore",
    "ProbeConfig",
    "RecipeGroup",
    "ResultRecord",
    "ResultsDir",
    "__version__",
    "open_dataset",
    "open_store",
    "results_dir",
    "run_extract",
    "run_probe",
]

if TYPE_CHECKING:
    from dvx.config import ExtractConfig, ProbeConfig
    from dvx.data import open_dataset
    from dvx.errors import DvxError
    from dvx.extract.runner import run_extract
    from dvx.probe.runner import run_probe
    from dvx.results import ResultRecord, ResultsDir, results_dir
    from dvx.store import FeatureStore, RecipeGroup, open_store


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'dvx' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
