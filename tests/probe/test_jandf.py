"""J&F: hand-computed cases, the official tool's numbers on real DAVIS files, multi-object sanity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from dvx.data.images import read_label_png, write_indexed_png
from dvx.errors import DataError
from dvx.probe.jandf import (
    DavisResult,
    ObjectStats,
    boundary_f,
    boundary_map,
    boundary_tolerance,
    db_statistics,
    evaluate_folders,
    evaluate_sequence,
    region_similarity,
)
from dvx.probe.prediction_io import write_davis_sequence

OSVOS = "davis2017_osvos/results/semi-supervised/osvos"
GT16 = "davis2016/DAVIS/Annotations/480p"
# official davis2017-evaluation numbers (davis2016/PROVENANCE.md): OSVOS predictions vs DAVIS-2016 GT
OFFICIAL = {
    "blackswan": (0.943020, 0.974096, 0.958558),
    "breakdance": (0.727206, 0.755952, 0.741579),
    "car-shadow": (0.928402, 0.917407, 0.922904),
    "dog": (0.710792, 0.691109, 0.700951),
    "drift-chicane": (0.774220, 0.828893, 0.801557),
    "drift-straight": (0.665461, 0.706774, 0.686118),
    "libby": (0.623027, 0.751232, 0.687129),
}


def test_boundary_map_by_hand() -> None:
    seg = np.zeros((4, 5), dtype=bool)
    seg[1:3, 1:3] = True
    expected = np.array(
        [
            [1, 1, 1, 0, 0],
            [1, 0, 1, 0, 0],
            [1, 1, 1, 0, 0],
            [0, 0, 0, 0, 0],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(boundary_map(seg), expected)


def test_boundary_map_at_the_image_border() -> None:
    # the image border is never a boundary: an all-ones mask has none
    assert not boundary_map(np.ones((3, 4), dtype=bool)).any()
    # a mask touching the right border; worked out from the seg2bmap rules:
    # last column compares only downwards, last row only to the right
    seg = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0]], dtype=bool)
    expected = np.array([[0, 1, 0, 0], [0, 1, 1, 1], [0, 0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(boundary_map(seg), expected)


def test_tolerance_is_ceil_of_diagonal_fraction() -> None:
    assert boundary_tolerance((480, 854)) == 8  # ceil(0.008 * 979.6)
    assert boundary_tolerance((480, 1152)) == 10  # ceil(0.008 * 1248)
    assert boundary_tolerance((10, 10)) == 1
    assert boundary_tolerance((10, 10), bound_th=3) == 3


def test_region_similarity_by_hand() -> None:
    gt = np.zeros((3, 4, 4), dtype=bool)
    pred = np.zeros((3, 4, 4), dtype=bool)
    gt[0, :2, :2] = True  # 4 px
    pred[0, :2, :3] = True  # 6 px, 4 shared -> 4 / 6
    gt[1, 0, 0] = True  # prediction empty -> 0
    # frame 2: both empty -> 1
    np.testing.assert_allclose(region_similarity(gt, pred), [4 / 6, 0.0, 1.0])


def _disk_dilation_f(gt: np.ndarray, pred: np.ndarray) -> float:
    """F with an explicit disk dilation, as the official code does with cv2.dilate + skimage disk."""
    r = boundary_tolerance(gt.shape)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = xx**2 + yy**2 <= r**2
    fg_b, gt_b = boundary_map(pred), boundary_map(gt)
    n_fg, n_gt = fg_b.sum(), gt_b.sum()
    if n_fg == 0 or n_gt == 0:
        return boundary_f(gt, pred)
    p = (fg_b & ndimage.binary_dilation(gt_b, disk)).sum() / n_fg
    rc = (gt_b & ndimage.binary_dilation(fg_b, disk)).sum() / n_gt
    return 0.0 if p + rc == 0 else 2 * p * rc / (p + rc)


def test_boundary_f_equals_explicit_disk_dilation() -> None:
    rng = np.random.default_rng(0)
    for _ in range(12):
        h, w = rng.integers(20, 90, 2)
        gt = ndimage.gaussian_filter(rng.random((h, w)), 3) > 0.5
        pred = ndimage.gaussian_filter(rng.random((h, w)), 2) > 0.5
        assert boundary_f(gt, pred) == pytest.approx(_disk_dilation_f(gt, pred), abs=1e-12)


def test_boundary_f_empty_cases() -> None:
    empty = np.zeros((30, 40), dtype=bool)
    blob = empty.copy()
    blob[5:15, 5:20] = True
    assert boundary_f(empty, empty) == 1.0
    assert boundary_f(blob, empty) == 0.0  # nothing predicted: precision 1, recall 0
    assert boundary_f(empty, blob) == 0.0  # nothing to find: precision 0, recall 1
    assert boundary_f(blob, blob) == 1.0
    shifted = np.roll(blob, 1, axis=1)  # 1 px off, within the 1 px tolerance of a 30x40 image
    assert boundary_f(blob, shifted) == 1.0
    far = np.roll(blob, 15, axis=1)
    assert boundary_f(blob, far) < 0.5


def test_db_statistics_by_hand() -> None:
    v = np.arange(10) / 10
    mean, recall, decay = db_statistics(v)
    assert mean == pytest.approx(0.45)
    assert recall == pytest.approx(0.4)  # 0.6, 0.7, 0.8, 0.9 are > 0.5
    # bins: ids = [0, 2, 5, 7, 9] -> first bin v[0:3], last bin v[7:10]
    assert decay == pytest.approx(0.1 - 0.8)


def _seq(n: int = 5, h: int = 20, w: int = 30) -> np.ndarray:
    gt = np.zeros((n, h, w), dtype=np.uint8)
    gt[:, 2:10, 2:10] = 1
    gt[:, 12:18, 15:25] = 2
    return gt


def test_evaluate_sequence_perfect_and_first_last_frames_ignored() -> None:
    gt = _seq()
    pred = gt.copy()
    pred[0] = 0  # the first and last frame are not scored
    pred[-1] = 2
    score = evaluate_sequence(gt, pred)
    assert score.n_objects == 2
    assert score.J.shape == (2, 3)
    assert score.JF_mean == 1.0


def test_void_counts_as_background_in_the_semi_supervised_protocol() -> None:
    gt = np.zeros((3, 20, 20), dtype=np.uint8)
    gt[:, 5:10, 5:10] = 1  # 25 px
    gt[:, 10:15, 5:10] = 255  # void, 25 px
    pred = np.zeros_like(gt)
    pred[:, 5:15, 5:10] = 1  # object + void region
    score = evaluate_sequence(gt, pred)
    assert score.J[0, 0] == pytest.approx(25 / 50)


def test_objects_are_counted_from_the_first_frame() -> None:
    gt = _seq()
    gt[0][gt[0] == 2] = 0  # object 2 appears only after frame 0 -> not an object of this sequence
    score = evaluate_sequence(gt, np.where(gt == 2, 0, gt))
    assert score.n_objects == 1
    with pytest.raises(DataError, match="object id 2"):
        evaluate_sequence(gt, gt)


def test_missing_object_in_prediction_scores_zero_where_present() -> None:
    gt = _seq()
    gt[2][gt[2] == 2] = 0  # object 2 absent in scored frame 2 of {1, 2, 3}
    pred = np.where(gt == 2, 0, gt)  # object 2 never predicted
    score = evaluate_sequence(gt, pred)
    np.testing.assert_allclose(score.J[1], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(score.F[1], [0.0, 1.0, 0.0])
    assert score.J_mean == pytest.approx((1 + 1 / 3) / 2)


def test_a_result_computes_each_objects_statistics_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = ObjectStats.from_frames.__func__

    def counting(cls: type[ObjectStats], j: np.ndarray, f: np.ndarray) -> ObjectStats:
        calls.append(1)
        return real(cls, j, f)

    monkeypatch.setattr(ObjectStats, "from_frames", classmethod(counting))
    gt = _seq()
    missing = np.where(gt == 2, 0, gt)
    result = DavisResult({"a": evaluate_sequence(gt, gt), "b": evaluate_sequence(gt, missing)})
    rec = result.record()
    assert (result.J_mean, result.F_mean, result.JF_mean) == (rec["J_mean"], rec["F_mean"], rec["JF_mean"])
    seq = rec["per_sequence"]["b"]
    assert seq["JF_mean"] == (seq["J_mean"] + seq["F_mean"]) / 2
    assert len(calls) == 4  # two objects in each of two sequences, each scored once


def test_sequence_shape_errors() -> None:
    gt = _seq()
    with pytest.raises(DataError, match="shape"):
        evaluate_sequence(gt, gt[:, :10])
    with pytest.raises(DataError, match="at least 3 frames"):
        evaluate_sequence(gt[:2], gt[:2])


def test_official_numbers_blackswan(shared_data) -> None:
    result = evaluate_folders(shared_data / OSVOS / "blackswan", shared_data / GT16 / "blackswan")
    rec = result.record()
    j, f, jf = OFFICIAL["blackswan"]
    assert rec["J_mean"] == pytest.approx(j, abs=1e-4)
    assert rec["F_mean"] == pytest.approx(f, abs=1e-4)
    assert rec["JF_mean"] == pytest.approx(jf, abs=1e-4)
    assert rec["per_sequence"]["blackswan"]["JF_mean"] == pytest.approx(jf, abs=1e-4)
    assert set(rec) >= {"J_recall", "J_decay", "F_recall", "F_decay", "per_object", "n_objects"}


@pytest.mark.slow
def test_official_numbers_all_rows(shared_data) -> None:
    names = [s for s in OFFICIAL if s != "blackswan"]
    rec = evaluate_folders(shared_data / OSVOS, shared_data / GT16, names).record()
    for name in names:
        j, f, jf = OFFICIAL[name]
        got = rec["per_sequence"][name]
        assert got["J_mean"] == pytest.approx(j, abs=1e-4), name
        assert got["F_mean"] == pytest.approx(f, abs=1e-4), name
        assert got["JF_mean"] == pytest.approx(jf, abs=1e-4), name
    # dataset means are over objects (one per sequence here)
    assert rec["J_mean"] == pytest.approx(np.mean([OFFICIAL[n][0] for n in names]), abs=1e-4)


def test_palette_gt_scores_like_binary_gt(shared_data) -> None:
    pal = evaluate_folders(
        shared_data / OSVOS, shared_data / "davis2016/DAVIS/Annotations_palette_DERIVED/480p", ["car-shadow"]
    )
    assert pal.JF_mean == pytest.approx(OFFICIAL["car-shadow"][2], abs=1e-4)


def _read_seq(folder) -> tuple[np.ndarray, list[str]]:
    paths = sorted(folder.glob("*.png"))
    return np.stack([read_label_png(p)[0] for p in paths]), [p.stem for p in paths]


def test_multi_object_against_itself_is_perfect(shared_data, tmp_path) -> None:
    # OSVOS predictions used as ground truth: judo (2 objects), shooting (3 objects, 1152x480)
    for name, n_obj in (("judo", 2), ("shooting", 3)):
        rec = evaluate_folders(shared_data / OSVOS, shared_data / OSVOS, [name]).record()
        assert rec["n_objects"] == n_obj
        assert rec["J_mean"] == 1.0 and rec["F_mean"] == 1.0 and rec["JF_mean"] == 1.0


def test_removing_one_object_gives_the_expected_drop(shared_data, tmp_path) -> None:
    gt, ids = _read_seq(shared_data / OSVOS / "lab-coat")  # 5 objects
    n_obj = int(gt[0].max())
    pred = np.where(gt == n_obj, 0, gt)
    write_davis_sequence(tmp_path, "lab-coat", pred, ids)
    rec = evaluate_folders(tmp_path, shared_data / OSVOS, ["lab-coat"]).record()
    # the removed object scores 1 where it is absent from the GT (both empty) and 0 elsewhere
    absent = float(np.mean([not (fr == n_obj).any() for fr in gt[1:-1]]))
    expected = (n_obj - 1 + absent) / n_obj
    assert rec["J_mean"] == pytest.approx(expected, abs=1e-12)
    assert rec["F_mean"] == pytest.approx(expected, abs=1e-12)
    assert rec["per_object"][f"lab-coat_{n_obj}"]["J_mean"] == pytest.approx(absent, abs=1e-12)
    assert rec["per_object"]["lab-coat_1"]["J_mean"] == 1.0


def test_folder_errors(shared_data, tmp_path) -> None:
    gt = shared_data / GT16
    with pytest.raises(DataError, match="does not exist"):
        evaluate_folders(tmp_path / "nope", gt, ["blackswan"])
    with pytest.raises(DataError, match="no predictions for sequence 'blackswan'"):
        evaluate_folders(tmp_path, gt, ["blackswan"])
    with pytest.raises(DataError, match="no annotations"):
        evaluate_folders(tmp_path, gt, ["not-a-sequence"])
    # a missing frame
    masks, ids = _read_seq(gt / "car-shadow")
    write_davis_sequence(tmp_path, "car-shadow", masks, ids)
    (tmp_path / "car-shadow" / f"{ids[5]}.png").unlink()
    with pytest.raises(DataError, match=f"{ids[5]}.png is missing"):
        evaluate_folders(tmp_path, gt, ["car-shadow"])
    # a frame of the wrong size
    write_indexed_png(tmp_path / "car-shadow" / f"{ids[5]}.png", masks[5][:, :-2])
    with pytest.raises(DataError, match="852x480 but the annotation is 854x480"):
        evaluate_folders(tmp_path, gt, ["car-shadow"])
    # predictions written from the GT itself score 1
    write_davis_sequence(tmp_path, "car-shadow", masks, ids)
    assert evaluate_folders(tmp_path, gt, ["car-shadow"]).JF_mean == 1.0
