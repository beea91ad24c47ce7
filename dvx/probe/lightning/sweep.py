"""Training the heads of a (T, block) sweep side by side: one LightningModule holds one head per pair.

Every batch carries the features of all pairs, so the data are read once per epoch for the whole sweep.
Each head's loss is back-propagated on its own (``manual_backward``: one head's graph at a time in memory;
under DDP, whose gradient reduction needs one backward reaching every parameter, the sum of the losses)
and one AdamW step updates all heads; AdamW is per-parameter, so each head follows exactly the updates it
would follow alone. Heads are initialised from a seed derived from (seed, T, block), and the data order
is seeded by the datamodule: a head's result does not depend on which other heads share its sweep.
"""

from __future__ import annotations

import hashlib
import math
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from dvx.probe.lightning.source import Pair, pair_key


def head_seed(seed: int, pair: Pair) -> int:
    digest = hashlib.sha256(f"dvx-head/{seed}/{pair[0]}/{pair[1]}".encode()).hexdigest()
    return int(digest[:8], 16)


def build_heads(pairs: Sequence[Pair], seed: int, make: Callable[[Pair], nn.Module]) -> nn.ModuleDict:
    """One head per pair, each initialised under its own seed (independent of the other pairs)."""
    heads = {}
    for pair in pairs:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(head_seed(seed, pair))
            heads[pair_key(pair)] = make(pair)
    return nn.ModuleDict(heads)


class SweepModule(pl.LightningModule):
    """Base of the head families: manual optimisation over a ModuleDict of heads keyed by pair."""

    def __init__(self, pairs: Sequence[Pair], lr: float, epochs: int, weight_decay: float = 1e-4) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.pairs = list(pairs)
        self.keys = [pair_key(p) for p in self.pairs]
        self.lr = lr
        self.epochs = epochs
        self.weight_decay = weight_decay
        self.heads: nn.ModuleDict

    # ---- what a family defines -----------------------------------------------------------------------
    @abstractmethod
    def head_loss(self, key: str, batch: dict[str, Any]) -> torch.Tensor:
        """The loss of head ``key`` on a batch."""

    @abstractmethod
    def head_eval(self, key: str, batch: dict[str, Any]) -> None:
        """Update head ``key``'s metrics with a test batch."""

    @abstractmethod
    def head_results(self, key: str) -> dict[str, float]:
        """Head ``key``'s test metrics (computed over all ranks), then reset."""

    def setup(self, stage: str) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            from dvx.probe.lightning.trainer import ignore_lightning_noise

            ignore_lightning_noise()  # a spawned rank does not inherit the parent's warning filters

    # ---- training ------------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.heads.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda e: 0.5 * (1 + math.cos(math.pi * min(e, self.epochs) / max(1, self.epochs)))
        )
        return [opt], [sched]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        opt = self.optimizers()
        opt.zero_grad(set_to_none=True)
        n = len(batch["y"])  # videos in the batch (weights the epoch mean of the loss)
        # DDP reduces gradients during one backward that must reach every parameter: there, back-propagate
        # the sum of the heads' losses (the heads share no parameter, so each gets its own gradient)
        together = self.trainer.world_size > 1
        losses = []
        for key in self.keys:
            loss = self.head_loss(key, batch)
            if not together:
                self.manual_backward(loss)
            losses.append(loss)
            self.log(
                f"train/{key}/loss", loss.detach(), on_step=False, on_epoch=True, sync_dist=True, batch_size=n
            )
        if together:
            self.manual_backward(torch.stack(losses).sum())
        opt.step()

    def on_train_epoch_end(self) -> None:
        sched = self.lr_schedulers()
        if sched is not None:
            sched.step()

    # ---- testing -------------------------------------------------------------------------------------
    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        for key in self.keys:
            self.head_eval(key, batch)

    def on_test_epoch_end(self) -> None:
        for key in self.keys:
            for name, value in self.head_results(key).items():
                # already reduced over ranks by torchmetrics; sync_dist only averages identical values
                self.log(f"test/{key}/{name}", float(value), batch_size=1, sync_dist=True)

    @staticmethod
    def collect(callback_metrics: dict[str, Any], key: str, stage: str = "test") -> dict[str, float]:
        """The ``<stage>/<key>/...`` values a run logged, as ``{name: value}``."""
        prefix = f"{stage}/{key}/"
        return {k[len(prefix) :]: float(v) for k, v in callback_metrics.items() if k.startswith(prefix)}
