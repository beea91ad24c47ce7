"""Action recognition (UCF101, HMDB51, synthetic motion classes): features averaged over space and time,
a two-layer MLP with hidden width = input width, top-1 / top-5 accuracy on the official test split
(seed 002 §3.2.2). See docs/probes-trained.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from dvx.data.base import VideoRef
from dvx.errors import DataError
from dvx.options import Options, redefault
from dvx.probe.task import ProbeContext
from dvx.probe.tasks.trained import Pair, TrainedOptions, TrainedTask

if TYPE_CHECKING:
    from dvx.probe.lightning.classification import PooledBuilder
    from dvx.probe.lightning.sweep import SweepModule


@dataclass(frozen=True)
class ActionOptions(TrainedOptions):
    epochs: int = redefault(TrainedOptions, "epochs", 100)
    batch_size: int = redefault(TrainedOptions, "batch_size", 64)


class ActionTask(TrainedTask):
    main_metric: ClassVar[str] = "top1"
    metric_names: ClassVar[tuple[str, ...]] = ("top1", "top5")
    options_class: ClassVar[type[Options]] = ActionOptions
    dense: ClassVar[bool] = False
    materialize: ClassVar[bool] = True

    def head_settings(self) -> dict[str, Any]:
        return {"head": "mean over (frames, h, w) -> BatchNorm -> Linear(C, C) -> GELU -> Linear(C, classes)"}

    def check_labels(self, ctx: ProbeContext, ref: VideoRef) -> None:
        classes = ctx.dataset.classes()  # DataError when the dataset has no action classes
        if ref.label is None or not 0 <= ref.label < len(classes):
            raise DataError(f"{self.dataset_name}: video {ref.id!r} has no class label among {len(classes)}")

    def builder(self, ctx: ProbeContext) -> PooledBuilder:
        from dvx.probe.lightning.classification import PooledBuilder

        return PooledBuilder()

    def module(
        self,
        ctx: ProbeContext,
        pairs: Sequence[Pair],
        geometry: dict[Pair, tuple[int, int, int]],
        train: list[VideoRef],
    ) -> SweepModule:
        from dvx.probe.lightning.classification import ClassificationProbe
        from dvx.probe.lightning.source import pair_key

        return ClassificationProbe(
            pairs,
            {pair_key(p): geometry[p][0] for p in pairs},
            num_classes=len(ctx.dataset.classes()),
            lr=self.options.lr,
            epochs=self.options.epochs,
            seed=self.cfg.seed,
            weight_decay=self.weight_decay(),
        )
