"""Block naming shared by the UNet families (SD, SVD, ModelScope): ``down.N``, ``mid``, ``up.N``.

``up.N`` is the output of ``unet.up_blocks[N]``, which is what DIFT's ``up_ft_index=N`` means; ``down.N``
is the hidden-state output of ``down_blocks[N]`` (after its downsampler); ``mid`` the mid block's output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn


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
