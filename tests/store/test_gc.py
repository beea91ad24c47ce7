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
    assert gone and all("crashed~" in k or "twice~" in k or "/commits/twice/" in k for k in gone)
    reader = FeatureStore.open(store_location, mode="r").groups()[0]
    assert reader.index().videos() == ["kept", "twice"]
    for (t, b), x in kept.items():
        np.testing.assert_array_equal(reader.read("kept", t, b), x)
    for (t, b), x in second.items():
        np.testing.assert_array_equal(reader.read("twice", t, b), x)
    assert verify(store).ok
    holder.release(busy)  # the writer gave up, and so did the next one: later, its leftovers go, and
    again = holder.try_acquire("busy")
    holder.release(again)  # the superseded claim record (never the current one: numbering never restarts)
    assert sorted((i.kind, i.what.split(layout.GEN_SEP)[0]) for i in plan_gc(store, now=later).items) == [
        ("claims", "busy"),
        ("orphan", "busy"),
    ]
    apply_gc(store, plan_gc(store, now=later))
    assert holder.current("busy").seq == 2 and holder.try_acquire("busy").seq == 3


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


def test_gc_never_removes_a_claim_taken_after_the_plan(store_location: str) -> None:
    store = FeatureStore.open(store_location, mode="a")
    group = store.create_group("davis", RECIPE)
    write_video(group, "a")
    first = Claims(group, ttl=HOUR)
    first.release(first.try_acquire("a"))  # a finished video: one released claim
    later = time.time() + 2 * HOUR
    plan = plan_gc(store, now=later)
    writer = Claims(group, ttl=HOUR)
    mine = writer.try_acquire("a")  # a job starts on the video (adding a T) while the user reads the plan
    apply_gc(store, plan)
    assert writer.still_holds(mine) and mine.seq == 2
    assert Claims(group, ttl=HOUR).try_acquire("a") is None  # nobody else gets seq 1 again
    assert [i for i in plan.items if i.kind == "claims"] == []  # the current record always stays
    writer.release(mine)
    # the superseded record goes once it is old; the newest (released) one stays and tells a later job that
    # another job finished the video, so it checks the index again instead of trusting a stale one
    plan = plan_gc(store, now=later)
    assert [(i.kind, i.what, len(i.keys)) for i in plan.items] == [("claims", "a", 1)]
    apply_gc(store, plan)
    names = [k.rsplit("/", 1)[1] for k in group.backend.list_prefix(layout.claim_dir(group.path, "a"))]
    assert names == ["00000002.json"] and writer.current("a").state == "released"


def test_a_damaged_claim_record_breaks_neither_gc_nor_listing(store_location: str) -> None:
    from dvx.store.inventory import summarize

    store = FeatureStore.open(store_location, mode="a")
    group = store.create_group("davis", RECIPE)
    write_video(group, "a")
    write_video(group, "b")
    group.backend.put_bytes(layout.claim_key(group.path, "a", 1), b"")  # cut short by a power loss
    group.backend.put_json(layout.claim_key(group.path, "b", 1), {"video": "b", "seq": 1})  # a field missing
    later = time.time() + 2 * HOUR
    plan = plan_gc(store, now=later)
    assert plan.items == [] and sum("unreadable" in k for k in plan.kept) == 2
    [summary] = summarize(FeatureStore.open(store_location, mode="r"))
    assert summary.videos == ["a", "b"] and summary.in_progress == []
    claims = Claims(group, ttl=HOUR)
    claims.release(claims.try_acquire("a"))  # the next claim supersedes the damaged one: gc removes it
    plan = plan_gc(store, now=later)
    assert [(i.kind, i.what) for i in plan.items] == [("claims", "a")]
    apply_gc(store, plan)
    assert claims.current("a").seq == 2 and verify(store).ok


def test_gc_and_verify_read_index_records_in_batches(
    store_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvx.store.backend import Backend
    from dvx.store.inventory import summarize

    store = FeatureStore.open(store_location, mode="a")
    group = store.create_group("davis", RECIPE)
    claims = Claims(group, ttl=HOUR)
    for video in ("a", "b", "c"):
        write_video(group, video)
        claims.release(claims.try_acquire(video))
    single, batches, dirs = [], [], []
    get_bytes, list_dir = Backend.get_bytes, Backend.list_dir
    get_many = Backend.get_many_bytes
    monkeypatch.setattr(Backend, "get_bytes", lambda self, k: single.append(k) or get_bytes(self, k))
    monkeypatch.setattr(
        Backend, "get_many_bytes", lambda self, ks, *a: batches.append(ks) or get_many(self, ks, *a)
    )
    monkeypatch.setattr(Backend, "list_dir", lambda self, p: dirs.append(p) or list_dir(self, p))
    plan_gc(store, now=time.time() + 2 * HOUR)
    verify(store, quick=True)
    summarize(store)
    # no record read one at a time (the compacted index is one file, read once per open)
    assert [k for k in single if f"/{layout.INDEX}/" in k and not k.endswith("/compact.json")] == []
    assert [p for p in dirs if "/claims/" in p.rstrip("/")] == []  # no listing per claimed video
    sizes = {kind: [len(b) for b in batches if b and kind in b[0]] for kind in ("/claims/", "/commits/")}
    assert sizes == {"/claims/": [3, 3, 3], "/commits/": [3, 3, 3]}  # each of gc, verify and ls: one batch


def test_ls_lists_a_recipe_once_claims_included(store_location: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from dvx.store.backend import Backend
    from dvx.store.inventory import summarize

    store = FeatureStore.open(store_location, mode="a")
    group = store.create_group("davis", RECIPE)
    write_video(group, "a")
    Claims(group, ttl=HOUR).try_acquire("b")
    prefixes: list[str] = []
    list_prefix = Backend.list_prefix
    monkeypatch.setattr(Backend, "list_prefix", lambda self, p: prefixes.append(p) or list_prefix(self, p))
    [summary] = summarize(store)
    assert [s["video"] for s in summary.in_progress] == ["b"]  # claims come from the recipe's one listing
    assert [p for p in prefixes if "/claims/" in p] == []
    assert summary.writers == [w["writer"] for w in summary.writer_stats] and len(summary.writers) == 1
