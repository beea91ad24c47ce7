"""Independent jobs on one store: overlapping extractions compute each video once; a video held by a live
job is waited for, and taken over when that job dies (at once on this machine, at expiry elsewhere)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dvx.data.base import VideoRef
from dvx.extract.distributed import RankInfo
from dvx.extract.runner import _BUSY, _SIBLING, _Job, run_extract
from dvx.store import layout
from dvx.store.claims import HELD, ClaimRecord, Claims, _start_ticks, process_identity
from dvx.store.root import FeatureStore
from dvx.store.verify import verify
from tests.extract.conftest import VIDEOS, Reference
from tests.store.test_store import RECIPE


def commits_per_video(store: Path) -> dict[str, int]:
    [group] = FeatureStore.open(str(store), mode="r").groups()
    counts: dict[str, int] = {}
    for c in group.index().commits:
        counts[c.video] = counts.get(c.video, 0) + 1
    return counts


@pytest.mark.slow
def test_two_overlapping_jobs_compute_every_video_exactly_once(reference: Reference, tmp_path: Path) -> None:
    store = tmp_path / "store"
    a = reference.popen(store, "--videos", ",".join(VIDEOS[:4]), "--json", stdout=subprocess.PIPE)
    b = reference.popen(store, "--videos", ",".join(VIDEOS[1:]), "--json", stdout=subprocess.PIPE)
    out_a, _ = a.communicate(timeout=300)
    out_b, _ = b.communicate(timeout=300)
    assert a.returncode == 0 and b.returncode == 0
    ra, rb = json.loads(out_a), json.loads(out_b)
    assert not set(ra["computed"]) & set(rb["computed"])  # nothing computed twice
    assert sorted(ra["computed"] + rb["computed"]) == list(VIDEOS)  # nothing lost
    assert commits_per_video(store) == {v: 1 for v in VIDEOS}
    reference.assert_same(store)
    assert verify(FeatureStore.open(str(store), mode="r")).ok


def _claim(group, video: str, owner: dict, expires_in: float) -> None:
    now = time.time()
    rec = ClaimRecord(video, 1, HELD, owner, f"token-{video}", now, now, now + expires_in)
    group.backend.put_json(layout.claim_key(group.path, video, 1), rec.to_json())


def test_videos_held_by_other_jobs_are_waited_for_then_taken_over(
    reference: Reference, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    recipe = FeatureStore.open(str(reference.store), mode="r").groups()[0].recipe
    group = FeatureStore.open(str(store), mode="a").create_group("synthetic", recipe)
    # a job still dying on this machine holds video 1 (its claim valid for another minute) ...
    dying = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    while not _start_ticks(dying.pid):
        time.sleep(0.01)
    _claim(group, VIDEOS[1], {**process_identity(), "pid": dying.pid, "start": _start_ticks(dying.pid)}, 60)
    # ... and a job on another node that stopped heartbeating holds video 3 for two more seconds
    _claim(group, VIDEOS[3], {**process_identity(), "host": "node-17", "pid": 1}, 2.0)
    logs: list[str] = []

    def kill_when_waiting() -> None:
        deadline = time.monotonic() + 120
        while not any("waiting for" in m for m in logs) and time.monotonic() < deadline:
            time.sleep(0.05)
        dying.kill()

    killer = threading.Thread(target=kill_when_waiting)
    killer.start()
    try:
        report = run_extract(reference.cfg(store, claim_ttl=5.0), log=logs.append)
    finally:
        dying.kill()
        dying.wait()
        killer.join()
    waits = [m for m in logs if "waiting for" in m]
    assert waits and VIDEOS[1] in waits[0] and VIDEOS[3] in waits[0]  # neither was computed in parallel
    assert sorted(report.computed) == list(VIDEOS)  # both were taken over, nothing lost
    claims = Claims(FeatureStore.open(str(store), mode="r").groups()[0])
    took_1, took_3 = claims.current(VIDEOS[1]), claims.current(VIDEOS[3])
    assert took_1.seq == 2 and took_3.seq == 2
    old_1 = ClaimRecord.from_json(group.backend.get_json(layout.claim_key(group.path, VIDEOS[1], 1)))
    old_3 = ClaimRecord.from_json(group.backend.get_json(layout.claim_key(group.path, VIDEOS[3], 1)))
    assert took_1.acquired_at < old_1.expires_at  # the dead local holder was noticed before expiry
    assert took_3.acquired_at >= old_3.expires_at  # the remote one only once its claim expired
    assert commits_per_video(store) == {v: 1 for v in VIDEOS}
    reference.assert_same(store)


def _job_on(group, run_id: str) -> _Job:
    """A _Job with just what _one needs to decide about a video someone else holds."""
    job = _Job.__new__(_Job)
    job.group, job.timesteps, job.blocks = group, (0,), ["up.1"]
    job.rank = RankInfo(run_id=run_id)
    job.claims = Claims(group, ttl=60.0, run=run_id)
    return job


def test_a_video_held_by_a_live_writer_costs_one_claim_read_per_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = FeatureStore.open(str(tmp_path / "store"), mode="a").create_group("davis", RECIPE)
    other = {**process_identity(run="launch-a"), "host": "node-17", "pid": 1}
    _claim(group, "dog", other, 60.0)  # a live job on another node holds it
    _claim(group, "cat", {**other, "run": "launch-b"}, 60.0)  # a sibling rank of launch-b holds it
    reads: list[str] = []
    current = Claims.current
    monkeypatch.setattr(Claims, "current", lambda self, v: reads.append(v) or current(self, v))
    job = _job_on(group, "launch-b")
    assert job._one(VideoRef("dog", Path("dog")), writer=None) == _BUSY
    assert job._one(VideoRef("cat", Path("cat")), writer=None) == _SIBLING
    assert reads == ["dog", "cat"]  # the claim _one read is the holder's: no second read


def test_a_free_claim_taken_by_another_job_first_is_read_again(tmp_path: Path) -> None:
    group = FeatureStore.open(str(tmp_path / "store"), mode="a").create_group("davis", RECIPE)
    node = {**process_identity(), "host": "node-17", "pid": 1}
    _claim(group, "dog", {**node, "run": "launch-b"}, -1.0)  # a sibling's claim, expired
    job = _job_on(group, "launch-b")
    real = job.claims.try_acquire

    def beaten(video: str, current: object) -> ClaimRecord | None:  # another job takes it over first
        assert Claims(group, ttl=60.0, run="launch-c").try_acquire(video, current) is not None
        return real(video, current)

    job.claims.try_acquire = beaten  # type: ignore[method-assign]
    assert job._one(VideoRef("dog", Path("dog")), writer=None) == _BUSY  # not the expired sibling's
