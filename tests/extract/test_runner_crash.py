"""Crash safety: ``kill -9`` of ``dvx extract`` at random instants, then the same command again, gives the
store of an uninterrupted run; after every kill, readers see only complete, correct videos."""

from __future__ import annotations

import os
import random
import select
import subprocess
import time
from pathlib import Path

import pytest

from dvx.store import layout
from dvx.store.claims import HELD, current_claims
from dvx.store.gc import apply_gc, plan_gc
from dvx.store.root import FeatureStore
from dvx.store.verify import verify
from tests.extract.conftest import VIDEOS, Reference

KILLS = 6
SEED = 20261121  # the kill schedule is random but reproducible
#: files a video adds (18 arrays x (zarr.json + one chunk file), a claim, a commit record: 38), scaled
#: down (a third) so that kill points fall inside the run, early enough for several kills, not after its end
FILES_PER_VIDEO = 12


def _wait_for_line(proc: subprocess.Popen, needle: str, timeout: float) -> bool:
    """Read the child's stderr until a line contains ``needle`` (False at EOF or timeout)."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 0.5)
        if ready:
            line = proc.stderr.readline()
            if not line:
                return False
            if needle in line:
                return True
    return False


def _count(store: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(store))


def _visible(store: Path) -> list[str]:
    try:
        return FeatureStore.open(str(store), mode="r").groups()[0].index().videos()
    except Exception:  # killed before the store or group existed
        return []


@pytest.mark.slow
def test_kill_9_at_random_instants_then_rerun_equals_an_uninterrupted_run(
    reference: Reference, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    store = tmp_path / "store"
    schedule = []  # (files written before the kill, delay after that) for reproduction
    for _ in range(KILLS):
        left = len(VIDEOS) - len(_visible(store))
        if left == 0:
            break
        proc = reference.popen(store, "--claim-ttl", "30", stderr=subprocess.PIPE)
        try:
            _wait_for_line(proc, "to compute", timeout=180)
            # kill at a random point of the write sequence: after a random number of new files
            # (FILES_PER_VIDEO: array metadata, chunks, claim and commit records), plus a random instant
            target = _count(store) + rng.randint(0, FILES_PER_VIDEO * left)
            while proc.poll() is None and _count(store) < target:
                time.sleep(0.005)
            jitter = rng.uniform(0, 0.05)
            time.sleep(jitter)
        finally:
            proc.kill()  # SIGKILL: no finally blocks, no claim released, writes cut anywhere
            proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
        schedule.append((target, round(jitter, 3)))
        if _visible(store):
            reference.assert_same(store, complete=False)  # nothing half-written is visible
    assert len(schedule) >= KILLS // 2, f"runs finished too early to be killed: {schedule}"
    proc = reference.popen(store, "--claim-ttl", "30", stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    reference.assert_same(store)  # kill schedule (for reproduction): see `schedule`
    assert verify(FeatureStore.open(str(store), mode="r")).ok
    # the leftovers of the killed runs are unreferenced: gc removes them and nothing visible changes
    writable = FeatureStore.open(str(store), mode="a")
    apply_gc(writable, plan_gc(writable, min_age=0))
    assert plan_gc(writable, min_age=0).items == []
    reference.assert_same(store)


@pytest.mark.slow
def test_sigterm_commits_what_is_complete_and_releases_every_claim(
    reference: Reference, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    proc = reference.popen(store, stderr=subprocess.PIPE)
    try:
        _wait_for_line(proc, "to compute", timeout=180)
        while proc.poll() is None and not _visible(store):
            time.sleep(0.005)
        proc.terminate()  # SIGTERM: what scancel and torchrun send first
        proc.wait(timeout=120)
    finally:
        proc.kill()
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode in (0, 128 + 15)
    [group] = FeatureStore.open(str(store), mode="r").groups()
    # nothing left to expire (a video whose claim creation the signal cut short has a claims folder but no
    # record: it was never claimed, and has no current claim)
    currents = list(current_claims(group).values())
    assert all(c.state != HELD for c in currents), currents
    claim_files = group.backend.list_prefix(layout.claims_prefix(group.path))
    assert not [k for k in claim_files if k.endswith(".partial")]  # no temp file of a cut-short claim
    reference.assert_same(store, complete=False)
