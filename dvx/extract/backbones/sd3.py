"""Stable Diffusion 3 (SD3Transformer2DModel, rectified flow, null prompt): an image model.

Frames go through the MMDiT one by one (batched). Latents are ``(mean - shift_factor) * scaling_factor``
of the VAE posterior, as SD3's img2img pipeline makes them. ``T`` maps to the flow sigma through the
scheduler config's shift: ``s = T/1000``, ``sigma = shift s / (1 + (shift - 1) s)``,
``x = (1 - sigma) z0 + sigma eps``, and the transformer sees timestep ``1000 sigma`` (as
FlowMatchEulerDiscreteScheduler feeds it).

Conditioning: the empty prompt through CLIP-L, CLIP-G and T5, built by ``StableDiffusion3Pipeline.
encode_prompt`` itself (the pipeline class is instantiated with the text components only, no copy of its
logic): ``prompt_embeds`` = [CLIP-L ‖ CLIP-G penultimate hidden states, zero-padded to the T5 width ;
T5 hidden states (256 tokens)] and ``pooled_prompt_embeds`` = [CLIP-L ‖ CLIP-G projected pooled output].
Option ``use_t5`` (default True): False replaces the T5 part by zeros, as the pipeline does with
``text_encoder_3=None`` (and T5 is then neither downloaded nor loaded). The text encoders are dropped
once the null conditioning is computed.

``layer.N`` is the image-token output of ``transformer_blocks[N]`` (a JointTransformerBlock returns
``(context, image)`` tokens; the last block is ``context_pre_only`` and returns ``(None, image)``),
reshaped to (C, H/16, W/16) (VAE factor 8 x patch 2). ``layer.N.attn.q`` / ``.k``: the image-token part
of block N's joint-attention query/key (dvx/extract/attention.py), in the same layout.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dvx.errors import ConfigError
from dvx.extract.base import DiffusionBackbone, ModelSpec, RunOptions, SeedFn
from dvx.extract.noise import flow_add_noise, flow_noise_fields, flow_noise_level
from dvx.extract.tokens import tokens_to_maps
from dvx.extract.weights import digest_folder, resolve_folder

CORE = ("transformer", "vae", "scheduler")
CLIP_PARTS = ("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")
T5_PARTS = ("text_encoder_3", "tokenizer_3")
TINY_NAME = "tiny-sd3-v1"
MAX_SEQUENCE_LENGTH = 256  # StableDiffusion3Pipeline.__call__'s default for the T5 tokens


def build_tiny(folder: Path) -> None:
    """A 4-layer MMDiT, a 16-channel 8x VAE with shift/scale, two tiny CLIPs and a tiny T5, random init;
    saved as a StableDiffusion3Pipeline (the hub layout, with model_index.json)."""
    import shutil

    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import (
        AutoTokenizer,
        CLIPTextModelWithProjection,
        T5Config,
        T5EncoderModel,
    )

    from dvx.extract.tiny_parts import save_tiny_clip_tokenizer, save_tiny_t5_tokenizer, tiny_clip_config

    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(
        sample_size=32,
        patch_size=2,
        in_channels=16,
        num_layers=4,
        attention_head_dim=8,
        num_attention_heads=4,
        joint_attention_dim=48,
        caption_projection_dim=32,
        pooled_projection_dim=40,
        out_channels=16,
        pos_embed_max_size=32,
    )
    torch.manual_seed(1)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=8,
        sample_size=128,
        scaling_factor=1.5305,
        shift_factor=0.0609,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )

    def clip(seed: int, width: int) -> CLIPTextModelWithProjection:
        torch.manual_seed(seed)
        return CLIPTextModelWithProjection(
            tiny_clip_config(hidden_size=width, projection_dim=width, intermediate_size=2 * width)
        )

    torch.manual_seed(4)
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=8,
            d_model=48,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
        )
    )
    toks = folder.with_name(folder.name + ".tok")
    save_tiny_clip_tokenizer(toks / "clip")
    save_tiny_t5_tokenizer(toks / "t5", max_length=MAX_SEQUENCE_LENGTH)
    StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0),
        vae=vae,
        text_encoder=clip(2, 16),
        tokenizer=AutoTokenizer.from_pretrained(toks / "clip"),
        text_encoder_2=clip(3, 24),
        tokenizer_2=AutoTokenizer.from_pretrained(toks / "clip"),
        text_encoder_3=t5,
        tokenizer_3=AutoTokenizer.from_pretrained(toks / "t5"),
    ).save_pretrained(folder)
    shutil.rmtree(toks)


class SD3Backbone(DiffusionBackbone):
    family = "sd3"
    denoiser = "transformer"
    is_video = False

    def __init__(self, spec: ModelSpec, folder: Path, run: RunOptions) -> None:
        super().__init__(spec, folder, run)
        self.use_t5 = use_t5(spec)
        self.transformer_config = json.loads((folder / "transformer" / "config.json").read_text())
        self.vae_config = json.loads((folder / "vae" / "config.json").read_text())
        self.scheduler_config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
        if self.scheduler_config.get("use_dynamic_shifting"):
            raise ConfigError(
                f"{spec.name}: schedulers with dynamic (resolution-dependent) shift are not supported"
            )
        self.shift = float(self.scheduler_config.get("shift", 1.0))
        self.weights = digest_folder(folder, parts(self.use_t5))

    def load_modules(self) -> None:
        from diffusers import AutoencoderKL, SD3Transformer2DModel

        folder = self.folder
        self.transformer = (
            SD3Transformer2DModel.from_pretrained(folder / "transformer", torch_dtype=self.dtype)
            .to(self.device)
            .eval()
        )
        self.vae = (
            AutoencoderKL.from_pretrained(folder / "vae", torch_dtype=torch.float32).to(self.device).eval()
        )
        self.null, self.null_pooled = null_conditioning(
            folder, self.transformer, self.use_t5, self.device, self.dtype
        )

    @classmethod
    def folder_for(cls, spec: ModelSpec) -> Path:
        patterns = [f"{s}/*" for s in parts(use_t5(spec))] + ["model_index.json"]
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
        vae = json.loads((folder / "vae" / "config.json").read_text())
        step = 2 ** (len(vae["block_out_channels"]) - 1) * int(cfg["patch_size"])
        shape = (
            cfg["num_attention_heads"] * cfg["attention_head_dim"],
            resolution[0] // step,
            resolution[1] // step,
        )
        return {f"layer.{i}": shape for i in range(cfg["num_layers"])}

    def block_modules(self) -> dict[str, nn.Module]:
        self.ensure_loaded()
        return {f"layer.{i}": m for i, m in enumerate(self.transformer.transformer_blocks)}

    def block_selectors(self) -> dict[str, Callable[[Any], torch.Tensor]]:
        # JointTransformerBlock -> (context tokens or None, image tokens)
        return {b: (lambda out: out[1]) for b in self.block_names}

    @property
    def vae_factor(self) -> int:
        return 2 ** (len(self.vae_config["block_out_channels"]) - 1)

    @property
    def resolution_multiple(self) -> int:
        return self.vae_factor * int(self.transformer_config["patch_size"])

    def check_resolution(self, resolution: tuple[int, int]) -> None:
        super().check_resolution(resolution)
        limit = self.transformer_config.get("pos_embed_max_size")
        if limit:
            most = int(limit) * self.resolution_multiple
            if max(resolution) > most:
                raise ConfigError(
                    f"resolution {resolution[0]}x{resolution[1]} for {self.spec.name}: at most {most} pixels "
                    f"a side (its position embedding covers {limit}x{limit} patches)"
                )

    def recipe_fields(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "latent": self.run.latent,
            "noise": flow_noise_fields(
                self.shift,
                int(self.scheduler_config.get("num_train_timesteps", 1000)),
                "(vae mean - shift_factor) * scaling_factor",
            ),
            "conditioning": {
                "prompt": "",
                "text_encoders": "clip-l + clip-g (penultimate hidden, pooled) + t5"
                if self.use_t5
                else "clip-l + clip-g (penultimate hidden, pooled); t5 part zeros",
                "use_t5": self.use_t5,
                "max_sequence_length": MAX_SEQUENCE_LENGTH,
            },
        }

    def noise_level(self, t: int) -> dict[str, Any]:
        return flow_noise_level(t, self.shift)

    @torch.no_grad()
    def encode(self, frames: torch.Tensor, seed_fn: SeedFn) -> torch.Tensor:
        x = frames.to(self.device, torch.float32) * 2 - 1
        cfg = self.vae.config
        return (self.vae_latents(self.vae, x, seed_fn) - (cfg.shift_factor or 0.0)) * cfg.scaling_factor

    def add_noise(
        self, z0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return flow_add_noise(z0, t, eps, self.shift)

    def forward_blocks(
        self, x: torch.Tensor, model_t: torch.Tensor, blocks: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        b = x.shape[0]
        p = int(self.transformer_config["patch_size"])
        grid = (1, x.shape[-2] // p, x.shape[-1] // p)
        got = self.capture_blocks(
            blocks,
            lambda: self.transformer(
                hidden_states=x,
                encoder_hidden_states=self.null.expand(b, -1, -1),
                pooled_projections=self.null_pooled.expand(b, -1),
                timestep=model_t.float(),  # as the pipeline: cast only after the sinusoid
            ),
        )
        return {k: tokens_to_maps(v, grid)[:, 0] for k, v in got.items()}


def use_t5(spec: ModelSpec) -> bool:
    value = spec.options.get("use_t5", True)
    if not isinstance(value, bool):
        raise ConfigError(f"option use_t5 for {spec.name} must be true or false, got {value!r}")
    return value


def parts(with_t5: bool) -> tuple[str, ...]:
    return CORE + CLIP_PARTS + (T5_PARTS if with_t5 else ())


def null_conditioning(
    folder: Path, transformer: nn.Module, with_t5: bool, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """(prompt_embeds (1, 77 + 256, D), pooled_prompt_embeds (1, P)) of the empty prompt, computed by
    ``StableDiffusion3Pipeline.encode_prompt`` on a pipeline holding only the text components."""
    from diffusers import StableDiffusion3Pipeline
    from transformers import AutoTokenizer, CLIPTextModelWithProjection, T5EncoderModel

    def load(cls: Any, sub: str) -> Any:
        return cls.from_pretrained(folder / sub, dtype=dtype).to(device).eval()

    pipe = StableDiffusion3Pipeline(
        transformer=transformer,  # only its config is read (joint_attention_dim, when T5 is off)
        scheduler=None,
        vae=None,
        text_encoder=load(CLIPTextModelWithProjection, "text_encoder"),
        tokenizer=AutoTokenizer.from_pretrained(folder / "tokenizer"),
        text_encoder_2=load(CLIPTextModelWithProjection, "text_encoder_2"),
        tokenizer_2=AutoTokenizer.from_pretrained(folder / "tokenizer_2"),
        text_encoder_3=load(T5EncoderModel, "text_encoder_3") if with_t5 else None,
        tokenizer_3=AutoTokenizer.from_pretrained(folder / "tokenizer_3") if with_t5 else None,
    )
    with torch.no_grad():
        embeds, _, pooled, _ = pipe.encode_prompt(
            prompt="",
            prompt_2=None,
            prompt_3=None,
            device=device,
            do_classifier_free_guidance=False,
            max_sequence_length=MAX_SEQUENCE_LENGTH,
        )
    if not (torch.isfinite(embeds).all() and torch.isfinite(pooled).all()):
        raise ConfigError(
            f"{folder}: the empty-prompt conditioning overflows in {dtype} (T5 in float16?); "
            "use --dtype bfloat16 or float32"
        )
    return embeds.to(dtype), pooled.to(dtype)
