"""Ranks from torchrun/SLURM/--devices, deterministic sharding, and multi-process runs equal to one."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dvx.config import ExtractConfig
from dvx.errors import ConfigError
from dvx.extract.distributed import detect_rank, merge_reports, pick_device, shard, work_order
from dvx.extract.runner import ExtractReport, run_extract
from dvx.store import layout
from dvx.store.claims import HELD, ClaimRecord, _start_ticks, process_identity
from dvx.store.root import FeatureStore
from tests.extract.conftest import REPO, VIDEOS, Reference
from tests.extract.test_runner_jobs import commits_per_video


def test_rank_comes_from_torchrun_then_slurm_then_defaults() -> None:
    torchrun = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "TORCHELASTIC_RUN_ID": "abc"}
    slurm = {"SLURM_PROCID": "5", "SLURM_NTASKS": "6", "SLURM_LOCALID": "2", "SLURM_JOB_ID": "77"}
    r = detect_rank(torchrun)
    assert (r.rank, r.world, r.local_rank, r.launcher, r.run_id) == (3, 8, 1, "torchrun", "abc")
    s = detect_rank(slurm)
    assert (s.rank, s.world, s.local_rank, s.launcher, s.run_id) == (5, 6, 2, "slurm", "slurm-77.")
    assert detect_rank({**slurm, **torchrun}).launcher == "torchrun"  # srun torchrun: torchrun's ranks
    single = detect_rank({})
    assert (single.rank, single.world, single.launcher, single.prefix) == (0, 1, "single", "")
    with pytest.raises(ConfigError, match="rank 4, world size 2"):
        detect_rank({"RANK": "4", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="SLURM_NTASKS"):
        detect_rank({"SLURM_PROCID": "0", "SLURM_NTASKS": "many"})


def test_torchrun_without_a_rendezvous_id_gives_no_run_id() -> None:
    # static rendezvous (--master-addr/--master-port, no --rdzv-id): torchrun sets the run id "none" in
    # every launch, so it cannot tell the ranks of one launch from those of another
    static = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "TORCHELASTIC_RUN_ID": "none"}
    assert detect_rank(static).run_id == ""
    assert detect_rank({**static, "DVX_RUN_ID": "none"}).run_id == ""
    assert detect_rank({**static, "DVX_RUN_ID": "0a1b2c"}).run_id == "0a1b2c"  # --devices sets its own
    assert detect_rank({"DVX_RUN_ID": "none"}).run_id == ""
    slurm = {"SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_JOB_ID": "77", "DVX_RUN_ID": "none"}
    assert detect_rank(slurm).run_id == "slurm-77."


@pytest.mark.slow
def test_separate_torchrun_jobs_without_rendezvous_id_are_not_siblings(
    reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Job B (rank 0 of 2, static rendezvous) meets a video that job A, another static-rendezvous launch,
    still computes: B waits for it and takes it over once A is gone, rather than dropping it as its own
    sibling rank's video (A's claim carries the run id "none", as dvx wrote it before ignoring it)."""
    for name, value in {
        "RANK": "0",
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "0",
        "TORCHELASTIC_RUN_ID": "none",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DVX_RUN_ID", raising=False)
    store = tmp_path / "store"
    videos = VIDEOS[:2]
    recipe = FeatureStore.open(str(reference.store), mode="r").groups()[0].recipe
    group = FeatureStore.open(str(store), mode="a").create_group("synthetic", recipe)
    job_a = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    while not _start_ticks(job_a.pid):
        time.sleep(0.01)
    owner = {**process_identity(0, 2, "none"), "pid": job_a.pid, "start": _start_ticks(job_a.pid)}
    now = time.time()
    held = ClaimRecord(videos[1], 1, HELD, owner, "token-a", now, now, now + 60)
    group.backend.put_json(layout.claim_key(group.path, videos[1], 1), held.to_json())
    logs: list[str] = []

    def end_job_a_when_waited_for() -> None:
        deadline = time.monotonic() + 60
        while not any("waiting for" in m for m in logs) and time.monotonic() < deadline:
            time.sleep(0.05)
        job_a.kill()

    killer = threading.Thread(target=end_job_a_when_waited_for)
    killer.start()
    try:
        report = run_extract(reference.cfg(store, videos=videos, claim_ttl=5.0), log=logs.append)
    finally:
        job_a.kill()
        job_a.wait()
        killer.join()
    assert any("waiting for" in m and videos[1] in m for m in logs)  # not dropped as a sibling's video
    assert sorted(report.computed) == list(videos)  # taken over once job A was gone
    assert reference.assert_same(store, complete=False) == list(videos)


def test_each_rank_uses_its_own_device() -> None:
    assert [pick_device("auto", r, 4) for r in range(5)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0"]
    assert pick_device("auto", 1, 0) == "cpu" and pick_device("cpu", 3, 8) == "cpu"
    assert pick_device("cuda", 2, 4) == "cuda:2" and pick_device("cuda:5", 0, 8) == "cuda:5"
    with pytest.raises(ConfigError, match="no GPU of its own"):
        pick_device("cuda", 4, 4)


def test_sharding_is_deterministic_balanced_and_complete() -> None:
    items = [(f"v{i:02d}", float(1 + (i * 7) % 5)) for i in range(23)]
    shards = [shard(items, r, 3) for r in range(3)]
    assert sorted(v for s in shards for v in s) == sorted(v for v, _ in items)  # each video exactly once
    # the split does not depend on the order the listing came in
    assert [set(shard(list(reversed(items)), r, 3)) for r in range(3)] == [set(s) for s in shards]
    cost = dict(items)
    loads = [sum(cost[v] for v in s) for s in shards]
    assert max(loads) - min(loads) <= max(cost.values())  # greedy longest-first balance
    assert shard(items, 0, 1) == [v for v, _ in items]
    order = work_order(items, 1, 3)
    assert order[: len(shards[1])] == shards[1]  # own share first ...
    assert sorted(order) == sorted(v for v, _ in items)  # ... then everyone else's, from their tails
    assert order[len(shards[1])] == shards[2][-1]


def test_reports_of_ranks_merge() -> None:
    from tests.store.test_store import RECIPE

    a = ExtractReport(RECIPE, "g", "s", (0,), ("mid",), total=4, cached=1, computed=["a", "c"], ranks=2)
    b = ExtractReport(RECIPE, "g", "s", (0,), ("mid",), total=4, cached=1, computed=["b"], others=["a"])
    m = merge_reports([a, b])
    assert m.computed == ["a", "b", "c"] and m.others == [] and m.ranks == 2 and m.total == 4


@pytest.mark.slow
def test_devices_2_equals_one_process_bit_for_bit(reference: Reference, tmp_path: Path) -> None:
    logs: list[str] = []
    report = run_extract(reference.cfg(tmp_path / "store", devices=2), log=logs.append)
    assert report.ranks == 2 and sorted(report.computed) == list(VIDEOS)
    assert "starting 2 worker processes" in logs[0]
    assert commits_per_video(tmp_path / "store") == {v: 1 for v in VIDEOS}
    reference.assert_same(tmp_path / "store")


@pytest.mark.slow
def test_torchrun_ranks_write_one_store_equal_to_one_process(reference: Reference, tmp_path: Path) -> None:
    store = tmp_path / "store"
    argv = reference.argv(store)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [*launcher, *argv[1:]], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "[rank 0/2]" in run.stderr and "[rank 1/2]" in run.stderr
    assert commits_per_video(store) == {v: 1 for v in VIDEOS}
    reference.assert_same(store)


def test_devices_is_refused_under_a_launcher(reference: Reference, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="drop --devices"):
        run_extract(reference.cfg(tmp_path / "s", devices=2))


@pytest.mark.slow
def test_davis2016_devices_2_produces_the_store_of_one_process(tmp_path: Path) -> None:
    """The issue's acceptance check on the real DAVIS-2016 sample (9 videos), kept to about a minute:
    tiny-sd at 64x128, the first 8 frames of each video, T=0,50, every block."""
    from tests.conftest import shared_data

    root = shared_data("davis2016")
    options = ["--model", "tiny-sd", "--dataset", "davis", "--data-root", str(root), "--timesteps", "0,50"]
    options += ["--resolution", "64x128", "--max-frames", "8", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    two = tmp_path / "two"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "dvx",
            "extract",
            *options,
            "--store",
            str(two),
            "--devices",
            "2",
            "--threads",
            "1",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "9 computed by 2 processes" in run.stdout
    cfg = ExtractConfig(
        model="tiny-sd",
        dataset="davis",
        data_root=str(root),
        store=str(tmp_path / "one"),
        timesteps=(0, 50),
        resolution=(64, 128),
        max_frames=8,
        threads=1,
        progress=False,
    )
    run_extract(cfg, log=lambda _: None)
    [a] = FeatureStore.open(str(tmp_path / "one"), mode="r").groups()
    [b] = FeatureStore.open(str(two), mode="r").groups()
    ia, ib = a.index(), b.index()
    assert a.recipe == b.recipe and len(ia.videos()) == 9 and ia.videos() == ib.videos()
    assert ia.timesteps() == ib.timesteps() == [0, 50] and ia.blocks() == ib.blocks()
    for video in ia.videos():
        ca, cb = ia.latest(video), ib.latest(video)
        assert (ca.frame_names, ca.time_map, dict(ca.shapes), ca.source_size) == (
            cb.frame_names,
            cb.time_map,
            dict(cb.shapes),
            cb.source_size,
        )
        for t in ia.timesteps():
            for block in ia.blocks():
                np.testing.assert_array_equal(a.read(video, t, block), b.read(video, t, block))
