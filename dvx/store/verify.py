"""``dvx cache verify``: check every visible array chunk against its checksum and name what to re-extract.

For each recipe group, every (video, T, block) a reader would see (the newest commit covering it) is
checked: the array's metadata exists and matches the commit record (shape, float16), every chunk along
the frame axis exists (a missing chunk would silently read as NaN), and every chunk decodes with its
crc32c checksum intact (a flipped byte or a truncated chunk fails it). Unreadable commit records are
reported too. ``repair`` *uncommits* the damaged commits (deletes their commit records, nothing else), so
the next ``dvx extract`` with the same options recomputes exactly those videos; the damaged arrays become
unreferenced and ``dvx cache gc`` removes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dvx.store import layout
from dvx.store.group import RecipeGroup
from dvx.store.index import Commit, IndexView
from dvx.store.root import FeatureStore

Log = Callable[[str], None]


@dataclass(frozen=True)
class Problem:
    group: str  # <dataset>/<model>@<fp8>
    video: str
    gen: str
    kind: str  # bad-commit | missing-array | bad-metadata | missing-chunk | corrupt-chunk
    key: str  # the object (or array) at fault
    detail: str
    t: int | None = None
    block: str | None = None

    def line(self) -> str:
        where = f" T={self.t} {self.block}" if self.t is not None else ""
        return f"{self.group} {self.video}{where}: {self.kind} {self.key} ({self.detail})"


@dataclass
class VerifyReport:
    groups: int = 0
    videos: int = 0
    arrays: int = 0
    chunks: int = 0
    nbytes: int = 0  # decoded bytes checked
    problems: list[Problem] = field(default_factory=list)
    uncommitted: dict[str, list[str]] = field(default_factory=dict)  # group -> videos uncommitted by repair

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_reextract(self) -> dict[str, list[str]]:
        """group -> the videos whose features must be extracted again."""
        out: dict[str, set[str]] = {}
        for p in self.problems:
            out.setdefault(p.group, set()).add(p.video)
        return {g: sorted(v) for g, v in sorted(out.items())}

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "groups": self.groups,
            "videos": self.videos,
            "arrays": self.arrays,
            "chunks": self.chunks,
            "bytes": self.nbytes,
            "problems": [p.__dict__ for p in self.problems],
            "to_reextract": self.to_reextract(),
            "uncommitted": self.uncommitted,
        }


def verify(
    store: FeatureStore,
    dataset: str | None = None,
    model: str | None = None,
    videos: Iterable[str] | None = None,
    repair: bool = False,
    quick: bool = False,
    log: Log | None = None,
) -> VerifyReport:
    """Check the store (optionally one dataset / model / some videos); with ``repair``, uncommit damage.

    ``quick`` checks metadata and chunk presence only (no decoding, so no checksums).
    """
    log = log or (lambda _: None)
    report = VerifyReport()
    wanted = set(videos) if videos is not None else None
    for group in store.groups(dataset, model):
        report.groups += 1
        name = f"{group.dataset}/{group.recipe.name}"
        commits, bad = _read_commits(group, name, wanted)
        report.problems += bad
        index = IndexView(commits)
        targets = [v for v in index.videos() if wanted is None or v in wanted]
        # one listing of the group (after its commit records, so it holds every array they name): on an
        # object store that is one request per 1,000 objects instead of one per array
        present = set(group.backend.stat_prefix(group.path)) if targets else set()
        problems = []
        for video in targets:
            problems += _check_video(group, name, index, video, quick, report, present)
        report.videos += len(targets)
        report.problems += problems
        if problems or bad:
            log(f"{name}: {len({p.video for p in problems + bad})} damaged video(s)")
        if repair and (problems or bad):
            report.uncommitted[name] = _repair(group, name, bad, problems, quick, log, present, wanted)
    return report


def _read_commits(
    group: RecipeGroup, name: str, wanted: set[str] | None
) -> tuple[list[Commit], list[Problem]]:
    """The group's commits, and a problem for each unreadable record of the ``wanted`` videos (all if
    None)."""
    commits, bad = group.commit_records()
    problems = [
        Problem(name, video, gen, "bad-commit", key, why)
        for video, gen, key, why in bad
        if wanted is None or video in wanted
    ]
    return commits, problems


def _check_video(
    group: RecipeGroup,
    name: str,
    index: IndexView,
    video: str,
    quick: bool,
    report: VerifyReport,
    present: set[str],
) -> list[Problem]:
    problems = []
    for t, block, commit in index.slots(video):
        problem = _check_array(group, name, commit, t, block, quick, report, present)
        if problem is not None:
            problems.append(problem)
    return problems


def _check_array(
    group: RecipeGroup,
    name: str,
    commit: Commit,
    t: int,
    block: str,
    quick: bool,
    report: VerifyReport,
    present: set[str],
) -> Problem | None:
    """Check one array; ``present``: the keys of the group's listing (a chunk written after it, e.g. by a
    commit made during repair, is looked up on its own before it is called missing)."""
    key = layout.array_key(group.path, t, block, commit.video, commit.gen)

    def problem(kind: str, where: str, detail: str) -> Problem:
        return Problem(name, commit.video, commit.gen, kind, where, detail, t, block)

    report.arrays += 1
    try:
        arr = group.backend.open_array(key)
    except Exception as err:  # absent or unparseable metadata
        kind = "missing-array" if not group.backend.exists(f"{key}/zarr.json") else "bad-metadata"
        return problem(kind, key, f"{type(err).__name__}: {err}")
    want = tuple(commit.shapes.get(block, ()))
    if tuple(arr.shape) != want or str(arr.dtype) != "float16":
        return problem(
            "bad-metadata", key, f"shape {tuple(arr.shape)} {arr.dtype}, commit says {want} float16"
        )
    n, step = arr.shape[0], arr.chunks[0]
    nchunks = math.ceil(n / step) if n else 0
    if any(c != s for c, s in zip(arr.chunks[1:], arr.shape[1:], strict=True)):
        return problem("bad-metadata", key, f"chunks {arr.chunks} split a frame")
    for i in range(nchunks):
        chunk_key = f"{key}/{_chunk_name(arr, i)}"
        report.chunks += 1
        if chunk_key not in present and not group.backend.exists(chunk_key):
            return problem("missing-chunk", chunk_key, f"frames {i * step}..{min(n, (i + 1) * step) - 1}")
        if quick:
            continue
        try:
            data = arr[i * step : min(n, (i + 1) * step)]
        except Exception as err:  # crc32c mismatch, truncated or undecodable chunk
            return problem("corrupt-chunk", chunk_key, f"{type(err).__name__}: {err}")
        report.nbytes += data.nbytes
    return None


def _chunk_name(arr: Any, i: int) -> str:
    """The store key of chunk ``i`` along the frame axis (the other axes are one chunk each)."""
    return arr.metadata.encode_chunk_key((i,) + (0,) * (arr.ndim - 1))


def _repair(
    group: RecipeGroup,
    name: str,
    bad: list[Problem],
    problems: list[Problem],
    quick: bool,
    log: Log,
    present: set[str],
    wanted: set[str] | None,
) -> list[str]:
    """Delete the commit records of damaged commits (of the ``wanted`` videos only, all if None); repeat
    while older commits that become visible are damaged too. Returns the videos whose visible features
    changed."""
    touched: set[str] = set()
    for _ in range(100):  # each round removes at least one commit record, so this ends
        gens = {(p.video, p.gen) for p in bad + problems}
        if not gens:
            break
        for video, gen in sorted(gens):
            group.backend.delete(layout.commit_key(group.path, video, gen))
            touched.add(video)
            log(f"{name} {video}: uncommitted generation {gen}")
        commits, bad = _read_commits(group, name, wanted)
        index = IndexView(commits)
        scratch = VerifyReport()
        problems = []
        for video in sorted({v for v, _ in gens}):
            problems += _check_video(group, name, index, video, quick, scratch, present)
    return sorted(touched)
