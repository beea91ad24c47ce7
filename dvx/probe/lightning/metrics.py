"""Probe metrics as torchmetrics ``Metric`` objects (their states are summed across DDP ranks).

- top-1 / top-5 accuracy: ``torchmetrics.classification.MulticlassAccuracy`` (micro average, ``top_k``);
- mIoU: ``MulticlassConfusionMatrix`` with ``ignore_index=255`` accumulated over the whole test set, IoU
  per class = TP / (TP + FP + FN); a class absent from both the labels and the predictions of the whole
  set has no IoU (NaN) and is left out of the mean (as cityscapesScripts does);
- depth: ``MeanAbsoluteError`` (``depth_mErr``: the mean per-pixel L2 distance, which for a scalar is the
  absolute error) and ``MeanSquaredError(squared=False)`` (``depth_RMSE``) over pixels with valid depth;
- object discovery: :class:`ForegroundARI` and :class:`MeanBestOverlap`, per video over all its frames.
"""

from __future__ import annotations

import warnings

import torch
from torchmetrics import Metric


def iou_from_confusion(cm: torch.Tensor) -> torch.Tensor:
    """Per-class IoU from a (K, K) confusion matrix (rows = target), NaN where a class never occurs."""
    cm = cm.double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def nanmean(x: torch.Tensor) -> float:
    x = x[~torch.isnan(x)]
    return float(x.mean()) if len(x) else float("nan")


class PerVideoMean(Metric):
    """A score per video (``add_score`` in ``update``), averaged over videos; summed across DDP ranks."""

    higher_is_better = True
    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def add_score(self, score: torch.Tensor) -> None:
        self.total += score.to(self.total)
        self.count += 1

    def compute(self) -> torch.Tensor:
        return self.total / self.count if self.count > 0 else torch.tensor(float("nan"))


class ForegroundARI(PerVideoMean):
    """Adjusted Rand index between predicted and true segment ids over a video's foreground pixels
    (true id != 0, all frames together), averaged over videos. Videos without foreground are skipped;
    a video whose foreground is one object and is predicted as one segment scores 1 (sklearn/SAVi)."""

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """One video: ``preds`` and ``target`` integer ids of the same shape (e.g. (F, H, W))."""
        from torchmetrics.functional.clustering import adjusted_rand_score

        fg = target != 0
        if not bool(fg.any()):
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's sparse-invariant notice
            ari = adjusted_rand_score(preds[fg].long(), target[fg].long())
        self.add_score(ari)


class MeanBestOverlap(PerVideoMean):
    """For each true object (id != 0) of a video, the best IoU with any predicted segment over all the
    video's frames; averaged over the video's objects, then over videos (videos without objects skipped)."""

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """One video: ``preds`` and ``target`` integer ids of the same shape (e.g. (F, H, W))."""
        pred_ids, p = torch.unique(preds.reshape(-1), return_inverse=True)
        true_ids, t = torch.unique(target.reshape(-1), return_inverse=True)
        objects = true_ids != 0
        if not bool(objects.any()):
            return
        n_p, n_t = len(pred_ids), len(true_ids)
        joint = torch.bincount(p * n_t + t, minlength=n_p * n_t).reshape(n_p, n_t).double()
        union = joint.sum(1, keepdim=True) + joint.sum(0, keepdim=True) - joint
        best = (joint / union).max(dim=0).values[objects]  # (objects,)
        self.add_score(best.mean())
