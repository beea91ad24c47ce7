"""The Lightning module of a twin: the standard noise-prediction loss on latent clips.

Each sample draws T uniformly from the DDPM scale 0..999 and fresh Gaussian noise; the UNet sees exactly
what extraction feeds it (dvx.extract.backbones.svd: ``edm_noised`` then ``denoise`` under the null
conditioning), so training and extraction condition the network identically. The target is the noise
(epsilon prediction), the loss its mean squared error. The video twin's batches are (B, F, 4, h, w) clips;
the image twin's are (B', 1, 4, h, w): the same network, its temporal layers seeing one frame.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from dvx.extract.backbones.svd import denoise, edm_noised
from dvx.twin.config import TrainConfig


class TwinModule(pl.LightningModule):
    def __init__(self, unet: torch.nn.Module, cfg: TrainConfig) -> None:
        super().__init__()
        self.unet = unet
        self.cfg = cfg
        self.losses: list[tuple[int, float]] = []  # (step, loss) of every optimiser step
        self.batch_frames: set[int] = set()  # F of every batch trained on (the image twin: {1})

    def loss(self, z0: torch.Tensor) -> torch.Tensor:
        b = z0.shape[0]
        t = torch.randint(0, 1000, (b,), device=z0.device)
        eps = torch.randn_like(z0)
        x, model_t = edm_noised(z0, t, eps)
        return torch.nn.functional.mse_loss(denoise(self.unet, x, model_t), eps)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        self.batch_frames.add(int(batch.shape[1]))
        loss = self.loss(batch)
        self.losses.append((int(self.global_step) + 1, float(loss.detach())))
        return loss

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.unet.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        warm = max(self.cfg.warmup_steps, 1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
