"""Per-video commit folders (old flat records stay readable) and the compacted index, on every backend."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from dvx.store import compact, layout
from dvx.store.gc import apply_gc, plan_gc
from dvx.store.group import RecipeGroup
from dvx.store.root import FeatureStore
from dvx.store.verify import verify
from tests.store.test_store import RECIPE, write_video


def _flatten(group: RecipeGroup, video: str) -> None:
    """Move a video's records to the flat names an older dvx wrote (``<video>~<gen>.json``)."""
    b = group.backend
    folder = layout.video_commits_prefix(group.path, video)
    for name in b.list_dir(folder):
        raw = b.get_bytes(folder + name)
        assert raw is not None
        gen = name.removesuffix(".json")
        b.put_bytes(layout.legacy_commit_key(group.path, video, gen), raw)
        b.delete(folder + name)


def _fresh(location: str, mode: str = "a") -> RecipeGroup:
    return FeatureStore.open(location, mode=mode).groups()[0]


def test_records_live_in_one_folder_per_video(store_location: str) -> None:
    group = FeatureStore.open(store_location, mode="a").create_group("davis", RECIPE)
    write_video(group, "dog")
    names = group.backend.list_prefix(layout.commits_prefix(group.path))
    [gen] = [c.gen for c in group.index().commits]
    assert names == [layout.commit_key(group.path, "dog", gen)]
    assert names[0].endswith(f"/_index/commits/dog/{gen}.json")


def test_old_flat_records_stay_readable_next_to_new_ones(store_location: str) -> None:
    group = FeatureStore.open(store_location, mode="a").create_group("davis", RECIPE)
    old = write_video(group, "dog", timesteps=(0,))
    write_video(group, "cat", timesteps=(0,))
    _flatten(group, "dog")
    newer = write_video(group, "dog", timesteps=(50,), seed=3)  # a later run adds T=50 (new layout)
    group = _fresh(store_location)
    assert group.index().videos() == ["cat", "dog"]
    np.testing.assert_array_equal(group.read("dog", 0, "up.1"), old[(0, "up.1")])
    np.testing.assert_array_equal(group.read("dog", 50, "up.2"), newer[(50, "up.2")])
    fresh = _fresh(store_location)  # a writer's per-video check, before any full listing
    assert {c.covers(0, "up.1") for c in fresh.video_index("dog").commits} == {True, False}
    assert fresh.video_index("dog").has("dog", (0, 50), ["up.1", "up.2"])
    assert verify(FeatureStore.open(store_location, mode="r")).ok


def test_gc_removes_a_superseded_flat_record(tmp_path: Path) -> None:
    location = str(tmp_path / "s")
    group = FeatureStore.open(location, mode="a").create_group("davis", RECIPE)
    write_video(group, "dog", timesteps=(0,))
    _flatten(group, "dog")
    write_video(group, "dog", timesteps=(0,), seed=5)  # supersedes the flat one
    store = FeatureStore.open(location, mode="a")
    plan = plan_gc(store, min_age=0)
    assert [i.kind for i in plan.items] == ["superseded"]
    apply_gc(store, plan)
    left = [k.rsplit("/", 2)[-2:] for k in store.backend.list_prefix(layout.commits_prefix(group.path))]
    assert len(left) == 1 and left[0][0] == "dog"  # the flat record went, the new one stays
    assert verify(FeatureStore.open(location, mode="r")).ok


def _many(store_location: str, n: int) -> RecipeGroup:
    group = FeatureStore.open(store_location, mode="a").create_group("davis", RECIPE)
    for i in range(n):
        write_video(group, f"v{i}", timesteps=(0,), blocks=("up.1",), n=2)
    return group


def test_a_writable_open_compacts_and_later_opens_read_it(
    store_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RecipeGroup, "compact_after", 3)
    group = _many(store_location, 4)
    key = layout.compact_key(group.path)
    assert not group.backend.exists(key)
    _fresh(store_location, "r").index()  # a read-only open never writes it
    assert not group.backend.exists(key)
    before = _fresh(store_location).index()
    if not group.backend.is_local:  # object stores: listed times too coarse, records always read
        assert not group.backend.exists(key)
        return
    assert group.backend.exists(key)
    reads: list[str] = []
    real = type(group.backend).get_many_bytes

    def spy(self, keys, concurrency=32):  # type: ignore[no-untyped-def]
        reads.extend(keys)
        return real(self, keys, concurrency)

    monkeypatch.setattr(type(group.backend), "get_many_bytes", spy)
    after = _fresh(store_location, "r").index()
    assert [(c.video, c.gen) for c in after.commits] == [(c.video, c.gen) for c in before.commits]
    assert reads == []  # every record came from the compact file


def test_the_records_stay_the_truth(store_location: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record newer than the compact file is read; one removed (verify --repair, gc) is dropped; one
    changed since is read again, and a damaged one hides its video."""
    monkeypatch.setattr(RecipeGroup, "compact_after", 3)
    group = _many(store_location, 4)
    _fresh(store_location).index()  # compacts
    write_video(group, "late", timesteps=(0,), blocks=("up.1",), n=2)
    [gone] = [c for c in group.index(refresh=True).commits if c.video == "v1"]
    group.backend.delete(layout.commit_key(group.path, "v1", gone.gen))
    [hurt] = [c for c in group.index(refresh=True).commits if c.video == "v2"]
    key = layout.commit_key(group.path, "v2", hurt.gen)
    raw = group.backend.get_bytes(key)
    assert raw is not None
    rec = json.loads(raw)
    rec["nbytes"] += 1  # parses, but fails its digest
    group.backend.put_bytes(key, json.dumps(rec).encode() + b" ")  # another size (S3 times are in s)
    index = _fresh(store_location, "r").index()
    assert index.videos() == ["late", "v0", "v3"]
    assert set(index.damaged) == {"v2"}


def test_a_damaged_compact_file_is_ignored_and_rebuilt(
    store_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RecipeGroup, "compact_after", 3)
    group = _many(store_location, 4)
    want = [(c.video, c.gen) for c in _fresh(store_location).index().commits]
    if not group.backend.is_local:
        return
    key = layout.compact_key(group.path)
    raw = group.backend.get_bytes(key)
    assert raw is not None
    for bad in (raw[: len(raw) // 2], raw.replace(b'"v1"', b'"v9"'), b"\x00" * len(raw)):
        group.backend.put_bytes(key, bad)
        assert [(c.video, c.gen) for c in _fresh(store_location, "r").index().commits] == want
        assert compact.load(group.backend, group.path, RECIPE.fingerprint)[1] == "damaged"
        assert [(c.video, c.gen) for c in _fresh(store_location).index().commits] == want
        assert compact.load(group.backend, group.path, RECIPE.fingerprint)[1] == "ok"  # rebuilt


def test_a_compact_file_of_another_recipe_is_never_used(tmp_path: Path) -> None:
    entries = {"v/abc.json": compact.CompactEntry(1, 2.0, {"video": "v"})}
    raw = compact.encode("f" * 64, entries)
    assert compact.decode(raw, "f" * 64) == entries
    with pytest.raises(compact.DamagedRecord, match="another recipe"):
        compact.decode(raw, "e" * 64)


def test_filesystem_entries_per_stored_slot(tmp_path: Path) -> None:
    """Counted over the whole store: each stored (video, T, block) is 3 entries (array folder, zarr.json,
    chunk), each video adds its commits folder and record, each recipe a fixed few (groups, _index)."""
    location = tmp_path / "s"
    group = FeatureStore.open(str(location), mode="a").create_group("davis", RECIPE)
    timesteps, blocks = (0, 50, 100), ("up.1", "up.2", "mid")

    def entries() -> int:
        return sum(len(dirs) + len(files) for _, dirs, files in os.walk(location))

    write_video(group, "v0", timesteps=timesteps, blocks=blocks, n=2)
    base = entries()
    for i in range(1, 6):
        write_video(group, f"v{i}", timesteps=timesteps, blocks=blocks, n=2)
    slots = len(timesteps) * len(blocks)
    assert (entries() - base) == 5 * (3 * slots + 2)


def test_ls_and_gc_from_noted_sizes_equal_a_full_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On local disk ls and gc take live arrays' sizes from the compacted index instead of walking them:
    what they report and plan equals what a walk of everything gives (the compact file removed)."""
    from dvx.store.inventory import summarize

    monkeypatch.setattr(RecipeGroup, "compact_after", 3)
    location = str(tmp_path / "s")
    group = _many(location, 4)
    write_video(group, "v0", timesteps=(0,), blocks=("up.1",), n=3, seed=9)  # supersedes v0's first
    write_video(group, "lost", commit=False)  # an orphan
    _fresh(location).index()  # compacts, noting the live arrays' sizes
    store = FeatureStore.open(location, mode="r")
    assert store.groups()[0].index() and store.groups()[0].stored_sizes() == {}  # a new group object
    fast = [s.to_json() for s in summarize(store)]
    fast_plan = plan_gc(store, min_age=0).to_json()
    noted = FeatureStore.open(location, mode="r").groups()[0]
    noted.index()
    assert len(noted.stored_sizes()) == 5  # every committed generation (v0's superseded one too)
    # the same store without the compact file: everything is walked
    path = Path(location) / layout.compact_key(group.path)
    fast[0]["stored_bytes"] -= path.stat().st_size
    os.remove(path)
    slow = [s.to_json() for s in summarize(FeatureStore.open(location, mode="r"))]
    assert {k for k in fast[0] if fast[0][k] != slow[0][k]} == set()
    assert fast[0]["reclaimable"] > 0 and fast[0]["stored_by_t"]["0"] > 0
    assert plan_gc(FeatureStore.open(location, mode="r"), min_age=0).to_json() == fast_plan
    assert sorted(i["kind"] for i in fast_plan["items"]) == ["orphan", "superseded"]
