"""What the latent-diffusion UNet families (SD, SVD, ModelScope) share: block naming and geometry.

Blocks: ``down.N`` is the hidden-state output of ``down_blocks[N]`` (after its downsampler), ``mid`` the
mid block's output and ``up.N`` the output of ``up_blocks[N]``, which is what DIFT's ``up_ft_index=N``
means. Attention q/k blocks (``up.1.s0.0.attn1.q``, ``down.2.t0.0.attn1.k``; dvx/extract/attention.py)
come from the UNet's spatial and temporal self-attention layers. A UNet family reads its unet and vae
configs at construction (no weights) and loads the networks on first use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from dvx.extract.base import DiffusionBackbone, ModelSpec, RunOptions
from dvx.extract.weights import digest_folder, resolve_folder


def unet_block_names(config: Mapping[str, Any]) -> list[str]:
    names = [f"down.{i}" for i in range(len(config["down_block_types"]))]
    if config.get("mid_block_type", "default") is not None:
        names.append("mid")
    names += [f"up.{i}" for i in range(len(config["up_block_types"]))]
    return names


def unet_block_modules(unet: nn.Module) -> dict[str, nn.Module]:
    modules: dict[str, nn.Module] = {f"down.{i}": b for i, b in enumerate(unet.down_blocks)}
    if getattr(unet, "mid_block", None) is not None:
        modules["mid"] = unet.mid_block
    modules.update({f"up.{i}": b for i, b in enumerate(unet.up_blocks)})
    return modules


class UNetBackbone(DiffusionBackbone):
    """A latent UNet with a VAE: files, block names, block modules and the input size multiple."""

    #: model subfolders the family loads (and whose files the weights digest covers)
    subfolders: ClassVar[tuple[str, ...]]
    #: name of the tiny twin in the dvx cache, and the function that builds it
    tiny_name: ClassVar[str]
    build_tiny: ClassVar[Callable[[Path], None]]

    denoiser = "unet"
    unet: nn.Module

    def __init__(self, spec: ModelSpec, folder: Path, run: RunOptions) -> None:
        super().__init__(spec, folder, run)
        self.unet_config = json.loads((folder / "unet" / "config.json").read_text())
        self.vae_config = json.loads((folder / "vae" / "config.json").read_text())
        self.weights = digest_folder(folder, self.subfolders)

    @classmethod
    def folder_for(cls, spec: ModelSpec) -> Path:
        patterns = [f"{s}/*" for s in cls.subfolders] + ["model_index.json"]
        return resolve_folder(spec.source, spec.revision, patterns, cls.build_tiny, cls.tiny_name)

    @classmethod
    def block_names_for(cls, folder: Path) -> list[str]:
        return unet_block_names(json.loads((folder / "unet" / "config.json").read_text()))

    def block_modules(self) -> dict[str, nn.Module]:
        self.ensure_loaded()
        return unet_block_modules(self.unet)

    @property
    def resolution_multiple(self) -> int:
        vae_factor = 2 ** (len(self.vae_config["block_out_channels"]) - 1)
        return vae_factor * 2 ** (len(self.unet_config["down_block_types"]) - 1)
