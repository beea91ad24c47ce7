"""Heatmaps: one colour scale per task across models, titles that fit, values in the cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dvx.report.heatmaps import heatmap_png, shared_scale
from dvx.results import Grid


def test_fractions_share_the_unit_scale_and_other_metrics_the_range_over_all_models() -> None:
    assert shared_scale([0.0483, 0.0530]) == (0.0, 1.0)  # not min..max: close values stay close in colour
    assert shared_scale([4.7, 5.2, 6.0]) == (4.7, 6.0)
    assert shared_scale([3.0]) == (1.5, 4.5)
    assert shared_scale([]) == (0.0, 1.0)


def _pixels(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def test_a_single_cell_heatmap_fits_its_title_and_close_values_look_alike(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    title = "tiny-sd (1f14be08) - synthetic-propagation [settings 0123abcd]"
    a = heatmap_png(Grid("J&F", True, [50], ["up.2"], [[0.0483]]), tmp_path / "a.png", title)
    b = heatmap_png(Grid("J&F", True, [50], ["up.2"], [[0.0530]]), tmp_path / "b.png", title)
    pa, pb = _pixels(a), _pixels(b)
    assert pa.shape[1] >= 450  # wide enough for the wrapped title and the colour bar
    # the cell's colour (centre of the axes) differs only slightly between 0.0483 and 0.0530
    h, w = pa.shape[:2]
    ca, cb = pa[int(h * 0.6), int(w * 0.3)].astype(int), pb[int(h * 0.6), int(w * 0.3)].astype(int)
    assert np.abs(ca - cb).max() < 30
