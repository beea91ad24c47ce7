"""What S3 adds to the store contract (which tests/store/test_store.py runs on S3 too): creates that the
server makes conditional, listings never served from a stale cache, and the commands end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dvx.cli import main
from dvx.config import ExtractConfig, ProbeConfig
from dvx.data.synthetic import SynthConfig, write_world
from dvx.extract.runner import run_extract
from dvx.probe.runner import run_probe
from dvx.store.backend import Backend
from dvx.store.root import FeatureStore
from dvx.store.verify import verify


def test_create_if_absent_is_decided_by_the_server(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    a = Backend(f"{s3_bucket}/store", read_only=False)
    b = Backend(f"{s3_bucket}/store", read_only=False, storage_options={"skip_instance_cache": True})
    assert a.atomic_create and b.atomic_create
    assert a.put_json_if_absent("x/claim.json", {"who": "a"})
    # even a client that believes the key is absent is refused: the PUT carries If-None-Match: *
    monkeypatch.setattr(type(b.store), "exists", lambda *_: _false())
    assert not b.put_json_if_absent("x/claim.json", {"who": "b"})
    assert a.get_json("x/claim.json") == {"who": "a"}


async def _false() -> bool:
    return False


def test_listings_are_never_stale(s3_bucket: str) -> None:
    """s3fs caches directory listings by default; another process's claim would then stay invisible."""
    a = Backend(f"{s3_bucket}/store", read_only=False)
    other_process = Backend(
        f"{s3_bucket}/store", read_only=False, storage_options={"skip_instance_cache": True}
    )
    a.put_json("g/_index/claims/v/00000001.json", {})
    assert a.list_dir("g/_index/claims/v") == ["00000001.json"]
    other_process.put_json("g/_index/claims/v/00000002.json", {})
    assert a.list_dir("g/_index/claims/v") == ["00000001.json", "00000002.json"]
    assert a.exists("g/_index/claims/v/00000002.json")


@pytest.mark.slow
def test_extract_cache_commands_and_probe_end_to_end_on_s3(
    s3_bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.probe.test_readonly import TASK, MeanFeatureTask

    world = tmp_path / "world"
    write_world(SynthConfig(out=world, videos=2, frames=4, height=48, width=64, seed=5))
    url = f"{s3_bucket}/cache"
    common = [
        "--model",
        "tiny-sd",
        "--dataset",
        "synthetic",
        "--data-root",
        str(world),
        "--timesteps",
        "0,50",
    ]
    common += ["--blocks", "mid,up.1", "--resolution", "64x64", "--threads", "1", "--no-progress"]
    main(["extract", *common, "--store", url])
    local = ExtractConfig(
        model="tiny-sd",
        dataset="synthetic",
        data_root=str(world),
        store=str(tmp_path / "local"),
        timesteps=(0, 50),
        blocks=("mid", "up.1"),
        resolution=(64, 64),
        threads=1,
        progress=False,
    )
    run_extract(local, log=lambda _: None)
    [remote] = FeatureStore.open(url, mode="r").groups()
    [disk] = FeatureStore.open(local.store, mode="r").groups()
    assert remote.recipe == disk.recipe and remote.index().videos() == disk.index().videos()
    for video in disk.index().videos():
        for t in (0, 50):
            for block in ("mid", "up.1"):
                np.testing.assert_array_equal(remote.read(video, t, block), disk.read(video, t, block))
    main(["extract", *common, "--store", url])  # everything cached now
    main(["cache", "ls", "--store", url])
    main(["cache", "verify", "--store", url])
    main(["cache", "gc", "--store", url, "--dry-run", "--min-age", "0s"])
    assert verify(FeatureStore.open(url, mode="r")).ok
    from dvx.probe import TASKS

    TASKS.register(TASK, MeanFeatureTask, "test only", dataset="synthetic")
    try:
        capsys.readouterr()
        probe = ["probe", "--task", TASK, "--store", url, "--model", "tiny-sd", "--data-root", str(world)]
        main([*probe, "--results", str(tmp_path / "results"), "--no-progress", "--json"])
        records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]  # JSON Lines
        again = run_probe(
            ProbeConfig(
                task=TASK, store=url, model="tiny-sd", data_root=str(world), results=str(tmp_path / "results")
            ),
            log=lambda _: None,
        )
    finally:
        TASKS.unregister(TASK)
    assert len(records) == 4 and {r["T"] for r in records} == {0, 50}
    assert all(r.store == url for r in again) and [r.metrics["mean"] for r in again] == [
        r["metrics"]["mean"] for r in records
    ]
