"""Baselines: copy-the-first-mask and raw-colour features through the same propagation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dvx.errors import ConfigError
from dvx.probe.baselines import (
    copy_first_mask,
    oracle_features,
    oracle_propagation,
    pixel_features,
    pixel_propagation,
    rgb_to_lab,
)
from dvx.probe.jandf import evaluate_sequence
from dvx.probe.propagation import PropagationConfig


def test_copy_first_mask() -> None:
    first = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = copy_first_mask(first, 5)
    assert out.shape == (5, 3, 4)
    assert (out == first).all()


def test_rgb_to_lab_reference_colours() -> None:
    rgb = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    lab = rgb_to_lab(rgb.T[:, :, None]).squeeze(-1).T
    expected = [[100.0, 0.0, 0.0], [0.0, 0.0, 0.0], [53.24, 80.09, 67.20], [32.30, 79.19, -107.86]]
    np.testing.assert_allclose(lab.numpy(), expected, atol=0.05)


def test_pixel_features_pool_and_standardise() -> None:
    frames = np.zeros((2, 16, 20, 3), dtype=np.uint8)
    frames[:, :8, :8] = (255, 0, 0)
    frames[:, 8:, :, 2] = 255
    feats = pixel_features(frames, stride=8, space="rgb")
    assert feats.shape == (2, 3, 2, 2)  # 20 // 8 = 2 columns: the 4-pixel remainder is dropped
    torch.testing.assert_close(feats.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-6, rtol=0)
    raw = pixel_features(frames, stride=8, space="rgb", standardize=False)
    torch.testing.assert_close(raw[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(raw[0, :, 1, 1], torch.tensor([0.0, 0.0, 1.0]))
    with pytest.raises(ConfigError, match="colour space"):
        pixel_features(frames, space="hsv")


def _moving_square(n: int = 6, step: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A red square moving right over a textured blue/green background; its masks."""
    rng = np.random.default_rng(0)
    h, w = 64, 96
    frames = np.zeros((n, h, w, 3), dtype=np.uint8)
    masks = np.zeros((n, h, w), dtype=np.uint8)
    texture = rng.integers(0, 2, (h // 8, w // 8)).repeat(8, 0).repeat(8, 1)
    for t in range(n):
        frames[t, ..., 1] = 120 * texture
        frames[t, ..., 2] = 200
        x0 = 8 + step * t
        frames[t, 16:40, x0 : x0 + 24] = (230, 20, 20)
        masks[t, 16:40, x0 : x0 + 24] = 1
    return frames, masks


def test_pixel_propagation_tracks_a_coloured_square_better_than_copying() -> None:
    frames, masks = _moving_square()
    cfg = PropagationConfig(topk=5, temperature=0.1, context=3, radius=3)
    pred = pixel_propagation(frames, masks[0], cfg, stride=8)
    assert pred.shape == masks.shape and pred.dtype == np.uint8
    np.testing.assert_array_equal(pred[0], masks[0])
    tracked = evaluate_sequence(masks, pred)
    copied = evaluate_sequence(masks, copy_first_mask(masks[0], len(masks)))
    assert tracked.J_mean > 0.95
    assert copied.J_mean < 0.6


def test_real_davis_pixel_propagation_matches_reference(shared_data) -> None:
    """Raw-colour features of real frames (many near-identical colours): same masks as the dense loop."""
    from dvx.data.images import read_label_png, read_rgb
    from dvx.probe.propagation import labels_to_masks, mask_to_onehot, propagate
    from tests.probe.reference_propagation import mask_disagreement, reference_propagate

    root = shared_data / "davis2016/DAVIS"
    frames = np.stack([read_rgb(p) for p in sorted((root / "JPEGImages/480p/blackswan").glob("*.jpg"))[:6]])
    first_mask = read_label_png(root / "Annotations/480p/blackswan/00000.png")[0]
    feats = pixel_features(frames, stride=16)
    first = mask_to_onehot(first_mask, tuple(feats.shape[-2:]))
    cfg = PropagationConfig.preset("dino")
    size = (feats.shape[-2] * 16, feats.shape[-1] * 16)
    fast, ref = propagate(feats, first, cfg), reference_propagate(feats, first, cfg)
    torch.testing.assert_close(fast, ref, atol=2e-5, rtol=1e-4)
    assert torch.equal(fast.argmax(1), ref.argmax(1))
    masks = labels_to_masks(fast, first_mask.shape, size)
    assert masks[1:].any()
    # full-resolution masks agree except where the reference itself sits on a float tie
    # (here: 1 pixel of 2.46 million, where the reference's two channels are exactly equal)
    n_diff, n_real = mask_disagreement(fast, ref, first_mask.shape, size)
    assert n_real == 0 and n_diff <= 5


def test_oracle_features_hold_each_cells_id_fractions_and_void_counts_for_none() -> None:
    labels = np.zeros((1, 8, 8), dtype=np.uint8)
    labels[0, :4, :2] = 1  # half of cell (0, 0) is object 1
    labels[0, 4:, 4:] = 255  # cell (1, 1) is all void
    labels[0, 4:6, :4] = 2  # half of cell (1, 0) is object 2
    feats = oracle_features(labels, (8, 8), stride=4)
    assert feats.shape == (1, 3, 2, 2)
    torch.testing.assert_close(feats[0, :, 0, 0], torch.tensor([0.5, 0.5, 0.0]))
    torch.testing.assert_close(feats[0, :, 0, 1], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(feats[0, :, 1, 0], torch.tensor([0.5, 0.0, 0.5]))
    torch.testing.assert_close(feats[0, :, 1, 1], torch.zeros(3))
    # the labels are resized (nearest) to the extraction size first: 16x16 labels at size 8x8
    big = np.repeat(np.repeat(labels, 2, axis=1), 2, axis=2)
    torch.testing.assert_close(oracle_features(big, (8, 8), stride=4), feats)


def _square_labels(frames: int, side: int, step: int, size: int = 32) -> np.ndarray:
    gt = np.zeros((frames, size, size), dtype=np.uint8)
    for t in range(frames):
        gt[t, 8 : 8 + side, t * step : t * step + side] = 1
    return gt


def test_the_oracle_follows_a_grid_aligned_moving_object_exactly_where_copying_fails() -> None:
    gt = _square_labels(frames=4, side=8, step=4)  # 8 px square, 4 px per frame, stride 4: cells align
    cfg = PropagationConfig.preset("dino")
    oracle = oracle_propagation(gt, (32, 32), cfg, stride=4)
    np.testing.assert_array_equal(oracle[0], gt[0])
    score = evaluate_sequence(gt, oracle)
    assert score.F_mean == 1.0 and score.J_mean > 0.9  # J: 4 corners, rounded by the upsampling
    copied = copy_first_mask(gt[0], len(gt))
    assert evaluate_sequence(gt, copied).J_mean < 0.5


def test_the_oracle_cannot_resolve_objects_smaller_than_its_stride() -> None:
    """The reason the oracle is a reference point: at stride 16 a 4 px object that barely moves is lost
    (mixed into the background's cells), while copying the first mask keeps most of it."""
    gt = _square_labels(frames=4, side=4, step=1)
    cfg = PropagationConfig.preset("dino")
    oracle = oracle_propagation(gt, (32, 32), cfg, stride=16)
    copied = copy_first_mask(gt[0], len(gt))
    j_oracle = evaluate_sequence(gt, oracle).J_mean
    j_copy = evaluate_sequence(gt, copied).J_mean
    assert j_oracle < j_copy
