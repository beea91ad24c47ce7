"""The commit index: which videos are visible, at which (T, block), and where their arrays are.

A video's arrays are written under a fresh generation id (``<video>~<gen>``) that no reader follows until
its commit record ``_index/commits/<video>~<gen>.json`` exists. The record is written last, whole and
atomically, so a reader sees either the previous state or the complete new one. Several commits may
cover one video (e.g. a later run adds timesteps); for each (video, T, block) the newest commit wins.

**Records check themselves** (format 2). A record carries a ``digest``: the sha256 of its own canonical
JSON without that field, so a changed byte anywhere in it (a bit flip that still parses as JSON, an edit)
is found on every read, and the record is *damaged*. So is a record whose ``video`` / ``gen`` differ from
its file name, or whose ``recipe`` fingerprint is not its group's. A damaged record hides its whole video
(its content cannot say which (T, block) it covered, and falling back to an older commit could serve
superseded features): :class:`IndexView` lists it under ``damaged`` and readers name the repair. For each
array the record also holds the sha256 of the array's ``zarr.json`` bytes and its chunk count, which is
what lets a reader check an array cheaply (dvx/store/reader.py), and the compute environment that
produced it (``env``: device, dtype, threads, library versions).

Records written before format 2 (no ``format``, no ``digest``) are *legacy*: read as before, with the
structural checks only; ``dvx cache verify`` counts them.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dvx import __version__

#: the commit record format this dvx writes (records without ``format`` are legacy, format 1)
COMMIT_FORMAT = 2


class DamagedRecord(ValueError):
    """A commit record that must not be trusted: unreadable, its digest wrong, or naming another file."""


def new_gen() -> str:
    return uuid.uuid4().hex[:12]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def writer_identity() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    job = os.environ.get("SLURM_JOB_ID") or os.environ.get("TORCHELASTIC_RUN_ID") or ""
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid(), "job": job}


@dataclass(frozen=True)
class ArrayEntry:
    """What a commit record says about one of its arrays: the sha256 of the array's ``zarr.json`` bytes
    (shape, chunking, codec chain, fill value exactly as written) and how many chunks it has."""

    meta: str
    chunks: int

    def to_json(self) -> dict[str, Any]:
        return {"meta": self.meta, "chunks": self.chunks}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ArrayEntry:
        meta, chunks = d["meta"], d["chunks"]
        if not isinstance(meta, str) or not isinstance(chunks, int) or chunks < 0:
            raise ValueError(f"bad array entry {dict(d)}")
        return cls(meta, chunks)


def array_slot(t: int, block: str) -> str:
    """The key of (T, block) in a record's ``arrays``: the array's path below the recipe group, minus
    the video (``t0050/up.1``)."""
    return f"t{t:04d}/{block}"


def canonical_digest(body: Mapping[str, Any]) -> str:
    """sha256 of ``body`` as canonical JSON (sorted keys, no whitespace): what a record's ``digest`` is."""
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()


@dataclass(frozen=True)
class Commit:
    """What one commit makes visible: a video's arrays for some timesteps and blocks."""

    video: str
    gen: str
    timesteps: tuple[int, ...]
    blocks: tuple[str, ...]
    frame_names: tuple[str, ...]  # names of the input frames used (after stride / max_frames)
    time_map: tuple[tuple[int, ...], ...]  # stored temporal index -> indices into frame_names
    source_size: tuple[int, int]  # (H, W) of the original frames
    shapes: Mapping[str, tuple[int, ...]]  # block -> (stored frames, C, h, w)
    nbytes: int  # uncompressed bytes of all arrays of this commit
    written_at: str = ""
    written_by: Mapping[str, Any] = field(default_factory=dict)
    dvx_version: str = __version__
    recipe: str = ""  # fingerprint of the recipe that computed it (its group's)
    arrays: Mapping[str, ArrayEntry] = field(default_factory=dict)  # array_slot(T, block) -> entry
    env: Mapping[str, Any] = field(default_factory=dict)  # compute environment (provenance)
    legacy: bool = field(default=False, compare=False)  # read from a record without a digest

    def to_json(self) -> dict[str, Any]:
        """The record as written (format 2): every field, then ``digest`` over all of them."""
        body = {
            "format": COMMIT_FORMAT,
            "video": self.video,
            "gen": self.gen,
            "timesteps": list(self.timesteps),
            "blocks": list(self.blocks),
            "frame_names": list(self.frame_names),
            "time_map": [list(x) for x in self.time_map],
            "source_size": list(self.source_size),
            "shapes": {k: list(v) for k, v in self.shapes.items()},
            "nbytes": self.nbytes,
            "written_at": self.written_at,
            "written_by": dict(self.written_by),
            "dvx_version": self.dvx_version,
            "recipe": self.recipe,
            "arrays": {k: v.to_json() for k, v in self.arrays.items()},
            "env": dict(self.env),
        }
        return {**body, "digest": canonical_digest(body)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any], legacy: bool = False) -> Commit:
        """The commit in record ``d`` (no checks beyond the fields' types: see :func:`parse_commit`)."""
        return cls(
            video=_text(d["video"]),
            gen=_text(d["gen"]),
            timesteps=tuple(int(t) for t in d["timesteps"]),
            blocks=tuple(_text(b) for b in d["blocks"]),
            frame_names=tuple(_text(n) for n in d["frame_names"]),
            time_map=tuple(tuple(int(i) for i in x) for x in d["time_map"]),
            source_size=(int(d["source_size"][0]), int(d["source_size"][1])),
            shapes={_text(k): tuple(int(i) for i in v) for k, v in d["shapes"].items()},
            nbytes=int(d["nbytes"]),
            written_at=_text(d.get("written_at", "")),
            written_by=_map(d.get("written_by", {})),
            dvx_version=_text(d.get("dvx_version", "")),
            recipe=_text(d.get("recipe", "")),
            arrays={_text(k): ArrayEntry.from_json(v) for k, v in _map(d.get("arrays", {})).items()},
            env=_map(d.get("env", {})),
            legacy=legacy,
        )

    def covers(self, t: int, block: str) -> bool:
        return t in self.timesteps and block in self.blocks

    def entry(self, t: int, block: str) -> ArrayEntry | None:
        """What the record says about the (T, block) array; None for a legacy record."""
        return self.arrays.get(array_slot(t, block))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _map(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {value!r}")
    return value


def parse_commit(raw: bytes, video: str, gen: str, fingerprint: str) -> Commit:
    """The commit stored as ``<video>~<gen>.json`` in the group of recipe ``fingerprint``.

    Raises :class:`DamagedRecord` (one line: why) when the record is not valid JSON, lacks a field, was
    written in a newer format, fails its digest, names another video or generation than its file, belongs
    to another recipe, or does not describe every (T, block) array it commits.
    """
    try:
        d = json.loads(raw)
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError (a NUL-filled file)
        raise DamagedRecord(f"not valid JSON ({err})") from None
    return check_commit(d, video, gen, fingerprint)


def check_commit(d: Any, video: str, gen: str, fingerprint: str, digest: bool = True) -> Commit:
    """The commit in the parsed record ``d`` (see :func:`parse_commit`). ``digest=False`` skips only the
    digest check: for a copy of a record whose digest was checked when it was copied, under a checksum
    of its own (the compacted index, dvx/store/compact.py)."""
    if not isinstance(d, dict):
        raise DamagedRecord("not a JSON object")
    legacy = "format" not in d and "digest" not in d
    if not legacy:
        if d.get("format") != COMMIT_FORMAT:
            raise DamagedRecord(
                f"record format {d.get('format')!r}: this dvx reads format {COMMIT_FORMAT} (or legacy)"
            )
        body = {k: v for k, v in d.items() if k != "digest"}
        try:
            ok = not digest or d.get("digest") == canonical_digest(body)
        except ValueError:  # NaN or infinity somewhere: never written by dvx
            ok = False
        if not ok:
            raise DamagedRecord("its content does not match its digest (changed since it was written)")
    try:
        commit = Commit.from_json(d, legacy=legacy)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise DamagedRecord(f"unreadable record ({type(err).__name__}: {err})") from None
    if (commit.video, commit.gen) != (video, gen):
        raise DamagedRecord(
            f"it names video {commit.video!r} generation {commit.gen!r}, but its file is {video}~{gen}"
        )
    if set(commit.shapes) != set(commit.blocks):
        raise DamagedRecord(f"shapes cover {sorted(commit.shapes)}, blocks are {list(commit.blocks)}")
    if not legacy:
        if commit.recipe != fingerprint:
            raise DamagedRecord(f"it was written for recipe {commit.recipe[:8]!r}, not this group's")
        want = {array_slot(t, b) for t in commit.timesteps for b in commit.blocks}
        if set(commit.arrays) != want:
            raise DamagedRecord(f"its arrays {sorted(commit.arrays)} are not its (T, block) set")
    return commit


@dataclass(frozen=True)
class Failure:
    """A video skipped with ``--skip-bad``: why, and when."""

    video: str
    reason: str
    written_at: str = ""
    written_by: Mapping[str, Any] = field(default_factory=dict)


class IndexView:
    """A snapshot of a recipe's commits: for each video, the newest commit covering each (T, block).

    ``damaged``: video -> why, for videos with a damaged commit record; such a video is not visible at all
    (no lookup, no slot, not in ``videos()``) until ``dvx cache verify --repair`` removes the record.
    """

    def __init__(self, commits: Iterable[Commit], damaged: Mapping[str, str] | None = None) -> None:
        self.damaged = dict(damaged or {})
        self.commits = sorted(
            (c for c in commits if c.video not in self.damaged), key=lambda c: (c.written_at, c.gen)
        )
        self._by_video: dict[str, dict[tuple[int, str], Commit]] = {}
        for c in self.commits:  # oldest first, so newer commits overwrite
            slot = self._by_video.setdefault(c.video, {})
            for t in c.timesteps:
                for b in c.blocks:
                    slot[(t, b)] = c

    def videos(self, t: int | None = None, block: str | None = None) -> list[str]:
        return sorted(
            v
            for v, slots in self._by_video.items()
            if any((t is None or k[0] == t) and (block is None or k[1] == block) for k in slots)
        )

    def lookup(self, video: str, t: int, block: str) -> Commit | None:
        return self._by_video.get(video, {}).get((t, block))

    def has(self, video: str, timesteps: Iterable[int], blocks: Iterable[str]) -> bool:
        slots = self._by_video.get(video, {})
        return all((t, b) in slots for t in timesteps for b in blocks)

    def missing(self, video: str, timesteps: Iterable[int], blocks: Iterable[str]) -> list[tuple[int, str]]:
        slots = self._by_video.get(video, {})
        return [(t, b) for t in timesteps for b in blocks if (t, b) not in slots]

    def slots(self, video: str) -> list[tuple[int, str, Commit]]:
        """(T, block, the commit that holds it) for every (T, block) stored for ``video``, sorted."""
        return [(t, b, c) for (t, b), c in sorted(self._by_video.get(video, {}).items())]

    def timesteps(self) -> list[int]:
        return sorted({k[0] for slots in self._by_video.values() for k in slots})

    def blocks(self) -> list[str]:
        return sorted({k[1] for slots in self._by_video.values() for k in slots})

    def latest(self, video: str) -> Commit | None:
        slots = self._by_video.get(video)
        return max(slots.values(), key=lambda c: (c.written_at, c.gen)) if slots else None

    def live_gens(self) -> set[tuple[str, str]]:
        """(video, gen) pairs some (T, block) still reads; older superseded commits are not live."""
        return {(c.video, c.gen) for slots in self._by_video.values() for c in slots.values()}
