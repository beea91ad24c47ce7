"""``dvx eval davis`` / ``dvx eval jhmdb``: JSON records, tables, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dvx.cli import main
from dvx.probe.prediction_io import load_jhmdb_joints, write_jhmdb_prediction

OSVOS = "davis2017_osvos/results/semi-supervised/osvos"
GT16 = "davis2016/DAVIS/Annotations/480p"
VIDEO = "Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2"


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_davis_json_record(shared_data, capsys) -> None:
    code, out, _ = _run(
        ["eval", "davis", "--pred", str(shared_data / OSVOS), "--gt", str(shared_data / GT16),
         "--sequences", "blackswan", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0
    rec = json.loads(out)
    assert rec["J_mean"] == pytest.approx(0.943020, abs=1e-4)
    assert rec["F_mean"] == pytest.approx(0.974096, abs=1e-4)
    assert rec["JF_mean"] == pytest.approx(0.958558, abs=1e-4)
    assert set(rec["per_sequence"]["blackswan"]) >= {"J_mean", "F_mean", "JF_mean"}


def test_davis_table_for_one_sequence_folder(shared_data, capsys) -> None:
    pred, gt = shared_data / OSVOS / "blackswan", shared_data / GT16 / "blackswan"
    code, out, _ = _run(["eval", "davis", "--pred", str(pred), "--gt", str(gt)], capsys)
    assert code == 0
    assert "blackswan" in out and "0.9586" in out and "J&F" in out


def test_davis_errors_are_one_line(shared_data, tmp_path, capsys) -> None:
    code, out, err = _run(
        ["eval", "davis", "--pred", str(tmp_path / "none"), "--gt", str(shared_data / GT16)], capsys
    )
    assert code != 0 and out == ""
    assert err.strip().count("\n") == 0 and "does not exist" in err
    pred, gt = shared_data / OSVOS, shared_data / GT16
    code, _, err = _run(
        ["eval", "davis", "--pred", str(pred), "--gt", str(gt), "--sequences", "bmx-trees"], capsys
    )
    assert code != 0 and "object id 2" in err and "Traceback" not in err


def test_jhmdb_json_and_table(shared_data, tmp_path, capsys) -> None:
    root = shared_data / "jhmdb/JHMDB"
    gt = load_jhmdb_joints(next((root / "joint_positions").glob(f"*/{VIDEO}/joint_positions.mat")))
    write_jhmdb_prediction(tmp_path, VIDEO, gt)
    code, out, _ = _run(["eval", "jhmdb", "--pred", str(tmp_path), "--gt", str(root), "--json"], capsys)
    assert code == 0
    rec = json.loads(out)
    assert rec["pck@0.1"] == 1.0 and rec["pck@0.2"] == 1.0
    assert rec["per_video"][VIDEO] == {"pck@0.1": 1.0, "pck@0.2": 1.0}
    # 30 px off everywhere: more than 0.2 x the reference size in every frame of this video
    write_jhmdb_prediction(tmp_path, VIDEO, gt + np.array([0.0, 30.0]))
    code, out, _ = _run(
        ["eval", "jhmdb", "--pred", str(tmp_path), "--gt", str(root), "--visibility", "inside"], capsys
    )
    assert code == 0
    assert VIDEO in out and "visibility: inside" in out


def test_jhmdb_errors(shared_data, tmp_path, capsys) -> None:
    root = shared_data / "jhmdb/JHMDB"
    code, _, err = _run(["eval", "jhmdb", "--pred", str(tmp_path), "--gt", str(root)], capsys)
    assert code != 0 and "no <video>.json" in err
    write_jhmdb_prediction(tmp_path, VIDEO, np.zeros((3, 15, 2)))
    code, _, err = _run(["eval", "jhmdb", "--pred", str(tmp_path), "--gt", str(root)], capsys)
    assert code != 0 and "3 frames x 15 joints, but the ground truth has 40 x 15" in err
    code, _, err = _run(["eval", "jhmdb", "--pred", str(tmp_path), "--gt", str(tmp_path)], capsys)
    assert code != 0 and "not a JHMDB root" in err
