"""``dvx report``: parse options into a ReportConfig and hand it to the report runner."""

from __future__ import annotations

import click


@click.command(context_settings={"show_default": True})
@click.option("--store", required=True, help="Feature store path or URL whose probe results to report.")
@click.option("--out", default="dvx-report", help="Folder for report.md, the CSV tables and the heatmaps.")
@click.option(
    "--results",
    default=None,
    help="Results directory [default: $DVX_RESULTS_DIR or ~/.local/share/dvx/results].",
)
def report(store: str, out: str, results: str | None) -> None:
    """Tables (models x task metrics) and T x block heatmaps from the probe results of STORE."""
    from dvx.report.runner import ReportConfig, run_report

    files = run_report(ReportConfig(store=store, out=out, results=results))
    click.echo(files.table2)
