"""Keypoint propagation (JHMDB): joints -> heatmaps at feature resolution -> kNN propagation -> joints.

Follows CRW/videowalk (``ajabri/videowalk`` ``code/data/jhmdb.py``, ``code/utils/test_utils.py``), the
JHMDB protocol DIFT and DINO-style papers report:

- coordinates: 0-based pixels (JHMDB ``pos_img`` minus 1). A pixel p maps to feature coordinate
  u = p * w / W (``pos * new_size / orig_size / stride``), and a feature cell u back to p = u * W / w
  (``coord / feat_res * width``): cell c stands for pixel c * stride on both ways;
- one channel per joint, a Gaussian with sigma = 0.5 cells and peak 1 (``draw_labelmap_np``): centre
  cell floor(u - 3 sigma) + floor((6 sigma + 1) / 2), i.e. the nearest cell for sigma = 0.5, drawn on
  the window the reference draws (offsets -2..+1 for sigma = 0.5), truncated at the map border;
- channel 0 = background: 1 where no joint channel is > 0, else 0;
- after propagation each joint is decoded from its own channel as the weighted mean of the (column,
  row) indices of its top-3 cells (weights = their values, renormalised).

Deviation: the reference computes the window corner with ``int()`` (truncation towards 0), which for a
joint less than 3 sigma from the top/left border shifts its peak by one cell; we use floor.
A joint whose channel is all zero after propagation decodes to NaN (the reference writes -1).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from dvx.probe.propagation import DEFAULT_MAX_BYTES, PropagationConfig, propagate

if TYPE_CHECKING:
    import torch

SIGMA = 0.5
DECODE_TOPK = 3


def joints_to_heatmaps(
    joints: np.ndarray,
    frame_size: tuple[int, int],
    feat_size: tuple[int, int],
    sigma: float = SIGMA,
) -> torch.Tensor:
    """(J, 2) 0-based pixel (x, y) of frame 0 -> (J + 1, h, w) float32 labels: background, then joints."""
    import torch

    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 2 or joints.shape[1] != 2:
        raise ValueError(f"joints must be (J, 2) pixel (x, y), got {joints.shape}")
    H, W = frame_size
    h, w = feat_size
    size = 6 * sigma + 1
    n = math.ceil(size)
    c0 = size // 2
    g1 = np.arange(n, dtype=np.float64) - c0
    gauss = np.exp(-(g1[None, :] ** 2 + g1[:, None] ** 2) / (2 * sigma**2))  # (rows, cols)
    heat = np.zeros((len(joints) + 1, h, w), dtype=np.float64)
    for j, (x, y) in enumerate(joints):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        u, v = x * w / W, y * h / H
        left, top = math.floor(u - 3 * sigma), math.floor(v - 3 * sigma)
        right, bottom = math.floor(u + 3 * sigma + 1), math.floor(v + 3 * sigma + 1)
        if left >= w or top >= h or right < 0 or bottom < 0:
            continue
        gx0, gx1 = max(0, -left), min(right, w) - left
        gy0, gy1 = max(0, -top), min(bottom, h) - top
        heat[j + 1, max(0, top) : min(bottom, h), max(0, left) : min(right, w)] = gauss[gy0:gy1, gx0:gx1]
    heat[0] = (heat[1:].sum(axis=0) == 0).astype(np.float64)
    return torch.from_numpy(heat.astype(np.float32))


def decode_keypoints(soft: torch.Tensor, frame_size: tuple[int, int], topk: int = DECODE_TOPK) -> np.ndarray:
    """Soft labels (F, J + 1, h, w) -> (F, J, 2) 0-based pixel (x, y); NaN for a joint with no mass."""
    import torch

    if soft.ndim != 4:
        raise ValueError(f"soft labels must be (F, J + 1, h, w), got {tuple(soft.shape)}")
    H, W = frame_size
    n_f, n_c, h, w = soft.shape
    flat = soft[:, 1:].float().reshape(n_f, n_c - 1, h * w)
    vals, ids = torch.topk(flat, min(topk, h * w), dim=-1)
    vals = vals / vals.sum(dim=-1, keepdim=True)
    cols = (ids % w).to(vals.dtype)
    rows = torch.div(ids, w, rounding_mode="floor").to(vals.dtype)
    xy = torch.stack([(cols * vals).sum(-1), (rows * vals).sum(-1)], dim=-1)  # feature cells
    xy[flat.sum(dim=-1) == 0] = float("nan")
    out = xy.cpu().double().numpy()
    out[..., 0] *= W / w
    out[..., 1] *= H / h
    return out


def propagate_keypoints(
    feats: torch.Tensor,
    joints0: np.ndarray,
    frame_size: tuple[int, int],
    cfg: PropagationConfig,
    device: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """Frame-0 joints (J, 2) pixels + features (F, C, h, w) -> predicted joints (F, J, 2) pixels.

    Frame 0 of the output is decoded from the initial heatmaps (it is not scored).
    """
    heat = joints_to_heatmaps(joints0, frame_size, tuple(feats.shape[-2:]))
    soft = propagate(feats, heat, cfg, device=device, max_bytes=max_bytes)
    return decode_keypoints(soft, frame_size)
