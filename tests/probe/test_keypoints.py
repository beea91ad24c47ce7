"""Joints -> heatmaps (videowalk's draw_labelmap_np), top-3 decoding, propagation of keypoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dvx.data import open_dataset
from dvx.probe.keypoints import decode_keypoints, joints_to_heatmaps, propagate_keypoints
from dvx.probe.propagation import PropagationConfig

G1, G2 = math.exp(-2.0), math.exp(-8.0)  # sigma = 0.5: exp(-d^2 / (2 * 0.25)) at d = 1, 2


def test_heatmap_by_hand() -> None:
    # 320x240 frame, 40x40 feature map: x 100 -> u 12.5, y 50 -> v 8.33 -> centre cell (row 8, col 13)
    heat = joints_to_heatmaps(np.array([[100.0, 50.0]]), (240, 320), (40, 40)).numpy()
    assert heat.shape == (2, 40, 40)
    joint = heat[1]
    assert joint[8, 13] == pytest.approx(1.0)
    assert joint[8, 12] == pytest.approx(G1) and joint[8, 14] == pytest.approx(G1)
    assert joint[7, 13] == pytest.approx(G1) and joint[9, 13] == pytest.approx(G1)
    assert joint[8, 11] == pytest.approx(G2)  # the reference window spans offsets -2 .. +1
    assert joint[8, 15] == 0.0 and joint[10, 13] == 0.0
    assert np.count_nonzero(joint) == 16
    # background: 1 exactly where no joint has heat
    np.testing.assert_array_equal(heat[0], (joint == 0).astype(np.float32))


def test_heatmap_borders_and_outside() -> None:
    # a joint at pixel 0: u = 0 -> floor(-1.5) = -2 -> centre cell 0 (videowalk's int() would give 1)
    heat = joints_to_heatmaps(
        np.array([[0.0, 0.0], [400.0, 10.0], [np.nan, 3.0]]), (240, 320), (30, 40)
    ).numpy()
    assert heat[1, 0, 0] == pytest.approx(1.0)
    assert heat[1, 0, 1] == pytest.approx(G1)
    assert not heat[2].any()  # outside the frame: no heat
    assert not heat[3].any()  # unknown joint: no heat


def test_decode_by_hand() -> None:
    soft = torch.zeros(1, 3, 6, 8)
    soft[0, 1, 2, 3] = 1.0
    soft[0, 1, 2, 4] = 0.5
    soft[0, 1, 3, 3] = 0.5
    soft[0, 1, 0, 0] = 0.1  # fourth largest: ignored
    xy = decode_keypoints(soft, frame_size=(60, 40))  # 10 px per cell vertically, 5 px horizontally
    # weights 0.5, 0.25, 0.25 -> cells x = 3.25, y = 2.25
    np.testing.assert_allclose(xy[0, 0], [3.25 * 5, 2.25 * 10])
    assert np.isnan(xy[0, 1]).all()  # a channel with no mass is lost


def test_static_video_keeps_the_joints() -> None:
    g = torch.Generator().manual_seed(0)
    h, w = 24, 32
    frame = torch.randn(128, h, w, generator=g)  # distinctive: each position matches only itself
    feats = frame[None].repeat(6, 1, 1, 1)
    joints = np.array([[40.0, 30.0], [200.0, 150.0], [310.0, 20.0]])
    xy = propagate_keypoints(feats, joints, (240, 320), PropagationConfig.preset("dino"))
    assert xy.shape == (6, 3, 2)
    # the peak stays; which two of the four equal ring cells join the top-3 may change: <= half a cell
    np.testing.assert_allclose(xy[1:], np.repeat(xy[:1], 5, axis=0), atol=5.01)
    # decoding the initial heatmaps lands within one cell (10 px) of the given joints
    assert np.abs(xy[0] - joints).max() <= 10


def test_jhmdb_heatmaps_decode_near_ground_truth(shared_data) -> None:
    ds = open_dataset("jhmdb", str(shared_data / "jhmdb/JHMDB"))
    gt = ds.joints(ds.videos()[0]).xy.astype(np.float64)
    assert gt.shape == (40, 15, 2)
    heat = torch.stack([joints_to_heatmaps(fr, (240, 320), (40, 40)) for fr in gt])
    xy = decode_keypoints(heat, (240, 320))
    cell = np.array([320 / 40, 240 / 40])
    # the peak is the nearest cell; the top-3 mean pulls at most half a cell further
    assert (np.abs(xy - gt) <= cell).all()
