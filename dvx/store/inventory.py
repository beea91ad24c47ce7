"""What a store holds: recipes, timesteps, blocks, videos and bytes (for ``dvx cache ls``)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dvx.store import layout
from dvx.store.claims import current_claims, is_free, stale_reason
from dvx.store.group import RecipeGroup
from dvx.store.index import IndexView
from dvx.store.listing import list_group
from dvx.store.root import FeatureStore


@dataclass
class GroupSummary:
    dataset: str
    recipe: str  # <model>@<fp8>
    fingerprint: str
    model: str
    resolution: tuple[int, int]
    timesteps: list[int]
    blocks: list[str]
    videos: list[str]
    failed: dict[str, str]
    nbytes: int  # uncompressed bytes of the live (visible) arrays
    nbytes_by_t: dict[int, int] = field(default_factory=dict)
    nbytes_by_block: dict[str, int] = field(default_factory=dict)
    writers: list[str] = field(default_factory=list)  # user@host seen in commits
    last_written: str = ""
    recipe_fields: dict[str, Any] = field(default_factory=dict)
    stored_bytes: int = 0  # bytes of every object under the recipe, as stored (codec, leftovers included)
    stored_by_t: dict[int, int] = field(default_factory=dict)  # stored bytes of the visible arrays
    stored_by_block: dict[str, int] = field(default_factory=dict)
    reclaimable: int = 0  # stored bytes of arrays no reader sees (uncommitted or superseded): `cache gc`
    writer_stats: list[dict[str, Any]] = field(default_factory=list)  # who wrote: commits, first, last
    in_progress: list[dict[str, Any]] = field(default_factory=list)  # live claims: video, holder, since
    stale_claims: list[dict[str, Any]] = field(default_factory=list)  # held but free: video, holder, why
    environments: list[dict[str, Any]] = field(default_factory=list)  # compute environments: env, commits
    damaged: dict[str, str] = field(default_factory=dict)  # video -> why its commit record is damaged

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["resolution"] = list(self.resolution)
        out["nbytes_by_t"] = {str(k): v for k, v in self.nbytes_by_t.items()}
        out["stored_by_t"] = {str(k): v for k, v in self.stored_by_t.items()}
        return out


def summarize(
    store: FeatureStore, dataset: str | None = None, model: str | None = None
) -> list[GroupSummary]:
    out = []
    for g in store.groups(dataset, model):
        index = g.index()
        by_t: dict[int, int] = {}
        by_block: dict[str, int] = {}
        for video in index.videos():
            for t, b, c in index.slots(video):
                n = 2 * math.prod(c.shapes[b])  # fp16
                by_t[t] = by_t.get(t, 0) + n
                by_block[b] = by_block.get(b, 0) + n
        stored = _stored(g, index)
        out.append(
            GroupSummary(
                dataset=g.dataset,
                recipe=g.recipe.name,
                fingerprint=g.recipe.fingerprint,
                model=g.recipe.model,
                resolution=g.recipe.resolution,
                timesteps=index.timesteps(),
                blocks=index.blocks(),
                videos=index.videos(),
                failed={k: f.reason for k, f in g.failures().items()},
                nbytes=sum(by_t.values()),
                nbytes_by_t=by_t,
                nbytes_by_block=by_block,
                writers=sorted(st["writer"] for st in stored["writer_stats"]),
                last_written=max((c.written_at for c in index.commits), default=""),
                recipe_fields=g.recipe.to_json(),
                environments=_environments(index),
                damaged=dict(index.damaged),
                **stored,
            )
        )
    return out


def _stored(group: RecipeGroup, index: IndexView) -> dict[str, Any]:
    """Stored bytes by T and block, who wrote when, and what is in flight (claims), all from one listing
    of the recipe (dvx/store/listing.py: on local disk the live arrays' sizes as noted when their records
    were compacted)."""
    listing = list_group(group)
    objects = listing.objects
    live = index.live_gens()
    by_t: dict[int, int] = {}
    by_block: dict[str, int] = {}
    for (t, block, _, _), size in listing.noted.items():  # live arrays, their sizes noted at compaction
        by_t[t] = by_t.get(t, 0) + size
        by_block[block] = by_block.get(block, 0) + size
    reclaimable = 0
    for key, (size, _) in objects.items():
        parsed = layout.parse_array_path(key[len(group.path) + 1 :])
        if parsed is None:
            continue
        t, block, video, gen = parsed
        commit = index.lookup(video, t, block)
        if commit is not None and commit.gen == gen:
            by_t[t] = by_t.get(t, 0) + size
            by_block[block] = by_block.get(block, 0) + size
        elif (video, gen) not in live:
            reclaimable += size
    stats: dict[str, dict[str, Any]] = {}
    for c in index.commits:
        who = f"{c.written_by.get('user', '?')}@{c.written_by.get('host', '?')}"
        st = stats.setdefault(who, {"writer": who, "commits": 0, "first": c.written_at, "last": c.written_at})
        st["commits"] += 1
        st["first"], st["last"] = min(st["first"], c.written_at), max(st["last"], c.written_at)
    now = time.time()
    claims = current_claims(group, keys=objects)
    flight = [
        {
            "video": v,
            "holder": rec.holder(),
            "since": _iso(rec.acquired_at),
            "expires_in": round(rec.expires_at - now, 1),
        }
        for v, rec in sorted(claims.items())
        if not is_free(rec, now)
    ]
    stale = [
        {"video": v, "holder": rec.holder(), "since": _iso(rec.acquired_at), "why": why}
        for v, rec in sorted(claims.items())
        if rec.state == "held" and (why := stale_reason(rec, now)) is not None
    ]
    return {
        "stored_bytes": listing.nbytes,
        "stored_by_t": dict(sorted(by_t.items())),
        "stored_by_block": dict(sorted(by_block.items())),
        "reclaimable": reclaimable,
        "writer_stats": sorted(stats.values(), key=lambda s: s["last"]),
        "in_progress": flight,
        "stale_claims": stale,
    }


def _iso(stamp: float) -> str:
    try:
        return datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):  # a damaged claim's time
        return "?"


def _environments(index: IndexView) -> list[dict[str, Any]]:
    """The distinct compute environments of the visible commits (provenance), with how many commits each:
    features computed in different environments may differ in their last bits (docs/store.md)."""
    seen: dict[str, dict[str, Any]] = {}
    for c in index.commits:
        env = dict(c.env) if c.env else {"unknown": "written before dvx recorded environments"}
        key = json.dumps(env, sort_keys=True)
        seen.setdefault(key, {"env": env, "commits": 0})["commits"] += 1
    return sorted(seen.values(), key=lambda e: -e["commits"])
