"""``dvx eval davis`` / ``dvx eval jhmdb``: JSON records, tables, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dvx.data import open_dataset
from dvx.probe.prediction_io import write_jhmdb_prediction
from tests.conftest import run_cli

OSVOS = "davis2017_osvos/results/semi-supervised/osvos"
GT16 = "davis2016/DAVIS/Annotations/480p"
VIDEO = "Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2"


def test_davis_json_record(shared_data, capsys) -> None:
    code, out, _ = run_cli(
        ["eval", "davis", "--pred", str(shared_data / OSVOS), "--gt", str(shared_data / GT16),
         "--sequences", "blackswan", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0
    [line] = out.splitlines()
    rec = json.loads(line)
    assert rec["metrics"]["J_mean"] == pytest.approx(0.943020, abs=1e-4)
    assert rec["metrics"]["F_mean"] == pytest.approx(0.974096, abs=1e-4)
    assert rec["metrics"]["JF_mean"] == pytest.approx(0.958558, abs=1e-4)
    assert (rec["main_metric"], rec["higher_is_better"]) == ("JF_mean", True)
    assert set(rec["details"]["per_sequence"]["blackswan"]) >= {"J_mean", "F_mean", "JF_mean"}


def test_davis_table_for_one_sequence_folder(shared_data, capsys) -> None:
    pred, gt = shared_data / OSVOS / "blackswan", shared_data / GT16 / "blackswan"
    code, out, _ = run_cli(["eval", "davis", "--pred", str(pred), "--gt", str(gt)], capsys)
    assert code == 0
    assert "blackswan" in out and "0.9586" in out and "JF_mean" in out


def test_davis_errors_are_one_line(shared_data, tmp_path, capsys) -> None:
    code, out, err = run_cli(
        ["eval", "davis", "--pred", str(tmp_path / "none"), "--gt", str(shared_data / GT16)], capsys
    )
    assert code != 0 and out == ""
    assert err.strip().count("\n") == 0 and "does not exist" in err
    pred, gt = shared_data / OSVOS, shared_data / GT16
    code, _, err = run_cli(
        ["eval", "davis", "--pred", str(pred), "--gt", str(gt), "--sequences", "bmx-trees"], capsys
    )
    assert code != 0 and "object id 2" in err and "Traceback" not in err


def test_jhmdb_reads_a_video_folder_name_or_a_dvx_id(shared_data, tmp_path, capsys) -> None:
    root = shared_data / "jhmdb/JHMDB"
    ds = open_dataset("jhmdb", str(root))
    [ref] = ds.videos()
    gt = ds.joints(ref).xy
    for name in (VIDEO, ref.id):  # another tool's file name, and what `dvx probe --task jhmdb` writes
        pred = tmp_path / name
        write_jhmdb_prediction(pred, name, gt)
        code, out, _ = run_cli(
            ["eval", "jhmdb", "--pred", str(pred), "--data-root", str(root), "--json"], capsys
        )
        assert code == 0
        rec = json.loads(out)
        assert rec["metrics"] == {"pck@0.1": 1.0, "pck@0.2": 1.0}
        assert rec["details"]["per_video"][ref.id] == {"pck@0.1": 1.0, "pck@0.2": 1.0}
    # 30 px off everywhere: more than 0.2 x the reference size in every frame of this video
    write_jhmdb_prediction(tmp_path / VIDEO, VIDEO, gt + np.array([0.0, 30.0]))
    code, out, _ = run_cli(
        [
            "eval",
            "jhmdb",
            "--pred",
            str(tmp_path / VIDEO),
            "--data-root",
            str(root),
            "--visibility",
            "inside",
        ],
        capsys,
    )
    assert code == 0
    assert ref.id in out and "visibility: inside" in out and "0.0000" in out


def test_jhmdb_errors(shared_data, tmp_path, capsys) -> None:
    root = shared_data / "jhmdb/JHMDB"
    code, _, err = run_cli(["eval", "jhmdb", "--pred", str(tmp_path), "--data-root", str(root)], capsys)
    assert code != 0 and "no <video>.json" in err
    write_jhmdb_prediction(tmp_path, VIDEO, np.zeros((3, 15, 2)))
    code, _, err = run_cli(["eval", "jhmdb", "--pred", str(tmp_path), "--data-root", str(root)], capsys)
    assert code != 0 and "3 frames x 15 joints, but the ground truth has 40 x 15" in err
    code, _, err = run_cli(["eval", "jhmdb", "--pred", str(tmp_path), "--data-root", str(tmp_path)], capsys)
    assert code != 0 and "jhmdb: no Rename_Images" in err and err.count("\n") == 1
    write_jhmdb_prediction(tmp_path / "other", "nobody", np.zeros((3, 15, 2)))
    code, _, err = run_cli(
        ["eval", "jhmdb", "--pred", str(tmp_path / "other"), "--data-root", str(root)], capsys
    )
    assert code != 0 and "prediction nobody.json: the dataset has no video of that name" in err
