"""ModelScope text-to-video (UNet3DConditionModel, DDPM noising, null prompt): a video model.

Clips of the native length (16) are encoded frame by frame with the SD-style ``AutoencoderKL`` (as
diffusers' ModelScope pipelines do), stacked in the UNet's (B, C, F, h, w) sample layout and denoised
together. ``T`` is the DDPM timestep of the model's own scheduler config (``alphas_cumprod``).
Conditioning: the empty prompt through its CLIP text encoder (``sd.empty_prompt_embedding``), computed
once at load. Block outputs come out of the UNet as (B*F, C, h, w) and are stored as (F, C, h, w).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from dvx.errors import ConfigError
from dvx.extract.backbones.sd import StableDiffusionBackbone
from dvx.extract.base import ModelSpec, RunOptions, SeedFn

TINY_NAME = "tiny-modelscope-v1"


def build_tiny(folder: Path) -> None:
    """A 4-level UNet3D + 8x VAE + CLIP text encoder of the real classes, random init, fixed seeds."""
    from diffusers import DDIMScheduler, UNet3DConditionModel

    from dvx.extract.tiny_parts import save_tiny_clip_text, save_tiny_sd_vae

    torch.manual_seed(0)
    UNet3DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 16, 32, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",),
        up_block_types=("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3,
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    ).save_pretrained(folder / "unet")
    save_tiny_sd_vae(folder / "vae")
    save_tiny_clip_text(folder)
    DDIMScheduler(  # ModelScope ships a DDIM config over SD's scaled-linear schedule
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        prediction_type="epsilon",
        clip_sample=False,
        set_alpha_to_one=False,
    ).save_pretrained(folder / "scheduler")


class ModelScopeBackbone(StableDiffusionBackbone):
    """SD's noising, VAE and null prompt around a UNet3D that denoises whole clips."""

    family = "modelscope"
    is_video = True
    tiny_name = TINY_NAME
    build_tiny = staticmethod(build_tiny)
    unet_class = "UNet3DConditionModel"

    def __init__(self, spec: ModelSpec, folder: Path, run: RunOptions) -> None:
        super().__init__(spec, folder, run)
        if spec.clip_len is None or spec.clip_len < 1:
            raise ConfigError(f"clip length {spec.clip_len} for {spec.name}: must be a positive frame count")

    @torch.no_grad()
    def encode(self, frames: torch.Tensor, seed_fn: SeedFn) -> torch.Tensor:
        latents = super().encode(frames, seed_fn)  # per frame: (F, C, h, w)
        return latents.permute(1, 0, 2, 3).unsqueeze(0)  # one item, the clip: (1, C, F, h, w)

    def forward_blocks(
        self, x: torch.Tensor, model_t: torch.Tensor, blocks: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        b, f = x.shape[0], x.shape[2]
        got = super().forward_blocks(x, model_t, blocks)  # (B*F, C, h, w) per block
        return {k: v.reshape(b, f, *v.shape[1:]) for k, v in got.items()}
