from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dvx.data import open_dataset
from dvx.data.cityscapes import (
    DEFAULT_BASELINE_M,
    DEFAULT_FX_PX,
    LABEL_TO_TRAIN_ID,
    CityscapesDataset,
    disparity_to_depth,
    label_ids_to_train_ids,
)
from dvx.errors import CorruptVideoError, DataError
from tests.data._media import shared

NAME = "frankfurt_000000_000294"


def _pseudo() -> Path:
    return shared("cityscapes", "tests", "data", "pseudo_cityscapes_dataset")


def _gt(kind: str) -> np.ndarray:
    return np.asarray(Image.open(_pseudo() / "gtFine/val/frankfurt" / f"{NAME}_gtFine_{kind}.png"))


def test_real_frame_as_a_one_frame_video() -> None:
    for root in (_pseudo(), _pseudo().parent):  # dataset folder or its parent
        ds = open_dataset("cityscapes", str(root))
        refs = ds.videos()
        assert [r.id for r in refs] == [NAME] and refs[0].meta["split"] == "val"
    video = ds.load(refs[0])
    assert video.frames.shape == (1, 128, 256, 3) and video.frame_names == [NAME]
    assert refs[0].meta["n_frames"] == 1
    semantic = ds.semantic(refs[0])
    assert semantic.shape == (1, 128, 256) and semantic.dtype == np.uint8
    np.testing.assert_array_equal(semantic[0], _gt("labelTrainIds"))


def _assert_like_shipped_train_ids(train: np.ndarray) -> None:
    """The fixture's labelIds and labelTrainIds PNGs were downscaled (2048 -> 256 px) independently by
    mmsegmentation, so 77 of 32768 pixels disagree, all within 2 px of a label boundary. Mapping labelIds
    must reproduce labelTrainIds exactly everywhere else."""
    from scipy.ndimage import maximum_filter, minimum_filter

    shipped, labels = _gt("labelTrainIds"), _gt("labelIds")
    boundary = maximum_filter(labels, size=5) != minimum_filter(labels, size=5)
    np.testing.assert_array_equal(train[~boundary], shipped[~boundary])
    assert (train != shipped).sum() <= 77


def test_label_ids_map_to_the_shipped_train_ids(tmp_path: Path) -> None:
    _assert_like_shipped_train_ids(label_ids_to_train_ids(_gt("labelIds")))
    # and through the reader, on a copy of the layout without the labelTrainIds PNG
    root = tmp_path / "cityscapes"
    (root / "leftImg8bit/val").mkdir(parents=True)
    (root / "leftImg8bit/val/frankfurt").symlink_to(_pseudo() / "leftImg8bit/val/frankfurt")
    gt = root / "gtFine/val/frankfurt"
    gt.mkdir(parents=True)
    for kind in ("labelIds", "instanceIds"):
        name = f"{NAME}_gtFine_{kind}.png"
        (gt / name).symlink_to(_pseudo() / "gtFine/val/frankfurt" / name)
    ds = CityscapesDataset(tmp_path, split="val")
    _assert_like_shipped_train_ids(ds.semantic(ds.videos()[0])[0])


def test_official_table() -> None:
    assert len(LABEL_TO_TRAIN_ID) == 19 and sorted(LABEL_TO_TRAIN_ID.values()) == list(range(19))
    ids = np.arange(256, dtype=np.uint8)
    train = label_ids_to_train_ids(ids)
    assert train[7] == 0 and train[26] == 13 and train[33] == 18
    assert (train[[0, 1, 4, 6, 9, 10, 14, 15, 16, 18, 29, 30, 34, 255]] == 255).all()


def test_instances_keep_instance_ids_and_zero_the_rest() -> None:
    ds = CityscapesDataset(_pseudo())
    inst = ds.instances(ds.videos()[0])
    raw = _gt("instanceIds").astype(np.int64)
    assert inst.shape == (1, 128, 256) and inst.dtype == np.int32
    np.testing.assert_array_equal(inst[0], np.where(raw >= 1000, raw, 0))
    assert set(np.unique(inst)) == {0, 24000, 24001, 24002, 24003, 26000, 26001, 26002}


def test_depth_needs_disparity() -> None:
    ds = CityscapesDataset(_pseudo())
    with pytest.raises(DataError, match=r"no disparity map"):
        ds.depth(ds.videos()[0])


def _synthetic(tmp_path: Path, camera: dict | None) -> CityscapesDataset:
    root = tmp_path / "cs"
    img = root / "leftImg8bit/train/bonn/bonn_000001_000019_leftImg8bit.png"
    img.parent.mkdir(parents=True)
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(img)
    disp = root / "disparity/train/bonn/bonn_000001_000019_disparity.png"
    disp.parent.mkdir(parents=True)
    raw = np.array([[0, 1, 257], [513, 2561, 40000]], dtype=np.uint16)
    Image.fromarray(raw).save(disp)  # 16-bit PNG
    if camera is not None:
        cam = root / "camera/train/bonn/bonn_000001_000019_camera.json"
        cam.parent.mkdir(parents=True)
        cam.write_text(json.dumps(camera))
    return CityscapesDataset(root)


def test_depth_from_disparity_and_camera(tmp_path: Path) -> None:
    ds = _synthetic(tmp_path, {"extrinsic": {"baseline": 0.2}, "intrinsic": {"fx": 2000.0}})
    depth = ds.depth(ds.videos()[0])
    assert depth.shape == (1, 2, 3) and depth.dtype == np.float32
    # p=0 invalid, p=1 -> d=0 invalid; p=257 -> d=1 -> 400 m; p=513 -> d=2 -> 200 m; p=2561 -> d=10 -> 40 m
    assert np.isnan(depth[0, 0, :2]).all()
    np.testing.assert_allclose(depth[0, 0, 2], 400.0)
    np.testing.assert_allclose(depth[0, 1, :2], [200.0, 40.0])
    np.testing.assert_allclose(depth[0, 1, 2], 0.2 * 2000 / ((40000 - 1) / 256), rtol=1e-6)


def test_depth_defaults_without_camera_file(tmp_path: Path) -> None:
    ds = _synthetic(tmp_path, None)
    assert ds.camera(ds.videos()[0]) == (DEFAULT_BASELINE_M, DEFAULT_FX_PX)
    depth = ds.depth(ds.videos()[0])
    np.testing.assert_allclose(depth[0, 0, 2], DEFAULT_BASELINE_M * DEFAULT_FX_PX, rtol=1e-6)
    np.testing.assert_array_equal(
        np.isnan(disparity_to_depth(np.array([0, 1, 2]), 1.0, 1.0)), [True, True, False]
    )
    with pytest.raises(DataError, match=r"no gtFine label"):
        ds.semantic(ds.videos()[0])
    with pytest.raises(DataError, match=r"no instance map"):
        ds.instances(ds.videos()[0])


def test_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no leftImg8bit"):
        CityscapesDataset(tmp_path)
    with pytest.raises(DataError, match=r"no split 'test'.*present: val"):
        CityscapesDataset(_pseudo(), split="test")


# ---- video models: the leftImg8bit_sequence snippets -------------------------------------------------------
def write_sequence_layout(tmp_path: Path) -> Path:
    """The real annotated image with a 30-frame ``leftImg8bit_sequence`` snippet around it: snippet frame i
    (number 275 + i) is the image shifted right by i - 19 pixels, so frame 19 (number 294) is the image."""
    root = tmp_path / "cityscapes"
    for sub in ("leftImg8bit/val", "gtFine/val"):
        (root / sub).mkdir(parents=True)
        (root / sub / "frankfurt").symlink_to(_pseudo() / sub / "frankfurt")
    image = np.asarray(Image.open(_pseudo() / "leftImg8bit/val/frankfurt" / f"{NAME}_leftImg8bit.png"))
    seq = root / "leftImg8bit_sequence/val/frankfurt"
    seq.mkdir(parents=True)
    for i in range(30):
        Image.fromarray(np.roll(image, i - 19, axis=1)).save(
            seq / f"frankfurt_000000_{275 + i:06d}_leftImg8bit.png"
        )
    return root


def test_video_models_read_the_snippet_around_the_annotated_frame(tmp_path: Path) -> None:
    from dvx.data.cityscapes import snippet_window

    root = write_sequence_layout(tmp_path)
    still = CityscapesDataset(root)
    ds, note = still.for_video_model(14)
    assert (
        note["source"] == "leftImg8bit_sequence"
        and note["clip_frames"] == 14
        and note["annotated_index"] == 7
    )
    [ref] = ds.videos()
    assert ref.meta["store_frames"] == (NAME,) and ref.meta["n_frames"] == 14
    video = ds.load(ref)
    assert video.frame_names == [f"frankfurt_000000_{n:06d}" for n in range(287, 301)]
    np.testing.assert_array_equal(video.frames[7], still.load(still.videos()[0]).frames[0])
    assert not np.array_equal(video.frames[6], video.frames[7])  # real motion around it
    # clips: centred and clamped to the snippet; longer clips see the whole snippet
    assert snippet_window(16) == (11, 16) and snippet_window(1) == (19, 1)
    assert snippet_window(29) == (1, 29) and snippet_window(81) == (0, 30)
    # the labels are those of the annotated frame, as for image models
    np.testing.assert_array_equal(ds.semantic(ref), still.semantic(still.videos()[0]))
    (root / "leftImg8bit_sequence/val/frankfurt/frankfurt_000000_000290_leftImg8bit.png").unlink()
    with pytest.raises(CorruptVideoError, match=r"1 of its 14 leftImg8bit_sequence frames are missing"):
        ds.load(ref)


def test_without_sequences_video_models_get_the_static_repeat_and_say_so() -> None:
    ds = CityscapesDataset(_pseudo())
    same, note = ds.for_video_model(14)
    assert same is ds and note["source"] == "static" and "repeated" in str(note["rule"])
