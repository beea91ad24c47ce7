"""Verified reads of committed arrays: the one place where stored bytes become features.

A committed array is trusted only as far as its commit record vouches for it (dvx/store/index.py):

1. **metadata**: the array's ``zarr.json`` must be the very bytes the writer wrote: their sha256 equals
   the record's ``meta`` digest, so shape, chunking, dtype, fill value and the codec chain are exactly the
   writer's (an edited codec, a NUL-filled file, a changed shape all fail here). A legacy record (no
   digests) gets structural checks instead: float16, the record's shape, frame-axis chunks, crc32c last;
2. **presence**: every chunk the metadata implies (and the record counts) must exist. zarr would read a
   missing chunk as the fill value; here it is an error, so no reader ever returns data nobody wrote;
3. **checksum**: every chunk decodes through the recorded codec chain, whose last codec is crc32c, so a
   flipped or truncated chunk fails.

Any failure raises :class:`ArrayDamage` (kind, the object at fault, detail); callers add the context a
user needs (:meth:`dvx.store.group.RecipeGroup.read`: store, recipe, video, T, block and the repair
command; ``dvx cache verify``: a problem line). The steps are separate functions on purpose: a faster
chunk reader (one that reads chunk files straight into the output) replaces :func:`_fetch_and_decode`
and keeps :func:`check_metadata` and :func:`chunk_keys` unchanged.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
from collections import OrderedDict
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dvx.store.index import ArrayEntry

if TYPE_CHECKING:
    from zarr.core.metadata.v3 import ArrayV3Metadata

    from dvx.store.backend import Backend

#: what can be wrong with a committed array
MISSING_ARRAY, BAD_METADATA, MISSING_CHUNK, CORRUPT_CHUNK = (
    "missing-array",
    "bad-metadata",
    "missing-chunk",
    "corrupt-chunk",
)


class ArrayDamage(Exception):
    """A committed array that does not hold what its commit record says."""

    def __init__(self, kind: str, key: str, detail: str) -> None:
        super().__init__(f"{kind} {key} ({detail})")
        self.kind, self.key, self.detail = kind, key, detail


def metadata_digest(raw: bytes) -> str:
    """What a commit record stores as an array's ``meta``: the sha256 of its ``zarr.json`` bytes."""
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class _Parsed:
    meta: ArrayV3Metadata
    pipeline: Any  # zarr's codec pipeline for ``meta``
    spec: Any  # the ArraySpec of one chunk (every chunk of a regular grid has the same)
    shape: tuple[int, ...]  # meta.shape and meta.chunks as plain tuples (zarr computes them per access)
    chunks: tuple[int, ...]
    names: tuple[str, ...]  # the chunk keys, relative to the array, in frame order
    raw: bool  # the chain is the ``raw`` preset: little-endian bytes + crc32c (:func:`_is_raw`)


_PARSED: OrderedDict[str, _Parsed] = OrderedDict()  # digest -> parsed metadata (arrays of one shape share)
_PARSED_MAX = 256


def _parse(raw: bytes, digest: str) -> _Parsed:
    hit = _PARSED.get(digest)
    if hit is not None:
        _PARSED.move_to_end(digest)
        return hit
    from zarr.core.array import create_codec_pipeline
    from zarr.core.array_spec import ArrayConfig
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.metadata.v3 import ArrayV3Metadata

    meta = ArrayV3Metadata.from_dict(json.loads(raw))
    config = ArrayConfig.from_dict({})  # type: ignore[typeddict-item]  # zarr fills in the defaults
    spec = meta.get_chunk_spec((0,) * len(meta.shape), config, default_buffer_prototype())
    shape, chunks = tuple(int(v) for v in meta.shape), tuple(int(v) for v in meta.chunks)
    n = math.ceil(shape[0] / chunks[0]) if shape[0] and chunks[0] else 0
    zeros = (0,) * (len(shape) - 1)
    names = tuple(meta.encode_chunk_key((i, *zeros)) for i in range(n))
    parsed = _Parsed(meta, create_codec_pipeline(meta), spec, shape, chunks, names, _is_raw(meta))
    _PARSED[digest] = parsed
    if len(_PARSED) > _PARSED_MAX:
        _PARSED.popitem(last=False)
    return parsed


def check_metadata(
    key: str, raw: bytes | None, shape: Sequence[int], entry: ArrayEntry | None
) -> ArrayV3Metadata:
    """The metadata of array ``key`` (its ``zarr.json`` bytes ``raw``), checked against the commit record:
    the exact bytes (``entry``), or for a legacy record (``entry`` None) the record's ``shape``, float16,
    whole frames per chunk and a crc32c checksum as the last codec."""
    return _checked(key, raw, shape, entry).meta


def _checked(key: str, raw: bytes | None, shape: Sequence[int], entry: ArrayEntry | None) -> _Parsed:
    where = f"{key}/zarr.json"
    if raw is None:
        raise ArrayDamage(MISSING_ARRAY, where, "the commit record names it, but it does not exist")
    digest = metadata_digest(raw)
    if entry is not None and digest != entry.meta:
        raise ArrayDamage(BAD_METADATA, where, "not the bytes the writer recorded (changed since the commit)")
    try:
        parsed = _parse(raw, digest)
    except Exception as err:  # untrusted bytes: any parse failure means damage, whatever zarr raises
        raise ArrayDamage(BAD_METADATA, where, f"unreadable: {type(err).__name__}: {err}") from None
    meta = parsed.meta
    if entry is None:  # a legacy record: check what the bytes say instead
        codecs = [c.to_dict().get("name") for c in meta.codecs]
        chunk = meta.chunks
        if tuple(meta.shape) != tuple(shape) or str(meta.dtype.to_native_dtype()) != "float16":
            why = f"shape {tuple(meta.shape)} {meta.dtype}, the commit says {tuple(shape)} float16"
            raise ArrayDamage(BAD_METADATA, where, why)
        if tuple(chunk[1:]) != tuple(meta.shape[1:]) or chunk[0] < 1:
            raise ArrayDamage(BAD_METADATA, where, f"chunks {chunk} split a frame")
        if not codecs or codecs[-1] != "crc32c":
            raise ArrayDamage(BAD_METADATA, where, f"codec chain {codecs} does not end with crc32c")
    return parsed


def chunk_keys(key: str, meta: ArrayV3Metadata) -> list[str]:
    """The store keys of every chunk of array ``key`` (chunked along frames only), in frame order."""
    n = math.ceil(meta.shape[0] / meta.chunks[0]) if meta.shape[0] else 0
    zeros = (0,) * (len(meta.shape) - 1)
    return [f"{key}/{meta.encode_chunk_key((i, *zeros))}" for i in range(n)]


def _expected_keys(key: str, parsed: _Parsed, entry: ArrayEntry | None) -> list[str]:
    keys = [f"{key}/{name}" for name in parsed.names]
    if entry is not None and entry.chunks != len(keys):  # the digest matched, so this is a dvx bug
        raise ArrayDamage(BAD_METADATA, key, f"{len(keys)} chunks, the commit record says {entry.chunks}")
    return keys


def check_presence(
    backend: Backend, key: str, shape: Sequence[int], entry: ArrayEntry | None, present: Collection[str]
) -> int:
    """``verify --quick``: the metadata check and every chunk present, without reading a chunk.
    ``present``: keys of a listing made after the record was read (a chunk absent from it is looked up on
    its own before it is called missing). Returns the number of chunks."""
    parsed = _checked(key, _get_meta(backend, key), shape, entry)
    keys = _expected_keys(key, parsed, entry)
    for i, chunk in enumerate(keys):
        if chunk not in present and not backend.exists(chunk):
            raise ArrayDamage(MISSING_CHUNK, chunk, _frames(parsed.meta, i))
    return len(keys)


def read_array(
    backend: Backend,
    key: str,
    shape: Sequence[int],
    entry: ArrayEntry | None,
    frames: tuple[int, int] | None = None,
) -> tuple[np.ndarray, int]:
    """Array ``key`` as (frames, C, h, w) float16 after all three checks, and its chunk count. ``frames``
    = (start, stop) reads only stored frames ``start:stop`` (the chunks holding them, each checked as a
    whole read checks it): what a memory-bounded reader of a long video slices."""
    parsed = _checked(key, _get_meta(backend, key), shape, entry)
    keys = _expected_keys(key, parsed, entry)
    n = parsed.shape[0]
    start, stop = (0, n) if frames is None else (max(0, frames[0]), min(n, frames[1]))
    root = _local_root(backend)
    if root is not None and parsed.raw:
        return _read_direct(root, parsed, keys, start, max(start, stop)), len(keys)
    return _fetch_and_decode(backend, parsed, keys, start, max(start, stop)), len(keys)


def _local_root(backend: Backend) -> str | None:
    from zarr.storage import LocalStore

    store = backend.store
    return str(store.root) if isinstance(store, LocalStore) else None


def _get_meta(backend: Backend, key: str) -> bytes | None:
    """An array's ``zarr.json`` bytes (on a local store one plain file read, not zarr's async store)."""
    root = _local_root(backend)
    if root is None:
        return backend.get_bytes(f"{key}/zarr.json")
    try:
        with open(os.path.join(root, key, "zarr.json"), "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError:
        return backend.get_bytes(f"{key}/zarr.json")  # the backend's one-line storage error


def _frames(meta: ArrayV3Metadata, i: int) -> str:
    step = meta.chunks[0]
    return f"frames {i * step}..{min(meta.shape[0], (i + 1) * step) - 1}"


def _fetch_and_decode(backend: Backend, parsed: _Parsed, keys: list[str], lo: int, hi: int) -> np.ndarray:
    """Fetch the chunks holding stored frames ``lo:hi`` concurrently, decode each through the codec chain
    (crc32c checked) and copy its frames into their slice of the output. A chunk that is absent or fails
    to decode raises ArrayDamage naming it."""
    from zarr.core.buffer import default_buffer_prototype

    meta, step = parsed.meta, parsed.meta.chunks[0]
    out = np.empty((hi - lo, *meta.shape[1:]), dtype=np.float16)
    prototype = default_buffer_prototype()
    store = backend.store

    async def one(i: int, chunk: str) -> None:
        buf = await store.get(chunk, prototype=prototype)
        if buf is None:
            raise ArrayDamage(MISSING_CHUNK, chunk, _frames(meta, i))
        try:
            [decoded] = await parsed.pipeline.decode([(buf, parsed.spec)])
            if decoded is None:
                raise ValueError("decoded to nothing")
            start, stop = max(lo, i * step), min(hi, (i + 1) * step)
            out[start - lo : stop - lo] = decoded.as_numpy_array()[start - i * step : stop - i * step]
        except Exception as err:  # untrusted bytes: any codec failure (crc32c mismatch first) is damage
            raise ArrayDamage(CORRUPT_CHUNK, chunk, f"{type(err).__name__}: {err}") from None

    async def every() -> None:
        first, last = lo // step, -(-hi // step)  # the chunks overlapping lo:hi
        await asyncio.gather(*(one(i, keys[i]) for i in range(first, last)))

    backend.run(every())
    return out


def _is_raw(meta: ArrayV3Metadata) -> bool:
    """Whether the chunks are the array's little-endian bytes plus a crc32c (the ``raw`` codec preset)."""
    codecs: list[Any] = [c.to_dict() for c in meta.codecs]
    if [c.get("name") for c in codecs] != ["bytes", "crc32c"]:
        return False
    config = codecs[0].get("configuration") or {}
    return bool(config.get("endian", "little") == "little")


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dvx-read")
    return _POOL


#: a chunk is read and checksummed in pieces of this size, each piece's crc32c computed right after its
#: read, while its bytes are still in the CPU's cache (L2 is 1 MiB per core here): 0.71-0.75x np.load for
#: a 165 MB chunk against 0.60x for one read then one crc32c pass (benchmarks/bench_reads.py)
PIECE = 2**20


def _read_and_crc(fd: int, regions: list[tuple[memoryview | None, int, int]]) -> int | None:
    """Read the byte ranges ``regions`` = (target or None, offset, length) of ``fd`` in order, piece by
    piece, into their targets (None: a range nobody wants, read through a small scratch buffer only for its
    checksum), and return the crc32c of all of them (None if the file ended early)."""
    import crc32c

    unwanted = [length for target, _, length in regions if target is None]
    scratch = memoryview(bytearray(min(PIECE, max(unwanted, default=0))))
    crc = 0
    for target, offset, length in regions:
        for a in range(0, length, PIECE):
            b = min(length, a + PIECE)
            view = target[a:b] if target is not None else scratch[: b - a]
            if os.preadv(fd, [view], offset + a) != b - a:
                return None
            crc = crc32c.crc32c(view, crc)
    return int(crc)


def _read_direct(root: str, parsed: _Parsed, keys: list[str], lo: int, hi: int) -> np.ndarray:
    """:func:`_fetch_and_decode` for ``raw`` chunks on a local store: the wanted frames of each chunk file
    are read straight into their slice of the output (the frames of a chunk nobody asked for, and the
    padding of the last chunk, through a 1 MiB scratch buffer), its crc32c computed over the whole chunk as
    it is read (the ``crc32c`` package: 13.6 GB/s here against google_crc32c's 6.5) and compared with the
    file's last 4 bytes. Several chunks are read in parallel (the calling thread and a small pool; the
    reads and crc32c release the GIL). Same checks and errors as zarr's pipeline: an absent chunk is
    missing, a chunk of the wrong size or checksum corrupt."""

    meta, step, inner = parsed.meta, parsed.chunks[0], parsed.chunks[1:]
    out = np.empty((hi - lo, *parsed.shape[1:]), dtype=np.float16)
    flat = memoryview(out.reshape(-1)).cast("B")  # type: ignore[arg-type]
    frame = math.prod(inner) * 2
    size = step * frame

    def one(i: int) -> None:
        start, stop = max(lo, i * step), min(hi, (i + 1) * step)
        head, body = (start - i * step) * frame, (stop - start) * frame
        regions = [
            (None, 0, head),
            (flat[(start - lo) * frame : (stop - lo) * frame], head, body),
            (None, head + body, size - head - body),
        ]
        try:
            f = open(os.path.join(root, keys[i]), "rb", buffering=0)  # noqa: SIM115  (closed by the with below)
        except FileNotFoundError:
            raise ArrayDamage(MISSING_CHUNK, keys[i], _frames(meta, i)) from None
        with f:
            fd = f.fileno()
            have = os.fstat(fd).st_size
            if have != size + 4:
                why = f"{have} bytes, {size + 4} expected"
                raise ArrayDamage(CORRUPT_CHUNK, keys[i], f"ValueError: truncated or overlong chunk ({why})")
            crc = _read_and_crc(fd, [r for r in regions if r[2]])
            stored = os.pread(fd, 4, size)
        if crc is None or len(stored) != 4:
            raise ArrayDamage(CORRUPT_CHUNK, keys[i], "ValueError: chunk cut short while reading")
        if crc != int.from_bytes(stored, "little"):
            raise ArrayDamage(CORRUPT_CHUNK, keys[i], "ValueError: Stored and computed checksum do not match")

    chunks = range(lo // step, -(-hi // step))
    others = [_pool().submit(one, i) for i in chunks[1:]]
    try:
        if chunks:
            one(chunks[0])
    finally:
        for done in others:  # every started read ends before the output is handed back (or dropped)
            done.exception()
    for done in others:
        done.result()
    return out
