"""Runners behind ``dvx eval``: configs, records and tables."""

from __future__ import annotations

import numpy as np
import pytest

from dvx.probe.evaluate import DavisEvalConfig, format_table, run_davis_eval
from dvx.probe.prediction_io import write_davis_sequence


def test_davis_runner_on_synthetic_folders(tmp_path) -> None:
    gt = np.zeros((4, 20, 30), dtype=np.uint8)
    gt[:, 2:10, 2:12] = 1
    gt[:, 12:18, 15:25] = 2
    pred = gt.copy()
    pred[1:3, 12:18, 15:25] = 0  # object 2 missed in both scored frames
    names = [f"{i:05d}" for i in range(4)]
    write_davis_sequence(tmp_path / "gt", "seq", gt, names)
    write_davis_sequence(tmp_path / "pred", "seq", pred, names)
    rec = run_davis_eval(DavisEvalConfig(pred=tmp_path / "pred", gt=tmp_path / "gt"))
    assert rec["metrics"]["J_mean"] == pytest.approx(0.5) and rec["metrics"]["F_mean"] == pytest.approx(0.5)
    per_object = rec["details"]["per_object"]
    assert per_object["seq_1"]["J_mean"] == 1.0 and per_object["seq_2"]["J_mean"] == 0.0
    table = format_table(rec)
    assert "seq" in table and "0.5000" in table and "J_decay" in table
