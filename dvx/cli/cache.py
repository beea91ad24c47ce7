"""``dvx cache``: inspect and maintain a feature store."""

from __future__ import annotations

import json

import click


@click.group()
def cache() -> None:
    """Inspect and maintain a feature store."""


@cache.command("ls")
@click.option("--store", required=True, help="Feature store path or URL.")
@click.option("--dataset", default=None, help="Only this dataset.")
@click.option("--model", default=None, help="Only this model.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("-v", "--verbose", is_flag=True, help="Also list video ids and the full recipe.")
def ls(store: str, dataset: str | None, model: str | None, as_json: bool, verbose: bool) -> None:
    """List recipes, timesteps, blocks, videos and bytes (read-only: never writes to the store)."""
    from dvx.extract.runner import human_bytes
    from dvx.store.inventory import summarize
    from dvx.store.root import FeatureStore

    groups = summarize(FeatureStore.open(store, mode="r"), dataset, model)
    if as_json:
        click.echo(json.dumps({"store": store, "groups": [g.to_json() for g in groups]}, indent=1))
        return
    if not groups:
        click.echo(f"{store}: empty")
        return
    for g in groups:
        click.echo(
            f"{g.dataset}/{g.recipe}  ({g.model}, {g.resolution[0]}x{g.resolution[1]}, "
            f"{human_bytes(g.nbytes)}, last written {g.last_written or '-'} by {', '.join(g.writers) or '-'})"
        )
        click.echo(f"  videos: {len(g.videos)}" + (f"  unreadable: {len(g.failed)}" if g.failed else ""))
        click.echo("  T:      " + ", ".join(f"{t} ({human_bytes(g.nbytes_by_t[t])})" for t in g.timesteps))
        click.echo("  blocks: " + ", ".join(f"{b} ({human_bytes(g.nbytes_by_block[b])})" for b in g.blocks))
        if verbose:
            click.echo("  video ids: " + ", ".join(g.videos))
            for vid, why in sorted(g.failed.items()):
                click.echo(f"  unreadable {vid}: {why}")
            click.echo("  recipe: " + json.dumps(g.recipe_fields, sort_keys=True))
