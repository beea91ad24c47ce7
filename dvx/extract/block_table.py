"""Block names of every registered model, shipped with dvx: ``dvx ls models`` reads them here and never
builds, downloads or loads a model (and never imports torch).

Each entry is a model's geometry as its config states it: for UNets the number of down and up blocks (and
whether it has a mid block), for transformers the number of layers and which config file says so. The
real models' numbers come from their published configs (sources in docs/models.md); the tiny twins' from
the configs dvx builds. ``tests/extract/test_block_table.py`` checks every entry against the rule the
backbone itself applies (``block_names_for``) on a config written from the entry, and the tiny twins'
entries against their real configs; a model registered without an entry fails there. For a model folder
of your own, ``dvx ls models NAME --weights DIR`` computes the names from its config files instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class UNet:
    """``down.0..down.<down-1>``, ``mid``, ``up.0..up.<up-1>`` (dvx/extract/unet_blocks.py)."""

    down: int
    up: int
    mid: bool = True

    def names(self) -> list[str]:
        return [
            *(f"down.{i}" for i in range(self.down)),
            *(["mid"] if self.mid else []),
            *(f"up.{i}" for i in range(self.up)),
        ]

    def config(self) -> dict[str, dict[str, Any]]:
        """The smallest config the family's rule reads to name these blocks."""
        unet: dict[str, Any] = {
            "down_block_types": ["DownBlock2D"] * self.down,
            "up_block_types": ["UpBlock2D"] * self.up,
        }
        if not self.mid:
            unet["mid_block_type"] = None
        return {"unet/config.json": unet}


@dataclass(frozen=True)
class Layers:
    """``layer.0..layer.<n-1>``: transformer blocks, counted by ``key`` in the config file ``file``; then
    ``after`` (a ViT's ``norm``: the final LayerNorm on the last layer)."""

    n: int
    file: str
    key: str
    after: tuple[str, ...] = ()
    settings: tuple[tuple[str, Any], ...] = ()  # other config values the family's rule reads

    def names(self) -> list[str]:
        return [*(f"layer.{i}" for i in range(self.n)), *self.after]

    def config(self) -> dict[str, dict[str, Any]]:
        return {self.file: {self.key: self.n, **dict(self.settings)}}


def dit(n: int) -> Layers:
    """A diffusers transformer (SD3, Wan): ``transformer/config.json`` ``num_layers``."""
    return Layers(n, "transformer/config.json", "num_layers")


def vit(n: int) -> Layers:
    """A transformers encoder (DINOv2, VideoMAE, V-JEPA 2): ``config.json`` ``num_hidden_layers``."""
    return Layers(n, "config.json", "num_hidden_layers", after=("norm",))


def videomae_vit(n: int) -> Layers:
    """VideoMAE: a ViT whose pre-training checkpoints (``use_mean_pooling`` false, as MCG-NJU/videomae-*
    ship) end with the ``layernorm`` that gives block ``norm``; fine-tuned ones pool instead and have none."""
    return Layers(
        n, "config.json", "num_hidden_layers", after=("norm",), settings=(("use_mean_pooling", False),)
    )


Geometry = UNet | Layers

#: registered model -> its block geometry (published configs; see docs/models.md)
BLOCKS: dict[str, Geometry] = {
    "svd": UNet(4, 4),
    "svd-xt": UNet(4, 4),
    "svd-1.1": UNet(4, 4),
    "modelscope": UNet(4, 4),
    "wan-2.1": dit(30),
    "sd-1.4": UNet(4, 4),
    "sd-1.5": UNet(4, 4),
    "sd-2.0": UNet(4, 4),
    "sd-2.1": UNet(4, 4),
    "sd-2.1-base": UNet(4, 4),
    "sd3": dit(24),
    "sd3-no-t5": dit(24),
    "dinov2": vit(24),
    "videomae": videomae_vit(24),
    "vjepa2": vit(24),
    # tiny twins (the configs dvx builds them from)
    "tiny-svd": UNet(4, 4),
    "tiny-sd": UNet(4, 4),
    "tiny-modelscope": UNet(4, 4),
    "tiny-sd3": dit(4),
    "tiny-wan": dit(4),
    "tiny-dinov2": vit(4),
    "tiny-videomae": videomae_vit(4),
    "tiny-vjepa2": vit(4),
    # twins dvx trains (dvx/twin/: the tiny-svd config)
    "twin-svd": UNet(4, 4),
    "twin-svd-frames": UNet(4, 4),
}


def shipped_block_names(model: str) -> list[str] | None:
    """The shipped block names of registered model ``model``; None when the table has no entry."""
    geometry = BLOCKS.get(model)
    return None if geometry is None else geometry.names()
