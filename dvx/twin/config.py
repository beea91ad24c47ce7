"""The typed settings of ``dvx twin train``, resolved and saved beside the checkpoints.

Both objectives share every field but ``objective``; the frames per training sample follow from it
(:attr:`TrainConfig.clip_frames`: ``frames`` for the video twin, 1 for the image twin). A batch holds
``frames_per_batch`` frames for both twins (the video twin: ``frames_per_batch / frames`` clips; the image
twin: ``frames_per_batch`` single frames), so the two see the same number of frames, optimiser steps and
gradient updates: only how frames are grouped into samples differs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dvx.config import MAX_SIDE, check_device
from dvx.errors import ConfigError

OBJECTIVES = ("video", "image")
#: the most steps one run may ask for (a typo should fail, not run for a week)
MAX_STEPS = 10_000_000


def check_training_settings(cfg: Any, nonnegative: tuple[str, ...] = ()) -> None:
    """The checks every training config of dvx/twin shares (``resolution``, ``lr``, ``max_videos``,
    ``threads``, ``device``, ``out``; ``nonnegative``: more finite float fields that may be 0)."""
    h, w = cfg.resolution
    if h <= 0 or w <= 0 or h % 8 or w % 8 or max(h, w) > MAX_SIDE:
        raise ConfigError(f"--resolution {h}x{w}: height and width must be positive multiples of 8")
    for name in ("lr", *nonnegative):
        v = getattr(cfg, name)
        if not math.isfinite(v) or v < 0 or (name == "lr" and v == 0):
            raise ConfigError(f"--{name.replace('_', '-')} must be a finite positive number, got {v}")
    if cfg.max_videos is not None and cfg.max_videos < 1:
        raise ConfigError(f"--max-videos must be >= 1, got {cfg.max_videos}")
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {cfg.threads}")
    check_device(cfg.device)
    if Path(cfg.out).expanduser().is_file():
        raise ConfigError(f"--out {cfg.out!r} is a file; give a folder")


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``dvx twin train`` needs (see docs/twins.md for each setting's role)."""

    objective: str  # "video": clips of ``frames``; "image": single frames (F = 1)
    data_root: str  # a dvx dataset of frames (default: a synthetic world written by ``dvx synth``)
    out: str  # checkpoint folders <out>/step-<k>/ and dvx-config.json
    dataset: str = "synthetic"
    split: str | None = None  # None: every video of the dataset
    steps: int = 200
    save_every: int = 100
    seed: int = 0  # network init, batch order, noise
    frames: int = 8  # F: frames per clip of the video twin
    frames_per_batch: int = 16  # frames per optimiser step, for both twins
    resolution: tuple[int, int] = (64, 96)
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 20
    max_videos: int | None = None  # cap on training videos (None: all)
    vae: str | None = None  # a trained VAE folder (`dvx twin vae`); None: tiny-svd's random-init VAE
    device: str = "cpu"
    threads: int | None = None  # torch CPU threads (None: torch's default)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"--objective must be video or image, got {self.objective!r}")
        if not 1 <= self.steps <= MAX_STEPS:
            raise ConfigError(f"--steps must lie in 1..{MAX_STEPS}, got {self.steps}")
        if self.save_every < 1:
            raise ConfigError(f"--save-every must be >= 1, got {self.save_every}")
        if self.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {self.seed}")
        if self.frames < 2:
            raise ConfigError(f"--frames (the video twin's clip length) must be >= 2, got {self.frames}")
        if self.frames_per_batch < 1 or self.frames_per_batch % self.frames:
            raise ConfigError(
                f"--frames-per-batch must be a positive multiple of --frames ({self.frames}), got "
                f"{self.frames_per_batch}: both twins see the same frames per step"
            )
        check_training_settings(self, nonnegative=("weight_decay",))
        if self.warmup_steps < 0:
            raise ConfigError(f"--warmup-steps must be >= 0, got {self.warmup_steps}")
        if self.vae is not None and not (Path(self.vae).expanduser() / "config.json").is_file():
            raise ConfigError(
                f"--vae {self.vae!r} is not a diffusers VAE folder (no config.json); see `dvx twin vae`"
            )

    @property
    def clip_frames(self) -> int:
        """Frames per training sample: F for the video twin, 1 for the image twin."""
        return self.frames if self.objective == "video" else 1

    @property
    def samples_per_batch(self) -> int:
        return self.frames_per_batch // self.clip_frames

    def save_steps(self) -> list[int]:
        """The steps whose checkpoints are written: 0 (the untrained network), every ``save_every``, last."""
        return sorted({0, *range(self.save_every, self.steps + 1, self.save_every), self.steps})

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["clip_frames"] = self.clip_frames
        out["samples_per_batch"] = self.samples_per_batch
        return out
