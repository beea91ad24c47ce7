"""What the label-propagation tasks share: their options, features per video, frame mapping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from dvx.errors import DataError
from dvx.options import Options, option
from dvx.probe.propagation import PropagationConfig
from dvx.store.group import RecipeGroup
from dvx.store.index import Commit

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class PropagationOptions(Options):
    """The kNN propagation knobs (docs/probes.md): a preset, and any of its values replaced."""

    preset: Literal["dift", "dino"] = option(
        "dift", "Propagation preset: dift (k 15, tau 0.2, context 28, radius 15) or dino (5, 0.1, 7, 12)."
    )
    topk: int | None = option(None, "Neighbours kept [default: the preset's].", minimum=1)
    temperature: float | None = option(None, "Softmax temperature [default: the preset's].", above=0)
    context: int | None = option(None, "Recent frames in the queue [default: the preset's].", minimum=0)
    radius: int | None = option(
        None,
        "Spatial neighbourhood radius in feature cells, -1 for none [default: the preset's].",
        minimum=-1,
    )

    def propagation(self) -> PropagationConfig:
        """The preset with the values given replaced; ``radius -1`` = no window."""
        overrides: dict[str, Any] = {
            k: v for k in ("topk", "temperature", "context") if (v := getattr(self, k)) is not None
        }
        if self.radius is not None:
            overrides["radius"] = None if self.radius < 0 else self.radius
        return PropagationConfig.preset(self.preset, **overrides)

    def settings(self) -> dict[str, Any]:
        prop = self.propagation()
        return {
            "preset": self.preset,
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
