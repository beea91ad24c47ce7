"""Scene understanding head family: a two-layer MLP at every position of the feature map, its output
upsampled (bilinear) to the label resolution; semantic segmentation (cross-entropy, 255 ignored) or depth
(L1 on pixels with valid depth).

Samples are whole videos (every stored frame); a stored temporal index that covers several input frames
(tubelet models) predicts all of them. Depth is regressed in standardised units: the head outputs
``(depth - mean) / std`` with the mean and std of the valid training depths (measured on up to
:data:`DEPTH_STATS_VIDEOS` training videos before training); metrics are in the dataset's depth units.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError
from torchmetrics.classification import MulticlassConfusionMatrix

from dvx.data.base import VideoDataset, VideoRef
from dvx.errors import DataError
from dvx.probe.lightning.datamodule import SampleBuilder, frame_positions
from dvx.probe.lightning.heads import DenseMLPHead
from dvx.probe.lightning.metrics import iou_from_confusion, nanmean
from dvx.probe.lightning.source import Pair, pair_key
from dvx.probe.lightning.sweep import SweepModule, build_heads
from dvx.store.index import Commit

IGNORE = 255
DEPTH_STATS_VIDEOS = 16


class DenseBuilder(SampleBuilder):
    """Per-frame features (kept float16 until they reach the device) and per-frame labels.

    ``kind`` is "semantic" ((L, H, W) uint8, 255 = ignore) or "depth" ((L, H, W) float32, NaN = unknown);
    ``index`` maps each label frame to the stored temporal index that predicts it.
    """

    def __init__(self, kind: str, frame_stride: int) -> None:
        if kind not in ("semantic", "depth"):
            raise ValueError(kind)
        self.kind = kind
        self.frame_stride = frame_stride

    def features(self, x: np.ndarray, commit: Commit) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x))

    def labels(self, dataset: VideoDataset, ref: VideoRef, commit: Commit) -> dict[str, Any]:
        arr = dataset.semantic(ref) if self.kind == "semantic" else dataset.depth(ref)
        groups = frame_positions(commit, self.frame_stride, len(arr), ref.id)
        frames = [p for g in groups for p in g]
        index = [s for s, g in enumerate(groups) for _ in g]
        y = torch.from_numpy(np.ascontiguousarray(arr[frames]))
        return {"y": y, "index": torch.tensor(index, dtype=torch.long)}

    def collate(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        keys = samples[0]["x"].keys()
        return {
            "x": {k: [s["x"][k] for s in samples] for k in keys},
            "y": [s["y"] for s in samples],
            "index": [s["index"] for s in samples],
        }


def depth_stats(dataset: VideoDataset, refs: Sequence[VideoRef]) -> tuple[float, float]:
    """Mean and std of the valid depths of the first :data:`DEPTH_STATS_VIDEOS` videos."""
    values = []
    for ref in refs[:DEPTH_STATS_VIDEOS]:
        d = dataset.depth(ref)
        values.append(d[np.isfinite(d)].astype(np.float64))
    v = np.concatenate(values) if values else np.zeros(0)
    if v.size == 0:
        raise DataError(f"{dataset.name}: the training videos have no valid depth")
    return float(v.mean()), float(max(v.std(), 1e-6))


class DenseProbe(SweepModule):
    """One :class:`DenseMLPHead` per (T, block): ``kind`` "semantic" (mIoU) or "depth" (mErr, RMSE)."""

    def __init__(
        self,
        pairs: Sequence[Pair],
        dims: dict[str, int],
        kind: str,
        num_classes: int,
        lr: float,
        epochs: int,
        seed: int,
        weight_decay: float = 1e-4,
        depth_mean: float = 0.0,
        depth_std: float = 1.0,
    ) -> None:
        super().__init__(pairs, lr, epochs, weight_decay)
        self.save_hyperparameters()
        self.kind = kind
        self.num_classes = num_classes
        self.depth_mean, self.depth_std = depth_mean, depth_std
        outputs = num_classes if kind == "semantic" else 1
        self.heads = build_heads(pairs, seed, lambda p: DenseMLPHead(dims[pair_key(p)], outputs))
        if kind == "semantic":
            self.confusion = nn.ModuleDict(
                {k: MulticlassConfusionMatrix(num_classes, ignore_index=IGNORE) for k in self.keys}
            )
        else:
            self.mae = nn.ModuleDict({k: MeanAbsoluteError() for k in self.keys})
            self.rmse = nn.ModuleDict({k: MeanSquaredError(squared=False) for k in self.keys})

    def _outputs(self, key: str, batch: dict[str, Any]) -> list[torch.Tensor]:
        """Per video: the head's output for each label frame at the label resolution (L, K, H, W)."""
        feats = batch["x"][key]
        out = self.heads[key](torch.cat(feats).float())
        per_video = out.split([f.shape[0] for f in feats])
        return [
            F.interpolate(o[idx], size=tuple(y.shape[-2:]), mode="bilinear", align_corners=False)
            for o, y, idx in zip(per_video, batch["y"], batch["index"], strict=True)
        ]

    def head_loss(self, key: str, batch: dict[str, Any]) -> torch.Tensor:
        total = torch.zeros((), device=self.device)
        count = torch.zeros((), device=self.device)
        for out, y in zip(self._outputs(key, batch), batch["y"], strict=True):
            if self.kind == "semantic":
                target = y.long()
                total = total + F.cross_entropy(out, target, ignore_index=IGNORE, reduction="sum")
                count = count + (target != IGNORE).sum()
            else:
                valid = torch.isfinite(y)
                z = (y[valid] - self.depth_mean) / self.depth_std
                total = total + (out[:, 0][valid] - z).abs().sum()
                count = count + valid.sum()
        return total / count.clamp(min=1)

    def head_eval(self, key: str, batch: dict[str, Any]) -> None:
        for out, y in zip(self._outputs(key, batch), batch["y"], strict=True):
            if self.kind == "semantic":
                self.confusion[key].update(out.argmax(dim=1).reshape(-1), y.long().reshape(-1))
            else:
                valid = torch.isfinite(y)
                pred = out[:, 0][valid] * self.depth_std + self.depth_mean
                self.mae[key].update(pred, y[valid])
                self.rmse[key].update(pred, y[valid])

    def head_results(self, key: str) -> dict[str, float]:
        if self.kind == "semantic":
            iou = iou_from_confusion(self.confusion[key].compute())
            self.confusion[key].reset()
            return {"mIoU": nanmean(iou), **{f"IoU/{i}": float(v) for i, v in enumerate(iou)}}
        out = {"depth_mErr": float(self.mae[key].compute()), "depth_RMSE": float(self.rmse[key].compute())}
        self.mae[key].reset()
        self.rmse[key].reset()
        return out
