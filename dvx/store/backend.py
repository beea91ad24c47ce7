"""Open a zarr store from a path or any fsspec URL, plus the raw-object operations the index needs.

Everything dvx writes goes through one :class:`zarr.abc.store.Store`, so a store works the same on local
disk, a shared filesystem, an object store (``s3://...``) or in memory (``memory://``). Commit records and
claims are small JSON objects written whole: atomic on a local filesystem (zarr's LocalStore writes a
temp file and renames it) and on object stores (a PUT is all or nothing).

Create-if-absent (:meth:`Backend.put_json_if_absent`, which claims and metadata creation rely on) is
atomic on local and shared POSIX filesystems (hard link of a complete temp file) and on S3 (a PUT with
``If-None-Match: *``, refused by the server when the key exists); on other fsspec backends it is the
filesystem's own ``mode="create"`` (exists-then-write unless the backend does better; see docs/store.md).

**Failures are one line.** Every operation that reaches the storage (a disk, an object store) turns what
it raises into a :class:`~dvx.errors.StoreError` naming the store and what failed: an ``OSError``
(permission denied, disk full, a dead NFS server) and the errors of the object-store clients (endpoint
unreachable, no credentials, bucket gone). A failed write is a :class:`StoreWriteError`, still the
``OSError`` it was (same ``errno``) for callers that tell a full disk apart.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from zarr.abc.store import Store
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import FsspecStore, LocalStore

from dvx.errors import NoStoreError, StoreError

T = TypeVar("T")

#: top-level modules of the clients fsspec stores speak through: their exceptions are storage failures
_CLIENT_MODULES = frozenset(
    {"botocore", "aiobotocore", "aiohttp", "s3fs", "gcsfs", "google", "adlfs", "azure", "urllib3", "requests"}
)


class StoreAccessError(StoreError):
    """The storage itself failed (unreachable, no credentials, permission denied, I/O error): never a sign
    that the store's content is damaged, so nothing treats it as such."""


class DamagedObjectError(StoreError):
    """An object the store holds whose content cannot be used (not valid JSON, not the zarr node it should
    be): damage that ``dvx cache verify`` reports, unlike a :class:`StoreAccessError`."""


class StoreWriteError(StoreAccessError, OSError):
    """A store write that failed (disk or quota full, I/O error): a :class:`StoreError`, so ``dvx`` prints
    it as one line, and still the OSError it was (same ``errno``) for callers that catch those."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def store_write_error(location: str, err: OSError) -> StoreWriteError:
    """A failed store write as the one line ``dvx`` prints for it."""
    wrapped = StoreWriteError(
        f"writing to {location} failed: {err.strerror or err}; what was committed stays, rerun to resume"
    )
    wrapped.errno = err.errno
    wrapped.__cause__ = err
    return wrapped


def is_storage_failure(err: BaseException) -> bool:
    """Whether ``err`` is the storage failing (an OSError, an object-store client's error), not a bug."""
    return isinstance(err, OSError) or type(err).__module__.split(".")[0] in _CLIENT_MODULES


def storage_error(location: str, err: BaseException, writing: bool) -> StoreError:
    """``err`` (a storage failure) as the one line ``dvx`` prints: a write keeps its errno."""
    if isinstance(err, StoreError):
        return err
    if writing and isinstance(err, OSError):
        return store_write_error(location, err)
    why = _first_line(err)
    hint = ""
    if "credentials" in why.lower():
        hint = " (set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role)"
    elif "connect" in why.lower() or "endpoint" in why.lower():
        hint = " (is the server up, and AWS_ENDPOINT_URL right?)"
    action = "writing to" if writing else "reading"
    return StoreAccessError(f"{action} {location} failed: {why}{hint}")


def _first_line(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return str(err.strerror)
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _storage(writing: bool) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate a :class:`Backend` method: storage failures become one-line StoreErrors."""

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def inner(self: Backend, *args: Any, **kwargs: Any) -> T:
            try:
                return fn(self, *args, **kwargs)
            except StoreError:
                raise
            except Exception as err:
                if not is_storage_failure(err):
                    raise
                raise storage_error(self.location, err, writing) from err

        return inner

    return wrap


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

    @property
    def is_local(self) -> bool:
        """Whether the store is a local (or shared POSIX) folder."""
        return isinstance(self.store, LocalStore)

    def local_root(self) -> str:
        """The folder of a local store (only where :attr:`is_local`)."""
        assert isinstance(self.store, LocalStore)
        return str(self.store.root)

    # ---- raw objects ---------------------------------------------------------------------------------
    @_storage(writing=False)
    def get_bytes(self, key: str) -> bytes | None:
        buf = sync(self.store.get(key, prototype=default_buffer_prototype()))
        return None if buf is None else buf.to_bytes()

    @_storage(writing=True)
    def put_bytes(self, key: str, data: bytes) -> None:
        self._check_writable(key)
        sync(self.store.set(key, default_buffer_prototype().buffer.from_bytes(data)))

    def get_json(self, key: str) -> Any | None:
        raw = self.get_bytes(key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError as err:  # JSONDecodeError, or UnicodeDecodeError for a NUL-filled file
            raise DamagedObjectError(f"{self.location}: {key} is not valid JSON ({err})") from err

    @_storage(writing=False)
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

    @_storage(writing=False)
    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of reads on this store (zarr's event loop); storage failures are one line."""
        return sync(coro)

    def put_json(self, key: str, obj: Any) -> None:
        self.put_bytes(key, json.dumps(obj, sort_keys=True, indent=1).encode())

    @_storage(writing=True)
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

    @_storage(writing=False)
    def exists(self, key: str) -> bool:
        return bool(sync(self.store.exists(key)))

    @_storage(writing=True)
    def delete(self, key: str) -> None:
        self._check_writable(key)
        sync(self.store.delete(key))

    @_storage(writing=True)
    def delete_prefix(self, prefix: str) -> None:
        self._check_writable(prefix)
        sync(self.store.delete_dir(prefix.rstrip("/")))

    @_storage(writing=False)
    def list_prefix(self, prefix: str) -> list[str]:
        async def collect() -> list[str]:
            return [k async for k in self.store.list_prefix(prefix)]

        return sorted(sync(collect()))

    @_storage(writing=False)
    def list_dir(self, prefix: str) -> list[str]:
        async def collect() -> list[str]:
            return [k async for k in self.store.list_dir(prefix.rstrip("/"))]

        return sorted(sync(collect()))

    @_storage(writing=False)
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

    @_storage(writing=False)
    def getsize(self, key: str) -> int:
        return int(sync(self.store.getsize(key)))

    @_storage(writing=False)
    def stat_prefix(self, prefix: str) -> dict[str, tuple[int, float]]:
        """key -> (stored bytes, modification time as a UNIX timestamp) of every object under ``prefix``.

        One directory walk on local disk, one recursive listing on object stores (no per-key requests).
        """
        prefix = prefix.strip("/")
        if isinstance(self.store, LocalStore):
            root = str(self.store.root)
            out: dict[str, tuple[int, float]] = {}
            _walk_local(os.path.join(root, prefix) if prefix else root, f"{prefix}/" if prefix else "", out)
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
        """The attributes of group ``path``; None if it has no zarr.json; DamagedObjectError (one line) if
        that is not a readable zarr v3 group document."""
        key = f"{path}/zarr.json" if path else "zarr.json"
        meta = self.get_json(key)
        if meta is None:
            return None
        if not isinstance(meta, dict) or meta.get("node_type") != "group":
            what = meta.get("node_type") if isinstance(meta, dict) else type(meta).__name__
            raise DamagedObjectError(f"{self.location}: {key} is a zarr {what}, not a group")
        attrs = meta.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise DamagedObjectError(f"{self.location}: {key} has attributes that are not a map")
        return dict(attrs)

    def _check_writable(self, key: str) -> None:
        if self.read_only:
            raise StoreError(f"{self.location} is opened read-only; refusing to write {key}")


def _walk_local(folder: str, rel: str, out: dict[str, tuple[int, float]]) -> None:
    """Every file under ``folder`` as ``rel + name`` -> (size, mtime): one ``scandir`` per folder and one
    ``stat`` per file, with no path objects (what ``ls``, ``gc`` and ``verify`` spent most time on)."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):  # removed while walking
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                _walk_local(entry.path, f"{rel}{entry.name}/", out)
                continue
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # removed while walking
            continue
        out[rel + entry.name] = (st.st_size, st.st_mtime)


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
        if path.is_file():
            raise StoreError(f"store path {str(path)!r} is a file, not a store folder")
        if not path.is_dir():
            raise NoStoreError(f"no dvx feature store at {str(path)!r}")
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
