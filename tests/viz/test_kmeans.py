"""K-means of features: seeded, deterministic, clusters numbered by size."""

from __future__ import annotations

import numpy as np

from dvx.viz.kmeans import fit_kmeans, label_colours, labels, palette
from dvx.viz.pca import positions


def two_regions(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=0.05, size=(2, 4, 6, 6))
    x[:, 0, :, :4] += 1.0  # a large region along channel 0
    x[:, 1, :, 4:] += 1.0  # a smaller one along channel 1
    return x


def test_same_features_and_seed_give_the_same_labels_and_regions_are_found() -> None:
    x = two_regions()
    c1, c2 = fit_kmeans(positions(x), k=2, seed=0), fit_kmeans(positions(x), k=2, seed=0)
    assert np.array_equal(c1, c2)
    lab = labels(c1, x)
    assert lab.shape == (2, 6, 6)
    assert (lab[:, :, :4] == 0).all() and (lab[:, :, 4:] == 1).all()  # the bigger region is cluster 0


def test_k_is_capped_by_the_points_and_colours_come_from_a_fixed_palette() -> None:
    x = two_regions()[:, :, :1, :1]  # 2 positions
    c = fit_kmeans(positions(x), k=10, seed=0)
    assert len(c) <= 2
    assert tuple(palette(12)[0]) == (31, 119, 180) and len({tuple(p) for p in palette(12)}) == 12
    assert label_colours(np.zeros((1, 2, 2), dtype=int), 3).shape == (1, 2, 2, 3)
