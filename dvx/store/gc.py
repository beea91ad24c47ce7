"""``dvx cache gc``: plan what to remove from a store, show it, then remove it.

Always planned (leftovers no reader can see):
- **orphan** generations: arrays ``<video>~<gen>`` with no commit record (a crash between arrays and
  commit, a claim lost to another job, or ``verify --repair``). Never while a live claim on the video
  exists (its writer may be writing it right now) nor while its newest file is younger than ``min_age``;
- **superseded** generations: commits none of whose (T, block) a reader resolves to any more, once the
  video's newest commit is older than ``min_age`` (a reader that loaded the index before it may still be
  reading the old arrays). The commit record goes first, then the arrays;
- **partial** files (``*.partial``: a temp file of an interrupted write) older than ``min_age``;
- **claims**: superseded claim records (a seq below the video's newest) older than ``min_age``. The
  newest record of a video is never removed, whatever its state: it is the current claim (a writer may
  have taken it since the plan was made), its numbering must never restart, and a released one tells a
  later job that another job finished the video.

On request, whole **recipes**: those last written more than ``older_than`` seconds ago, and/or the least
recently written ones until the store's recipes fit in ``max_total`` bytes. A recipe with a live claim is
never removed. Its group ``zarr.json`` is removed first, so it disappears from listings at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dvx.progress import progress
from dvx.store import layout
from dvx.store.claims import DAMAGED, ClaimRecord, claim_seqs, is_free, read_current
from dvx.store.group import RecipeGroup
from dvx.store.index import Commit, IndexView
from dvx.store.listing import list_group
from dvx.store.root import FeatureStore

Log = Callable[[str], None]

#: leftovers younger than this are left alone: a writer may still be busy with them
DEFAULT_MIN_AGE = 3600.0


@dataclass(frozen=True)
class GcItem:
    kind: str  # orphan | superseded | partial | claims | recipe
    group: str  # <dataset>/<model>@<fp8>
    what: str  # video~gen, a file, or the recipe
    keys: tuple[str, ...]  # objects to delete first, in order
    nbytes: int
    reason: str
    prefixes: tuple[str, ...] = ()  # then everything under these (array folders, a whole recipe)


@dataclass
class GcPlan:
    items: list[GcItem] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # what was not planned, and why

    @property
    def nbytes(self) -> int:
        return sum(i.nbytes for i in self.items)

    def by_kind(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for i in self.items:
            n, b = out.get(i.kind, (0, 0))
            out[i.kind] = (n + 1, b + i.nbytes)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "bytes": self.nbytes,
            "items": [
                {k: v for k, v in i.__dict__.items() if k not in ("keys", "prefixes")} for i in self.items
            ],
            "kept": self.kept,
        }


@dataclass
class _Scan:
    """One group's objects: read in the order that makes orphan detection safe (arrays, claims, commits)."""

    group: RecipeGroup
    name: str
    objects: dict[str, tuple[int, float]]  # key -> (bytes, mtime)
    claims: dict[str, ClaimRecord]  # video -> its current claim
    claim_files: dict[str, tuple[int, float]]  # key -> (bytes, mtime) of every claim record
    claim_seqs: dict[str, list[int]]  # video -> its claim seqs, ascending
    commits: list[Commit]
    noted_bytes: int = 0  # live arrays counted from the compacted index, not walked

    @property
    def nbytes(self) -> int:
        return sum(b for b, _ in self.objects.values()) + self.noted_bytes

    def last_written(self) -> float:
        stamps = [_ts(c.written_at) for c in self.commits]
        return max(stamps or [max((m for _, m in self.objects.values()), default=0.0)])

    def live_claims(self, now: float) -> dict[str, ClaimRecord]:
        return {v: c for v, c in self.claims.items() if not is_free(c, now)}


def _ts(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return 0.0


def _scan(group: RecipeGroup) -> _Scan:
    backend = group.backend
    # 0. the arrays the index resolves to now, whose sizes the compacted index noted, are counted, not
    # walked (dvx/store/listing.py): gc never removes an array a reader resolves to, and this only ever
    # leaves arrays out of what gc may remove
    if backend.is_local:
        group.index(refresh=True)
    listing = list_group(group)
    objects = listing.objects  # 1. every other object (arrays included)
    # 2. claims, listed again after the arrays (one listing of the claims folder, then the current records
    # in one batch): a writer that wrote arrays seen above holds a claim created before them ...
    claim_files = backend.stat_prefix(layout.claims_prefix(group.path))
    seqs = claim_seqs(group, claim_files)
    claims = read_current(group, seqs)
    # 3. ... until after its commit record, read last. A damaged record becomes a placeholder named by its
    # file (never by its content), which keeps that generation's arrays (`dvx cache verify --repair`
    # handles it)
    good, bad = group.commit_records(use_compact=True)
    commits = good + [_placeholder(video, gen) for video, gen, _, _ in bad]
    name = f"{group.dataset}/{group.recipe.name}"
    return _Scan(group, name, objects, claims, claim_files, seqs, commits, sum(listing.noted.values()))


def _placeholder(video: str, gen: str) -> Commit:
    return Commit(video, gen, (), (), (), (), (0, 0), {}, 0)


def plan_gc(
    store: FeatureStore,
    dataset: str | None = None,
    model: str | None = None,
    older_than: float | None = None,
    max_total: int | None = None,
    min_age: float = DEFAULT_MIN_AGE,
    now: float | None = None,
) -> GcPlan:
    """What ``gc`` would remove (nothing is removed here)."""
    now = time.time() if now is None else now
    plan = GcPlan()
    scans = [_scan(g) for g in store.groups(dataset, model)]
    for scan in scans:
        _plan_leftovers(scan, plan, now, min_age)
    _plan_recipes(scans, plan, now, older_than, max_total)
    return plan


def _plan_leftovers(scan: _Scan, plan: GcPlan, now: float, min_age: float) -> None:
    path = scan.group.path
    live = scan.live_claims(now)
    committed = {(c.video, c.gen) for c in scan.commits}
    index = IndexView(c for c in scan.commits if c.timesteps)
    in_use = index.live_gens() | {(c.video, c.gen) for c in scan.commits if not c.timesteps}
    gens: dict[tuple[str, str], dict[str, list[str]]] = {}  # (video, gen) -> array folder -> its keys
    for key in scan.objects:
        rel = key[len(path) + 1 :]
        if key.endswith(".partial"):
            size, mtime = scan.objects[key]
            if now - mtime >= min_age:
                plan.items.append(GcItem("partial", scan.name, rel, (key,), size, "temp file of a write"))
            continue
        parsed = layout.parse_array_path(rel)
        if parsed is not None:
            t, block, video, gen = parsed
            folder = layout.array_key(path, t, block, video, gen)
            gens.setdefault((video, gen), {}).setdefault(folder, []).append(key)
    for video, gen in sorted(committed - in_use - set(gens)):  # superseded, arrays already gone
        gens[(video, gen)] = {}
    for (video, gen), folders in sorted(gens.items()):
        keys = [k for ks in folders.values() for k in ks]
        size = sum(scan.objects[k][0] for k in keys)
        newest = max((scan.objects[k][1] for k in keys), default=0.0)
        what = f"{video}{layout.GEN_SEP}{gen}"
        arrays = tuple(sorted(folders))
        if (video, gen) not in committed:
            if video in live:
                plan.kept.append(
                    f"{scan.name} {what}: uncommitted, but {live[video].holder()} holds the video"
                )
            elif now - newest < min_age:
                plan.kept.append(f"{scan.name} {what}: uncommitted, written {now - newest:.0f}s ago")
            else:
                plan.items.append(GcItem("orphan", scan.name, what, (), size, "never committed", arrays))
        elif (video, gen) not in in_use:
            latest = index.latest(video)
            if latest is not None and now - _ts(latest.written_at) >= min_age:
                record = scan.group.record_key(video, gen)
                size += scan.objects.get(record, (0, 0.0))[0]
                reason = f"superseded by {latest.gen}"
                plan.items.append(GcItem("superseded", scan.name, what, (record,), size, reason, arrays))
    for video, seqs in scan.claim_seqs.items():
        rec = scan.claims.get(video)
        if rec is not None and rec.state == DAMAGED:
            plan.kept.append(
                f"{scan.name} {video}: current claim {rec.seq:08d}.json is an {rec.note}; it counts as "
                "free, and the video's next claim supersedes it"
            )
        # only records below the newest: the newest is the current claim, whatever its state
        old = [layout.claim_key(path, video, seq) for seq in seqs[:-1]]
        old = [k for k in old if k in scan.claim_files and now - scan.claim_files[k][1] >= min_age]
        if old:
            size = sum(scan.claim_files[k][0] for k in old)
            reason = f"{len(old)} superseded claim record(s); the current one ({seqs[-1]:08d}) stays"
            plan.items.append(GcItem("claims", scan.name, video, tuple(old), size, reason))


def _plan_recipes(
    scans: list[_Scan], plan: GcPlan, now: float, older_than: float | None, max_total: int | None
) -> None:
    if older_than is None and max_total is None:
        return
    chosen: dict[str, str] = {}
    removable = []
    for scan in scans:
        live = scan.live_claims(now)
        if live:
            plan.kept.append(f"{scan.name}: recipe kept, {len(live)} video(s) being written now")
            continue
        removable.append(scan)
        age = now - scan.last_written()
        if older_than is not None and age > older_than:
            chosen[scan.name] = f"last written {_days(age)} ago"
    if max_total is not None:
        total = sum(s.nbytes for s in scans if s.name not in chosen)
        for scan in sorted(removable, key=lambda s: s.last_written()):
            if total <= max_total:
                break
            if scan.name not in chosen:
                chosen[scan.name] = f"least recently written (last {_days(now - scan.last_written())} ago)"
                total -= scan.nbytes
    for scan in scans:
        if scan.name in chosen:
            # a recipe item replaces that recipe's other items: everything under it goes
            plan.items = [i for i in plan.items if i.group != scan.name]
            # the group's zarr.json and its second copy first: the recipe leaves listings at once, and a
            # concurrent `verify --repair` finds nothing to restore it from
            first = (f"{scan.group.path}/zarr.json", layout.recipe_copy_key(scan.group.path))
            item = GcItem(
                "recipe",
                scan.name,
                scan.name,
                first,
                scan.nbytes,
                chosen[scan.name],
                (scan.group.path,),
            )
            plan.items.append(item)


def _days(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    return f"{seconds / 3600:.1f} h"


def apply_gc(
    store: FeatureStore,
    plan: GcPlan,
    log: Log | None = None,
    now: float | None = None,
    show_progress: bool = False,
) -> int:
    """Remove what ``plan`` lists; returns the bytes freed. Recipes that gained a live claim since the
    plan was made are kept."""
    log = log or (lambda _: None)
    freed = 0
    backend = store.backend
    for item in progress(plan.items, "gc", "item", show_progress):
        if item.kind == "recipe":
            group = next((g for g in store.groups() if f"{g.dataset}/{g.recipe.name}" == item.group), None)
            if group is None:
                continue
            live = _scan(group).live_claims(time.time() if now is None else now)
            if live:
                log(f"kept {item.group}: {len(live)} video(s) started being written since the plan")
                continue
        # first the objects that make the rest unreachable (a recipe's zarr.json: it vanishes from
        # listings; a superseded commit record: no reader resolves to its arrays), then the rest
        for key in item.keys:
            backend.delete(key)
        for prefix in item.prefixes:
            backend.delete_prefix(prefix)
        freed += item.nbytes
        log(f"removed {item.kind} {item.group} {item.what} ({item.nbytes} B)")
    return freed
