"""Training data of the twins: every frame of a dvx dataset encoded once by the frozen VAE, then batches of
latent clips (video twin: F consecutive frames) or single frames (image twin: F = 1) drawn from the same
pool with a seeded generator.

The VAE is frozen, so its latents are computed once per run (posterior mean, as extraction's default) and
kept in memory. The latent scale follows SD's rule for its 0.18215: ``scaling_factor = 1 / std`` of the
training latents, measured here and written into the VAE config of every checkpoint, so extraction
(``latents * vae.config.scaling_factor``) feeds the UNet latents of the scale it was trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dvx.errors import DataError
from dvx.twin.config import TrainConfig


@dataclass
class LatentPool:
    """Unscaled VAE latents of every training video: one (frames, 4, h, w) float32 tensor each."""

    videos: list[torch.Tensor]
    ids: list[str]

    @property
    def frames(self) -> int:
        return sum(len(v) for v in self.videos)

    def scale(self) -> float:
        """``1 / std`` over every latent value (SD's rule for its VAE scaling factor)."""
        flat = torch.cat([v.flatten() for v in self.videos])
        std = float(flat.std())
        if not np.isfinite(std) or std <= 0:
            raise DataError("the training latents have no spread (blank frames?)")
        return 1.0 / std


def encode_dataset(cfg: TrainConfig, vae: Any, log: Callable[[str], None] = lambda _: None) -> LatentPool:
    """Decode every video of ``cfg``'s dataset, resize as extraction does, encode with ``vae`` (mean)."""
    from dvx.data import open_dataset
    from dvx.extract.runner import to_model_input

    ds = open_dataset(cfg.dataset, cfg.data_root, cfg.split)
    refs = ds.videos()
    if cfg.max_videos is not None:
        refs = refs[: cfg.max_videos]
    if not refs:
        raise DataError(f"no videos to train on in {cfg.data_root} ({cfg.dataset}, split {cfg.split})")
    videos, ids = [], []
    with torch.no_grad():
        for ref in refs:
            frames = ds.load(ref).frames
            x = to_model_input(frames, cfg.resolution).to(cfg.device) * 2 - 1
            lat = torch.cat([vae.encode(x[i : i + 16]).latent_dist.mean for i in range(0, len(x), 16)])
            videos.append(lat.float().cpu())
            ids.append(ref.id)
    usable = [v for v in videos if len(v) >= cfg.clip_frames]
    if not usable:
        raise DataError(
            f"no training video has the {cfg.clip_frames} frames a clip needs (longest: "
            f"{max(len(v) for v in videos)}); use a world with more frames or a smaller --frames"
        )
    log(f"encoded {len(videos)} videos, {sum(len(v) for v in videos)} frames")
    return LatentPool(videos, ids)


class BatchSampler(torch.utils.data.IterableDataset[torch.Tensor]):
    """Endless batches (samples, F, 4, h, w) of scaled latents: ``samples_per_batch`` windows of
    ``clip_frames`` consecutive frames, each from a uniformly drawn video (of those long enough) and start.
    With F = 1 every frame of the pool is equally likely, as in the video twin's windows but ungrouped."""

    def __init__(self, pool: LatentPool, cfg: TrainConfig, scale: float) -> None:
        super().__init__()
        self.f = cfg.clip_frames
        self.n = cfg.samples_per_batch
        self.videos = [v * scale for v in pool.videos if len(v) >= self.f]
        # windows: (video, start) pairs, drawn uniformly so every window (and with F = 1 every frame) counts
        self.windows = [(i, s) for i, v in enumerate(self.videos) for s in range(len(v) - self.f + 1)]
        self.seed = cfg.seed

    def __iter__(self) -> Iterator[torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed)
        while True:
            picks = torch.randint(len(self.windows), (self.n,), generator=gen).tolist()
            yield torch.stack([self.videos[i][s : s + self.f] for i, s in (self.windows[p] for p in picks)])
