"""VideoMAE (transformers ``VideoMAEModel``): a video baseline, not a diffusion model.

Clips of ``clip_len`` frames (16 natively) are cut into tubelets of 2 frames x 16x16 pixels; stored
temporal index k covers input frames (2k, 2k+1). ``layer.N`` is the output of ``encoder.layer[N]`` and
``norm`` that of the final ``layernorm`` (``last_hidden_state``; checkpoints with ``use_mean_pooling`` have no
such norm, and no ``norm`` block), reshaped to (F/2, C, H/16, W/16).

Resolution: VideoMAE adds a *fixed* 1-D sinusoidal table over the flattened (t, y, x) token index, built
for ``config.image_size`` (and the patch embedding refuses any other size). A different grid would give
every token the position of another one, so any resolution other than ``config.image_size`` is refused.
Shorter clips are supported exactly: with fewer tubelets the (t, y, x) -> index map is unchanged and the
table is a prefix of the native one (the model is built with ``num_frames = clip_len``); longer clips
would need positions the model never saw and are refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from dvx.errors import ConfigError
from dvx.extract.base import ModelSpec, RunOptions
from dvx.extract.encoder import TubeletEncoderBackbone
from dvx.extract.tokens import tokens_to_maps

TINY_NAME = "tiny-videomae-v1"


def build_tiny(folder: Path) -> None:
    """A 4-layer VideoMAE of width 32 (16 frames, tubelet 2, patch 16, 128x256), random init."""
    from transformers import VideoMAEConfig, VideoMAEModel

    torch.manual_seed(0)
    VideoMAEModel(
        VideoMAEConfig(
            image_size=[128, 256],
            patch_size=16,
            num_frames=16,
            tubelet_size=2,
            hidden_size=32,
            num_hidden_layers=4,
            num_attention_heads=4,
            intermediate_size=64,
            use_mean_pooling=False,
        )
    ).save_pretrained(folder)
    preprocessor = {  # the shape of MCG-NJU/videomae-large's (only mean/std are read)
        "image_processor_type": "VideoMAEImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": 128},
        "do_center_crop": True,
        "crop_size": {"height": 128, "width": 256},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
        "resample": 2,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class VideoMAEBackbone(TubeletEncoderBackbone):
    family = "videomae"
    tiny_name = TINY_NAME
    build_tiny = staticmethod(build_tiny)

    def __init__(self, spec: ModelSpec, folder: Path, run: RunOptions) -> None:
        super().__init__(spec, folder, run)
        self.image_size = _pair(self.config["image_size"])
        native = int(self.config["num_frames"])
        assert spec.clip_len is not None
        if spec.clip_len > native:
            raise ConfigError(
                f"clip length {spec.clip_len} for {spec.name}: at most {native} (its fixed position table "
                f"covers {native} frames)"
            )

    @classmethod
    def has_final_norm(cls, config: dict) -> bool:
        return not config.get("use_mean_pooling", True)

    def final_norm(self) -> torch.nn.Module:
        return self.model.layernorm

    def load_modules(self) -> None:
        from transformers import VideoMAEModel

        self.model = (
            VideoMAEModel.from_pretrained(self.folder, dtype=self.dtype, num_frames=self.spec.clip_len)
            .to(self.device)
            .eval()
        )

    def check_resolution(self, resolution: tuple[int, int]) -> None:
        if tuple(resolution) != self.image_size:
            h, w = self.image_size
            raise ConfigError(
                f"resolution {resolution[0]}x{resolution[1]} for {self.spec.name}: VideoMAE's fixed position "
                f"table only fits {h}x{w}; use --resolution {h}x{w}"
            )

    def forward_blocks(self, x: torch.Tensor, blocks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_resolution((x.shape[-2], x.shape[-1]))
        grid = (x.shape[1] // self.tubelet, x.shape[-2] // self.patch, x.shape[-1] // self.patch)
        got = self.capture_blocks(blocks, lambda: self.model(pixel_values=x))
        return {b: tokens_to_maps(v, grid) for b, v in got.items()}
