"""``dvx extract``: parse options into an ExtractConfig and hand it to the runner."""

from __future__ import annotations

import json

import click

from dvx.config import parse_int_list, parse_names, parse_size_choice, parse_timesteps
from dvx.extract.presets import PRESETS


@click.command(context_settings={"show_default": True})
@click.option("--model", required=True, help="Registered model name (see `dvx ls models`).")
@click.option(
    "--dataset",
    required=True,
    help="Dataset reader: synthetic, davis, jhmdb, ucf101, hmdb51, cityscapes, movi.",
)
@click.option("--data-root", required=True, help="The dataset's folder (or its parent).")
@click.option(
    "--preset",
    type=click.Choice(list(PRESETS)),
    default=None,
    help="A published recipe: "
    + "; ".join(f"{k}: {v}" for k, v in PRESETS.items())
    + ". Options given beside it override it.",
)
@click.option(
    "--store", required=True, help="Feature store: a local path or an fsspec URL (s3://bucket/prefix)."
)
@click.option(
    "--timesteps",
    default=None,
    help="Comma-separated T on the DDPM scale 0..999 [default: seed 002's: 50 for UNets, 16 for the flow "
    "DiTs SD3/Wan, 0 for baselines].",
)
@click.option(
    "--blocks",
    default=None,
    help="Comma-separated block names or globs (up.1,up.*) [default: every hidden-state block]. Attention "
    "q/k blocks only when named, component-wise globs allowed: layer.*.attn1.q,up.1.s0.0.attn1.k.",
)
@click.option(
    "--heads",
    default=None,
    help="Attention q/k blocks asked for in --blocks are stored per head, these heads only (0,3 stores "
    "<name>.h0 and <name>.h3).",
)
@click.option(
    "--resolution",
    default=None,
    help="HxW the frames are resized to, or a preset: dift (DAVIS as DIFT: shorter side 480, longer side "
    "floored to a multiple of 32, aspect kept; per video), dino (the same with 64), videowalk (320x320, "
    "JHMDB as videowalk), model [default: the model's].",
)
@click.option(
    "--clip-len", type=int, default=None, help="Frames per clip for video models [default: native]."
)
@click.option("--frame-stride", type=int, default=1, help="Use every N-th frame.")
@click.option(
    "--max-frames", type=int, default=None, help="At most this many frames per video (after stride)."
)
@click.option("--ensemble", type=int, default=1, help="Noise draws averaged per (clip, T) (DIFT uses 8).")
@click.option("--seed", type=int, default=0, help="Seed of the per-(video, clip, T, member) noise.")
@click.option(
    "--latent",
    type=click.Choice(["mean", "sample"]),
    default="mean",
    help="VAE posterior mean or a seeded sample.",
)
@click.option("--batch-size", type=int, default=8, help="Images or clips per denoiser forward.")
@click.option("--device", default="auto", help="cpu, cuda, cuda:1, ... [auto: cuda if available].")
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16", "bfloat16"]),
    default=None,
    help="Compute dtype [default: float32 on CPU; on CUDA bfloat16 for SD3/Wan, float16 otherwise].",
)
@click.option(
    "--split",
    default=None,
    help="Official split file to follow [default: the dataset's: DAVIS ImageSets/2017/val.txt when present; "
    "else every video present]; 'all' (DAVIS) = every video present.",
)
@click.option("--videos", default=None, help="Only these comma-separated video ids.")
@click.option("--weights", default=None, help="Hub id or local folder replacing the model's default weights.")
@click.option("--revision", default=None, help="Hub revision of --weights / the default weights.")
@click.option("--codec", default="raw", help="Store codec: raw, lz4, zstd, blosc-zstd-bitshuffle.")
@click.option(
    "--skip-bad",
    is_flag=True,
    help="Record unreadable videos and videos with non-finite features in the store index and go on.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print what is cached, each block's map size, the storage and forward passes the run needs; "
    "write nothing.",
)
@click.option(
    "--devices",
    type=int,
    default=1,
    help="Worker processes on this node, one per GPU (or CPU processes). Under torchrun/srun leave it at 1: "
    "each launched process is one worker.",
)
@click.option(
    "--threads",
    type=int,
    default=None,
    help="CPU threads per worker process [default: torch's default / --devices]. CPU features are "
    "bit-identical across launches only with the same value.",
)
@click.option(
    "--claim-ttl",
    type=float,
    default=300.0,
    help="Seconds a video claim stays valid without a heartbeat: how long a crashed job on another node "
    "keeps its videos from others (a dead process on this node is noticed at once).",
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON on stdout.")
def extract(
    model: str,
    dataset: str,
    data_root: str,
    preset: str | None,
    store: str,
    timesteps: str | None,
    blocks: str | None,
    heads: str | None,
    resolution: str | None,
    clip_len: int | None,
    frame_stride: int,
    max_frames: int | None,
    ensemble: int,
    seed: int,
    latent: str,
    batch_size: int,
    device: str,
    dtype: str | None,
    split: str | None,
    videos: str | None,
    weights: str | None,
    revision: str | None,
    codec: str,
    skip_bad: bool,
    dry_run: bool,
    devices: int,
    threads: int | None,
    claim_ttl: float,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Extract every block's activations of MODEL on DATASET at each T into the feature store.

    One forward per (clip, T) captures all requested blocks; videos already committed for every
    requested (T, block) are skipped ("N cached, M to compute").
    """
    from dvx.extract.presets import extract_config
    from dvx.extract.runner import run_extract

    size, resize = parse_size_choice(resolution) if resolution else (None, None)
    chosen = {
        "timesteps": parse_timesteps(timesteps) if timesteps else None,
        "blocks": parse_names(blocks),
        "resolution": size,
        "resize": resize,
        "ensemble": ensemble,
        "latent": latent,
        "dtype": dtype,
    }
    ctx = click.get_current_context()
    source = {"resize": "resolution"}  # the option each field comes from
    given = {
        k: v
        for k, v in chosen.items()
        if ctx.get_parameter_source(source.get(k, k)) != click.core.ParameterSource.DEFAULT
    }
    cfg = extract_config(
        preset,
        model,
        dataset,
        data_root,
        store,
        **given,
        heads=parse_int_list(heads, "--heads") if heads else None,
        clip_len=clip_len,
        frame_stride=frame_stride,
        max_frames=max_frames,
        seed=seed,
        batch_size=batch_size,
        device=device,
        split=split,
        videos=parse_names(videos),
        weights=weights,
        revision=revision,
        codec=codec,
        skip_bad=skip_bad,
        dry_run=dry_run,
        progress=not no_progress,
        devices=devices,
        threads=threads,
        claim_ttl=claim_ttl,
    )
    report = run_extract(cfg)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "group": report.group,
                    "store": report.store,
                    "recipe": report.recipe.to_json(),
                    "fingerprint": report.recipe.fingerprint,
                    "timesteps": list(report.timesteps),
                    "blocks": list(report.blocks),
                    "total": report.total,
                    "cached": report.cached,
                    "computed": report.computed,
                    "others": report.others,
                    "lost": report.lost,
                    "ranks": report.ranks,
                    "failed": report.failed,
                    "bytes_written": report.bytes_written,
                    "planned_bytes": report.planned_bytes,
                    "planned_forwards": report.planned_forwards,
                    "geometry": {b: list(v) for b, v in report.geometry.items()},
                    "preset": cfg.preset,
                    "seconds": round(report.seconds, 3),
                },
                indent=1,
            )
        )
    else:
        click.echo(report.summary())
