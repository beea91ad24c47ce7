"""Resolution presets: the size a published protocol resizes each video's frames to before the model.

Extraction resizes frames to the recipe's size; a preset names the size a reference implementation uses,
so a user picks "as DIFT" without reading its code:

- ``dift``: DIFT ``eval_davis.py`` (``read_frame``/``read_seg``): the shorter side becomes 480 and the longer
  side ``int(480 * long / short // 32) * 32``, i.e. scaled with the aspect kept and floored to a multiple of
  32. A DAVIS 854x480 frame -> 832x480 (SD ``up.2`` map 104x60); the 910- and 1152-wide DAVIS-2017
  sequences -> 896x480 and 1152x480. The size depends on each video's frame size.
- ``dino``: DINO ``eval_video_segmentation.py``: the same with a multiple of 64 (854x480 -> 832x480).
- ``videowalk``: videowalk (CRW) JHMDB: every frame resized to 320x320 (``--cropSize 320``; its ``resize``
  uses ``ratio = 1.0``, so the aspect is not kept).
- ``model``: the model's registered default size (no preset).

An aspect-keeping preset gives a size per video; the recipe then records ``resolution`` (0, 0) and the rule's
parameters under ``conditioning.input.resize`` (:func:`rule_params`), from which :func:`input_size` recomputes
any video's size from its frame size alone (the probes use it; the store keeps each video's frame size). A
model whose inputs must be multiples of ``m`` (DINOv2: 14) gets each side floored to a multiple of ``m``
(``snap``, recorded too). Both references resize with OpenCV's bilinear ``cv2.resize`` (no antialiasing);
dvx resizes with antialiased bilinear interpolation (docs/extract.md).

Torch-free: the probe stage imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dvx.errors import ConfigError

#: ``resolution`` of a recipe whose size is set per video by an aspect-keeping preset
PER_VIDEO = (0, 0)


@dataclass(frozen=True)
class SizePreset:
    """A named input size: fixed (H, W), or shorter side ``short_side`` with the longer side scaled by the
    aspect and floored to a multiple of ``multiple``."""

    name: str
    source: str
    fixed: tuple[int, int] | None = None
    short_side: int = 0
    multiple: int = 1

    @property
    def per_video(self) -> bool:
        return self.fixed is None

    def describe(self) -> str:
        if self.fixed is not None:
            return f"{self.fixed[0]}x{self.fixed[1]} ({self.source})"
        return (
            f"shorter side {self.short_side}, longer side scaled with the aspect kept and floored to a "
            f"multiple of {self.multiple} ({self.source})"
        )

    def params(self, snap: int = 1) -> dict[str, Any]:
        """What a recipe records for an aspect-keeping preset (enough to recompute every video's size)."""
        if self.fixed is not None:
            raise ValueError(f"preset {self.name!r} is a fixed size; the recipe's resolution records it")
        return {
            "preset": self.name,
            "short_side": self.short_side,
            "long_multiple": self.multiple,
            "snap": int(snap),
            "rule": self.describe(),
        }


SIZE_PRESETS: dict[str, SizePreset] = {
    "dift": SizePreset("dift", "DIFT eval_davis.py", short_side=480, multiple=32),
    "dino": SizePreset("dino", "DINO eval_video_segmentation.py", short_side=480, multiple=64),
    "videowalk": SizePreset("videowalk", "videowalk JHMDB, --cropSize 320", fixed=(320, 320)),
}
#: the name meaning "the model's registered default size"
MODEL_DEFAULT = "model"


def size_preset(name: str) -> SizePreset:
    if name not in SIZE_PRESETS:
        known = ", ".join([MODEL_DEFAULT, *SIZE_PRESETS])
        raise ConfigError(f"unknown resolution preset {name!r}; use HxW or one of {known}")
    return SIZE_PRESETS[name]


def aspect_size(frame_hw: tuple[int, int], short_side: int, multiple: int, snap: int = 1) -> tuple[int, int]:
    """(H, W) for a frame of ``frame_hw``: the shorter side -> ``short_side``, the longer side scaled by the
    aspect and floored to a multiple of ``multiple`` (DIFT/DINO's ``int(x // m * m)``); then each side floored
    to a multiple of ``snap`` (at least one)."""
    h, w = (int(v) for v in frame_hw)
    if h <= 0 or w <= 0:
        raise ConfigError(f"frame size {h}x{w} is not positive")
    if h > w:
        out_w, out_h = short_side, int((short_side * h / w) // multiple * multiple)
    else:
        out_h, out_w = short_side, int((short_side * w / h) // multiple * multiple)
    out_h, out_w = max(out_h, multiple), max(out_w, multiple)
    if snap > 1:
        out_h, out_w = max(snap, out_h // snap * snap), max(snap, out_w // snap * snap)
    return out_h, out_w


def input_size(
    resolution: tuple[int, int] | list[int], conditioning: Mapping[str, Any], frame_hw: tuple[int, int]
) -> tuple[int, int]:
    """The size a recipe fed a video with frames of ``frame_hw``: its fixed ``resolution``, or, for a
    per-video preset, the size the recorded rule (``conditioning.input.resize``) gives."""
    if tuple(resolution) != PER_VIDEO:
        return int(resolution[0]), int(resolution[1])
    rule = (conditioning.get("input") or {}).get("resize")
    if not isinstance(rule, Mapping):
        raise ConfigError("the recipe has a per-video resolution but records no resize rule")
    short, multiple = int(rule["short_side"]), int(rule["long_multiple"])
    return aspect_size(frame_hw, short, multiple, int(rule.get("snap", 1)))
