"""Reads of committed arrays (dvx/store/reader.py) and the chunking that bounds them (dvx/store/writer.py):
a frame-range read of a long video reads and checks only the chunks holding its frames, on every backend,
and a direct (local, raw) array is cut into chunks exactly as zarr's own pipeline would write them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import dvx.store.reader as reader_mod
from dvx.errors import StoreError
from dvx.store.root import FeatureStore
from dvx.store.writer import VideoWriter
from tests.store.test_store import RECIPE, feats

FRAME = 4 * 3 * 5 * 2  # bytes of one (4, 3, 5) float16 frame, as feats() makes them


def write_long(group: Any, video: str, n: int, unit: int, frames_per_chunk: int) -> np.ndarray:
    """A video of ``n`` frames at (0, "up.2"), written a forward unit of ``unit`` frames at a time, chunked
    ``frames_per_chunk`` frames at most (direct arrays on local disk, zarr's chunks elsewhere)."""
    bound = frames_per_chunk * FRAME
    vw = VideoWriter(
        group, video, (0,), ("up.2",), chunk_frames=unit, target_chunk_bytes=bound, direct_chunk_bytes=bound
    )
    x = feats(n, seed=3)
    for start in range(0, n, unit):
        vw.write(0, "up.2", start, x[start : start + unit], n)
    vw.commit([f"{i:05d}" for i in range(n)], [[i] for i in range(n)], (48, 80))
    return x


@dataclass
class Reads:
    """Chunk files opened and chunk bytes read, through whichever path the backend's reads take."""

    opened: list[str] = field(default_factory=list)
    nbytes: int = 0


@contextmanager
def counting(group: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Reads]:
    reads = Reads()
    if reader_mod._local_root(group.backend) is not None:  # the direct reader: plain files
        real_open, real_preadv, real_pread = open, os.preadv, os.pread

        def counted_open(path: Any, *args: Any, **kwargs: Any) -> Any:
            if os.path.basename(str(path)).startswith("c"):
                reads.opened.append(str(path))
            return real_open(path, *args, **kwargs)

        def counted_preadv(fd: int, buffers: list[Any], offset: int) -> int:
            got = real_preadv(fd, buffers, offset)
            reads.nbytes += got
            return got

        def counted_pread(fd: int, n: int, offset: int) -> bytes:
            got = real_pread(fd, n, offset)
            reads.nbytes += len(got)
            return got

        monkeypatch.setattr(reader_mod, "open", counted_open, raising=False)
        monkeypatch.setattr(os, "preadv", counted_preadv)
        monkeypatch.setattr(os, "pread", counted_pread)
    else:  # zarr's pipeline: every chunk comes through the store's get
        store = group.backend.store
        real_get = store.get

        async def counted_get(key: str, *args: Any, **kwargs: Any) -> Any:
            buf = await real_get(key, *args, **kwargs)
            if not key.endswith("zarr.json"):
                reads.opened.append(key)
                reads.nbytes += 0 if buf is None else len(buf)
            return buf

        monkeypatch.setattr(store, "get", counted_get)
    try:
        yield reads
    finally:
        monkeypatch.undo()


def test_a_frame_range_read_of_a_long_video_reads_only_its_chunks(
    store_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = FeatureStore.open(store_location, mode="a").create_group("davis", RECIPE)
    x = write_long(group, "long", n=40, unit=4, frames_per_chunk=4)  # 10 chunks of 4 frames
    maps = group.frames("long", 0, "up.2")
    with counting(group, monkeypatch) as reads:
        part = maps[9:14]  # frames 9..13: chunks 2 (8..11) and 3 (12..15)
    np.testing.assert_array_equal(part, x[9:14])
    assert sorted(os.path.basename(k).split(".")[1] for k in reads.opened) == ["2", "3"]
    assert reads.nbytes == 2 * (4 * FRAME + 4)  # two whole chunks with their checksums, nothing more
    with counting(group, monkeypatch) as reads:
        whole = group.read("long", 0, "up.2")
    np.testing.assert_array_equal(whole, x)
    assert len(reads.opened) == 10 and reads.nbytes == 10 * (4 * FRAME + 4)


def test_a_damaged_chunk_fails_only_the_ranges_that_need_it(store_location: str) -> None:
    group = FeatureStore.open(store_location, mode="a").create_group("davis", RECIPE)
    x = write_long(group, "long", n=40, unit=4, frames_per_chunk=4)
    key = group.array_key("long", 0, "up.2")
    chunks = sorted(k for k in group.backend.list_prefix(key) if not k.endswith("zarr.json"))
    assert len(chunks) == 10
    raw = group.backend.get_bytes(chunks[5])  # frames 20..23
    assert raw is not None
    group.backend.put_bytes(chunks[5], raw[:10] + bytes([raw[10] ^ 1]) + raw[11:])
    maps = group.frames("long", 0, "up.2")
    np.testing.assert_array_equal(maps[0:20], x[0:20])
    np.testing.assert_array_equal(maps[24:40], x[24:40])
    with pytest.raises(StoreError, match=f"corrupt-chunk {chunks[5]}"):
        maps[19:21]
    group.backend.delete(chunks[5])
    with pytest.raises(StoreError, match=f"missing-chunk {chunks[5]}"):
        group.read("long", 0, "up.2")


@pytest.mark.parametrize(
    ("n", "unit", "per_chunk"), [(20, 14, 3), (20, 3, 7), (5, 2, 99), (7, 7, 1), (13, 4, 6), (112, 14, 5)]
)
def test_direct_arrays_are_chunked_under_the_bound_exactly_as_zarr_writes_them(
    tmp_path: Path, n: int, unit: int, per_chunk: int
) -> None:
    """The fewest equal chunks of whole frames under the bound (one where the array fits), the last one
    padded with the fill value: byte for byte the files zarr writes for the same metadata."""
    group = FeatureStore.open(str(tmp_path / "s"), mode="a").create_group("davis", RECIPE)
    x = write_long(group, "a", n=n, unit=unit, frames_per_chunk=per_chunk)
    key = group.array_key("a", 0, "up.2")
    arr = zarr.open_array(store=group.backend.store, path=key, mode="r")
    step = arr.chunks[0]
    count = -(-n // step)
    if n <= per_chunk:
        assert step == n and count == 1  # an array under the bound is one chunk
    else:  # under the bound, at least half of it, and the least padding of such lengths
        lengths = range(-(-per_chunk // 2), per_chunk + 1)
        assert step in lengths and -n % step == min(-n % k for k in lengths)
    folder = tmp_path / "s" / key
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*(f"c.{i}.0.0.0" for i in range(count)), "zarr.json"]
    )
    np.testing.assert_array_equal(arr[:], x)
    twin = zarr.create_array(
        store=str(tmp_path / "zarr"),
        shape=arr.shape,
        chunks=arr.chunks,
        dtype="float16",
        fill_value=np.float16("nan"),
        compressors=arr.compressors,
        filters=None,
        chunk_key_encoding={"name": "default", "separator": "."},
        config={"write_empty_chunks": True},
    )
    twin[:] = x
    for i in range(count):
        assert (folder / f"c.{i}.0.0.0").read_bytes() == (tmp_path / "zarr" / f"c.{i}.0.0.0").read_bytes()
    maps = group.frames("a", 0, "up.2")
    for a in range(n):
        for b in range(a + 1, n + 1):
            np.testing.assert_array_equal(maps[a:b], x[a:b])


def test_the_tracker_reads_a_long_video_a_window_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tracking through a long stored video never holds more than its key window: each read covers at most
    the window's frames (one chunk per frame here), and the whole video is read about once."""
    from dvx.probe.tracking import chunk_sizes, track_points

    group = FeatureStore.open(str(tmp_path / "s"), mode="a").create_group("davis", RECIPE)
    n = 60
    x = write_long(group, "long", n=n, unit=4, frames_per_chunk=1)
    max_bytes = 2 * 4 * 3 * 5 * 4 * 5  # key windows of 5 frames (float32 keys, 4 channels, 15 cells)
    per_frame, _ = chunk_sizes(2, n, 4, 15, max_bytes)
    assert 1 < per_frame < n
    sizes: list[int] = []
    real_read = reader_mod._read_direct

    def recorded(*args: Any, **kwargs: Any) -> np.ndarray:
        out = real_read(*args, **kwargs)
        sizes.append(out.nbytes)
        return out

    monkeypatch.setattr(reader_mod, "_read_direct", recorded)
    with counting(group, monkeypatch) as reads:
        monkeypatch.setattr(reader_mod, "_read_direct", recorded)
        res = track_points(
            group.frames("long", 0, "up.2"),
            np.array([0, 30]),
            np.array([[0.5, 0.5], [0.2, 0.7]]),
            np.arange(n),
            (48, 80),
            max_bytes=max_bytes,
        )
    want = track_points(x, np.array([0, 30]), np.array([[0.5, 0.5], [0.2, 0.7]]), np.arange(n), (48, 80))
    np.testing.assert_allclose(res.xy, want.xy, atol=1e-6)
    assert max(sizes) <= per_frame * FRAME  # never more than one key window in memory
    assert reads.nbytes <= (n + 2) * (FRAME + 4)  # every frame once, plus the two query frames
