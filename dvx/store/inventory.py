"""What a store holds: recipes, timesteps, blocks, videos and bytes (for ``dvx cache ls``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["resolution"] = list(self.resolution)
        out["nbytes_by_t"] = {str(k): v for k, v in self.nbytes_by_t.items()}
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
            for t in index.timesteps():
                for b in index.blocks():
                    c = index.lookup(video, t, b)
                    if c is None:
                        continue
                    n = 2
                    for d in c.shapes[b]:
                        n *= d
                    by_t[t] = by_t.get(t, 0) + n
                    by_block[b] = by_block.get(b, 0) + n
        writers = sorted(
            {f"{c.written_by.get('user', '?')}@{c.written_by.get('host', '?')}" for c in index.commits}
        )
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
                writers=writers,
                last_written=max((c.written_at for c in index.commits), default=""),
                recipe_fields=g.recipe.to_json(),
            )
        )
    return out
