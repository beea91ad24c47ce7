"""Object discovery (MOVi-C/E, synthetic): slot attention with learnable queries over a video's cached
feature maps, trained by feature reconstruction; FG-ARI and mBO against the instance masks.
See docs/probes-trained.md (and docs/datasets.md for the MOVi export layout read)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from dvx.data.base import VideoRef
from dvx.options import Options, option, redefault
from dvx.probe.task import ProbeContext
from dvx.probe.tasks.trained import Pair, TrainedOptions, TrainedTask

if TYPE_CHECKING:
    from dvx.probe.lightning.discovery import InstanceBuilder
    from dvx.probe.lightning.sweep import SweepModule

SLOT_DIM = 128
ITERATIONS = 3


@dataclass(frozen=True)
class DiscoveryOptions(TrainedOptions):
    """Trained-head options plus the slot count (registry entries set it per dataset: movi-e 24, ...)."""

    epochs: int = redefault(TrainedOptions, "epochs", 50)
    lr: float = redefault(TrainedOptions, "lr", 4e-4)
    slots: int = option(11, "Slots: objects + background.", minimum=1)


class ObjectDiscoveryTask(TrainedTask):
    main_metric: ClassVar[str] = "FG_ARI"
    metric_names: ClassVar[tuple[str, ...]] = ("FG_ARI", "mBO")
    options_class: ClassVar[type[Options]] = DiscoveryOptions
    options: DiscoveryOptions

    def slots(self) -> int:
        return self.options.slots

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
            lr=self.options.lr,
            epochs=self.options.epochs,
            seed=self.cfg.seed,
            slot_dim=SLOT_DIM,
            iters=ITERATIONS,
            weight_decay=self.weight_decay(),
        )
