"""Object discovery (MOVi-C/E, synthetic): slot attention with learnable queries over a video's cached
feature maps, trained by feature reconstruction; FG-ARI and mBO against the instance masks.
See docs/probes-trained.md (and docs/datasets.md for the MOVi export layout read)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from dvx.config import ProbeConfig
from dvx.data.base import VideoRef
from dvx.errors import ConfigError
from dvx.probe.task import ProbeContext
from dvx.probe.tasks.trained import Pair, TrainedTask

if TYPE_CHECKING:
    from dvx.probe.lightning.discovery import InstanceBuilder
    from dvx.probe.lightning.sweep import SweepModule

#: default number of slots per task (MOVi-C: 10 objects + background; MOVi-E: up to 23 + background, as
#: in VideoSAUR; synthetic: at most 3 sprites + the wall)
DEFAULT_SLOTS = {"movi-c": 11, "movi-e": 24, "synthetic-discovery": 4}
SLOT_DIM = 128
ITERATIONS = 3


class ObjectDiscoveryTask(TrainedTask):
    main_metric: ClassVar[str] = "FG_ARI"
    metric_names: ClassVar[tuple[str, ...]] = ("FG_ARI", "mBO")
    option_names: ClassVar[frozenset[str]] = TrainedTask.option_names | {"slots"}
    defaults: ClassVar[dict[str, Any]] = {"epochs": 50, "lr": 4e-4, "batch_size": 8}

    def __init__(self, name: str, cfg: ProbeConfig) -> None:
        super().__init__(name, cfg)
        slots = cfg.option("slots")
        if slots is not None and slots < 1:
            raise ConfigError("--slots must be >= 1")

    def slots(self) -> int:
        return int(self.cfg.option("slots", DEFAULT_SLOTS.get(self.name, 11)))

    def weight_decay(self) -> float:
        return 0.0

    def head_settings(self) -> dict[str, Any]:
        return {
            "head": "LayerNorm -> MLP -> slot attention (learnable queries, BO-QSA; recurrent over frames) "
            "-> MLP broadcast decoder reconstructing the layer-normalised features",
            "slots": self.slots(),
            "slot_dim": SLOT_DIM,
            "iterations": ITERATIONS,
        }

    def check_labels(self, ctx: ProbeContext, ref: VideoRef) -> None:
        ctx.dataset.instances(ref)

    def builder(self, ctx: ProbeContext) -> InstanceBuilder:
        from dvx.probe.lightning.discovery import InstanceBuilder

        return InstanceBuilder(ctx.group.recipe.frame_stride)

    def module(
        self,
        ctx: ProbeContext,
        pairs: Sequence[Pair],
        geometry: dict[Pair, tuple[int, int, int]],
        train: list[VideoRef],
    ) -> SweepModule:
        from dvx.probe.lightning.discovery import DiscoveryProbe
        from dvx.probe.lightning.source import pair_key

        return DiscoveryProbe(
            pairs,
            {pair_key(p): geometry[p][0] for p in pairs},
            {pair_key(p): (geometry[p][1], geometry[p][2]) for p in pairs},
            num_slots=self.slots(),
            lr=float(self.hp("lr")),
            epochs=int(self.hp("epochs")),
            seed=self.cfg.seed,
            slot_dim=SLOT_DIM,
            iters=ITERATIONS,
            weight_decay=self.weight_decay(),
        )
