"""The TAP-Vid evaluation protocol: query sampling, the 256x256 raster and the metrics.

Exactly ``google-deepmind/tapnet`` ``tapvid/evaluation_datasets.py`` (``sample_queries_first``,
``sample_queries_strided``, ``compute_tapvid_metrics``), re-implemented from its definitions:

- **raster**: positions are compared in a 256x256 raster: ``x_raster = x * 256``, ``y_raster = y * 256`` of
  the normalised coordinates (the reference multiplies the normalised points by the size of its 256x256
  resized frames), whatever the video's own size;
- **query modes**: ``first`` (the TAP-Vid-DAVIS convention): one query per track that is visible at least
  once, at its first visible frame; only the frames *after* the query frame are scored. ``strided``: at
  frames 0, 5, 10, ... every track visible there becomes a query (queries ordered by frame, then track);
  every frame except the query's is scored;
- **per video**, over the scored (query, frame) pairs, with thresholds 1, 2, 4, 8, 16 raster pixels and
  "within" meaning squared distance ``< thr^2`` (strictly):
  ``pts_within_thr`` = (ground-truth-visible pairs predicted within thr) / (ground-truth-visible pairs),
  whatever the predicted occlusion; ``delta_avg`` = their mean;
  ``jaccard_thr`` = TP / (TP + FN + FP) with TP = visible, predicted visible and within; the denominator
  is (ground-truth-visible pairs) + FP, FP = predicted visible and (occluded or not within);
  ``AJ`` = mean of the five Jaccards; ``OA`` = fraction of scored pairs whose predicted occlusion equals
  the ground truth;
- **dataset**: each figure is the plain mean over videos.

Deviation: a per-video figure whose denominator is 0 (no visible scored pair; no query at all) is NaN, as
the reference's 0/0 is; the dataset mean is then taken over the videos where it is defined (the reference
would report NaN) and ``undefined`` counts the videos left out. Records write undefined figures as None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dvx.data.base import PointTracks
from dvx.errors import ConfigError

THRESHOLDS: tuple[int, ...] = (1, 2, 4, 8, 16)
RASTER = 256  # the side of the square raster positions are compared in
QUERY_MODES: tuple[str, ...] = ("first", "strided")
QUERY_STRIDE = 5
#: every per-video figure, in the order tables show them
METRICS: tuple[str, ...] = (
    "AJ",
    "delta_avg",
    "OA",
    *(f"jaccard_{t}" for t in THRESHOLDS),
    *(f"pts_within_{t}" for t in THRESHOLDS),
)


def check_mode(mode: str) -> str:
    if mode not in QUERY_MODES:
        raise ConfigError(f"unknown query mode {mode!r}; use one of {', '.join(QUERY_MODES)}")
    return mode


@dataclass(frozen=True)
class Queries:
    """The queries of one video, each with the track it is scored against (query-major rows)."""

    frames: np.ndarray  # (Q,) int64: query frame
    xy: np.ndarray  # (Q, 2) float32: normalised x, y of the query (the track's position at its frame)
    points: np.ndarray  # (Q, F, 2) float32: normalised ground-truth track
    occluded: np.ndarray  # (Q, F) bool: ground-truth occlusion
    track: np.ndarray  # (Q,) int64: which track of the video each query samples

    def __len__(self) -> int:
        return len(self.frames)

    def raster_query_points(self) -> np.ndarray:
        """(Q, 3) float32 ``[t, y, x]`` with y, x in the raster: the reference's ``query_points``."""
        return np.concatenate([self.frames[:, None], self.xy[:, ::-1] * RASTER], axis=1).astype(np.float32)


def sample_queries(tracks: PointTracks, mode: str, stride: int = QUERY_STRIDE) -> Queries:
    """The queries TAP-Vid evaluates in ``mode`` (``sample_queries_first`` / ``sample_queries_strided``)."""
    check_mode(mode)
    points, occluded = tracks.points, tracks.occluded
    visible = ~occluded
    if mode == "first":
        rows = np.flatnonzero(visible.any(axis=1))
        frames = visible[rows].argmax(axis=1)  # the first visible frame of each track
    else:
        if stride < 1:
            raise ConfigError(f"query stride must be >= 1, got {stride}")
        picked = [(t, n) for t in range(0, occluded.shape[1], stride) for n in np.flatnonzero(visible[:, t])]
        frames = np.array([t for t, _ in picked], dtype=np.int64)
        rows = np.array([n for _, n in picked], dtype=np.int64)
    rows, frames = rows.astype(np.int64), frames.astype(np.int64)
    return Queries(
        frames=frames,
        xy=points[rows, frames].astype(np.float32).reshape(-1, 2),
        points=points[rows].astype(np.float32).reshape(len(rows), points.shape[1], 2),
        occluded=occluded[rows].reshape(len(rows), occluded.shape[1]),
        track=rows,
    )


def to_raster(points: np.ndarray) -> np.ndarray:
    """Normalised (..., 2) x, y -> positions in the 256x256 raster (float32)."""
    return (np.asarray(points, dtype=np.float64) * RASTER).astype(np.float32)


def scored_pairs(query_frames: np.ndarray, n_frames: int, mode: str) -> np.ndarray:
    """(Q, F) bool: which (query, frame) pairs are scored (``first``: after the query; ``strided``: all but
    the query frame)."""
    check_mode(mode)
    t = np.arange(n_frames)[None, :]
    q = np.asarray(query_frames, dtype=np.int64)[:, None]
    return t > q if mode == "first" else t != q


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else math.nan


def video_metrics(
    query_frames: np.ndarray,
    gt_occluded: np.ndarray,
    gt_tracks: np.ndarray,
    pred_occluded: np.ndarray,
    pred_tracks: np.ndarray,
    mode: str,
) -> dict[str, float]:
    """The TAP-Vid figures of one video. Tracks are (Q, F, 2) x, y in the raster, occlusions (Q, F) bool."""
    gt_tracks, pred_tracks = np.asarray(gt_tracks, np.float64), np.asarray(pred_tracks, np.float64)
    gt_occluded, pred_occluded = np.asarray(gt_occluded, bool), np.asarray(pred_occluded, bool)
    if pred_tracks.shape != gt_tracks.shape or pred_occluded.shape != gt_occluded.shape:
        raise ValueError(
            f"predictions {pred_tracks.shape}/{pred_occluded.shape} do not match the ground truth "
            f"{gt_tracks.shape}/{gt_occluded.shape}"
        )
    scored = scored_pairs(query_frames, gt_occluded.shape[1], mode)
    visible, pred_visible = ~gt_occluded & scored, ~pred_occluded & scored
    out = {"OA": _ratio(((pred_occluded == gt_occluded) & scored).sum(), scored.sum())}
    dist2 = ((pred_tracks - gt_tracks) ** 2).sum(axis=-1)
    n_visible = visible.sum()
    for thr in THRESHOLDS:
        within = dist2 < thr**2
        out[f"pts_within_{thr}"] = _ratio((within & visible).sum(), n_visible)
        true_pos = (within & visible & pred_visible).sum()
        false_pos = (pred_visible & (gt_occluded | ~within)).sum()
        out[f"jaccard_{thr}"] = _ratio(true_pos, n_visible + false_pos)
    out["AJ"] = float(np.mean([out[f"jaccard_{t}"] for t in THRESHOLDS]))
    out["delta_avg"] = float(np.mean([out[f"pts_within_{t}"] for t in THRESHOLDS]))
    return {k: out[k] for k in METRICS}


@dataclass
class TapVidScores:
    """Per-video TAP-Vid figures and their dataset means (a results record)."""

    mode: str
    per_video: dict[str, dict[str, float]] = field(default_factory=dict)
    queries: dict[str, int] = field(default_factory=dict)

    def add(self, video: str, metrics: Mapping[str, float], n_queries: int) -> None:
        self.per_video[video] = dict(metrics)
        self.queries[video] = n_queries

    def means(self) -> dict[str, float]:
        """Each figure's mean over the videos where it is defined (NaN when it is nowhere)."""
        out = {}
        for key in METRICS:
            vals = [v[key] for v in self.per_video.values() if not math.isnan(v[key])]
            out[key] = float(np.mean(vals)) if vals else math.nan
        return out

    def record(self) -> dict[str, Any]:
        """Means and per-video figures; an undefined figure is None (JSON null), never NaN."""
        undefined = {k: n for k in METRICS if (n := sum(math.isnan(v[k]) for v in self.per_video.values()))}
        return {
            **_nulls(self.means()),
            "query_mode": self.mode,
            "thresholds": list(THRESHOLDS),
            "raster": [RASTER, RASTER],
            "n_videos": len(self.per_video),
            "n_queries": sum(self.queries.values()),
            "undefined": undefined,
            "per_video": {
                v: {**_nulls(m), "n_queries": self.queries[v]} for v, m in sorted(self.per_video.items())
            },
        }


def _nulls(metrics: Mapping[str, float]) -> dict[str, float | None]:
    return {k: None if math.isnan(v) else v for k, v in metrics.items()}
