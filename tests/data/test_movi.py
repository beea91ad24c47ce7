from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dvx.data import open_dataset
from dvx.data.movi import MoviDataset
from dvx.errors import DataError
from tests.data._media import noise_frames, write_frames


def _export(root: Path, split: str, video: str, n: int = 3, size: tuple[int, int] = (12, 16), seed: int = 0,
            sixteen_bit: bool = False, depth: bool = True) -> dict[str, np.ndarray]:  # fmt: skip
    """Write one video in dvx's MOVi export layout; returns what was written."""
    base = root / split / video
    rgb = noise_frames(n, *size, seed=seed)
    write_frames(base / "rgb", rgb)
    rng = np.random.default_rng(seed + 100)
    seg = rng.integers(0, 7, (n, *size)).astype(np.int32)
    (base / "segmentations").mkdir(parents=True)
    for i, ids in enumerate(seg):
        img = Image.fromarray(ids.astype(np.uint16 if sixteen_bit else np.uint8))
        img.save(base / "segmentations" / f"{i:05d}.png")
    out = {"rgb": rgb, "seg": seg}
    if depth:
        dep = rng.uniform(1, 30, (n, *size)).astype(np.float32)
        dep[0, 0, 0] = np.nan
        (base / "depth").mkdir(parents=True)
        for i, d in enumerate(dep):
            np.save(base / "depth" / f"{i:05d}.npy", d if i else d[..., None])  # (H, W) or (H, W, 1)
        out["depth"] = dep
    return out


def test_export_is_read_back(tmp_path: Path) -> None:
    root = tmp_path / "movi_e"
    a = _export(root, "train", "00001", seed=1)
    b = _export(root, "train", "00000", seed=2, sixteen_bit=True)
    c = _export(root, "validation", "00000", seed=3, depth=False)
    for where in (root, tmp_path):
        ds = open_dataset("movi", str(where))
        assert [r.id for r in ds.videos()] == ["train__00000", "train__00001", "validation__00000"]
    ds = MoviDataset(root)
    for vid, data in (("train__00001", a), ("train__00000", b), ("validation__00000", c)):
        ref = ds.video(vid)
        video = ds.load(ref)
        np.testing.assert_array_equal(video.frames, data["rgb"])
        assert video.frame_names == ["00000", "00001", "00002"]
        inst = ds.instances(ref)
        assert inst.dtype == np.int32
        np.testing.assert_array_equal(inst, data["seg"])
        masks = ds.masks(ref)
        np.testing.assert_array_equal(masks.labels, data["seg"].astype(np.uint8))
        assert masks.frame_names == video.frame_names
    depth = ds.depth(ds.video("train__00001"))
    assert depth.dtype == np.float32 and depth.shape == (3, 12, 16)
    np.testing.assert_array_equal(depth, a["depth"])  # NaN compares equal in assert_array_equal
    with pytest.raises(DataError, match=r"no depth/ files"):
        ds.depth(ds.video("validation__00000"))


def test_splits_are_folders(tmp_path: Path) -> None:
    _export(tmp_path, "train", "00000")
    _export(tmp_path, "validation", "00007")
    assert [r.id for r in MoviDataset(tmp_path, split="validation").videos()] == ["validation__00007"]
    assert [r.id for r in MoviDataset(tmp_path).split_videos("train")] == ["train__00000"]
    with pytest.raises(DataError, match=r"no split 'test'.*present: train, validation"):
        MoviDataset(tmp_path, split="test")


def test_export_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no <split>/<video>/rgb/"):
        MoviDataset(tmp_path)
    _export(tmp_path, "train", "00000")
    ds = MoviDataset(tmp_path)
    ref = ds.videos()[0]
    (tmp_path / "train/00000/segmentations/00002.png").unlink()
    with pytest.raises(DataError, match=r"has 2 files, rgb/ has 3"):
        ds.instances(ref)
    Image.fromarray(np.full((12, 16), 300, np.uint16)).save(tmp_path / "train/00000/segmentations/00002.png")
    assert ds.instances(ref).max() == 300
    with pytest.raises(DataError, match=r"outside 0..254"):
        ds.masks(ref)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "train/00000/segmentations/00002.png")
    with pytest.raises(DataError, match=r"5x5"):
        ds.instances(ref)


def test_listing_counts_frames_and_leaves_an_empty_video_uncounted(tmp_path: Path) -> None:
    root = tmp_path / "movi_e"
    _export(root, "train", "00000", n=4)
    (root / "train" / "00001" / "rgb").mkdir(parents=True)  # no frames: load raises, no count is made up
    ds = MoviDataset(root)
    a, b = ds.videos()
    assert a.meta["n_frames"] == len(ds.load(a).frames) == 4 and "n_frames" not in b.meta


def test_movi_c_and_movi_e_exports_keep_their_own_features_in_one_store(tmp_path: Path) -> None:
    """Both variants number their videos alike: read as ``movi-c`` and ``movi-e`` they are two datasets of
    the store, so the second extraction computes its own features instead of finding the first's cached."""
    from dvx.config import ExtractConfig
    from dvx.extract.runner import run_extract
    from dvx.store import open_store

    for variant, seed in (("movi-c", 1), ("movi-e", 2)):
        _export(tmp_path / variant, "validation", "0", n=2, size=(28, 28), seed=seed)
    store = str(tmp_path / "store")
    logs: list[str] = []
    for variant in ("movi-c", "movi-e"):
        cfg = ExtractConfig(
            model="tiny-dinov2", dataset=variant, data_root=str(tmp_path / variant), store=store,
            timesteps=(0,), blocks=("norm",), progress=False,
        )  # fmt: skip
        run_extract(cfg, log=logs.append)
    assert any("movi-e/tiny-dinov2@" in m and "0 cached, 1 to compute" in m for m in logs), logs
    feats = {
        g.dataset: g.tensor("validation__0", 0, "norm") for g in open_store(store).groups(model="tiny-dinov2")
    }
    assert set(feats) == {"movi-c", "movi-e"} and not np.array_equal(feats["movi-c"], feats["movi-e"])
