"""``verify`` finds flipped, truncated and missing chunks and bad records on every backend; ``repair``
uncommits exactly the damaged videos."""

from __future__ import annotations

import pytest

from dvx.errors import StoreError
from dvx.store import layout
from dvx.store.gc import apply_gc, plan_gc
from dvx.store.root import FeatureStore
from dvx.store.verify import verify
from tests.store.test_store import RECIPE, write_video


def chunk_keys(group, video: str, t: int, block: str) -> list[str]:
    key = group.array_key(video, t, block)
    return [k for k in group.backend.list_prefix(key) if not k.endswith("zarr.json")]


def test_verify_names_every_kind_of_damage_and_repair_uncommits_it(store_location: str) -> None:
    store = FeatureStore.open(store_location, mode="a")
    group = store.create_group("davis", RECIPE)
    for i, video in enumerate(["ok", "flip", "cut", "gone", "nometa", "badrec"]):
        # flip and cut: the default layout (local disk: one chunk per array); the others chunks of 2 frames
        write_video(group, video, seed=i, direct=None if video in ("flip", "cut") else False)
    b = group.backend
    on_disk = sum(
        len(chunk_keys(group, v, t, k)) for v in ("flip", "cut") for t in (0, 50) for k in ("up.1", "up.2")
    )
    assert verify(store).ok and verify(store).chunks == 4 * 4 * 3 + on_disk  # 4 videos x 4 arrays x 3 chunks
    key = chunk_keys(group, "flip", 50, "up.2")[-1]
    raw = bytearray(b.get_bytes(key))
    raw[7] ^= 0x10
    b.put_bytes(key, bytes(raw))
    key = chunk_keys(group, "cut", 0, "up.1")[0]
    b.put_bytes(key, b.get_bytes(key)[:-9])
    b.delete(chunk_keys(group, "gone", 0, "up.2")[2])
    b.delete(group.array_key("nometa", 50, "up.1") + "/zarr.json")
    commit = group.index().lookup("badrec", 0, "up.1")
    b.put_bytes(layout.commit_key(group.path, "badrec", commit.gen), b'{"video": "badrec", "gen"')

    report = verify(FeatureStore.open(store_location, mode="r"))
    kinds = {p.video: p.kind for p in report.problems}
    assert kinds == {
        "flip": "corrupt-chunk",
        "cut": "corrupt-chunk",
        "gone": "missing-chunk",
        "nometa": "missing-array",
        "badrec": "bad-commit",
    }
    assert report.to_reextract() == {f"davis/{RECIPE.name}": ["badrec", "cut", "flip", "gone", "nometa"]}
    flip = next(p for p in report.problems if p.video == "flip")
    assert (flip.t, flip.block) == (50, "up.2") and "checksum" in flip.detail
    quick = verify(FeatureStore.open(store_location, mode="r"), quick=True)
    assert {p.video for p in quick.problems} == {"gone", "nometa", "badrec"}  # no decoding, no checksums

    repaired = verify(store, repair=True)
    assert repaired.uncommitted == {f"davis/{RECIPE.name}": ["badrec", "cut", "flip", "gone", "nometa"]}
    after = verify(FeatureStore.open(store_location, mode="r"))
    assert after.ok and after.videos == 1
    assert group.index(refresh=True).videos() == ["ok"]
    # the damaged arrays are now unreferenced leftovers: gc frees them, the intact video stays
    apply_gc(store, plan_gc(store, min_age=0))
    assert [k for k in b.list_prefix(group.path) if "/t0" in k and "~" in k and "/ok~" not in k] == []
    assert verify(store).ok


def test_repair_of_a_newer_commit_reveals_the_intact_older_one(store_location: str) -> None:
    store = FeatureStore.open(store_location, mode="a")
    group = store.create_group("davis", RECIPE)
    old = write_video(group, "dog", timesteps=(0,), blocks=("up.1",), seed=1)
    write_video(group, "dog", timesteps=(0, 100), blocks=("up.1",), seed=2)
    key = chunk_keys(group, "dog", 100, "up.1")[0]
    group.backend.put_bytes(key, b"\x00" * 12)
    report = verify(store, repair=True)
    assert report.uncommitted == {f"davis/{RECIPE.name}": ["dog"]}
    index = group.index(refresh=True)
    assert index.has("dog", [0], ["up.1"]) and not index.has("dog", [100], ["up.1"])  # extract redoes T=100
    assert (group.read("dog", 0, "up.1") == old[(0, "up.1")]).all()
    assert verify(store).ok


def test_verify_can_be_narrowed_and_refuses_repair_read_only(store_location: str) -> None:
    from dvx.errors import StoreError

    store = FeatureStore.open(store_location, mode="a")
    group = store.create_group("davis", RECIPE)
    write_video(group, "a")
    write_video(group, "b")
    group.backend.delete(chunk_keys(group, "b", 0, "up.1")[0])
    assert verify(store, videos=["a"]).ok and verify(store, dataset="other").groups == 0
    assert not verify(store, model=RECIPE.model).ok
    with pytest.raises(StoreError, match="read-only"):
        verify(FeatureStore.open(store_location, mode="r"), repair=True)


def test_verify_lists_each_group_once_not_once_per_array(
    store_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvx.store.backend import Backend

    store = FeatureStore.open(store_location, mode="a")
    group = store.create_group("davis", RECIPE)
    for video in ("a", "b", "c"):
        write_video(group, video, direct=False)  # 3 videos x 2 T x 2 blocks = 12 arrays, chunks of 2 frames
    group.backend.delete(chunk_keys(group, "b", 50, "up.2")[1])
    listed = []
    stat_prefix = Backend.stat_prefix
    monkeypatch.setattr(Backend, "stat_prefix", lambda self, p: listed.append(p) or stat_prefix(self, p))
    report = verify(store, quick=True)
    # on an object store: one LIST per 1,000 objects, not one per array; on local disk names only
    assert listed == ([] if group.backend.is_local else [group.path])
    assert [(p.video, p.kind) for p in report.problems] == [("b", "missing-chunk")] and report.arrays == 12


def test_repair_of_some_videos_leaves_the_others_committed(store_location: str) -> None:
    store = FeatureStore.open(store_location, mode="a")
    group = store.create_group("davis", RECIPE)
    write_video(group, "a")
    write_video(group, "b")
    group.backend.delete(chunk_keys(group, "a", 0, "up.1")[0])
    bad = layout.commit_key(group.path, "b", "0123456789ab")
    group.backend.put_bytes(bad, b'{"video": "b"')  # an unreadable record of another video
    report = verify(store, videos=["a"], repair=True)
    assert {p.video for p in report.problems} == {"a"}
    assert report.uncommitted == {f"davis/{RECIPE.name}": ["a"]}
    prefix = layout.commits_prefix(group.path)
    names = [k[len(prefix) :] for k in group.backend.list_prefix(prefix)]
    assert [n.split("/")[0] for n in names] == ["b", "b"]  # b's records, the bad one too, stay
    assert verify(store, videos=["b"], repair=True).uncommitted == {f"davis/{RECIPE.name}": ["b"]}
    assert not group.backend.exists(bad) and group.index(refresh=True).videos() == ["b"]


@pytest.mark.parametrize("content", [b'{"video": "b"', b'{"video": "b", "gen": "0123456789ab"}'])
def test_a_damaged_record_hides_its_video_and_names_the_repair(store_location: str, content: bytes) -> None:
    """Valid JSON with a field missing used to be a bare KeyError; skipping only the record instead could
    serve the video's older, superseded features: the whole video is hidden, and reading it names the
    repair. The other videos stay readable."""
    store = FeatureStore.open(store_location, mode="a")
    group = store.create_group("davis", RECIPE)
    write_video(group, "a")
    write_video(group, "b")
    bad = layout.commit_key(group.path, "b", "0123456789ab")
    group.backend.put_bytes(bad, content)
    for index in (group.index(refresh=True), group.video_index("b")):
        assert "b" not in index.videos() and not index.has("b", [0], ["up.1"]) and bad in index.damaged["b"]
    with pytest.raises(StoreError, match=r"b is not readable: commit record .*--videos b --repair") as e:
        group.read("b", 0, "up.1")
    assert bad in str(e.value)
    assert group.index().videos() == ["a"] and group.read("a", 0, "up.1").shape == (5, 4, 3, 5)
    verify(store, repair=True)
    assert group.index(refresh=True).videos() == ["a", "b"]  # b's intact older commit is visible again
