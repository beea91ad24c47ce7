from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from dvx.data import open_dataset
from dvx.data.jhmdb import JOINT_NAMES, JhmdbDataset
from dvx.errors import ConfigError, DataError
from tests.data._media import noise_frames, shared, write_frames

VIDEO = "Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2"
VID_ID = f"catch__{VIDEO}"


def _real() -> Path:
    return shared("jhmdb")


def test_real_video_frames_and_ids() -> None:
    for root in (_real(), _real() / "JHMDB"):
        ds = open_dataset("jhmdb", str(root))
        refs = ds.videos()
        assert [r.id for r in refs] == [VID_ID]
        assert refs[0].label == 0 and ds.classes() == ["catch"]
    video = ds.load(refs[0])
    assert video.frames.shape == (40, 240, 320, 3)
    assert refs[0].meta["n_frames"] == 40  # counted while listing (no image opened)
    assert video.frame_names[0] == "00001" and video.frame_names[-1] == "00040"


def test_real_joints_are_zero_based_and_aligned_with_the_puppet_mask() -> None:
    ds = JhmdbDataset(_real())
    ref = ds.videos()[0]
    joints, masks = ds.joints(ref), ds.masks(ref)
    assert joints.xy.shape == (40, 15, 2) and joints.xy.dtype == np.float32
    assert joints.names == list(JOINT_NAMES) and joints.names[:3] == ["neck", "belly", "face"]
    assert joints.frame_names == masks.frame_names == ds.load(ref).frame_names
    raw = loadmat(str(_real() / "JHMDB/joint_positions/catch" / VIDEO / "joint_positions.mat"))["pos_img"]
    np.testing.assert_allclose(joints.xy[7, 4], raw[:, 4, 7] - 1.0)  # frame 8, left shoulder, 1-based -> 0
    assert joints.visible.all()  # every joint of this clip lies inside the 320x240 frame
    # anatomy fixes the order: the face is above the neck, the neck above the belly (y grows downwards)
    assert (joints.xy[:, 2, 1] < joints.xy[:, 0, 1]).mean() > 0.9
    assert (joints.xy[:, 0, 1] < joints.xy[:, 1, 1]).mean() > 0.9
    # joints fall on the person: x/y not swapped, frames not shifted (PROVENANCE: 66.5% vs 11.8%)
    assert masks.labels.shape == (40, 240, 320) and set(np.unique(masks.labels)) == {0, 1}
    xi = np.clip(np.round(joints.xy[..., 0]).astype(int), 0, 319)
    yi = np.clip(np.round(joints.xy[..., 1]).astype(int), 0, 239)
    frame = np.arange(40)[:, None]
    assert masks.labels[frame, yi, xi].mean() > 0.6
    assert masks.labels[(frame + 20) % 40, yi, xi].mean() < 0.2


def _layout(tmp_path: Path, with_splits: bool = True) -> Path:
    """The real clip linked into a JHMDB folder, plus a synthetic 'wave' video and split files."""
    root = tmp_path / "JHMDB"
    for sub in ("Rename_Images", "joint_positions", "puppet_mask"):
        (root / sub / "catch").mkdir(parents=True)
        (root / sub / "catch" / VIDEO).symlink_to(_real() / "JHMDB" / sub / "catch" / VIDEO)
    write_frames(
        root / "Rename_Images" / "wave" / "w1", noise_frames(3, 12, 16), names=["00001", "00002", "00003"]
    )
    pos = np.ones((2, 15, 3)) * 5.0  # 1-based 5 -> 0-based 4
    pos[0, 3, 1] = 17.0  # x = 16 == W: outside
    pos[1, 4, 2] = 0.5  # y = -0.5: outside
    pos[0, 5, 0] = np.nan
    (root / "joint_positions" / "wave" / "w1").mkdir(parents=True)
    savemat(str(root / "joint_positions" / "wave" / "w1" / "joint_positions.mat"), {"pos_img": pos})
    if with_splits:
        splits = root / "splits"
        splits.mkdir()
        (splits / "catch_test_split1.txt").write_text(f"{VIDEO}.avi 2\nabsent_catch.avi 1\n")
        (splits / "wave_test_split1.txt").write_text("w1.avi 1 \n")
    return root


def test_splits_labels_and_missing_videos(tmp_path: Path) -> None:
    root = _layout(tmp_path)
    ds = JhmdbDataset(tmp_path)
    assert ds.classes() == ["catch", "wave"]
    assert [(r.id, r.label) for r in ds.videos()] == [(VID_ID, 0), ("wave__w1", 1)]
    test = JhmdbDataset(root, split="test1").videos()
    assert [r.id for r in test] == [VID_ID]
    with pytest.raises(DataError, match=r"lists 1 video\(s\) absent.*catch/absent_catch"):
        JhmdbDataset(root, split="train1").videos()
    with pytest.raises(DataError, match=r"catch_test_split2.txt is missing"):
        ds.split_videos("test2")
    with pytest.raises(ConfigError, match=r"unknown split 'val'"):
        JhmdbDataset(root, split="val")


def test_visibility_is_inside_the_frame(tmp_path: Path) -> None:
    ds = JhmdbDataset(_layout(tmp_path, with_splits=False))
    joints = ds.joints(ds.video("wave__w1"))
    assert joints.xy[0, 0].tolist() == [4.0, 4.0]
    expected = np.ones((3, 15), bool)
    expected[1, 3] = expected[2, 4] = expected[0, 5] = False
    np.testing.assert_array_equal(joints.visible, expected)
    with pytest.raises(DataError, match=r"no puppet_mask.mat"):
        ds.masks(ds.video("wave__w1"))


def test_annotation_errors(tmp_path: Path) -> None:
    root = _layout(tmp_path, with_splits=False)
    ds = JhmdbDataset(root)
    mat = root / "joint_positions" / "wave" / "w1" / "joint_positions.mat"
    savemat(str(mat), {"pos_img": np.ones((2, 15, 5))})
    with pytest.raises(DataError, match=r"joints for 5 frames but .* holds 3 frames"):
        ds.joints(ds.video("wave__w1"))
    savemat(str(mat), {"other": np.ones(3)})
    with pytest.raises(DataError, match=r"no 'pos_img' variable"):
        ds.joints(ds.video("wave__w1"))
    mat.write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"cannot read"):
        ds.joints(ds.video("wave__w1"))
    with pytest.raises(DataError, match=r"no Rename_Images"):
        JhmdbDataset(root / "joint_positions")
