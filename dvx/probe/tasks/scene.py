"""Scene understanding (Cityscapes, synthetic): a two-layer MLP at every position of the feature map,
upsampled to the label resolution. Semantic segmentation: mIoU over the dataset's classes (Cityscapes:
the 19 train ids, 255 ignored). Depth: mean error against the ground-truth depth (Cityscapes: derived
from disparity and the camera). See docs/probes-trained.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from dvx.data.base import VideoDataset, VideoRef
from dvx.errors import DataError
from dvx.probe.task import ProbeContext
from dvx.probe.tasks.trained import Pair, TrainedTask

if TYPE_CHECKING:
    from dvx.probe.lightning.dense import DenseBuilder
    from dvx.probe.lightning.sweep import SweepModule


def semantic_classes(dataset: VideoDataset) -> list[str]:
    """The class names behind a dataset's semantic ids."""
    world = getattr(dataset, "world", None)
    if isinstance(world, dict) and "semantic_classes" in world:
        return list(world["semantic_classes"])
    if dataset.name == "cityscapes":
        from dvx.data.cityscapes import TRAIN_CLASSES

        return list(TRAIN_CLASSES)
    raise DataError(f"dataset {dataset.name!r} has no semantic classes dvx knows of")


class _SceneTask(TrainedTask):
    kind: ClassVar[str]

    def head_settings(self) -> dict[str, Any]:
        return {
            "head": "per position: BatchNorm -> 1x1 conv(C, C) -> GELU -> 1x1 conv(C, out); "
            "bilinear upsampling to the label size"
        }

    def builder(self, ctx: ProbeContext) -> DenseBuilder:
        from dvx.probe.lightning.dense import DenseBuilder

        return DenseBuilder(self.kind, ctx.group.recipe.frame_stride)

    def module(
        self,
        ctx: ProbeContext,
        pairs: Sequence[Pair],
        geometry: dict[Pair, tuple[int, int, int]],
        train: list[VideoRef],
    ) -> SweepModule:
        from dvx.probe.lightning.dense import DenseProbe, depth_stats
        from dvx.probe.lightning.source import pair_key

        mean, std = depth_stats(ctx.dataset, train) if self.kind == "depth" else (0.0, 1.0)
        return DenseProbe(
            pairs,
            {pair_key(p): geometry[p][0] for p in pairs},
            kind=self.kind,
            num_classes=len(semantic_classes(ctx.dataset)) if self.kind == "semantic" else 1,
            lr=self.options.lr,
            epochs=self.options.epochs,
            seed=self.cfg.seed,
            weight_decay=self.weight_decay(),
            depth_mean=mean,
            depth_std=std,
        )


class SegmentationTask(_SceneTask):
    kind: ClassVar[str] = "semantic"
    main_metric: ClassVar[str] = "mIoU"
    metric_names: ClassVar[tuple[str, ...]] = ("mIoU",)

    def check_labels(self, ctx: ProbeContext, ref: VideoRef) -> None:
        semantic_classes(ctx.dataset)
        ctx.dataset.semantic(ref)

    def details(self, ctx: ProbeContext, values: dict[str, float]) -> dict[str, Any]:
        names = semantic_classes(ctx.dataset)
        iou = {}
        for i, name in enumerate(names):
            v = values.get(f"IoU/{i}")
            iou[name] = None if v is None or v != v else round(v, 6)  # NaN: class absent from the test set
        return {"IoU": iou}


class DepthTask(_SceneTask):
    kind: ClassVar[str] = "depth"
    main_metric: ClassVar[str] = "depth_mErr"
    higher_is_better: ClassVar[bool] = False
    metric_names: ClassVar[tuple[str, ...]] = ("depth_mErr", "depth_RMSE")

    def check_labels(self, ctx: ProbeContext, ref: VideoRef) -> None:
        ctx.dataset.depth(ref)
