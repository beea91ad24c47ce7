"""The LightningDataModule of trained probes: each sample is one video's cached features for *every*
(T, block) of a sweep, read from the store (local or remote) in DataLoader workers, plus its labels.

One pass over the data therefore feeds all heads of a sweep. A :class:`SampleBuilder` (one per head
family) says how a video's features are reduced (pooled for action recognition, kept per frame for dense
heads) and which labels it carries. Families whose per-video input is small (pooled vectors) are
*materialised*: the store is streamed once (with workers) and the training epochs read memory.

A user-facing error raised while reading a sample in a worker (a missing label file, a corrupt video) is
carried to the main process as a :class:`SampleError` and re-raised there as the same one-line dvx error,
not as PyTorch's multi-line worker traceback.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dvx import errors
from dvx.data.base import VideoDataset, VideoRef
from dvx.errors import DataError, DvxError
from dvx.probe.lightning.source import FeatureSource, Pair, pair_key
from dvx.store.group import RecipeGroup
from dvx.store.index import Commit


@dataclass(frozen=True)
class SampleError:
    """A dvx error raised while building a sample in a worker, carried to the main process."""

    kind: str
    message: str

    def exception(self) -> DvxError:
        cls = getattr(errors, self.kind, None)
        if isinstance(cls, type) and issubclass(cls, DvxError):
            try:
                return cls(self.message)
            except TypeError:  # e.g. CorruptVideoError(video_id, reason): keep the message, as DataError
                pass
        return DataError(self.message)


class SampleBuilder(ABC):
    """How one video becomes a sample (runs in DataLoader workers; must be picklable)."""

    @abstractmethod
    def features(self, x: np.ndarray, commit: Commit) -> torch.Tensor:
        """One (T, block) array ``(stored frames, C, h, w)`` float16 -> what the head reads."""

    @abstractmethod
    def labels(self, dataset: VideoDataset, ref: VideoRef, commit: Commit) -> dict[str, Any]:
        """The video's labels (tensors or numbers)."""

    @abstractmethod
    def collate(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        """Samples ``{"x": {pair_key: tensor}, **labels}`` -> a batch."""


def frame_positions(commit: Commit, stride: int, n_label_frames: int, video: str) -> list[list[int]]:
    """For each stored temporal index, the positions in the dataset's label arrays of the frames it covers.

    The extractor samples frames ``[::stride]`` (then caps them) and records ``time_map`` (stored index ->
    indices into the sampled frames), so sampled frame i is the dataset's frame ``i * stride``.
    """
    out = [[i * stride for i in group] for group in commit.time_map]
    last = max((p for group in out for p in group), default=-1)
    if last >= n_label_frames:
        raise DataError(
            f"video {video!r}: the cached features cover frame {last} but its labels have only "
            f"{n_label_frames} frame(s); the store and the data root disagree"
        )
    return out


class FeatureDataset(Dataset):
    """Videos of a dataset -> samples holding every pair's features (read in the calling process)."""

    def __init__(
        self,
        source: FeatureSource,
        dataset: VideoDataset,
        refs: Sequence[VideoRef],
        pairs: Sequence[Pair],
        builder: SampleBuilder,
    ) -> None:
        self.source = source
        self.dataset = dataset
        self.refs = list(refs)
        self.pairs = list(pairs)
        self.builder = builder
        self._group: tuple[int, RecipeGroup] | None = None

    def group(self) -> RecipeGroup:
        """The store, opened read-only once per process (a forked worker opens its own)."""
        if self._group is None or self._group[0] != os.getpid():
            self._group = (os.getpid(), self.source.open())
        return self._group[1]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_group": None}  # a spawned worker opens the store itself

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i: int) -> dict[str, Any] | SampleError:
        ref = self.refs[i]
        try:
            group = self.group()
            x = {}
            commit = None
            for t, block in self.pairs:
                commit = group.commit_for(ref.id, t, block)
                x[pair_key((t, block))] = self.builder.features(group.read(ref.id, t, block), commit)
            assert commit is not None
            return {"x": x, **self.builder.labels(self.dataset, ref, commit)}
        except DvxError as err:
            return SampleError(type(err).__name__, str(err))


class Collate:
    """Batches samples with the builder, or passes the first :class:`SampleError` on."""

    def __init__(self, builder: SampleBuilder) -> None:
        self.builder = builder

    def __call__(self, samples: list[dict[str, Any] | SampleError]) -> dict[str, Any] | SampleError:
        for s in samples:
            if isinstance(s, SampleError):
                return s
        try:
            return self.builder.collate(samples)  # type: ignore[arg-type]
        except DvxError as err:
            return SampleError(type(err).__name__, str(err))


class MemoryDataset(Dataset):
    """Materialised samples: a batch dict of tensors (first dim = sample) indexed per sample."""

    def __init__(self, batch: dict[str, Any]) -> None:
        self.batch = batch
        self.n = len(batch["y"])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": {k: v[i] for k, v in self.batch["x"].items()}, "y": self.batch["y"][i]}


class ShardSampler(Sampler[int]):
    """Evaluation under DDP: rank r reads samples r, r + world, ... (no padding, so none is scored twice)."""

    def __init__(self, n: int, rank: int, world: int) -> None:
        self.indices = list(range(rank, n, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class CacheDataModule(pl.LightningDataModule):
    """Train/test samples streamed from the feature store with ``num_workers`` workers.

    ``batch_size`` is the global batch (split evenly over DDP ranks). ``seed`` fixes the shuffling order,
    so a head sees the same batches whether it is trained alone or in a sweep.
    """

    def __init__(
        self,
        train: FeatureDataset,
        test: FeatureDataset,
        batch_size: int,
        num_workers: int = 0,
        seed: int = 0,
        materialize: bool = False,
    ) -> None:
        super().__init__()
        self.train_set: Dataset = train
        self.test_set: Dataset = test
        self.builder = train.builder
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.materialize = materialize
        self._materialized = False

    # ---- setup ---------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.materialize and not self._materialized:
            self.train_set = self._materialize(self.train_set)
            self.test_set = self._materialize(self.test_set)
            self._materialized = True

    def _materialize(self, ds: Dataset) -> MemoryDataset:
        loader = self._loader(ds, sampler=None, batch_size=max(1, self.batch_size), persistent=False)
        batches = [self.check(b) for b in loader]
        keys = batches[0]["x"].keys()
        return MemoryDataset(
            {
                "x": {k: torch.cat([b["x"][k] for b in batches]) for k in keys},
                "y": torch.cat([b["y"] for b in batches]),
            }
        )

    # ---- loaders -------------------------------------------------------------------------------------
    def _world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def per_device_batch(self) -> int:
        _, world = self._world()
        return max(1, self.batch_size // world)

    def _loader(
        self,
        ds: Dataset,
        sampler: Sampler | None,
        batch_size: int,
        drop_last: bool = False,
        persistent: bool = True,
    ) -> DataLoader:
        memory = isinstance(ds, MemoryDataset)
        workers = 0 if memory else self.num_workers  # materialised samples are already in memory
        return DataLoader(
            ds,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=workers,
            collate_fn=torch.utils.data.default_collate if memory else Collate(self.builder),
            persistent_workers=persistent and workers > 0,
            pin_memory=False,
            drop_last=drop_last,
        )

    def train_dataloader(self) -> DataLoader:
        rank, world = self._world()
        if world > 1:
            from torch.utils.data import DistributedSampler

            sampler: Sampler = DistributedSampler(
                self.train_set, num_replicas=world, rank=rank, shuffle=True, seed=self.seed
            )
        else:
            gen = torch.Generator().manual_seed(self.seed)
            sampler = torch.utils.data.RandomSampler(self.train_set, generator=gen)
        batch = self.per_device_batch()
        n = len(sampler)  # type: ignore[arg-type]
        if n < 2:
            raise DataError(f"a trained probe needs at least 2 training videos per device, got {n}")
        # a last batch of one sample would break the heads' BatchNorm: drop it (reshuffled every epoch)
        return self._loader(self.train_set, sampler, batch, drop_last=n % batch == 1)

    def test_dataloader(self) -> DataLoader:
        rank, world = self._world()
        sampler = ShardSampler(len(self.test_set), rank, world)  # type: ignore[arg-type]
        return self._loader(self.test_set, sampler, self.per_device_batch())

    # ---- errors from workers -------------------------------------------------------------------------
    @staticmethod
    def check(batch: Any) -> Any:
        if isinstance(batch, SampleError):
            raise batch.exception()
        return batch

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return self.check(batch)
