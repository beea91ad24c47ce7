"""Open a zarr store from a path or any fsspec URL, plus the raw-object operations the index needs.

Everything dvx writes goes through one :class:`zarr.abc.store.Store`, so a store works the same on local
disk, a shared filesystem, an object store (``s3://...``) or in memory (``memory://``). Commit records and
claims are small JSON objects written whole: atomic on a local filesystem (zarr's LocalStore writes a
temp file and renames it) and on object stores (a PUT is all or nothing).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import zarr
from zarr.abc.store import Store
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import FsspecStore, LocalStore

from dvx.errors import StoreError


def is_url(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


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

    def get_many_json(self, keys: list[str], concurrency: int = 32) -> list[Any | None]:
        """Fetch many small JSON objects concurrently (object stores answer each GET in ~10-50 ms)."""
        import asyncio

        sem = asyncio.Semaphore(concurrency)

        async def one(key: str) -> Any | None:
            async with sem:
                buf = await self.store.get(key, prototype=default_buffer_prototype())
            return None if buf is None else json.loads(buf.to_bytes())

        async def all_() -> list[Any | None]:
            return list(await asyncio.gather(*(one(k) for k in keys)))

        return sync(all_()) if keys else []

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
            tmp.write_bytes(data)
            try:
                os.link(tmp, path)  # atomic create: fails if the key exists, never exposes a partial file
                return True
            except FileExistsError:
                return False
            finally:
                tmp.unlink(missing_ok=True)
        if sync(self.store.exists(key)):
            return False
        sync(self.store.set(key, default_buffer_prototype().buffer.from_bytes(data)))
        return True

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

    def getsize(self, key: str) -> int:
        return int(sync(self.store.getsize(key)))

    # ---- zarr nodes ----------------------------------------------------------------------------------
    def write_group(self, path: str, attrs: dict[str, Any]) -> None:
        """Write a group's zarr.json whole (idempotent for identical attrs; never deletes children)."""
        meta = {"zarr_format": 3, "node_type": "group", "attributes": attrs}
        self.put_json(f"{path}/zarr.json" if path else "zarr.json", meta)

    def group_attrs(self, path: str) -> dict[str, Any] | None:
        meta = self.get_json(f"{path}/zarr.json" if path else "zarr.json")
        if meta is None:
            return None
        if meta.get("node_type") != "group":
            raise StoreError(f"{self.location}: {path or '/'} is a zarr {meta.get('node_type')}, not a group")
        return dict(meta.get("attributes") or {})

    def open_array(self, path: str) -> zarr.Array:
        return zarr.open_array(store=self.store, path=path, mode="r" if self.read_only else "r+")

    def _check_writable(self, key: str) -> None:
        if self.read_only:
            raise StoreError(f"{self.location} is opened read-only; refusing to write {key}")


def _open_store(location: str, read_only: bool, storage_options: dict[str, Any] | None) -> Store:
    if is_url(location):
        try:
            return FsspecStore.from_url(location, read_only=read_only, storage_options=storage_options)
        except (ImportError, ValueError) as err:
            raise StoreError(f"cannot open store {location!r}: {err}") from err
    path = Path(location.removeprefix("file://")).expanduser()
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
