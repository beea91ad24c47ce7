"""JHMDB keypoint propagation from cached features, scored with PCK@0.1 and @0.2.

Videos: the split 1 test list (268 videos) when the split files are present, every video otherwise (or the
split given with ``--split``). Frame-0 joints become Gaussian heatmaps (sigma 0.5 feature cells) plus a
background channel, are propagated with the same kNN as DAVIS (dvx.probe.keypoints), decoded per joint as
the weighted mean of its top-3 cells and mapped back to original-frame pixels. PCK follows videowalk's
``eval_pck.py``: every annotated joint counts (visibility rule "all"), frame 0 is not scored, and a joint is
correct within alpha * 0.6 * the diagonal extent (max - min) of that frame's ground-truth joints. Predicted
joints are written to ``<out>/<T>/<block>/<video>.json``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from dvx.data.base import Joints, VideoRef
from dvx.probe import keypoints
from dvx.probe.keypoints import propagate_keypoints
from dvx.probe.pck import evaluate_pck
from dvx.probe.prediction_io import write_jhmdb_prediction
from dvx.probe.results import ResultRecord
from dvx.probe.task import ProbeContext, Task
from dvx.probe.tasks import propagation_common as common

VISIBILITY = "all"


class JhmdbPropagationTask(Task):
    main_metric: ClassVar[str] = "pck@0.1"
    option_names: ClassVar[frozenset[str]] = common.OPTION_NAMES

    def settings(self) -> dict[str, Any]:
        return common.settings(self.cfg) | {
            "visibility": VISIBILITY,
            "heatmap_sigma_cells": keypoints.SIGMA,
            "decode_topk": keypoints.DECODE_TOPK,
        }

    def videos(self, ctx: ProbeContext) -> list[VideoRef]:
        """``--split`` if given; else JHMDB's split 1 test list when its split files exist; else every video
        (the single-video sample in ../shared/data, the synthetic world's JHMDB-style layout)."""
        from dvx.data.jhmdb import JhmdbDataset

        if self.cfg.split is not None:
            return ctx.dataset.videos()  # the dataset was opened with the split: it lists exactly those
        if isinstance(ctx.dataset, JhmdbDataset) and ctx.dataset.splits_dir is not None:
            return ctx.dataset.split_videos("test1")
        return ctx.dataset.videos()

    def run(self, ctx: ProbeContext, pairs: list[tuple[int, str]]) -> list[ResultRecord]:
        _, prop = common.propagation_config(self.cfg)
        preds: dict[tuple[int, str], dict[str, np.ndarray]] = {p: {} for p in pairs}
        gts: dict[str, np.ndarray] = {}
        sizes: dict[str, tuple[int, int]] = {}
        for ref in self.videos(ctx):
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
                if ctx.out is not None:
                    write_jhmdb_prediction(ctx.out / str(t) / block, ref.id, pred)
            ctx.log(f"{self.name}: {ref.id} propagated at {len(pairs)} (T, block) pair(s)")
        records = []
        for t, block in pairs:
            rec = evaluate_pck(preds[(t, block)], gts, visibility=VISIBILITY, frame_sizes=sizes).record()
            metrics = {k: rec[k] for k in ("pck@0.1", "pck@0.2")}
            details = {k: v for k, v in rec.items() if k not in metrics}
            records.append(self.record(ctx, t, block, metrics, details, videos=len(gts)))
        return records
