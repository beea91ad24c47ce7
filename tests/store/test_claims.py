"""Expiring per-video claims, on every backend: one holder at a time, expiry, takeover, dead holders."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dvx.store import layout
from dvx.store.backend import Backend
from dvx.store.claims import (
    DAMAGED,
    HELD,
    RELEASED,
    ClaimRecord,
    Claims,
    _start_ticks,
    live_claims,
    process_identity,
)
from dvx.store.root import FeatureStore
from tests.store.test_store import RECIPE


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def group(store_location: str):
    return FeatureStore.open(store_location, mode="a").create_group("davis", RECIPE)


def test_one_holder_at_a_time_and_release_hands_over(group) -> None:
    a, b = Claims(group, ttl=60), Claims(group, ttl=60)
    first = a.try_acquire("dog")
    assert first is not None and first.seq == 1 and first.previous is None
    assert b.try_acquire("dog") is None  # held and alive: wait
    assert b.current("dog").token == first.token and live_claims(group).keys() == {"dog"}
    assert a.still_holds(first)
    a.release(first)
    assert b.current("dog").state == RELEASED and live_claims(group) == {}
    second = b.try_acquire("dog")
    assert second is not None and second.seq == 2 and second.previous["token"] == first.token
    assert not a.still_holds(first) and b.still_holds(second)
    keys = group.backend.list_prefix(layout.claim_dir(group.path, "dog"))
    assert [k.rsplit("/", 1)[1] for k in keys] == ["00000001.json", "00000002.json"]


def test_an_expired_claim_is_taken_over_and_its_old_holder_finds_out(group) -> None:
    clock = Clock()
    slow, other = Claims(group, ttl=10, clock=clock), Claims(group, ttl=10, clock=clock)
    mine = slow.try_acquire("cat")
    clock.t += 8
    assert slow.heartbeat() == []  # renewed: expires at +18 now
    clock.t += 9
    assert other.try_acquire("cat") is None  # +17: still alive thanks to the heartbeat
    clock.t += 2
    taken = other.try_acquire("cat")  # +19: expired, taken over
    assert taken is not None and taken.seq == 2
    assert not slow.still_holds(mine)
    assert slow.heartbeat() == ["cat"] and slow.lost == ["cat"] and slow.held() == []
    slow.release(mine)  # a no-op: it never overwrites the new holder's claim
    assert other.current("cat").token == taken.token and other.current("cat").state == HELD


def test_heartbeat_thread_renews_and_releases_what_is_left(group) -> None:
    clock = Clock()
    claims = Claims(group, ttl=10, clock=clock)
    with claims.heartbeating(interval=0.02):
        rec = claims.try_acquire("fish")
        for _ in range(3):  # 24 s of (fake) time in all, more than the ttl: only heartbeats keep it
            clock.t += 8
            deadline = time.monotonic() + 20
            while claims.current("fish").expires_at != clock.t + 10 and time.monotonic() < deadline:
                time.sleep(0.02)
        assert claims.current("fish").expires_at == clock.t + 10
        assert Claims(group, ttl=10, clock=clock).try_acquire("fish") is None
    assert claims.current("fish").state == RELEASED and claims.current("fish").token == rec.token


def test_concurrent_takeovers_have_exactly_one_winner(group) -> None:
    if not group.backend.atomic_create:
        pytest.skip(f"{group.backend.location}: create-if-absent is best-effort on this backend")
    clock = Clock()
    Claims(group, ttl=5, clock=clock).try_acquire("bird")
    clock.t += 10  # expired: everyone may try to take it over
    for video in ("bird", "frog"):  # an expired claim, and a video never claimed
        barrier = threading.Barrier(6)
        won: list[ClaimRecord] = []

        def race(video: str = video, barrier: threading.Barrier = barrier, won: list = won) -> None:
            claims = Claims(group, ttl=5, clock=clock)
            cur = claims.current(video)
            barrier.wait()
            rec = claims.try_acquire(video, cur)
            if rec is not None:
                won.append(rec)

        threads = [threading.Thread(target=race) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1, video
        assert Claims(group).current(video).token == won[0].token


def test_a_dead_process_on_this_machine_is_noticed_at_once(group) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ticks = ""
        for _ in range(100):  # /proc entry appears as soon as the process exists
            ticks = _start_ticks(sleeper.pid)
            if ticks:
                break
            time.sleep(0.01)
        owner = {**process_identity(), "pid": sleeper.pid, "start": ticks}
        now = time.time()
        rec = ClaimRecord("eel", 1, HELD, owner, "t0", now, now, now + 3600)  # valid for an hour
        group.backend.put_json(layout.claim_key(group.path, "eel", 1), rec.to_json())
        remote = {**owner, "host": "another-node", "video": "ant"}
        far = ClaimRecord("ant", 1, HELD, remote, "t1", now, now, now + 3600)
        group.backend.put_json(layout.claim_key(group.path, "ant", 1), far.to_json())
        claims = Claims(group, ttl=60)
        assert claims.try_acquire("eel") is None  # its holder runs
        sleeper.kill()  # not reaped yet: a zombie is dead too
        while _start_ticks(sleeper.pid):
            time.sleep(0.01)
        taken = claims.try_acquire("eel")  # its holder died: no need to wait an hour
        assert taken is not None and taken.seq == 2
        assert claims.try_acquire("ant") is None  # on another machine only expiry counts
    finally:
        sleeper.kill()
        sleeper.wait()


def test_claims_are_refused_on_a_read_only_store(group, store_location: str) -> None:
    from dvx.errors import StoreError

    ro = FeatureStore.open(store_location, mode="r").groups()[0]
    with pytest.raises(StoreError, match="read-only"):
        Claims(ro).try_acquire("dog")


@pytest.mark.parametrize("content", [b"", b'{"video": "dog", "seq": 1', b'{"video": "dog", "seq": 1}', b"[]"])
def test_an_unreadable_claim_record_is_a_free_claim_with_its_seq(group, content: bytes) -> None:
    # claim files are not fsynced: after a power cut one may be empty or cut short
    group.backend.put_bytes(layout.claim_key(group.path, "dog", 1), content)
    claims = Claims(group, ttl=60)
    cur = claims.current("dog")
    assert (cur.seq, cur.state) == (1, DAMAGED) and "unreadable claim record" in cur.note
    assert live_claims(group) == {}
    taken = claims.try_acquire("dog")  # free: the next claim supersedes it, numbering goes on
    assert taken is not None and taken.seq == 2 and taken.previous["state"] == DAMAGED
    assert claims.still_holds(taken) and live_claims(group).keys() == {"dog"}
    group.backend.put_bytes(layout.claim_key(group.path, "dog", 2), content)  # our own record damaged
    assert not claims.still_holds(taken)


def test_a_holder_hidden_by_hidepid_is_alive_until_expiry(group, monkeypatch: pytest.MonkeyPatch) -> None:
    # /proc mounted hidepid=2 on a shared node: another user's /proc/<pid>/stat does not exist for us
    from dvx.store import claims as claims_mod

    owner = {**process_identity(), "pid": 4_000_000, "start": "12345"}
    now = time.time()
    rec = ClaimRecord("eel", 1, HELD, owner, "t0", now, now, now + 3600)
    group.backend.put_json(layout.claim_key(group.path, "eel", 1), rec.to_json())
    read = claims_mod._read
    monkeypatch.setattr(claims_mod, "_read", lambda p: "" if p == "/proc/4000000/stat" else read(p))
    signals = []

    def kill(pid: int, sig: int, error: type[OSError]) -> None:
        signals.append((pid, sig))
        raise error(pid)

    monkeypatch.setattr(claims_mod.os, "kill", lambda pid, sig: kill(pid, sig, PermissionError))
    assert claims_mod.owner_alive(owner) is None  # exists, not ours: only the expiry counts
    assert Claims(group, ttl=60).try_acquire("eel") is None
    monkeypatch.setattr(claims_mod.os, "kill", lambda pid, sig: kill(pid, sig, ProcessLookupError))
    assert claims_mod.owner_alive(owner) is False  # really gone: taken over at once
    taken = Claims(group, ttl=60).try_acquire("eel")
    assert taken is not None and taken.seq == 2
    assert signals and all(s == (4_000_000, 0) for s in signals)
    sent = len(signals)
    assert claims_mod.owner_alive({**owner, "pid": -1}) is None and len(signals) == sent  # never kill(-1)


def test_a_signal_right_after_the_create_still_releases_the_claim(
    group, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM raises SystemExit anywhere: if it lands after the claim record was created but before the
    claim was noted as held, release_all on the way out must still release it (not leave it to expire)."""
    claims = Claims(group, ttl=60)
    create = type(group.backend).put_json_if_absent

    def create_then_signal(self, key: str, obj: object) -> bool:
        assert create(self, key, obj)
        raise SystemExit(143)

    monkeypatch.setattr(type(group.backend), "put_json_if_absent", create_then_signal)
    with pytest.raises(SystemExit):
        claims.try_acquire("dog")
    monkeypatch.undo()
    assert claims.held() == ["dog"]
    claims.release_all()
    assert claims.current("dog").state == RELEASED


def test_a_signal_before_the_create_holds_nothing(group, monkeypatch: pytest.MonkeyPatch) -> None:
    claims = Claims(group, ttl=60)

    def signal_first(self, key: str, obj: object) -> bool:
        raise SystemExit(143)

    monkeypatch.setattr(type(group.backend), "put_json_if_absent", signal_first)
    with pytest.raises(SystemExit):
        claims.try_acquire("dog")
    monkeypatch.undo()
    assert claims.held() == [] and claims.current("dog") is None
    assert Claims(group, ttl=60).try_acquire("dog") is not None  # nothing blocks the next writer


def test_a_write_cut_short_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = Backend(str(tmp_path / "s"), read_only=False)

    def interrupted(self: Path, data: bytes) -> int:
        Path.write_text(self, "cut")  # part of it reached the disk, then the signal
        raise SystemExit(143)

    monkeypatch.setattr(Path, "write_bytes", interrupted)
    with pytest.raises(SystemExit):
        backend.put_json_if_absent("a/b/00000001.json", {"x": 1})
    monkeypatch.undo()
    assert [p.name for p in (tmp_path / "s" / "a" / "b").iterdir()] == []


def test_take_says_what_to_do_without_the_caller_reading_claim_records(group) -> None:
    """The runner's one call per video: acquired / held by another job / held by a sibling rank / done
    elsewhere / failed in this launch; ``is_done`` is read only when another writer may have committed."""
    from dvx.store.claims import FAILED, Outcome

    checks: list[str] = []

    def done(answer: bool):
        def is_done() -> bool:
            checks.append("read")
            return answer

        return is_done

    mine = Claims(group, ttl=60, run="launch-a")
    first = mine.take("dog", done(False))
    assert first.outcome is Outcome.ACQUIRED and first.claim is not None and checks == []  # never claimed
    sibling = Claims(group, ttl=60, run="launch-a").take("dog", done(False))
    other = Claims(group, ttl=60, run="launch-b").take("dog", done(False))
    assert (sibling.outcome, other.outcome) == (Outcome.HELD_BY_SIBLING, Outcome.HELD_BY_OTHER)
    assert other.holder == first.claim.holder() and checks == []
    mine.release(first.claim)
    assert Claims(group, ttl=60).take("dog", done(True)).outcome is Outcome.DONE_ELSEWHERE
    assert checks == ["read"] and Claims(group).current("dog").seq == 1  # done: nothing claimed
    rank = Claims(group, ttl=60, run="launch-a")
    again = rank.take("dog", done(False))
    assert again.outcome is Outcome.ACQUIRED and again.claim.seq == 2 and checks == ["read", "read"]
    rank.release(again.claim, FAILED, "truncated file")  # a rank of launch-a could not read it
    failed = Claims(group, ttl=60, run="launch-a").take("dog", done(False))
    assert (failed.outcome, failed.reason) == (Outcome.FAILED_IN_LAUNCH, "truncated file")
    assert Claims(group).current("dog").state == FAILED  # released as failed again, with the reason
    retried = Claims(group, ttl=60, run="launch-b").take("dog", done(False))  # another launch tries itself
    assert retried.outcome is Outcome.ACQUIRED


def test_claim_ttls_are_bounded(group) -> None:
    from dvx.errors import ConfigError
    from dvx.store.claims import MAX_TTL

    for bad in (0, -1, float("inf"), float("nan"), MAX_TTL * 2):
        with pytest.raises(ConfigError, match="between 0 and 86400 seconds"):
            Claims(group, ttl=bad)
    assert Claims(group, ttl=MAX_TTL).ttl == MAX_TTL
