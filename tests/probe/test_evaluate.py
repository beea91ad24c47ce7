"""Runners behind ``dvx eval``: configs, records and tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dvx.errors import ConfigError, DataError
from dvx.probe.evaluate import (
    DavisEvalConfig,
    JhmdbEvalConfig,
    format_davis_table,
    format_jhmdb_table,
    run_davis_eval,
    run_jhmdb_eval,
)
from dvx.probe.prediction_io import write_davis_sequence, write_jhmdb_prediction


def test_jhmdb_config_validation() -> None:
    with pytest.raises(ConfigError, match="visibility"):
        JhmdbEvalConfig(pred=Path("."), gt=Path("."), visibility="visible")
    with pytest.raises(ConfigError, match="alphas"):
        JhmdbEvalConfig(pred=Path("."), gt=Path("."), alphas=(0.1, 0.0))


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
    assert rec["J_mean"] == pytest.approx(0.5) and rec["F_mean"] == pytest.approx(0.5)
    assert rec["per_object"]["seq_1"]["J_mean"] == 1.0 and rec["per_object"]["seq_2"]["J_mean"] == 0.0
    table = format_davis_table(rec)
    assert "seq" in table and "0.5000" in table and "J_decay" in table


def test_jhmdb_runner_on_a_synthetic_root(tmp_path) -> None:
    from scipy.io import savemat

    pos = np.zeros((2, 15, 5))
    pos[0] = np.linspace(50, 150, 15)[:, None]  # x, 1-based
    pos[1] = np.linspace(40, 200, 15)[:, None]  # y
    folder = tmp_path / "root" / "joint_positions" / "run" / "vid"
    folder.mkdir(parents=True)
    savemat(folder / "joint_positions.mat", {"pos_img": pos})
    gt = np.transpose(pos, (2, 1, 0)) - 1
    write_jhmdb_prediction(tmp_path / "pred", "vid", gt)
    rec = run_jhmdb_eval(JhmdbEvalConfig(pred=tmp_path / "pred", gt=tmp_path / "root"))
    assert rec["pck@0.1"] == 1.0 and rec["n_videos"] == 1 and rec["n_scored_joints"] == 4 * 15
    assert "vid" in format_jhmdb_table(rec)
    with pytest.raises(DataError, match="needs the frame size"):
        run_jhmdb_eval(JhmdbEvalConfig(pred=tmp_path / "pred", gt=tmp_path / "root", visibility="inside"))
