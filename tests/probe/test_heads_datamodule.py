"""The probe datamodule: features of every (T, block) per sample, read in workers that open the store
themselves, errors carried out of workers as one-line dvx errors, exact sharding."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dvx.data.base import VideoDataset, VideoRef
from dvx.errors import CorruptVideoError, DataError
from dvx.probe.lightning.classification import PooledBuilder
from dvx.probe.lightning.datamodule import (
    CacheDataModule,
    Collate,
    FeatureDataset,
    ShardSampler,
    frame_positions,
)
from dvx.probe.lightning.source import FeatureSource, pair_key
from dvx.store.index import Commit
from dvx.store.recipe import Recipe
from dvx.store.root import FeatureStore
from dvx.store.writer import VideoWriter
from tests.conftest import ToyDataset

PAIRS = [(0, "up.1"), (50, "up.1"), (50, "up.2")]


def _commit(time_map: list[list[int]]) -> Commit:
    return Commit("v", "g", (0,), ("b",), ("0",), tuple(tuple(m) for m in time_map), (8, 8), {}, 0)


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, dict[tuple[str, tuple[int, str]], np.ndarray]]:
    recipe = Recipe("toy-model", "toy", "0" * 64, "float32", (8, 8), None)
    group = FeatureStore.open(str(tmp_path / "s"), mode="a").create_group("toy", recipe)
    rng = np.random.default_rng(0)
    data = {}
    for v in ("a", "b", "c", "d", "e"):
        vw = VideoWriter(group, v, (0, 50), ("up.1", "up.2"), chunk_frames=3)
        for t in (0, 50):
            for b, c in (("up.1", 4), ("up.2", 2)):
                x = rng.standard_normal((3, c, 2, 2)).astype(np.float16)
                data[(v, (t, b))] = x
                vw.write(t, b, 0, x, 3)
        vw.commit(["0", "1", "2"], [[0], [1], [2]], (8, 8))
    return str(tmp_path / "s"), data


def _dataset(tmp_path: Path) -> tuple[ToyDataset, list[VideoRef]]:
    (tmp_path / "toy").mkdir(exist_ok=True)
    refs = [VideoRef(v, tmp_path / "toy" / f"{v}.npy", label=i % 2) for i, v in enumerate("abcde")]
    return ToyDataset(tmp_path / "toy"), refs


def test_frame_positions_follow_the_stride_and_tubelets() -> None:
    assert frame_positions(_commit([[0], [1], [2]]), 2, 6, "v") == [[0], [2], [4]]
    assert frame_positions(_commit([[0, 1], [2, 3]]), 1, 4, "v") == [[0, 1], [2, 3]]
    with pytest.raises(DataError, match="cover frame 4 but its labels have only 4"):
        frame_positions(_commit([[0], [1], [2]]), 2, 4, "v")


def test_a_sample_holds_every_pair_and_workers_read_the_same(store: Any, tmp_path: Path) -> None:
    location, data = store
    group = FeatureStore.open(location, "r").groups()[0]
    source = FeatureSource.of(group)
    assert pickle.loads(pickle.dumps(source)) == source  # travels to workers
    assert hash(source) == hash(FeatureSource.of(group))  # a frozen dataclass of strings: hashable
    dataset, refs = _dataset(tmp_path)
    ds = FeatureDataset(source, dataset, refs, PAIRS, PooledBuilder())
    sample = ds[1]
    assert sample["y"] == 1 and set(sample["x"]) == {pair_key(p) for p in PAIRS}
    expect = torch.from_numpy(data[("b", (50, "up.2"))]).float().mean(dim=(0, 2, 3))
    assert torch.allclose(sample["x"]["t0050_up_2"], expect)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=Collate(ds.builder))
    batches = list(loader)
    got = torch.cat([b["x"]["t0000_up_1"] for b in batches])
    want = torch.stack(
        [torch.from_numpy(data[(v, (0, "up.1"))]).float().mean(dim=(0, 2, 3)) for v in "abcde"]
    )
    assert torch.allclose(got, want) and torch.cat([b["y"] for b in batches]).tolist() == [0, 1, 0, 1, 0]


class _Corrupt(PooledBuilder):
    def labels(self, dataset: VideoDataset, ref: VideoRef, commit: Commit) -> dict[str, Any]:
        if ref.id == "c":
            raise CorruptVideoError("c", "label file truncated")
        return super().labels(dataset, ref, commit)


def test_an_error_in_a_worker_reaches_the_main_process_as_one_line(store: Any, tmp_path: Path) -> None:
    location, _ = store
    source = FeatureSource.of(FeatureStore.open(location, "r").groups()[0])
    dataset, refs = _dataset(tmp_path)
    train = FeatureDataset(source, dataset, refs, PAIRS, _Corrupt())
    dm = CacheDataModule(train, train, batch_size=2, num_workers=2, materialize=True)
    with pytest.raises(DataError) as err:
        dm.setup("fit")
    assert str(err.value) == "video 'c' cannot be read: label file truncated"


def test_evaluation_shards_score_every_sample_once_and_training_keeps_batchnorm_fed(
    store: Any, tmp_path: Path
) -> None:
    shards = [list(ShardSampler(10, r, 3)) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(10))
    source = FeatureSource.of(FeatureStore.open(store[0], "r").groups()[0])
    dataset, refs = _dataset(tmp_path)
    ds = FeatureDataset(source, dataset, refs, PAIRS, PooledBuilder())
    dm = CacheDataModule(ds, ds, batch_size=4, seed=3)
    loader = dm.train_dataloader()
    assert loader.drop_last  # 5 = 4 + 1: a batch of one would break the heads' BatchNorm
    first = [b["y"].tolist() for b in loader]
    assert [len(b) for b in first] == [4]
    assert first == [b["y"].tolist() for b in CacheDataModule(ds, ds, 4, seed=3).train_dataloader()]
