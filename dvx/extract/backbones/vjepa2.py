"""V-JEPA 2 (transformers ``VJEPA2Model``, encoder only): a video baseline, not a diffusion model.

Clips (16 frames by default; any multiple of the tubelet size 2) are cut into tubelets of 2 frames x
16x16 pixels; stored temporal index k covers input frames (2k, 2k+1). ``layer.N`` is the output of
``encoder.layer[N]`` (before the encoder's final layer norm) and ``norm`` that of ``encoder.layernorm`` (the
encoder's ``last_hidden_state``), reshaped to (F/2, C, H/16, W/16). The predictor is never run.

Resolution: positions enter through 3-D RoPE, so any square resolution works, but transformers derives
the (t, y, x) of each token from ``config.crop_size // patch_size`` (the side of a square grid). dvx sets
that grid side to the input's before each forward (what loading with ``crop_size = H`` would do), so
the positions are exact at every square size; non-square inputs cannot be expressed and are refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from dvx.errors import ConfigError
from dvx.extract.encoder import TubeletEncoderBackbone
from dvx.extract.tokens import tokens_to_maps

TINY_NAME = "tiny-vjepa2-v1"


def build_tiny(folder: Path) -> None:
    """A 4-layer V-JEPA 2 encoder of width 48 (tubelet 2, patch 16, crop 128) + 1-layer predictor."""
    from transformers import VJEPA2Config, VJEPA2Model

    torch.manual_seed(0)
    VJEPA2Model(
        VJEPA2Config(
            patch_size=16,
            crop_size=128,
            frames_per_clip=16,
            tubelet_size=2,
            hidden_size=48,
            num_attention_heads=4,
            num_hidden_layers=4,
            mlp_ratio=2.0,
            pred_hidden_size=24,
            pred_num_attention_heads=2,
            pred_num_hidden_layers=1,
            pred_num_mask_tokens=2,
            num_pooler_layers=1,
        )
    ).save_pretrained(folder)
    preprocessor = {  # the shape of facebook/vjepa2-vitl-fpc64-256's (only mean/std are read)
        "video_processor_type": "VJEPA2VideoProcessor",
        "do_resize": True,
        "size": {"shortest_edge": 146},
        "do_center_crop": True,
        "crop_size": {"height": 128, "width": 128},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
    }
    (folder / "video_preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))


class VJepa2Backbone(TubeletEncoderBackbone):
    family = "vjepa2"
    tiny_name = TINY_NAME
    build_tiny = staticmethod(build_tiny)

    def load_modules(self) -> None:
        from transformers import VJEPA2Model

        self.model = VJEPA2Model.from_pretrained(self.folder, dtype=self.dtype).to(self.device).eval()

    def final_norm(self) -> torch.nn.Module:
        return self.model.encoder.layernorm

    def check_resolution(self, resolution: tuple[int, int]) -> None:
        super().check_resolution(resolution)
        h, w = resolution
        if h != w:
            raise ConfigError(
                f"resolution {h}x{w} for {self.spec.name}: V-JEPA 2's RoPE positions assume a square grid; "
                f"use a square resolution such as {h}x{h}"
            )

    def forward_blocks(self, x: torch.Tensor, blocks: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check_resolution((x.shape[-2], x.shape[-1]))
        side = x.shape[-1] // self.patch
        for layer in self.model.encoder.layer:  # the token grid of this input (see the module docstring)
            layer.attention.grid_size = side
        grid = (x.shape[1] // self.tubelet, side, side)
        got = self.capture_blocks(blocks, lambda: self.model.encoder(pixel_values_videos=x))
        return {b: tokens_to_maps(v, grid) for b, v in got.items()}
