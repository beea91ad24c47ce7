from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dvx.data import open_dataset
from dvx.data.actions import Hmdb51Dataset, Ucf101Dataset
from dvx.errors import ConfigError, CorruptVideoError, DataError
from tests.data._media import (
    copy,
    flat_frames,
    noise_frames,
    packet_offsets,
    shared,
    truncate_copy,
    write_video,
)

DEMO = ("action_clips", "demo", "demo.mp4")
NTU = ("action_clips", "tools", "data", "skeleton", "S001C001P001R001A001_rgb.avi")


def _ucf(tmp_path: Path) -> Path:
    root = tmp_path / "UCF101"
    vids = root / "UCF-101"
    copy(shared(*DEMO), vids / "ArmWrestling" / "v_ArmWrestling_g01_c01.mp4")
    copy(shared(*NTU), vids / "DrinkWater" / "v_DrinkWater_g01_c01.avi")
    write_video(vids / "JumpRope" / "v_JumpRope_g01_c01.avi", noise_frames(8), codec="mpeg4")
    write_video(vids / "JumpingJack" / "v_JumpingJack_g02_c01.mp4", flat_frames(5), fps=25)
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ArmWrestling\r\n2 DrinkWater\r\n3 JumpingJack\r\n4 JumpRope\r\n")
    (lists / "trainlist01.txt").write_text(
        "ArmWrestling/v_ArmWrestling_g01_c01.mp4 1\nJumpRope/v_JumpRope_g01_c01.avi 4\n"
    )
    (lists / "testlist01.txt").write_text(
        "DrinkWater/v_DrinkWater_g01_c01.avi\nJumpingJack/v_JumpingJack_g02_c01.mp4\n"
    )
    (lists / "trainlist02.txt").write_text(
        "JumpRope/v_JumpRope_g09_c01.avi 4\nJumpRope/v_JumpRope_g01_c01.avi 4\n"
    )
    (lists / "testlist03.txt").write_text("JumpRope/v_JumpRope_g01_c01.avi 2\n")  # wrong label
    return root


def test_ucf101_lists_every_video_with_official_labels(tmp_path: Path) -> None:
    root = _ucf(tmp_path)
    for where in (root, tmp_path, root / "UCF-101"):
        ds = open_dataset("ucf101", str(where))
        assert ds.classes() == ["ArmWrestling", "DrinkWater", "JumpingJack", "JumpRope"]
        refs = ds.videos()
        assert [(r.id, r.label) for r in refs] == [
            ("v_ArmWrestling_g01_c01", 0),
            ("v_DrinkWater_g01_c01", 1),
            ("v_JumpRope_g01_c01", 3),
            ("v_JumpingJack_g02_c01", 2),
        ]


def test_ucf101_splits(tmp_path: Path) -> None:
    root = _ucf(tmp_path)
    train = Ucf101Dataset(root, split="train1").videos()
    assert [(r.id, r.label) for r in train] == [("v_ArmWrestling_g01_c01", 0), ("v_JumpRope_g01_c01", 3)]
    test = Ucf101Dataset(root).split_videos("test1")
    assert [r.id for r in test] == ["v_DrinkWater_g01_c01", "v_JumpingJack_g02_c01"]
    with pytest.raises(DataError, match=r"'train2' lists 1 video\(s\) absent.*v_JumpRope_g09_c01"):
        Ucf101Dataset(root, split="train2").videos()
    with pytest.raises(DataError, match=r"labels 'JumpRope/v_JumpRope_g01_c01.avi' as 2.*index 4"):
        Ucf101Dataset(root).split_videos("test3")
    with pytest.raises(DataError, match=r"testlist02.txt is missing"):
        Ucf101Dataset(root).split_videos("test2")
    with pytest.raises(ConfigError, match=r"unknown split 'train4'"):
        Ucf101Dataset(root, split="train4")


def test_ucf101_without_split_files_sorts_classes_like_class_ind(tmp_path: Path) -> None:
    root = _ucf(tmp_path)
    for f in (root / "ucfTrainTestlist").iterdir():
        f.unlink()
    (root / "ucfTrainTestlist").rmdir()
    ds = Ucf101Dataset(root)
    assert ds.splits_dir is None
    assert ds.classes() == ["ArmWrestling", "DrinkWater", "JumpingJack", "JumpRope"]  # case-insensitive
    with pytest.raises(DataError, match=r"no ucfTrainTestlist/"):
        ds.split_videos("train1")


def test_ucf101_decodes_videos(tmp_path: Path) -> None:
    ds = Ucf101Dataset(_ucf(tmp_path))
    demo = ds.load(ds.video("v_ArmWrestling_g01_c01"))
    assert demo.frames.shape == (280, 256, 340, 3) and demo.fps == pytest.approx(28.0)
    assert demo.frame_names[:2] == ["00000", "00001"] and demo.id == "v_ArmWrestling_g01_c01"
    jack = ds.load(ds.video("v_JumpingJack_g02_c01"))
    assert jack.frames.shape == (5, 48, 64, 3) and jack.fps == pytest.approx(25.0)
    np.testing.assert_allclose(jack.frames[4].reshape(-1, 3).mean(0), flat_frames(5)[4, 0, 0], atol=6)


def test_ucf101_truncated_video_is_corrupt(tmp_path: Path) -> None:
    root = _ucf(tmp_path)
    path = root / "UCF-101" / "JumpRope" / "v_JumpRope_g01_c01.avi"
    truncate_copy(path, path, packet_offsets(path)[3])
    ds = Ucf101Dataset(root)
    ref = ds.video("v_JumpRope_g01_c01")  # listing never decodes
    with pytest.raises(CorruptVideoError, match=r"'v_JumpRope_g01_c01'.*3 of the 8 frames"):
        ds.load(ref)


def test_ucf101_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"ucf101: no UCF-101/<Class>/"):
        Ucf101Dataset(tmp_path)
    root = _ucf(tmp_path)
    (root / "ucfTrainTestlist" / "classInd.txt").write_text("1 ArmWrestling\n")
    with pytest.raises(DataError, match=r"class folder 'DrinkWater' is not in the official class list"):
        Ucf101Dataset(root).videos()
    (root / "ucfTrainTestlist" / "classInd.txt").write_text("0 ArmWrestling\n")
    with pytest.raises(DataError, match=r"expected '1 <ClassName>'"):
        Ucf101Dataset(root).classes()


# ---- HMDB51 ---------------------------------------------------------------------------------------
def _hmdb(tmp_path: Path) -> Path:
    vids = tmp_path / "hmdb51_org"
    copy(shared(*DEMO), vids / "wave" / "arm_wave_f_cm_np1_fr_med_0.avi")
    copy(shared(*NTU), vids / "drink" / "Drinking_(water)!_drink_u_nm_np1_fr_goo_1.avi")
    write_video(vids / "catch" / "Goal_catch_f_cm_np1_fr_med_2.avi", noise_frames(6), codec="mpeg4")
    write_video(vids / "catch" / "Other_catch_f_cm_np1_ba_bad_0.avi", noise_frames(4, seed=1), codec="mpeg4")
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    (splits / "catch_test_split1.txt").write_text(
        "Goal_catch_f_cm_np1_fr_med_2.avi 1 \nOther_catch_f_cm_np1_ba_bad_0.avi 0 \n"
    )
    (splits / "drink_test_split1.txt").write_text("Drinking_(water)!_drink_u_nm_np1_fr_goo_1.avi 2 \n")
    (splits / "wave_test_split1.txt").write_text("arm_wave_f_cm_np1_fr_med_0.avi 2 \n")
    (splits / "catch_test_split2.txt").write_text("Missing_catch_f_cm_np1_fr_med_9.avi 2 \n")
    (splits / "drink_test_split2.txt").write_text("")
    (splits / "wave_test_split2.txt").write_text("")
    return tmp_path


def test_hmdb51_listing_ids_and_labels(tmp_path: Path) -> None:
    root = _hmdb(tmp_path)
    for where in (root, root / "hmdb51_org"):
        ds = open_dataset("hmdb51", str(where))
        assert ds.classes() == ["catch", "drink", "wave"]
        assert [(r.id, r.label) for r in ds.videos()] == [
            ("catch__Goal_catch_f_cm_np1_fr_med_2", 0),
            ("catch__Other_catch_f_cm_np1_ba_bad_0", 0),
            ("drink__Drinking___water___drink_u_nm_np1_fr_goo_1", 1),  # store-safe id
            ("wave__arm_wave_f_cm_np1_fr_med_0", 2),
        ]


def test_hmdb51_splits(tmp_path: Path) -> None:
    root = _hmdb(tmp_path)
    train = Hmdb51Dataset(root, split="train1").videos()
    assert [r.id for r in train] == ["catch__Goal_catch_f_cm_np1_fr_med_2"]  # 0 = unused is left out
    test = Hmdb51Dataset(root, split="test1").videos()
    assert [(r.id, r.label) for r in test] == [
        ("drink__Drinking___water___drink_u_nm_np1_fr_goo_1", 1),
        ("wave__arm_wave_f_cm_np1_fr_med_0", 2),
    ]
    assert test[0].path.name == "Drinking_(water)!_drink_u_nm_np1_fr_goo_1.avi"
    with pytest.raises(DataError, match=r"catch/Missing_catch_f_cm_np1_fr_med_9.avi"):
        Hmdb51Dataset(root, split="test2").videos()
    with pytest.raises(DataError, match=r"catch_test_split3.txt is missing"):
        Hmdb51Dataset(root).split_videos("train3")


def test_hmdb51_decodes_and_refuses_truncated(tmp_path: Path) -> None:
    ds = Hmdb51Dataset(_hmdb(tmp_path))
    video = ds.load(ds.video("catch__Goal_catch_f_cm_np1_fr_med_2"))
    assert video.frames.shape == (6, 48, 64, 3) and len(video.frame_names) == 6
    path = tmp_path / "hmdb51_org" / "catch" / "Other_catch_f_cm_np1_ba_bad_0.avi"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CorruptVideoError, match=r"catch__Other"):
        ds.load(ds.video("catch__Other_catch_f_cm_np1_ba_bad_0"))
