"""What a recipe group holds on disk, for ``cache ls`` and ``gc``, without a stat of every array file.

``cache ls`` (stored bytes, per T and block, reclaimable) and ``gc`` (leftovers) need the size of every
object under a recipe and the age of the ones no reader sees. A walk of the whole group is one directory
read per array and one ``stat`` per file: most of their time at 10k videos. On a local store this
listing instead:

- reads the names in each ``t<T>/<block>/`` folder (one directory read per (T, block), no ``stat``);
- for an array the index resolves to, whose stored size the compacted index noted when it copied the
  record (:meth:`RecipeGroup.stored_sizes`), takes that size, without entering its folder;
- walks (read + ``stat``) everything else: every other array folder (uncommitted, superseded, or not
  yet noted: exactly what gc may remove, with its files' ages), ``_index/`` (claims, commit records,
  temp files), group metadata and anything unexpected.

So the sizes of live arrays are those measured when their records were compacted (a generation is
committed only after all its writes completed, and nothing rewrites a committed array), and a damaged
chunk file is found by ``dvx cache verify``, not by ``ls``. Other backends list the group recursively
(on S3 one request per 1,000 objects, sizes included), as before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from dvx.store import layout
from dvx.store.backend import _walk_local
from dvx.store.group import RecipeGroup

#: (T, block, video, gen) of one array
Slot = tuple[int, str, str, str]


@dataclass
class Listing:
    """A recipe group's objects: ``objects`` key -> (bytes, mtime) of what was walked, and ``noted``: the
    live arrays taken from the compacted index, (T, block, video, gen) -> stored bytes."""

    objects: dict[str, tuple[int, float]]
    noted: dict[Slot, int] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(b for b, _ in self.objects.values()) + sum(self.noted.values())


def list_group(group: RecipeGroup, live: set[Slot] | None = None) -> Listing:
    """Every object of ``group``; on a local store the arrays in ``live`` (default: every slot the index
    resolves to) whose stored size is noted are not entered. Call after ``group.index()``."""
    backend = group.backend
    if not backend.is_local:
        return Listing(backend.stat_prefix(group.path))
    sizes = group.stored_sizes()
    if live is None:
        index = group.index()
        live = {(t, b, v, c.gen) for v in index.videos() for t, b, c in index.slots(v)}
    noted = {s: sizes[s] for s in live if s in sizes}
    root = os.path.join(backend.local_root(), group.path)
    out: dict[str, tuple[int, float]] = {}
    base = f"{group.path}/"
    try:
        top = list(os.scandir(root))
    except (FileNotFoundError, NotADirectoryError):
        return Listing({})
    found: dict[Slot, int] = {}
    for entry in top:
        t = layout.parse_t_key(entry.name)
        if t is None or not entry.is_dir(follow_symlinks=False):
            _walk_entry(entry, base, out)
            continue
        for inner in _scan(entry.path):
            rel = f"{base}{entry.name}/"
            if not inner.is_dir(follow_symlinks=False):
                _walk_entry(inner, rel, out)
                continue
            for arr in _scan(inner.path):
                video, sep, gen = arr.name.rpartition(layout.GEN_SEP)
                slot = (t, inner.name, video, gen)
                if sep and slot in noted and arr.is_dir(follow_symlinks=False):
                    found[slot] = noted[slot]
                else:
                    _walk_entry(arr, f"{rel}{inner.name}/", out)
    return Listing(out, found)


def _scan(folder: str) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):  # removed while listing
        return []


def _walk_entry(entry: os.DirEntry[str], rel: str, out: dict[str, tuple[int, float]]) -> None:
    try:
        if entry.is_dir(follow_symlinks=False):
            _walk_local(entry.path, f"{rel}{entry.name}/", out)
            return
        st = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return
    out[rel + entry.name] = (st.st_size, st.st_mtime)


def list_keys(group: RecipeGroup) -> set[str]:
    """The key of every object under ``group``, for presence checks (``verify``): on a local store one
    directory read per folder and no ``stat`` at all; elsewhere the group's recursive listing."""
    backend = group.backend
    if not backend.is_local:
        return set(backend.stat_prefix(group.path))
    out: set[str] = set()
    _names(os.path.join(backend.local_root(), group.path), f"{group.path}/", out)
    return out


def _names(folder: str, rel: str, out: set[str]) -> None:
    for entry in _scan(folder):
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if is_dir:
            _names(entry.path, f"{rel}{entry.name}/", out)
        else:
            out.add(rel + entry.name)
