"""``dvx synth``: write the synthetic dynamic world in the real datasets' layouts."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("synth")
@click.option(
    "--out", "out", required=True, type=click.Path(path_type=Path), help="Output folder (new or empty)."
)
@click.option(
    "--videos",
    default=14,
    show_default=True,
    type=int,
    help="Number of videos; video i has motion class i % 7.",
)
@click.option("--frames", default=16, show_default=True, type=int, help="Frames per video.")
@click.option("--size", default="128x128", show_default=True, help="Frame size HxW in pixels.")
@click.option(
    "--seed", default=0, show_default=True, type=int, help="World seed: video i is a function of (seed, i)."
)
@click.option("--colour-coded", is_flag=True, help="Tint each motion class's background its own colour.")
@click.option(
    "--brick-wall-every",
    default=2,
    show_default=True,
    type=int,
    help="Every k-th video of each pan class is a brick wall (0: none).",
)
@click.option(
    "--speed",
    default=0,
    show_default=True,
    type=int,
    help="Most px per frame of a moving actor or pan (0: the shorter side / 32).",
)
@click.option(
    "--sprite-scale", default=1.0, show_default=True, type=float, help="Sprite sizes x this (in (0, 4])."
)
@click.option(
    "--all-sprites-move",
    is_flag=True,
    help="In the object_* classes every sprite moves (the actor in the class's direction, the others each "
    "in its own): most annotated objects move, as in DAVIS.",
)
@click.option(
    "--test-fraction", default=0.3, show_default=True, type=float, help="Test share per motion class."
)
@click.option("--fps", default=8.0, show_default=True, type=float, help="Frame rate written into the videos.")
@click.option("--overwrite", is_flag=True, help="Replace a synthetic world already in --out.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the summary line.")
def synth(
    out: Path,
    videos: int,
    frames: int,
    size: str,
    seed: int,
    colour_coded: bool,
    brick_wall_every: int,
    speed: int,
    sprite_scale: float,
    all_sprites_move: bool,
    test_fraction: float,
    fps: float,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Generate the seeded synthetic dynamic world and write it as DAVIS, UCF101, Cityscapes, MOVi and
    JHMDB layouts plus world.json (see docs/synthetic.md)."""
    from dvx.config import parse_resolution
    from dvx.data.synthetic import SynthConfig, write_world

    height, width = parse_resolution(size, "--size")
    cfg = SynthConfig(
        out=out,
        videos=videos,
        frames=frames,
        height=height,
        width=width,
        seed=seed,
        colour_coded=colour_coded,
        brick_wall_every=brick_wall_every,
        speed=speed,
        sprite_scale=sprite_scale,
        all_sprites_move=all_sprites_move,
        test_fraction=test_fraction,
        fps=fps,
        overwrite=overwrite,
    )
    summary = write_world(cfg, progress=None if quiet else click.echo)
    click.echo(
        f"wrote {summary.videos} videos ({frames} frames, {height}x{width}; {summary.train} train, "
        f"{summary.test} test) to {summary.root}: {', '.join(summary.layouts)} + world.json"
    )
