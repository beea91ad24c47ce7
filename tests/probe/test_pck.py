"""PCK: hand-computed cases, visibility rules, pooling, and real JHMDB ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from dvx.data import open_dataset
from dvx.errors import ConfigError, DataError
from dvx.probe.pck import evaluate_pck, normalised_errors


def _gt(n: int = 3) -> np.ndarray:
    gt = np.zeros((n, 2, 2))
    gt[:, 1] = [30.0, 40.0]  # box diagonal 50 -> reference size 0.6 * 50 = 30 px
    return gt


def test_pck_by_hand() -> None:
    gt = _gt()
    pred = gt.copy()
    pred[0] += 1000  # frame 0 is never scored
    pred[1, 0] += [2.0, 0.0]  # 2 / 30 = 0.067: correct at 0.1 and 0.2
    pred[1, 1] += [0.0, 4.0]  # 4 / 30 = 0.133: wrong at 0.1, correct at 0.2
    pred[2, 0] += [7.0, 0.0]  # 7 / 30 = 0.233: wrong at both
    res = evaluate_pck({"v": pred}, {"v": gt})
    np.testing.assert_allclose(res.per_joint, [[0.5, 0.5], [0.5, 1.0]])
    rec = res.record()
    assert rec["pck@0.1"] == pytest.approx(0.5)
    assert rec["pck@0.2"] == pytest.approx(0.75)
    assert rec["per_video"]["v"] == {"pck@0.1": pytest.approx(0.5), "pck@0.2": pytest.approx(0.75)}
    assert rec["n_scored_joints"] == 4


def test_threshold_is_inclusive_and_lost_joints_are_wrong() -> None:
    gt = _gt()
    pred = gt.copy()
    pred[1, 0] += [3.0, 0.0]  # exactly 0.1 * 30
    pred[2, 1] = np.nan  # lost
    err, scored = normalised_errors(pred, gt)
    assert err[1, 0] == pytest.approx(0.1)
    assert np.isinf(err[2, 1]) and scored[2, 1]
    res = evaluate_pck({"v": pred}, {"v": gt}, alphas=(0.1,))
    np.testing.assert_allclose(res.per_joint, [[1.0, 0.5]])


def test_visibility_inside_the_frame() -> None:
    gt = _gt()
    gt[:, 1] = [330.0, 40.0]  # joint 1 outside a 320-wide frame
    pred = gt.copy()
    pred[:, 0] += [1.0, 0.0]
    with pytest.raises(ConfigError, match="frame size"):
        evaluate_pck({"v": pred}, {"v": gt}, visibility="inside")
    res = evaluate_pck({"v": pred}, {"v": gt}, visibility="inside", frame_sizes={"v": (240, 320)})
    # joint 1 is not scored; the box of a single visible joint is 0 -> never correct (as the reference)
    assert np.isnan(res.per_joint[0, 1])
    assert res.per_joint[0, 0] == 0.0
    res_all = evaluate_pck({"v": pred}, {"v": gt})
    assert res_all.per_joint[0, 0] == 1.0  # 1 px against 0.6 * |(330, 40)| = 199 px


def test_joints_are_pooled_over_videos_then_averaged() -> None:
    a_gt, b_gt = _gt(3), _gt(5)
    a_pred, b_pred = a_gt.copy(), b_gt.copy()
    a_pred[1:, 0] += [10.0, 0.0]  # video a: joint 0 wrong in both scored frames
    res = evaluate_pck({"a": a_pred, "b": b_pred}, {"a": a_gt, "b": b_gt}, alphas=(0.1,))
    # joint 0: 4 of 6 scored frames correct; joint 1: 6 of 6
    np.testing.assert_allclose(res.per_joint, [[4 / 6, 1.0]])
    assert res.record()["pck@0.1"] == pytest.approx((4 / 6 + 1) / 2)
    assert res.per_video["a"][0] == pytest.approx(0.5)
    assert res.per_video["b"][0] == pytest.approx(1.0)


def test_shape_and_rule_errors() -> None:
    gt = _gt()
    with pytest.raises(DataError, match="shape"):
        evaluate_pck({"v": gt[:2]}, {"v": gt})
    with pytest.raises(DataError, match="no ground truth"):
        evaluate_pck({"w": gt}, {"v": gt})
    with pytest.raises(ConfigError, match="visibility"):
        evaluate_pck({"v": gt}, {"v": gt}, visibility="visible")


def test_real_jhmdb_gt_and_known_shift(shared_data) -> None:
    ds = open_dataset("jhmdb", str(shared_data / "jhmdb/JHMDB"))
    gt = ds.joints(ds.videos()[0]).xy.astype(np.float64)
    assert evaluate_pck({"v": gt}, {"v": gt}).record()["pck@0.1"] == 1.0
    size = 0.6 * np.linalg.norm(gt.max(axis=1) - gt.min(axis=1), axis=-1)  # reference size per frame
    # a shift that passes at alpha = 0.1 in about half of the scored frames (between two thresholds)
    thr = np.unique(0.1 * size[1:])
    d = (thr[len(thr) // 2 - 1] + thr[len(thr) // 2]) / 2
    res = evaluate_pck({"v": gt + np.array([d * 0.6, d * 0.8])}, {"v": gt}, alphas=(0.1, 0.2))
    for i, alpha in enumerate((0.1, 0.2)):
        expected = np.mean(d <= alpha * size[1:])
        np.testing.assert_allclose(res.per_joint[i], expected)  # every joint is off by d in every frame
    assert 0.0 < res.record()["pck@0.1"] < 1.0
    assert res.record()["pck@0.2"] == pytest.approx(np.mean(d <= 0.2 * size[1:]))
