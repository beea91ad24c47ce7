"""Probe metrics (torchmetrics objects) against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from dvx.probe.lightning.metrics import ForegroundARI, MeanBestOverlap, iou_from_confusion, nanmean


def test_iou_per_class_and_mean_skip_classes_that_never_occur() -> None:
    # rows = target, cols = prediction; class 2 never occurs in either
    cm = torch.tensor([[3, 1, 0], [2, 4, 0], [0, 0, 0]])
    iou = iou_from_confusion(cm)
    assert math.isclose(float(iou[0]), 3 / (3 + 1 + 2))
    assert math.isclose(float(iou[1]), 4 / (4 + 2 + 1))
    assert math.isnan(float(iou[2]))
    assert math.isclose(nanmean(iou), (3 / 6 + 4 / 7) / 2)


def test_fg_ari_ignores_background_and_permutations() -> None:
    target = torch.tensor([[0, 0, 1, 1], [0, 2, 2, 2]])
    m = ForegroundARI()
    # background pixels are predicted anything: only the foreground counts; slot ids are arbitrary
    m.update(torch.tensor([[5, 6, 3, 3], [7, 9, 9, 9]]), target)
    assert math.isclose(float(m.compute()), 1.0)
    m.update(torch.tensor([[0, 0, 4, 4], [0, 4, 4, 4]]), target)  # both objects merged: ARI 0
    assert math.isclose(float(m.compute()), 0.5)
    m.update(torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))  # no foreground
    assert int(m.count) == 2
    m.reset()
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert math.isnan(float(m.compute()))


def test_mbo_is_the_best_iou_per_object_averaged_over_objects_then_videos() -> None:
    target = torch.tensor([0, 0, 1, 1, 1, 2, 2, 0])
    preds = torch.tensor([0, 0, 1, 1, 3, 3, 3, 3])
    m = MeanBestOverlap()
    m.update(preds, target)
    # object 1 {2,3,4}: pred 1 {2,3} IoU 2/3, pred 3 {4..7} 1/6 -> 2/3; object 2 {5,6}: pred 3 IoU 2/4
    first = (2 / 3 + 2 / 4) / 2
    assert math.isclose(float(m.compute()), first)
    m.update(target.clone(), target)  # a perfect video
    assert math.isclose(float(m.compute()), (first + 1.0) / 2)
