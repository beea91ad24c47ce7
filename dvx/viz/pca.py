"""Three-channel PCA colours of feature maps, a deterministic function of the features.

Protocol: the positions of every chosen frame of one (model, T, block) are pooled (subsampled to at most
``max_points`` with a fixed seed when there are more), centred, and the top three eigenvectors of their
float64 covariance are the colour axes. Each axis's sign is fixed so that its largest-|loading| channel is
positive (an eigenvector's sign is otherwise arbitrary), and each projected channel is mapped to [0, 1]
between its 1st and 99th percentile over the pooled positions. Because the fit is joint, one colour
means the same direction in feature space on every frame (and every video) of the panel; the same
features always give the same image, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pca:
    mean: np.ndarray  # (C,)
    axes: np.ndarray  # (k, C), rows unit-norm, signs fixed
    lo: np.ndarray  # (k,) 1st percentile of each projection over the fitted positions
    hi: np.ndarray  # (k,) 99th percentile


def positions(feats: np.ndarray) -> np.ndarray:
    """(F, C, h, w) feature maps -> (F*h*w, C) float64 rows (non-finite values as 0)."""
    f = np.asarray(feats, dtype=np.float64)
    rows = f.transpose(0, 2, 3, 1).reshape(-1, f.shape[1])
    return np.nan_to_num(rows, nan=0.0, posinf=0.0, neginf=0.0)


def sample(rows: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    if len(rows) <= max_points:
        return rows
    pick = np.random.default_rng(seed).choice(len(rows), size=max_points, replace=False)
    return rows[np.sort(pick)]


def fit_pca(rows: np.ndarray, k: int = 3, max_points: int = 50_000, seed: int = 0) -> Pca:
    x = sample(rows, max_points, seed)
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / max(1, len(x) - 1)
    values, vectors = np.linalg.eigh(cov)  # ascending
    order = np.argsort(values)[::-1][:k]
    axes = vectors[:, order].T.copy()
    while len(axes) < k:  # fewer channels than colours: a flat colour channel
        axes = np.vstack([axes, np.zeros((1, axes.shape[1]))])
    for i, a in enumerate(axes):
        if a.any() and a[np.argmax(np.abs(a))] < 0:
            axes[i] = -a
    proj = centred @ axes.T
    lo, hi = np.percentile(proj, 1, axis=0), np.percentile(proj, 99, axis=0)
    return Pca(mean, axes, lo, hi)


def colours(pca: Pca, feats: np.ndarray) -> np.ndarray:
    """(F, C, h, w) -> (F, h, w, 3) uint8 RGB at feature resolution."""
    n, _, h, w = feats.shape
    proj = (positions(feats) - pca.mean) @ pca.axes.T
    span = np.where(pca.hi > pca.lo, pca.hi - pca.lo, 1.0)
    unit = np.clip((proj - pca.lo) / span, 0.0, 1.0)
    return np.round(unit * 255).astype(np.uint8).reshape(n, h, w, -1)[..., :3]
