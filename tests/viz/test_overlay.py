"""Probe predictions drawn on frames: DAVIS masks, JHMDB joints, TAP-Vid tracks; nothing where none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dvx.viz.overlay import overlay


def frames() -> np.ndarray:
    return np.full((2, 16, 20, 3), 100, dtype=np.uint8)


def test_masks_joints_and_tracks_are_drawn_where_predicted(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "v").mkdir()
    m = np.zeros((16, 20), dtype=np.uint8)
    m[2:6, 3:8] = 1
    m[10:12, 10:12] = 255  # void: never drawn
    Image.fromarray(m).save(tmp_path / "v" / "00001.png")
    out = overlay(frames(), ["00000", "00001"], "v", tmp_path)
    assert out is not None
    assert (out[0] == 100).all()  # no mask for frame 0
    assert (out[1, 2:6, 3:8] != 100).any() and (out[1, 10:12, 10:12] == 100).all()
    assert (out[1, 8:10] == 100).all()

    (tmp_path / "j.json").write_text(json.dumps({"video": "j", "frames": [[[4.0, 5.0], None], [None, None]]}))
    joints = overlay(frames(), ["a", "b"], "j", tmp_path)
    assert joints is not None and (joints[0, 5, 4] != 100).any() and (joints[1] == 100).all()

    tracks = np.array([[[128.0, 128.0], [0.0, 0.0]]], dtype=np.float32)  # one point, raster 256
    np.savez(tmp_path / "t.npz", tracks=tracks, occluded=np.array([[False, True]]))
    drawn = overlay(frames(), ["a", "b"], "t", tmp_path)
    assert drawn is not None and (drawn[0, 8, 10] != 100).any() and (drawn[1] == 100).all()


def test_nothing_predicted_for_a_video_gives_none(tmp_path: Path) -> None:
    assert overlay(frames(), ["a", "b"], "absent", tmp_path) is None
