"""Expiring per-video claims, so jobs sharing a store do not compute the same video at the same time.

A claim is a small JSON record ``_index/claims/<video>/<seq>.json``; the highest ``seq`` is the current
claim. To take a video, a writer creates the next ``seq`` *only if absent* (atomic on local/shared disk and
on S3, docs/store.md): when several jobs see the same free claim, exactly one creation succeeds. A claim
is free when it was released, when its ``expires_at`` has passed (its holder stopped heartbeating), or
when its holder is a process on this very machine that no longer exists (``kill -9``: taken over at
once, no need to wait for expiry). Holders rewrite their own record every ``ttl / 4`` seconds and, before
committing, check that nobody has taken the claim over; a holder that lost its claim does not commit.

Claims are an efficiency device on top of the commit protocol, never a correctness one: two writers of
the same video write different generations and commit records, so even a double claim (clock skew beyond
the TTL, a backend without atomic create) costs duplicate work, never a corrupt or lost video.

**Claims are bounded.** A TTL is at most :data:`MAX_TTL` (one day); a claim whose ``expires_at`` lies
further ahead than that (a damaged record, a dvx that accepted ``--claim-ttl inf``) cannot have been
written by a live holder and counts as free, so nothing blocks a video for ever. ``dvx cache ls`` shows
held claims that are free (expired, holder gone, implausible) as stale, and :func:`unclaim` (``dvx cache
unclaim``) clears the claims of a holder the user knows is gone, refusing those a live process provably
holds.

**The runner's view** is :meth:`Claims.take`: one call per video returns what to do (:class:`Taken`:
acquired / held by another live job / held by another rank of this launch / done elsewhere / failed in
this launch), so no caller reads claim record fields.
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from dvx.errors import ConfigError, StoreError
from dvx.store import layout
from dvx.store.group import RecipeGroup
from dvx.store.index import writer_identity

#: seconds a claim stays valid without a heartbeat (holders renew it every ttl / 4)
DEFAULT_TTL = 300.0
#: the longest TTL a claim may have: a crashed job on another node blocks its videos at most this long
MAX_TTL = 86400.0
#: what torchrun sets TORCHELASTIC_RUN_ID to without ``--rdzv-id``: every such launch gets it, so it names
#: no launch (claims carrying it are never a sibling's)
NO_RUN_ID = "none"


def check_ttl(ttl: float, what: str = "--claim-ttl") -> float:
    """``ttl`` if it is a sane claim lifetime (finite, > 0, at most :data:`MAX_TTL`); ConfigError if not."""
    try:
        value = float(ttl)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number of seconds, got {ttl!r}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_TTL:
        raise ConfigError(
            f"{what} must be between 0 and {MAX_TTL:.0f} seconds (one day), got {ttl!r}: a crashed job's "
            "claims keep its videos from everyone else that long"
        )
    return value


HELD, RELEASED, FAILED = "held", "released", "failed"
#: the state given to a claim record that cannot be read (empty or cut short by a power loss, a field
#: missing): it counts as free, so the next claim simply supersedes it (claims only save work)
DAMAGED = "damaged"
_UNREAD = object()


@dataclass(frozen=True)
class ClaimRecord:
    """One claim on one video: who holds it and until when (UNIX seconds, the holder's clock)."""

    video: str
    seq: int
    state: str  # held | released | failed (released after a failure; note holds the reason)
    owner: dict[str, Any]
    token: str  # unique to this acquisition
    acquired_at: float
    heartbeat_at: float
    expires_at: float
    note: str = ""
    previous: dict[str, Any] | None = field(default=None, compare=False)  # the claim this one replaced

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("previous")
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ClaimRecord:
        return cls(
            video=d["video"],
            seq=int(d["seq"]),
            state=d["state"],
            owner=dict(d.get("owner") or {}),
            token=d["token"],
            acquired_at=float(d["acquired_at"]),
            heartbeat_at=float(d["heartbeat_at"]),
            expires_at=float(d["expires_at"]),
            note=d.get("note", ""),
        )

    @classmethod
    def parse(cls, raw: bytes, video: str, seq: int) -> ClaimRecord:
        """The record stored as claim ``seq`` of ``video``; an unreadable one is a free (DAMAGED) claim with
        that ``seq``, so taking the video over creates ``seq + 1`` as usual. ``video`` and ``seq`` always
        come from the key, never from the content."""
        try:
            rec = cls.from_json(json.loads(raw))
            return replace(rec, video=video, seq=seq)
        except (ValueError, KeyError, TypeError, AttributeError) as err:  # ValueError covers bad JSON
            why = f"{type(err).__name__}: {err}"
        return cls(video, seq, DAMAGED, {}, "", 0.0, 0.0, 0.0, note=f"unreadable claim record ({why})")

    def holder(self) -> str:
        o = self.owner
        rank = f" rank {o['rank']}" if o.get("world", 1) > 1 else ""
        return f"{o.get('user', '?')}@{o.get('host', '?')} pid {o.get('pid', '?')}{rank}"


# ---- who is this process, and is another process on this machine still alive ----------------------------
def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str:
    """The process start time in clock ticks since boot (/proc/<pid>/stat field 22); "" if there is no
    such process or it has exited (a zombie waiting to be reaped by its parent)."""
    return _ticks(_read(f"/proc/{pid}/stat"))


def _ticks(stat: str) -> str:
    if not stat:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return "" if fields[0] in ("Z", "X") else fields[19]


def _pid_exists(pid: int) -> bool | None:
    """For a pid whose /proc entry is missing: False if no such process exists, None if one may (/proc
    mounted with hidepid=2 hides other users' processes on shared nodes; signal 0 is then refused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError (EPERM): it exists and belongs to someone else
        return None
    return None  # it exists, but its start time cannot be read: only the claim's expiry counts


@lru_cache(maxsize=4)
def _machine(pid: int) -> dict[str, Any]:
    try:
        pidns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        pidns = 0
    return {
        "boot": _read("/proc/sys/kernel/random/boot_id"),
        "pidns": pidns,
        "start": _start_ticks(pid),
    }


def process_identity(rank: int = 0, world: int = 1, run: str = "") -> dict[str, Any]:
    """user, host, pid, job (as commit records) plus what lets another process on the same machine tell
    whether this one still runs: boot id, pid namespace and start time (pids are reused)."""
    ident = writer_identity()
    return {**ident, **_machine(os.getpid()), "rank": rank, "world": world, "run": run}


def owner_alive(owner: dict[str, Any]) -> bool | None:
    """False if ``owner`` was a process on this machine that has exited; None when that cannot be told
    (another machine, another pid namespace, no /proc): then only the claim's expiry counts."""
    me = _machine(os.getpid())
    same = (
        bool(me["boot"])
        and owner.get("host") == writer_identity()["host"]
        and owner.get("boot") == me["boot"]
        and owner.get("pidns") == me["pidns"]
    )
    if not same or not owner.get("start"):
        return None
    try:
        pid = int(owner.get("pid", -1))
    except (TypeError, ValueError):
        return None
    if pid <= 0:  # never signal 0 or -1 (a process group, every process)
        return None
    stat = _read(f"/proc/{pid}/stat")
    if not stat:  # gone, or hidden from us (hidepid): ask the kernel whether the pid exists
        return _pid_exists(pid)
    return _ticks(stat) == owner["start"]


def is_free(rec: ClaimRecord, now: float) -> bool:
    """Whether ``rec`` may be taken over: released, expired, implausible (expiring further ahead than any
    holder may claim), or its holder died on this machine."""
    return rec.state != HELD or stale_reason(rec, now) is not None


def stale_reason(rec: ClaimRecord, now: float) -> str | None:
    """Why a held claim is free after all (expired, implausible, holder gone); None if it is live."""
    if now > rec.expires_at:
        return f"expired {_ago(now - rec.expires_at)} ago"
    if not rec.expires_at - now <= MAX_TTL:  # NaN too
        return f"expires in {_ago(rec.expires_at - now)}, beyond the {_ago(MAX_TTL)} maximum"
    if owner_alive(rec.owner) is False:
        return f"its holder (pid {rec.owner.get('pid', '?')} on this machine) is gone"
    return None


def _ago(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "ever"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def same_launch(owner: dict[str, Any], run_id: str) -> bool:
    """Whether a claim ``owner`` is another rank of launch ``run_id``: never without a run id, nor for
    torchrun's placeholder "none" that every launch without ``--rdzv-id`` shares (claims written before
    dvx ignored it carry it)."""
    return bool(run_id) and run_id.lower() != NO_RUN_ID and owner.get("run") == run_id


# ---- the claims of one recipe group --------------------------------------------------------------------
class Outcome(enum.Enum):
    """What :meth:`Claims.take` found for a video."""

    ACQUIRED = "acquired"  # this job holds the claim: compute the video, commit, release
    HELD_BY_OTHER = "held by another live job"  # try again later (wait for it)
    HELD_BY_SIBLING = "held by another rank of this launch"  # that rank commits it; not waited for
    DONE_ELSEWHERE = "committed by another job"  # nothing left to compute
    FAILED_IN_LAUNCH = "failed in this launch"  # another rank of this launch could not read it


@dataclass(frozen=True)
class Taken:
    """The answer of :meth:`Claims.take`: the outcome and what goes with it."""

    outcome: Outcome
    claim: ClaimRecord | None = None  # ACQUIRED: the claim to commit under and release
    holder: str = ""  # HELD_BY_*: who holds it, for messages
    reason: str = ""  # FAILED_IN_LAUNCH: why the other rank could not read it


class Claims:
    """Acquire, renew and release this process's claims on the videos of one recipe group."""

    def __init__(
        self,
        group: RecipeGroup,
        ttl: float = DEFAULT_TTL,
        rank: int = 0,
        world: int = 1,
        run: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.group = group
        self.backend = group.backend
        self.ttl = check_ttl(ttl, "claim ttl")
        self.clock = clock
        self.run = run
        self.owner = process_identity(rank, world, run)
        self._held: dict[str, ClaimRecord] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: list[str] = []  # videos whose claim another job took over while this one held it

    # ---- reading ---------------------------------------------------------------------------------------
    def _seqs(self, video: str) -> list[int]:
        names = self.backend.list_dir(layout.claim_dir(self.group.path, video))
        return sorted(s for s in (layout.parse_claim_name(n) for n in names) if s is not None)

    def current(self, video: str) -> ClaimRecord | None:
        """The current (highest-numbered) claim on ``video``, or None if it was never claimed."""
        for _ in range(5):
            seqs = self._seqs(video)
            if not seqs:
                return None
            raw = self.backend.get_bytes(layout.claim_key(self.group.path, video, seqs[-1]))
            if raw is not None:
                return ClaimRecord.parse(raw, video, seqs[-1])
            # removed between listing and reading (the whole recipe removed by gc): list again
        return None

    def held(self) -> list[str]:
        with self._lock:
            return sorted(self._held)

    # ---- acquiring -------------------------------------------------------------------------------------
    def try_acquire(self, video: str, current: ClaimRecord | object | None = _UNREAD) -> ClaimRecord | None:
        """Claim ``video``; None if another live writer holds it (or won the race to take it over).

        ``current`` is the video's current claim if the caller has just read it (saves a request). The
        returned record's ``previous`` is the claim it replaced (None the first time a video is claimed),
        which tells the caller that someone else may have committed the video meanwhile.
        """
        layout.check_name("video", video)
        cur = self.current(video) if current is _UNREAD else current
        assert cur is None or isinstance(cur, ClaimRecord)
        now = self.clock()
        if cur is not None and not is_free(cur, now):
            return None
        rec = ClaimRecord(
            video=video,
            seq=(cur.seq if cur else 0) + 1,
            state=HELD,
            owner=self.owner,
            token=uuid.uuid4().hex,
            acquired_at=now,
            heartbeat_at=now,
            expires_at=now + self.ttl,
            previous=cur.to_json() if cur else None,
        )
        try:
            created = self.backend.put_json_if_absent(self._key(rec), rec.to_json())
        except BaseException:
            # cut short (SIGTERM -> SystemExit, Ctrl-C) around the create: if our record made it, hold it so
            # that release_all on the way out releases it instead of leaving it to expire
            with contextlib.suppress(Exception):
                if self.still_holds(rec):
                    with self._lock:
                        self._held[video] = rec
            raise
        if not created:
            return None
        with self._lock:
            self._held[video] = rec
        return rec

    def take(self, video: str, is_done: Callable[[], bool]) -> Taken:
        """Try to take ``video`` for computing it; what to do next is the returned :class:`Taken`.

        ``is_done`` reads the video's commits afresh and says whether nothing is left to compute; it is
        called only when another writer may have committed the video since this job read its index (the
        video's claim was finished, or the claim this call took over was someone's). A video whose last
        claim was released by a writer that completed it is done without claiming it; one that another
        rank of this launch failed to read is not tried again (released as failed, with its reason).
        """
        cur = self.current(video)
        done: bool | None = None
        if cur is not None and cur.state != HELD:
            done = is_done()
            if done and cur.state == RELEASED:
                return Taken(Outcome.DONE_ELSEWHERE)
        rec = self.try_acquire(video, cur)
        if rec is None:
            holder = cur
            if holder is None or is_free(holder, self.clock()):
                # it was free and another job won the race to take it: read who holds it now
                holder = self.current(video)
            owner = holder.owner if holder is not None else {}
            sibling = same_launch(owner, self.run)
            return Taken(
                Outcome.HELD_BY_SIBLING if sibling else Outcome.HELD_BY_OTHER,
                holder=holder.holder() if holder is not None else "?",
            )
        if done is None and cur is not None:
            done = is_done()
        if done:
            self.release(rec)
            return Taken(Outcome.DONE_ELSEWHERE)
        if cur is not None and cur.state == FAILED and same_launch(cur.owner, self.run):
            reason = cur.note or "unreadable"
            self.release(rec, FAILED, reason)
            return Taken(Outcome.FAILED_IN_LAUNCH, reason=reason)
        return Taken(Outcome.ACQUIRED, claim=rec)

    def still_holds(self, rec: ClaimRecord) -> bool:
        """True if no other writer has taken ``rec`` over (no higher claim exists, ours is unchanged)."""
        cur = self.current(rec.video)
        return cur is not None and cur.seq == rec.seq and cur.state != DAMAGED and cur.token == rec.token

    # ---- renewing and releasing ------------------------------------------------------------------------
    def heartbeat(self) -> list[str]:
        """Renew every held claim; returns (and forgets) those another job has taken over."""
        lost = []
        for video in self.held():
            with self._lock:
                rec = self._held.get(video)
            if rec is None:
                continue
            if not self.still_holds(rec):
                lost.append(video)
                with self._lock:
                    self._held.pop(video, None)
                continue
            now = self.clock()
            renewed = replace(rec, heartbeat_at=now, expires_at=now + self.ttl)
            with self._lock:
                if video not in self._held:  # released meanwhile: do not resurrect it
                    continue
                self.backend.put_json(self._key(renewed), renewed.to_json())
                self._held[video] = renewed
        self.lost.extend(lost)
        return lost

    def release(self, rec: ClaimRecord, state: str = RELEASED, note: str = "") -> None:
        """Mark our claim released (or failed, with the reason in ``note``); others may take it at once."""
        with self._lock:
            current = self._held.pop(rec.video, None)
            if current is None or current.token != rec.token:
                return
            now = self.clock()
            done = replace(current, state=state, note=note, heartbeat_at=now, expires_at=now)
            self.backend.put_json(self._key(done), done.to_json())

    def release_all(self) -> None:
        with self._lock:
            held = list(self._held.values())
        for rec in held:
            with contextlib.suppress(Exception):  # best effort on the way out; expiry covers the rest
                self.release(rec)

    @contextlib.contextmanager
    def heartbeating(self, interval: float | None = None) -> Iterator[Claims]:
        """Renew claims on a background thread while the block runs; release what is left at the end."""
        every = interval if interval is not None else self.ttl / 4
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(every):
                with contextlib.suppress(Exception):  # a failed renewal is retried; expiry is the backstop
                    self.heartbeat()

        self._thread = threading.Thread(target=loop, name="dvx-claims-heartbeat", daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.release_all()

    def _key(self, rec: ClaimRecord) -> str:
        return layout.claim_key(self.group.path, rec.video, rec.seq)


def claim_seqs(group: RecipeGroup, keys: Iterable[str]) -> dict[str, list[int]]:
    """video -> its claim seqs, ascending, from ``keys`` (a listing under the group's claims prefix; temp
    files and anything else are ignored)."""
    prefix = layout.claims_prefix(group.path)
    out: dict[str, list[int]] = {}
    for key in keys:
        if not key.startswith(prefix):
            continue
        video, sep, name = key[len(prefix) :].partition("/")
        seq = layout.parse_claim_name(name) if sep and "/" not in name else None
        if seq is not None:
            out.setdefault(video, []).append(seq)
    return {v: sorted(seqs) for v, seqs in sorted(out.items())}


def read_current(group: RecipeGroup, seqs: dict[str, list[int]]) -> dict[str, ClaimRecord]:
    """video -> its current claim (the record with the highest seq in ``seqs``), read in one batch; a
    video whose record vanished since the listing is left out."""
    videos = [v for v, s in seqs.items() if s]
    keys = [layout.claim_key(group.path, v, seqs[v][-1]) for v in videos]
    out = {}
    for video, raw in zip(videos, group.backend.get_many_bytes(keys), strict=True):
        if raw is not None:
            out[video] = ClaimRecord.parse(raw, video, seqs[video][-1])
    return out


def current_claims(group: RecipeGroup, keys: Iterable[str] | None = None) -> dict[str, ClaimRecord]:
    """video -> its current claim, for every claimed video: one listing, then one batched read.

    ``keys``: a listing the caller has already made that covers the claims prefix (e.g. of the whole
    group); keys outside the prefix are ignored. Without it the claims prefix is listed here."""
    if keys is None:
        keys = group.backend.list_prefix(layout.claims_prefix(group.path))
    return read_current(group, claim_seqs(group, keys))


def live_claims(
    group: RecipeGroup, now: float | None = None, keys: Iterable[str] | None = None
) -> dict[str, ClaimRecord]:
    """video -> its current claim, for claims that are held and not free (someone is working on it).
    ``keys``: as for :func:`current_claims`."""
    now = time.time() if now is None else now
    return {v: rec for v, rec in current_claims(group, keys).items() if not is_free(rec, now)}


def stale_claims(
    group: RecipeGroup, now: float | None = None, keys: Iterable[str] | None = None
) -> dict[str, tuple[ClaimRecord, str]]:
    """video -> (its current claim, why it is stale), for claims still marked held that are free: expired,
    implausible, or of a holder that is gone. ``keys``: as for :func:`current_claims`."""
    now = time.time() if now is None else now
    out = {}
    for video, rec in current_claims(group, keys).items():
        why = stale_reason(rec, now) if rec.state == HELD else None
        if why is not None:
            out[video] = (rec, why)
    return out


def unclaim(group: RecipeGroup, video: str, force: bool = False, now: float | None = None) -> str:
    """Clear the current claim on ``video`` by superseding it with a released one; what was done, as a
    line. A claim that is already free is cleared; a live one only with ``force`` (the user knows its
    holder is gone: a job on another node that crashed), and never one that a process on this machine
    provably holds. StoreError (one line) when refused."""
    now = time.time() if now is None else now
    claims = Claims(group)
    cur = claims.current(video)
    if cur is None or cur.state != HELD:
        return f"{video}: no held claim ({'never claimed' if cur is None else cur.state})"
    holder = cur.holder()
    if owner_alive(cur.owner):
        raise StoreError(
            f"{group.path} {video}: claimed by {holder}, a process that is running on this machine; "
            "stop it first (its claims are released when it ends)"
        )
    why = stale_reason(cur, now)
    if why is None and not force:
        beat = _ago(max(0.0, now - cur.heartbeat_at))
        raise StoreError(
            f"{group.path} {video}: claimed by {holder}, last heartbeat {beat} ago, valid for "
            f"{_ago(cur.expires_at - now)} more; if that job is gone, add --force"
        )
    who = writer_identity()
    note = f"cleared by {who['user']}@{who['host']} with dvx cache unclaim ({why or 'forced'})"
    cleared = ClaimRecord(video, cur.seq + 1, RELEASED, claims.owner, uuid.uuid4().hex, now, now, now, note)
    if not group.backend.put_json_if_absent(claims._key(cleared), cleared.to_json()):
        return f"{video}: taken meanwhile by another writer; left alone"
    return f"{video}: cleared the claim of {holder} ({why or 'forced'})"
