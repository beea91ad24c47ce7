"""Point tracking from cached features: one (T, block) or (T, query block, key block) over a dataset's videos.

For each video with point tracks: TAP-Vid's queries are sampled in the chosen mode
(dvx.probe.tapvid_metrics), the block's stored maps are read from the store chunk by chunk (never a whole
480p video at once), the queries are tracked (dvx.probe.tracking), the prediction is written as
``<out>/<video>.npz`` (dvx.probe.tapvid_io) when ``out`` is given, and scored by
:func:`dvx.probe.evaluate_tapvid.score_prediction`, the same path ``dvx eval tapvid`` scores files with;
the predictions are held in the raster's float32, as the files hold them, so both give the same numbers.

Query-to-key matching (DiffTrack) takes the query descriptor from an attention ``q`` block and matches it
against the ``k`` block of the same layer (``key_block``); feature-to-feature matching uses one block.
The probe stage never runs a backbone: this module reads the store only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dvx.data.base import PointTracks, VideoDataset, VideoRef
from dvx.probe.evaluate_tapvid import score_prediction
from dvx.probe.tapvid_io import Prediction, write_prediction
from dvx.probe.tapvid_metrics import (
    QUERY_STRIDE,
    Queries,
    TapVidScores,
    check_mode,
    sample_queries,
    to_raster,
)
from dvx.probe.tasks.propagation_common import frame_index
from dvx.probe.tracking import DEFAULT_MAX_BYTES, TrackerConfig, track_points
from dvx.store.group import RecipeGroup


@dataclass(frozen=True)
class TrackingSettings:
    """What determines a tracking result besides the features: the query protocol and the tracker."""

    query_mode: str = "first"  # strided queries are every QUERY_STRIDE (5) frames, as TAP-Vid's
    tracker: TrackerConfig = field(default_factory=TrackerConfig)

    def __post_init__(self) -> None:
        check_mode(self.query_mode)

    def record(self) -> dict[str, Any]:
        return {
            "query_mode": self.query_mode,
            "query_stride": QUERY_STRIDE if self.query_mode == "strided" else None,
            **self.tracker.settings(),
            "protocol": "tap-vid (tapnet evaluation_datasets.py), zero-shot feature matching",
        }


@dataclass
class TrackingRun:
    """Per-video predictions, their scores, and the files written."""

    t: int
    block: str
    key_block: str
    settings: TrackingSettings
    scores: TapVidScores
    predictions: dict[str, Prediction] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    @property
    def matching(self) -> str:
        return "feature" if self.key_block == self.block else "query-key"

    def record(self) -> dict[str, Any]:
        """The scores' record plus what was tracked with what."""
        return {
            **self.scores.record(),
            "T": self.t,
            "block": self.block,
            "key_block": self.key_block,
            "matching": self.matching,
            "settings": self.settings.record(),
        }


def track_video(
    group: RecipeGroup,
    video: str,
    tracks: PointTracks,
    queries: Queries,
    t: int,
    block: str,
    key_block: str,
    tracker: TrackerConfig,
    device: str = "cpu",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Prediction:
    """One video's queries tracked with the cached ``block`` (matched against ``key_block``) at ``t``, as a
    prediction in the raster (float32, as files hold it)."""
    commit = group.commit_for(video, t, block)
    result = track_points(
        group.frames(video, t, block),
        queries.frames,
        queries.xy,
        frame_index(commit, tracks.frame_names, video),
        commit.source_size,
        tracker,
        key_maps=None if key_block == block else group.frames(video, t, key_block),
        device=device,
        max_bytes=max_bytes,
    )
    return Prediction(to_raster(result.xy), result.occluded, queries.raster_query_points())


def track_from_cache(
    group: RecipeGroup,
    dataset: VideoDataset,
    t: int,
    block: str,
    settings: TrackingSettings | None = None,
    key_block: str | None = None,
    refs: Sequence[VideoRef] | None = None,
    out: Path | None = None,
    device: str = "cpu",
    max_bytes: int = DEFAULT_MAX_BYTES,
    log: Callable[[str], None] | None = None,
) -> TrackingRun:
    """Track every video of ``refs`` (default: all of ``dataset``) with the cached ``block`` at ``t``
    (``key_block``: match against this block instead, e.g. ``layer.17.attn1.k`` for ``...attn1.q``)."""
    settings = settings or TrackingSettings()
    key_block = key_block or block
    refs = list(refs) if refs is not None else dataset.videos()
    group.require([r.id for r in refs], [t], sorted({block, key_block}))
    run = TrackingRun(t, block, key_block, settings, TapVidScores(settings.query_mode))
    for ref in refs:
        tracks = dataset.point_tracks(ref)
        queries = sample_queries(tracks, settings.query_mode)
        pred = track_video(
            group, ref.id, tracks, queries, t, block, key_block, settings.tracker, device, max_bytes
        )
        run.predictions[ref.id] = pred
        run.scores.add(ref.id, score_prediction(queries, pred, settings.query_mode), len(queries))
        if out is not None:
            run.files.append(write_prediction(out, ref.id, pred))
        if log:
            log(f"tracked {len(queries)} queries through {ref.id} (T={t}, {block} -> {key_block})")
    return run
