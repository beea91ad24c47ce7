"""What a store holds: recipes, timesteps, blocks, videos and bytes (for ``dvx cache ls``)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dvx.store import layout
from dvx.store.claims import live_claims
from dvx.store.group import RecipeGroup
from dvx.store.index import IndexView
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
                **stored,
            )
        )
    return out


def _stored(group: RecipeGroup, index: IndexView) -> dict[str, Any]:
    """Stored bytes by T and block, who wrote when, and what is in flight (claims), all from one listing
    of the recipe."""
    objects = group.backend.stat_prefix(group.path)
    live = index.live_gens()
    by_t: dict[int, int] = {}
    by_block: dict[str, int] = {}
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
    flight = [
        {
            "video": v,
            "holder": rec.holder(),
            "since": datetime.fromtimestamp(rec.acquired_at, timezone.utc).isoformat(timespec="seconds"),
            "expires_in": round(rec.expires_at - time.time(), 1),
        }
        for v, rec in sorted(live_claims(group, keys=objects).items())
    ]
    return {
        "stored_bytes": sum(size for size, _ in objects.values()),
        "stored_by_t": dict(sorted(by_t.items())),
        "stored_by_block": dict(sorted(by_block.items())),
        "reclaimable": reclaimable,
        "writer_stats": sorted(stats.values(), key=lambda s: s["last"]),
        "in_progress": flight,
    }
