"""Nearest-neighbour resizing of label maps, bit-identical to ``PIL.Image.resize(size, NEAREST)``.

DINO and DIFT resize label maps with Pillow (first-frame mask -> feature grid, prediction -> annotation
size). Pillow's scale path walks the source coordinate by repeated floating-point addition
(``x0 = s/2``, ``x_{i+1} = x_i + s`` with ``s = n_in / n_out``) and truncates, which differs from
``floor((i + 0.5) * s)`` at exact integers; we reproduce the walk so our masks match theirs pixel for pixel.
"""

from __future__ import annotations

import numpy as np


def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each of ``n_out`` output pixels when resizing ``n_in`` pixels (Pillow's NEAREST)."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"sizes must be positive, got {n_in} -> {n_out}")
    step = n_in / n_out
    walk = np.full(n_out, step, dtype=np.float64)
    walk[0] = step * 0.5
    return np.minimum(np.cumsum(walk).astype(np.int64), n_in - 1)


def resize_nearest(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize the last two axes of ``labels`` (..., H, W) to ``size`` = (h, w) like Pillow's NEAREST."""
    h, w = size
    H, W = labels.shape[-2:]
    if (h, w) == (H, W):
        return labels.copy()
    rows = nearest_indices(H, h)
    cols = nearest_indices(W, w)
    return labels[..., rows[:, None], cols[None, :]]
