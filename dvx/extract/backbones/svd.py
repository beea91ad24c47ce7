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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from dvx.extract.base import ModelSpec, RunOptions, SeedFn
from dvx.extract.noise import edm_sigma_for
from dvx.extract.unet_blocks import UNetBackbone

SUBFOLDERS = ("unet", "vae", "scheduler")
TINY_NAME = "tiny-svd-v1"
DEFAULT_TIME_IDS = {"fps": 6, "motion_bucket_id": 127, "noise_aug_strength": 0.02}


#: the tiny spatio-temporal UNet of tiny-svd; the twins (dvx/twin/) train this same config
TINY_UNET_CONFIG: dict[str, Any] = dict(
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
)
#: the tiny temporal-decoder VAE of tiny-svd (frozen and shared by both twins)
TINY_VAE_CONFIG: dict[str, Any] = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    block_out_channels=(32, 32, 32, 32),
    layers_per_block=1,
    latent_channels=4,
)
#: SVD's EulerDiscreteScheduler settings (EDM sigmas of SD's scaled-linear schedule)
SCHEDULER_CONFIG: dict[str, Any] = dict(
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
)


def tiny_unet(seed: int = 0, **overrides: Any) -> Any:
    """A random-init ``UNetSpatioTemporalConditionModel`` of the tiny config (seeded)."""
    from diffusers import UNetSpatioTemporalConditionModel

    torch.manual_seed(seed)
    return UNetSpatioTemporalConditionModel(**(TINY_UNET_CONFIG | overrides))


def tiny_vae(seed: int = 1) -> Any:
    """A random-init ``AutoencoderKLTemporalDecoder`` of the tiny config (seeded)."""
    from diffusers import AutoencoderKLTemporalDecoder

    torch.manual_seed(seed)
    return AutoencoderKLTemporalDecoder(**TINY_VAE_CONFIG)


def scheduler(**overrides: Any) -> Any:
    """SVD's ``EulerDiscreteScheduler`` (``overrides``: e.g. the twins' ``prediction_type="epsilon"``)."""
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(**(SCHEDULER_CONFIG | overrides))


def build_tiny(folder: Path) -> None:
    """A 4-level spatio-temporal UNet and temporal-decoder VAE of the real classes, random init."""
    tiny_unet(0).save_pretrained(folder / "unet")
    tiny_vae(1).save_pretrained(folder / "vae")
    scheduler().save_pretrained(folder / "scheduler")


# ---- what extraction and twin training share: noise convention and null conditioning ----------------
def edm_noised(z0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The UNet input ``c_in (z0 + sigma eps)`` and timestep ``c_noise = 0.25 ln sigma`` for DDPM-scale
    ``t`` (B,) (sigma SNR-matched to SD's scaled-linear schedule; see the module docstring)."""
    sigma = torch.tensor([edm_sigma_for(int(v)) for v in t], dtype=torch.float32, device=z0.device)
    s = sigma.view(-1, *([1] * (z0.dim() - 1)))
    return (z0 + s * eps) / torch.sqrt(s**2 + 1), 0.25 * torch.log(sigma)


def null_conditioning(
    batch: int,
    cross_attention_dim: int,
    time_ids: Mapping[str, float],
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The all-zero image conditioning for ``batch`` samples: a zero CLIP image embedding
    (B, 1, cross_attention_dim) and the added time ids (fps, motion bucket, noise augmentation) (B, 3)."""
    cond = torch.zeros(batch, 1, cross_attention_dim, device=device, dtype=dtype)
    ids = torch.tensor(
        [[time_ids["fps"], time_ids["motion_bucket_id"], time_ids["noise_aug_strength"]]],
        device=device,
        dtype=dtype,
    ).expand(batch, -1)
    return cond, ids


def unet_sample(x: torch.Tensor) -> torch.Tensor:
    """(B, F, 4, h, w) noised latents with the zero concatenated image latent: (B, F, 8, h, w)."""
    return torch.cat([x, torch.zeros_like(x)], dim=2)


def denoise(
    unet: Any, x: torch.Tensor, model_t: torch.Tensor, time_ids: Mapping[str, float] = DEFAULT_TIME_IDS
) -> torch.Tensor:
    """One UNet forward on (B, F, 4, h, w) noised latents under the null conditioning (float32 timesteps
    as the pipeline passes them: the UNet casts after the sinusoid)."""
    cond, ids = null_conditioning(x.shape[0], unet.config.cross_attention_dim, time_ids, x.device, x.dtype)
    out: torch.Tensor = unet(
        unet_sample(x), model_t.float(), encoder_hidden_states=cond, added_time_ids=ids
    ).sample
    return out


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
        return edm_noised(z0, t, eps)

    def forward_blocks(
        self, x: torch.Tensor, model_t: torch.Tensor, blocks: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        b, f = x.shape[:2]
        got = self.capture_blocks(blocks, lambda: denoise(self.unet, x, model_t, self.time_ids))
        return {k: v.reshape(b, f, *v.shape[1:]) for k, v in got.items()}


# ---- the twins dvx trains (dvx/twin/): the same family, weights only from --weights ------------------
TWIN_SOURCE = "twin:needs-weights"


def _twin_folder(spec: ModelSpec) -> Path:
    from dvx.errors import ConfigError

    if spec.source == TWIN_SOURCE:
        raise ConfigError(
            f"model {spec.name!r} has no default weights: pass --weights DIR, a checkpoint folder written "
            "by `dvx twin train` (e.g. OUT/step-500)"
        )
    return StableVideoDiffusionBackbone.folder_for(spec)


class TwinSVDBackbone(StableVideoDiffusionBackbone):
    """``twin-svd``: a twin trained by ``dvx twin train`` run as SVD runs, on clips of ``clip_len``."""

    @classmethod
    def folder_for(cls, spec: ModelSpec) -> Path:
        return _twin_folder(spec)


class SVDFramesBackbone(StableVideoDiffusionBackbone):
    """``twin-svd-frames``: the same network run on every frame as its own 1-frame clip, as the image twin
    was trained (F = 1: its temporal layers see one frame). An image model for the runner: frames are
    batched, one item each."""

    is_video = False

    @classmethod
    def folder_for(cls, spec: ModelSpec) -> Path:
        return _twin_folder(spec)

    def recipe_fields(self) -> dict[str, Any]:
        fields = super().recipe_fields()
        fields["conditioning"] = {**fields["conditioning"], "frames_per_forward": 1}
        return fields

    @torch.no_grad()
    def encode(self, frames: torch.Tensor, seed_fn: SeedFn) -> torch.Tensor:
        x = frames.to(self.device, torch.float32) * 2 - 1
        return self.vae_latents(self.vae, x, seed_fn) * self.vae.config.scaling_factor  # (n, 4, h, w)

    def forward_blocks(
        self, x: torch.Tensor, model_t: torch.Tensor, blocks: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        got = super().forward_blocks(x.unsqueeze(1), model_t, blocks)  # (B, 1, ...) per block
        return {k: v[:, 0] for k, v in got.items()}
