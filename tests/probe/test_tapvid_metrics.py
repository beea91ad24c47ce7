"""The TAP-Vid metrics against an independent computation written from the definitions (loops over every
(query, frame) pair), on random and edge-case predictions, in both query modes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dvx.data.base import PointTracks
from dvx.errors import ConfigError
from dvx.probe.tapvid_metrics import (
    METRICS,
    THRESHOLDS,
    TapVidScores,
    sample_queries,
    to_raster,
    video_metrics,
)


def by_definition(
    qf: np.ndarray, gt_occ: np.ndarray, gt: np.ndarray, pred_occ: np.ndarray, pred: np.ndarray, mode: str
) -> dict[str, float]:
    """TAP-Vid's figures of one video, pair by pair from the paper's definitions."""
    n_q, n_f = gt_occ.shape
    pairs = [(i, t) for i in range(n_q) for t in range(n_f) if (t > qf[i] if mode == "first" else t != qf[i])]

    def frac(num: int, den: int) -> float:
        return num / den if den else math.nan

    out = {"OA": frac(sum(bool(pred_occ[i, t]) == bool(gt_occ[i, t]) for i, t in pairs), len(pairs))}
    visible = [(i, t) for i, t in pairs if not gt_occ[i, t]]
    for thr in THRESHOLDS:

        def within(i: int, t: int, thr: int = thr) -> bool:
            return math.hypot(*(float(pred[i, t, c]) - float(gt[i, t, c]) for c in (0, 1))) < thr

        out[f"pts_within_{thr}"] = frac(sum(within(i, t) for i, t in visible), len(visible))
        tp = sum(within(i, t) and not pred_occ[i, t] for i, t in visible)
        fp = sum(not pred_occ[i, t] and (gt_occ[i, t] or not within(i, t)) for i, t in pairs)
        out[f"jaccard_{thr}"] = frac(tp, len(visible) + fp)
    out["AJ"] = sum(out[f"jaccard_{t}"] for t in THRESHOLDS) / 5
    out["delta_avg"] = sum(out[f"pts_within_{t}"] for t in THRESHOLDS) / 5
    return out


def gt_video(rng: np.random.Generator, n: int = 6, f: int = 12) -> PointTracks:
    occluded = rng.random((n, f)) < 0.35
    occluded[-1] = True  # a track never visible: no query in "first" mode
    points = rng.random((n, f, 2)).astype(np.float32)
    return PointTracks(points, occluded, [f"{i:05d}" for i in range(f)])


def check(qs: object, pred_occ: np.ndarray, pred: np.ndarray, mode: str) -> dict[str, float]:
    gt = to_raster(qs.points)
    got = video_metrics(qs.frames, qs.occluded, gt, pred_occ, pred, mode)
    want = by_definition(qs.frames, qs.occluded, gt, pred_occ, pred, mode)
    assert list(got) == list(METRICS)
    for k in METRICS:
        assert (math.isnan(got[k]) and math.isnan(want[k])) or got[k] == pytest.approx(want[k], abs=1e-12), k
    return got


@pytest.mark.parametrize("mode", ["first", "strided"])
@pytest.mark.parametrize("seed", range(5))
def test_random_predictions(mode: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    qs = sample_queries(gt_video(rng), mode)
    gt = to_raster(qs.points)
    pred = gt + rng.normal(0, 6, gt.shape)  # errors around every threshold
    check(qs, rng.random(qs.occluded.shape) < 0.4, pred, mode)


@pytest.mark.parametrize("mode", ["first", "strided"])
def test_edge_cases(mode: str) -> None:
    rng = np.random.default_rng(7)
    qs = sample_queries(gt_video(rng), mode)
    gt = to_raster(qs.points)
    occ = qs.occluded
    # exact, with the true occlusion: everything perfect
    exact = check(qs, occ, gt.copy(), mode)
    assert exact["AJ"] == exact["delta_avg"] == exact["OA"] == 1.0
    # everything predicted occluded: no true positive, no false positive
    hidden = check(qs, np.ones_like(occ), gt.copy(), mode)
    assert hidden["AJ"] == 0.0 and hidden["delta_avg"] == 1.0 and hidden["OA"] < 1.0
    # everything predicted visible at the exact position: occluded pairs are false positives
    shown = check(qs, np.zeros_like(occ), gt.copy(), mode)
    assert 0.0 < shown["AJ"] < 1.0 and shown["delta_avg"] == 1.0
    # off by a constant (3, 4) = 5 px: within 8 and 16 only
    off = check(qs, occ, gt + np.array([3.0, 4.0], dtype=np.float32), mode)
    assert off["delta_avg"] == pytest.approx(2 / 5)
    assert off["jaccard_8"] == 1.0 and off["jaccard_4"] == 0.0
    # exactly on a threshold does not count (strictly within)
    one = check(qs, occ, gt + np.array([1.0, 0.0], dtype=np.float32), mode)
    assert one["pts_within_1"] == 0.0 and one["pts_within_2"] == 1.0


def test_undefined_figures_are_nan_and_left_out_of_the_means() -> None:
    occ = np.array([[False, True, True]])  # nothing visible after the query frame
    gt = np.zeros((1, 3, 2), np.float32)
    m = check(
        type("Q", (), {"frames": np.array([0]), "points": gt, "occluded": occ})(), occ, gt * 256, "first"
    )
    assert math.isnan(m["delta_avg"]) and math.isnan(m["AJ"]) and m["OA"] == 1.0
    scores = TapVidScores("first")
    scores.add("empty", m, 1)
    scores.add("good", dict.fromkeys(METRICS, 0.5), 3)
    rec = scores.record()
    assert rec["AJ"] == 0.5 and rec["OA"] == 0.75 and rec["undefined"]["AJ"] == 1
    assert rec["per_video"]["empty"]["AJ"] is None and rec["per_video"]["empty"]["OA"] == 1.0
    assert rec["n_videos"] == 2 and rec["n_queries"] == 4 and rec["per_video"]["good"]["n_queries"] == 3


def test_query_sampling_first_and_strided() -> None:
    occluded = np.array(
        [
            [True, False, False, True, True, False, False],  # first visible at 1
            [False, True, True, True, True, False, True],  # first visible at 0
            [True] * 7,  # never visible: no query
        ]
    )
    points = np.arange(3 * 7 * 2, dtype=np.float32).reshape(3, 7, 2) / 100
    tracks = PointTracks(points, occluded, [str(i) for i in range(7)])
    first = sample_queries(tracks, "first")
    assert first.frames.tolist() == [1, 0] and first.track.tolist() == [0, 1]
    np.testing.assert_array_equal(first.xy, points[[0, 1], [1, 0]])
    np.testing.assert_array_equal(first.points, points[:2])
    strided = sample_queries(tracks, "strided")  # frames 0 and 5: track 1 at 0; tracks 0, 1 at 5
    assert strided.frames.tolist() == [0, 5, 5] and strided.track.tolist() == [1, 0, 1]
    qp = strided.raster_query_points()
    np.testing.assert_allclose(qp[1], [5, points[0, 5, 1] * 256, points[0, 5, 0] * 256], rtol=1e-6)
    with pytest.raises(ConfigError, match="unknown query mode"):
        sample_queries(tracks, "last")
