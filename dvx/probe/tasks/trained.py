"""What the trained-head tasks share: options, train/test splits (the dataset's ``probe_splits``, or
``--split`` naming the training split), up-front checks (labels, feature geometry), planning a sweep into
passes, and one Lightning fit + test per pass, logged under
``<out>/<task>/<dataset>/<model>@<fp8>/runs/<time>-<tag>/`` beside its ``dvx-config.json``.

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dvx.config import ProbeConfig
from dvx.data.base import VideoDataset, VideoRef
from dvx.errors import ConfigError, DataError, StoreError
from dvx.options import Options, option
from dvx.probe.task import ProbeContext, Task
from dvx.progress import epoch_progress
from dvx.results import ResultRecord, results_dir, write_config

if TYPE_CHECKING:
    from dvx.probe.lightning.datamodule import SampleBuilder
    from dvx.probe.lightning.sweep import SweepModule

Pair = tuple[int, str]

#: per-batch bytes of cached features one pass may hold; a sweep needing more is split into passes
PASS_BATCH_BYTES = 1 << 30
WEIGHT_DECAY = 1e-4


def default_workers() -> int:
    return max(0, min(4, (os.cpu_count() or 1) - 1))


@dataclass(frozen=True)
class TrainedOptions(Options):
    """What every trained head takes; a task's own subclass changes defaults with ``redefault``."""

    epochs: int = option(20, "Head training epochs.", minimum=1)
    lr: float = option(1e-3, "Head learning rate.", above=0)
    batch_size: int = option(8, "Head training batch size (global, over all devices).", minimum=1)
    devices: str | None = option(None, "Lightning devices for head training (e.g. 1, 2, auto) [default: 1].")
    strategy: str | None = option(None, "Lightning strategy (e.g. ddp) [default: Lightning's].")
    num_workers: int | None = option(None, "Data-loading workers [default: cores - 1, at most 4].", minimum=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        from dvx.probe.lightning.devices import parse_devices
        from dvx.probe.lightning.trainer import check_strategy

        parse_devices(self.devices)
        if self.strategy is not None:
            check_strategy(self.strategy)


class TrainedTask(Task):
    """A probe that trains a light head per (T, block) on the training split and scores the test split."""

    options_class: ClassVar[type[Options]] = TrainedOptions
    options: TrainedOptions
    #: the metrics of a record (the first is ``main_metric``)
    metric_names: ClassVar[tuple[str, ...]] = ()
    #: True when the head needs a spatial feature map (h, w >= 2)
    dense: ClassVar[bool] = True
    #: True when a sample is small enough to stream the store once and train from memory
    materialize: ClassVar[bool] = False

    def __init__(self, name: str, cfg: ProbeConfig) -> None:
        super().__init__(name, cfg)
        from dvx.probe.lightning.devices import accelerator_for

        accelerator_for(cfg.device)
        self._refs: tuple[list[VideoRef], list[VideoRef]] | None = None

    # ---- settings ------------------------------------------------------------------------------------
    def splits(self) -> tuple[str, str]:
        """(training split, evaluation split): the dataset reader's, or ``--split`` and the one it pairs
        with."""
        from dvx.data import DATASETS

        reader: type[VideoDataset] = DATASETS.load(self.dataset_name)
        if self.cfg.split is None:
            if reader.probe_splits is None:
                raise ConfigError(
                    f"task {self.name!r}: dataset {self.dataset_name!r} has no train/test splits dvx knows of"
                )
            return reader.probe_splits
        return self.cfg.split, reader.eval_split(self.cfg.split)

    @abstractmethod
    def head_settings(self) -> dict[str, Any]:
        """The head's own settings (architecture, family knobs) recorded in every record."""

    def settings(self) -> dict[str, Any]:
        train, test = self.splits()
        return {
            **self.head_settings(),
            "epochs": self.options.epochs,
            "lr": self.options.lr,
            "batch_size": self.options.batch_size,
            "optimizer": f"AdamW(weight_decay={self.weight_decay()}), cosine schedule",
            "seed": self.cfg.seed,
            "train_split": train,
            "test_split": test,
        }

    def weight_decay(self) -> float:
        return WEIGHT_DECAY

    # ---- videos and labels ---------------------------------------------------------------------------
    def split_refs(self, ctx: ProbeContext, split: str) -> list[VideoRef]:
        refs = ctx.dataset.split_videos(split)
        if not refs:
            raise DataError(f"{self.dataset_name} at {ctx.cfg.data_root}: split {split!r} has no videos")
        return refs

    def train_test(self, ctx: ProbeContext) -> tuple[list[VideoRef], list[VideoRef]]:
        """Every video of the training and the evaluation split (before the runner's selection)."""
        if self._refs is None:
            train, test = self.splits()
            self._refs = (self.split_refs(ctx, train), self.split_refs(ctx, test))
        return self._refs

    def selected_train_test(self, ctx: ProbeContext) -> tuple[list[VideoRef], list[VideoRef]]:
        """The training and evaluation videos the runner selected (``--videos``, ``--exclude``, failed
        extractions); an empty side is an error, not a head trained or scored on nothing."""
        train, test = (ctx.selected(refs) for refs in self.train_test(ctx))
        for name, refs in (("training", train), ("evaluation", test)):
            if not refs:
                raise DataError(
                    f"{self.name}: no {name} video left after --videos / --exclude / failed videos"
                )
        return train, test

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
        batch = self.options.batch_size
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
        """``<out>/<task>/<dataset>/<model>@<fp8>/runs/<time>-<tag>`` (under the results directory's
        ``_runs`` without ``--out``), created with its ``dvx-config.json``."""
        root = ctx.output_root(self.name)
        if root is None:
            root = (
                results_dir(ctx.cfg.results) / "_runs" / self.name / ctx.dataset_name / ctx.group.recipe.name
            )
        ident = json.dumps([self.settings(), [list(p) for p in pairs]], sort_keys=True, default=str)
        tag = hashlib.sha256(ident.encode()).hexdigest()[:8]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = root / "runs" / f"{stamp}-{tag}"
        n = 1
        while path.exists():  # a rerun within the same second: never mix two runs' logs
            n += 1
            path = path.with_name(f"{stamp}-{tag}-{n}")
        run = {k: v for k, v in self.output_config(ctx, *pairs[0]).items() if k not in ("T", "block")}
        write_config(path, {**run, "pairs": [list(p) for p in pairs]})
        return path

    def run(self, ctx: ProbeContext, pairs: list[Pair]) -> list[ResultRecord]:
        train, test = self.selected_train_test(ctx)
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
        workers = default_workers() if self.options.num_workers is None else self.options.num_workers
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
                batch_size=self.options.batch_size,
                num_workers=int(workers),
                seed=seed,
                materialize=self.materialize,
            )
            module = self.module(ctx, pairs, geom, train)
            timer = DataWaitTimer()
            trainer = make_trainer(
                run_dir,
                self.options.epochs,
                ctx.device,
                self.options.devices,
                self.options.strategy,
                ctx.cfg.progress,
                [timer, *epoch_progress(self.options.epochs, f"train {self.name}", ctx.cfg.progress)],
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
