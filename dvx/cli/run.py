"""``dvx run``: parse options into a RunConfig and hand it to the plan runner."""

from __future__ import annotations

import json

import click

from dvx.config import parse_names
from dvx.errors import ConfigError


def parse_roots(values: tuple[str, ...]) -> dict[str, str]:
    """``("davis=/data/DAVIS", ...)`` -> {"davis": "/data/DAVIS"}."""
    roots: dict[str, str] = {}
    for text in values:
        key, sep, path = text.partition("=")
        if not sep or not key.strip() or not path.strip():
            raise ConfigError(f"--data-root {text!r} must look like NAME=PATH (e.g. davis=/data/DAVIS)")
        if key.strip() in roots:
            raise ConfigError(f"--data-root {key.strip()} is given twice")
        roots[key.strip()] = path.strip()
    return roots


@click.command(context_settings={"show_default": True})
@click.argument("plan")
@click.option(
    "--store", required=True, help="Feature store: a local path or an fsspec URL (s3://bucket/prefix)."
)
@click.option(
    "--data-root",
    "data_roots",
    multiple=True,
    help="NAME=PATH for each dataset the plan reads (seed002: davis, jhmdb, ucf101, hmdb51, cityscapes, "
    "movi-c, movi-e); with --tiny, synthetic=WORLD serves every name.",
)
@click.option("--results", default=None, help="Probe results directory [default: $DVX_RESULTS_DIR or dvx's].")
@click.option("--out", default=None, help="Folder for probe predictions, checkpoints and logs.")
@click.option(
    "--report", "report_dir", default="dvx-report", help="Folder `dvx report` writes the tables to."
)
@click.option(
    "--only", default=None, help="Only these comma-separated tasks (and the extractions they read)."
)
@click.option("--tiny", is_flag=True, help="Tiny twins on the synthetic world (`dvx synth`): plumbing only.")
@click.option(
    "--dry-run", is_flag=True, help="Print each stage's command, the bytes and forward passes; write nothing."
)
@click.option("--device", default="auto", help="cpu, cuda, cuda:1, ... [auto: cuda if available].")
@click.option("--threads", type=int, default=None, help="CPU threads [default: torch's; 1 with --tiny].")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON on stdout.")
def run(
    plan: str,
    store: str,
    data_roots: tuple[str, ...],
    results: str | None,
    out: str | None,
    report_dir: str,
    only: str | None,
    tiny: bool,
    dry_run: bool,
    device: str,
    threads: int | None,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Run reproduction PLAN (a shipped name such as seed002, or a TOML file): every extraction, probe and
    the report, skipping what the store and the results directory already hold."""
    from dataclasses import asdict

    from dvx.plan.runner import RunConfig, run_plan

    cfg = RunConfig(
        plan=plan,
        store=store,
        data_roots=parse_roots(data_roots),
        results=results,
        out=out,
        report=report_dir,
        tiny=tiny,
        dry_run=dry_run,
        only=parse_names(only),
        device=device,
        threads=threads,
        progress=not no_progress,
    )
    summary = run_plan(cfg)
    if as_json:
        click.echo(json.dumps(asdict(summary), indent=1))
    elif dry_run:
        click.echo("\n".join(summary.commands))
    elif summary.report:
        click.echo(f"report: {summary.report}")
