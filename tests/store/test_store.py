"""The store contract: run against every backend (local disk, in-memory fsspec; S3 in test_s3.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import zarr

from dvx.errors import CacheMissError, RecipeMismatchError, StoreError
from dvx.store import layout
from dvx.store.codecs import CODECS
from dvx.store.recipe import Recipe
from dvx.store.root import FeatureStore
from dvx.store.writer import BackgroundWriter, VideoWriter, record_failure

RECIPE = Recipe(
    model="tiny-sd",
    family="sd",
    weights="0" * 64,
    dtype="float32",
    resolution=(64, 64),
    clip_len=None,
    noise={"kind": "ddpm"},
)


def feats(n: int, c: int = 4, h: int = 3, w: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(np.float16)


def write_video(
    group,
    video: str,
    timesteps=(0, 50),
    blocks=("up.1", "up.2"),
    n: int = 5,
    chunk: int = 2,
    seed: int = 0,
    commit: bool = True,
    codec: str = "raw",
    direct: bool | None = None,
):
    """``direct=False``: zarr's chunked layout (chunks of ``chunk`` frames) also on a local store."""
    vw = VideoWriter(group, video, timesteps, blocks, chunk_frames=chunk, codec=codec, direct=direct)
    data = {}
    for t in timesteps:
        for b in blocks:
            x = feats(n, seed=seed + t + len(b))
            data[(t, b)] = x
            for start in range(0, n, chunk):
                vw.write(t, b, start, x[start : start + chunk], n)
    if commit:
        vw.commit([f"{i:05d}" for i in range(n)], [[i] for i in range(n)], (48, 80))
    return data


def test_create_reopen_and_list(store_location: str) -> None:
    store = FeatureStore.open(store_location, mode="a")
    group = store.create_group("davis", RECIPE)
    assert store.datasets() == ["davis"]
    again = FeatureStore.open(store_location, mode="r")
    [g] = again.groups()
    assert g.recipe == RECIPE and g.path == f"davis/tiny-sd@{RECIPE.fp8}"
    # (that a reader refuses to write is checked by test_read_only_access_never_writes)
    assert store.create_group("davis", RECIPE).path == group.path  # idempotent


def test_commit_makes_a_video_visible_and_reads_back_exactly(store_location: str) -> None:
    group = FeatureStore.open(store_location, mode="a").create_group("davis", RECIPE)
    data = write_video(group, "blackswan", commit=False)
    assert group.index(refresh=True).videos() == []  # written but not committed: invisible
    with pytest.raises(CacheMissError, match="blackswan"):
        group.read("blackswan", 0, "up.1")
    data = write_video(group, "blackswan")
    reader = FeatureStore.open(store_location, mode="r").groups()[0]
    assert reader.index().videos() == ["blackswan"]
    for (t, b), x in data.items():
        np.testing.assert_array_equal(reader.read("blackswan", t, b), x)
        tens = reader.tensor("blackswan", t, b)
        assert tens.dtype.is_floating_point and tuple(tens.shape) == x.shape
    commit = reader.index().lookup("blackswan", 50, "up.2")
    assert commit.frame_names[0] == "00000" and commit.source_size == (48, 80)
    assert commit.shapes["up.1"] == (5, 4, 3, 5) and commit.nbytes == 2 * 2 * 5 * 4 * 3 * 5 * 2
    assert commit.written_by["pid"] > 0 and commit.written_at


def test_commit_refuses_incomplete_and_misaligned_writes(store_location: str) -> None:
    group = FeatureStore.open(store_location, mode="a").create_group("davis", RECIPE)
    vw = VideoWriter(group, "dog", (0,), ("up.1",), chunk_frames=2)
    vw.write(0, "up.1", 0, feats(2), 5)
    with pytest.raises(StoreError, match="incomplete"):
        vw.commit(["a"] * 5, [[i] for i in range(5)], (4, 4))
    with pytest.raises(ValueError, match="aligned"):
        vw.write(0, "up.1", 3, feats(2), 5)


def test_a_missing_chunk_is_an_error_naming_the_repair_never_the_fill_value(store_location: str) -> None:
    group = FeatureStore.open(store_location, mode="a").create_group("davis", RECIPE)
    data = write_video(group, "dog", direct=False)  # chunks of 2 frames
    key = group.array_key("dog", 50, "up.2")
    chunk = sorted(k for k in group.backend.list_prefix(key) if not k.endswith("zarr.json"))[1]
    group.backend.delete(chunk)
    arr = zarr.open_array(store=group.backend.store, path=key, mode="r")
    assert np.isnan(arr[2:4]).all()  # what zarr alone would hand a reader: the NaN fill value
    with pytest.raises(StoreError) as err:
        group.read("dog", 50, "up.2")
    message = str(err.value)
    assert "\n" not in message and f"{group.path} video dog T=50 up.2: missing-chunk {chunk}" in message
    repair = f"--store {store_location} --dataset davis --model tiny-sd --videos dog --repair"
    assert f"dvx cache verify {repair}" in message
    np.testing.assert_array_equal(group.read("dog", 0, "up.1"), data[(0, "up.1")])  # the others read


def test_frame_slices_read_and_check_only_their_chunks(store_location: str) -> None:
    group = FeatureStore.open(store_location, mode="a").create_group("davis", RECIPE)
    data = write_video(group, "dog", direct=False)[(50, "up.2")]  # 5 frames in chunks of 2: [0, 1] [2, 3] [4]
    maps = group.frames("dog", 50, "up.2")
    assert maps.shape == data.shape and len(maps) == 5
    for a, b in [(0, 5), (1, 4), (3, 5), (4, 5), (2, 2), (0, 99)]:
        np.testing.assert_array_equal(maps[a:b], data[a:b])
    key = group.array_key("dog", 50, "up.2")
    chunk = sorted(k for k in group.backend.list_prefix(key) if not k.endswith("zarr.json"))[1]
    group.backend.delete(chunk)  # frames 2..3
    np.testing.assert_array_equal(maps[0:2], data[0:2])  # a slice that does not need it reads
    with pytest.raises(StoreError, match="missing-chunk"):
        maps[1:3]  # one that does is damage, never the fill value
    with pytest.raises(TypeError):
        maps[[0, 2]]  # type: ignore[index]


def test_newest_commit_wins_and_partial_commits_merge(store_location: str) -> None:
    group = FeatureStore.open(store_location, mode="a").create_group("davis", RECIPE)
    write_video(group, "dog", timesteps=(0,), seed=1)
    second = write_video(group, "dog", timesteps=(0, 100), blocks=("up.1",), seed=2)
    index = group.index(refresh=True)
    assert index.timesteps() == [0, 100] and index.blocks() == ["up.1", "up.2"]
    np.testing.assert_array_equal(group.read("dog", 0, "up.1"), second[(0, "up.1")])
    assert index.has("dog", [0], ["up.1", "up.2"]) and not index.has("dog", [100], ["up.2"])
    assert index.missing("dog", [100], ["up.1", "up.2"]) == [(100, "up.2")]
    assert len(index.live_gens()) == 2


def test_dataarray_view_is_lazy_named_and_padded(store_location: str) -> None:
    group = FeatureStore.open(store_location, mode="a").create_group("davis", RECIPE)
    a = write_video(group, "a", n=5)
    b = write_video(group, "b", n=3, seed=7)
    da = group.dataarray(50, "up.2")
    assert da.dims == ("video", "frame", "channel", "y", "x") and da.shape == (2, 5, 4, 3, 5)
    assert list(da.n_frames.values) == [5, 3]
    assert hasattr(da.data, "dask")  # lazy
    np.testing.assert_array_equal(da.sel(video="a").values, a[(50, "up.2")])
    np.testing.assert_array_equal(da.sel(video="b").values[:3], b[(50, "up.2")])
    assert np.isnan(da.sel(video="b").values[3:]).all()


def test_read_only_access_never_writes(store_location: str) -> None:
    writer_store = FeatureStore.open(store_location, mode="a")
    group = writer_store.create_group("davis", RECIPE)
    write_video(group, "a")
    keys_before = writer_store.backend.list_prefix("")
    ro = FeatureStore.open(store_location, mode="r")
    g = ro.groups()[0]
    g.read("a", 0, "up.1")
    assert g.dataarray(0, "up.1").values.shape[0] == 1
    g.noise_levels()
    with pytest.raises(StoreError, match="read-only"):
        ro.create_group("davis", replace(RECIPE, seed=3))
    with pytest.raises(StoreError, match="read-only"):
        record_failure(g, "a", "nope")
    assert writer_store.backend.list_prefix("") == keys_before


def test_wrong_stores_are_refused(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("hi")
    with pytest.raises(StoreError, match="not empty"):
        FeatureStore.open(str(tmp_path / "notes"), mode="a")
    with pytest.raises(StoreError, match="no dvx feature store"):
        FeatureStore.open(str(tmp_path / "nothing"), mode="r")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}}))
    with pytest.raises(StoreError, match="not a dvx feature store"):
        FeatureStore.open(str(foreign), mode="a")
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "zarr.json").write_text(
        json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {"dvx": {"schema": 99}}})
    )
    with pytest.raises(StoreError, match="newer"):
        FeatureStore.open(str(newer), mode="r")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="not a directory"):
        FeatureStore.open(str(tmp_path / "file"), mode="a")
    with pytest.raises(StoreError, match="not writable"):
        FeatureStore.open("/proc/dvx-cannot-write-here", mode="a")


def test_a_group_written_by_another_recipe_is_refused(store_location: str) -> None:
    store = FeatureStore.open(store_location, mode="a")
    group = store.create_group("davis", RECIPE)
    other = replace(RECIPE, resolution=(32, 32))
    # forge a collision: the other recipe's attrs under this recipe's group name
    store.backend.write_group(
        group.path, {layout.RECIPE_ATTR: other.to_json(), "fingerprint": other.fingerprint}
    )
    with pytest.raises(RecipeMismatchError, match=r"resolution: \[32, 32\] != \[64, 64\]"):
        store.create_group("davis", RECIPE)


def test_find_selects_by_model_recipe_and_constraints(store_location: str) -> None:
    store = FeatureStore.open(store_location, mode="a")
    store.create_group("davis", RECIPE)
    store.create_group("davis", replace(RECIPE, resolution=(32, 32)))
    with pytest.raises(CacheMissError, match="no features of model 'svd'"):
        store.find("davis", "svd")
    with pytest.raises(RecipeMismatchError, match="several tiny-sd recipes"):
        store.find("davis", "tiny-sd")
    assert store.find("davis", "tiny-sd", constraints={"resolution": (32, 32)}).recipe.resolution == (32, 32)
    assert store.find("davis", "tiny-sd", recipe=RECIPE.fp8).recipe == RECIPE
    with pytest.raises(RecipeMismatchError, match="resolution: store has"):
        store.find("davis", "tiny-sd", constraints={"resolution": (16, 16)})


def test_cache_miss_names_what_is_missing_and_how_to_extract(store_location: str) -> None:
    group = FeatureStore.open(store_location, mode="a").create_group("davis", RECIPE)
    write_video(group, "a", timesteps=(0,))
    with pytest.raises(CacheMissError) as err:
        group.require(["a", "b"], [0, 50], ["up.1"], data_root="/data/DAVIS")
    msg = str(err.value)
    assert "T=0,50" in msg and "up.1" in msg and "2 video(s): a, b" in msg
    assert (
        f"`dvx extract --model tiny-sd --dataset davis --data-root /data/DAVIS --store {store_location} "
        "--timesteps 0,50 --blocks up.1 --resolution 64x64 --dtype float32`" in msg
    )


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_every_codec_round_trips(tmp_path: Path, codec: str) -> None:
    group = FeatureStore.open(str(tmp_path / "s"), mode="a").create_group("davis", RECIPE)
    data = write_video(group, "a", codec=codec)
    for (t, b), x in data.items():
        np.testing.assert_array_equal(group.read("a", t, b), x)


def test_checksums_detect_a_corrupted_chunk(tmp_path: Path) -> None:
    group = FeatureStore.open(str(tmp_path / "s"), mode="a").create_group("davis", RECIPE)
    write_video(group, "a")
    key = group.array_key("a", 0, "up.1")
    chunk = next(p for p in (tmp_path / "s" / key).rglob("*") if p.is_file() and p.name != "zarr.json")
    raw = bytearray(chunk.read_bytes())
    raw[10] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    with pytest.raises(Exception, match="checksum"):
        group.read("a", 0, "up.1")


def test_failures_are_recorded(store_location: str) -> None:
    group = FeatureStore.open(store_location, mode="a").create_group("davis", RECIPE)
    record_failure(group, "bad", "truncated jpeg")
    assert group.failures()["bad"].reason == "truncated jpeg"


def test_background_writer_runs_in_order_and_reraises() -> None:
    seen: list[int] = []
    with BackgroundWriter(max_pending=2) as bw:
        for i in range(10):
            bw.submit(seen.append, i)
        bw.drain()
    assert seen == list(range(10))

    def boom() -> None:
        raise OSError("disk full")

    bw = BackgroundWriter()
    bw.submit(boom)
    with pytest.raises(OSError, match="disk full"):
        bw.drain()
    bw.close()


def test_big_blocks_get_several_chunks_that_divide_the_unit(tmp_path: Path) -> None:
    """zarr's chunked layout (object stores, compressing codecs; forced here on local disk)."""
    group = FeatureStore.open(str(tmp_path / "s"), mode="a").create_group("davis", RECIPE)
    vw = VideoWriter(
        group,
        "a",
        (0,),
        ("big", "small"),
        chunk_frames=14,
        target_chunk_bytes=3 * 4 * 3 * 5 * 2,
        direct=False,
    )
    big, small = feats(20), feats(20, c=1, h=1, w=1)
    for start in (0, 14):
        vw.write(0, "big", start, big[start : start + 14], 20)
        vw.write(0, "small", start, small[start : start + 14], 20)
    vw.commit([str(i) for i in range(20)], [[i] for i in range(20)], (4, 4))
    store = group.backend.store
    chunks = {b: zarr.open_array(store=store, path=vw.key(0, b)).chunks[0] for b in ("big", "small")}
    assert chunks == {"big": 2, "small": 14}  # 3 frames of "big" fit: the largest divisor of 14 is 2
    np.testing.assert_array_equal(group.read("a", 0, "big"), big)
    np.testing.assert_array_equal(group.read("a", 0, "small"), small)


def test_a_recipe_from_a_newer_dvx_hides_nothing_else(
    store_location: str, caplog: pytest.LogCaptureFixture
) -> None:
    from dvx.store.inventory import summarize

    store = FeatureStore.open(store_location, mode="a")
    store.create_group("davis", replace(RECIPE, model="other"))
    mine = store.create_group("davis", RECIPE)
    newer = {**replace(RECIPE, seed=9).to_json(), "future_field": 1}  # written by a newer dvx
    path = layout.recipe_key("davis", RECIPE.model, "feedf00d")
    store.backend.write_group(path, {layout.RECIPE_ATTR: newer, "fingerprint": "feedf00d" + "0" * 56})
    reader = FeatureStore.open(store_location, mode="r")
    with caplog.at_level("WARNING", logger="dvx.store.root"):
        assert sorted(g.recipe.model for g in reader.groups()) == ["other", "tiny-sd"]
        assert [s.model for s in summarize(reader, model="other")] == ["other"]
        assert reader.find("davis", "other").recipe.model == "other"
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and path in warned[0] and "future_field" in warned[0]  # once, naming it
    with pytest.raises(RecipeMismatchError, match=rf"{path} cannot be read.*future_field"):
        reader.find("davis", RECIPE.model)
    assert reader.find("davis", RECIPE.model, recipe=RECIPE.fp8).path == mine.path  # chosen by name: fine
    with pytest.raises(RecipeMismatchError, match=path):
        reader.find("davis", RECIPE.model, recipe="feed")


def test_a_local_slot_is_three_filesystem_entries_and_zarr_reads_it(tmp_path) -> None:
    """Local store, raw codec: each stored (video, T, block) is its folder, its zarr.json and one chunk file
    under a flat key, and those bytes are exactly what zarr's own pipeline reads."""
    group = FeatureStore.open(str(tmp_path / "s"), mode="a").create_group("davis", RECIPE)
    data = write_video(group, "dog", n=5, chunk=2)  # written in 3 pieces: [0, 1] [2, 3] [4]
    for (t, b), x in data.items():
        folder = tmp_path / "s" / group.array_key("dog", t, b)
        inside = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
        assert inside == ["c.0.0.0.0", "zarr.json"]  # + the folder itself: 3 entries
        arr = zarr.open_array(store=group.backend.store, path=group.array_key("dog", t, b), mode="r")
        np.testing.assert_array_equal(arr[:], x)
        np.testing.assert_array_equal(group.read("dog", t, b), x)
        np.testing.assert_array_equal(group.frames("dog", t, b)[3:5], x[3:5])


def test_old_nested_chunk_layout_stays_readable(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrays written before flat keys (zarr's nested ``c/0/0/0/0``, chunks of 2 frames) read and verify."""
    import dvx.store.writer as writer_mod
    from dvx.store.verify import verify

    monkeypatch.setattr(writer_mod, "CHUNK_KEY_ENCODING", {"name": "default", "separator": "/"})
    store = FeatureStore.open(str(tmp_path / "s"), mode="a")
    group = store.create_group("davis", RECIPE)
    data = write_video(group, "dog", direct=False)
    key = group.array_key("dog", 50, "up.2")
    assert (tmp_path / "s" / key / "c" / "1" / "0" / "0" / "0").is_file()
    monkeypatch.undo()
    for (t, b), x in data.items():
        np.testing.assert_array_equal(group.read("dog", t, b), x)
    assert verify(store).ok and verify(store).chunks == 4 * 3
    (tmp_path / "s" / key / "c" / "1" / "0" / "0" / "0").unlink()
    with pytest.raises(StoreError, match=rf"missing-chunk {key}/c/1/0/0/0"):
        group.read("dog", 50, "up.2")


def test_direct_writes_come_in_frame_order(tmp_path) -> None:
    group = FeatureStore.open(str(tmp_path / "s"), mode="a").create_group("davis", RECIPE)
    vw = VideoWriter(group, "dog", (0,), ("up.1",), chunk_frames=2)
    vw.write(0, "up.1", 0, feats(2), 5)
    with pytest.raises(ValueError, match="expected frame 2"):
        vw.write(0, "up.1", 4, feats(1), 5)
