"""The backbone contract: what every model family implements so the runner can extract from it.

A backbone turns a unit of frames (a batch of images for image models, one clip for video models) into
features for every requested (T, block) in as few forward passes as possible: several T and ensemble
members share a batch, and the pass stops after the deepest requested block. One self-contained file per
family lives in ``dvx/extract/backbones/``; this module is a contract plus the shared diffusion loop, not
a framework.
"""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from dvx.errors import ConfigError, UnknownNameError
from dvx.extract.attention import AttentionIndex, AttentionLayer, capture_qk, layers_from_config
from dvx.extract.hooks import capture, run_until_stop, to_host
from dvx.extract.noise import seeded_noise
from dvx.registry import did_you_mean

_HEADS_NEED_ATTENTION = (
    "--heads keeps heads of attention q/k blocks; ask for some with --blocks, e.g. 'layer.*.attn1.q'"
)

#: seed_fn(item, t, member) -> seed; item = frame index (image models) or clip index (video models)
SeedFn = Callable[[int, int, int], int]
#: per T, per block: (stored frames of the unit, C, h, w) float32 on CPU
UnitFeatures = dict[int, dict[str, torch.Tensor]]


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry resolved with the user's overrides: what to load and how."""

    name: str
    family: str
    source: str  # hub id, local folder, or "tiny:<family>"
    revision: str | None = None
    clip_len: int | None = None  # native clip length of video models; None for image models
    resolution: tuple[int, int] = (512, 512)  # default (H, W)
    options: Mapping[str, Any] = field(default_factory=dict)  # family-specific, recorded in the recipe


@dataclass(frozen=True)
class RunOptions:
    device: str = "cpu"
    dtype: str = "float32"
    batch_size: int = 8  # samples (images or clips) per denoiser forward
    latent: str = "mean"  # "mean" or "sample" of the VAE posterior


def _built_here(spec: ModelSpec) -> bool:
    """A tiny twin dvx builds itself: never the user's input, so its errors are bugs and stay as they are."""
    return spec.source.startswith("tiny:")


def _not_a_model(spec: ModelSpec, err: BaseException) -> ConfigError:
    """A user's --weights that is not a model of the family, as one line."""
    why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ConfigError(
        f"{spec.source!r} is not a {spec.family} model dvx can load ({type(err).__name__}: {why}); "
        "--weights takes a hub id or a folder in the diffusers/transformers layout of that model"
    )


def torch_dtype(name: str) -> torch.dtype:
    try:
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]
    except KeyError:
        raise ConfigError(f"unknown dtype {name!r}; use float32, float16 or bfloat16") from None


class Backbone(ABC):
    """One loaded model. Subclasses set the class attributes and implement the abstract methods."""

    family: ClassVar[str]
    is_video: ClassVar[bool] = False
    is_diffusion: ClassVar[bool] = True
    #: the diffusers denoiser's subfolder, also the attribute it is loaded as ("unet", "transformer"), whose
    #: self-attention q/k can be stored; None: the family has no attention q/k blocks
    denoiser: ClassVar[str | None] = None
    #: :meth:`features` hands float16 (cast on the device) instead of float32: what ``dvx extract`` stores
    host_float16: bool = False

    def __init__(self, spec: ModelSpec, folder: Path, run: RunOptions) -> None:
        """Read configs only (cheap): a cache hit never loads weights. Modules load on first use."""
        self.spec = spec
        self.folder = folder
        self.run = run
        self.device = torch.device(run.device)
        self.dtype = torch_dtype(run.dtype)
        self._loaded = False

    def ensure_loaded(self) -> None:
        """Load the weights onto the device (once)."""
        if not self._loaded:
            try:
                self.load_modules()
            except OSError as err:  # from_pretrained: a weights file missing or unreadable
                if _built_here(self.spec):
                    raise
                raise _not_a_model(self.spec, err) from err
            self._loaded = True

    @abstractmethod
    def load_modules(self) -> None:
        """Load the networks (and compute the fixed null conditioning)."""

    # ---- loading -------------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def folder_for(cls, spec: ModelSpec) -> Path:
        """The local folder with the model's files (built, found or downloaded)."""

    @classmethod
    def load(cls, spec: ModelSpec, run: RunOptions) -> Backbone:
        folder = cls.folder_for(spec)
        try:
            return cls(spec, folder, run)
        except ConfigError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as err:  # its config files: absent, not JSON, ...
            if _built_here(spec):
                raise
            raise _not_a_model(spec, err) from err

    # ---- description ---------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def block_names_for(cls, folder: Path) -> list[str]:
        """Block names in execution order, from the model's config files alone (no weights loaded)."""

    @cached_property
    def _block_names(self) -> tuple[str, ...]:
        return tuple(self.block_names_for(self.folder))

    @property
    def block_names(self) -> list[str]:
        """Block names in execution order; the config files are read once per backbone."""
        return list(self._block_names)

    @classmethod
    def attention_layers_for(cls, folder: Path) -> list[AttentionLayer]:
        """Self-attention layers whose q/k can be stored (dvx/extract/attention.py), from the config of the
        denoiser in ``folder/<denoiser>`` alone; none for families without a ``denoiser``. Their blocks are
        ``<layer>.q`` / ``<layer>.k``."""
        return layers_from_config(folder / cls.denoiser) if cls.denoiser else []

    @cached_property
    def attention_index(self) -> AttentionIndex:
        """The attention layers and their q/k block names (read from the config once per backbone)."""
        return AttentionIndex(self.attention_layers_for(self.folder))

    def attention_root(self) -> nn.Module:
        """The loaded denoiser whose submodules the attention layers' paths name."""
        if not self.denoiser:
            raise ConfigError(f"{self.spec.name} has no attention q/k blocks")
        self.ensure_loaded()
        return getattr(self, self.denoiser)

    @abstractmethod
    def block_modules(self) -> dict[str, nn.Module]:
        """Block name -> module whose output is the block's feature, in execution order (loaded)."""

    @classmethod
    @abstractmethod
    def block_shapes_for(
        cls, folder: Path, resolution: tuple[int, int], clip_len: int | None = None
    ) -> dict[str, tuple[int, int, int]]:
        """Block name -> (C, h, w) of one stored frame for input frames of ``resolution`` (and, for video
        models, clips of ``clip_len``), from the model's config files alone (no weights loaded)."""

    def block_shapes(self, resolution: tuple[int, int]) -> dict[str, tuple[int, int, int]]:
        """(C, h, w) per stored frame of every block at ``resolution`` (this model's config and clip length):
        what ``--dry-run`` prints and sizes the store with."""
        return self.block_shapes_for(self.folder, resolution, self.clip_len)

    @property
    @abstractmethod
    def resolution_multiple(self) -> int:
        """Input height and width must be multiples of this."""

    @property
    def clip_len(self) -> int | None:
        return self.spec.clip_len if self.is_video else None

    def temporal_map(self, clip_len: int) -> list[list[int]]:
        """Stored temporal index -> input frame indices within a clip (identity unless time is compressed)."""
        return [[i] for i in range(clip_len)]

    @abstractmethod
    def recipe_fields(self) -> dict[str, Any]:
        """Feature-determining facts for the recipe: {"noise": ..., "conditioning": ..., "latent": ...}."""

    def noise_level(self, t: int) -> dict[str, Any]:
        """The effective noise at T (recorded on the store's timestep group)."""
        return {"T": t}

    # ---- extraction ----------------------------------------------------------------------------------
    def resolve_blocks(self, wanted: Sequence[str] | None, heads: Sequence[int] | None = None) -> list[str]:
        """Requested names or globs ('up.*') -> block names in execution order; did-you-mean on unknown.

        Attention q/k blocks are only ever asked for explicitly: a pattern matches them component by
        component (``layer.*.attn1.q``, ``up.1.*.*.attn1.*``), so ``up.*`` keeps meaning the hidden-state
        blocks. They follow the hidden-state blocks, in layer order; with ``heads`` each becomes its
        per-head blocks ``<name>.h<i>``."""
        names = self.block_names
        if not wanted:
            if heads:
                raise ConfigError(_HEADS_NEED_ATTENTION)
            return names
        chosen: set[str] = set()
        attention: dict[str, None] = {}
        for pat in wanted:
            hits = fnmatch.filter(names, pat)
            # hidden-state names have at most two components: only longer patterns can name q/k blocks
            attn = self.attention_index.match(pat) if pat.count(".") >= 2 else []
            if not hits and not attn:
                every = names + self.attention_index.block_names
                more = (
                    f" and {len(every) - len(names)} attention q/k blocks (dvx ls models)"
                    if len(every) > len(names)
                    else ""
                )
                raise UnknownNameError(
                    f"model {self.spec.name!r} has no block {pat!r}.{did_you_mean(pat, every)} "
                    f"Blocks: {', '.join(names)}{more}"
                )
            chosen.update(hits)
            attention.update(dict.fromkeys(attn))
        if heads and not attention:
            raise ConfigError(_HEADS_NEED_ATTENTION)
        picked = self.attention_index.ordered(attention)
        return [n for n in names if n in chosen] + self.attention_index.expand(picked, heads)

    def check_resolution(self, resolution: tuple[int, int]) -> None:
        m = self.resolution_multiple
        h, w = resolution
        if h <= 0 or w <= 0 or h % m or w % m:
            raise ConfigError(
                f"resolution {h}x{w} for {self.spec.name}: height and width must be positive multiples of {m}"
            )

    @abstractmethod
    @torch.no_grad()
    def features(
        self,
        frames: torch.Tensor,
        timesteps: Sequence[int],
        blocks: Sequence[str],
        seed_fn: SeedFn,
        ensemble: int,
    ) -> UnitFeatures:
        """``frames``: (n, 3, H, W) float32 in [0, 1] on CPU, n images or one clip of ``clip_len`` frames.

        Returns, per T and block, (stored frames, C, h, w) CPU features, averaged over ``ensemble`` noise
        draws: float32, or with :attr:`host_float16` float16 cast on the device
        (:func:`~dvx.extract.hooks.to_host`; float32 where that copy would not be finite, so the runner can
        say why and commit nothing of the video).
        """

    def capture_blocks(self, blocks: Sequence[str], fn: Callable[[], Any]) -> dict[str, torch.Tensor]:
        """Run ``fn`` with hooks on ``blocks``, stopping after the deepest of them. Attention q/k blocks are
        captured in the same forward (dvx.extract.attention.capture_qk), in the layout of the family's
        hidden-state block outputs; the forward then runs at least through the block owning their layer."""
        self.ensure_loaded()
        modules = self.block_modules()
        order = list(modules)
        hidden = [b for b in blocks if b in modules]
        parsed = {b: self.attention_index.parse(b) for b in blocks if b not in modules}
        unknown = [b for b, a in parsed.items() if a is None]
        if unknown:
            raise UnknownNameError(f"model {self.spec.name!r} has no block(s) {', '.join(unknown)}")
        attention_blocks = [a for a in parsed.values() if a is not None]
        deepest = max([*hidden, *(a.layer.owner for a in attention_blocks)], key=order.index)
        hooked = {b: modules[b] for b in [*hidden, deepest]}
        with ExitStack() as stack:
            got = stack.enter_context(capture(hooked, stop_after=deepest, select=self.block_selectors()))
            qk = (
                stack.enter_context(capture_qk(self.attention_root(), attention_blocks))
                if attention_blocks
                else {}
            )
            run_until_stop(fn)
        missing = [b for b in hidden if b not in got]
        if missing:
            raise RuntimeError(f"{self.spec.name}: blocks {missing} produced no output")
        return {**{b: got[b] for b in hidden}, **qk}

    def block_selectors(self) -> dict[str, Callable[[Any], torch.Tensor]]:
        """Block name -> function picking the feature tensor from the module output (default: first)."""
        return {}


class DiffusionBackbone(Backbone):
    """The shared noised-forward loop of latent diffusion models.

    Subclasses implement :meth:`encode` (frames -> clean latents, one per item), :meth:`add_noise`
    (their T convention) and :meth:`forward_blocks` (a batched denoiser call returning per-sample block
    features).
    """

    #: the VAE posterior (mean, std) shared by the members of one unit (see :meth:`member_latents`)
    _posterior_memo: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    @abstractmethod
    def encode(self, frames: torch.Tensor, seed_fn: SeedFn) -> torch.Tensor:
        """(n, 3, H, W) in [0, 1] -> clean latents (items, *latent_shape) on the device, float32.

        Image models: one item per frame; video models: one item, the clip."""

    @abstractmethod
    def add_noise(
        self, z0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Noised model input and the model's timestep value, per sample (``t``: (B,) int64 DDPM T)."""

    @abstractmethod
    def forward_blocks(
        self, x: torch.Tensor, model_t: torch.Tensor, blocks: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        """One denoiser forward on a batch; block -> (B, ...) per-sample features
        ((B, C, h, w) for image models, (B, F', C, h, w) for video models)."""

    @torch.no_grad()
    def features(
        self,
        frames: torch.Tensor,
        timesteps: Sequence[int],
        blocks: Sequence[str],
        seed_fn: SeedFn,
        ensemble: int,
    ) -> UnitFeatures:
        self.ensure_loaded()
        z0 = self.member_latents(frames, seed_fn, ensemble)
        n_items = z0[0].shape[0]
        samples = [(i, t, m) for t in timesteps for i in range(n_items) for m in range(ensemble)]
        # ensemble 1: each sample's features go to the host as soon as they exist (no division; as float16
        # cast on the device when host_float16); ensemble > 1: members are summed and divided in float32 on
        # the device, then copied
        sums: dict[tuple[int, str, int], torch.Tensor] = {}
        for start in range(0, len(samples), self.run.batch_size):
            batch = samples[start : start + self.run.batch_size]
            z = torch.stack([z0[m][i] for i, _, m in batch])
            eps = torch.stack([seeded_noise(z.shape[1:], seed_fn(i, t, m)) for i, t, m in batch]).to(z.device)
            t_vec = torch.tensor([t for _, t, _ in batch], dtype=torch.int64, device=z.device)
            x, model_t = self.add_noise(z, t_vec, eps)
            out = self.forward_blocks(x.to(self.dtype), model_t, blocks)
            for b, feats in out.items():
                feats = to_host(feats, self.host_float16) if ensemble == 1 else feats.float()
                for k, (i, t, _) in enumerate(batch):
                    key = (t, b, i)
                    sums[key] = feats[k] if key not in sums else sums[key] + feats[k]
        result: UnitFeatures = {}
        for t in timesteps:
            result[t] = {}
            for b in blocks:
                if ensemble == 1:
                    per_item = [sums[(t, b, i)] for i in range(n_items)]
                else:
                    per_item = [
                        to_host(sums[(t, b, i)] / ensemble, self.host_float16) for i in range(n_items)
                    ]
                # image models: items are frames -> (n, C, h, w); video models: one clip -> (F', C, h, w)
                if len({p.dtype for p in per_item}) > 1:  # some item's float16 copy was not finite
                    per_item = [p.float() for p in per_item]
                result[t][b] = torch.stack(per_item) if not self.is_video else per_item[0]
        return result

    def member_latents(self, frames: torch.Tensor, seed_fn: SeedFn, ensemble: int) -> list[torch.Tensor]:
        """Clean latents for each ensemble member: one shared tensor with the posterior mean; with
        ``--latent sample`` a fresh sample per member, as DIFT's ensemble (the frame repeated ``ensemble``
        times through ``latent_dist.sample()``). The VAE runs once; member m's sample is seeded with
        ``seed_fn(item, -1, m)``, so member 0 (and an ensemble of 1) draws what it always drew."""
        if self.run.latent != "sample" or ensemble == 1:
            return [self.encode(frames, seed_fn)] * ensemble
        self._posterior_memo = []
        try:
            return [self.encode(frames, lambda i, t, _m, m=m: seed_fn(i, t, m)) for m in range(ensemble)]
        finally:
            self._posterior_memo = None

    def vae_latents(self, vae: nn.Module, x: torch.Tensor, seed_fn: SeedFn) -> torch.Tensor:
        """Encode (n, 3, H, W) in [-1, 1] with ``vae`` in chunks of ``batch_size`` frames and take the
        posterior mean (default) or a seeded sample (``--latent sample``).

        The sample's noise is seeded per item (frame of an image model, clip of a video model) with
        ``seed_fn(item, -1, 0)``, so it never depends on the batch it was encoded in. Within
        :meth:`member_latents` the posterior of the first call is reused by the later members' calls."""
        memo = self._posterior_memo
        if memo:
            mean, std = memo[0]
        else:
            means, stds = [], []
            for start in range(0, len(x), self.run.batch_size):
                dist = vae.encode(x[start : start + self.run.batch_size]).latent_dist
                means.append(dist.mean)
                stds.append(dist.std)
            mean, std = torch.cat(means), torch.cat(stds)
            if memo is not None:  # inside member_latents: the next members reuse it
                memo.append((mean, std))
        if self.run.latent == "mean":
            return mean
        if self.run.latent == "sample":
            if self.is_video:
                noise = seeded_noise(mean.shape, seed_fn(0, -1, 0))
            else:
                noise = torch.stack(
                    [seeded_noise(mean.shape[1:], seed_fn(i, -1, 0)) for i in range(len(mean))]
                )
            return mean + std * noise.to(mean.device, mean.dtype)
        raise ConfigError(f"unknown latent mode {self.run.latent!r}; use mean or sample")
