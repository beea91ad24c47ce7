"""``gc`` plans before it removes: leftovers of interrupted writes, superseded generations, old partial files
and claims, and on request whole recipes by age or size; never what a live writer may still use."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dvx.store import layout
from dvx.store.claims import Claims
from dvx.store.gc import apply_gc, plan_gc
from dvx.store.root import FeatureStore
from dvx.store.verify import verify
from tests.store.test_store import RECIPE, write_video

HOUR = 3600.0


def test_leftovers_are_removed_once_old_and_unclaimed(store_location: str) -> None:
    store = FeatureStore.open(store_location, mode="a")
    group = store.create_group("davis", RECIPE)
    kept = write_video(group, "kept")
    write_video(group, "crashed", commit=False)  # a crash between arrays and commit
    write_video(group, "busy", commit=False)  # a writer that is still at it ...
    holder = Claims(group, ttl=10 * HOUR)
    busy = holder.try_acquire("busy")  # ... and holds its claim
    write_video(group, "twice", seed=1)
    second = write_video(group, "twice", seed=2)  # the first generation is superseded
    now = time.time()
    assert {i.kind for i in plan_gc(store, now=now).items} == set()  # everything is younger than min_age
    later = now + 2 * HOUR
    plan = plan_gc(store, now=later)
    got = sorted((i.kind, i.what.split(layout.GEN_SEP)[0]) for i in plan.items)
    assert got == [("orphan", "crashed"), ("superseded", "twice")]
    assert any("busy" in k and "holds the video" in k for k in plan.kept)
    assert plan.nbytes > 0 and plan.by_kind()["orphan"][0] == 1
    before = set(group.backend.list_prefix(group.path))
    assert apply_gc(store, plan) == plan.nbytes
    gone = before - set(group.backend.list_prefix(group.path))
    assert gone and all("crashed~" in k or "twice~" in k for k in gone)
    reader = FeatureStore.open(store_location, mode="r").groups()[0]
    assert reader.index().videos() == ["kept", "twice"]
    for (t, b), x in kept.items():
        np.testing.assert_array_equal(reader.read("kept", t, b), x)
    for (t, b), x in second.items():
        np.testing.assert_array_equal(reader.read("twice", t, b), x)
    assert verify(store).ok
    holder.release(busy)  # the writer gave up: later, its leftovers and its claim go too
    assert sorted((i.kind, i.what.split(layout.GEN_SEP)[0]) for i in plan_gc(store, now=later).items) == [
        ("claims", "busy"),
        ("orphan", "busy"),
    ]


def test_old_partial_files_go(tmp_path: Path) -> None:
    store = FeatureStore.open(str(tmp_path / "s"), mode="a")
    group = store.create_group("davis", RECIPE)
    write_video(group, "a")
    stale = tmp_path / "s" / group.path / "_index" / "commits" / "a~123.4f2a.partial"
    fresh = stale.with_name("b~456.77aa.partial")
    stale.write_bytes(b"{")
    fresh.write_bytes(b"{")
    os.utime(stale, (time.time() - 2 * HOUR, time.time() - 2 * HOUR))
    plan = plan_gc(store)
    assert [(i.kind, Path(i.what).name) for i in plan.items] == [("partial", stale.name)]
    apply_gc(store, plan)
    assert not stale.exists() and fresh.exists()


def test_whole_recipes_by_age_or_size_but_never_while_written(
    store_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FeatureStore.open(store_location, mode="a")
    old_group = store.create_group("davis", RECIPE)
    monkeypatch.setattr("dvx.store.writer.now_iso", lambda: "2026-01-01T00:00:00.000+00:00")
    write_video(old_group, "a")
    monkeypatch.undo()
    new_group = store.create_group("davis", replace(RECIPE, seed=7))
    write_video(new_group, "a")
    assert [i for i in plan_gc(store).items if i.kind == "recipe"] == []  # only on request
    plan = plan_gc(store, older_than=30 * 86400)
    assert [(i.kind, i.group) for i in plan.items] == [("recipe", f"davis/{RECIPE.name}")]
    sizes = {g.path: sum(b for b, _ in store.backend.stat_prefix(g.path).values()) for g in store.groups()}
    by_size = plan_gc(store, max_total=sizes[new_group.path])  # the least recently written goes first
    assert [i.group for i in by_size.items if i.kind == "recipe"] == [f"davis/{RECIPE.name}"]
    assert plan_gc(store, max_total=0).nbytes == sum(sizes.values())
    writer = Claims(old_group)
    claim = writer.try_acquire("b")  # someone starts writing into the old recipe
    held = plan_gc(store, older_than=30 * 86400)
    assert held.items == [] and "being written now" in held.kept[0]
    writer.release(claim)
    apply_gc(store, plan)
    assert [g.recipe.seed for g in FeatureStore.open(store_location, mode="r").groups()] == [7]
    assert store.backend.list_prefix(old_group.path) == []
