"""``dvx twin train``: train one twin (video or image objective) and write its checkpoint folders.

The run: seed everything; build the tiny-svd UNet (init seeded by ``seed``, so both twins of a seed start
from the same network) and the frozen tiny-svd VAE; encode the training frames once (dvx/twin/data.py);
write the untrained network as ``step-0``; train with Lightning for ``steps`` optimiser steps, writing
``step-<k>`` every ``save_every`` steps and at the end (dvx/twin/checkpoint.py).

An ``--out`` folder that already holds the last checkpoint of the same resolved config is reused (nothing
is retrained); one that holds a run of another config is refused, never overwritten.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dvx.errors import ConfigError
from dvx.progress import step_progress
from dvx.results import read_config, write_config
from dvx.twin.checkpoint import CheckpointWriter, checkpoints, step_folder, write_checkpoint, write_losses
from dvx.twin.config import TrainConfig

Log = Callable[[str], None]
#: the seed of the frozen VAE shared by every twin (tiny-svd's)
VAE_SEED = 1
#: what the saved scheduler says the twins predict
PREDICTION_TYPE = "epsilon"


@dataclass
class TrainReport:
    out: Path
    checkpoints: dict[int, Path]
    seconds: float = 0.0
    reused: bool = False
    latent_scale: float = 0.0
    train_frames: int = 0
    batch_frames: set[int] = field(default_factory=set)  # F of every batch trained on
    losses: list[tuple[int, float]] = field(default_factory=list)

    def summary(self) -> str:
        if self.reused:
            return f"{self.out}: already trained ({len(self.checkpoints)} checkpoints); reused"
        last = self.losses[-1][1] if self.losses else float("nan")
        return (
            f"{self.out}: {max(self.checkpoints)} steps in {self.seconds:.0f}s, {len(self.checkpoints)} "
            f"checkpoints, last loss {last:.4f}"
        )


def config_record(cfg: TrainConfig, latent_scale: float | None = None) -> dict[str, Any]:
    """What ``<out>/dvx-config.json`` holds: the resolved config and the shared parts it implies."""
    from dvx.extract.backbones.svd import DEFAULT_TIME_IDS, TINY_UNET_CONFIG, TINY_VAE_CONFIG

    return {
        "command": "dvx twin train",
        "config": cfg.to_json(),
        "unet": {"class": "UNetSpatioTemporalConditionModel", "config": dict(TINY_UNET_CONFIG)},
        "vae": {
            "class": "AutoencoderKLTemporalDecoder",
            "trained": cfg.vae,  # None: the random init of ``seed``
            "seed": VAE_SEED,
            "config": dict(TINY_VAE_CONFIG),
            "frozen": True,
            "latent": "mean",
            "scaling_factor": latent_scale,
        },
        "noise": "T uniform on 0..999; x = c_in (z0 + sigma_T eps), sigma_T SNR-matched to SD's "
        "scaled-linear schedule; timestep 0.25 ln sigma (as extraction)",
        "loss": f"{PREDICTION_TYPE} prediction, mean squared error",
        "conditioning": {"image_embedding": "zeros", "image_latent": "zeros", **DEFAULT_TIME_IDS},
    }


#: settings that do not change what is trained (the results depend on threads only through float rounding)
_NOT_IDENTITY = ("progress", "threads", "device")


def _same_run(saved: dict[str, Any] | None, cfg: TrainConfig) -> bool | None:
    """None: no earlier run; True/False: the earlier run had this config (progress aside)."""
    if saved is None:
        return None
    mine = {k: v for k, v in json.loads(json.dumps(cfg.to_json())).items() if k not in _NOT_IDENTITY}
    theirs = {k: v for k, v in (saved.get("config") or {}).items() if k not in _NOT_IDENTITY}
    return mine == theirs


@contextmanager
def _quiet_lightning() -> Any:
    names = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
        warnings.filterwarnings("ignore", message=r".*Trying to infer the `batch_size`.*")
        try:
            yield
        finally:
            for n, level in saved.items():
                logging.getLogger(n).setLevel(level)


def _load_vae(folder: str | None) -> Any:
    """The frozen VAE: a trained one (``dvx twin vae``) from its folder, else tiny-svd's random init."""
    from dvx.extract.backbones.svd import tiny_vae

    if folder is None:
        return tiny_vae(VAE_SEED)
    from diffusers import AutoencoderKLTemporalDecoder

    return AutoencoderKLTemporalDecoder.from_pretrained(Path(folder).expanduser())


def run_train(cfg: TrainConfig, log: Log = print) -> TrainReport:
    """Train one twin as ``cfg`` says; see the module docstring."""
    import pytorch_lightning as pl

    from dvx.extract.backbones.svd import scheduler, tiny_unet
    from dvx.twin.data import BatchSampler, encode_dataset
    from dvx.twin.module import TwinModule

    out = Path(cfg.out).expanduser()
    same = _same_run(read_config(out) if out.is_dir() else None, cfg)
    if same is False:
        raise ConfigError(
            f"--out {out} holds a twin trained with other settings (its dvx-config.json); give another "
            "folder or remove it"
        )
    found = checkpoints(out) if out.is_dir() else {}
    if same and set(cfg.save_steps()) <= set(found):
        return TrainReport(out, found, reused=True, losses=_read_losses(out))
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    device = torch.device(cfg.device if cfg.device != "auto" else "cpu")
    vae = _load_vae(cfg.vae).to(device).eval().requires_grad_(False)
    pool = encode_dataset(cfg, vae, log)
    scale = pool.scale()
    vae.register_to_config(scaling_factor=scale)
    out.mkdir(parents=True, exist_ok=True)
    write_config(out, config_record(cfg, scale))
    vae_dir = out / "vae-frozen"
    vae.save_pretrained(vae_dir)
    sched = scheduler(prediction_type=PREDICTION_TYPE)
    unet = tiny_unet(cfg.seed)
    write_checkpoint(out, 0, unet, vae_dir, sched)
    module = TwinModule(unet, cfg)
    writer = CheckpointWriter(out, [s for s in cfg.save_steps() if s > 0], vae_dir, sched)
    data = torch.utils.data.DataLoader(BatchSampler(pool, cfg, scale), batch_size=None, num_workers=0)
    with _quiet_lightning():
        trainer = pl.Trainer(
            max_steps=cfg.steps,
            accelerator="cpu" if device.type == "cpu" else "auto",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=cfg.progress and sys.stderr.isatty(),  # in a log: plain lines (below)
            enable_model_summary=False,
            gradient_clip_val=1.0,
            callbacks=[writer, *step_progress(cfg.steps, f"train {cfg.objective} twin", cfg.progress)],
        )
        trainer.fit(module, train_dataloaders=data)
    write_losses(out, module.losses)
    return TrainReport(
        out,
        checkpoints(out),
        seconds=time.perf_counter() - start,
        latent_scale=scale,
        train_frames=pool.frames,
        batch_frames=set(module.batch_frames),
        losses=list(module.losses),
    )


def _read_losses(out: Path) -> list[tuple[int, float]]:
    try:
        rows = json.loads((out / "losses.json").read_text())["step_loss"]
    except (OSError, ValueError, KeyError):
        return []
    return [(int(s), float(v)) for s, v in rows]


__all__ = ["TrainReport", "run_train", "step_folder"]
