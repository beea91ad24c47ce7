"""The straightforward per-frame dense kNN propagation (DINO's ``eval_video_segmentation.py`` loop).

Kept as the reference that ``dvx.probe.propagation.propagate`` must match. Per target frame it builds
the full (context, hw, hw) affinity, multiplies it by a dense 0/1 neighbourhood mask, keeps the
top-k over all context positions jointly and multiplies the labels by the renormalised affinity,
exactly as the DINO/DIFT code does (only the mask construction is vectorised instead of four nested
Python loops; ``radius=None`` means no mask, our spelling of DINO's ``--size_mask_neighborhood 0``).
"""

from __future__ import annotations

from collections import deque

import torch
import torch.nn.functional as F

from dvx.probe.propagation import PropagationConfig


def neighbourhood_mask(h: int, w: int, radius: int) -> torch.Tensor:
    """(hw, hw) 0/1: 1 where |dy| <= radius and |dx| <= radius (DINO's restrict_neighborhood)."""
    ys = torch.arange(h).repeat_interleave(w)
    xs = torch.arange(w).repeat(h)
    near = ((ys[:, None] - ys[None, :]).abs() <= radius) & ((xs[:, None] - xs[None, :]).abs() <= radius)
    return near.float()


@torch.no_grad()
def reference_propagate(feats: torch.Tensor, first: torch.Tensor, cfg: PropagationConfig) -> torch.Tensor:
    """feats (F, C, h, w), first (K, h, w) -> soft labels (F, K, h, w), frame 0 = ``first``."""
    n_frames, n_ch, h, w = feats.shape
    feats = feats.float()
    first = first.float()
    que: deque[tuple[torch.Tensor, torch.Tensor]] = deque()
    frame1_feat = feats[0].reshape(n_ch, h * w)  # dim x hw
    first_seg = first[None]  # 1 x K x h x w
    mask = None
    out = [first]
    for t in range(1, n_frames):
        used_feats = [frame1_feat] + [f for f, _ in que]
        used_segs = [first_seg] + [s for _, s in que]

        feat_tar = feats[t].reshape(n_ch, h * w).T  # hw x dim
        n_ctx = len(used_feats)
        feat_sources = torch.stack(used_feats)  # n_ctx x dim x hw
        feat_tar = F.normalize(feat_tar, dim=1, p=2)
        feat_sources = F.normalize(feat_sources, dim=1, p=2)
        feat_tar = feat_tar.unsqueeze(0).repeat(n_ctx, 1, 1)
        aff = torch.exp(torch.bmm(feat_tar, feat_sources) / cfg.temperature)  # n_ctx x hw (query) x hw (key)
        if cfg.radius is not None:
            if mask is None or mask.shape[0] != n_ctx:
                mask = neighbourhood_mask(h, w, cfg.radius).unsqueeze(0).repeat(n_ctx, 1, 1)
            aff *= mask
        aff = aff.transpose(2, 1).reshape(-1, h * w)  # n_ctx*hw (keys) x hw (queries)
        tk_val, _ = torch.topk(aff, dim=0, k=min(cfg.topk, aff.shape[0]))
        tk_val_min, _ = torch.min(tk_val, dim=0)
        aff[aff < tk_val_min] = 0
        aff = aff / torch.sum(aff, keepdim=True, dim=0)

        segs = torch.cat(used_segs)
        n_seg, n_lab = segs.shape[:2]
        segs = segs.reshape(n_seg, n_lab, -1).transpose(2, 1).reshape(-1, n_lab).T  # K x n_ctx*hw
        seg_tar = torch.mm(segs, aff).reshape(1, n_lab, h, w)

        if cfg.context > 0:
            if len(que) == cfg.context:
                que.popleft()
            que.append((feats[t].reshape(n_ch, h * w), seg_tar))
        out.append(seg_tar[0])
    return torch.stack(out)


def mask_disagreement(
    fast: torch.Tensor,
    ref: torch.Tensor,
    out_size: tuple[int, int],
    frame_size: tuple[int, int],
    tol: float = 1e-5,
) -> tuple[int, int]:
    """Compare the masks two soft-label tensors (F, K, h, w) turn into (``labels_to_masks``).

    Returns (pixels that differ, pixels that differ where the reference's decision is NOT a float
    tie). A tie: after the bilinear upsampling and per-channel normalisation, the reference's two best
    channels are within ``tol`` of each other, so rounding differences of ~1e-7 between two correct
    summation orders may pick either.
    """
    import numpy as np

    from dvx.probe.propagation import labels_to_masks
    from dvx.probe.resize import nearest_indices

    fm = labels_to_masks(fast, out_size, frame_size)
    rm = labels_to_masks(ref, out_size, frame_size)
    diff = fm != rm
    n_diff = int(diff.sum())
    if n_diff == 0:
        return 0, 0
    rows = nearest_indices(frame_size[0], out_size[0])
    cols = nearest_indices(frame_size[1], out_size[1])
    real = 0
    for t in np.nonzero(diff.any(axis=(1, 2)))[0]:
        up = F.interpolate(ref[t : t + 1].float(), size=frame_size, mode="bilinear", align_corners=False)[0]
        peak = up.amax(dim=(-2, -1), keepdim=True)
        norm = up - up.amin(dim=(-2, -1), keepdim=True)
        up = torch.where(peak > 0, norm / norm.amax(dim=(-2, -1), keepdim=True), up)
        top2 = up.topk(2, dim=0).values
        margin = (top2[0] - top2[1]).numpy()[rows[:, None], cols[None, :]]
        real += int((diff[t] & (margin > tol)).sum())
    return n_diff, real
