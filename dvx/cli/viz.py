"""``dvx viz``: options generated from VizConfig; the viz runner does the work."""

from __future__ import annotations

from typing import Any

import click

from dvx.options import click_params, from_cli
from dvx.viz.runner import VizConfig


def run(**values: Any) -> None:
    """PCA and K-means pictures of cached features (PNG grid, mp4 beside the input), from the cache only."""
    from dvx.viz.runner import run_viz

    files = run_viz(VizConfig(**from_cli(VizConfig, values)))
    for path in [*files.grids, *files.videos]:
        click.echo(str(path))


viz = click.Command(
    "viz",
    callback=run,
    params=click_params(VizConfig),
    help=run.__doc__,
    context_settings={"show_default": True},
)
