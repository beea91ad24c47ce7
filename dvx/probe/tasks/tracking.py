"""TAP-Vid point tracking from cached features: ``tapvid-davis``, ``tapvid-kinetics``,
``tapvid-rgb-stacking`` and ``synthetic-tracking`` (docs/probes.md "Point tracking").

For each (T, block) every video's TAP-Vid queries (``--query-mode first``, the TAP-Vid-DAVIS convention,
or ``strided``: every 5 frames) are tracked zero-shot through the block's stored maps
(dvx.probe.track_cache, dvx.probe.tracking: cosine match, argmax refined by a local soft-argmax, occluded
when the best cosine is below ``--occlusion-threshold``) and scored as TAP-Vid's reference evaluation
(dvx.probe.tapvid_metrics): AJ (the main metric), delta_avg, OA and the per-threshold figures.

``--match feature`` matches a block against itself; ``--match qk`` matches an attention query block
(``<layer>.q``, or one head ``<layer>.q.h<i>``) against the same layer's key block (``<layer>.k``,
``<layer>.k.h<i>``), as DiffTrack does. The record's block is the q block; its details name the key block.

Predictions are ``<out>/<task>/<dataset>/<model>@<fp8>/T<T>/<block>/<video>.npz`` (dvx.probe.tapvid_io),
scored from memory by the same function ``dvx eval tapvid`` and ``dvx eval <task>`` score the files with,
so eval on that folder reproduces the record. No baseline is computed: the metrics need none to be read
(AJ 0 is no tracking at all), and the perfect-feature control (AJ 1.0) is a test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from dvx.data.base import VideoDataset, VideoRef
from dvx.errors import CacheMissError, ConfigError, DataError
from dvx.options import Options, option
from dvx.probe.evaluate_tapvid import check_queries, score_prediction
from dvx.probe.tapvid_io import prediction_files, read_prediction, write_prediction
from dvx.probe.tapvid_metrics import METRICS, QUERY_STRIDE, TapVidScores, sample_queries
from dvx.probe.task import PredictionTask, ProbeContext, Scores
from dvx.probe.track_cache import TrackingSettings, track_video
from dvx.probe.tracking import DEFAULT_MAX_BYTES, TrackerConfig
from dvx.progress import progress
from dvx.results import ResultRecord, fmt

# ``<layer>.q`` or ``<layer>.q.h<i>`` (dvx.extract.attention's names; the probe never imports dvx.extract)
_QUERY_BLOCK = re.compile(r"(?P<layer>.+)\.q(?P<head>\.h\d+)?")


@dataclass(frozen=True)
class TrackingScoreOptions(Options):
    """What changes how predictions are scored (``dvx eval <task>`` takes it too)."""

    query_mode: Literal["first", "strided"] = option(
        "first",
        f"Queries at each track's first visible frame, later frames scored (TAP-Vid-DAVIS), or every "
        f"{QUERY_STRIDE} frames, every other frame scored.",
    )


@dataclass(frozen=True)
class TrackingOptions(TrackingScoreOptions):
    """The tracker's knobs (docs/probes.md "Point tracking"); every one is recorded with the result."""

    match: Literal["feature", "qk"] = option(
        "feature",
        "feature: match a block against itself; qk: an attention <layer>.q block (or head .q.h<i>) against "
        "the same layer's .k block (DiffTrack).",
    )
    radius: int = option(2, "Soft-argmax window half-size in feature cells (0: the argmax cell).", minimum=0)
    temperature: float = option(0.05, "Soft-argmax temperature tau of softmax(cos / tau).", above=0)
    occlusion_threshold: float = option(
        0.5, "Predicted occluded where the best cosine is below this (a cosine in [-1, 1]).", minimum=-1
    )
    max_bytes: int = option(
        DEFAULT_MAX_BYTES,
        "Memory budget of the similarity workspace and key chunk, in bytes (results do not depend on it).",
        minimum=1,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.occlusion_threshold > 1:
            raise ConfigError(
                f"--occlusion-threshold is a cosine in [-1, 1], got {self.occlusion_threshold!r}"
            )

    def tracking(self) -> TrackingSettings:
        tracker = TrackerConfig(self.radius, self.temperature, self.occlusion_threshold)
        return TrackingSettings(query_mode=self.query_mode, tracker=tracker)

    def settings(self) -> dict[str, Any]:
        """What determines the result (the record key): the query protocol, the tracker, the matching.
        ``max_bytes`` is left out: the result does not depend on it (tests/probe/test_tracking.py)."""
        return {**self.tracking().record(), "match": self.match}


def key_block(block: str, match: str) -> str:
    """The block ``block``'s descriptors are matched against: itself, or its layer's k block (same head)."""
    if match == "feature":
        return block
    m = _QUERY_BLOCK.fullmatch(block)
    if m is None:
        raise ConfigError(
            f"--match qk matches attention query blocks against their keys; {block!r} is no <layer>.q or "
            "<layer>.q.h<i> block (give --blocks <layer>.q,..., or use --match feature)"
        )
    return f"{m['layer']}.k{m['head'] or ''}"


def check_keys(ctx: ProbeContext, pairs: list[tuple[int, str]], keys: dict[str, str]) -> None:
    """Every key block a q block needs is cached for every probed video (one line naming what is not)."""
    index = ctx.group.index()
    for t, block in pairs:
        key = keys[block]
        lacking = [v for v in ctx.videos if key != block and not index.has(v, [t], [key])]
        m = _QUERY_BLOCK.fullmatch(block)
        if lacking and m is not None:
            heads = f" with --heads {m['head'][2:]}" if m["head"] else ""
            raise CacheMissError(
                f"--match qk: {block} is matched against {key}, which the cache lacks at T={t} for "
                f"{len(lacking)} video(s) ({', '.join(lacking[:3])}); extract the layer's q and k blocks "
                f"together (the extract option --blocks '{m['layer']}.*'{heads})"
            )


def tapvid_scores(scores: TapVidScores) -> Scores:
    """A record's metrics (AJ, delta_avg, OA, per threshold; None where undefined) and its details."""
    rec = scores.record()
    metrics = {k: rec[k] for k in METRICS}
    details = {k: v for k, v in rec.items() if k not in metrics}
    return Scores(metrics, details, rec["n_videos"])


class TrackingTask(PredictionTask):
    main_metric: ClassVar[str] = "AJ"
    options_class: ClassVar[type[Options]] = TrackingOptions
    score_options: ClassVar[type[Options]] = TrackingScoreOptions
    options: TrackingOptions

    def settings(self) -> dict[str, Any]:
        return self.options.settings()

    def videos(self, ctx: ProbeContext) -> list[VideoRef]:
        if "point_tracks" not in ctx.dataset.annotations:
            raise DataError(
                f"task {self.name!r} needs point tracks; dataset {ctx.dataset_name!r} at {ctx.dataset.root} "
                "has none (tapvid-davis, tapvid-kinetics, tapvid-rgb-stacking and synthetic have them)"
            )
        return ctx.dataset.videos()

    def run(self, ctx: ProbeContext, pairs: list[tuple[int, str]]) -> list[ResultRecord]:
        """Video by video (its tracks read and its queries sampled once), every (T, block) of the sweep."""
        opts = self.options
        keys = {block: key_block(block, opts.match) for _, block in pairs}
        check_keys(ctx, pairs, keys)
        tracking = opts.tracking()
        scores = {pair: TapVidScores(opts.query_mode) for pair in pairs}
        for ref in progress(ctx.refs, f"{self.name} track", "video", ctx.cfg.progress):
            tracks = ctx.dataset.point_tracks(ref)
            queries = sample_queries(tracks, opts.query_mode)
            for t, block in pairs:
                pred = track_video(
                    ctx.group, ref.id, tracks, queries, t, block, keys[block], tracking.tracker,
                    ctx.device, opts.max_bytes,
                )  # fmt: skip
                folder = ctx.prediction_dir(self.name, t, block)
                if folder is not None:
                    write_prediction(folder, ref.id, pred)
                figures = score_prediction(queries, pred, opts.query_mode)
                scores[(t, block)].add(ref.id, figures, len(queries))
            ctx.log(
                f"{self.name}: {ref.id}: {len(queries)} queries tracked at {len(pairs)} (T, block) pair(s)"
            )
        records = []
        for t, block in pairs:
            got = tapvid_scores(scores[(t, block)])
            got.details.update(
                key_block=keys[block], matching="feature" if keys[block] == block else "query-key"
            )
            records.append(self.record(ctx, t, block, got.metrics, got.details, videos=got.videos))
        return records

    @classmethod
    def score_predictions(cls, folder: Path, dataset: VideoDataset, options: Options) -> Scores:
        """TAP-Vid figures of ``<folder>/<video>.npz`` against the dataset's tracks, in the recorded query
        mode: every file is scored (the probe may have read a subset of the videos); a file naming no
        video of the dataset is an error."""
        assert isinstance(options, TrackingScoreOptions)
        files = prediction_files(folder)
        if not files:
            raise DataError(f"{folder} holds no <video>.npz point-tracking predictions")
        by_id = {r.id: r for r in dataset.videos()}
        stray = [v for v in files if v not in by_id]
        if stray:
            raise DataError(f"{folder}: {stray[0]}.npz names no video of {dataset.name} at {dataset.root}")
        scores = TapVidScores(options.query_mode)
        for video, path in files.items():
            queries = sample_queries(dataset.point_tracks(by_id[video]), options.query_mode)
            pred = read_prediction(path)
            check_queries(video, queries, pred)
            scores.add(video, score_prediction(queries, pred, options.query_mode), len(queries))
        return tapvid_scores(scores)

    def extra_lines(self, records: list[ResultRecord]) -> list[str]:
        """The protocol in one line, and each record's delta_avg and OA beside its AJ."""
        p = records[0].probe
        lines = [
            f"query mode {p['query_mode']}, match {p['match']}, radius {p['soft_argmax_radius']}, "
            f"temperature {p['soft_argmax_temperature']}, occlusion threshold {p['occlusion_threshold']}; "
            "raster 256x256"
        ]
        for r in records:
            m = r.metrics
            key = r.details.get("key_block", r.block)
            pair = r.block if key == r.block else f"{r.block} -> {key}"
            lines.append(
                f"T={r.T} {pair}: AJ {fmt(m.get('AJ'))}  delta_avg {fmt(m.get('delta_avg'))}  "
                f"OA {fmt(m.get('OA'))}  ({r.details.get('n_queries', '?')} queries)"
            )
        return lines
