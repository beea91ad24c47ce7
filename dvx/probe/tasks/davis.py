"""DAVIS-2017 semi-supervised video object segmentation by kNN label propagation from cached features.

For each (T, block): the first annotated mask is propagated through the block's features of every frame
(dvx.probe.propagation, DINO/DIFT protocol), turned into masks at the annotation size, written as DAVIS
submission PNGs (``<out>/<task>/<dataset>/<model>@<fp8>/T<T>/<block>/<sequence>/<frame>.png``) and scored
with the official J&F protocol (dvx.probe.jandf); ``dvx eval <task>`` scores such a folder the same way.
The videos are those of the dataset reader's split (DAVIS: its default split, or ``--split``). Every table
carries three references computed at the same feature stride, so a number means something: "copy the first
mask", raw-pixel (Lab colour) features, and the ground-truth object ids as features (``oracle_ids``: what
the stride allows at best; see dvx/probe/baselines.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from dvx.config import ProbeConfig
from dvx.data.base import Masks, VideoDataset, VideoRef
from dvx.data.input_size import input_size
from dvx.errors import DataError
from dvx.options import Options
from dvx.probe import baselines
from dvx.probe.jandf import VOID, DavisResult, SequenceScore, evaluate_sequence, read_prediction_sequence
from dvx.probe.prediction_io import write_davis_sequence
from dvx.probe.propagation import PropagationConfig, labels_to_masks, mask_to_onehot, propagate
from dvx.probe.task import PredictionTask, ProbeContext, Scores
from dvx.probe.tasks import propagation_common as common
from dvx.probe.tasks.propagation_common import PropagationOptions
from dvx.progress import progress
from dvx.results import ResultRecord

BASELINES = ("copy_first_mask", "pixel_colour", "oracle_ids")
JF = ("J_mean", "F_mean", "JF_mean")


def has_object(labels: np.ndarray) -> bool:
    """True when a label map holds an object id (not background 0, not void 255)."""
    return bool(((labels != 0) & (labels != 255)).any())


def first_objects(first: np.ndarray) -> np.ndarray:
    """The first annotation as a prediction: its objects, void (255) written as background. Void is never
    an object (davis2017-evaluation sets it to 0 and counts objects after that; a 255 in a prediction would
    be read as object 255 and stop the official tool)."""
    return np.where(first == VOID, 0, first).astype(first.dtype)


def block_stride(resolution: tuple[int, int], hw: tuple[int, ...]) -> int | None:
    """Pixels per feature cell, when the block's map tiles the frame exactly (else None)."""
    h, w = hw[-2:]
    if resolution[0] % h or resolution[1] % w or resolution[0] // h != resolution[1] // w:
        return None
    return resolution[0] // h


def scorable(frame_names: list[str]) -> bool:
    """J&F scores every frame but the first and the last: a sequence needs 3 annotated frames."""
    return len(frame_names) >= 3


def davis_scores(scores: dict[str, SequenceScore]) -> Scores:
    """A record's J&F metrics and details from per-sequence scores (the probe's and eval's alike)."""
    rec = DavisResult(scores).record()
    return Scores({k: rec[k] for k in JF}, {k: v for k, v in rec.items() if k not in JF}, len(scores))


class DavisPropagationTask(PredictionTask):
    main_metric: ClassVar[str] = "JF_mean"
    options_class: ClassVar[type[Options]] = PropagationOptions
    options: PropagationOptions

    def __init__(self, name: str, cfg: ProbeConfig) -> None:
        super().__init__(name, cfg)
        self._refs: list[VideoRef] | None = None

    def settings(self) -> dict[str, Any]:
        return self.options.settings()

    def videos(self, ctx: ProbeContext) -> list[VideoRef]:
        """Videos whose first annotated frame holds at least one object (synthetic brick walls have none);
        found once per task from each video's first annotation alone."""
        if self._refs is None:
            refs = [ref for ref in ctx.dataset.videos() if has_object(ctx.dataset.first_mask(ref))]
            if not refs:
                raise DataError(
                    f"{ctx.dataset_name} at {ctx.dataset.root}: no video has an object in its first mask"
                )
            self._refs = refs
        return self._refs

    def run(self, ctx: ProbeContext, pairs: list[tuple[int, str]]) -> list[ResultRecord]:
        prop = self.options.propagation()
        recipe = ctx.group.recipe
        scores: dict[tuple[int, str], dict[str, SequenceScore]] = {p: {} for p in pairs}
        base: dict[int, dict[str, dict[str, SequenceScore]]] = {}
        strides: dict[tuple[int, str], int | None] = {}
        for ref in progress(ctx.refs, f"{self.name} propagate", "video", ctx.cfg.progress):
            masks = ctx.dataset.masks(ref)
            gt, names = masks.labels, masks.frame_names
            for t, block in pairs:
                commit = ctx.group.commit_for(ref.id, t, block)
                # the size this video was fed at (per video under an aspect-keeping preset)
                resolution = input_size(recipe.resolution, recipe.conditioning, commit.source_size)
                feats, where = common.annotated_features(ctx.group, commit, ref.id, t, block, names)
                soft = propagate(
                    feats,
                    mask_to_onehot(gt[0], (int(feats.shape[-2]), int(feats.shape[-1]))),
                    prop,
                    device=ctx.device,
                )
                pred = labels_to_masks(soft.cpu(), out_size=gt.shape[1:], frame_size=resolution)[where]
                pred[0] = first_objects(gt[0])
                folder = ctx.prediction_dir(self.name, t, block)
                if folder is not None:
                    write_davis_sequence(folder, ref.id, pred, names, masks.palette)
                if scorable(names):
                    scores[(t, block)][ref.id] = evaluate_sequence(gt, pred, ref.id)
                strides[(t, block)] = block_stride(resolution, commit.shapes[block])
            needed = sorted({s for s in strides.values() if s is not None})
            if scorable(names) and needed:
                self._baselines(ctx, ref, masks, needed, prop, base, resolution)
            ctx.log(f"{self.name}: {ref.id} propagated at {len(pairs)} (T, block) pair(s)")
        summary = {
            stride: {
                name: davis_scores(seqs).metrics | {"stride": stride} for name, seqs in by_baseline.items()
            }
            for stride, by_baseline in base.items()
        }
        records = []
        for t, block in pairs:
            got = davis_scores(scores[(t, block)])
            stride = strides.get((t, block))
            if stride in summary:
                got.details["baselines"] = {name: dict(vals) for name, vals in summary[stride].items()}
            records.append(self.record(ctx, t, block, got.metrics, got.details, videos=got.videos))
        return records

    @classmethod
    def score_predictions(cls, folder: Path, dataset: VideoDataset, options: Options) -> Scores:
        """J&F of ``<folder>/<video id>/<frame>.png`` against the dataset's masks (sequences with fewer
        than 3 annotated frames are skipped, as the probe skips them)."""
        scores: dict[str, SequenceScore] = {}
        seqs = sorted(p for p in folder.iterdir() if p.is_dir())
        if not seqs:
            raise DataError(f"{folder} holds no <sequence>/<frame>.png predictions")
        for seq in seqs:
            masks = dataset.masks(dataset.video(seq.name))
            if scorable(masks.frame_names):
                ids = [Path(n).stem for n in masks.frame_names]
                pred = read_prediction_sequence(seq, ids, masks.labels.shape[1:])
                scores[seq.name] = evaluate_sequence(masks.labels, pred, seq.name)
        return davis_scores(scores)

    def _baselines(
        self,
        ctx: ProbeContext,
        ref: VideoRef,
        masks: Masks,
        strides: list[int],
        prop: PropagationConfig,
        base: dict[int, dict[str, dict[str, SequenceScore]]],
        resolution: tuple[int, int],
    ) -> None:
        """Score one video's baselines at each stride: the video is decoded and resized once, and
        copy_first_mask (which no stride changes) is scored once."""
        gt, names = masks.labels, masks.frame_names
        copied = evaluate_sequence(gt, baselines.copy_first_mask(first_objects(gt[0]), len(names)), ref.id)
        video = ctx.dataset.load(ref)
        by_name = {n: i for i, n in enumerate(video.frame_names)}
        frames = common.resize_frames(video.frames[[by_name[n] for n in names]], resolution)
        for stride in strides:
            into = base.setdefault(stride, {b: {} for b in BASELINES})
            into["copy_first_mask"][ref.id] = copied
            pix = baselines.pixel_propagation(frames, gt[0], prop, stride=stride, device=ctx.device)
            into["pixel_colour"][ref.id] = evaluate_sequence(gt, pix, ref.id)
            oracle = baselines.oracle_propagation(gt, resolution, prop, stride=stride, device=ctx.device)
            into["oracle_ids"][ref.id] = evaluate_sequence(gt, oracle, ref.id)

    def extra_lines(self, records: list[ResultRecord]) -> list[str]:
        return baseline_lines(records)


def baseline_lines(records: list[ResultRecord]) -> list[str]:
    """One line per baseline and stride found in the records' details."""
    seen: dict[tuple[str, int], dict[str, float]] = {}
    for r in records:
        for name, vals in (r.details.get("baselines") or {}).items():
            seen.setdefault((name, vals["stride"]), vals)
    return [
        f"baseline {name} (stride {stride}): JF_mean {v['JF_mean']:.4f} "
        f"(J {v['J_mean']:.4f}, F {v['F_mean']:.4f})"
        for (name, stride), v in sorted(seen.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]
