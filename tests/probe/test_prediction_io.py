"""Writing DAVIS submission PNGs and JHMDB joint files; reading JHMDB ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dvx.data.images import DAVIS_PALETTE, read_label_png
from dvx.errors import DataError
from dvx.probe.prediction_io import (
    find_jhmdb_annotation,
    load_jhmdb_joints,
    read_jhmdb_prediction,
    write_davis_sequence,
    write_jhmdb_prediction,
)


def test_davis_sequence_roundtrip(tmp_path) -> None:
    masks = np.zeros((3, 6, 9), dtype=np.uint8)
    masks[1, 2:4, 3:7] = 2
    masks[2, 0, 0] = 5
    paths = write_davis_sequence(tmp_path, "seq", masks, ["00000.jpg", "00001", "00002.png"])
    assert [p.name for p in paths] == ["00000.png", "00001.png", "00002.png"]
    for path, mask in zip(paths, masks, strict=True):
        with Image.open(path) as im:
            assert im.mode == "P" and im.size == (9, 6)
        arr, pal = read_label_png(path)
        np.testing.assert_array_equal(arr, mask)
        np.testing.assert_array_equal(pal, DAVIS_PALETTE)
    with pytest.raises(ValueError, match="frame names"):
        write_davis_sequence(tmp_path, "seq", masks, ["a", "b"])


def test_jhmdb_prediction_roundtrip(tmp_path) -> None:
    joints = np.arange(3 * 15 * 2, dtype=np.float64).reshape(3, 15, 2) / 3
    joints[1, 4] = np.nan
    path = write_jhmdb_prediction(tmp_path, "vid", joints)
    assert path.name == "vid.json"
    data = json.loads(path.read_text())
    assert data["video"] == "vid" and data["frames"][1][4] is None
    np.testing.assert_array_equal(read_jhmdb_prediction(path), joints)


def test_bad_prediction_file(tmp_path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"frames": [[[1, 2]], [[1]]]}')
    with pytest.raises(DataError, match="not a JHMDB prediction file"):
        read_jhmdb_prediction(bad)
    bad.write_text("not json")
    with pytest.raises(DataError, match="not a JHMDB prediction file"):
        read_jhmdb_prediction(bad)


def test_real_jhmdb_ground_truth(shared_data) -> None:
    root = shared_data / "jhmdb/JHMDB"
    video = "Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2"
    mat = find_jhmdb_annotation(root, video)
    assert mat.parent.parent.name == "catch"
    gt = load_jhmdb_joints(mat)
    assert gt.shape == (40, 15, 2)
    np.testing.assert_allclose(gt[0, 0], [286.5 - 1, 106.5 - 1])  # pos_img is 1-based
    with pytest.raises(DataError, match="no ground truth for video 'nope'"):
        find_jhmdb_annotation(root, "nope")
    with pytest.raises(DataError, match="not a JHMDB root"):
        find_jhmdb_annotation(shared_data, video)
