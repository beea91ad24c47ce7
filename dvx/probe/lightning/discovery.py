"""Object discovery head family: slot attention over a video's cached feature maps, trained to
reconstruct them (:mod:`dvx.probe.lightning.slot_attention`); scored by FG-ARI and mBO against the
instance masks, with the slot masks upsampled (bilinear) to the label resolution and arg-maxed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dvx.data.base import VideoDataset, VideoRef
from dvx.errors import DataError
from dvx.probe.lightning.datamodule import SampleBuilder, frame_positions
from dvx.probe.lightning.metrics import ForegroundARI, MeanBestOverlap
from dvx.probe.lightning.slot_attention import ObjectDiscoveryHead
from dvx.probe.lightning.source import Pair, pair_key
from dvx.probe.lightning.sweep import SweepModule, build_heads
from dvx.store.index import Commit


class InstanceBuilder(SampleBuilder):
    """A video's feature sequence (float16) and its instance ids per label frame (0 = background)."""

    def __init__(self, frame_stride: int) -> None:
        self.frame_stride = frame_stride

    def features(self, x: np.ndarray, commit: Commit) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x))

    def labels(self, dataset: VideoDataset, ref: VideoRef, commit: Commit) -> dict[str, Any]:
        ids = dataset.instances(ref)
        groups = frame_positions(commit, self.frame_stride, len(ids), ref.id)
        frames = [p for g in groups for p in g]
        index = [s for s, g in enumerate(groups) for _ in g]
        return {
            "y": torch.from_numpy(np.ascontiguousarray(ids[frames]).astype(np.int64)),
            "index": torch.tensor(index, dtype=torch.long),
            "video": ref.id,
        }

    def collate(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        keys = samples[0]["x"].keys()
        for k in keys:
            shapes = {tuple(s["x"][k].shape) for s in samples}
            if len(shapes) > 1:
                videos = ", ".join(s["video"] for s in samples)
                raise DataError(
                    f"object discovery batches whole videos, but {videos} have feature shapes "
                    f"{sorted(shapes)}; use --batch-size 1"
                )
        if len({tuple(s["y"].shape) for s in samples}) > 1:
            raise DataError(
                "object discovery: videos of one batch have different label sizes; use --batch-size 1"
            )
        return {
            "x": {k: torch.stack([s["x"][k] for s in samples]) for k in keys},
            "y": torch.stack([s["y"] for s in samples]),
            "index": torch.stack([s["index"] for s in samples]),
        }


class DiscoveryProbe(SweepModule):
    """One :class:`ObjectDiscoveryHead` per (T, block); feature reconstruction; FG-ARI and mBO."""

    def __init__(
        self,
        pairs: Sequence[Pair],
        dims: dict[str, int],
        sizes: dict[str, tuple[int, int]],
        num_slots: int,
        lr: float,
        epochs: int,
        seed: int,
        slot_dim: int = 128,
        iters: int = 3,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(pairs, lr, epochs, weight_decay)
        self.save_hyperparameters()
        self.heads = build_heads(
            pairs,
            seed,
            lambda p: ObjectDiscoveryHead(dims[pair_key(p)], sizes[pair_key(p)], num_slots, slot_dim, iters),
        )
        self.fg_ari = nn.ModuleDict({k: ForegroundARI() for k in self.keys})
        self.mbo = nn.ModuleDict({k: MeanBestOverlap() for k in self.keys})

    def head_loss(self, key: str, batch: dict[str, Any]) -> torch.Tensor:
        loss, _ = self.heads[key](batch["x"][key])
        return loss

    def predict_masks(self, key: str, batch: dict[str, Any]) -> torch.Tensor:
        """(B, L, H, W) slot ids per label pixel."""
        _, masks = self.heads[key](batch["x"][key])  # (B, S, K, h, w)
        y = batch["y"]
        out = []
        for b in range(masks.shape[0]):
            m = F.interpolate(masks[b][batch["index"][b]], size=tuple(y.shape[-2:]), mode="bilinear")
            out.append(m.argmax(dim=1))
        return torch.stack(out)

    def head_eval(self, key: str, batch: dict[str, Any]) -> None:
        preds = self.predict_masks(key, batch)
        for p, y in zip(preds, batch["y"], strict=True):
            self.fg_ari[key].update(p, y)
            self.mbo[key].update(p, y)

    def head_results(self, key: str) -> dict[str, float]:
        out = {"FG_ARI": float(self.fg_ari[key].compute()), "mBO": float(self.mbo[key].compute())}
        self.fg_ari[key].reset()
        self.mbo[key].reset()
        return out
