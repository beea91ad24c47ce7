"""``dvx eval tapvid``: score point-tracking predictions on disk with TAP-Vid's protocol.

Ground truth is any dataset with point tracks: a TAP-Vid folder (``tapvid_davis.pkl``, the Kinetics
shards, ``tapvid_rgb_stacking.pkl``; detected from the files) or a synthetic world (``world.json``).
Predictions are ``<pred>/<video>.npz`` (dvx.probe.tapvid_io). For every video the ground truth's queries
are sampled in the chosen mode (dvx.probe.tapvid_metrics), the prediction's rows are checked against them,
and the figures are computed in the 256x256 raster; the record holds the means over videos.

:func:`score_prediction` is the one scoring path: the tracking run (dvx.probe.track_cache) scores its
in-memory predictions with it, so scoring the files it writes reproduces its numbers exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dvx.data.base import VideoDataset, VideoRef
from dvx.errors import DataError
from dvx.probe.evaluate import _table
from dvx.probe.tapvid_io import Prediction, prediction_files, read_prediction
from dvx.probe.tapvid_metrics import (
    QUERY_STRIDE,
    Queries,
    TapVidScores,
    check_mode,
    sample_queries,
    to_raster,
    video_metrics,
)


@dataclass(frozen=True)
class TapvidEvalConfig:
    """``pred``: a folder of <video>.npz; ``gt``: a TAP-Vid data root (or pickle) or a synthetic world."""

    pred: Path
    gt: Path
    query_mode: str = "first"
    videos: tuple[str, ...] | None = None  # score only these (default: every ground-truth video)

    def __post_init__(self) -> None:
        check_mode(self.query_mode)


def open_ground_truth(root: Path) -> tuple[str, VideoDataset]:
    """(dataset name, reader) for a TAP-Vid root or a synthetic world."""
    from dvx.data import open_dataset
    from dvx.data.tapvid import detect

    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"ground truth {root} does not exist")
    name = "synthetic" if (root / "world.json").is_file() else detect(root)
    if name is None:
        raise DataError(
            f"{root} holds no TAP-Vid ground truth (tapvid_davis.pkl, NNNN_of_MMMM.pkl shards, "
            "tapvid_rgb_stacking.pkl) and is no synthetic world (world.json)"
        )
    return name, open_dataset(name, str(root))


def check_queries(video: str, queries: Queries, pred: Prediction) -> None:
    """The prediction answers exactly the ground truth's queries (count, frames, and positions if given)."""
    n_q, n_f = queries.occluded.shape
    if pred.tracks.shape[:2] != (n_q, n_f):
        raise DataError(
            f"{video}: the prediction has {pred.tracks.shape[0]} queries x {pred.tracks.shape[1]} frames, "
            f"the ground truth {n_q} x {n_f} in this query mode (predictions for the other mode?)"
        )
    if pred.query_points is not None and not np.allclose(
        pred.query_points, queries.raster_query_points(), atol=1e-3
    ):
        raise DataError(
            f"{video}: the prediction's query_points differ from the ground truth's queries in this query "
            "mode (predictions for the other mode, or another query order?)"
        )


def score_prediction(queries: Queries, pred: Prediction, mode: str) -> dict[str, float]:
    """TAP-Vid figures of one video's prediction (raster coordinates) against its queries' tracks."""
    return video_metrics(
        queries.frames, queries.occluded, to_raster(queries.points), pred.occluded, pred.tracks, mode
    )


def select_refs(dataset: VideoDataset, videos: Sequence[str] | None) -> list[VideoRef]:
    refs = dataset.videos()
    if videos is None:
        return refs
    by_id = {r.id: r for r in refs}
    absent = [v for v in videos if v not in by_id]
    if absent:
        raise DataError(f"video(s) {', '.join(absent[:5])} not in {dataset.name} at {dataset.root}")
    return [by_id[v] for v in videos]


def run_tapvid_eval(cfg: TapvidEvalConfig) -> dict[str, Any]:
    """Score ``<pred>/<video>.npz`` against the ground truth; every selected video needs a file."""
    name, dataset = open_ground_truth(cfg.gt)
    files = prediction_files(cfg.pred)
    refs = select_refs(dataset, cfg.videos)
    missing = [r.id for r in refs if r.id not in files]
    if missing:
        raise DataError(
            f"{cfg.pred} lacks predictions for {len(missing)} of {len(refs)} video(s): "
            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} (score a subset with --videos)"
        )
    if cfg.videos is None:
        known = {r.id for r in refs}
        stray = [v for v in files if v not in known]
        if stray:
            raise DataError(f"{cfg.pred}: {stray[0]}.npz names no video of {name} at {cfg.gt}")
    scores = TapVidScores(cfg.query_mode)
    for ref in refs:
        queries = sample_queries(dataset.point_tracks(ref), cfg.query_mode, QUERY_STRIDE)
        pred = read_prediction(files[ref.id])
        check_queries(ref.id, queries, pred)
        scores.add(ref.id, score_prediction(queries, pred, cfg.query_mode), len(queries))
    return {**scores.record(), "dataset": name, "pred": str(cfg.pred), "gt": str(cfg.gt)}


def format_tapvid_table(record: dict[str, Any]) -> str:
    """One row per video (AJ, delta_avg, OA, queries), then the means over videos."""

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    rows = [("video", "AJ", "delta_avg", "OA", "queries")]
    for video, m in record["per_video"].items():
        rows.append((video, fmt(m["AJ"]), fmt(m["delta_avg"]), fmt(m["OA"]), str(m["n_queries"])))
    means = (fmt(record["AJ"]), fmt(record["delta_avg"]), fmt(record["OA"]), str(record["n_queries"]))
    rows.append(("ALL (mean over videos)", *means))
    per_thr = "  ".join(f"J@{t} {fmt(record[f'jaccard_{t}'])}" for t in record["thresholds"])
    within = "  ".join(f"<{t} {fmt(record[f'pts_within_{t}'])}" for t in record["thresholds"])
    note = f"query mode {record['query_mode']}; raster 256x256"
    if record["undefined"]:
        note += f"; undefined (left out of the means): {record['undefined']}"
    return "\n".join([_table(rows), per_thr, within, note])
