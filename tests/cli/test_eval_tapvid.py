"""``dvx eval tapvid``: JSON record, table, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.cli.test_eval import _run
from tests.data.tapvid_fixtures import example, write_davis
from tests.probe.test_evaluate_tapvid import write_exact


def test_json_and_table(tmp_path: Path, capsys) -> None:
    gt = write_davis(tmp_path / "gt", {"bear": example(np.random.default_rng(0), 7, (8, 8), 4)})
    write_exact(gt, tmp_path / "pred", "strided")
    base = ["eval", "tapvid", "--pred", str(tmp_path / "pred"), "--gt", str(gt), "--query-mode", "strided"]
    code, out, _ = _run([*base, "--json"], capsys)
    assert code == 0
    rec = json.loads(out)
    assert rec["AJ"] == 1.0 and rec["query_mode"] == "strided" and rec["per_video"]["bear"]["OA"] == 1.0
    code, out, _ = _run(base, capsys)
    assert code == 0 and "bear" in out and "1.0000" in out


def test_errors_are_one_line(tmp_path: Path, capsys) -> None:
    gt = write_davis(tmp_path / "gt", {"bear": example(np.random.default_rng(0), 7, (8, 8), 4)})
    write_exact(gt, tmp_path / "pred", "strided")
    code, out, err = _run(["eval", "tapvid", "--pred", str(tmp_path / "pred"), "--gt", str(gt)], capsys)
    assert code == 2 and out == ""
    assert err.startswith("dvx: error:") and "other mode" in err and len(err.strip().splitlines()) == 1
