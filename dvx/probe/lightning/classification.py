"""Action recognition head family: features averaged over space and time -> two-layer MLP -> class.

The pooled vector of a video is small, so the datamodule materialises it: one streamed pass over the
store (with workers) per split, then every epoch reads memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from dvx.data.base import VideoDataset, VideoRef
from dvx.errors import DataError
from dvx.probe.lightning.datamodule import SampleBuilder
from dvx.probe.lightning.heads import MLPHead
from dvx.probe.lightning.source import Pair, pair_key
from dvx.probe.lightning.sweep import SweepModule, build_heads
from dvx.store.index import Commit


class PooledBuilder(SampleBuilder):
    """(stored frames, C, h, w) -> the mean over frames and positions, (C,) float32; label = ref.label."""

    def features(self, x: np.ndarray, commit: Commit) -> torch.Tensor:
        return torch.from_numpy(x).float().mean(dim=(0, 2, 3))

    def labels(self, dataset: VideoDataset, ref: VideoRef, commit: Commit) -> dict[str, Any]:
        if ref.label is None:
            raise DataError(f"{dataset.name}: video {ref.id!r} has no class label")
        return {"y": int(ref.label)}

    def collate(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        keys = samples[0]["x"].keys()
        return {
            "x": {k: torch.stack([s["x"][k] for s in samples]) for k in keys},
            "y": torch.tensor([s["y"] for s in samples], dtype=torch.long),
        }


class ClassificationProbe(SweepModule):
    """One :class:`MLPHead` per (T, block); cross-entropy; top-1 / top-k accuracy on the test split."""

    def __init__(
        self,
        pairs: Sequence[Pair],
        dims: dict[str, int],
        num_classes: int,
        lr: float,
        epochs: int,
        seed: int,
        weight_decay: float = 1e-4,
        top_k: int = 5,
    ) -> None:
        super().__init__(pairs, lr, epochs, weight_decay)
        self.save_hyperparameters()
        self.num_classes = num_classes
        self.top_k = min(top_k, num_classes)
        self.heads = build_heads(pairs, seed, lambda p: MLPHead(dims[pair_key(p)], num_classes))
        self.top1 = nn.ModuleDict(
            {k: MulticlassAccuracy(num_classes, top_k=1, average="micro") for k in self.keys}
        )
        self.topk = nn.ModuleDict(
            {k: MulticlassAccuracy(num_classes, top_k=self.top_k, average="micro") for k in self.keys}
        )

    def head_loss(self, key: str, batch: dict[str, Any]) -> torch.Tensor:
        return F.cross_entropy(self.heads[key](batch["x"][key]), batch["y"])

    def head_eval(self, key: str, batch: dict[str, Any]) -> None:
        logits = self.heads[key](batch["x"][key])
        self.top1[key].update(logits, batch["y"])
        self.topk[key].update(logits, batch["y"])

    def head_results(self, key: str) -> dict[str, float]:
        out = {"top1": float(self.top1[key].compute()), "top5": float(self.topk[key].compute())}
        self.top1[key].reset()
        self.topk[key].reset()
        return out
