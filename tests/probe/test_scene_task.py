"""Scene understanding from the cache: per-position MLP heads for semantic segmentation and depth, on the
synthetic world and through the Cityscapes reader (labelTrainIds, disparity -> depth); wrong feature
geometry and missing labels are one clear error before any training."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dvx.config import ProbeConfig
from dvx.data.synthetic import SyntheticWorld
from dvx.errors import ConfigError, DataError
from dvx.probe.runner import run_probe
from tests.probe.heads_fixtures import heads_config, pixel_world

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return pixel_world(tmp_path_factory)


def cfg(world: tuple[Path, str], results: Path, task: str, **kw: object) -> ProbeConfig:
    options = {"epochs": 2, "batch_size": 8, "num_workers": 0, **kw.pop("options", {})}  # type: ignore[dict-item]
    return heads_config(world, results, task, options=options, **kw)  # type: ignore[arg-type]


def test_segmentation_sweep_streams_from_workers(world: tuple[Path, str], tmp_path: Path) -> None:
    c = cfg(world, tmp_path, "synthetic-seg", blocks=("layer.4", "layer.8"), options={"num_workers": 2})
    recs = run_probe(c, log=lambda m: None)
    assert [r.block for r in recs] == ["layer.4", "layer.8"]
    classes = SyntheticWorld(world[0]).world["semantic_classes"]
    for r in recs:
        assert 0.0 <= r.metrics["mIoU"] <= 1.0 and list(r.details["IoU"]) == classes
        present = [v for v in r.details["IoU"].values() if v is not None]
        assert r.metrics["mIoU"] == pytest.approx(sum(present) / len(present), abs=1e-5)
        assert r.details["heads_side_by_side"] == 2 and 0.0 <= r.details["data_wait_fraction"] <= 1.0


def test_a_sweep_too_big_for_one_batch_is_split_into_passes_with_the_same_results(
    world: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = cfg(world, tmp_path / "one", "synthetic-depth", blocks=("layer.4", "layer.8"))
    together = run_probe(c, log=lambda m: None)
    monkeypatch.setattr("dvx.probe.tasks.trained.PASS_BATCH_BYTES", 1)
    logs: list[str] = []
    apart = run_probe(replace(c, results=str(tmp_path / "two")), log=logs.append)
    assert any("pass 2/2" in m for m in logs)
    assert [r.details["heads_side_by_side"] for r in together] == [2, 2]
    assert [r.details["heads_side_by_side"] for r in apart] == [1, 1]
    for a, b in zip(together, apart, strict=True):
        assert a.metrics == pytest.approx(b.metrics, rel=1e-5)


def test_depth_head_reports_mean_error_and_rmse(world: tuple[Path, str], tmp_path: Path) -> None:
    [rec] = run_probe(cfg(world, tmp_path, "synthetic-depth"), log=lambda m: None)
    assert set(rec.metrics) == {"depth_mErr", "depth_RMSE"}
    assert 0 < rec.metrics["depth_mErr"] <= rec.metrics["depth_RMSE"] < 20  # depths lie in [3, 20]


def test_cityscapes_layout_train_on_train_score_on_val(world: tuple[Path, str], tmp_path: Path) -> None:
    [seg] = run_probe(cfg(world, tmp_path, "cityscapes-seg"), log=lambda m: None)
    assert seg.dataset == "cityscapes" and (seg.probe["train_split"], seg.probe["test_split"]) == (
        "train",
        "val",
    )
    assert seg.details["train_videos"] == 28 and seg.details["test_videos"] == 14
    assert len(seg.details["IoU"]) == 19  # the 19 Cityscapes train classes
    assert seg.details["IoU"]["bicycle"] is None  # absent from the labels and predictions: left out
    assert not math.isnan(seg.metrics["mIoU"])
    [depth] = run_probe(cfg(world, tmp_path, "cityscapes-depth"), log=lambda m: None)
    assert 0 < depth.metrics["depth_mErr"] < 20  # metres, from disparity and the camera files


def test_a_dense_head_refuses_features_without_a_spatial_map(world: tuple[Path, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        run_probe(cfg(world, tmp_path, "synthetic-seg", blocks=("layer.8", "layer.64")))
    msg = str(err.value)
    assert "block 'layer.64' at T=0 has 24x1x1" in msg and "\n" not in msg
    assert not (tmp_path / "synthetic-seg").exists()  # nothing trained, nothing recorded


def test_missing_labels_fail_before_training(world: tuple[Path, str], tmp_path: Path) -> None:
    root = tmp_path / "cs"
    shutil.copytree(world[0] / "cityscapes", root / "cityscapes", ignore=shutil.ignore_patterns("gtFine"))
    with pytest.raises(DataError, match="no gtFine label"):
        run_probe(cfg(world, tmp_path, "cityscapes-seg", data_root=str(root)))
    shutil.copytree(world[0] / "cityscapes" / "gtFine", root / "cityscapes" / "gtFine")
    shutil.rmtree(root / "cityscapes" / "disparity")
    with pytest.raises(DataError, match="no disparity map"):
        run_probe(cfg(world, tmp_path, "cityscapes-depth", data_root=str(root)))


@pytest.mark.slow
def test_segmentation_head_learns_beyond_all_background(world: tuple[Path, str], tmp_path: Path) -> None:
    ds = SyntheticWorld(world[0])
    sem = np.concatenate([ds.semantic(r).reshape(-1) for r in ds.split_videos("test")])
    all_background = float((sem == 0).mean()) / len(np.unique(sem))  # its IoU is 0 for every sprite class
    c = cfg(
        world,
        tmp_path,
        "synthetic-seg",
        blocks=("layer.4",),
        options={"epochs": 50, "lr": 1e-2, "batch_size": 4},
    )
    [rec] = run_probe(c, log=lambda m: None)
    assert rec.metrics["mIoU"] > all_background + 0.05
