"""``run_tapvid_eval``: predictions on disk against TAP-Vid ground truth, and every way it can go wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dvx.data.tapvid import TapVidDavis
from dvx.errors import ConfigError, DataError
from dvx.probe.evaluate_tapvid import TapvidEvalConfig, format_tapvid_table, run_tapvid_eval
from dvx.probe.tapvid_io import Prediction, read_prediction, write_prediction
from dvx.probe.tapvid_metrics import sample_queries, to_raster
from tests.data.tapvid_fixtures import example, write_davis


@pytest.fixture
def gt(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    return write_davis(
        tmp_path / "gt", {"bear": example(rng, 8, (16, 16), 5), "dog": example(rng, 6, (16, 16), 3)}
    )


def write_exact(gt: Path, out: Path, mode: str, offset: float = 0.0, with_queries: bool = True) -> None:
    """Predictions = the ground truth (plus a constant offset in raster pixels)."""
    ds = TapVidDavis(gt)
    for ref in ds.videos():
        qs = sample_queries(ds.point_tracks(ref), mode)
        pred = Prediction(
            to_raster(qs.points) + np.float32(offset),
            qs.occluded.copy(),
            qs.raster_query_points() if with_queries else None,
        )
        write_prediction(out, ref.id, pred)


@pytest.mark.parametrize("mode", ["first", "strided"])
def test_exact_and_offset_predictions(gt: Path, tmp_path: Path, mode: str) -> None:
    write_exact(gt, tmp_path / "exact", mode)
    rec = run_tapvid_eval(TapvidEvalConfig(pred=tmp_path / "exact", gt=gt, query_mode=mode))
    assert rec["AJ"] == rec["delta_avg"] == rec["OA"] == 1.0
    assert rec["dataset"] == "tapvid-davis" and rec["n_videos"] == 2 and rec["query_mode"] == mode
    write_exact(gt, tmp_path / "off", mode, offset=3.0, with_queries=False)  # (3, 3): 4.24 px off
    rec = run_tapvid_eval(TapvidEvalConfig(pred=tmp_path / "off", gt=gt, query_mode=mode))
    assert rec["delta_avg"] == pytest.approx(2 / 5) and rec["jaccard_4"] == 0.0 and rec["jaccard_8"] == 1.0
    table = format_tapvid_table(rec)
    assert "bear" in table and "ALL (mean over videos)" in table and f"query mode {mode}" in table


def test_predictions_for_the_other_mode_are_refused(gt: Path, tmp_path: Path) -> None:
    write_exact(gt, tmp_path, "strided")
    with pytest.raises(DataError, match="other mode"):
        run_tapvid_eval(TapvidEvalConfig(pred=tmp_path, gt=gt, query_mode="first"))


def test_missing_stray_and_bad_files(gt: Path, tmp_path: Path) -> None:
    write_exact(gt, tmp_path, "first")
    (tmp_path / "dog.npz").unlink()
    with pytest.raises(DataError, match=r"lacks predictions for 1 of 2 video\(s\): dog"):
        run_tapvid_eval(TapvidEvalConfig(pred=tmp_path, gt=gt))
    assert run_tapvid_eval(TapvidEvalConfig(pred=tmp_path, gt=gt, videos=("bear",)))["n_videos"] == 1
    write_exact(gt, tmp_path, "first")
    (tmp_path / "cat.npz").write_bytes((tmp_path / "dog.npz").read_bytes())
    with pytest.raises(DataError, match=r"cat\.npz names no video"):
        run_tapvid_eval(TapvidEvalConfig(pred=tmp_path, gt=gt))
    (tmp_path / "cat.npz").unlink()
    (tmp_path / "dog.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="not a point-tracking prediction"):
        run_tapvid_eval(TapvidEvalConfig(pred=tmp_path, gt=gt))
    with pytest.raises(DataError, match="does not exist"):
        run_tapvid_eval(TapvidEvalConfig(pred=tmp_path / "none", gt=gt))
    with pytest.raises(DataError, match="no TAP-Vid ground truth"):
        run_tapvid_eval(TapvidEvalConfig(pred=tmp_path, gt=tmp_path))
    with pytest.raises(ConfigError, match="unknown query mode"):
        TapvidEvalConfig(pred=tmp_path, gt=gt, query_mode="last")


def test_files_round_trip_without_query_points(tmp_path: Path) -> None:
    pred = Prediction(np.zeros((2, 3, 2), np.float32), np.ones((2, 3), bool))
    back = read_prediction(write_prediction(tmp_path, "v", pred))
    assert back.query_points is None and back.occluded.all() and not list(tmp_path.glob(".*"))
