"""Stable Diffusion 1.x / 2.x (UNet2DConditionModel, DDPM noising, null prompt): an image model.

Frames go through the UNet one by one (batched); ``T`` is the DDPM timestep of the model's own scheduler
(``alphas_cumprod`` from its scheduler config; ε- or v-prediction makes no difference to noising).
Conditioning: the empty prompt through the CLIP text encoder, computed once at load.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from dvx.extract.base import ModelSpec, RunOptions, SeedFn
from dvx.extract.noise import snr
from dvx.extract.unet_blocks import UNetBackbone

SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
TINY_NAME = "tiny-sd-v1"


def build_tiny(folder: Path) -> None:
    """A 4-level SD-style UNet + 8x VAE + CLIP text encoder, random init with a fixed seed."""
    from diffusers import DDPMScheduler, UNet2DConditionModel

    from dvx.extract.tiny_parts import save_tiny_clip_text, save_tiny_sd_vae

    torch.manual_seed(0)
    UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 32, 64, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    ).save_pretrained(folder / "unet")
    save_tiny_sd_vae(folder / "vae")
    save_tiny_clip_text(folder)
    DDPMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        prediction_type="epsilon",
    ).save_pretrained(folder / "scheduler")


def empty_prompt_embedding(folder: Path, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(1, 77, D) hidden states of the empty prompt, as StableDiffusionPipeline.encode_prompt has them."""
    from transformers import AutoTokenizer, CLIPTextModel

    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    encoder = CLIPTextModel.from_pretrained(folder / "text_encoder", torch_dtype=dtype).to(device).eval()
    ids = tokenizer(
        [""],
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    mask = ids.attention_mask.to(device) if getattr(encoder.config, "use_attention_mask", False) else None
    with torch.no_grad():
        emb = encoder(ids.input_ids.to(device), attention_mask=mask)[0]
    return emb.to(dtype)


class StableDiffusionBackbone(UNetBackbone):
    family = "sd"
    is_video = False
    subfolders = SUBFOLDERS
    tiny_name = TINY_NAME
    build_tiny = staticmethod(build_tiny)
    unet_class = "UNet2DConditionModel"

    def __init__(self, spec: ModelSpec, folder: Path, run: RunOptions) -> None:
        from diffusers import DDPMScheduler

        super().__init__(spec, folder, run)
        # the training noise schedule of the scheduler config, whatever sampler class it names
        self.scheduler = DDPMScheduler.from_pretrained(folder / "scheduler")
        self.alphas_cumprod = self.scheduler.alphas_cumprod.to(torch.float32)

    def load_modules(self) -> None:
        import diffusers
        from diffusers import AutoencoderKL

        unet_cls = getattr(diffusers, self.unet_class)
        self.unet = (
            unet_cls.from_pretrained(self.folder / "unet", torch_dtype=self.dtype).to(self.device).eval()
        )
        self.vae = (
            AutoencoderKL.from_pretrained(self.folder / "vae", torch_dtype=torch.float32)
            .to(self.device)
            .eval()
        )
        self.null = empty_prompt_embedding(self.folder, self.device, self.dtype)

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
            "snr": snr(ab),
            "sigma": ((1 - ab) / ab) ** 0.5,
            "model_timestep": t,
        }

    @torch.no_grad()
    def encode(self, frames: torch.Tensor, seed_fn: SeedFn) -> torch.Tensor:
        x = frames.to(self.device, torch.float32) * 2 - 1
        return self.vae_latents(self.vae, x, seed_fn) * self.vae.config.scaling_factor

    def add_noise(
        self, z0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ab = self.alphas_cumprod.to(z0.device)[t].view(-1, *([1] * (z0.dim() - 1)))
        return ab.sqrt() * z0 + (1 - ab).sqrt() * eps, t

    def forward_blocks(
        self, x: torch.Tensor, model_t: torch.Tensor, blocks: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        cond = self.null.expand(x.shape[0], -1, -1)
        return self.capture_blocks(blocks, lambda: self.unet(x, model_t, encoder_hidden_states=cond))
