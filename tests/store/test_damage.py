"""The damage suite, on every backend: each way a store can be damaged is found by a read (one line naming
the video and the repair), reported by ``verify``, and repaired by ``verify --repair`` plus the same write,
giving features bit-identical to an undamaged store; intact data is never deleted.

The many variants of each damage run on local disk and in memory; S3 (slow per request) runs one of each
kind in :func:`test_each_kind_of_damage_on_s3`. The same damage through the real commands (probe,
extract, ``dvx cache``) is tests/store/test_damage_cli.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from dvx.errors import RecipeMismatchError, StoreError
from dvx.store import layout
from dvx.store.claims import HELD, MAX_TTL, ClaimRecord, Claims, process_identity, stale_claims, unclaim
from dvx.store.gc import apply_gc, plan_gc
from dvx.store.group import RecipeGroup
from dvx.store.index import canonical_digest
from dvx.store.root import FeatureStore
from dvx.store.verify import verify
from dvx.store.writer import VideoWriter, write_timestep_attrs
from tests.store.test_store import RECIPE, write_video

VIDEOS = {"a": 1, "b": 2, "c": 3}  # video -> seed of its features
GROUP = f"davis/{RECIPE.name}"
#: the variants of one damage run on these backends (S3: see test_each_kind_of_damage_on_s3)
LOCAL_AND_MEMORY = pytest.mark.parametrize("store_location", ["local", "memory"], indirect=True)


def fill(group: RecipeGroup) -> dict[str, dict[tuple[int, str], np.ndarray]]:
    return {v: write_video(group, v, seed=seed) for v, seed in VIDEOS.items()}


def intact_objects(group: RecipeGroup, videos: list[str]) -> dict[str, bytes]:
    """Every object of ``videos``' arrays and commit records, with its bytes."""
    keys = group.backend.list_prefix(f"{group.path}/")
    return {k: group.backend.get_bytes(k) for k in keys if any(f"/{v}{layout.GEN_SEP}" in k for v in videos)}


def chunk_keys(group: RecipeGroup, video: str, t: int, block: str) -> list[str]:
    key = group.array_key(video, t, block)
    return sorted(k for k in group.backend.list_prefix(key) if not k.endswith("zarr.json"))


def record_key(group: RecipeGroup, video: str) -> str:
    return layout.commit_key(group.path, video, group.index(refresh=True).latest(video).gen)


def assert_one_line_naming(err: pytest.ExceptionInfo, video: str, store_location: str) -> None:
    message = str(err.value)
    assert "\n" not in message and f"video {video}" in message
    assert f"dvx cache verify --store {store_location} --dataset davis --model tiny-sd" in message


def repair_and_rewrite(
    store: FeatureStore, group: RecipeGroup, damaged: str, data: dict, intact: dict[str, bytes]
) -> None:
    """verify reports exactly ``damaged``; --repair uncommits it; gc frees nothing intact; writing the video
    again restores every feature bit for bit."""
    report = verify(store)
    assert report.to_reextract() == {GROUP: [damaged]}, [p.line() for p in report.problems]
    assert verify(store, repair=True).uncommitted == {GROUP: [damaged]}
    apply_gc(store, plan_gc(store, min_age=0))
    for key, raw in intact.items():
        assert group.backend.get_bytes(key) == raw, f"intact {key} changed or was deleted"
    write_video(group, damaged, seed=VIDEOS[damaged])
    assert verify(store).ok
    fresh = FeatureStore.open(store.location, mode="r").groups()[0]
    assert fresh.index().videos() == sorted(VIDEOS)
    for video, arrays in data.items():
        for (t, b), x in arrays.items():
            np.testing.assert_array_equal(fresh.read(video, t, b), x)


@pytest.fixture
def filled(store_location: str) -> tuple[FeatureStore, RecipeGroup, dict]:
    store = FeatureStore.open(store_location, mode="a")
    group = store.create_group("davis", RECIPE)
    return store, group, fill(group)


# ---- chunks ----------------------------------------------------------------------------------------------
def _missing(group: RecipeGroup, key: str) -> None:
    group.backend.delete(key)


def _flipped(group: RecipeGroup, key: str) -> None:
    raw = bytearray(group.backend.get_bytes(key))
    raw[len(raw) // 3] ^= 0x04
    group.backend.put_bytes(key, bytes(raw))


def _truncated(group: RecipeGroup, key: str) -> None:
    group.backend.put_bytes(key, group.backend.get_bytes(key)[:-7])


@LOCAL_AND_MEMORY
@pytest.mark.parametrize(
    ("damage", "kind"),
    [(_missing, "missing-chunk"), (_flipped, "corrupt-chunk"), (_truncated, "corrupt-chunk")],
)
def test_a_damaged_chunk_is_named_by_every_read_and_repaired(
    filled: tuple, store_location: str, damage: Callable[[RecipeGroup, str], None], kind: str
) -> None:
    store, group, data = filled
    intact = intact_objects(group, ["a", "c"])
    key = chunk_keys(group, "b", 50, "up.2")[-1]
    damage(group, key)
    with pytest.raises(StoreError, match=rf"video b T=50 up.2: {kind} {key}") as err:
        group.read("b", 50, "up.2")
    assert_one_line_naming(err, "b", store_location)
    with pytest.raises(StoreError, match=kind):
        group.dataarray(50, "up.2").compute()  # the lazy view reads through the same checks
    quick = verify(store, quick=True)
    assert [p.kind for p in quick.problems] == (["missing-chunk"] if damage is _missing else [])
    repair_and_rewrite(store, group, "b", data, intact)


# ---- array metadata --------------------------------------------------------------------------------------
def _edit_json(group: RecipeGroup, key: str, edit: Callable[[dict], None]) -> None:
    meta = json.loads(group.backend.get_bytes(key))
    edit(meta)
    group.backend.put_bytes(key, json.dumps(meta).encode())  # zarr writes it indented


ARRAY_EDITS: dict[str, Callable[[dict], None]] = {
    "codec chain without its checksum": lambda m: m.update(codecs=m["codecs"][:1]),
    "byte order": lambda m: m["codecs"][0].update(configuration={"endian": "big"}),
    "fill value": lambda m: m.update(fill_value=0.0),
    "shape": lambda m: m.update(shape=[4, *m["shape"][1:]]),
    "chunking": lambda m: m["chunk_grid"]["configuration"].update(chunk_shape=[5, 4, 3, 5]),
    "re-indented only": lambda m: None,
}


@LOCAL_AND_MEMORY
@pytest.mark.parametrize("edit", sorted(ARRAY_EDITS))
def test_edited_array_metadata_is_refused_never_read(filled: tuple, store_location: str, edit: str) -> None:
    store, group, data = filled
    intact = intact_objects(group, ["a", "c"])
    key = f"{group.array_key('b', 0, 'up.1')}/zarr.json"
    _edit_json(group, key, ARRAY_EDITS[edit])
    with pytest.raises(StoreError, match=rf"video b T=0 up.1: bad-metadata {key} \(not the bytes") as err:
        group.read("b", 0, "up.1")
    assert_one_line_naming(err, "b", store_location)
    assert [p.kind for p in verify(store, quick=True).problems] == ["bad-metadata"]
    repair_and_rewrite(store, group, "b", data, intact)


def test_nul_filled_or_lost_array_metadata(filled: tuple, store_location: str) -> None:
    store, group, data = filled
    intact = intact_objects(group, ["a", "c"])
    meta = f"{group.array_key('b', 0, 'up.1')}/zarr.json"
    group.backend.put_bytes(meta, b"\0" * 400)
    with pytest.raises(StoreError, match="bad-metadata") as err:
        group.read("b", 0, "up.1")
    assert_one_line_naming(err, "b", store_location)
    group.backend.delete(f"{group.array_key('b', 50, 'up.2')}/zarr.json")
    with pytest.raises(StoreError, match="missing-array") as err:
        group.read("b", 50, "up.2")
    repair_and_rewrite(store, group, "b", data, intact)


# ---- commit records --------------------------------------------------------------------------------------
def _changed(value: Any) -> Any:
    """``value`` with one thing changed, of the same JSON type where possible."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value[:-1] + ("x" if not value.endswith("x") else "y") if value else "x"
    if isinstance(value, list):
        return [_changed(value[0]), *value[1:]] if value else ["x"]
    if isinstance(value, dict):
        if not value:
            return {"x": 1}
        first = sorted(value)[0]
        return {**value, first: _changed(value[first])}
    return "x"


def _record_fields() -> list[str]:
    from dvx.store.index import Commit

    return sorted(Commit("v", "g", (0,), ("b",), ("f",), ((0,),), (1, 1), {"b": (1,)}, 2).to_json())


@LOCAL_AND_MEMORY
@pytest.mark.parametrize("field", _record_fields())
def test_every_field_of_a_commit_record_changed(filled: tuple, store_location: str, field: str) -> None:
    """A changed byte in any field (a bit flip that still parses, an edit) fails the record's digest: the
    video is hidden, reads name it and the repair, verify names the record's file, and gc keeps the arrays
    that file names until the repair has uncommitted them."""
    store, group, data = filled
    intact = intact_objects(group, ["a", "c"])
    key = record_key(group, "b")
    record = json.loads(group.backend.get_bytes(key))
    record[field] = _changed(record[field])
    group.backend.put_json(key, record)
    index = group.index(refresh=True)
    assert index.videos() == ["a", "c"] and "b" in index.damaged
    with pytest.raises(StoreError, match=r"video b is not readable: commit record") as err:
        group.read("b", 0, "up.1")
    assert_one_line_naming(err, "b", store_location)
    [problem] = verify(store).problems
    assert (problem.kind, problem.key, problem.video) == ("bad-commit", key, "b")
    before = set(group.backend.list_prefix(group.path))
    apply_gc(store, plan_gc(store, min_age=0))  # before the repair: the arrays the record names stay
    assert {k for k in before if "/b~" in k} <= set(group.backend.list_prefix(group.path))
    repair_and_rewrite(store, group, "b", data, intact)


def test_a_record_naming_another_video_costs_that_video_nothing(filled: tuple) -> None:
    """A record of b whose content says "a" (with a digest that matches the changed content, as an edit by
    hand would) is refused by its file name: a stays readable, b's arrays are kept, and the repair deletes
    the file that exists, never a key built from the record's content."""
    store, group, data = filled
    intact = intact_objects(group, ["a", "c"])
    key = record_key(group, "b")
    record = json.loads(group.backend.get_bytes(key))
    record["video"] = "a"
    body = {k: v for k, v in record.items() if k != "digest"}
    group.backend.put_json(key, {**body, "digest": canonical_digest(body)})
    index = group.index(refresh=True)
    assert "a" in index.videos() and "file is b~" in index.damaged["b"]
    np.testing.assert_array_equal(group.read("a", 0, "up.1"), data["a"][(0, "up.1")])
    repair_and_rewrite(store, group, "b", data, intact)
    assert not group.backend.exists(key)  # the file that was read is gone; a's records all stay


def test_legacy_records_without_a_digest_still_read(filled: tuple) -> None:
    """Records written before records checked themselves read as before; verify counts them."""
    store, group, data = filled
    for video in VIDEOS:
        key = record_key(group, video)
        record = json.loads(group.backend.get_bytes(key))
        for new in ("format", "digest", "recipe", "arrays", "env"):
            record.pop(new)
        group.backend.put_json(key, record)
    fresh = FeatureStore.open(store.location, mode="r").groups()[0]
    assert fresh.index().videos() == sorted(VIDEOS)
    np.testing.assert_array_equal(fresh.read("b", 50, "up.2"), data["b"][(50, "up.2")])
    report = verify(store)
    assert report.ok and report.legacy == 3
    chunk = chunk_keys(group, "c", 0, "up.1")[0]
    group.backend.delete(chunk)  # structural checks still hold for legacy records: never the fill value
    with pytest.raises(StoreError, match=f"missing-chunk {chunk}"):
        fresh.read("c", 0, "up.1")


def test_a_nul_filled_commit_record(filled: tuple, store_location: str) -> None:
    store, group, data = filled
    intact = intact_objects(group, ["a", "c"])
    key = record_key(group, "b")
    group.backend.put_bytes(key, b"\0" * 900)
    group.index(refresh=True)
    with pytest.raises(StoreError, match="not valid JSON") as err:
        group.read("b", 0, "up.1")
    assert_one_line_naming(err, "b", store_location)
    repair_and_rewrite(store, group, "b", data, intact)


# ---- group metadata --------------------------------------------------------------------------------------
OTHER = replace(RECIPE, model="other", resolution=(32, 32))


@LOCAL_AND_MEMORY
@pytest.mark.parametrize("level", ["root", "dataset", "recipe", "timestep"])
@pytest.mark.parametrize("how", ["nul", "lost"])
def test_damaged_group_metadata_at_each_level(
    store_location: str, level: str, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = FeatureStore.open(store_location, mode="a")
    group = store.create_group("davis", RECIPE)
    data = fill(group)
    other = store.create_group("davis", OTHER)
    other_data = write_video(other, "z", seed=9)
    for t in (0, 50):
        write_timestep_attrs(group, t, {"T": t, "sigma": 0.5})
    intact = intact_objects(group, sorted(VIDEOS))
    key = {
        "root": "zarr.json",
        "dataset": "davis/zarr.json",
        "recipe": f"{group.path}/zarr.json",
        "timestep": f"{group.path}/t0050/zarr.json",
    }[level]
    before = group.backend.get_bytes(key)
    if how == "nul":
        group.backend.put_bytes(key, b"\0" * len(before))
    else:
        group.backend.delete(key)
    if level == "root":
        with pytest.raises(StoreError) as err:
            FeatureStore.open(store_location, mode="r")
        message = str(err.value)
        assert "\n" not in message and f"dvx cache verify --store {store_location} --repair" in message
        with pytest.raises(StoreError, match=r"root zarr\.json"):
            FeatureStore.open(store_location, mode="a")  # an extract neither writes into nor re-creates it
        repaired = FeatureStore.open(store_location, mode="a", restore_root=True)
    else:
        reader = FeatureStore.open(store_location, mode="r")
        with caplog.at_level("WARNING", logger="dvx.store.root"):
            names = sorted(g.recipe.model for g in reader.groups())
        if level == "recipe":  # that recipe is left out, with one line naming it; the other one is not
            assert names == ["other"] and len(caplog.records) == 1 and group.path in caplog.messages[0]
            with pytest.raises(RecipeMismatchError, match=rf"{group.path} .*verify --store"):
                reader.find("davis", "tiny-sd")
            if how == "nul":  # the next extract names the repair too (a lost one it simply re-creates)
                with pytest.raises(StoreError, match=group.path):
                    store.create_group("davis", RECIPE)
        else:  # the data is readable: it is checked against its own commit records
            assert names == ["other", "tiny-sd"]
            np.testing.assert_array_equal(
                reader.find("davis", "tiny-sd").read("b", 50, "up.2"), data["b"][(50, "up.2")]
            )
        np.testing.assert_array_equal(
            reader.find("davis", "other").read("z", 0, "up.1"), other_data[(0, "up.1")]
        )
        report = verify(reader)
        expect_problem = not (
            level == "timestep" and how == "lost"
        )  # no level recorded: nothing read needs it
        assert [p.kind for p in report.problems] == (["bad-group"] if expect_problem else [])
        assert verify(store, repair=True).restored == (
            [key.rsplit("/", 1)[0]] if level in ("dataset", "recipe") else []
        )
        repaired = store
    if level == "timestep":  # its attributes are the model's noise level: the same extract writes them again
        write_timestep_attrs(group, 50, {"T": 50, "sigma": 0.5})
    assert group.backend.get_bytes(key) == before  # restored byte for byte
    assert verify(repaired).ok
    again = FeatureStore.open(store_location, mode="r")
    assert sorted(g.recipe.model for g in again.groups()) == ["other", "tiny-sd"]
    for key_, raw in intact.items():
        assert again.backend.get_bytes(key_) == raw
    for video, arrays in data.items():
        for (t, b), x in arrays.items():
            np.testing.assert_array_equal(again.find("davis", "tiny-sd").read(video, t, b), x)


def test_array_creation_never_writes_a_parent_group(store_location: str) -> None:
    """zarr's create_array would re-create a removed recipe group with empty attributes, making the recipe
    unusable for ever ("written by a different recipe (<none>)")."""
    store = FeatureStore.open(store_location, mode="a")
    group = store.create_group("davis", RECIPE)
    vw = VideoWriter(group, "a", (0,), ("up.1",), chunk_frames=2)
    store.backend.delete(f"{group.path}/zarr.json")
    store.backend.delete("davis/zarr.json")
    vw.write(0, "up.1", 0, np.zeros((2, 4, 3, 5), np.float16), 2)
    written = store.backend.list_prefix("davis/")
    assert [k for k in written if k.endswith("zarr.json")] == [f"{vw.key(0, 'up.1')}/zarr.json"]


# ---- claims ------------------------------------------------------------------------------------------------
def test_a_claim_expiring_in_a_year_blocks_nothing(filled: tuple) -> None:
    store, group, _ = filled
    now = time.time()
    remote = {**process_identity(), "host": "node-17", "pid": 1}  # not provably dead: only expiry counts
    year = ClaimRecord("d", 1, HELD, remote, "tok", now, now, now + 365 * 86400)
    group.backend.put_json(layout.claim_key(group.path, "d", 1), year.to_json())
    [(rec, why)] = stale_claims(group, now).values()
    assert rec.seq == 1 and "beyond the" in why and "maximum" in why
    assert verify(store).stale_claims and verify(store).ok  # reported, but claims never hide data
    assert "cleared the claim" in unclaim(group, "d")  # stale: cleared without --force
    taken = Claims(group, ttl=60).try_acquire("d")
    assert taken is not None and taken.seq == 3
    valid = ClaimRecord("e", 1, HELD, remote, "tok", now, now, now + MAX_TTL / 2)
    group.backend.put_json(layout.claim_key(group.path, "e", 1), valid.to_json())
    assert Claims(group, ttl=60).try_acquire("e") is None  # a plausible claim is still respected
    with pytest.raises(StoreError, match="add --force"):
        unclaim(group, "e")
    assert "forced" in unclaim(group, "e", force=True)
    assert Claims(group, ttl=60).try_acquire("e") is not None


def test_unclaim_never_clears_a_live_process_on_this_machine(filled: tuple) -> None:
    _, group, _ = filled
    Claims(group, ttl=60).try_acquire("d")  # held by this very process
    with pytest.raises(StoreError, match="running on this machine"):
        unclaim(group, "d", force=True)


# ---- gc during an extraction -------------------------------------------------------------------------------
def test_gc_removing_a_recipe_during_an_extraction_poisons_nothing(filled: tuple) -> None:
    """gc removes a whole recipe between the moment an extraction checked its group and its first writes
    (or an object store loses the recipe's objects): the writer goes on, but nothing re-creates metadata
    with empty attributes, so the next extract re-creates the recipe group and verify --repair + that
    extract restore the store."""
    store, group, data = filled
    vw = VideoWriter(group, "b", (0, 50), ("up.1", "up.2"), chunk_frames=2)
    x = np.ones((5, 4, 3, 5), np.float16)
    vw.write(0, "up.1", 0, x[:2], 5)  # the writer has started on video b ...
    apply_gc(store, plan_gc(store, older_than=0, min_age=0))  # ... when gc removes the whole recipe
    assert store.backend.list_prefix(group.path) == []
    for t in (0, 50):
        for b in ("up.1", "up.2"):
            for start in range(2 if (t, b) == (0, "up.1") else 0, 5, 2):
                vw.write(t, b, start, x[start : start + 2], 5)
    vw.commit([f"{i:05d}" for i in range(5)], [[i] for i in range(5)], (48, 80))
    assert not store.backend.exists(f"{group.path}/zarr.json")  # never re-created with empty attributes
    assert FeatureStore.open(store.location, mode="r").groups() == []  # left out, with a warning
    again = store.create_group("davis", RECIPE)  # the next extract re-creates the group ...
    with pytest.raises(StoreError, match=r"video b T=0 up\.1: missing-array"):
        again.read("b", 0, "up.1")  # ... and what gc removed is an error, never NaN
    assert verify(store).to_reextract() == {GROUP: ["b"]}
    verify(store, repair=True)
    for video, seed in VIDEOS.items():
        write_video(again, video, seed=seed)  # the same extract computes what gc removed
    assert verify(store).ok
    again.index(refresh=True)
    for video, arrays in data.items():
        for (t, b), y in arrays.items():
            np.testing.assert_array_equal(again.read(video, t, b), y)


def test_each_kind_of_damage_on_s3(s3_bucket: str) -> None:
    """One of each kind of damage on S3 (a moto server on loopback), found and repaired together."""
    location = f"{s3_bucket}/store"
    store = FeatureStore.open(location, mode="a")
    group = store.create_group("davis", RECIPE)
    seeds = {**VIDEOS, "d": 4, "e": 5}
    data = {v: write_video(group, v, seed=s) for v, s in seeds.items()}
    intact = intact_objects(group, ["a"])
    _flipped(group, chunk_keys(group, "b", 50, "up.2")[1])
    _missing(group, chunk_keys(group, "c", 0, "up.1")[0])
    _edit_json(group, f"{group.array_key('d', 0, 'up.1')}/zarr.json", ARRAY_EDITS["fill value"])
    key = record_key(group, "e")
    record = json.loads(group.backend.get_bytes(key))
    group.backend.put_json(key, {**record, "frame_names": _changed(record["frame_names"])})
    group.backend.put_bytes(f"{group.path}/zarr.json", b"\0" * 300)
    with pytest.raises(StoreError, match=rf"{group.path} is unreadable .*verify --store {location} --repair"):
        FeatureStore.open(location, mode="r").find("davis", "tiny-sd")
    report = verify(FeatureStore.open(location, mode="r"))
    assert {(p.video, p.kind) for p in report.problems} == {("", "bad-group")}  # the group hides the rest
    repaired = verify(store, repair=True)
    assert repaired.restored == [group.path] and repaired.uncommitted == {GROUP: ["b", "c", "d", "e"]}
    apply_gc(store, plan_gc(store, min_age=0))
    assert all(group.backend.get_bytes(k) == raw for k, raw in intact.items())
    for video in "bcde":
        write_video(group, video, seed=seeds[video])
    assert verify(store).ok
    fresh = FeatureStore.open(location, mode="r").find("davis", "tiny-sd")
    for video, arrays in data.items():
        for (t, b), x in arrays.items():
            np.testing.assert_array_equal(fresh.read(video, t, b), x)
