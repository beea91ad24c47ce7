"""ModelScope text-to-video (UNet3DConditionModel, DDPM noising, null prompt): a video model.

Clips of the native length (16) are encoded frame by frame with the SD-style ``AutoencoderKL`` (as
diffusers' ModelScope pipelines do), stacked in the UNet's (B, C, F, h, w) sample layout and denoised
together. ``T`` is the DDPM timestep of the model's own scheduler config (``alphas_cumprod``).
Conditioning: the empty prompt through its CLIP text encoder (``sd.empty_prompt_embedding``), computed
once at load. Block outputs come out of the UNet as (B*F, C, h, w) and are stored as (F, C, h, w).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dvx.errors import ConfigError
from dvx.extract.backbones.sd import empty_prompt_embedding
from dvx.extract.base import DiffusionBackbone, ModelSpec, RunOptions, SeedFn
from dvx.extract.unet_blocks import unet_block_modules, unet_block_names
from dvx.extract.weights import digest_folder, resolve_folder

SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
TINY_NAME = "tiny-modelscope-v1"


def build_tiny(folder: Path) -> None:
    """A 4-level UNet3D + 8x VAE + CLIP text encoder of the real classes, random init, fixed seeds."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from dvx.extract.tiny_text import save_tiny_clip_tokenizer

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
    torch.manual_seed(1)
    AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=128,
    ).save_pretrained(folder / "vae")
    torch.manual_seed(2)
    CLIPTextModel(
        CLIPTextConfig(
            vocab_size=16,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    ).save_pretrained(folder / "text_encoder")
    save_tiny_clip_tokenizer(folder / "tokenizer")
    DDIMScheduler(  # ModelScope ships a DDIM config over SD's scaled-linear schedule
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        prediction_type="epsilon",
        clip_sample=False,
        set_alpha_to_one=False,
    ).save_pretrained(folder / "scheduler")


class ModelScopeBackbone(DiffusionBackbone):
    family = "modelscope"
    is_video = True

    def __init__(self, spec: ModelSpec, folder: Path, run: RunOptions) -> None:
        from diffusers import DDPMScheduler

        super().__init__(spec, folder, run)
        if spec.clip_len is None or spec.clip_len < 1:
            raise ConfigError(f"clip length {spec.clip_len} for {spec.name}: must be a positive frame count")
        self.unet_config = json.loads((folder / "unet" / "config.json").read_text())
        self.vae_config = json.loads((folder / "vae" / "config.json").read_text())
        # the training noise schedule of the scheduler config, whatever sampler class it names
        self.scheduler = DDPMScheduler.from_pretrained(folder / "scheduler")
        self.alphas_cumprod = self.scheduler.alphas_cumprod.to(torch.float32)
        self.weights = digest_folder(folder, SUBFOLDERS)

    def load_modules(self) -> None:
        from diffusers import AutoencoderKL, UNet3DConditionModel

        folder = self.folder
        self.unet = (
            UNet3DConditionModel.from_pretrained(folder / "unet", torch_dtype=self.dtype)
            .to(self.device)
            .eval()
        )
        self.vae = (
            AutoencoderKL.from_pretrained(folder / "vae", torch_dtype=torch.float32).to(self.device).eval()
        )
        self.null = empty_prompt_embedding(folder, self.device, self.dtype)

    @classmethod
    def folder_for(cls, spec: ModelSpec) -> Path:
        patterns = [f"{s}/*" for s in SUBFOLDERS] + ["model_index.json"]
        return resolve_folder(spec.source, spec.revision, patterns, build_tiny, TINY_NAME)

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

    def recipe_fields(self) -> dict[str, Any]:
        cfg = self.scheduler.config
        return {
            "weights": self.weights,
            "latent": self.run.latent,
            "noise": {
                "kind": "ddpm",
                "convention": "z_T = sqrt(ab_T) z0 + sqrt(1 - ab_T) eps; unet timestep T",
                "beta_schedule": cfg.beta_schedule,
                "beta_start": cfg.beta_start,
                "beta_end": cfg.beta_end,
                "num_train_timesteps": cfg.num_train_timesteps,
                "prediction_type": cfg.prediction_type,
            },
            "conditioning": {"prompt": "", "text_encoder": "clip (last hidden state)"},
        }

    def noise_level(self, t: int) -> dict[str, Any]:
        ab = float(self.alphas_cumprod[t])
        return {
            "T": t,
            "alpha_cumprod": ab,
            "snr": ab / (1 - ab),
            "sigma": ((1 - ab) / ab) ** 0.5,
            "model_timestep": t,
        }

    @torch.no_grad()
    def encode(self, frames: torch.Tensor, seed_fn: SeedFn) -> torch.Tensor:
        x = frames.to(self.device, torch.float32) * 2 - 1
        latents = self.vae_latents(self.vae, x, seed_fn) * self.vae.config.scaling_factor  # (F, C, h, w)
        return latents.permute(1, 0, 2, 3).unsqueeze(0)  # one item, the clip: (1, C, F, h, w)

    def add_noise(
        self, z0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ab = self.alphas_cumprod.to(z0.device)[t].view(-1, *([1] * (z0.dim() - 1)))
        return ab.sqrt() * z0 + (1 - ab).sqrt() * eps, t

    def forward_blocks(
        self, x: torch.Tensor, model_t: torch.Tensor, blocks: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        b, f = x.shape[0], x.shape[2]
        cond = self.null.expand(b, -1, -1)
        got = self.capture_blocks(blocks, lambda: self.unet(x, model_t, encoder_hidden_states=cond))
        return {k: v.reshape(b, f, *v.shape[1:]) for k, v in got.items()}
