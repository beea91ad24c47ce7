"""Nearest resizing bit-identical to Pillow's NEAREST (used for first-frame masks and predictions)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dvx.probe.resize import nearest_indices, resize_nearest


def test_matches_pillow_on_many_sizes() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        H, W = (int(v) for v in rng.integers(1, 120, 2))
        h, w = (int(v) for v in rng.integers(1, 400, 2))
        labels = rng.integers(0, 255, (H, W), dtype=np.uint8)
        ref = np.asarray(Image.fromarray(labels).resize((w, h), Image.NEAREST))
        np.testing.assert_array_equal(resize_nearest(labels, (h, w)), ref)


def test_pillow_walk_differs_from_the_closed_form() -> None:
    # 100 -> 37: the closed form floor((i + 0.5) * 100 / 37) gives floor(50.0135...) = 50 at i = 18;
    # Pillow's walk gives 49
    assert nearest_indices(100, 37)[18] == 49


def test_batch_axes_and_errors() -> None:
    labels = np.arange(2 * 4 * 6).reshape(2, 4, 6)
    out = resize_nearest(labels, (2, 3))
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[1], resize_nearest(labels[1], (2, 3)))
    with pytest.raises(ValueError):
        nearest_indices(0, 3)
