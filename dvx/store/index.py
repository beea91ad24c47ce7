"""The commit index: which videos are visible, at which (T, block), and where their arrays are.

A video's arrays are written under a fresh generation id (``<video>~<gen>``) that no reader follows until
its commit record ``_index/commits/<video>~<gen>.json`` exists. The record is written last, whole and
atomically, so a reader sees either the previous state or the complete new one. Several commits may
cover one video (e.g. a later run adds timesteps); for each (video, T, block) the newest commit wins.
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from dvx import __version__


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

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["time_map"] = [list(x) for x in self.time_map]
        out["shapes"] = {k: list(v) for k, v in self.shapes.items()}
        for k in ("timesteps", "blocks", "frame_names", "source_size"):
            out[k] = list(out[k])
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Commit:
        return cls(
            video=d["video"],
            gen=d["gen"],
            timesteps=tuple(int(t) for t in d["timesteps"]),
            blocks=tuple(d["blocks"]),
            frame_names=tuple(d["frame_names"]),
            time_map=tuple(tuple(int(i) for i in x) for x in d["time_map"]),
            source_size=(int(d["source_size"][0]), int(d["source_size"][1])),
            shapes={k: tuple(int(i) for i in v) for k, v in d["shapes"].items()},
            nbytes=int(d["nbytes"]),
            written_at=d.get("written_at", ""),
            written_by=d.get("written_by", {}),
            dvx_version=d.get("dvx_version", ""),
        )

    def covers(self, t: int, block: str) -> bool:
        return t in self.timesteps and block in self.blocks


@dataclass(frozen=True)
class Failure:
    """A video skipped with ``--skip-bad``: why, and when."""

    video: str
    reason: str
    written_at: str = ""
    written_by: Mapping[str, Any] = field(default_factory=dict)


class IndexView:
    """A snapshot of a recipe's commits: for each video, the newest commit covering each (T, block)."""

    def __init__(self, commits: Iterable[Commit]) -> None:
        self.commits = sorted(commits, key=lambda c: (c.written_at, c.gen))
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
