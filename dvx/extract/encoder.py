"""What the non-diffusion baselines (DINOv2, VideoMAE, V-JEPA 2) share: pixels in, layer tokens out.

They have no noise level: the runner only allows ``T = 0`` for them, and :meth:`EncoderBackbone.features`
returns the features under ``T = 0`` (no seeds, no ensemble). Frames are normalised with the mean/std of
the model's preprocessor config when the folder has one, else with the ImageNet defaults; which one was
used is recorded in the recipe (``conditioning.input``).

Their files are a single transformers folder (``config.json``, weights, preprocessor config). From the
hub, safetensors are fetched when the repository has them, the ``.bin`` weights only otherwise.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from dvx.errors import ConfigError
from dvx.extract.base import Backbone, ModelSpec, RunOptions, SeedFn, UnitFeatures
from dvx.extract.hooks import to_host
from dvx.extract.weights import default_variant, digest_folder, resolve_folder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREPROCESSOR_FILES = ("preprocessor_config.json", "video_preprocessor_config.json")
CONFIG_PATTERNS = ["config.json", *PREPROCESSOR_FILES]
SAFETENSORS_PATTERNS = ["*.safetensors", "*.safetensors.index.json"]
BIN_PATTERNS = ["pytorch_model*.bin", "pytorch_model.bin.index.json"]
#: the block holding the last layer after the encoder's final LayerNorm
NORM = "norm"


def pixel_normalization(folder: Path) -> dict[str, Any]:
    """Mean/std the model expects, from its preprocessor config, else ImageNet's; with their source."""
    for name in PREPROCESSOR_FILES:
        path = folder / name
        if path.is_file():
            cfg = json.loads(path.read_text())
            if "image_mean" in cfg and "image_std" in cfg:
                mean = [float(v) for v in cfg["image_mean"]]
                std = [float(v) for v in cfg["image_std"]]
                if len(mean) != 3 or len(std) != 3:
                    raise ConfigError(f"{path}: image_mean/image_std must have 3 values")
                return {"mean": mean, "std": std, "from": name}
    return {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "from": "imagenet default"}


def model_files(folder: Path) -> list[str]:
    """The files of a transformers folder that determine the features (configs and the weights
    ``from_pretrained`` reads: safetensors over .bin, no variants), so the same weights digest alike
    whether the folder is a hub download (safetensors only) or a clone holding both formats."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    keep = [
        n
        for n in default_variant(names)
        if n in CONFIG_PATTERNS
        or n.endswith((".safetensors", ".safetensors.index.json"))
        or (n.startswith("pytorch_model") and (n.endswith(".bin") or n.endswith(".bin.index.json")))
    ]
    if "config.json" not in keep:
        raise ConfigError(f"{folder}: no config.json (not a transformers model folder)")
    return keep


def resolve_transformers_folder(spec: ModelSpec, build_tiny: Callable[[Path], None], tiny_name: str) -> Path:
    """A local transformers folder: tiny, local, or from the hub (safetensors when it has them)."""
    folder = resolve_folder(
        spec.source, spec.revision, CONFIG_PATTERNS + SAFETENSORS_PATTERNS, build_tiny, tiny_name
    )
    has_weights = any(p.suffix == ".safetensors" for p in folder.iterdir()) or any(
        p.name.startswith("pytorch_model") for p in folder.iterdir()
    )
    if (
        not has_weights
        and not spec.source.startswith("tiny:")
        and not Path(spec.source).expanduser().is_dir()
    ):
        folder = resolve_folder(spec.source, spec.revision, CONFIG_PATTERNS + BIN_PATTERNS)
    return folder


class EncoderBackbone(Backbone):
    """A pretrained transformers ViT encoder whose layers ``layer.N`` (``model.encoder.layer[N]``) and final
    LayerNorm (``norm``) are read from one forward of the (normalised) pixels.

    ``norm`` is the last layer's tokens after the encoder's final LayerNorm: what transformers returns as
    ``last_hidden_state`` and DINO's ``get_intermediate_layers(x, n=1)`` returns (``self.norm(x)``), the
    features DINO's DAVIS protocol propagates; ``layer.N`` are the blocks' raw outputs, before any norm.
    """

    is_diffusion = False
    #: name of the tiny twin in the dvx cache, and the function that builds it
    tiny_name: ClassVar[str]
    build_tiny: ClassVar[Callable[[Path], None]]

    model: nn.Module

    @classmethod
    def folder_for(cls, spec: ModelSpec) -> Path:
        return resolve_transformers_folder(spec, cls.build_tiny, cls.tiny_name)

    @classmethod
    def block_names_for(cls, folder: Path) -> list[str]:
        cfg = json.loads((folder / "config.json").read_text())
        return [f"layer.{i}" for i in range(cfg["num_hidden_layers"])] + (
            [NORM] if cls.has_final_norm(cfg) else []
        )

    @classmethod
    def has_final_norm(cls, config: dict[str, Any]) -> bool:
        """Whether the encoder ends with a LayerNorm (then block ``norm`` exists)."""
        return True

    @abstractmethod
    def final_norm(self) -> nn.Module:
        """The encoder's final LayerNorm (loaded), whose output is block ``norm``."""

    def block_modules(self) -> dict[str, nn.Module]:
        self.ensure_loaded()
        modules = {f"layer.{i}": m for i, m in enumerate(self.model.encoder.layer)}
        if NORM in self.block_names:
            modules[NORM] = self.final_norm()
        return modules

    @classmethod
    def block_shapes_for(
        cls, folder: Path, resolution: tuple[int, int], clip_len: int | None = None
    ) -> dict[str, tuple[int, int, int]]:
        cfg = json.loads((folder / "config.json").read_text())
        p = int(cfg["patch_size"])
        shape = (int(cfg["hidden_size"]), resolution[0] // p, resolution[1] // p)
        return {name: shape for name in cls.block_names_for(folder)}

    @property
    def resolution_multiple(self) -> int:
        return int(self.config["patch_size"])

    def __init__(self, spec: ModelSpec, folder: Path, run: RunOptions) -> None:
        super().__init__(spec, folder, run)
        self.config = json.loads((folder / "config.json").read_text())
        self.normalization = pixel_normalization(folder)
        self.weights = digest_folder(folder, model_files(folder))

    def recipe_fields(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "latent": "none",
            "noise": {"kind": "none", "convention": "not a diffusion model: clean frames, T = 0 only"},
            "conditioning": {"input": {"normalize": self.normalization}},
        }

    def noise_level(self, t: int) -> dict[str, Any]:
        return {"T": t, "noise": "none"}

    def normalize(self, frames: torch.Tensor) -> torch.Tensor:
        """(n, 3, H, W) in [0, 1] -> normalised, on the device, in the compute dtype."""
        mean = torch.tensor(self.normalization["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(self.normalization["std"]).view(1, 3, 1, 1)
        return ((frames.float() - mean) / std).to(self.device, self.dtype)

    @abstractmethod
    def forward_blocks(self, x: torch.Tensor, blocks: Sequence[str]) -> dict[str, torch.Tensor]:
        """One forward of normalised pixels: (B, 3, H, W) images or (B, F, 3, H, W) clips ->
        block -> (B, C, h, w) for image models, (B, F', C, h, w) for video models."""

    @torch.no_grad()
    def features(
        self,
        frames: torch.Tensor,
        timesteps: Sequence[int],
        blocks: Sequence[str],
        seed_fn: SeedFn,
        ensemble: int,
    ) -> UnitFeatures:
        if list(timesteps) != [0]:
            raise ConfigError(
                f"{self.spec.name} is not a diffusion model: it has no noise level; use --timesteps 0"
            )
        if ensemble != 1:
            raise ConfigError(
                f"{self.spec.name} is not a diffusion model: it has no noise to average; use --ensemble 1"
            )
        self.ensure_loaded()
        x = self.normalize(frames)
        if self.is_video:
            out = {b: f[0] for b, f in self.forward_blocks(x.unsqueeze(0), blocks).items()}
        else:
            parts = [
                self.forward_blocks(x[s : s + self.run.batch_size], blocks)
                for s in range(0, len(x), self.run.batch_size)
            ]
            out = {b: torch.cat([p[b] for p in parts]) for b in blocks}
        return {0: {b: to_host(out[b], self.host_float16) for b in blocks}}


class TubeletEncoderBackbone(EncoderBackbone):
    """A video ViT cutting clips into tubelets of ``tubelet_size`` frames x ``patch_size`` pixels (VideoMAE,
    V-JEPA 2): one stored temporal index per tubelet."""

    is_video = True

    def __init__(self, spec: ModelSpec, folder: Path, run: RunOptions) -> None:
        super().__init__(spec, folder, run)
        self.tubelet = int(self.config["tubelet_size"])
        self.patch = int(self.config["patch_size"])
        clip_len = spec.clip_len
        if clip_len is None or clip_len < self.tubelet or clip_len % self.tubelet:
            raise ConfigError(
                f"clip length {clip_len} for {spec.name}: must be a positive multiple of the tubelet size "
                f"{self.tubelet}"
            )

    def temporal_map(self, clip_len: int) -> list[list[int]]:
        """Stored temporal index -> input frames: [[0, 1], [2, 3], ...]."""
        return [list(range(s, s + self.tubelet)) for s in range(0, clip_len, self.tubelet)]
