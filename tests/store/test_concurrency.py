"""Metadata creation races: several jobs creating the same store and recipe group at the same instant."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from dvx.store.root import FeatureStore
from tests.store.test_store import RECIPE, write_video


def _open_and_create(location: str) -> str:
    return FeatureStore.open(location, mode="a").create_group("davis", RECIPE).path


def test_jobs_creating_the_same_store_and_group_at_once(store_location: str) -> None:
    for attempt in range(2):
        location = f"{store_location}-{attempt}"
        barrier = threading.Barrier(6)
        paths: list[str] = []
        errors: list[BaseException] = []

        def job(
            location: str = location, barrier: threading.Barrier = barrier, paths=paths, errors=errors
        ) -> None:
            barrier.wait()
            try:
                paths.append(_open_and_create(location))
            except BaseException as err:  # collected, asserted below
                errors.append(err)

        threads = [threading.Thread(target=job) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and len(set(paths)) == 1 and len(paths) == 6
        [group] = FeatureStore.open(location, mode="r").groups()
        assert group.recipe == RECIPE
        write_video(FeatureStore.open(location, mode="a").groups()[0], "a")  # usable by a writer
        assert FeatureStore.open(location, mode="r").groups()[0].index().videos() == ["a"]


def _process_job(location: str, start_at: float, out: multiprocessing.Queue) -> None:
    time.sleep(max(0.0, start_at - time.time()))
    try:
        out.put(("ok", _open_and_create(location)))
    except BaseException as err:
        out.put(("error", repr(err)))


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_processes_creating_the_same_group_at_once(backend: str, tmp_path: Path, request) -> None:
    location = str(tmp_path / "store") if backend == "local" else request.getfixturevalue("s3_bucket") + "/s"
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 4.0  # every process has imported dvx.store by then
    procs = [ctx.Process(target=_process_job, args=(location, start_at, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(kind == "ok" for kind, _ in results), results
    assert len({path for _, path in results}) == 1
    [group] = FeatureStore.open(location, mode="r").groups()
    assert group.recipe == RECIPE
