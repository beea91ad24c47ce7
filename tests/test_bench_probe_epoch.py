"""bench_probe_epoch's backbone rows compute the features the extractor stores (same seeds, any model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dvx.config import ExtractConfig
from dvx.data.synthetic import SyntheticWorld
from dvx.extract.runner import run_extract
from dvx.store.root import FeatureStore
from tests.extract.backbone_checks import write_tiny_world


@pytest.mark.parametrize("model", ["tiny-sd"])  # an image model: per-frame seeds, not the clip scheme
def test_backbone_rows_equal_the_stored_features(tmp_path: Path, model: str) -> None:
    from benchmarks.bench_probe_epoch import BackboneDataset

    world = write_tiny_world(tmp_path / "world")
    cfg = ExtractConfig(
        model=model,
        dataset="synthetic",
        data_root=str(world),
        store=str(tmp_path / "s"),
        timesteps=(50,),
        blocks=("up.1",),
        resolution=(64, 64),
        progress=False,
    )
    run_extract(cfg, log=lambda _m: None)
    [group] = FeatureStore.open(str(tmp_path / "s"), mode="r").groups()
    ds = SyntheticWorld(world)
    refs = ds.videos()
    live = BackboneDataset(ds, refs, (50, "up.1"), None, cfg)  # type: ignore[arg-type]
    for ref in refs:
        x, commit = live.features(ref)
        np.testing.assert_array_equal(x, group.read(ref.id, 50, "up.1"))
        assert len(commit.frame_names) == x.shape[0]
