"""Object discovery from the cache: slot attention trained by feature reconstruction on the synthetic
world and through the MOVi export reader; FG-ARI and mBO per record."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvx.config import ProbeConfig
from dvx.probe.runner import run_probe
from tests.probe.heads_fixtures import heads_config, pixel_world

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return pixel_world(tmp_path_factory)


def cfg(world: tuple[Path, str], results: Path, task: str, **kw: object) -> ProbeConfig:
    options = {"epochs": 2, "batch_size": 8, "num_workers": 0, **kw.pop("options", {})}  # type: ignore[dict-item]
    return heads_config(world, results, task, options=options, **kw)  # type: ignore[arg-type]


def test_synthetic_discovery_reports_fg_ari_and_mbo(world: tuple[Path, str], tmp_path: Path) -> None:
    [rec] = run_probe(cfg(world, tmp_path, "synthetic-discovery", options={"slots": 3}), log=lambda m: None)
    assert -1.0 <= rec.metrics["FG_ARI"] <= 1.0 and 0.0 < rec.metrics["mBO"] <= 1.0
    assert rec.probe["slots"] == 3 and rec.probe["iterations"] == 3
    assert rec.details["train_loss"] > 0 and rec.details["head_parameters"] > 0


def test_movi_export_default_slots_and_splits(world: tuple[Path, str], tmp_path: Path) -> None:
    [rec] = run_probe(cfg(world, tmp_path, "movi-e", options={"epochs": 1}), log=lambda m: None)
    assert rec.dataset == "movi-e" and rec.probe["slots"] == 24  # MOVi-E default
    assert (rec.probe["train_split"], rec.probe["test_split"]) == ("train", "validation")
    assert rec.details["test_videos"] == 14 and 0.0 < rec.metrics["mBO"] <= 1.0
