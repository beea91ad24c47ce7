"""JHMDB keypoint propagation from cached features, scored with PCK@0.1 and @0.2.

Videos: the dataset's evaluation split (JHMDB: the split 1 test list, 268 videos) when its split files are
present, every video otherwise (or the split given with ``--split``). Frame-0 joints become Gaussian
heatmaps (sigma 0.5 feature cells) plus a background channel, are propagated with the same kNN as DAVIS
(dvx.probe.keypoints), decoded per joint as the weighted mean of its top-3 cells and mapped back to
original-frame pixels. PCK follows videowalk's ``eval_pck.py``: every annotated joint counts (visibility
rule "all", the default of ``--visibility``), frame 0 is not scored, and a joint is correct within
alpha * 0.6 * the diagonal extent (max - min) of that frame's ground-truth joints. Predicted joints are
written to ``<out>/<task>/<dataset>/<model>@<fp8>/T<T>/<block>/<video id>.json``, which ``dvx eval jhmdb``
scores the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from dvx.data.base import Joints, VideoDataset, VideoRef
from dvx.errors import DataError
from dvx.options import Options, option
from dvx.probe import keypoints
from dvx.probe.keypoints import propagate_keypoints
from dvx.probe.pck import evaluate_pck
from dvx.probe.prediction_io import prediction_files, read_jhmdb_prediction, write_jhmdb_prediction
from dvx.probe.task import PredictionTask, ProbeContext, Scores
from dvx.probe.tasks import propagation_common as common
from dvx.probe.tasks.propagation_common import PropagationOptions
from dvx.progress import progress
from dvx.results import ResultRecord

PCK = ("pck@0.1", "pck@0.2")


@dataclass(frozen=True)
class PckOptions(Options):
    """How PCK is scored (the probe's option, and ``dvx eval jhmdb``'s)."""

    visibility: Literal["all", "inside"] = option(
        "all",
        "Which ground-truth joints are scored: every annotated one (videowalk's rule) or those inside the "
        "frame.",
    )


@dataclass(frozen=True)
class JhmdbOptions(PropagationOptions, PckOptions):
    """Propagation knobs plus the PCK visibility rule."""


def pck_scores(
    preds: dict[str, np.ndarray],
    gts: dict[str, np.ndarray],
    visibility: str,
    sizes: dict[str, tuple[int, int]],
) -> Scores:
    """A record's PCK metrics and details (the probe's and eval's alike)."""
    rec = evaluate_pck(preds, gts, visibility=visibility, frame_sizes=sizes).record()
    return Scores({k: rec[k] for k in PCK}, {k: v for k, v in rec.items() if k not in PCK}, len(gts))


def find_ref(refs: list[VideoRef], name: str) -> VideoRef:
    """The video a prediction file names: a dvx video id (``<class>__<video>``, what the probe writes) or
    a JHMDB video folder name (what other tools write), which must then be unique across classes."""
    hits = [r for r in refs if r.id == name] or [r for r in refs if r.meta.get("video") == name]
    if len(hits) != 1:
        classes = [r.meta.get("class") for r in hits]
        why = "no video" if not hits else f"{len(hits)} videos (classes {classes})"
        raise DataError(f"prediction {name}.json: the dataset has {why} of that name")
    return hits[0]


class JhmdbPropagationTask(PredictionTask):
    main_metric: ClassVar[str] = "pck@0.1"
    options_class: ClassVar[type[Options]] = JhmdbOptions
    score_options: ClassVar[type[Options]] = PckOptions
    options: JhmdbOptions

    def settings(self) -> dict[str, Any]:
        return self.options.settings() | {
            "visibility": self.options.visibility,
            "heatmap_sigma_cells": keypoints.SIGMA,
            "decode_topk": keypoints.DECODE_TOPK,
        }

    def videos(self, ctx: ProbeContext) -> list[VideoRef]:
        """``--split`` if given; else the dataset's evaluation split when its split files exist (JHMDB:
        split 1's test list); else every video (the single-video sample in ../shared/data)."""
        from dvx.data.jhmdb import JhmdbDataset

        splits = ctx.dataset.probe_splits
        if self.cfg.split is not None or splits is None:
            return ctx.dataset.videos()  # opened with --split: it lists exactly those
        if isinstance(ctx.dataset, JhmdbDataset) and ctx.dataset.splits_dir is None:
            return ctx.dataset.videos()
        return ctx.dataset.split_videos(splits[1])

    def run(self, ctx: ProbeContext, pairs: list[tuple[int, str]]) -> list[ResultRecord]:
        prop = self.options.propagation()
        preds: dict[tuple[int, str], dict[str, np.ndarray]] = {p: {} for p in pairs}
        gts: dict[str, np.ndarray] = {}
        sizes: dict[str, tuple[int, int]] = {}
        for ref in progress(ctx.refs, f"{self.name} propagate", "video", ctx.cfg.progress):
            joints: Joints = ctx.dataset.joints(ref)
            gts[ref.id] = joints.xy
            for t, block in pairs:
                commit = ctx.group.commit_for(ref.id, t, block)
                feats, where = common.annotated_features(
                    ctx.group, commit, ref.id, t, block, joints.frame_names
                )
                sizes[ref.id] = commit.source_size
                stored = propagate_keypoints(feats, joints.xy[0], commit.source_size, prop, device=ctx.device)
                pred = stored[where]
                pred[0] = joints.xy[0]
                preds[(t, block)][ref.id] = pred
                folder = ctx.prediction_dir(self.name, t, block)
                if folder is not None:
                    write_jhmdb_prediction(folder, ref.id, pred)
            ctx.log(f"{self.name}: {ref.id} propagated at {len(pairs)} (T, block) pair(s)")
        records = []
        for t, block in pairs:
            got = pck_scores(preds[(t, block)], gts, self.options.visibility, sizes)
            records.append(self.record(ctx, t, block, got.metrics, got.details, videos=got.videos))
        return records

    @classmethod
    def score_predictions(cls, folder: Path, dataset: VideoDataset, options: Options) -> Scores:
        """PCK of ``<folder>/<video>.json`` (a dvx video id or a JHMDB video name) against the dataset's
        joints."""
        visibility = options.visibility if isinstance(options, PckOptions) else "all"
        refs = dataset.videos()
        preds: dict[str, np.ndarray] = {}
        gts: dict[str, np.ndarray] = {}
        sizes: dict[str, tuple[int, int]] = {}
        for path in prediction_files(folder, ".json"):
            ref = find_ref(refs, path.stem)
            joints = dataset.joints(ref)
            pred = read_jhmdb_prediction(path)
            if pred.shape != joints.xy.shape:
                raise DataError(
                    f"{path}: {pred.shape[0]} frames x {pred.shape[1]} joints, but the ground truth has "
                    f"{joints.xy.shape[0]} x {joints.xy.shape[1]}"
                )
            preds[ref.id], gts[ref.id] = pred, joints.xy
            if visibility == "inside":  # the frame size: from the frames, as the probe's from the store
                h, w = dataset.load(ref).frames.shape[1:3]
                sizes[ref.id] = (int(h), int(w))
        return pck_scores(preds, gts, visibility, sizes)
