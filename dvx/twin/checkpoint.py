"""Checkpoints of a twin: ordinary diffusers folders, each extractable by ``dvx extract --weights``.

``<out>/step-<k>/`` holds ``unet/`` (the network after k optimiser steps; step 0 is the untrained init),
``vae/`` (the frozen VAE, identical in every folder, its ``scaling_factor`` the training latents' 1/std)
and ``scheduler/`` (SVD's EulerDiscreteScheduler with ``prediction_type`` epsilon, what the twin was trained
for). A folder appears whole or not at all: it is written under a temporary name and renamed. The resolved
training config is saved beside the folders (``<out>/dvx-config.json``), with the loss curve
(``<out>/losses.json``).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from dvx.errors import OutputError

STEP_PREFIX = "step-"


def step_folder(out: Path, step: int) -> Path:
    return out / f"{STEP_PREFIX}{step}"


def checkpoints(out: Path) -> dict[int, Path]:
    """Step -> folder of every complete checkpoint in ``out`` (temporary folders are not checkpoints)."""
    found = {}
    for p in out.glob(f"{STEP_PREFIX}*"):
        tail = p.name[len(STEP_PREFIX) :]
        if tail.isdigit() and (p / "unet" / "config.json").is_file():
            found[int(tail)] = p
    return dict(sorted(found.items()))


def write_checkpoint(out: Path, step: int, unet: Any, vae_dir: Path, scheduler: Any) -> Path:
    """Save ``unet`` with the shared VAE and scheduler as ``<out>/step-<step>/`` (atomically)."""
    final = step_folder(out, step)
    tmp = out / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        unet.save_pretrained(tmp / "unet")
        shutil.copytree(vae_dir, tmp / "vae")
        scheduler.save_pretrained(tmp / "scheduler")
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    except OSError as err:
        raise OutputError(f"cannot write checkpoint {final}: {err.strerror or err}") from err
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def write_losses(out: Path, losses: list[tuple[int, float]]) -> None:
    path = out / "losses.json"
    tmp = path.with_name(f"losses.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps({"step_loss": losses}))
    os.replace(tmp, path)


class CheckpointWriter(pl.Callback):
    """Writes a checkpoint after each optimiser step listed in ``steps`` (and the loss curve with it)."""

    def __init__(self, out: Path, steps: list[int], vae_dir: Path, scheduler: Any) -> None:
        self.out, self.steps, self.vae_dir, self.scheduler = out, set(steps), vae_dir, scheduler
        self.written: list[Path] = []

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args: Any) -> None:
        step = int(trainer.global_step)
        if step in self.steps:
            twin: Any = module
            self.written.append(write_checkpoint(self.out, step, twin.unet, self.vae_dir, self.scheduler))
            write_losses(self.out, twin.losses)
