"""``dvx demo``: the end-to-end demo (see dvx/demo.py)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--workdir", default=".demo", show_default=True, help="Where the world, store and results go.")
@click.option("--fresh", is_flag=True, help="Start from scratch (delete the workdir first).")
def demo(workdir: str, fresh: bool) -> None:
    """Synthetic world -> tiny models -> feature store -> probes -> tables, on a CPU in a few minutes."""
    from dvx.demo import DemoConfig, run_demo

    run_demo(DemoConfig(workdir=Path(workdir), fresh=fresh))
