"""``dvx report``: options generated from ReportConfig; the report runner does the work."""

from __future__ import annotations

from typing import Any

import click

from dvx.options import click_params, from_cli
from dvx.report.runner import ReportConfig


def run(**values: Any) -> None:
    """Tables (models x task metrics, Table 5 cost) and T x block heatmaps from the probe results of STORE."""
    from dvx.report.runner import run_report

    files = run_report(ReportConfig(**from_cli(ReportConfig, values)))
    click.echo(files.table2)
    if files.table5:
        click.echo("\nCost of extraction (Table 5):\n" + files.table5)
    if files.html is not None:
        click.echo(f"\n{files.html}")


report = click.Command(
    "report",
    callback=run,
    params=click_params(ReportConfig),
    help=run.__doc__,
    context_settings={"show_default": True},
)
