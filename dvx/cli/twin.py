"""``dvx twin train`` and ``dvx twin study``: parse, build the typed config, call the runner (dvx/twin/)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from types import SimpleNamespace

import click

from dvx.config import parse_names, parse_resolution, parse_timesteps
from dvx.twin.study import StudyConfig

#: the study's defaults, declared once (dvx/twin/study.py); read off the fields, not by building a config,
#: whose checks import torch (a `--help` should not)
_STUDY = SimpleNamespace(**{f.name: f.default for f in fields(StudyConfig)})


@click.group("twin")
def twin() -> None:
    """Twins dvx trains itself: one video architecture trained on clips (video) or single frames (image)."""


def _data_options(f: Callable[..., None]) -> Callable[..., None]:
    """--dataset and --split: what both trainers read (declared once)."""
    f = click.option("--split", default=None, help="Dataset split [default: every video].")(f)
    return click.option(
        "--dataset", default="synthetic", show_default=True, help="Dataset reader of --data-root."
    )(f)


def _step_options(f: Callable[..., None]) -> Callable[..., None]:
    """--resolution and --lr: what both trainers' steps share (declared once)."""
    f = click.option("--lr", default=1e-3, show_default=True, type=float, help="AdamW learning rate.")(f)
    return click.option(
        "--resolution", default="64x96", show_default=True, help="Training frame size HxW (multiples of 8)."
    )(f)


@twin.command("train")
@click.option(
    "--objective",
    required=True,
    type=click.Choice(["video", "image"]),
    help="Clips of F frames, or single frames (F = 1).",
)
@click.option(
    "--data-root", required=True, help="A dvx dataset of frames (default reader: a `dvx synth` world)."
)
@click.option("--out", required=True, help="Folder for step-<k>/ checkpoints and dvx-config.json.")
@_data_options
@click.option("--steps", default=200, show_default=True, type=int, help="Optimiser steps.")
@click.option(
    "--save-every",
    default=100,
    show_default=True,
    type=int,
    help="Write a checkpoint every K steps (and at 0 and the end).",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Network init, batch order and noise.")
@click.option(
    "--frames", default=8, show_default=True, type=int, help="F: frames per clip of the video twin."
)
@click.option(
    "--frames-per-batch",
    default=16,
    show_default=True,
    type=int,
    help="Frames per step, for both objectives.",
)
@_step_options
@click.option("--max-videos", default=None, type=int, help="Use at most this many videos.")
@click.option(
    "--vae", default=None, help="A trained VAE folder (`dvx twin vae`) [default: tiny-svd's random init]."
)
@click.option("--threads", default=None, type=int, help="torch CPU threads [default: torch's].")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def train(
    objective: str, data_root: str, out: str, dataset: str, split: str | None, steps: int, save_every: int,
    seed: int, frames: int, frames_per_batch: int, resolution: str, lr: float, max_videos: int | None,
    vae: str | None, threads: int | None, no_progress: bool,
) -> None:  # fmt: skip
    """Train one twin; every checkpoint is a diffusers folder for `dvx extract --model twin-svd --weights`."""
    from dvx.twin.config import TrainConfig
    from dvx.twin.train import run_train

    cfg = TrainConfig(
        objective=objective, data_root=data_root, out=out, dataset=dataset, split=split, steps=steps,
        save_every=save_every, seed=seed, frames=frames, frames_per_batch=frames_per_batch,
        resolution=parse_resolution(resolution), lr=lr, max_videos=max_videos, vae=vae, threads=threads,
        progress=not no_progress,
    )  # fmt: skip
    click.echo(run_train(cfg, log=click.echo).summary())


@twin.command("vae")
@click.option(
    "--data-root", required=True, help="A dvx dataset of frames (default reader: a `dvx synth` world)."
)
@click.option("--out", required=True, help="The VAE folder to write (diffusers layout).")
@_data_options
@click.option("--steps", default=300, show_default=True, type=int, help="Optimiser steps.")
@click.option("--batch", default=16, show_default=True, type=int, help="Frames per step.")
@_step_options
@click.option("--seed", default=1, show_default=True, type=int, help="Init and batch order.")
@click.option("--max-videos", default=None, type=int, help="Use at most this many videos.")
@click.option("--threads", default=None, type=int, help="torch CPU threads [default: torch's].")
@click.option("--no-progress", is_flag=True, help="No progress lines.")
def vae(
    data_root: str, out: str, dataset: str, split: str | None, steps: int, batch: int, resolution: str,
    lr: float, seed: int, max_videos: int | None, threads: int | None, no_progress: bool,
) -> None:  # fmt: skip
    """Train the autoencoder both twins share (then `dvx twin train --vae OUT`)."""
    from dvx.twin.vae import VaeConfig, train_vae

    cfg = VaeConfig(
        data_root=data_root, out=out, dataset=dataset, split=split, steps=steps, batch=batch,
        resolution=parse_resolution(resolution), lr=lr, seed=seed, max_videos=max_videos, threads=threads,
        progress=not no_progress,
    )  # fmt: skip
    click.echo(train_vae(cfg, log=click.echo).summary())


@twin.command("study")
@click.option("--out", required=True, help="Study folder: worlds, twins, store, results, study.md/json.")
@click.option("--seeds", default=3, show_default=True, type=int, help="Seeds (each trains both twins).")
@click.option("--first-seed", default=0, show_default=True, type=int, help="The first seed.")
@click.option("--steps", default=_STUDY.steps, show_default=True, type=int, help="Optimiser steps per twin.")
@click.option(
    "--save-every",
    default=_STUDY.save_every,
    show_default=True,
    type=int,
    help="Checkpoint (learning-curve) interval.",
)
@click.option(
    "--eval-resolution",
    default="x".join(map(str, _STUDY.eval_resolution)),
    show_default=True,
    help="Size of the evaluation world (the training size, 64x96, times a factor).",
)
@click.option(
    "--frames-per-batch", default=16, show_default=True, type=int, help="Frames per step, both twins."
)
@click.option("--timesteps", default="50,200", show_default=True, help="T grid of the extraction.")
@click.option("--blocks", default="mid,up.1,up.2,up.3", show_default=True, help="Blocks of the extraction.")
@click.option(
    "--heads",
    default="synthetic-action,synthetic-seg,synthetic-depth",
    show_default=True,
    help="Trained-head tasks ('none' for none).",
)
@click.option(
    "--tracking/--no-tracking",
    default=True,
    show_default=True,
    help="Point tracking (synthetic-tracking) at the main T on the dense block.",
)
@click.option("--head-epochs", default=10, show_default=True, type=int, help="Epochs of each trained head.")
@click.option(
    "--eval-videos", default=28, show_default=True, type=int, help="Videos of the evaluation world."
)
@click.option("--train-videos", default=48, show_default=True, type=int, help="Videos of the training world.")
@click.option(
    "--vae-steps",
    default=_STUDY.vae_steps,
    show_default=True,
    type=int,
    help="Steps of the VAE both twins share (0: tiny-svd's random-init VAE).",
)
@click.option("--speed", default=6, show_default=True, type=int, help="Both worlds: most px per frame.")
@click.option(
    "--sprite-scale", default=2.0, show_default=True, type=float, help="Both worlds: sprite sizes x."
)
@click.option(
    "--all-sprites-move/--actor-moves-alone",
    default=True,
    show_default=True,
    help="Both worlds: every sprite of the object_* classes moves, or only the actor.",
)
@click.option("--threads", default=None, type=int, help="torch CPU threads [default: torch's].")
def study(
    out: str, seeds: int, first_seed: int, steps: int, save_every: int, eval_resolution: str,
    frames_per_batch: int, timesteps: str,
    blocks: str, heads: str, tracking: bool, head_epochs: int, eval_videos: int, train_videos: int,
    vae_steps: int, speed: int, sprite_scale: float, all_sprites_move: bool, threads: int | None,
) -> None:  # fmt: skip
    """Train both twins per seed, extract them and the untrained network, probe, report with intervals."""
    from dvx.twin.study import run_study

    heads_t = () if heads.strip().lower() == "none" else (parse_names(heads) or ())
    ts = parse_timesteps(timesteps)
    cfg = StudyConfig(
        out=out, seeds=seeds, first_seed=first_seed, steps=steps, save_every=save_every,
        eval_resolution=parse_resolution(eval_resolution, "--eval-resolution"),
        frames_per_batch=frames_per_batch, timesteps=ts, blocks=parse_names(blocks) or (),
        main_t=50 if 50 in ts else ts[0], heads=heads_t, tracking=tracking, head_epochs=head_epochs,
        eval_videos=eval_videos, train_videos=train_videos, vae_steps=vae_steps, speed=speed,
        sprite_scale=sprite_scale, all_sprites_move=all_sprites_move, threads=threads,
    )  # fmt: skip
    run_study(cfg, log=click.echo)
