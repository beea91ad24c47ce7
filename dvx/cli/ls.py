"""``dvx ls``: what dvx knows (models with their block names, datasets)."""

from __future__ import annotations

import json

import click


@click.group()
def ls() -> None:
    """List models, datasets and tasks."""


@ls.command("models")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models(as_json: bool) -> None:
    """Every model with its source and block names (from its config; real models only when cached)."""
    from dvx.extract import MODELS
    from dvx.extract.models import attention_layers, block_names

    rows = []
    for entry in MODELS:
        o = entry.options
        layers = attention_layers(entry.name)
        rows.append(
            {
                "name": entry.name,
                "family": o["family"],
                "source": o["source"],
                "clip_len": o["clip_len"],
                "resolution": list(o["resolution"]),
                "help": entry.help,
                "blocks": block_names(entry.name),
                "attention": None
                if layers is None
                else [{"layer": a.name, "blocks": a.blocks, "heads": a.heads} for a in layers],
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    for r in rows:
        kind = f"video, {r['clip_len']} frames" if r["clip_len"] else "image"
        click.echo(f"{r['name']:<14} {r['family']:<10} {kind:<17} {r['source']}")
        blocks = r["blocks"]
        click.echo("    blocks: " + (", ".join(blocks) if blocks else "(config not in the local cache)"))
        if r["attention"]:
            names = ", ".join(f"{a['layer']} ({a['heads']} heads)" for a in r["attention"])
            click.echo(f"    attention q/k (<layer>.q, <layer>.k, per head .h<i>): {names}")


@ls.command("datasets")
def datasets() -> None:
    """Every dataset reader."""
    from dvx.data import DATASETS

    for entry in DATASETS:
        click.echo(f"{entry.name:<12} {entry.help}")


@ls.command("tasks")
def tasks() -> None:
    """Every probe task."""
    from dvx.probe import TASKS

    for entry in TASKS:
        click.echo(f"{entry.name:<22} {entry.help}")
