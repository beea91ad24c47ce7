"""Writing DAVIS submission PNGs and JHMDB joint files; finding prediction folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dvx.data.images import DAVIS_PALETTE, read_label_png
from dvx.errors import DataError
from dvx.probe.prediction_io import (
    prediction_files,
    prediction_folders,
    read_jhmdb_prediction,
    write_davis_sequence,
    write_jhmdb_prediction,
)
from dvx.results import CONFIG_FILE, read_config, write_config


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


def test_prediction_folders_are_found_by_their_config_file(tmp_path) -> None:
    a = tmp_path / "davis17" / "davis" / "m@12345678" / "T50" / "up.1"
    b = tmp_path / "davis17" / "davis" / "m@12345678" / "T50" / "up.2"
    for folder in (a, b):
        write_config(folder, {"task": "davis17", "T": 50})
    assert prediction_folders(tmp_path) == [a, b]  # OUT itself, as dvx probe --out was given
    assert prediction_folders(a) == [a]
    plain = tmp_path / "plain"
    plain.mkdir()
    assert prediction_folders(plain) == [plain]  # predictions from another tool: the folder itself
    assert read_config(plain) is None and read_config(a) == {"task": "davis17", "T": 50}
    write_jhmdb_prediction(a, "vid", np.zeros((2, 15, 2)))
    assert [p.name for p in prediction_files(a, ".json")] == ["vid.json"]  # the config is no prediction
    (a / CONFIG_FILE).write_text("{")
    with pytest.raises(DataError, match=r"dvx-config\.json: unreadable"):
        read_config(a)
    with pytest.raises(DataError, match="does not exist"):
        prediction_folders(tmp_path / "none")
