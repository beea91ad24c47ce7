"""What the label-propagation tasks share: settings from the CLI knobs, features per video, frame mapping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dvx.config import ProbeConfig
from dvx.errors import ConfigError, DataError
from dvx.probe.propagation import PropagationConfig
from dvx.store.group import RecipeGroup
from dvx.store.index import Commit

if TYPE_CHECKING:
    import torch

OPTION_NAMES = frozenset({"preset", "topk", "temperature", "context", "radius"})


def propagation_config(cfg: ProbeConfig) -> tuple[str, PropagationConfig]:
    """The preset (default ``dift``) with the knobs given on the command line; ``--radius -1`` = no window."""
    preset = cfg.option("preset", "dift")
    overrides: dict[str, Any] = {}
    for name in ("topk", "temperature", "context"):
        value = cfg.option(name)
        if value is not None:
            overrides[name] = value
    radius = cfg.option("radius")
    if radius is not None:
        if radius < 0:
            overrides["radius"] = None
        elif float(radius).is_integer():
            overrides["radius"] = int(radius)
        else:
            raise ConfigError(f"--radius must be a whole number of feature cells, got {radius}")
    return preset, PropagationConfig.preset(preset, **overrides)


def settings(cfg: ProbeConfig) -> dict[str, Any]:
    preset, prop = propagation_config(cfg)
    return {
        "preset": preset,
        "topk": prop.topk,
        "temperature": prop.temperature,
        "context": prop.context,
        "radius": prop.radius,
        "protocol": "dino/dift kNN propagation",
    }


def frame_index(commit: Commit, names: Sequence[str], video: str) -> np.ndarray:
    """For each annotation frame name, the stored temporal index whose features cover it."""
    where: dict[str, int] = {}
    for stored, frames in enumerate(commit.time_map):
        for i in frames:
            where[commit.frame_names[i]] = stored
    missing = [n for n in names if n not in where]
    if missing:
        raise DataError(
            f"{video}: the cached features do not cover annotated frame(s) {', '.join(missing[:5])} (the "
            "recipe subsampled frames?); label propagation needs features for every frame"
        )
    return np.array([where[n] for n in names], dtype=np.int64)


def annotated_features(
    group: RecipeGroup, commit: Commit, video: str, t: int, block: str, names: Sequence[str]
) -> tuple[torch.Tensor, np.ndarray]:
    """The stored features from the one covering the first annotated frame on (propagation starts from
    the first annotation), and for each annotated frame its index into them."""
    where = frame_index(commit, names, video)
    first = int(where[0])
    if (where < first).any():
        raise DataError(f"{video}: annotated frames come before the first annotation in the cached features")
    return group.tensor(video, t, block)[first:], where - first


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(F, H, W, 3) uint8 -> (F, h, w, 3) uint8 at the recipe resolution (bilinear, antialiased)."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
