"""Wan 2.1 (WanTransformer3DModel over the causal 3-D AutoencoderKLWan, rectified flow): the video DiT
standing in for Open-Sora.

Why Wan: Open-Sora >= 1.2 is a rectified-flow spatio-temporal DiT over a temporally compressing 3-D VAE;
Wan 2.1 shares both and ships in diffusers, Open-Sora does not (Latte, also in diffusers, is close only to
Open-Sora 1.0: DDPM over a per-frame SD VAE).

Clips have ``4k + 1`` frames (81 natively). The causal VAE encodes the first frame alone and every later
group of 4 frames into one latent frame, so stored temporal index 0 covers frame 0 and index j >= 1
covers frames 4j-3 .. 4j. Latents are the posterior mean (or a seeded sample) normalised per channel with
the VAE config's ``latents_mean``/``latents_std``, as WanPipeline's video-to-video path does. ``T`` maps
to the flow sigma through the scheduler config's shift (``flow_shift`` of UniPC or ``shift`` of
FlowMatchEuler; option ``shift`` overrides it, as Wan's authors use 3.0 at 480p and 5.0 at 720p):
``sigma = shift s / (1 + (shift - 1) s)`` with ``s = T/1000``; ``x = (1 - sigma) z0 + sigma eps``;
timestep ``1000 sigma``.

Conditioning: the empty prompt through UMT5 as ``WanPipeline.encode_prompt`` computes it (the pipeline
class is instantiated with the text components only), 512 tokens: the hidden states of the real tokens,
zeros after them. The text encoder is dropped once computed. ``layer.N`` is the token output of
``blocks[N]`` reshaped to (F', C, H/16, W/16) (VAE factor 8 x patch 2; F' = latent frames / patch_t);
``layer.N.attn1.q`` / ``.k`` the self-attention query/key after its RMSNorm and 3-D rotary embedding
(dvx/extract/attention.py), in the same layout.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dvx.errors import ConfigError
from dvx.extract.base import DiffusionBackbone, ModelSpec, RunOptions, SeedFn
from dvx.extract.noise import flow_add_noise, flow_noise_fields, flow_noise_level
from dvx.extract.tokens import tokens_to_maps
from dvx.extract.weights import digest_folder, resolve_folder

SUBFOLDERS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
TINY_NAME = "tiny-wan-v1"
MAX_SEQUENCE_LENGTH = 512  # WanPipeline.__call__'s default


def build_tiny(folder: Path) -> None:
    """A 4-layer Wan DiT, a tiny causal 3-D VAE (x8 space, x4 time) and a tiny UMT5, random init;
    saved as a WanPipeline (the hub layout, with model_index.json)."""
    import shutil

    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import AutoTokenizer, UMT5Config, UMT5EncoderModel

    from dvx.extract.tiny_parts import save_tiny_t5_tokenizer

    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=32,
        ffn_dim=32,
        num_layers=4,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    torch.manual_seed(1)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    torch.manual_seed(2)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=8,
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
        )
    )
    tok = folder.with_name(folder.name + ".tok")
    save_tiny_t5_tokenizer(tok, max_length=MAX_SEQUENCE_LENGTH)
    WanPipeline(
        tokenizer=AutoTokenizer.from_pretrained(tok),
        text_encoder=text_encoder,
        vae=vae,
        scheduler=UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0, num_train_timesteps=1000
        ),
        transformer=transformer,
    ).save_pretrained(folder)
    shutil.rmtree(tok)


def spatial_factor(vae_config: dict[str, Any]) -> int:
    """Spatial downsampling of the causal 3-D VAE (x 8 for Wan 2.1)."""
    downs = vae_config.get("temperal_downsample", [False, True, True])
    return int(vae_config.get("scale_factor_spatial") or 2 ** len(downs))


def flow_shift(scheduler_config: dict[str, Any], name: str) -> float:
    """The flow shift of a Wan scheduler config (UniPC ``flow_shift`` or FlowMatchEuler ``shift``)."""
    if scheduler_config.get("use_dynamic_shifting"):
        raise ConfigError(f"{name}: schedulers with dynamic (resolution-dependent) shift are not supported")
    if scheduler_config.get("use_flow_sigmas") or "flow_shift" in scheduler_config:
        return float(scheduler_config.get("flow_shift", 1.0))
    if "shift" in scheduler_config:
        return float(scheduler_config["shift"])
    raise ConfigError(f"{name}: its scheduler config has no flow shift (not a flow-matching scheduler)")


class WanBackbone(DiffusionBackbone):
    family = "wan"
    denoiser = "transformer"
    is_video = True

    def __init__(self, spec: ModelSpec, folder: Path, run: RunOptions) -> None:
        super().__init__(spec, folder, run)
        self.transformer_config = json.loads((folder / "transformer" / "config.json").read_text())
        self.vae_config = json.loads((folder / "vae" / "config.json").read_text())
        self.scheduler_config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
        self.shift = float(spec.options.get("shift") or flow_shift(self.scheduler_config, spec.name))
        self.patch = tuple(int(p) for p in self.transformer_config["patch_size"])
        downs = self.vae_config.get("temperal_downsample", [False, True, True])
        self.time_factor = int(
            self.vae_config.get("scale_factor_temporal") or 2 ** sum(bool(d) for d in downs)
        )
        self.space_factor = spatial_factor(self.vae_config)
        self._check_clip(spec.clip_len)
        self.weights = digest_folder(folder, SUBFOLDERS)

    def _check_clip(self, clip_len: int | None) -> None:
        k = self.time_factor
        if clip_len is None or clip_len < 1 or (clip_len - 1) % k:
            raise ConfigError(
                f"clip length {clip_len} for {self.spec.name}: the causal VAE needs {k}k+1 frames "
                f"(e.g. {k + 1}, {2 * k + 1}, 81)"
            )
        latent_frames = (clip_len - 1) // k + 1
        if latent_frames % self.patch[0]:
            raise ConfigError(
                f"clip length {clip_len} for {self.spec.name}: {latent_frames} latent frames are not a "
                f"multiple of the temporal patch size {self.patch[0]}"
            )

    def load_modules(self) -> None:
        from diffusers import AutoencoderKLWan, WanTransformer3DModel

        folder = self.folder
        self.transformer = (
            WanTransformer3DModel.from_pretrained(folder / "transformer", torch_dtype=self.dtype)
            .to(self.device)
            .eval()
        )
        self.vae = (
            AutoencoderKLWan.from_pretrained(folder / "vae", torch_dtype=torch.float32).to(self.device).eval()
        )
        self.null = null_conditioning(folder, self.device, self.dtype)

    @classmethod
    def folder_for(cls, spec: ModelSpec) -> Path:
        patterns = [f"{s}/*" for s in SUBFOLDERS] + ["model_index.json"]
        return resolve_folder(spec.source, spec.revision, patterns, build_tiny, TINY_NAME)

    @classmethod
    def block_names_for(cls, folder: Path) -> list[str]:
        cfg = json.loads((folder / "transformer" / "config.json").read_text())
        return [f"layer.{i}" for i in range(cfg["num_layers"])]

    @classmethod
    def block_shapes_for(
        cls, folder: Path, resolution: tuple[int, int], clip_len: int | None = None
    ) -> dict[str, tuple[int, int, int]]:
        cfg = json.loads((folder / "transformer" / "config.json").read_text())
        space = spatial_factor(json.loads((folder / "vae" / "config.json").read_text()))
        _, ph, pw = (int(p) for p in cfg["patch_size"])
        shape = (
            cfg["num_attention_heads"] * cfg["attention_head_dim"],
            resolution[0] // (space * ph),
            resolution[1] // (space * pw),
        )
        return {f"layer.{i}": shape for i in range(cfg["num_layers"])}

    def block_modules(self) -> dict[str, nn.Module]:
        self.ensure_loaded()
        return {f"layer.{i}": m for i, m in enumerate(self.transformer.blocks)}

    @property
    def resolution_multiple(self) -> int:
        return self.space_factor * max(self.patch[1], self.patch[2])

    def temporal_map(self, clip_len: int) -> list[list[int]]:
        k = self.time_factor
        latent = [[0]] + [list(range(k * (j - 1) + 1, k * j + 1)) for j in range(1, (clip_len - 1) // k + 1)]
        pt = self.patch[0]
        return [[f for m in latent[i : i + pt] for f in m] for i in range(0, len(latent), pt)]

    def recipe_fields(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "latent": self.run.latent,
            "noise": flow_noise_fields(
                self.shift,
                int(self.scheduler_config.get("num_train_timesteps", 1000)),
                "(vae mean - latents_mean) / latents_std",
            ),
            "conditioning": {
                "prompt": "",
                "text_encoder": "umt5 (last hidden state, zeros after the real tokens)",
                "max_sequence_length": MAX_SEQUENCE_LENGTH,
            },
        }

    def noise_level(self, t: int) -> dict[str, Any]:
        return flow_noise_level(t, self.shift)

    @torch.no_grad()
    def encode(self, frames: torch.Tensor, seed_fn: SeedFn) -> torch.Tensor:
        self._check_clip(len(frames))
        # (F, 3, H, W) in [0, 1] -> (1, 3, F, H, W) in [-1, 1], the VAE's video layout
        x = (frames.to(self.device, torch.float32) * 2 - 1).permute(1, 0, 2, 3).unsqueeze(0)
        z = self.vae_latents(self.vae, x, seed_fn)  # (1, C, F', h, w)
        cfg = self.vae.config
        mean = torch.tensor(cfg.latents_mean, device=z.device).view(1, -1, 1, 1, 1)
        std = torch.tensor(cfg.latents_std, device=z.device).view(1, -1, 1, 1, 1)
        return (z - mean) / std

    def add_noise(
        self, z0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return flow_add_noise(z0, t, eps, self.shift)

    def forward_blocks(
        self, x: torch.Tensor, model_t: torch.Tensor, blocks: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        b, _, f, h, w = x.shape
        pt, ph, pw = self.patch
        grid = (f // pt, h // ph, w // pw)
        got = self.capture_blocks(
            blocks,
            lambda: self.transformer(
                hidden_states=x,
                timestep=model_t.float(),  # as the pipeline: cast only after the sinusoid
                encoder_hidden_states=self.null.expand(b, -1, -1),
            ),
        )
        return {k: tokens_to_maps(v, grid) for k, v in got.items()}


def null_conditioning(folder: Path, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(1, 512, D) UMT5 embedding of the empty prompt, computed by ``WanPipeline.encode_prompt`` on a
    pipeline holding only the tokenizer and text encoder."""
    from diffusers import WanPipeline
    from transformers import AutoTokenizer, UMT5EncoderModel

    pipe = WanPipeline(
        tokenizer=AutoTokenizer.from_pretrained(folder / "tokenizer"),
        text_encoder=UMT5EncoderModel.from_pretrained(folder / "text_encoder", dtype=dtype).to(device).eval(),
        vae=None,
        scheduler=None,
    )
    with torch.no_grad():
        embeds, _ = pipe.encode_prompt(
            prompt="",
            do_classifier_free_guidance=False,
            max_sequence_length=MAX_SEQUENCE_LENGTH,
            device=device,
            dtype=dtype,
        )
    if not torch.isfinite(embeds).all():
        raise ConfigError(
            f"{folder}: the empty-prompt conditioning overflows in {dtype}; use --dtype bfloat16 or float32"
        )
    return embeds
