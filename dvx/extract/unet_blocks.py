"""What the latent-diffusion UNet families (SD, SVD, ModelScope) share: block naming and geometry.

Blocks: ``down.N`` is the hidden-state output of ``down_blocks[N]`` (after its downsampler), ``mid`` the
mid block's output and ``up.N`` the output of ``up_blocks[N]``, which is what DIFT's ``up_ft_index=N``
means. Attention q/k blocks (``up.1.s0.0.attn1.q``, ``down.2.t0.0.attn1.k``; dvx/extract/attention.py)
come from the UNet's spatial and temporal self-attention layers. A UNet family reads its unet and vae
configs at construction (no weights) and loads the networks on first use.

Input size: any multiple of the VAE factor (8). The VAE encoder needs it; the UNet does not need more:
every downsampler is a stride-2 convolution with padding 1 (a side of n becomes ceil(n / 2)), and when a
latent side is not a multiple of 2^(number of upsamplers) the diffusers UNets (2-D, 3-D and
spatio-temporal) forward each skip connection's size to the upsampler (``forward_upsample_size``, as DIFT's
copy of the forward does), so up-block N returns the size of the matching down level. DIFT's DAVIS frames
(480x832: latent 60x104) therefore give ``up.2`` 60x104 and ``up.1`` 30x52.
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


def unet_block_shapes(
    unet_config: Mapping[str, Any], vae_factor: int, resolution: tuple[int, int]
) -> dict[str, tuple[int, int, int]]:
    """(C, h, w) of every block for frames of ``resolution`` (see the module docstring for the sizes)."""
    channels = list(unet_config["block_out_channels"])
    n = len(unet_config["down_block_types"])
    level = [(resolution[0] // vae_factor, resolution[1] // vae_factor)]
    for _ in range(n - 1):  # the downsamplers of down blocks 0 .. n-2: ceil(side / 2)
        h, w = level[-1]
        level.append(((h + 1) // 2, (w + 1) // 2))
    shapes = {f"down.{i}": (channels[i], *level[min(i + 1, n - 1)]) for i in range(n)}
    if unet_config.get("mid_block_type", "default") is not None:
        shapes["mid"] = (channels[-1], *level[n - 1])
    up = list(reversed(channels))
    for i in range(len(unet_config["up_block_types"])):
        shapes[f"up.{i}"] = (up[i], *level[max(n - 2 - i, 0)])
    return shapes


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
        """The VAE factor: the UNet forwards skip sizes, so it needs no more (module docstring)."""
        return vae_factor(self.vae_config)

    @classmethod
    def block_shapes_for(
        cls, folder: Path, resolution: tuple[int, int], clip_len: int | None = None
    ) -> dict[str, tuple[int, int, int]]:
        unet = json.loads((folder / "unet" / "config.json").read_text())
        vae = json.loads((folder / "vae" / "config.json").read_text())
        return unet_block_shapes(unet, vae_factor(vae), resolution)


def vae_factor(vae_config: Mapping[str, Any]) -> int:
    """Spatial downsampling of an SD-style VAE encoder: one stride-2 stage between consecutive levels."""
    return 2 ** (len(vae_config["block_out_channels"]) - 1)
