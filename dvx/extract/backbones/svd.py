"""Stable Video Diffusion (UNetSpatioTemporalConditionModel, EDM / v-prediction): a video model.

Clips of the native length go through the UNet together. ``T`` maps to the EDM sigma with the same
signal-to-noise ratio as SD's scaled-linear schedule at T; the input is ``c_in (z0 + sigma eps)`` with
``c_in = 1/sqrt(sigma^2 + 1)`` and the timestep ``c_noise = 0.25 ln sigma`` (as diffusers' SVD pipeline
feeds EulerDiscreteScheduler's continuous timesteps). Conditioning is the all-zero image conditioning of
seed 002: zero CLIP image embedding, zero concatenated image latent, and added time ids (fps, motion
bucket, noise augmentation) = (6, 127, 0.02) by default, the pipeline's defaults (it passes fps - 1 = 6).
The CLIP image encoder is therefore never loaded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from dvx.extract.base import ModelSpec, RunOptions, SeedFn
from dvx.extract.noise import edm_sigma_for
from dvx.extract.unet_blocks import UNetBackbone

SUBFOLDERS = ("unet", "vae", "scheduler")
TINY_NAME = "tiny-svd-v1"
DEFAULT_TIME_IDS = {"fps": 6, "motion_bucket_id": 127, "noise_aug_strength": 0.02}


def build_tiny(folder: Path) -> None:
    """A 4-level spatio-temporal UNet and temporal-decoder VAE of the real classes, random init."""
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        UNetSpatioTemporalConditionModel,
    )

    torch.manual_seed(0)
    UNetSpatioTemporalConditionModel(
        sample_size=16,
        in_channels=8,
        out_channels=4,
        block_out_channels=(32, 32, 64, 64),
        down_block_types=("CrossAttnDownBlockSpatioTemporal",) * 3 + ("DownBlockSpatioTemporal",),
        up_block_types=("UpBlockSpatioTemporal",) + ("CrossAttnUpBlockSpatioTemporal",) * 3,
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=24,
        layers_per_block=1,
        cross_attention_dim=32,
        num_attention_heads=(2, 2, 4, 4),
        num_frames=14,
    ).save_pretrained(folder / "unet")
    torch.manual_seed(1)
    AutoencoderKLTemporalDecoder(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        block_out_channels=(32, 32, 32, 32),
        layers_per_block=1,
        latent_channels=4,
    ).save_pretrained(folder / "vae")
    EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        prediction_type="v_prediction",
        interpolation_type="linear",
        use_karras_sigmas=True,
        sigma_min=0.002,
        sigma_max=700.0,
        timestep_type="continuous",
        timestep_spacing="leading",
        steps_offset=1,
    ).save_pretrained(folder / "scheduler")


class StableVideoDiffusionBackbone(UNetBackbone):
    family = "svd"
    is_video = True
    subfolders = SUBFOLDERS
    tiny_name = TINY_NAME
    build_tiny = staticmethod(build_tiny)

    def __init__(self, spec: ModelSpec, folder: Path, run: RunOptions) -> None:
        super().__init__(spec, folder, run)
        self.scheduler_config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
        self.time_ids = {k: spec.options.get(k, v) for k, v in DEFAULT_TIME_IDS.items()}

    def load_modules(self) -> None:
        from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel

        folder = self.folder
        self.unet = (
            UNetSpatioTemporalConditionModel.from_pretrained(folder / "unet", torch_dtype=self.dtype)
            .to(self.device)
            .eval()
        )
        self.vae = (
            AutoencoderKLTemporalDecoder.from_pretrained(folder / "vae", torch_dtype=torch.float32)
            .to(self.device)
            .eval()
        )

    def recipe_fields(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "latent": self.run.latent,
            "noise": {
                "kind": "edm-snr-matched",
                "convention": "sigma_T = sqrt((1 - ab_T) / ab_T) of SD scaled_linear(0.00085, 0.012); "
                "x = c_in (z0 + sigma eps), c_in = 1/sqrt(sigma^2 + 1); timestep c_noise = 0.25 ln sigma",
                "prediction_type": self.scheduler_config.get("prediction_type", "v_prediction"),
            },
            "conditioning": {
                "image_embedding": "zeros",
                "image_latent": "zeros",
                **self.time_ids,
            },
        }

    def noise_level(self, t: int) -> dict[str, Any]:
        sigma = edm_sigma_for(t)
        return {"T": t, "sigma": sigma, "snr": 1.0 / sigma**2, "model_timestep": 0.25 * math.log(sigma)}

    @torch.no_grad()
    def encode(self, frames: torch.Tensor, seed_fn: SeedFn) -> torch.Tensor:
        x = frames.to(self.device, torch.float32) * 2 - 1
        latents = self.vae_latents(self.vae, x, seed_fn) * self.vae.config.scaling_factor
        return latents.unsqueeze(0)  # one item: the clip, (1, F, 4, h, w)

    def add_noise(
        self, z0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sigma = torch.tensor([edm_sigma_for(int(v)) for v in t], dtype=torch.float32, device=z0.device)
        s = sigma.view(-1, *([1] * (z0.dim() - 1)))
        x = (z0 + s * eps) / torch.sqrt(s**2 + 1)
        return x, 0.25 * torch.log(sigma)

    def forward_blocks(
        self, x: torch.Tensor, model_t: torch.Tensor, blocks: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        b, f = x.shape[:2]
        sample = torch.cat([x, torch.zeros_like(x)], dim=2)  # zero concatenated image latent
        cond = torch.zeros(b, 1, self.unet_config["cross_attention_dim"], device=x.device, dtype=x.dtype)
        ids = self.time_ids
        time_ids = torch.tensor(
            [[ids["fps"], ids["motion_bucket_id"], ids["noise_aug_strength"]]], device=x.device, dtype=x.dtype
        ).expand(b, -1)
        got = self.capture_blocks(
            blocks,
            lambda: self.unet(
                # float32 timesteps as the pipeline passes them: the UNet casts after the sinusoid
                sample,
                model_t.float(),
                encoder_hidden_states=cond,
                added_time_ids=time_ids,
            ),
        )
        return {k: v.reshape(b, f, *v.shape[1:]) for k, v in got.items()}
