"""Zero-shot point tracking from feature maps (DIFT / DiffTrack style), batched and memory-bounded.

For each query (frame t_q, normalised x, y) and every target frame t:

1. **coordinates**: a normalised point of a W x H source frame is the pixel (x W, y H), pixel centres at
   integers (TAP-Vid's convention). A feature map of h x w cells tiles the frame (whatever size the frame
   was resized to before extraction: the resize maps edges to edges), so the point's continuous cell
   coordinate is ``u = (x W + 0.5) w / W - 0.5`` (cell centres at integers), ``v`` likewise; predictions
   go back by the inverse map;
2. **query descriptor**: the query frame's map interpolated bilinearly at (u, v) (clamped to the border
   cells), L2-normalised. Query-to-key matching (DiffTrack) takes it from the attention *query* block and
   matches it against the *key* block; feature-to-feature matching uses one block for both;
3. **similarity**: cosine between the descriptor and every position of the target frame's map;
4. **location**: the argmax cell, refined by a local soft-argmax: softmax(cos / temperature) over the
   (2r+1) x (2r+1) window of cells around the argmax (cells outside the map left out), position = the
   weighted mean of their cell coordinates (``radius`` 0: the argmax cell itself);
5. **occlusion**: predicted occluded when the best cosine is below ``occlusion_threshold``.

The query frame itself is predicted at the query position, visible (it is never scored). Features of
models that compress time are used through ``frame_to_stored`` (each source frame reads the stored
temporal index covering it). Work is cut into chunks of stored frames and of queries so the similarity
workspace stays under ``max_bytes``; results do not depend on the chunking (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from dvx.errors import ConfigError

if TYPE_CHECKING:
    import torch

DEFAULT_MAX_BYTES = 512 * 2**20
# float32 workspace per similarity value: the scores, the max/argmax and the window gathers
_SIM_BYTES = 4 * 3
# float32 bytes per key feature value held on the device (the chunk; its cast from float16 on the way)
_KEY_BYTES = 4 * 2


class FrameMaps(Protocol):
    """Stored feature maps (S, C, h, w), sliceable along the first axis: a numpy array, a torch tensor or a
    zarr array (read chunk by chunk, never whole)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, key: Any) -> Any: ...


@dataclass(frozen=True)
class TrackerConfig:
    """radius: soft-argmax window half-size in feature cells (0 = the argmax cell). temperature: tau of
    softmax(cos / tau) in the window. occlusion_threshold: best cosine below it = occluded."""

    radius: int = 2
    temperature: float = 0.05
    occlusion_threshold: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.radius, int) or self.radius < 0:
            raise ConfigError(f"soft-argmax radius must be an integer >= 0, got {self.radius!r}")
        if not self.temperature > 0:
            raise ConfigError(f"soft-argmax temperature must be > 0, got {self.temperature!r}")
        if not -1.0 <= self.occlusion_threshold <= 1.0:
            raise ConfigError(f"occlusion threshold is a cosine in [-1, 1], got {self.occlusion_threshold!r}")

    def settings(self) -> dict[str, Any]:
        return {
            "soft_argmax_radius": self.radius,
            "soft_argmax_temperature": self.temperature,
            "occlusion_threshold": self.occlusion_threshold,
            "similarity": "cosine",
        }


@dataclass
class TrackResult:
    """Predictions for Q queries over F frames, in normalised coordinates."""

    xy: np.ndarray  # (Q, F, 2) float32
    occluded: np.ndarray  # (Q, F) bool
    score: np.ndarray  # (Q, F) float32: best cosine (1 at the query frame)


def to_cells(xy: np.ndarray, source_size: tuple[int, int], feat_size: tuple[int, int]) -> np.ndarray:
    """Normalised (..., 2) x, y of a (H, W) source frame -> continuous (u, v) cell coordinates of an (h, w)
    map (cell centres at integers)."""
    (H, W), (h, w) = source_size, feat_size
    scale = np.array([w / W, h / H])
    return (np.asarray(xy, np.float64) * np.array([W, H]) + 0.5) * scale - 0.5


def from_cells(uv: np.ndarray, source_size: tuple[int, int], feat_size: tuple[int, int]) -> np.ndarray:
    """The inverse of :func:`to_cells`."""
    (H, W), (h, w) = source_size, feat_size
    return ((np.asarray(uv, np.float64) + 0.5) * np.array([W / w, H / h]) - 0.5) / np.array([W, H])


def _load(maps: FrameMaps, start: int, stop: int, device: str) -> torch.Tensor:
    import torch

    part = maps[start:stop]
    x = part if isinstance(part, torch.Tensor) else torch.from_numpy(np.asarray(part))
    return x.to(device=device, dtype=torch.float32)


def _load_frames(maps: FrameMaps, frames: np.ndarray, device: str) -> torch.Tensor:
    """Stored frames ``frames`` (sorted): one slice when they are contiguous, else one read each."""
    import torch

    lo, hi = int(frames[0]), int(frames[-1]) + 1
    if hi - lo == len(frames):
        return _load(maps, lo, hi, device)
    return torch.cat([_load(maps, int(s), int(s) + 1, device) for s in frames])


def _grid(uv: np.ndarray, h: int, w: int) -> np.ndarray:
    """Cell coordinates -> grid_sample's [-1, 1] with align_corners=True (-1 / +1 = centres of the first /
    last cell); a map one cell wide or high has its single centre at 0."""
    size = np.array([w, h], dtype=np.float64)
    return np.where(size > 1, np.asarray(uv) * 2 / np.maximum(size - 1, 1) - 1, 0.0)


def descriptors(maps: FrameMaps, stored: np.ndarray, uv: np.ndarray, device: str) -> torch.Tensor:
    """(Q, C) L2-normalised descriptors: map ``stored[i]`` bilinearly at cell coordinate ``uv[i]``."""
    import torch
    import torch.nn.functional as F

    h, w = maps.shape[-2:]
    out: torch.Tensor | None = None
    for s in np.unique(stored):
        rows = np.flatnonzero(stored == s)
        fmap = _load(maps, int(s), int(s) + 1, device)  # (1, C, h, w)
        g = torch.as_tensor(_grid(uv[rows], h, w), dtype=torch.float32, device=device)
        d = F.grid_sample(
            fmap, g.view(1, 1, -1, 2), mode="bilinear", padding_mode="border", align_corners=True
        )
        d = d[0, :, 0].T  # (rows, C)
        if out is None:
            out = torch.empty(len(stored), d.shape[1], device=device)
        out[torch.as_tensor(rows, device=device)] = d
    assert out is not None
    return F.normalize(out, dim=1)


def chunk_sizes(n_queries: int, n_stored: int, channels: int, cells: int, max_bytes: int) -> tuple[int, int]:
    """(stored frames per key chunk, queries per batch) keeping the key chunk and the similarity workspace
    each under half of ``max_bytes`` (at least one of each)."""
    half = max(1, max_bytes // 2)
    frames = max(1, min(n_stored, half // max(1, channels * cells * _KEY_BYTES)))
    queries = max(1, min(n_queries, half // max(1, frames * cells * _SIM_BYTES)))
    return frames, queries


def _locate(sim: torch.Tensor, w: int, h: int, cfg: TrackerConfig) -> tuple[torch.Tensor, ...]:
    """sim (q, f, h*w) -> (u, v, best cosine), each (q, f): argmax refined by the windowed soft-argmax."""
    import torch

    best, idx = sim.max(dim=-1)
    iy, ix = torch.div(idx, w, rounding_mode="floor"), idx % w
    r = cfg.radius
    if r == 0:
        return ix.float(), iy.float(), best
    d = torch.arange(-r, r + 1, device=sim.device)
    dy, dx = (t.reshape(-1) for t in torch.meshgrid(d, d, indexing="ij"))  # (K,)
    yy, xx = iy[..., None] + dy, ix[..., None] + dx  # (q, f, K)
    inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    flat = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).long()
    vals = torch.gather(sim, -1, flat)
    logits = torch.where(inside, vals / cfg.temperature, torch.full_like(vals, -torch.inf))
    wts = torch.softmax(logits, dim=-1)
    return (wts * xx).sum(-1), (wts * yy).sum(-1), best


def track_points(
    query_maps: FrameMaps,
    query_frames: np.ndarray,
    query_xy: np.ndarray,
    frame_to_stored: Sequence[int] | np.ndarray,
    source_size: tuple[int, int],
    cfg: TrackerConfig | None = None,
    key_maps: FrameMaps | None = None,
    device: str = "cpu",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> TrackResult:
    """Track Q queries (``query_frames`` (Q,) source frame indices, ``query_xy`` (Q, 2) normalised) through
    every source frame. ``query_maps`` (and ``key_maps``, default the same) are (S, C, h, w) stored maps;
    ``frame_to_stored`` (F,) gives the stored index covering each source frame."""
    import torch

    cfg = cfg or TrackerConfig()
    keys = query_maps if key_maps is None else key_maps
    f2s = np.asarray(frame_to_stored, dtype=np.int64)
    query_frames = np.asarray(query_frames, dtype=np.int64)
    query_xy = np.asarray(query_xy, dtype=np.float64).reshape(-1, 2)
    n_q, n_f = len(query_frames), len(f2s)
    if tuple(keys.shape) != tuple(query_maps.shape):
        raise ConfigError(
            f"query maps {tuple(query_maps.shape)} and key maps {tuple(keys.shape)} differ in size"
        )
    if n_f and (f2s.min() < 0 or f2s.max() >= query_maps.shape[0]):
        raise ConfigError(f"frame_to_stored must index the {query_maps.shape[0]} stored maps")
    if n_q and (query_frames.min() < 0 or query_frames.max() >= n_f):
        raise ConfigError(f"query frames must lie in 0..{n_f - 1}")
    h, w = (int(v) for v in query_maps.shape[-2:])
    xy = np.zeros((n_q, n_f, 2), np.float32)
    score = np.ones((n_q, n_f), np.float32)
    if n_q == 0:
        return TrackResult(xy, np.zeros((0, n_f), bool), score)
    needed = np.unique(f2s)  # stored frames some source frame reads
    uv_q = to_cells(query_xy, source_size, (h, w))
    with torch.no_grad():
        desc = descriptors(query_maps, f2s[query_frames], uv_q, device)
        n_c = desc.shape[1]
        per_frame, per_batch = chunk_sizes(n_q, len(needed), n_c, h * w, max_bytes)
        u_all = torch.empty(n_q, len(needed))
        v_all, s_all = torch.empty_like(u_all), torch.empty_like(u_all)
        for a in range(0, len(needed), per_frame):
            group = needed[a : a + per_frame]
            kmaps = _load_frames(keys, group, device).flatten(2)  # (f, C, h*w)
            # cosine = dot / |key|: dividing the dots is cheaper than a normalised copy of the keys
            inv_norm = 1.0 / torch.linalg.vector_norm(kmaps, dim=1).clamp_min(1e-12)  # (f, h*w)
            for b in range(0, n_q, per_batch):
                sim = torch.einsum("qc,fcn->qfn", desc[b : b + per_batch], kmaps) * inv_norm
                u, v, best = _locate(sim, w, h, cfg)
                sl = slice(a, a + len(group))
                u_all[b : b + per_batch, sl] = u.cpu()
                v_all[b : b + per_batch, sl] = v.cpu()
                s_all[b : b + per_batch, sl] = best.cpu()
    col = np.searchsorted(needed, f2s)  # source frame -> column of the stored frame it reads
    uv = np.stack([u_all.numpy()[:, col], v_all.numpy()[:, col]], axis=-1)
    xy[:] = from_cells(uv, source_size, (h, w))
    score[:] = s_all.numpy()[:, col]
    rows = np.arange(n_q)
    xy[rows, query_frames] = query_xy
    score[rows, query_frames] = 1.0
    return TrackResult(xy, score < cfg.occlusion_threshold, score)
