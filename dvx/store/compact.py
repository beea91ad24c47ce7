"""The compacted index: a recipe's commit records in one file, ``_index/compact.json`` -- a cache only.

Opening a recipe's index (every ``cache ls``, ``gc``, probe process and DataLoader worker) read every
commit record file: one small read and one JSON parse + sha256 digest per video, most of the time of
``index()`` at 10k videos. The compacted index holds copies of the records, so an open reads one file
plus one listing of the commits folder.

**The commit records stay the source of truth.** The compact file is trusted for a record only where
the record file itself is listed now with the very size and modification time the compact file noted
for it; every other listed record (newer than the compact file, rewritten, or not in it) is read and
checked on its own, and a compact entry whose record file is gone (``verify --repair``, ``gc``) is
dropped. So the compact file can never make visible what no record file commits, nor keep visible what
a removed record committed. It checks itself: a header line with its format, its recipe's fingerprint
and the sha256 of its body; a compact file that fails any check (damaged, cut short, another recipe, a
newer format) is ignored -- the index is read from the records as if it were absent -- and rebuilt.
Only records that passed every check of :func:`~dvx.store.index.parse_commit` (digest included) are
copied in; a damaged record is never compacted, so it is read, and reported, on every open.

**Who rebuilds it.** Any index open with write access (an extraction run at its start, ``gc``,
``verify``) when the listing holds at least :data:`REBUILD_AFTER` records the compact file does not
cover, or the compact file is missing or damaged while records exist, and ``gc`` / ``verify --repair``
after removing records. The rebuild writes the whole file in one atomic step (local disk: temp file +
rename; object stores: one PUT), so a reader sees the old or the new file, never half of one. Two
rebuilders racing both write complete files; whichever lands last is valid for what it covers, and
anything newer is read from its record. Read-only opens (``cache ls``, probes) never write it; they read
the uncovered records individually, which is correct, only slower.

**Local stores only.** Object stores list modification times in whole seconds (S3), too coarse to tell
a record rewritten in place within the same second with the same size; there every open reads the
records (in concurrent batches), as before. A bit flip inside a local record file that leaves its size
and modification time alone is seen by ``dvx cache verify``, which always reads the record files
themselves, not by an open through the compact file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from dvx.errors import StoreError
from dvx.store import layout
from dvx.store.backend import Backend
from dvx.store.index import Commit, DamagedRecord, check_commit

#: the compact file format this dvx writes and reads
COMPACT_FORMAT = 1
#: a writable open rebuilds the compact file once this many listed records are not in it
REBUILD_AFTER = 64

#: a record file as listed: (bytes, modification time)
Stat = tuple[int, float]


@dataclass(frozen=True)
class CompactEntry:
    """One record as the compact file holds it: the record file's size and mtime when it was copied, and
    on a local store the stored bytes of each of its arrays, measured once when it was first copied (what
    ``cache ls`` and ``gc`` would otherwise ``stat`` again for every array on every run)."""

    size: int
    mtime: float
    record: dict[str, Any]
    stored: dict[str, int] | None = None  # array_slot(T, block) -> stored bytes (local stores), when noted


def encode(fingerprint: str, entries: dict[str, CompactEntry]) -> bytes:
    """The compact file: a header line (format, recipe, count, sha256 of the body), then the body (name
    below the commits folder -> [size, mtime, record, stored bytes per array or null])."""
    body = json.dumps(
        {name: [e.size, e.mtime, e.record, e.stored] for name, e in sorted(entries.items())},
        separators=(",", ":"),
        allow_nan=False,
    ).encode()
    header = {
        "format": COMPACT_FORMAT,
        "recipe": fingerprint,
        "records": len(entries),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + body


def decode(raw: bytes, fingerprint: str) -> dict[str, CompactEntry]:
    """The entries of a compact file; :class:`DamagedRecord` (one line: why) when it fails a check."""
    head, nl, body = raw.partition(b"\n")
    try:
        header = json.loads(head)
    except ValueError as err:
        raise DamagedRecord(f"unreadable header ({err})") from None
    if not nl or not isinstance(header, dict):
        raise DamagedRecord("no header line")
    if header.get("format") != COMPACT_FORMAT:
        raise DamagedRecord(f"format {header.get('format')!r}, this dvx reads {COMPACT_FORMAT}")
    if header.get("recipe") != fingerprint:
        raise DamagedRecord("written for another recipe")
    if header.get("sha256") != hashlib.sha256(body).hexdigest():
        raise DamagedRecord("its body does not match its checksum")
    try:
        table = json.loads(body)
        out = {
            str(name): CompactEntry(int(size), float(mtime), record, _stored(stored))
            for name, (size, mtime, record, stored) in table.items()
            if isinstance(record, dict)
        }
    except (ValueError, TypeError, AttributeError) as err:
        raise DamagedRecord(f"unreadable body ({type(err).__name__})") from None
    if len(out) != header.get("records"):
        raise DamagedRecord("its entry count does not match its header")
    return out


def _stored(value: Any) -> dict[str, int] | None:
    if value is None:
        return None
    return {str(k): int(v) for k, v in value.items()}


def load(backend: Backend, path: str, fingerprint: str) -> tuple[dict[str, CompactEntry], str]:
    """(entries, state) of a recipe group's compact file; state is ``ok``, ``absent`` or ``damaged``
    (damaged, cut short, another recipe's, a newer format: no entries)."""
    try:
        raw = backend.get_bytes(layout.compact_key(path))
    except StoreError:
        return {}, "damaged"
    if raw is None:
        return {}, "absent"
    try:
        return decode(raw, fingerprint), "ok"
    except DamagedRecord:
        return {}, "damaged"


def covered(entry: CompactEntry | None, stat: Stat, name: str, fingerprint: str) -> Commit | None:
    """The commit of a listed record, from its compact copy, when the copy covers it: same size and
    modification time, and the copy passes a record's checks (its digest excepted: see above). A backend
    that lists no modification times (an in-memory store) is never covered: its records are read."""
    if entry is None or stat[1] <= 0 or entry.size != stat[0] or entry.mtime != stat[1]:
        return None
    parsed = layout.parse_commit_name(name)
    if parsed is None:
        return None
    try:
        return check_commit(entry.record, parsed[0], parsed[1], fingerprint, digest=False)
    except DamagedRecord:
        return None


def save(backend: Backend, path: str, fingerprint: str, entries: dict[str, CompactEntry]) -> bool:
    """Write the compact file whole, in one atomic step; False (nothing written) when it cannot be, e.g.
    on a read-only store: the compact file is a cache, so failing to write it is never an error."""
    if backend.read_only:
        return False
    try:
        backend.put_bytes(layout.compact_key(path), encode(fingerprint, entries))
    except (StoreError, OSError):
        return False
    return True
