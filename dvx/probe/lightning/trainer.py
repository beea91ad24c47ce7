"""Building the Lightning Trainer of a probe: devices and strategy passed through, CSV logs (plus
TensorBoard when it is installed), a checkpoint of the trained heads, and timing of data waits."""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from dvx.errors import ConfigError
from dvx.probe.lightning.devices import accelerator_for, parse_devices

#: Lightning warnings that say nothing to a probe user (tiny datasets, the metric logging of test epochs)
_QUIET = (
    r".*does not have many workers.*",
    r".*number of training batches.*is smaller than the logging interval.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*You defined a `validation_step` but have no `val_dataloader`.*",
    r".*It is recommended to use `self.log\(.*sync_dist=True\)`.*",
    r".*Trying to infer the `batch_size` from an ambiguous collection.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*Experiment logs directory .* exists and is not empty.*",
)


class DataWaitTimer(pl.Callback):
    """Per training epoch: wall time, and time the loop spent waiting for the next batch (data loading,
    store reads, collation) between the end of one step and the start of the next."""

    def __init__(self) -> None:
        self.epochs: list[tuple[float, float]] = []  # (epoch seconds, data-wait seconds)
        self._epoch_start = 0.0
        self._last = 0.0
        self._wait = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._epoch_start = self._last = time.perf_counter()
        self._wait = 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, *args: Any) -> None:
        self._wait += time.perf_counter() - self._last

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args: Any) -> None:
        self._last = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.epochs.append((time.perf_counter() - self._epoch_start, self._wait))

    def summary(self, skip_first: bool = True) -> dict[str, float]:
        """Mean epoch seconds and data-wait fraction (the first epoch, which forks workers, left out when
        there are others)."""
        rows = self.epochs[1:] if skip_first and len(self.epochs) > 1 else self.epochs
        if not rows:
            return {}
        total = sum(r[0] for r in rows)
        return {
            "epoch_seconds": total / len(rows),
            "data_wait_fraction": sum(r[1] for r in rows) / total if total > 0 else 0.0,
        }


def loggers(log_dir: Path, stage: str = "") -> list[Any]:
    """CSV (``log_dir/[stage/]metrics.csv``), plus TensorBoard when installed. Training logs at the top,
    the test run in ``test/`` (a spawned test run must not replace the training log)."""
    from pytorch_lightning.loggers import CSVLogger

    out: list[Any] = [CSVLogger(save_dir=str(log_dir), name="", version=stage)]
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return out
    from pytorch_lightning.loggers import TensorBoardLogger

    out.append(
        TensorBoardLogger(
            save_dir=str(log_dir), name="", version=f"tensorboard{'-' + stage if stage else ''}"
        )
    )
    return out


def check_strategy(strategy: str | None) -> str:
    """``--strategy`` as Lightning takes it: ``auto`` or a registered strategy name; one line if not."""
    from pytorch_lightning.strategies import StrategyRegistry

    name = strategy or "auto"
    if name != "auto" and name not in StrategyRegistry:
        raise ConfigError(
            f"--strategy {name!r} is not a Lightning strategy (e.g. auto, ddp, ddp_spawn, fsdp)"
        )
    return name


def make_trainer(
    log_dir: Path,
    epochs: int,
    device: str,
    devices: str | int | None,
    strategy: str | None,
    progress: bool,
    callbacks: list[pl.Callback],
) -> pl.Trainer:
    import torch
    from pytorch_lightning.callbacks import ModelCheckpoint

    accel, default_devices = accelerator_for(device)
    gpu = accel == "gpu" or (accel == "auto" and torch.cuda.is_available())
    chosen = parse_devices(devices) if devices is not None else default_devices
    # the trained heads, saved once at the end of training (a probe has no validation-based selection)
    ckpt = ModelCheckpoint(
        dirpath=str(log_dir / "checkpoints"), filename="heads", save_top_k=1, every_n_epochs=epochs
    )
    return pl.Trainer(
        max_epochs=epochs,
        accelerator=accel,
        devices=chosen,
        strategy=check_strategy(strategy),
        logger=loggers(log_dir),
        callbacks=[ckpt, *callbacks],
        enable_progress_bar=progress and sys.stderr.isatty(),  # in a log: dvx.progress.epoch_progress
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        use_distributed_sampler=False,  # the datamodule shards itself (exact evaluation, seeded shuffling)
        # under multi-GPU DDP the heads' BatchNorm sees the global batch, as on one device (torch's
        # SyncBatchNorm is CUDA-only: CPU DDP normalises per process)
        sync_batchnorm=gpu,
        default_root_dir=str(log_dir),
    )


def ignore_lightning_noise() -> None:
    """Install the warning filters of :func:`quiet_lightning` for good (spawned DDP processes, which do not
    inherit the parent's filters)."""
    for pattern in _QUIET:
        warnings.filterwarnings("ignore", message=pattern)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's info banners and irrelevant warnings for the duration of a probe."""
    names = ("pytorch_lightning", "lightning_fabric", "lightning.pytorch")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        for pattern in _QUIET:
            warnings.filterwarnings("ignore", message=pattern)
        try:
            yield
        finally:
            for n, level in saved.items():
                logging.getLogger(n).setLevel(level)
