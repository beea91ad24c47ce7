"""``dvx ls``: what dvx knows (models with their block names, datasets, tasks with their options).

``dvx ls models`` reads the shipped block-name table (dvx/extract/block_table.py): it builds, downloads and
loads nothing and imports no torch. ``dvx ls models NAME --weights DIR`` reads the block names from the
config files of a model folder of your own instead.
"""

from __future__ import annotations

import json

import click


@click.group()
def ls() -> None:
    """List models, datasets and tasks."""


@ls.command("models")
@click.argument("names", nargs=-1)
@click.option(
    "--weights",
    default=None,
    help="A local model folder (as `dvx extract --weights`): its config files give the block names.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one model per line.")
def models(names: tuple[str, ...], weights: str | None, as_json: bool) -> None:
    """Every model (or NAMES) with its source and block names."""
    from dvx.errors import ConfigError
    from dvx.extract import MODELS
    from dvx.extract.block_table import shipped_block_names

    entries = [MODELS.entry(n) for n in names] if names else list(MODELS)
    if weights is not None and len(entries) != 1:
        raise ConfigError(
            "--weights reads one model folder: name its model (`dvx ls models svd --weights DIR`)"
        )
    rows = []
    for entry in entries:
        o = entry.options
        blocks: list[str] | None
        if weights is not None:
            from dvx.extract.models import attention_layers_in, block_names_in

            blocks, where = block_names_in(entry.name, weights), f"config files in {weights}"
            try:  # the attention layers need the denoiser's whole config; the block names only a count
                layers = attention_layers_in(entry.name, weights)
            except ConfigError:
                layers = None
        else:
            blocks, where = shipped_block_names(entry.name), "shipped table"
            layers = None
        rows.append(
            {
                "name": entry.name,
                "family": o["family"],
                "source": weights or o["source"],
                "clip_len": o["clip_len"],
                "resolution": list(o["resolution"]),
                "help": entry.help,
                "blocks": blocks,
                "blocks_from": where if blocks is not None else None,
                "attention": None
                if layers is None
                else [{"layer": a.name, "blocks": a.blocks, "heads": a.heads} for a in layers],
            }
        )
    if as_json:
        click.echo("\n".join(json.dumps(r) for r in rows))
        return
    for r in rows:
        kind = f"video, {r['clip_len']} frames" if r["clip_len"] else "image"
        click.echo(f"{r['name']:<14} {r['family']:<10} {kind:<17} {r['source']}")
        blocks = r["blocks"]
        shown = (
            compact(blocks)
            if blocks
            else f"(not in the shipped table: `dvx ls models {r['name']} --weights DIR`)"
        )
        click.echo(f"    blocks: {shown}")
        if r["attention"]:
            layers_shown = ", ".join(f"{a['layer']} ({a['heads']} heads)" for a in r["attention"])
            click.echo(f"    attention q/k (<layer>.q, <layer>.k, per head .h<i>): {layers_shown}")


def compact(names: list[str]) -> str:
    """``down.0, down.1, down.2, mid`` -> ``down.0-2, mid`` (runs of consecutive indices)."""
    parts: list[str] = []
    run: list[tuple[str, int]] = []
    for name in [*names, ""]:  # "" ends the last run
        head, _, idx = name.partition(".")
        if idx.isdigit() and run and run[-1] == (head, int(idx) - 1):
            run.append((head, int(idx)))
            continue
        if run:
            first, last = run[0][1], run[-1][1]
            parts.append(f"{run[0][0]}.{first}" + (f"-{last}" if last != first else ""))
            run = []
        if idx.isdigit():
            run.append((head, int(idx)))
        elif name:
            parts.append(name)
    return ", ".join(parts)


@ls.command("datasets")
def datasets() -> None:
    """Every dataset reader."""
    from dvx.data import DATASETS

    for entry in DATASETS:
        click.echo(f"{entry.name:<12} {entry.help}")


@ls.command("tasks")
def tasks() -> None:
    """Every probe task (`dvx probe --task TASK --help` lists a task's options)."""
    from dvx.probe import TASKS

    for entry in TASKS:
        click.echo(f"{entry.name:<22} {entry.help}")
