"""``dvx cache verify``: find every damaged state of a store, name what to re-extract, and repair.

Checked, per recipe group (one damaged group never stops the others):

- the group metadata: the root (at open), each dataset group, each recipe group (missing, unreadable, no
  recipe, another recipe than its folder), each timestep group;
- every commit record: a damaged one (unreadable, digest wrong, naming another file or recipe) hides its
  video and is reported with the file it is; records from before digests are counted as legacy;
- every (video, T, block) a reader would see: the same checks a read makes (dvx/store/reader.py) --
  metadata bytes as recorded, every chunk present, and (unless ``quick``) every chunk's crc32c;
- claims still marked held that are free (expired, implausible, holder gone) are listed as stale.

``repair`` acts only on files that exist: it restores damaged group metadata from what the store holds
(the root and a dataset group are rewritten; a recipe group from its second copy ``_index/recipe.json``;
the root is restored when the store is opened, ``FeatureStore.open(restore_root=True)``), and it
*uncommits* damaged commits by deleting their record files -- the file that was read, never a key built
from a record's (untrusted) content -- repeating while an older commit that becomes visible is damaged too.
The next ``dvx extract`` with the same options recomputes exactly those videos (and rewrites a damaged
timestep group); the damaged arrays become unreferenced and ``dvx cache gc`` removes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from dvx.progress import progress
from dvx.store import layout
from dvx.store.backend import DamagedObjectError
from dvx.store.claims import stale_claims
from dvx.store.group import RecipeGroup
from dvx.store.index import Commit, IndexView
from dvx.store.listing import list_keys
from dvx.store.reader import ArrayDamage, check_presence, read_array
from dvx.store.root import FeatureStore

Log = Callable[[str], None]

BAD_COMMIT, BAD_GROUP = "bad-commit", "bad-group"


@dataclass(frozen=True)
class Problem:
    group: str  # <dataset>/<model>@<fp8> (or the damaged group's path)
    video: str  # "" for group metadata
    gen: str
    kind: str  # bad-group | bad-commit | missing-array | bad-metadata | missing-chunk | corrupt-chunk
    key: str  # the object (or array) at fault
    detail: str
    t: int | None = None
    block: str | None = None

    def line(self) -> str:
        where = "" if self.t is None else f" T={self.t}" + (f" {self.block}" if self.block else "")
        video = f" {self.video}" if self.video else ""
        return f"{self.group}{video}{where}: {self.kind} {self.key} ({self.detail})"


@dataclass
class VerifyReport:
    groups: int = 0
    videos: int = 0
    arrays: int = 0
    chunks: int = 0
    nbytes: int = 0  # decoded bytes checked
    legacy: int = 0  # commit records written before records carried digests
    problems: list[Problem] = field(default_factory=list)
    stale_claims: list[dict[str, str]] = field(default_factory=list)  # group, video, holder, why
    restored: list[str] = field(default_factory=list)  # group metadata rewritten by repair
    unrestorable: list[str] = field(default_factory=list)  # damaged groups repair found no copy of
    uncommitted: dict[str, list[str]] = field(default_factory=dict)  # group -> videos uncommitted by repair

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_reextract(self) -> dict[str, list[str]]:
        """group -> the videos whose features must be extracted again."""
        out: dict[str, set[str]] = {}
        for p in self.problems:
            if p.video:
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
            "legacy_records": self.legacy,
            "problems": [p.__dict__ for p in self.problems],
            "to_reextract": self.to_reextract(),
            "stale_claims": self.stale_claims,
            "restored": self.restored,
            "unrestorable": self.unrestorable,
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
    show_progress: bool = False,
) -> VerifyReport:
    """Check the store (optionally one dataset / model / some videos); with ``repair``, restore damaged
    group metadata and uncommit damaged commits.

    ``quick`` checks metadata and chunk presence only (no decoding, so no checksums).
    """
    log = log or (lambda _: None)
    report = VerifyReport()
    wanted = set(videos) if videos is not None else None
    survey = store.survey(dataset, model)
    for node in survey.damaged:
        if node.newer:  # not damage: a recipe this dvx cannot read, left alone
            log(node.line(store.location))
            continue
        detail = node.why if node.restorable else f"{node.why}; no intact copy to restore it from"
        report.problems.append(Problem(node.path, "", "", BAD_GROUP, f"{node.path}/zarr.json", detail))
        if repair:
            if store.restore(node):
                report.restored.append(node.path)
                log(f"{node.path}: restored its zarr.json")
            else:
                report.unrestorable.append(node.line(store.location))
    if report.restored:  # the restored recipe groups are checked like the others
        survey = store.survey(dataset, model)
    for group in survey.groups:
        _verify_group(group, report, wanted, repair, quick, log, show_progress)
    return report


def _verify_group(
    group: RecipeGroup,
    report: VerifyReport,
    wanted: set[str] | None,
    repair: bool,
    quick: bool,
    log: Log,
    show_progress: bool = False,
) -> None:
    report.groups += 1
    name = f"{group.dataset}/{group.recipe.name}"
    commits, bad = _read_commits(group, name, wanted)
    report.legacy += sum(c.legacy for c in commits if wanted is None or c.video in wanted)
    index = IndexView(commits, {p.video: p.detail for p in bad})
    targets = [v for v in index.videos() if wanted is None or v in wanted]
    # one listing of the group (after its commit records, so it holds every array they name): on an
    # object store that is one request per 1,000 objects instead of one per array
    present = list_keys(group)  # names only: presence needs no sizes
    problems = _check_timestep_groups(group, name, index)
    for video in progress(targets, f"verify {name}", "video", show_progress):
        problems += _check_video(group, name, index, video, quick, report, present)
    report.videos += len(targets)
    report.problems += bad + problems
    now = time.time()
    for video, (rec, why) in stale_claims(group, now, keys=present).items():
        report.stale_claims.append({"group": name, "video": video, "holder": rec.holder(), "why": why})
    damaged_videos = {p.video for p in problems + bad if p.video}
    if damaged_videos:
        log(f"{name}: {len(damaged_videos)} damaged video(s)")
    if repair and damaged_videos:
        report.uncommitted[name] = _repair(group, name, bad, problems, quick, log, present, wanted)


def _read_commits(
    group: RecipeGroup, name: str, wanted: set[str] | None
) -> tuple[list[Commit], list[Problem]]:
    """The group's intact commits, and a problem for each damaged record of the ``wanted`` videos (all if
    None), naming the record's file."""
    commits, bad = group.commit_records()
    problems = [
        Problem(name, video, gen, BAD_COMMIT, key, why)
        for video, gen, key, why in bad
        if wanted is None or video in wanted
    ]
    return commits, problems


def _check_timestep_groups(group: RecipeGroup, name: str, index: IndexView) -> list[Problem]:
    """A timestep group whose zarr.json is unreadable (it holds the noise level recorded for T; readers of
    features never need it, and a missing one only means no level was recorded)."""
    out = []
    for t in index.timesteps():
        path = f"{group.path}/{layout.t_key(t)}"
        try:
            group.backend.group_attrs(path)
        except DamagedObjectError as err:
            detail = f"unreadable: {err}; the extract command that wrote T={t} writes it again"
            out.append(Problem(name, "", "", BAD_GROUP, f"{path}/zarr.json", detail, t))
    return out


def _check_video(
    group: RecipeGroup,
    name: str,
    index: IndexView,
    video: str,
    quick: bool,
    report: VerifyReport,
    present: Collection[str],
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
    present: Collection[str],
) -> Problem | None:
    """The checks a read makes (dvx/store/reader.py), without decoding when ``quick``. ``present``: the
    keys of the group's listing (a chunk written after it, e.g. by a commit made during repair, is looked
    up on its own before it is called missing)."""
    key = layout.array_key(group.path, t, block, commit.video, commit.gen)
    shape, entry = commit.shapes[block], commit.entry(t, block)
    report.arrays += 1
    try:
        if quick:
            report.chunks += check_presence(group.backend, key, shape, entry, present)
        else:
            data, chunks = read_array(group.backend, key, shape, entry)
            report.chunks += chunks
            report.nbytes += data.nbytes
    except ArrayDamage as err:
        return Problem(name, commit.video, commit.gen, err.kind, err.key, err.detail, t, block)
    return None


def _repair(
    group: RecipeGroup,
    name: str,
    bad: list[Problem],
    problems: list[Problem],
    quick: bool,
    log: Log,
    present: Collection[str],
    wanted: set[str] | None,
) -> list[str]:
    """Delete the record files of damaged commits (of the ``wanted`` videos only, all if None); repeat
    while older commits that become visible are damaged too. Returns the videos whose visible features
    changed."""
    touched: set[str] = set()
    for _ in range(100):  # each round removes at least one commit record, so this ends
        records = {p.key: p for p in bad}  # a damaged record: the file that was read
        for p in problems:
            if p.video:  # an intact record of damaged data: its own file (its name matched its content)
                records.setdefault(group.record_key(p.video, p.gen), p)
        if not records:
            break
        for key, p in sorted(records.items()):
            group.backend.delete(key)
            touched.add(p.video)
            log(f"{name} {p.video}: uncommitted generation {p.gen}")
        commits, bad = _read_commits(group, name, wanted)
        index = IndexView(commits, {p.video: p.detail for p in bad})
        scratch = VerifyReport()
        problems = []
        for video in sorted({p.video for p in records.values()}):
            problems += _check_video(group, name, index, video, quick, scratch, present)
    return sorted(touched)
