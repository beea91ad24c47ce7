"""``--devices N``: the workers' reports reach the parent whatever their size, and a worker's error too.

A worker's report lists every video it computed; for a few thousand videos that is more than a pipe holds
(64 KiB), so the parent has to read while the workers run. The extraction itself is replaced by a stand-in
(``launch_local``'s ``extract``) that returns such a report at once, and the launch runs in a subprocess
with a deadline, so a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from dvx.config import ExtractConfig
from dvx.errors import StoreError
from dvx.extract.runner import ExtractReport
from dvx.store.recipe import Recipe
from tests.extract.conftest import REPO

PER_RANK = 20_000  # about 400 KB of video ids per report: several times a pipe's buffer


def big_report(cfg: ExtractConfig, log: object = None) -> ExtractReport:
    """What a rank of a large dataset (UCF101 has 13,320 videos) sends back."""
    rank = int(os.environ["RANK"])
    recipe = Recipe("tiny-sd", "sd", "0" * 64, "float32", (64, 64), None)
    report = ExtractReport(recipe, "synthetic/tiny-sd@00000000", cfg.store, (0,), ("mid",))
    report.total = PER_RANK * int(os.environ["WORLD_SIZE"])
    report.computed = [f"video_{rank}_{i:06d}" for i in range(PER_RANK)]
    return report


def failing_rank(cfg: ExtractConfig, log: object = None) -> ExtractReport:
    """Rank 1 fails with a store error after rank 0 has sent a large report."""
    if os.environ["RANK"] == "1":
        raise StoreError("writing to the store failed: No space left on device")
    return big_report(cfg, log)


def _launch(extract_name: str) -> None:
    """Runs in the subprocess: ``--devices 2`` with the stand-in, the merged report as JSON on stdout."""
    from dvx.errors import DvxError
    from dvx.extract.distributed import launch_local

    cfg = ExtractConfig(
        model="tiny-sd",
        dataset="synthetic",
        data_root="/nonexistent",
        store="/nonexistent",
        devices=2,
        threads=1,
    )
    try:
        report = launch_local(cfg, lambda _: None, extract=globals()[extract_name])
    except DvxError as err:
        print(json.dumps({"error": type(err).__name__, "message": str(err)}), flush=True)
        return
    print(json.dumps({"computed": len(report.computed), "ranks": report.ranks}), flush=True)


def _run(extract_name: str) -> dict:
    code = f"from tests.extract.test_distributed_reports import _launch; _launch({extract_name!r})"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        run = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
        )
    except subprocess.TimeoutExpired as err:  # the workers die with the killed parent (PR_SET_PDEATHSIG)
        raise AssertionError(
            "launch_local did not return within 180 s: workers blocked on their reports"
        ) from err
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_reports_bigger_than_a_pipe_buffer_come_back() -> None:
    assert _run("big_report") == {"computed": 2 * PER_RANK, "ranks": 2}


def test_an_error_of_one_rank_is_reported_next_to_a_large_report() -> None:
    got = _run("failing_rank")
    assert got["error"] == "StoreError" and got["message"].startswith("rank 1: writing to the store failed")
