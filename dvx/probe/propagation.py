"""kNN label propagation (the DINO / DIFT video-segmentation protocol), batched and memory-bounded.

Per target frame t = 1..F-1 (``facebookresearch/dino`` ``eval_video_segmentation.py``, identical in
``Tsingularity/dift`` ``eval_davis.py`` apart from the temperature being an option):

- features of one block, L2-normalised per position (cosine similarity);
- context = frame 0 with the given labels + the ``context`` most recent frames (1..t-1) with their
  SOFT predicted labels (a FIFO queue; frame 0 never enters the queue);
- affinity exp(cos / temperature) between every target position and every context position, zeroed
  outside a square (2r+1) x (2r+1) window around the target position (``restrict_neighborhood``: the
  window applies to every context frame, the first included);
- top-k jointly over all context positions: every affinity below the k-th largest is set to 0 (ties
  with the k-th value are kept), the rest are renormalised to sum to 1 and the labels averaged.

The reference materialises a (context, hw, hw) affinity per frame. Here each frame is cut into square
tiles of target positions; a tile only needs the keys of a (tile + 2r)^2 patch of every context frame,
so affinities are computed per batch of tiles (one batched matmul), with the number of tiles per batch
chosen so the workspace stays under ``max_bytes``. Context features and soft labels live in a
preallocated ring buffer on the device. Results equal the dense computation up to float rounding of
the dot products (same top-k set, same tie rule).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from dvx.errors import ConfigError
from dvx.probe.resize import resize_nearest

if TYPE_CHECKING:
    import torch

DEFAULT_MAX_BYTES = 512 * 2**20


@dataclass(frozen=True)
class PropagationConfig:
    """kNN propagation settings.

    topk: neighbours kept per target position (jointly over all context positions).
    temperature: tau in exp(cos / tau).
    context: how many of the most recent frames join frame 0 as context (0 = frame 0 only).
    radius: half-size r of the square spatial window (|dy| <= r and |dx| <= r); ``None`` = no window
        (DINO/DIFT's ``--size_mask_neighborhood 0``); 0 = the co-located position only.
    """

    topk: int = 5
    temperature: float = 0.1
    context: int = 7
    radius: int | None = 12

    def __post_init__(self) -> None:
        if not isinstance(self.topk, int) or self.topk < 1:
            raise ConfigError(f"topk must be a positive integer, got {self.topk!r}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature!r}")
        if not isinstance(self.context, int) or self.context < 0:
            raise ConfigError(f"context must be an integer >= 0, got {self.context!r}")
        if self.radius is not None and (not isinstance(self.radius, int) or self.radius < 0):
            raise ConfigError(f"radius must be an integer >= 0 or None, got {self.radius!r}")

    @classmethod
    def preset(cls, name: str, **overrides: object) -> PropagationConfig:
        """``dino`` (k=5, tau=0.1, n=7, r=12) or ``dift`` (k=15, tau=0.2, n=28, r=15), with overrides."""
        if name not in PRESETS:
            raise ConfigError(f"unknown propagation preset {name!r}; choose one of {sorted(PRESETS)}")
        return replace(PRESETS[name], **overrides)


PRESETS: dict[str, PropagationConfig] = {
    # facebookresearch/dino eval_video_segmentation.py defaults
    "dino": PropagationConfig(topk=5, temperature=0.1, context=7, radius=12),
    # Tsingularity/dift README, DIFT_sd on DAVIS: --temperature 0.2 --topk 15 --n_last_frames 28
    # --size_mask_neighborhood 15
    "dift": PropagationConfig(topk=15, temperature=0.2, context=28, radius=15),
}


# --------------------------------------------------------------------------------------------------------
# labels in and out


def mask_to_onehot(mask: np.ndarray, size: tuple[int, int], num_classes: int | None = None) -> torch.Tensor:
    """First-frame mask (H, W) ids -> one-hot (K, h, w) float32 at feature resolution.

    The mask is resized with Pillow's NEAREST rule (as DINO/DIFT's ``read_seg``). K defaults to
    max id + 1 of the full-resolution mask (ids that vanish at feature resolution keep an empty channel).
    Void pixels (255) get no label (an all-zero column).
    """
    import torch

    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got {mask.shape}")
    valid = mask[mask != 255]
    k = int(num_classes) if num_classes is not None else int(valid.max(initial=0)) + 1
    if valid.size and int(valid.max()) >= k:
        raise ValueError(f"mask holds id {int(valid.max())} but num_classes is {k}")
    small = resize_nearest(mask, size).astype(np.int64)
    onehot = np.zeros((k, *size), dtype=np.float32)
    ys, xs = np.nonzero(small != 255)
    onehot[small[ys, xs], ys, xs] = 1.0
    return torch.from_numpy(onehot)


def labels_to_masks(
    soft: torch.Tensor,
    out_size: tuple[int, int],
    frame_size: tuple[int, int] | None = None,
    normalize: bool = True,
    frames_per_chunk: int = 8,
) -> np.ndarray:
    """Soft labels (F, K, h, w) -> uint8 masks (F, *out_size), as DINO/DIFT turn a prediction into a PNG.

    Bilinear upsampling (align_corners=False) to ``frame_size`` (the frame size the features were
    extracted at; default ``out_size``), per-channel min-max normalisation of every channel whose max
    is > 0 (``norm_mask``; disable with ``normalize=False``), argmax over channels, then Pillow-NEAREST
    resizing to ``out_size`` (the annotation size).
    """
    import torch
    import torch.nn.functional as F

    if soft.ndim != 4:
        raise ValueError(f"soft labels must be (F, K, h, w), got {tuple(soft.shape)}")
    if soft.shape[1] > 256:
        raise ValueError(f"{soft.shape[1]} label channels do not fit a uint8 mask")
    frame_size = tuple(frame_size or out_size)
    out = np.empty((soft.shape[0], *out_size), dtype=np.uint8)
    for s in range(0, soft.shape[0], frames_per_chunk):
        x = soft[s : s + frames_per_chunk].float()
        x = F.interpolate(x, size=frame_size, mode="bilinear", align_corners=False)
        if normalize:
            peak = x.amax(dim=(-2, -1), keepdim=True)
            y = x - x.amin(dim=(-2, -1), keepdim=True)
            y = y / y.amax(dim=(-2, -1), keepdim=True)
            x = torch.where(peak > 0, y, x)
        ids = torch.max(x, dim=1).indices.to(torch.uint8).cpu().numpy()
        out[s : s + frames_per_chunk] = resize_nearest(ids, out_size)
    return out


# --------------------------------------------------------------------------------------------------------
# propagation

# Workspace bytes per candidate affinity, relative to the float32 dot product itself (topk, the tie
# check and the gathered neighbours allocate little beyond it; keep a margin).
_WORKSPACE_FACTOR = 2
# On CPU, batches whose workspace stays cache-sized run fastest (measured 2x at 60x107, C = 3).
_CPU_CHUNK_BYTES = 8 * 2**20
# Feature value of padded key positions in the extra "validity" channel: query . key -> -huge -> exp = 0.
_PAD_KEY = -3.0e38


@dataclass(frozen=True)
class _Geometry:
    """How a (h, w) map is cut into tiles of target positions and which keys each tile sees."""

    h: int
    w: int
    radius: int | None  # None: global (no window, or a window covering the whole map)
    th: int = 0
    tw: int = 0
    n_ty: int = 0
    n_tx: int = 0

    @property
    def local(self) -> bool:
        return self.radius is not None

    @property
    def key_shape(self) -> tuple[int, int]:
        """Size of the key map as stored in the ring buffer (padded by r around a tile-aligned map)."""
        if not self.local:
            return self.h, self.w
        r = self.radius
        return self.n_ty * self.th + 2 * r, self.n_tx * self.tw + 2 * r

    @property
    def n_queries(self) -> int:
        """Target positions per tile (local) or per frame (global)."""
        return self.th * self.tw if self.local else self.h * self.w

    @property
    def n_keys(self) -> int:
        """Key positions per tile and context frame (local) or per context frame (global)."""
        if not self.local:
            return self.h * self.w
        return (self.th + 2 * self.radius) * (self.tw + 2 * self.radius)

    def bytes_per_unit(self, n_ch: int, n_lab: int) -> int:
        """Workspace of one tile (local) or one target position (global) against ONE context frame."""
        if not self.local:  # keys and labels are views of the ring buffer; only the dots are new
            return self.n_keys * 4 * _WORKSPACE_FACTOR
        return self.n_keys * 4 * (n_ch + 1 + n_lab + self.n_queries * _WORKSPACE_FACTOR)


def _default_tile(n_ch: int) -> int:
    """Tile side: small tiles waste fewer out-of-window dot products, large ones gather each key patch
    for more targets. Measured on CPU at 60x107 (r = 12, 15): 4 is best for colour-like features
    (C <= 32), 16 for network features (C = 256)."""
    return 4 if n_ch <= 32 else 16


def _geometry(
    h: int, w: int, radius: int | None, tile: int | None, n_ch: int, n_lab: int, max_bytes: int
) -> _Geometry:
    if radius is None or radius >= max(h, w) - 1:  # the window covers the whole map: same candidates
        geo = _Geometry(h, w, None)
    else:
        t = tile if tile is not None else _default_tile(n_ch)
        while True:
            th, tw = min(t, h), min(t, w)
            geo = _Geometry(h, w, radius, th, tw, math.ceil(h / th), math.ceil(w / tw))
            if tile is not None or t == 1 or geo.bytes_per_unit(n_ch, n_lab) <= max_bytes:
                break
            t = max(1, t // 2)
    need = geo.bytes_per_unit(n_ch, n_lab)
    if need > max_bytes:
        raise ConfigError(
            f"max_bytes={max_bytes} is too small: one {'tile' if geo.local else 'target position'} against "
            f"one context frame needs {need} bytes; raise max_bytes"
        )
    return geo


def propagate(
    feats: torch.Tensor,
    first: torch.Tensor,
    cfg: PropagationConfig,
    device: str | torch.device | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    tile: int | None = None,
    cpu_threads: int | None = 1,
) -> torch.Tensor:
    """Propagate ``first`` (K, h, w) labels of frame 0 through ``feats`` (F, C, h, w) of one block.

    Returns soft labels (F, K, h, w) float32 on ``device`` (default: the features' device); frame 0 is
    ``first`` itself. Features may be fp16 (e.g. from the store) and stay where they are; each frame is
    moved to the device, cast to float32 and normalised when it is needed.

    Memory: ``max_bytes`` bounds the workspace of one step (a batch of target tiles against a group of
    context frames: gathered keys, dot products, top-k). When even one tile against all context frames
    exceeds it, the context frames are processed in groups and their top-k merged (same result). The
    ring buffer of context features and labels, (context + 1) x (C + K) x padded map floats, and the
    (F, K, h, w) output come on top. ``tile`` sets the tile side (default 4 for C <= 32, else 16).

    On CPU the call runs with ``cpu_threads`` torch threads (restored afterwards; ``None`` keeps the
    current setting). The default 1 was measured faster here: the many small cache-sized steps gain
    nothing from intra-op threads, and on a loaded machine every parallel region stalls (7.8 vs 1.2
    frames/s at 60x107, DIFT settings). Parallelise over sequences instead.
    """
    import torch

    if feats.ndim != 4:
        raise ValueError(f"feats must be (F, C, h, w), got {tuple(feats.shape)}")
    h, w = feats.shape[-2:]
    if first.ndim != 3 or tuple(first.shape[1:]) != (h, w):
        raise ValueError(f"first labels must be (K, {h}, {w}), got {tuple(first.shape)}")
    if tile is not None and tile < 1:
        raise ConfigError(f"tile must be >= 1, got {tile}")
    dev = torch.device(device) if device is not None else feats.device
    if dev.type != "cpu" or cpu_threads is None:
        return _propagate(feats, first, cfg, dev, max_bytes, tile)
    before = torch.get_num_threads()
    torch.set_num_threads(cpu_threads)
    try:
        return _propagate(feats, first, cfg, dev, max_bytes, tile)
    finally:
        torch.set_num_threads(before)


def _propagate(
    feats: torch.Tensor,
    first: torch.Tensor,
    cfg: PropagationConfig,
    dev: torch.device,
    max_bytes: int,
    tile: int | None,
) -> torch.Tensor:
    import torch

    n_frames, n_ch, h, w = feats.shape
    n_lab = first.shape[0]
    geo = _geometry(h, w, cfg.radius, tile, n_ch, n_lab, max_bytes)
    n_slots = cfg.context + 1
    kh, kw = geo.key_shape
    n_pos = kh * kw
    chunk = min(max_bytes, _CPU_CHUNK_BYTES) if dev.type == "cpu" else max_bytes

    # ring buffers: slot 0 = frame 0, frame j >= 1 -> slot 1 + (j - 1) % context
    if geo.local:  # (position, slot, channel): gathering rows of positions yields the key patches
        ctx_feat = torch.zeros(n_pos, n_slots, n_ch + 1, device=dev)
        ctx_feat[:, :, n_ch] = _to_key_layout(torch.zeros(1, h, w, device=dev), geo, fill=_PAD_KEY)[
            :, None, 0
        ]
        ctx_lab = torch.zeros(n_pos, n_slots, n_lab, device=dev)
        tiles = _TileIndex(geo, dev)
    else:  # (slot, position, channel): the positions of a group of slots are one contiguous view
        ctx_feat = torch.zeros(n_slots, n_pos, n_ch, device=dev)
        ctx_lab = torch.zeros(n_slots, n_pos, n_lab, device=dev)
        tiles = None

    out = torch.empty(n_frames, n_lab, h, w, device=dev)
    out[0] = first.to(dev, torch.float32)
    _store(ctx_feat, ctx_lab, 0, _normed(feats[0], dev), out[0], geo)
    for t in range(1, n_frames):
        n_valid = min(t, n_slots)  # frame 0 + frames max(1, t - context) .. t - 1
        query = _normed(feats[t], dev)
        if tiles is not None:
            pred = _propagate_local(query, ctx_feat, ctx_lab, n_valid, cfg, geo, tiles, max_bytes, chunk)
        else:
            pred = _propagate_global(query, ctx_feat, ctx_lab, n_valid, cfg, geo, max_bytes, chunk)
        out[t] = pred
        if cfg.context > 0:
            _store(ctx_feat, ctx_lab, 1 + (t - 1) % cfg.context, query, pred, geo)
    return out


def _normed(frame: torch.Tensor, dev: torch.device) -> torch.Tensor:
    import torch.nn.functional as F

    return F.normalize(frame.to(dev).float(), dim=0, p=2)


def _to_key_layout(x: torch.Tensor, geo: _Geometry, fill: float = 0.0) -> torch.Tensor:
    """(C, h, w) -> (positions, C) in the key-map layout (padded by r with ``fill`` for the local path)."""
    import torch.nn.functional as F

    if geo.local:
        kh, kw = geo.key_shape
        r = geo.radius
        x = F.pad(x, (r, kw - r - geo.w, r, kh - r - geo.h), value=fill)
    return x.flatten(1).transpose(0, 1)


def _store(
    ctx_feat: torch.Tensor,
    ctx_lab: torch.Tensor,
    slot: int,
    feat: torch.Tensor,
    lab: torch.Tensor,
    geo: _Geometry,
) -> None:
    if geo.local:
        ctx_feat[:, slot, : feat.shape[0]] = _to_key_layout(feat, geo)
        ctx_lab[:, slot] = _to_key_layout(lab, geo)
    else:
        ctx_feat[slot] = _to_key_layout(feat, geo)
        ctx_lab[slot] = _to_key_layout(lab, geo)


def _plan(n_units: int, n_valid: int, per_unit_slot: int, max_bytes: int, chunk: int) -> tuple[int, int]:
    """(units per batch, context frames per group) so that a step stays under ``max_bytes``."""
    if n_valid * per_unit_slot <= max_bytes:
        group = n_valid
        batch = max(1, min(n_units, chunk // (n_valid * per_unit_slot)))
    else:
        group = max(1, max_bytes // per_unit_slot)
        batch = 1
    return batch, group


def _gather_neighbours(labels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """labels (B, M, K), ids (B, Q, k) -> (B, Q, k, K)."""
    import torch

    n_b, n_m, n_lab = labels.shape
    offset = (torch.arange(n_b, device=ids.device) * n_m)[:, None, None]
    flat = labels.reshape(n_b * n_m, n_lab).index_select(0, (ids + offset).reshape(-1))
    return flat.view(*ids.shape, n_lab)


def _select_and_average(
    candidates: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    n_groups: int,
    cfg: PropagationConfig,
    rows_real: torch.Tensor | None = None,
) -> torch.Tensor:
    """Top-k selection over all candidates and label averaging, exactly as the reference.

    ``candidates(g)`` returns group g's dot products (B, Q, M_g) (cosines; -inf or -huge where a
    candidate is not allowed) and labels (B, M_g, K). The affinity is exp(dot / tau); every affinity
    below the k-th largest of its row (over all groups) is dropped, entries tied with the k-th value
    are all kept, and the rest are renormalised and average the labels. exp is monotone, so the top
    k + 1 are found on the dots (merged across groups) and only those are exponentiated; a row whose
    (k + 1)-th affinity equals its k-th (a tie, possibly created by exp's rounding) is recomputed
    densely. ``rows_real`` (B, Q) marks the rows that matter (padding rows skip the tie check).
    """
    import torch

    kk = cfg.topk + 1
    best = neigh = None
    total = 0
    first = None
    for g in range(n_groups):
        dots, labels = candidates(g)
        if n_groups == 1:
            first = (dots, labels)
        total += dots.shape[-1]
        top, ids = torch.topk(dots, min(kk, dots.shape[-1]), dim=-1)
        nb = _gather_neighbours(labels, ids)
        if best is not None:
            top, nb = torch.cat([best, top], dim=-1), torch.cat([neigh, nb], dim=-2)
            top, order = torch.topk(top, min(kk, top.shape[-1]), dim=-1)
            nb = nb.gather(-2, order[..., None].expand(*order.shape, nb.shape[-1]))
        best, neigh = top, nb
        del dots, labels, top, ids, nb  # free this group's workspace before the next one is built
    k = min(cfg.topk, total)
    vals = best.div(cfg.temperature).exp_()
    kth = vals[..., k - 1]
    weights = vals[..., :k] / vals[..., :k].sum(dim=-1, keepdim=True)
    out = torch.matmul(weights.unsqueeze(-2), neigh[..., :k, :]).squeeze(-2)
    if k == total:
        return out
    tied = (vals[..., k] == kth) & (kth > 0)  # a zero k-th value: every allowed candidate is kept already
    if rows_real is not None:
        tied &= rows_real
    if not bool(tied.any()):
        return out
    num = torch.zeros_like(out)
    den = torch.zeros_like(kth)
    for g in range(n_groups):
        dots, labels = first if first is not None else candidates(g)
        aff = dots.div_(cfg.temperature).exp_()
        del dots
        aff.masked_fill_(aff < kth[..., None], 0.0)
        num += torch.matmul(aff, labels)
        den += aff.sum(dim=-1)
        del aff, labels
    out[tied] = (num / den[..., None])[tied]
    return out


def _propagate_global(
    query: torch.Tensor,
    ctx_feat: torch.Tensor,
    ctx_lab: torch.Tensor,
    n_valid: int,
    cfg: PropagationConfig,
    geo: _Geometry,
    max_bytes: int,
    chunk: int,
) -> torch.Tensor:
    """Every context position is a candidate: batches of target positions, groups of context frames."""
    import torch

    n_ch, h, w = query.shape
    n_pos = h * w
    n_lab = ctx_lab.shape[-1]
    q = query.flatten(1).transpose(0, 1)  # (hw, C)
    batch, group = _plan(n_pos, n_valid, geo.bytes_per_unit(n_ch, n_lab), max_bytes, chunk)
    starts = list(range(0, n_valid, group))
    out = torch.empty(n_pos, n_lab, device=query.device)
    for s in range(0, n_pos, batch):
        qb = q[s : s + batch]

        def candidates(g: int, qb: torch.Tensor = qb) -> tuple[torch.Tensor, torch.Tensor]:
            g0, g1 = starts[g], min(n_valid, starts[g] + group)
            keys = ctx_feat[g0:g1].reshape(-1, n_ch)  # a view: slots are contiguous
            return torch.matmul(qb, keys.T)[None], ctx_lab[g0:g1].reshape(1, -1, n_lab)

        out[s : s + batch] = _select_and_average(candidates, len(starts), cfg)[0]
    return out.transpose(0, 1).reshape(n_lab, h, w)


class _TileIndex:
    """Precomputed gather indices, real-target masks and the window bias for the local path."""

    def __init__(self, geo: _Geometry, dev: torch.device) -> None:
        import torch

        r, th, tw = geo.radius, geo.th, geo.tw
        kw = geo.key_shape[1]
        ph, pw = th + 2 * r, tw + 2 * r
        ty = torch.arange(geo.n_ty, device=dev).repeat_interleave(geo.n_tx)
        tx = torch.arange(geo.n_tx, device=dev).repeat(geo.n_ty)
        pi = torch.arange(ph, device=dev)
        pj = torch.arange(pw, device=dev)
        # key-map coordinates of the patch of each tile: (tiles, ph, pw)
        rows = (ty * th)[:, None, None] + pi[None, :, None]
        cols = (tx * tw)[:, None, None] + pj[None, None, :]
        self.key_index = (rows * kw + cols).reshape(len(ty), ph * pw)
        # the square window of each target position of a tile: |dy| <= r, |dx| <= r in patch coordinates
        qi = torch.arange(th, device=dev)
        qj = torch.arange(tw, device=dev)
        dy = (pi[None, :] - (qi[:, None] + r)).abs() <= r  # (th, ph)
        dx = (pj[None, :] - (qj[:, None] + r)).abs() <= r  # (tw, pw)
        self.window = (dy[:, None, :, None] & dx[None, :, None, :]).reshape(th * tw, ph * pw)
        self.n_tiles = len(ty)
        # target positions of each tile that lie on the map (the rest is padding): (tiles, th * tw)
        q_rows = (ty * th)[:, None, None] + qi[None, :, None]
        q_cols = (tx * tw)[:, None, None] + qj[None, None, :]
        self.query_real = ((q_rows < geo.h) & (q_cols < geo.w)).reshape(len(ty), th * tw)
        zero = torch.zeros((), device=dev)
        # (Q, keys): 0 inside the window, -inf outside; added to the dot products of every context frame
        self.bias = torch.where(self.window, zero, zero - torch.inf)


def _propagate_local(
    query: torch.Tensor,
    ctx_feat: torch.Tensor,
    ctx_lab: torch.Tensor,
    n_valid: int,
    cfg: PropagationConfig,
    geo: _Geometry,
    idx: _TileIndex,
    max_bytes: int,
    chunk: int,
) -> torch.Tensor:
    """Candidates restricted to the (2r+1)^2 window: batches of tiles, each against its key patch.

    The key buffer carries one extra channel, 0 on the map and ``_PAD_KEY`` on the padding, and every
    real query position carries 1 there: padded keys get exp(-huge) = 0, like the reference's mask.
    """
    import torch
    import torch.nn.functional as F

    n_ch = query.shape[0]
    n_lab = ctx_lab.shape[-1]
    th, tw, n_ty, n_tx = geo.th, geo.tw, geo.n_ty, geo.n_tx
    n_q, n_keys = geo.n_queries, geo.n_keys
    # target tiles: (tiles, th * tw, C + 1), zero-padded to a whole number of tiles
    q = torch.cat([query, torch.ones_like(query[:1])])
    q = F.pad(q, (0, n_tx * tw - geo.w, 0, n_ty * th - geo.h))
    q = q.reshape(n_ch + 1, n_ty, th, n_tx, tw).permute(1, 3, 2, 4, 0).reshape(n_ty * n_tx, n_q, n_ch + 1)
    batch, group = _plan(idx.n_tiles, n_valid, geo.bytes_per_unit(n_ch, n_lab), max_bytes, chunk)
    starts = list(range(0, n_valid, group))
    out = torch.empty(idx.n_tiles, n_q, n_lab, device=query.device)
    for s in range(0, idx.n_tiles, batch):
        e = min(idx.n_tiles, s + batch)
        flat = idx.key_index[s:e].reshape(-1)
        qb = q[s:e]

        def candidates(
            g: int, flat: torch.Tensor = flat, qb: torch.Tensor = qb
        ) -> tuple[torch.Tensor, torch.Tensor]:
            g0, g1 = starts[g], min(n_valid, starts[g] + group)
            nb, m = qb.shape[0], n_keys * (g1 - g0)
            # rows of the key patches, this group's context frames only: (B, keys x frames, C + 1)
            keys = ctx_feat[:, g0:g1].index_select(0, flat).view(nb, m, n_ch + 1)
            labels = ctx_lab[:, g0:g1].index_select(0, flat).view(nb, m, n_lab)
            dots = torch.bmm(qb, keys.transpose(1, 2))
            dots.view(nb, n_q, n_keys, g1 - g0).add_(idx.bias[:, :, None])
            return dots, labels

        out[s:e] = _select_and_average(candidates, len(starts), cfg, idx.query_real[s:e])
    # tiles back to the map; drop the padding
    out = out.reshape(n_ty, n_tx, th, tw, n_lab).permute(4, 0, 2, 1, 3).reshape(n_lab, n_ty * th, n_tx * tw)
    return out[:, : geo.h, : geo.w]
