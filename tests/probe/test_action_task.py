"""Action recognition from the cache: learning works (colour-separable split), sweeps train side by side
with the same result as one head alone, records are reused or replaced, bad input is one clear error."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from dvx.config import ProbeConfig
from dvx.errors import CacheMissError, ConfigError, DataError
from dvx.probe.runner import run_probe
from tests.probe.heads_fixtures import dinov2_store, heads_config, pixel_world

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return pixel_world(tmp_path_factory)


def cfg(world: tuple[Path, str], results: Path, **kw: object) -> ProbeConfig:
    options = {"epochs": 60, "batch_size": 8, "lr": 3e-3, "num_workers": 0, **kw.pop("options", {})}  # type: ignore[dict-item]
    task = str(kw.pop("task", "synthetic-action"))
    return heads_config(world, results, task, options=options, **kw)  # type: ignore[arg-type]


def test_action_head_separates_a_colour_coded_world(world: tuple[Path, str], tmp_path: Path) -> None:
    [rec] = run_probe(cfg(world, tmp_path / "results"), log=lambda m: None)
    assert rec.metrics["top1"] > 0.9  # a trained head learns at all (pixel-patch features)
    assert rec.metrics["top5"] >= rec.metrics["top1"]
    assert rec.details["train_videos"] == 28 and rec.details["test_videos"] == 14 and rec.videos == 42
    assert rec.probe["train_split"] == "train" and rec.probe["test_split"] == "test"
    run = Path(rec.details["run_dir"])
    assert (run / "metrics.csv").is_file() and (run / "checkpoints" / "heads.ckpt").is_file()


@pytest.mark.slow
def test_done_when_colour_coded_split_above_90_percent_on_extracted_features(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """The issue's check on features the extraction runner wrote (tiny-dinov2 at its default 126x252)."""
    world, store = dinov2_store(tmp_path_factory)
    c = cfg((world, store), tmp_path, model="tiny-dinov2", blocks=("layer.3",), options={"num_workers": 1})
    [rec] = run_probe(c, log=lambda m: None)
    assert rec.model == "tiny-dinov2" and rec.metrics["top1"] > 0.9


def test_a_sweep_trains_heads_side_by_side_exactly_as_alone(world: tuple[Path, str], tmp_path: Path) -> None:
    opts = {"epochs": 5}
    sweep = run_probe(
        cfg(world, tmp_path / "a", timesteps=(0, 50), blocks=("layer.4", "layer.8"), options=opts),
        log=lambda m: None,
    )
    assert [(r.T, r.block) for r in sweep] == [
        (0, "layer.4"),
        (0, "layer.8"),
        (50, "layer.4"),
        (50, "layer.8"),
    ]
    assert {r.details["heads_side_by_side"] for r in sweep} == {4}
    [alone] = run_probe(cfg(world, tmp_path / "b", timesteps=(50,), blocks=("layer.8",), options=opts))
    assert alone.details["heads_side_by_side"] == 1
    assert alone.metrics == sweep[3].metrics
    assert alone.details["train_loss"] == pytest.approx(sweep[3].details["train_loss"], rel=1e-5)


def test_a_rerun_reuses_the_record_and_force_replaces_it(world: tuple[Path, str], tmp_path: Path) -> None:
    c = cfg(world, tmp_path / "r", options={"epochs": 2})
    [first] = run_probe(c, log=lambda m: None)
    logs: list[str] = []
    [again] = run_probe(c, log=logs.append)
    assert again == first and "1 cached result(s), 0 to compute" in logs[0]
    [forced] = run_probe(replace(c, force=True), log=lambda m: None)
    assert forced.created_at != first.created_at
    files = list((tmp_path / "r" / "synthetic-action").glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["created_at"] == forced.created_at
    [other] = run_probe(cfg(world, tmp_path / "r", options={"epochs": 3}), log=lambda m: None)
    assert other.probe["epochs"] == 3 and len(list((tmp_path / "r" / "synthetic-action").glob("*.json"))) == 2


def test_ucf_layout_split_files_and_their_errors(world: tuple[Path, str], tmp_path: Path) -> None:
    c = cfg(world, tmp_path / "u", task="ucf101", options={"epochs": 2})
    [rec] = run_probe(c, log=lambda m: None)
    assert (
        rec.dataset == "ucf101"
        and rec.probe["train_split"] == "train1"
        and rec.probe["test_split"] == "test1"
    )
    assert rec.details["train_videos"] == 28 and 0 <= rec.metrics["top1"] <= rec.metrics["top5"] <= 1
    with pytest.raises(ConfigError, match="names the training split"):
        run_probe(replace(c, split="test1"))
    # a split file naming a video that is absent from the data root
    root = tmp_path / "ucf"
    shutil.copytree(world[0] / "UCF-101", root / "UCF-101")
    shutil.copytree(world[0] / "ucfTrainTestlist", root / "ucfTrainTestlist")
    victim = next((root / "UCF-101").glob("*/*.avi"))
    victim.unlink()
    with pytest.raises(DataError, match=victim.name):
        run_probe(replace(c, data_root=str(root)))


def test_a_cache_without_the_asked_pair_is_a_cache_miss(world: tuple[Path, str], tmp_path: Path) -> None:
    with pytest.raises(CacheMissError, match="lacks T=100 block"):
        run_probe(cfg(world, tmp_path / "m", timesteps=(100,)))
    with pytest.raises(CacheMissError, match=r"lacks T=0 block.*up\.1"):
        run_probe(cfg(world, tmp_path / "m", blocks=("up.1",)))


def test_bad_options_are_config_errors(world: tuple[Path, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not take option.*--slots"):
        run_probe(cfg(world, tmp_path / "o", options={"slots": 3}))
    with pytest.raises(ConfigError, match="--epochs must be >= 1"):
        run_probe(cfg(world, tmp_path / "o", options={"epochs": 0}))
