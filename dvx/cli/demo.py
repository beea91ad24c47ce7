"""``dvx demo``: the end-to-end demo (see dvx/demo.py)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--workdir", default=".demo", show_default=True, help="Where the world, store and results go.")
@click.option("--fresh", is_flag=True, help="Start from scratch (delete the workdir first).")
@click.option(
    "--tiny-models",
    is_flag=True,
    help="Instead of the twin study, run random-init tiny models of every family through the pipeline.",
)
@click.option("--twin-steps", default=100, show_default=True, type=int, help="Training steps per twin.")
def demo(workdir: str, fresh: bool, tiny_models: bool, twin_steps: int) -> None:
    """The image-vs-video twin study in miniature (1 seed): train, extract, probe, report, on a CPU."""
    from dvx.demo import DemoConfig, run_demo

    run_demo(DemoConfig(workdir=Path(workdir), fresh=fresh, tiny_models=tiny_models, twin_steps=twin_steps))
