"""DINOv2 (transformers ``Dinov2Model``): the image baseline, not a diffusion model.

Frames go through the ViT one by one (batched) at any resolution that is a multiple of the patch size
(14): the model interpolates its position embeddings to the patch grid (bicubic, as DINOv2 does).
``layer.N`` is the output of ``encoder.layer[N]`` (before the final layer norm) and ``norm`` the output of
the final ``layernorm`` (the patch tokens of ``last_hidden_state``: DINO's DAVIS features), patch tokens only
(the CLS token, and register tokens of ``Dinov2WithRegistersModel`` checkpoints, are dropped), reshaped to
(C, H/14, W/14).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from dvx.errors import ConfigError
from dvx.extract.base import ModelSpec, RunOptions
from dvx.extract.encoder import EncoderBackbone
from dvx.extract.tokens import tokens_to_maps

TINY_NAME = "tiny-dinov2-v1"
MODEL_TYPES = ("dinov2", "dinov2_with_registers")


def build_tiny(folder: Path) -> None:
    """A 4-layer DINOv2 ViT/14 of width 32, random init, with an ImageNet-normalising preprocessor."""
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    Dinov2Model(
        Dinov2Config(
            hidden_size=32,
            num_hidden_layers=4,
            num_attention_heads=4,
            mlp_ratio=2,
            patch_size=14,
            image_size=126,
        )
    ).save_pretrained(folder)
    # the preprocessor config of facebook/dinov2-large, at the tiny crop size (only mean/std are read)
    preprocessor = {
        "image_processor_type": "BitImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": 144},
        "do_center_crop": True,
        "crop_size": {"height": 126, "width": 126},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
        "do_convert_rgb": True,
        "resample": 3,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))


class DinoV2Backbone(EncoderBackbone):
    family = "dinov2"
    is_video = False
    tiny_name = TINY_NAME
    build_tiny = staticmethod(build_tiny)

    def __init__(self, spec: ModelSpec, folder: Path, run: RunOptions) -> None:
        super().__init__(spec, folder, run)
        if self.config.get("model_type") not in MODEL_TYPES:
            raise ConfigError(
                f"{folder}: model_type {self.config.get('model_type')!r} is not a DINOv2 model "
                f"({', '.join(MODEL_TYPES)})"
            )
        self.prefix_tokens = 1 + int(self.config.get("num_register_tokens", 0))

    def load_modules(self) -> None:
        from transformers import AutoModel

        self.model = AutoModel.from_pretrained(self.folder, dtype=self.dtype).to(self.device).eval()

    def final_norm(self) -> torch.nn.Module:
        return self.model.layernorm

    def forward_blocks(self, x: torch.Tensor, blocks: Sequence[str]) -> dict[str, torch.Tensor]:
        p = self.resolution_multiple
        grid = (1, x.shape[-2] // p, x.shape[-1] // p)
        got = self.capture_blocks(blocks, lambda: self.model(pixel_values=x))
        return {b: tokens_to_maps(v[:, self.prefix_tokens :], grid)[:, 0] for b, v in got.items()}
