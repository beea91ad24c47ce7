"""What the trained-head tasks share: options, train/test splits, up-front checks (labels, feature
geometry), planning a sweep into passes, and one Lightning fit + test per pass.

Torch and Lightning are imported inside :meth:`TrainedTask.run` only, so listing tasks or rendering a
report never loads them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dvx.config import ProbeConfig
from dvx.data import open_dataset
from dvx.data.base import VideoRef
from dvx.errors import ConfigError, DataError, StoreError
from dvx.probe.results import ResultRecord, results_dir
from dvx.probe.task import ProbeContext, Task

if TYPE_CHECKING:
    from dvx.probe.lightning.datamodule import SampleBuilder
    from dvx.probe.lightning.sweep import SweepModule

Pair = tuple[int, str]

#: (training split, evaluation split) per dataset reader; ``--split`` names the training split
DEFAULT_SPLITS: dict[str, tuple[str, str]] = {
    "ucf101": ("train1", "test1"),
    "hmdb51": ("train1", "test1"),
    "synthetic": ("train", "test"),
    "cityscapes": ("train", "val"),
    "movi": ("train", "validation"),
}
#: per-batch bytes of cached features one pass may hold; a sweep needing more is split into passes
PASS_BATCH_BYTES = 1 << 30
WEIGHT_DECAY = 1e-4


def eval_split(dataset: str, train: str) -> str:
    """The evaluation split that goes with training split ``train`` (e.g. train2 -> test2)."""
    if dataset in ("ucf101", "hmdb51"):
        if not (train.startswith("train") and train[5:].isdigit()):
            raise ConfigError(f"--split for {dataset} names the training split (train1, train2, train3)")
        return "test" + train[5:]
    default = DEFAULT_SPLITS.get(dataset)
    if default is None:
        raise ConfigError(f"trained probes do not know the train/test splits of dataset {dataset!r}")
    if train != default[0]:
        raise ConfigError(
            f"--split for {dataset} names the training split ({default[0]!r}; the probe is scored on "
            f"{default[1]!r}), got {train!r}"
        )
    return default[1]


def default_workers() -> int:
    return max(0, min(4, (os.cpu_count() or 1) - 1))


class TrainedTask(Task):
    """A probe that trains a light head per (T, block) on the training split and scores the test split."""

    option_names: ClassVar[frozenset[str]] = frozenset(
        {"epochs", "lr", "batch_size", "devices", "strategy", "num_workers"}
    )
    #: default epochs, learning rate and (global) batch size
    defaults: ClassVar[dict[str, Any]] = {"epochs": 20, "lr": 1e-3, "batch_size": 8}
    #: the metrics of a record (the first is ``main_metric``)
    metric_names: ClassVar[tuple[str, ...]] = ()
    #: True when the head needs a spatial feature map (h, w >= 2)
    dense: ClassVar[bool] = True
    #: True when a sample is small enough to stream the store once and train from memory
    materialize: ClassVar[bool] = False

    def __init__(self, name: str, cfg: ProbeConfig) -> None:
        super().__init__(name, cfg)
        from dvx.probe import TASKS

        self.dataset_name = cfg.dataset or TASKS.entry(name).options["dataset"]
        for opt in ("epochs", "batch_size", "num_workers"):
            value = cfg.option(opt)
            if value is not None and (value < 1 if opt != "num_workers" else value < 0):
                raise ConfigError(f"--{opt.replace('_', '-')} must be >= {0 if opt == 'num_workers' else 1}")
        if cfg.option("lr") is not None and not cfg.option("lr") > 0:
            raise ConfigError("--lr must be > 0")
        from dvx.probe.lightning.devices import accelerator_for, parse_devices

        parse_devices(cfg.option("devices"))
        accelerator_for(cfg.device)
        self._refs: tuple[list[VideoRef], list[VideoRef]] | None = None

    # ---- settings ------------------------------------------------------------------------------------
    def hp(self, name: str) -> Any:
        return self.cfg.option(name, self.defaults[name])

    def splits(self) -> tuple[str, str]:
        if self.cfg.split is None:
            default = DEFAULT_SPLITS.get(self.dataset_name)
            if default is None:
                raise ConfigError(
                    f"task {self.name!r} does not know the train/test splits of dataset {self.dataset_name!r}"
                )
            return default
        return self.cfg.split, eval_split(self.dataset_name, self.cfg.split)

    @abstractmethod
    def head_settings(self) -> dict[str, Any]:
        """The head's own settings (architecture, family knobs) recorded in every record."""

    def settings(self) -> dict[str, Any]:
        train, test = self.splits()
        return {
            **self.head_settings(),
            "epochs": int(self.hp("epochs")),
            "lr": float(self.hp("lr")),
            "batch_size": int(self.hp("batch_size")),
            "optimizer": f"AdamW(weight_decay={self.weight_decay()}), cosine schedule",
            "seed": self.cfg.seed,
            "train_split": train,
            "test_split": test,
        }

    def weight_decay(self) -> float:
        return WEIGHT_DECAY

    # ---- videos and labels ---------------------------------------------------------------------------
    def split_refs(self, ctx: ProbeContext, split: str) -> list[VideoRef]:
        if self.dataset_name == "cityscapes":  # no split files: a split is a leftImg8bit folder
            refs = open_dataset(self.dataset_name, ctx.cfg.data_root, split).videos()
        else:
            refs = ctx.dataset.split_videos(split)
        if not refs:
            raise DataError(f"{self.dataset_name} at {ctx.cfg.data_root}: split {split!r} has no videos")
        return refs

    def train_test(self, ctx: ProbeContext) -> tuple[list[VideoRef], list[VideoRef]]:
        if self._refs is None:
            train, test = self.splits()
            self._refs = (self.split_refs(ctx, train), self.split_refs(ctx, test))
        return self._refs

    def videos(self, ctx: ProbeContext) -> list[VideoRef]:
        train, test = self.train_test(ctx)
        return [*train, *test]

    @abstractmethod
    def check_labels(self, ctx: ProbeContext, ref: VideoRef) -> None:
        """Raise DataError when ``ref``'s labels are missing (checked before any training)."""

    # ---- what a family builds ------------------------------------------------------------------------
    @abstractmethod
    def builder(self, ctx: ProbeContext) -> SampleBuilder: ...

    @abstractmethod
    def module(
        self,
        ctx: ProbeContext,
        pairs: Sequence[Pair],
        geometry: dict[Pair, tuple[int, int, int]],
        train: list[VideoRef],
    ) -> SweepModule: ...

    def details(self, ctx: ProbeContext, values: dict[str, float]) -> dict[str, Any]:
        """Extra per-record details from a head's logged test values (e.g. per-class IoU)."""
        return {}

    # ---- checks --------------------------------------------------------------------------------------
    def geometry(
        self, ctx: ProbeContext, pairs: Sequence[Pair], refs: Sequence[VideoRef]
    ) -> tuple[dict[Pair, tuple[int, int, int]], dict[Pair, int]]:
        """Per pair: the (C, h, w) shared by every video, and the largest stored frame count; a clear
        error when the videos disagree or a dense head gets no spatial map."""
        geom: dict[Pair, tuple[int, int, int]] = {}
        frames: dict[Pair, int] = {}
        for t, block in pairs:
            shapes: dict[tuple[int, ...], str] = {}
            longest = 0
            for ref in refs:
                # the runner checked the cache; a concurrent gc could still race it (a CacheMissError)
                commit = ctx.group.commit_for(ref.id, t, block)
                shape = tuple(commit.shapes[block])
                shapes.setdefault(shape[1:], ref.id)
                longest = max(longest, shape[0])
            if len(shapes) > 1:
                seen = "; ".join(f"{'x'.join(map(str, s))} ({v})" for s, v in sorted(shapes.items()))
                raise StoreError(
                    f"{ctx.group.recipe.name} T={t} {block}: videos have different feature geometry "
                    f"(C x h x w: {seen}); one head cannot read them all"
                )
            (shape,) = shapes
            c, h, w = (int(v) for v in shape)
            if self.dense and min(h, w) < 2:
                raise ConfigError(
                    f"{self.name} needs spatial feature maps, but {ctx.group.recipe.name} block {block!r} "
                    f"at T={t} has {c}x{h}x{w} (C x h x w) features; choose a block with h, w >= 2 "
                    f"(`dvx cache ls {ctx.group.backend.location}` lists the blocks)"
                )
            geom[(t, block)] = (c, h, w)
            frames[(t, block)] = longest
        return geom, frames

    def plan_passes(
        self, pairs: Sequence[Pair], geom: dict[Pair, tuple[int, int, int]], frames: dict[Pair, int]
    ) -> list[list[Pair]]:
        """Group a sweep's pairs into passes whose batches stay under :data:`PASS_BATCH_BYTES`."""
        if self.materialize:
            return [list(pairs)]
        batch = int(self.hp("batch_size"))
        passes: list[list[Pair]] = []
        used = 0
        for pair in pairs:
            c, h, w = geom[pair]
            need = batch * frames[pair] * c * h * w * 2  # float16
            if passes and used + need <= PASS_BATCH_BYTES:
                passes[-1].append(pair)
                used += need
            else:
                passes.append([pair])
                used = need
        return passes

    # ---- running -------------------------------------------------------------------------------------
    def run_dir(self, ctx: ProbeContext, pairs: Sequence[Pair]) -> Path:
        base = ctx.out if ctx.out is not None else results_dir(ctx.cfg.results) / "_runs"
        ident = json.dumps([self.settings(), [list(p) for p in pairs]], sort_keys=True, default=str)
        tag = hashlib.sha256(ident.encode()).hexdigest()[:8]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = base / self.name / ctx.group.recipe.name / f"{stamp}-{tag}"
        n = 1
        while path.exists():  # a rerun within the same second: never mix two runs' logs
            n += 1
            path = path.with_name(f"{stamp}-{tag}-{n}")
        return path

    def run(self, ctx: ProbeContext, pairs: list[Pair]) -> list[ResultRecord]:
        train, test = self.train_test(ctx)
        for ref in (train[0], test[0]):
            self.check_labels(ctx, ref)
        geom, frames = self.geometry(ctx, pairs, [*train, *test])
        records: list[ResultRecord] = []
        passes = self.plan_passes(pairs, geom, frames)
        for i, group in enumerate(passes):
            if len(passes) > 1:
                ctx.log(f"{self.name}: pass {i + 1}/{len(passes)}: {len(group)} head(s) side by side")
            records += self.train_pass(ctx, group, geom, train, test)
        return records

    def train_pass(
        self,
        ctx: ProbeContext,
        pairs: list[Pair],
        geom: dict[Pair, tuple[int, int, int]],
        train: list[VideoRef],
        test: list[VideoRef],
    ) -> list[ResultRecord]:
        import pytorch_lightning as pl

        from dvx.probe.lightning.datamodule import CacheDataModule, FeatureDataset
        from dvx.probe.lightning.heads import count_parameters
        from dvx.probe.lightning.source import FeatureSource, pair_key
        from dvx.probe.lightning.sweep import SweepModule
        from dvx.probe.lightning.trainer import DataWaitTimer, loggers, make_trainer, quiet_lightning

        seed = self.cfg.seed
        workers = self.cfg.option("num_workers", default_workers())
        run_dir = self.run_dir(ctx, pairs)
        ctx.log(
            f"{self.name}: training {len(pairs)} head(s) side by side on {len(train)} video(s), "
            f"testing on {len(test)}; logs and checkpoint in {run_dir}"
        )
        with quiet_lightning():
            pl.seed_everything(seed, workers=True, verbose=False)
            builder = self.builder(ctx)
            source = FeatureSource.of(ctx.group)
            dm = CacheDataModule(
                FeatureDataset(source, ctx.dataset, train, pairs, builder),
                FeatureDataset(source, ctx.dataset, test, pairs, builder),
                batch_size=int(self.hp("batch_size")),
                num_workers=int(workers),
                seed=seed,
                materialize=self.materialize,
            )
            module = self.module(ctx, pairs, geom, train)
            timer = DataWaitTimer()
            trainer = make_trainer(
                run_dir,
                int(self.hp("epochs")),
                ctx.device,
                self.cfg.option("devices"),
                self.cfg.option("strategy"),
                ctx.cfg.progress,
                [timer],
            )
            trainer.fit(module, datamodule=dm)
            trained = dict(trainer.callback_metrics)  # the last epoch's training losses
            trainer.loggers = loggers(run_dir, "test")
            trainer.test(module, datamodule=dm, verbose=False)
            logged = dict(trainer.callback_metrics)
        timing = timer.summary()
        out = []
        for pair in pairs:
            key = pair_key(pair)
            values = SweepModule.collect(logged, key)
            missing = [m for m in self.metric_names if m not in values]
            if missing:
                raise RuntimeError(f"{self.name}: the test run logged no {missing} for {key}")
            details = {
                **self.details(ctx, values),
                "train_videos": len(train),
                "test_videos": len(test),
                "head_parameters": count_parameters(module.heads[key]),
                "train_loss": SweepModule.collect(trained, key, "train").get("loss"),  # last epoch's mean
                "heads_side_by_side": len(pairs),
                **{k: round(v, 6) for k, v in timing.items()},
                "run_dir": str(run_dir),
                "devices": trainer.num_devices,
                "strategy": type(trainer.strategy).__name__,
            }
            metrics = {m: values[m] for m in self.metric_names}
            out.append(self.record(ctx, pair[0], pair[1], metrics, details, videos=len(train) + len(test)))
        return out
