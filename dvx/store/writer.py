"""Writing one video's features: fresh-generation arrays, then one atomic commit record.

Protocol (see docs/store.md):
1. every (T, block) array of the video is created under a new generation ``<video>~<gen>``: no reader
   follows it and no other writer shares it, so two writers never touch the same chunk;
2. arrays are written in whole chunks (one chunk per forward unit along the frame axis);
3. the commit record ``_index/commits/<video>~<gen>.json`` is written last, atomically. A crash at any
   earlier instant leaves only unreferenced arrays (removed by ``dvx cache gc``), never a visible
   half-written video.

An array's ``zarr.json`` is written here, explicitly, and nothing else: zarr's ``create_array`` would also
create every missing parent group (the recipe, the dataset, the store root) with empty attributes, which
turns a recipe that ``gc`` or a lossy object store removed meanwhile into a group of "a different recipe"
for ever. The record keeps the sha256 of each array's ``zarr.json`` bytes and its chunk count, so readers
check arrays against it (dvx/store/reader.py), and the compute environment that produced them.

**Direct chunk files.** On a local (or shared POSIX) store with the default ``raw`` codec, an array is
chunked along frames only, and only where it must be: an array of at most :data:`DIRECT_CHUNK_BYTES` is one
chunk, a bigger one (a long video at a large block) is cut into the fewest equal chunks of whole frames that
each stay under it, so a frame-range read (the tracker's windows) reads and checks only the chunks holding
its frames instead of the whole array. Chunks use flat keys (``c.3.0.0.0``: no nested chunk folders) and are
written here without zarr's encode pipeline: the forward units are appended to the chunk files in frame
order as they come, each chunk's crc32c kept running and appended when its last frame is in (the last
chunk padded with the NaN fill value to its full size first, as zarr pads it). The bytes are exactly what
zarr's ``bytes`` + ``crc32c`` chain writes for those chunks, so zarr reads them like any other. A stored
(video, T, block) of one chunk is then 3 filesystem entries (the array folder, its ``zarr.json``, the
chunk), and no chunk's bytes are copied on their way to the disk. Other codecs and object stores keep
zarr's pipeline, with chunks of about :data:`TARGET_CHUNK_BYTES` (flat keys too).
"""

from __future__ import annotations

import functools
import math
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from zarr.storage import LocalStore

from dvx.errors import StoreError
from dvx.store import layout
from dvx.store.backend import DamagedObjectError, is_storage_failure, storage_error
from dvx.store.codecs import DEFAULT_CODEC, compressors_for
from dvx.store.group import RecipeGroup
from dvx.store.index import ArrayEntry, Commit, Failure, array_slot, new_gen, now_iso, writer_identity
from dvx.store.reader import metadata_digest

#: chunks of about this size read an SVD clip faster than one 165 MB chunk per clip (zarr 3.1 decodes the
#: chunks of an array in parallel, each chunk serially): 1.5-2.1 vs 0.35-1.1 GB/s in repeated runs of
#: benchmarks/bench_store.py on this shared 2-core machine; writes came out about even (docs/benchmarks.md)
TARGET_CHUNK_BYTES = 16 * 2**20

#: direct (local, raw) arrays: one chunk up to this size, else the fewest equal chunks of whole frames that
#: stay under it. Bounds what a frame-range read reads and checks (a 100-frame SD up.2 array at 480p is
#: 0.8 GB: one chunk made every window of the tracker read all of it); small arrays stay one chunk, so the
#: files per stored slot do not grow
DIRECT_CHUNK_BYTES = 64 * 2**20

#: chunk keys of new arrays: ``c.0.0.0.0`` (one file in the array's folder) instead of zarr's nested
#: default ``c/0/0/0/0`` (four folders per chunk); arrays written before keep theirs (zarr.json says which)
CHUNK_KEY_ENCODING = {"name": "default", "separator": "."}


class VideoWriter:
    """Accumulates one video's arrays under a fresh generation; :meth:`commit` makes them visible."""

    def __init__(
        self,
        group: RecipeGroup,
        video: str,
        timesteps: Sequence[int],
        blocks: Sequence[str],
        chunk_frames: int,
        codec: str = DEFAULT_CODEC,
        target_chunk_bytes: int = TARGET_CHUNK_BYTES,
        direct: bool | None = None,
        direct_chunk_bytes: int = DIRECT_CHUNK_BYTES,
    ) -> None:
        """``chunk_frames``: stored frames per forward unit; every write starts at a multiple of it. Each
        array's chunk is the largest divisor of it whose bytes stay under ``target_chunk_bytes``, so writes
        always cover whole chunks (never a read-modify-write) and big blocks get several chunks that zarr
        encodes and decodes in parallel. ``direct`` (default: on a local store with the ``raw`` codec):
        chunks of at most ``direct_chunk_bytes`` (one per array where it fits), appended to without zarr
        (module docstring); False forces zarr's chunked writes."""
        layout.check_name("video", video)
        self.group = group
        self.video = video
        self.timesteps = tuple(timesteps)
        self.blocks = tuple(blocks)
        self.chunk_frames = max(1, int(chunk_frames))
        self.target_chunk_bytes = target_chunk_bytes
        self.direct_chunk_bytes = max(1, int(direct_chunk_bytes))
        self.codec = codec
        self.compressors = compressors_for(codec)  # an unknown codec fails here, before any write
        store = group.backend.store
        #: local store, raw codec: chunks under direct_chunk_bytes, appended to by hand (module docstring)
        can = isinstance(store, LocalStore) and codec == "raw"
        self._root = Path(store.root) if can and direct is not False else None
        self._crc: dict[tuple[int, str], int] = {}  # direct arrays: crc32c of the chunk being appended to
        self._names: dict[tuple[int, str], tuple[str, ...]] = {}  # direct arrays: their chunk file names
        self.gen = new_gen()
        self._arrays: dict[tuple[int, str], Any] = {}
        self._entries: dict[tuple[int, str], ArrayEntry] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._written: dict[tuple[int, str], int] = {}

    def key(self, t: int, block: str) -> str:
        return layout.array_key(self.group.path, t, block, self.video, self.gen)

    def write(self, t: int, block: str, start: int, data: np.ndarray, total: int) -> None:
        """Write stored frames ``[start, start + len(data))`` of a (total, C, h, w) array."""
        if data.dtype != np.float16:
            data = data.astype(np.float16)
        if start % self.chunk_frames:
            raise ValueError(f"write at frame {start} is not aligned to chunks of {self.chunk_frames} frames")
        if (t, block) not in self._arrays:
            shape = (total, *data.shape[1:])
            if block in self._shapes and self._shapes[block] != shape:
                raise StoreError(
                    f"{self.video} {block}: shape {shape} differs across timesteps {self._shapes[block]}"
                )
            self._shapes[block] = shape
            step = self._direct_len(shape) if self._root is not None else min(self._chunk_len(data), total)
            arr, self._entries[(t, block)], self._names[(t, block)] = self._create(
                self.key(t, block), shape, (step, *shape[1:])
            )
            self._arrays[(t, block)] = arr
        if self._root is not None:
            self._append(t, block, start, data)
        else:
            self._arrays[(t, block)][start : start + len(data)] = data
        self._written[(t, block)] = self._written.get((t, block), 0) + len(data)

    def _direct_len(self, shape: tuple[int, ...]) -> int:
        """Frames per chunk of a direct array: all of them if the array fits in ``direct_chunk_bytes``,
        else a chunk length between half the frames that fit and all of them, the one that pads the last
        chunk least (the longest of those): 112 frames of 5 that fit are chunks of 4, not 23 chunks of 5
        and 3 frames of padding (2.7% more bytes on disk)."""
        total, frame = shape[0], max(1, math.prod(shape[1:]) * 2)
        most = max(1, self.direct_chunk_bytes // frame)
        if total <= most:
            return max(1, total)
        return min(range(most, (most - 1) // 2, -1), key=lambda n: -total % n)

    def _append(self, t: int, block: str, start: int, data: np.ndarray) -> None:
        """Append frames ``start:start + len(data)`` to the array's chunk files (frames come in order),
        keeping the current chunk's crc32c running; a chunk's checksum goes last, with its last frame (the
        array's last chunk padded with the fill value to its full size first, as zarr pads it)."""
        import crc32c

        assert self._root is not None
        done = self._written.get((t, block), 0)
        if start != done:
            raise ValueError(f"{self.video} T={t} {block}: write at frame {start}, expected frame {done}")
        shape = self._shapes[block]
        total = shape[0]
        if start + len(data) > total:
            raise ValueError(
                f"{self.video} T={t} {block}: frames {start}..{start + len(data)} beyond {total}"
            )
        names = self._names[(t, block)]
        step = self._direct_len(shape)
        frames = np.ascontiguousarray(data, dtype="<f2")
        folder = self._root / self.key(t, block)
        a, stop = start, start + len(data)
        while a < stop:
            i = a // step
            b = min(stop, (i + 1) * step)
            raw = memoryview(frames[a - start : b - start].reshape(-1)).cast("B")  # type: ignore[arg-type]
            crc = crc32c.crc32c(raw, 0 if a == i * step else self._crc[(t, block)])
            pad = _fill((i + 1) * step - total if b == total else 0, shape[1:])
            crc = crc32c.crc32c(pad, crc) if len(pad) else crc
            path = folder / names[i]
            mode = "wb" if a == i * step else "ab"
            try:
                f = open(path, mode)  # noqa: SIM115  (closed by the with below)
            except FileNotFoundError:  # the folder went (gc removed the recipe meanwhile): write on as
                path.parent.mkdir(parents=True, exist_ok=True)  # zarr's store does; its zarr.json is gone,
                f = open(path, mode)  # noqa: SIM115  (so a read of it: missing-array)
            with f:
                f.write(raw)
                if b == (i + 1) * step or b == total:  # the chunk is complete: padding, then its checksum
                    f.write(pad)
                    f.write(int(crc).to_bytes(4, "little"))
            self._crc[(t, block)] = crc
            a = b

    def _create(
        self, key: str, shape: tuple[int, ...], chunks: tuple[int, ...]
    ) -> tuple[Any, ArrayEntry, tuple[str, ...]]:
        """Write the array's ``zarr.json`` (and no parent group's) and return the array, bound to the store
        without reading the metadata back (None for a direct array), its record entry and its chunk file
        names in frame order."""
        from zarr.core.array import Array, AsyncArray
        from zarr.storage import StorePath

        meta, raw, digest = _metadata(shape, chunks, self.codec, tuple(CHUNK_KEY_ENCODING.items()))
        self.group.backend.put_bytes(f"{key}/zarr.json", raw)
        n = math.ceil(shape[0] / chunks[0])
        entry = ArrayEntry(digest, n)
        names = tuple(meta.encode_chunk_key((i, *(0,) * (len(shape) - 1))) for i in range(n))
        if self._root is not None:
            return None, entry, names
        store_path = StorePath(self.group.backend.store, key)
        return Array(AsyncArray(meta, store_path, {"write_empty_chunks": True})), entry, names

    def _chunk_len(self, data: np.ndarray) -> int:
        frame_bytes = max(1, data[:1].nbytes)
        divisors = [d for d in range(1, self.chunk_frames + 1) if self.chunk_frames % d == 0]
        fitting = [d for d in divisors if d * frame_bytes <= self.target_chunk_bytes]
        return max(fitting) if fitting else 1

    def commit(
        self,
        frame_names: Sequence[str],
        time_map: Sequence[Sequence[int]],
        source_size: tuple[int, int],
        env: Mapping[str, Any] | None = None,
    ) -> Commit:
        """Check every (T, block) is complete, then write the commit record (the only visible step).
        ``env``: the compute environment that produced the arrays (provenance, see docs/store.md)."""
        for t in self.timesteps:
            for b in self.blocks:
                total = self._shapes.get(b, (0,))[0]
                if (t, b) not in self._arrays or self._written.get((t, b)) != total:
                    raise StoreError(f"{self.video}: T={t} {b} incomplete, refusing to commit")
        stored = {shape[0] for shape in self._shapes.values()}
        if stored != {len(time_map)}:
            raise StoreError(
                f"{self.video}: stored frames {stored} disagree with the time map ({len(time_map)})"
            )
        nbytes = sum(int(np.prod(s)) * 2 for s in self._shapes.values()) * len(self.timesteps)
        commit = Commit(
            video=self.video,
            gen=self.gen,
            timesteps=self.timesteps,
            blocks=self.blocks,
            frame_names=tuple(frame_names),
            time_map=tuple(tuple(int(i) for i in m) for m in time_map),
            source_size=(int(source_size[0]), int(source_size[1])),
            shapes=dict(self._shapes),
            nbytes=nbytes,
            written_at=now_iso(),
            written_by=writer_identity(),
            recipe=self.group.recipe.fingerprint,
            arrays={array_slot(t, b): self._entries[(t, b)] for t in self.timesteps for b in self.blocks},
            env=dict(env or {}),
        )
        self.group.backend.put_json(
            layout.commit_key(self.group.path, self.video, self.gen), commit.to_json()
        )
        return commit


@functools.lru_cache(maxsize=512)
def _metadata(
    shape: tuple[int, ...], chunks: tuple[int, ...], codec: str, key_encoding: tuple[tuple[str, str], ...]
) -> tuple[Any, bytes, str]:
    """An array's metadata, its ``zarr.json`` bytes and their digest: zarr fills in and validates them in
    memory, once per (shape, chunks, codec) in a process (a video's arrays of one block at every T, and
    videos of one size, share them)."""
    import zarr
    from zarr.core.buffer import default_buffer_prototype
    from zarr.storage import MemoryStore

    template = zarr.create_array(
        store=MemoryStore(),
        shape=shape,
        chunks=chunks,
        dtype="float16",
        fill_value=np.float16("nan"),  # never read: a missing chunk is an error (dvx/store/reader.py)
        compressors=compressors_for(codec),
        filters=None,
        dimension_names=("frame", "channel", "y", "x"),
        chunk_key_encoding=dict(key_encoding),  # type: ignore[arg-type]
    )
    meta = template.metadata
    raw = meta.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes()
    return meta, raw, metadata_digest(raw)


def _fill(frames: int, frame_shape: tuple[int, ...]) -> memoryview:
    """``frames`` frames of the fill value (float16 NaN, little-endian): the padding zarr writes into the
    part of a last chunk that lies beyond the array (made once per array, never kept: up to a chunk)."""
    pad = np.full((frames, *frame_shape), np.float16("nan"), dtype="<f2")
    return memoryview(pad.reshape(-1)).cast("B")  # type: ignore[arg-type]


def record_failure(group: RecipeGroup, video: str, reason: str) -> Failure:
    failure = Failure(video=video, reason=reason, written_at=now_iso(), written_by=writer_identity())
    group.backend.put_json(layout.failure_key(group.path, video), failure.__dict__)
    return failure


def clear_failure(group: RecipeGroup, video: str) -> None:
    key = layout.failure_key(group.path, video)
    if group.backend.exists(key):
        group.backend.delete(key)


def write_timestep_attrs(group: RecipeGroup, t: int, attrs: dict[str, Any]) -> None:
    """Record T's effective noise level on its group (identical bytes from every writer of the recipe);
    a missing or damaged timestep group is written anew."""
    path = f"{group.path}/{layout.t_key(t)}"
    try:
        have = group.backend.group_attrs(path)
    except (
        DamagedObjectError
    ):  # unreadable (e.g. NUL-filled after a power loss): its content is ours to restore
        have = None
    if have != attrs:
        group.backend.write_group(path, attrs)


class BackgroundWriter:
    """Runs store writes on one background thread, in order, so they overlap the next forward pass.

    ``submit`` blocks once ``max_pending`` jobs wait (bounding memory); an error in a job is re-raised by
    the next ``submit`` or by ``drain``/``close``, an ``OSError`` (ENOSPC, EIO, ...) as a
    :class:`StoreError` naming ``location`` (the chunks and records it failed to write were never committed).
    """

    def __init__(self, max_pending: int = 8, location: str = "the store") -> None:
        self.location = location
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue(max_pending)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dvx-store-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:  # after a failure, drop the rest (nothing more may commit)
                    fn, args = job
                    fn(*args)
            except StoreError as err:
                self._error = err
            except BaseException as err:  # re-raised in the caller's thread
                # the store's disk or server failed us (ENOSPC, EIO, an unreachable endpoint): one line
                failed = isinstance(err, Exception) and is_storage_failure(err)
                self._error = storage_error(self.location, err, writing=True) if failed else err
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._raise()
        self._queue.put((fn, args))

    def drain(self) -> None:
        self._queue.join()
        self._raise()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._raise()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        # Let queued jobs finish even when the producer failed: a commit is queued only after all of its
        # video's writes, so finishing the queue loses nothing and commits only complete videos.
        self._queue.put(None)
        self._thread.join()
        if exc_type is None:
            self._raise()
