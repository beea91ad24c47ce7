"""``dvx probe``: parse options into a ProbeConfig and hand it to the probe runner."""

from __future__ import annotations

import json

import click

from dvx.config import ProbeConfig, parse_names, parse_timesteps


def _ts(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    return () if text.strip().lower() == "all" else parse_timesteps(text)


def _blocks(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return () if text.strip().lower() == "all" else parse_names(text)


@click.command(context_settings={"show_default": True})
@click.option("--task", required=True, help="Probe task (see `dvx ls tasks`).")
@click.option(
    "--from-cache",
    is_flag=True,
    default=True,
    help="Read features from the store (always; the backbone is never loaded).",
)
@click.option("--store", required=True, help="Feature store path or URL (opened read-only).")
@click.option("--model", required=True, help="Model whose cached features to probe.")
@click.option("--data-root", required=True, help="Dataset folder with the labels.")
@click.option("--dataset", default=None, help="Dataset reader [default: the task's].")
@click.option("--recipe", default=None, help="Recipe fingerprint prefix when the model has several.")
@click.option(
    "--timesteps", default=None, help="Comma-separated T, or 'all' [default: every T in the store]."
)
@click.option(
    "--blocks", default=None, help="Comma-separated blocks, or 'all' [default: every block in the store]."
)
@click.option("--split", default=None, help="Dataset split.")
@click.option("--out", default=None, help="Folder for predictions, checkpoints and logs.")
@click.option(
    "--results",
    default=None,
    help="Results directory [default: $DVX_RESULTS_DIR or ~/.local/share/dvx/results].",
)
@click.option("--device", default="auto", help="cpu, cuda, ... [auto].")
@click.option("--seed", type=int, default=0, help="Seed of everything random in the probe.")
@click.option("--force", is_flag=True, help="Recompute and replace existing results records.")
@click.option("--json", "as_json", is_flag=True, help="Print the results record(s) as JSON.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
# label propagation knobs
@click.option(
    "--preset", type=click.Choice(["dift", "dino"]), default=None, help="Propagation preset [dift]."
)
@click.option("--topk", type=int, default=None, help="Propagation: neighbours kept.")
@click.option("--temperature", type=float, default=None, help="Propagation: softmax temperature.")
@click.option("--context", type=int, default=None, help="Propagation: recent frames in the queue.")
@click.option("--radius", type=float, default=None, help="Propagation: spatial neighbourhood radius (cells).")
# trained-head knobs
@click.option("--epochs", type=int, default=None, help="Head training epochs.")
@click.option("--lr", type=float, default=None, help="Head learning rate.")
@click.option("--batch-size", type=int, default=None, help="Head training batch size.")
@click.option("--devices", default=None, help="Lightning devices for head training (e.g. 1, 2, auto).")
@click.option("--strategy", default=None, help="Lightning strategy (e.g. ddp).")
@click.option("--num-workers", type=int, default=None, help="Data-loading workers.")
@click.option("--slots", type=int, default=None, help="Object discovery: number of slots.")
def probe(
    task: str,
    from_cache: bool,
    store: str,
    model: str,
    data_root: str,
    dataset: str | None,
    recipe: str | None,
    timesteps: str | None,
    blocks: str | None,
    split: str | None,
    out: str | None,
    results: str | None,
    device: str,
    seed: int,
    force: bool,
    as_json: bool,
    no_progress: bool,
    **options: object,
) -> None:
    """Run probe TASK on MODEL's cached features (training-free propagation or a trained light head)."""
    from dvx.probe import TASKS
    from dvx.probe.runner import run_probe, table

    cfg = ProbeConfig(
        task=task,
        store=store,
        model=model,
        data_root=data_root,
        dataset=dataset,
        recipe=recipe,
        timesteps=_ts(timesteps),
        blocks=_blocks(blocks),
        split=split,
        out=out,
        results=results,
        device=device,
        seed=seed,
        force=force,
        progress=not no_progress,
        options=tuple(sorted(options.items())),
    )
    records = run_probe(cfg)
    if as_json:
        flat = [r.flat() for r in records]
        click.echo(json.dumps(flat[0] if len(flat) == 1 else flat, indent=1))
    else:
        task_obj = TASKS.load(task)(task, cfg)
        click.echo(f"{task}: {model} ({records[0].recipe[:8]}) on {records[0].dataset}")
        click.echo(table(records, task_obj.main_metric))
        for line in task_obj.extra_lines(records):
            click.echo(line)
