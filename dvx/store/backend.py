"""Open a zarr store from a path or any fsspec URL, plus the raw-object operations the index needs.

Everything dvx writes goes through one :class:`zarr.abc.store.Store`, so a store works the same on local
disk, a shared filesystem, an object store (``s3://...``) or in memory (``memory://``). Commit records and
claims are small JSON objects written whole: atomic on a local filesystem (zarr's LocalStore writes a
temp file and renames it) and on object stores (a PUT is all or nothing).

Create-if-absent (:meth:`Backend.put_json_if_absent`, which claims and metadata creation rely on) is
atomic on local and shared POSIX filesystems (hard link of a complete temp file) and on S3 (a PUT with
``If-None-Match: *``, refused by the server when the key exists); on other fsspec backends it is the
filesystem's own ``mode="create"`` (exists-then-write unless the backend does better; see docs/store.md).
"""

from __future__ import annotations

import errno
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import zarr
from zarr.abc.store import Store
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import FsspecStore, LocalStore

from dvx.errors import StoreError


def group_meta(attrs: dict[str, Any]) -> dict[str, Any]:
    """The zarr.json of a zarr v3 group with ``attrs``."""
    return {"zarr_format": 3, "node_type": "group", "attributes": attrs}


def is_url(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def local_path(location: str) -> Path:
    """The directory of a local store location (a path or a ``file://`` URL)."""
    return Path(location.removeprefix("file://")).expanduser()


class Backend:
    """A zarr store and its location; JSON objects, listing and deletes on top of it."""

    def __init__(self, location: str, *, read_only: bool, storage_options: dict[str, Any] | None = None):
        self.location = location
        self.read_only = read_only
        self.store: Store = _open_store(location, read_only, storage_options)

    def __repr__(self) -> str:
        return f"Backend({self.location!r}, read_only={self.read_only})"

    # ---- raw objects ---------------------------------------------------------------------------------
    def get_bytes(self, key: str) -> bytes | None:
        buf = sync(self.store.get(key, prototype=default_buffer_prototype()))
        return None if buf is None else buf.to_bytes()

    def put_bytes(self, key: str, data: bytes) -> None:
        self._check_writable(key)
        sync(self.store.set(key, default_buffer_prototype().buffer.from_bytes(data)))

    def get_json(self, key: str) -> Any | None:
        raw = self.get_bytes(key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as err:
            raise StoreError(f"{self.location}: {key} is not valid JSON ({err})") from err

    def get_many_bytes(self, keys: list[str], concurrency: int = 32) -> list[bytes | None]:
        """Fetch many small objects concurrently (object stores answer each GET in ~10-50 ms); None for a
        key that does not exist."""
        import asyncio

        sem = asyncio.Semaphore(concurrency)

        async def one(key: str) -> bytes | None:
            async with sem:
                buf = await self.store.get(key, prototype=default_buffer_prototype())
            return None if buf is None else buf.to_bytes()

        async def all_() -> list[bytes | None]:
            return list(await asyncio.gather(*(one(k) for k in keys)))

        return sync(all_()) if keys else []

    def get_many_json(self, keys: list[str], concurrency: int = 32) -> list[Any | None]:
        """Fetch many small JSON objects concurrently; a record that is not valid JSON raises StoreError."""
        out = []
        for key, raw in zip(keys, self.get_many_bytes(keys, concurrency), strict=True):
            if raw is None:
                out.append(None)
                continue
            try:
                out.append(json.loads(raw))
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise StoreError(
                    f"{self.location}: {key} is not valid JSON ({err}); run `dvx cache verify --repair`"
                ) from err
        return out

    def put_json(self, key: str, obj: Any) -> None:
        self.put_bytes(key, json.dumps(obj, sort_keys=True, indent=1).encode())

    def put_json_if_absent(self, key: str, obj: Any) -> bool:
        """Create ``key`` only if it does not exist; True if this call created it.

        Atomic on local filesystems (hard link of a complete temp file); on object stores it uses the
        backend's conditional write where one exists, else exists-then-put (documented race).
        """
        self._check_writable(key)
        data = json.dumps(obj, sort_keys=True, indent=1).encode()
        if isinstance(self.store, LocalStore):
            path = Path(self.store.root) / key
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
            try:  # the temp file goes even when a signal (SIGTERM -> SystemExit) cuts the write short
                tmp.write_bytes(data)
                os.link(tmp, path)  # atomic create: fails if the key exists, never exposes a partial file
                return True
            except FileExistsError:
                return False
            finally:
                tmp.unlink(missing_ok=True)
        if isinstance(self.store, FsspecStore):
            path = f"{self.store.path.rstrip('/')}/{key}"
            for attempt in range(8):
                try:
                    sync(self.store.fs._pipe_file(path, data, mode="create"))
                    return True
                except FileExistsError:
                    return False
                except TypeError:  # a filesystem whose pipe_file has no mode: exists-then-write below
                    break
                except OSError as err:
                    # S3 answers 409 ConditionalRequestConflict while another conditional write of the same
                    # key is in flight; AWS says retry, and the retry then finds the key (412) or creates it
                    if err.errno != errno.EBUSY or attempt == 7:
                        raise
                    time.sleep(0.05 * 2**attempt)
        if sync(self.store.exists(key)):
            return False
        sync(self.store.set(key, default_buffer_prototype().buffer.from_bytes(data)))
        return True

    @property
    def atomic_create(self) -> bool:
        """Whether :meth:`put_json_if_absent` is atomic here (POSIX disk, S3) rather than best-effort."""
        if isinstance(self.store, LocalStore):
            return True
        return isinstance(self.store, FsspecStore) and "s3" in _protocols(self.store.fs)

    def exists(self, key: str) -> bool:
        return bool(sync(self.store.exists(key)))

    def delete(self, key: str) -> None:
        self._check_writable(key)
        sync(self.store.delete(key))

    def delete_prefix(self, prefix: str) -> None:
        self._check_writable(prefix)
        sync(self.store.delete_dir(prefix.rstrip("/")))

    def list_prefix(self, prefix: str) -> list[str]:
        async def collect() -> list[str]:
            return [k async for k in self.store.list_prefix(prefix)]

        return sorted(sync(collect()))

    def list_dir(self, prefix: str) -> list[str]:
        async def collect() -> list[str]:
            return [k async for k in self.store.list_dir(prefix.rstrip("/"))]

        return sorted(sync(collect()))

    def list_dir_starting(self, folder: str, head: str) -> list[str]:
        """The names of the objects directly in ``folder`` that start with ``head``, sorted: on local disk
        one read of the directory that keeps only those names (no listing of the rest, no stat per entry);
        on fsspec stores the filesystem's prefix listing (S3: ListObjectsV2 with the prefix, one request per
        1,000 matches). Elsewhere, or on a filesystem without prefix listings, a listing filtered here."""
        store = self.store
        if isinstance(store, LocalStore):
            try:
                with os.scandir(Path(store.root) / folder) as entries:
                    return sorted(e.name for e in entries if e.name.startswith(head))
            except (FileNotFoundError, NotADirectoryError):
                return []
        if isinstance(store, FsspecStore):
            base = f"{store.path.rstrip('/')}/{folder.strip('/')}"
            try:
                found = sync(store.fs._find(base, maxdepth=1, withdirs=False, detail=False, prefix=head))
            except FileNotFoundError:
                return []
            except TypeError:  # a filesystem whose listing takes no prefix
                found = None
            if found is not None:
                names = (str(p).rstrip("/").rsplit("/", 1)[-1] for p in found)
                return sorted(n for n in names if n.startswith(head))
        return [n for n in self.list_dir(folder) if n.startswith(head)]

    def getsize(self, key: str) -> int:
        return int(sync(self.store.getsize(key)))

    def stat_prefix(self, prefix: str) -> dict[str, tuple[int, float]]:
        """key -> (stored bytes, modification time as a UNIX timestamp) of every object under ``prefix``.

        One directory walk on local disk, one recursive listing on object stores (no per-key requests).
        """
        prefix = prefix.strip("/")
        if isinstance(self.store, LocalStore):
            root = Path(self.store.root)
            base = root / prefix if prefix else root
            out: dict[str, tuple[int, float]] = {}
            for dirpath, _, files in os.walk(base):
                for name in files:
                    full = Path(dirpath) / name
                    try:
                        st = full.stat()
                    except FileNotFoundError:  # removed while walking
                        continue
                    out[full.relative_to(root).as_posix()] = (st.st_size, st.st_mtime)
            return out
        if isinstance(self.store, FsspecStore):
            fs, root = self.store.fs, self.store.path.rstrip("/")
            path = f"{root}/{prefix}" if prefix else root
            try:
                found = sync(fs._find(path, detail=True, withdirs=False))
            except FileNotFoundError:
                return {}
            strip = len(root) + 1 if root else 0
            return {
                name[strip:]: (int(info.get("size") or 0), _mtime(info))
                for name, info in found.items()
                if info.get("type", "file") != "directory"
            }
        return {k: (self.getsize(k), 0.0) for k in self.list_prefix(prefix)}

    # ---- zarr nodes ----------------------------------------------------------------------------------
    def write_group(self, path: str, attrs: dict[str, Any]) -> None:
        """Write a group's zarr.json whole (idempotent for identical attrs; never deletes children)."""
        self.put_json(f"{path}/zarr.json" if path else "zarr.json", group_meta(attrs))

    def group_attrs(self, path: str) -> dict[str, Any] | None:
        meta = self.get_json(f"{path}/zarr.json" if path else "zarr.json")
        if meta is None:
            return None
        if meta.get("node_type") != "group":
            raise StoreError(f"{self.location}: {path or '/'} is a zarr {meta.get('node_type')}, not a group")
        return dict(meta.get("attributes") or {})

    def open_array(self, path: str) -> zarr.Array:
        return zarr.open_array(
            store=self.store, path=path, mode="r" if self.read_only else "r+", zarr_format=3
        )

    def _check_writable(self, key: str) -> None:
        if self.read_only:
            raise StoreError(f"{self.location} is opened read-only; refusing to write {key}")


def _protocols(fs: Any) -> tuple[str, ...]:
    proto = getattr(getattr(fs, "sync_fs", fs), "protocol", ())
    return (proto,) if isinstance(proto, str) else tuple(proto)


def _mtime(info: dict[str, Any]) -> float:
    for name in ("LastModified", "mtime", "created", "last_modified"):
        value = info.get(name)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return 0.0


def storage_options_for(location: str, given: dict[str, Any] | None) -> dict[str, Any]:
    """fsspec options for ``location``: object-store directory listings are never cached, because other
    processes write claims and commit records that a cached listing would hide."""
    opts = dict(given or {})
    if location.split("://", 1)[0] in ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"):
        opts.setdefault("use_listings_cache", False)
    return opts


def _open_store(location: str, read_only: bool, storage_options: dict[str, Any] | None) -> Store:
    if is_url(location):
        try:
            opts = storage_options_for(location, storage_options)
            return FsspecStore.from_url(location, read_only=read_only, storage_options=opts)
        except (ImportError, ValueError) as err:
            raise StoreError(f"cannot open store {location!r}: {err}") from err
    path = local_path(location)
    if read_only:
        if not path.is_dir():
            raise StoreError(f"no dvx feature store at {str(path)!r}")
    else:
        if path.exists() and not path.is_dir():
            raise StoreError(f"store path {str(path)!r} exists and is not a directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / f".dvx-write-test-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise StoreError(f"store path {str(path)!r} is not writable: {err.strerror or err}") from err
        if not os.access(path, os.W_OK):
            raise StoreError(f"store path {str(path)!r} is not writable")
    return LocalStore(path, read_only=read_only)
