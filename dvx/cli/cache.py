"""``dvx cache``: inspect and maintain a feature store."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from dvx.store.inventory import GroupSummary


def _where(fn: F) -> F:
    """The options every cache command takes: the store, and optionally one dataset and one model."""
    fn = click.option("--model", default=None, help="Only this model.")(fn)
    fn = click.option("--dataset", default=None, help="Only this dataset.")(fn)
    return click.option("--store", required=True, help="Feature store path or URL.")(fn)


@click.group()
def cache() -> None:
    """Inspect and maintain a feature store."""


@cache.command("ls")
@_where
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("-v", "--verbose", is_flag=True, help="Also list video ids and the full recipe.")
def ls(store: str, dataset: str | None, model: str | None, as_json: bool, verbose: bool) -> None:
    """List recipes, timesteps, blocks, videos and bytes (read-only: never writes to the store)."""
    from dvx.config import human_bytes
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
        click.echo(
            f"  stored: {human_bytes(g.stored_bytes)}"
            + (
                f" ({human_bytes(g.reclaimable)} reclaimable by `dvx cache gc --store {shlex.quote(store)}`)"
                if g.reclaimable
                else ""
            )
        )
        click.echo(f"  videos: {len(g.videos)}" + (f"  unreadable: {len(g.failed)}" if g.failed else ""))
        click.echo(
            "  T:      "
            + ", ".join(f"{t} ({_sizes(g.nbytes_by_t[t], g.stored_by_t.get(t))})" for t in g.timesteps)
        )
        click.echo(
            "  blocks: "
            + ", ".join(f"{b} ({_sizes(g.nbytes_by_block[b], g.stored_by_block.get(b))})" for b in g.blocks)
        )
        for w in g.writer_stats:
            click.echo(f"  written by {w['writer']}: {w['commits']} commit(s), {w['first']} .. {w['last']}")
        for c in g.in_progress:
            click.echo(f"  in progress: {c['video']} by {c['holder']} since {c['since']}")
        for c in g.stale_claims:
            click.echo(f"  stale claim: {c['video']} by {c['holder']} since {c['since']} ({c['why']})")
        if g.stale_claims:
            click.echo(f"  (free for the next extract; `{_unclaim(store, g)}` clears them)")
        for vid, why in sorted(g.damaged.items()):
            click.echo(f"  damaged: {vid}: {why}")
        if len(g.environments) > 1 or verbose:
            for e in g.environments:
                env = ", ".join(f"{k}={v}" for k, v in e["env"].items())
                click.echo(f"  computed with {env}: {e['commits']} commit(s)")
        if verbose:
            click.echo("  video ids: " + ", ".join(g.videos))
            for vid, why in sorted(g.failed.items()):
                click.echo(f"  unreadable {vid}: {why}")
            click.echo("  recipe: " + json.dumps(g.recipe_fields, sort_keys=True))


def _unclaim(store: str, g: GroupSummary) -> str:
    videos = ",".join(c["video"] for c in g.stale_claims)
    model = g.recipe.rpartition("@")[0]
    where = f"--store {shlex.quote(store)} --dataset {g.dataset} --model {model}"
    return f"dvx cache unclaim {where} --videos {videos}"


def _sizes(nbytes: int, stored: int | None) -> str:
    from dvx.config import human_bytes

    if stored is None or stored == nbytes:
        return human_bytes(nbytes)
    return f"{human_bytes(nbytes)}, {human_bytes(stored)} stored"


@cache.command("verify")
@_where
@click.option("--videos", default=None, help="Only these comma-separated video ids.")
@click.option(
    "--quick", is_flag=True, help="Metadata and chunk presence only; no checksums (reads nothing big)."
)
@click.option(
    "--repair",
    is_flag=True,
    help="Uncommit the damaged videos, so the same extract command again redoes only them.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def verify_cmd(
    store: str,
    dataset: str | None,
    model: str | None,
    videos: str | None,
    quick: bool,
    repair: bool,
    as_json: bool,
    no_progress: bool,
) -> None:
    """Check every visible chunk against its checksum; name the videos to re-extract (exit 1 if any)."""
    from dvx.config import human_bytes, parse_names
    from dvx.errors import DamagedStoreError
    from dvx.store.root import FeatureStore
    from dvx.store.verify import verify

    try:
        fs = FeatureStore.open(store, mode="a" if repair else "r", restore_root=repair)
    except DamagedStoreError as err:  # damage like any other: reported, exit 1 (--repair restores it)
        click.echo(f"  {err}")
        raise SystemExit(1) from err
    report = verify(
        fs,
        dataset,
        model,
        parse_names(videos),
        repair=repair,
        quick=quick,
        show_progress=not (no_progress or as_json),
    )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1))
    else:
        click.echo(
            f"{store}: checked {report.videos} video(s), {report.arrays} array(s), {report.chunks} chunk(s)"
            + ("" if quick else f", {human_bytes(report.nbytes)}")
        )
        for p in report.problems:
            click.echo(f"  {p.line()}")
        for path in report.restored:
            click.echo(f"restored {path}/zarr.json")
        for line in report.unrestorable:
            click.echo(f"not restored: {line}")
        for group, vids in report.to_reextract().items():
            done = "uncommitted" if repair else "to re-extract"
            click.echo(f"{group}: {len(vids)} video(s) {done}: {', '.join(vids)}")
        if report.legacy:
            click.echo(
                f"note: {report.legacy} commit record(s) written before records carried digests (legacy): "
                "their arrays are checked, the records' own content cannot be"
            )
        for c in report.stale_claims:
            dataset, _, recipe = c["group"].partition("/")
            clear = (
                f"dvx cache unclaim --store {shlex.quote(store)} --dataset {dataset} "
                f"--model {recipe.rpartition('@')[0]} --videos {c['video']}"
            )
            click.echo(
                f"stale claim: {c['group']} {c['video']} by {c['holder']}, {c['why']} (free for the next "
                f"extract; `{clear}` clears it)"
            )
        if report.ok:
            click.echo("ok: no damage found")
        elif not repair:
            click.echo(
                f"run `dvx cache verify --store {shlex.quote(store)} --repair` to repair it, then the same "
                "extract command again"
            )
        elif report.uncommitted:  # (restored metadata needs nothing more)
            click.echo(
                "run the same extract command again to recompute them; "
                f"`dvx cache gc --store {shlex.quote(store)}` frees the damaged arrays"
            )
    if (not report.ok and not repair) or report.unrestorable:
        raise SystemExit(1)


@cache.command("unclaim")
@_where
@click.option("--videos", required=True, help="Comma-separated video ids whose claims to clear.")
@click.option(
    "--force",
    is_flag=True,
    help="Also clear claims that are still valid (their holder stopped heartbeating less than a TTL ago): "
    "only when you know that job is gone. A claim held by a process running on this machine is never "
    "cleared.",
)
def unclaim_cmd(store: str, videos: str, dataset: str | None, model: str | None, force: bool) -> None:
    """Clear the claims of writers that are gone, so the next extract computes those videos at once.

    A stale claim (expired, or its holder gone) is cleared; a valid one only with --force. Claims are
    superseded by a released one, never deleted."""
    from dvx.config import parse_names
    from dvx.errors import StoreError
    from dvx.store.claims import unclaim
    from dvx.store.root import FeatureStore

    names = parse_names(videos) or ()
    groups = FeatureStore.open(store, mode="a").groups(dataset, model)
    if not groups:
        raise StoreError(f"{store}: no recipe group" + (f" of model {model}" if model else ""))
    for group in groups:
        for video in names:
            click.echo(f"{group.dataset}/{group.recipe.name} {unclaim(group, video, force=force)}")


@cache.command("gc")
@_where
@click.option(
    "--older-than", default=None, help="Also remove whole recipes last written longer ago (30d, 12h)."
)
@click.option(
    "--max-size",
    default=None,
    help="Also remove the least recently written recipes until the rest fit (500G).",
)
@click.option(
    "--min-age",
    default="1h",
    show_default=True,
    help="Leave leftovers younger than this alone (a writer may still be busy with them).",
)
@click.option("--dry-run", is_flag=True, help="Show what would be removed; remove nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before removing.")
@click.option("-v", "--verbose", is_flag=True, help="List every item, and what was kept and why.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (with --dry-run or --yes).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def gc_cmd(
    store: str,
    dataset: str | None,
    model: str | None,
    older_than: str | None,
    max_size: str | None,
    min_age: str,
    dry_run: bool,
    yes: bool,
    verbose: bool,
    as_json: bool,
    no_progress: bool,
) -> None:
    """Remove leftovers of interrupted writes and, on request, whole recipes; shows what it frees first."""
    from dvx.config import human_bytes, parse_duration, parse_size
    from dvx.store.gc import apply_gc, plan_gc
    from dvx.store.root import FeatureStore

    fs = FeatureStore.open(store, mode="r" if dry_run else "a")
    plan = plan_gc(
        fs,
        dataset,
        model,
        older_than=parse_duration(older_than, "--older-than") if older_than else None,
        max_total=parse_size(max_size, "--max-size") if max_size else None,
        min_age=parse_duration(min_age, "--min-age"),
    )
    if as_json:
        click.echo(json.dumps(plan.to_json(), indent=1))
    else:
        for kind, (n, b) in sorted(plan.by_kind().items()):
            click.echo(f"{kind:>10}: {n} item(s), {human_bytes(b)}")
        shown = plan.items if verbose else plan.items[:20]
        for item in shown:
            what = item.group if item.what == item.group else f"{item.group} {item.what}"
            click.echo(f"  {item.kind} {what}: {human_bytes(item.nbytes)} ({item.reason})")
        if len(shown) < len(plan.items):
            click.echo(f"  ... and {len(plan.items) - len(shown)} more (-v lists them all)")
        for why in plan.kept if verbose else []:
            click.echo(f"  kept {why}")
        click.echo(f"{store}: {len(plan.items)} item(s) to remove, {human_bytes(plan.nbytes)} to free")
    if dry_run or not plan.items:
        return
    if not yes and not click.confirm(f"Remove them, freeing {human_bytes(plan.nbytes)}?", default=False):
        raise click.exceptions.Abort()
    freed = apply_gc(fs, plan, show_progress=not (no_progress or as_json))
    if not as_json:
        click.echo(f"freed {human_bytes(freed)}")
