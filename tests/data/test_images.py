from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dvx.data.images import read_id_png
from dvx.errors import CorruptVideoError, DataError


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_read_id_png_keeps_values(tmp_path: Path, dtype: type) -> None:
    ids = np.array([[0, 1, 255], [7, 2, 0]], dtype=dtype)
    if dtype is np.uint16:
        ids[0, 0] = 26002
    Image.fromarray(ids).save(tmp_path / "ids.png")
    out = read_id_png(tmp_path / "ids.png")
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, ids.astype(np.int32))  # 0/255 is not binarised


def test_read_id_png_errors(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match=r"single-channel"):
        read_id_png(tmp_path / "rgb.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG junk")
    with pytest.raises(CorruptVideoError, match=r"bad.png"):
        read_id_png(tmp_path / "bad.png", "vid")
