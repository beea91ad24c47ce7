"""``dvx twin vae``: the autoencoder both twins share, trained once on the training world's frames.

Why. A latent diffusion model denoises the latents of a *trained* autoencoder (SD's and SVD's VAEs were
trained first, then frozen). tiny-svd's VAE at random init squeezes each 8 x 8 x 3 patch into 4 random
channels: on a 128x192 synthetic world (the generator's defaults; stride 8) kNN propagation of those
latents scores J&F 0.22, against 0.64 for the patch's mean colour, so a twin built on them starts from a
representation worse than raw pixels. Trained here for a few hundred steps the same VAE's latents
reached 0.37-0.40 (docs/twins.md). Both twins of every seed use the one trained VAE, so the
image-vs-video contrast is untouched: only what both denoise changes.

Protocol. ``AutoencoderKLTemporalDecoder`` of the tiny-svd config, init seeded by ``seed``; every frame of
the dataset resized as extraction does, scaled to [-1, 1]; a batch is ``batch`` frames drawn uniformly
(single frames: the temporal decoder sees F = 1); loss = mean squared reconstruction error of a posterior
sample + ``kl_weight`` x the posterior's KL to N(0, I) per latent value; AdamW (lr, weight decay 0.01);
``steps`` steps. No perceptual or adversarial loss (SD's VAE has both): this is the smallest autoencoder
objective, enough to make the latents carry the image. The folder is a plain diffusers folder
(``save_pretrained``, written under a temporary name and renamed), with ``dvx-config.json`` (this config)
and ``losses.json`` beside the weights; a second run with the same config reuses it, another config is
refused.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from dvx.errors import ConfigError, DataError
from dvx.twin.config import check_training_settings

Log = Callable[[str], None]
CONFIG_FILE = "dvx-config.json"


@dataclass(frozen=True)
class VaeConfig:
    """Everything ``dvx twin vae`` needs."""

    data_root: str
    out: str  # the VAE folder (diffusers layout) to write
    dataset: str = "synthetic"
    split: str | None = None
    steps: int = 300
    batch: int = 16  # frames per step
    resolution: tuple[int, int] = (64, 96)
    lr: float = 1e-3
    kl_weight: float = 1e-5
    seed: int = 1  # tiny-svd's VAE seed
    max_videos: int | None = None
    device: str = "cpu"
    threads: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 10_000_000:
            raise ConfigError(f"--steps must lie in 1..10000000, got {self.steps}")
        if self.batch < 1:
            raise ConfigError(f"--batch must be >= 1, got {self.batch}")
        if self.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {self.seed}")
        check_training_settings(self, nonnegative=("kl_weight",))

    def identity(self) -> dict[str, Any]:
        """The settings that decide the weights (threads, device and progress do not)."""
        out = json.loads(json.dumps(asdict(self)))
        for k in ("out", "device", "threads", "progress"):
            out.pop(k)
        return out


@dataclass
class VaeReport:
    out: Path
    reused: bool = False
    seconds: float = 0.0
    frames: int = 0
    losses: list[tuple[int, float]] | None = None

    def summary(self) -> str:
        if self.reused:
            return f"{self.out}: already trained; reused"
        last = self.losses[-1][1] if self.losses else float("nan")
        return f"{self.out}: trained on {self.frames} frames in {self.seconds:.0f}s, last loss {last:.4f}"


def _saved_identity(out: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((out / CONFIG_FILE).read_text())["config"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _frames(cfg: VaeConfig) -> torch.Tensor:
    """Every frame of the dataset, resized as extraction does, in [-1, 1]: (N, 3, H, W) float32."""
    from dvx.data import open_dataset
    from dvx.extract.runner import to_model_input

    ds = open_dataset(cfg.dataset, cfg.data_root, cfg.split)
    refs = ds.videos()[: cfg.max_videos]
    if not refs:
        raise DataError(
            f"no videos to train the VAE on in {cfg.data_root} ({cfg.dataset}, split {cfg.split})"
        )
    return torch.cat([to_model_input(ds.load(ref).frames, cfg.resolution) for ref in refs]) * 2 - 1


def train_vae(cfg: VaeConfig, log: Log = print) -> VaeReport:
    """Train (or reuse) the shared VAE as the module docstring says."""
    from dvx.extract.backbones.svd import tiny_vae

    out = Path(cfg.out).expanduser()
    if (out / "config.json").is_file():
        if _saved_identity(out) == cfg.identity():
            return VaeReport(out, reused=True)
        raise ConfigError(
            f"--out {out} holds a VAE trained with other settings; give another folder or remove it"
        )
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"--out {out} is a folder that holds something else; give a new or empty folder")
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device if cfg.device != "auto" else "cpu")
    frames = _frames(cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    vae = tiny_vae(cfg.seed).to(device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr, weight_decay=0.01)
    losses: list[tuple[int, float]] = []
    every = max(1, cfg.steps // 10)
    for step in range(1, cfg.steps + 1):
        x = frames[torch.randint(len(frames), (cfg.batch,), generator=gen)].to(device)
        post = vae.encode(x).latent_dist
        z = post.sample(generator=None)
        rec = vae.decode(z, num_frames=1).sample
        kl = post.kl().mean() / z[0].numel()
        loss = torch.nn.functional.mse_loss(rec, x) + cfg.kl_weight * kl
        if not torch.isfinite(loss):
            raise DataError(f"the VAE's loss is not finite at step {step}; try a smaller --lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        losses.append((step, float(loss.detach())))
        if cfg.progress and (step % every == 0 or step == cfg.steps):
            msg = f"train shared VAE: step {step}/{cfg.steps}, loss {losses[-1][1]:.4f}"
            print(msg, file=sys.stderr, flush=True)
    _save(out, vae.eval().cpu(), cfg, losses)
    return VaeReport(out, seconds=time.perf_counter() - start, frames=len(frames), losses=losses)


def _save(out: Path, vae: Any, cfg: VaeConfig, losses: list[tuple[int, float]]) -> None:
    """The folder appears whole or not at all: written beside it under a temporary name, then renamed."""
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        vae.save_pretrained(tmp)
        record = {"command": "dvx twin vae", "config": cfg.identity()}
        (tmp / CONFIG_FILE).write_text(json.dumps(record, indent=2) + "\n")
        (tmp / "losses.json").write_text(json.dumps({"step_loss": losses}) + "\n")
        if out.is_dir():  # empty (checked before training)
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["VaeConfig", "VaeReport", "train_vae"]
