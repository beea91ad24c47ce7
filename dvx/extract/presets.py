"""Extraction presets and per-family defaults: the published recipes as one flag.

- ``--preset dift``: DIFT's DAVIS recipe (``Tsingularity/dift`` README, ``eval_davis.py`` with
  ``src/models/dift_sd.py``): ``t = 51`` (DIFT noises with the scheduler's ``add_noise(latents, noise, t)`` on
  the DDPM scale and gives the UNet the same ``t``: dvx's ``T = 51`` exactly), ``ensemble_size 8`` (the frame
  repeated 8 times in one batch: 8 noise draws *and* 8 latent samples, since ``latent_dist.sample()`` runs
  on the repeated batch), the null prompt ``""``, ``up_ft_index 2`` (``up.2``), frames resized with DIFT's
  rule (:mod:`dvx.data.input_size` ``dift``), float32 compute (DIFT loads its pipeline without a
  ``torch_dtype``). DIFT's model is ``stabilityai/stable-diffusion-2-1`` (dvx ``sd-2.1``); the preset fits
  any UNet model.
- ``--preset seed002``: seed 002 §4.1 "Key Implementation Details": ``T = 50`` for the UNets (SD, ModelScope,
  SVD), ``T = 16`` for the DiTs (SD3, Open-Sora; see :func:`default_timesteps`), up-block 1 (``up.1``) /
  "layer index 12" (``layer.11``) for action recognition and up-block 2 (``up.2``) / "layer index 24"
  (``layer.23``) for the other tasks, the null conditioning of §3.2.1 (dvx's only conditioning), and the
  reference resolutions of its label-propagation tasks ("the same setup as DIFT": DAVIS at DIFT's size,
  JHMDB at videowalk's 320x320). The ViT baselines use ``norm``, the last layer after the final LayerNorm
  (what DINO's ``get_intermediate_layers`` and transformers' ``last_hidden_state`` return).

Flags given beside a preset override it (:func:`resolve_options`); the recipe records the resolved values.
Without ``--timesteps`` every diffusion family gets seed 002's T (:func:`default_timesteps`).

Torch-free: the CLI resolves presets before anything heavy is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dvx.data.input_size import MODEL_DEFAULT
from dvx.errors import ConfigError

if TYPE_CHECKING:
    from dvx.config import ExtractConfig

UNET_FAMILIES = frozenset({"sd", "svd", "modelscope"})
FLOW_FAMILIES = frozenset({"sd3", "wan"})
VIT_FAMILIES = frozenset({"dinov2", "videomae", "vjepa2"})
#: datasets whose seed-002 probe is action recognition (global features: up-block 1 / layer index 12)
ACTION_DATASETS = frozenset({"ucf101", "hmdb51"})

#: T without --timesteps: seed 002's noise level (T = 50 for the UNets, T = 16 for the rectified-flow DiTs)
DEFAULT_T = {"unet": (50,), "flow": (16,), "vit": (0,)}

PRESETS = {
    "dift": "DIFT's DAVIS recipe: T=51, ensemble 8 with a fresh latent sample per member, null prompt, up.2, "
    "DIFT's frame size, float32",
    "seed002": "seed 002's recipe: T=50 (UNets) / 16 (DiTs), up.1|layer.11 for action, up.2|layer.23|norm "
    "otherwise, null conditioning, DIFT / videowalk sizes for DAVIS / JHMDB",
}

#: the ExtractConfig fields a preset may set
PRESET_FIELDS = ("timesteps", "blocks", "ensemble", "latent", "resize", "resolution", "dtype")


def family_of(model: str) -> str:
    """The backbone family of a registered model (from the registry; nothing is loaded)."""
    from dvx.extract import MODELS

    return str(MODELS.entry(model).options["family"])


def kind_of(family: str) -> str:
    """``unet``, ``flow`` (rectified-flow DiT) or ``vit`` (non-diffusion baseline)."""
    if family in UNET_FAMILIES:
        return "unet"
    if family in FLOW_FAMILIES:
        return "flow"
    if family in VIT_FAMILIES:
        return "vit"
    raise ConfigError(f"no extraction defaults for backbone family {family!r}")


def default_timesteps(family: str) -> tuple[int, ...]:
    """Seed 002's T per family: 50 for the UNets, 16 for the flow DiTs, 0 (clean) for the baselines.

    What T = 16 means for a flow model: dvx's T is always on the 0..999 training scale, ``s = T/1000 = 0.016``
    *before* the scheduler's shift, ``sigma = shift s / (1 + (shift - 1) s)`` after it (SD3, shift 3: 0.0465;
    the network's timestep ``1000 sigma`` = 46.5). Each store records both per T group (``sigma_unshifted``,
    ``sigma``). Seed 002 does not say which it meant; read as a shifted sigma of 0.016 it would be dvx
    T = 5.4 (:func:`dvx.extract.noise.flow_t_for_sigma`)."""
    return DEFAULT_T[kind_of(family)]


def default_dtype(family: str, device: str) -> str:
    """Compute dtype without --dtype: float32 on CPU; on CUDA bfloat16 for SD3 and Wan (what diffusers'
    pipeline examples use: their activations overflow float16), float16 otherwise."""
    if not device.startswith("cuda"):
        return "float32"
    return "bfloat16" if family in FLOW_FAMILIES else "float16"


def seed002_blocks(family: str, dataset: str) -> tuple[str, ...]:
    kind = kind_of(family)
    if kind == "vit":
        return ("norm",)
    action = dataset in ACTION_DATASETS
    if kind == "unet":
        return ("up.1",) if action else ("up.2",)
    return ("layer.11",) if action else ("layer.23",)


def seed002_resize(family: str, dataset: str) -> str:
    """DAVIS at DIFT's size and JHMDB at videowalk's 320x320 ("the same setup as DIFT"), else the model's
    size; VideoMAE (one fixed size) and, on DAVIS, V-JEPA 2 (square inputs only) keep their own size."""
    if family == "videomae":
        return MODEL_DEFAULT
    if dataset == "davis":
        return MODEL_DEFAULT if family == "vjepa2" else "dift"
    if dataset == "jhmdb":
        return "videowalk"
    return MODEL_DEFAULT


def preset_values(name: str, model: str, dataset: str) -> dict[str, Any]:
    """The ExtractConfig values preset ``name`` sets for ``model`` on ``dataset``."""
    family = family_of(model)
    if name == "dift":
        if kind_of(family) != "unet":
            raise ConfigError(
                f"--preset dift is DIFT's Stable Diffusion recipe (UNet block up.2); {model} is a {family} "
                "model. Use --preset seed002 or explicit options"
            )
        return {
            "timesteps": (51,),
            "ensemble": 8,
            "latent": "sample",
            "blocks": ("up.2",),
            "resize": "dift",
            "dtype": "float32",
        }
    if name == "seed002":
        return {
            "timesteps": default_timesteps(family),
            "blocks": seed002_blocks(family, dataset),
            "resize": seed002_resize(family, dataset),
        }
    raise ConfigError(f"unknown --preset {name!r}; use one of {', '.join(PRESETS)}")


def resolve_options(preset: str | None, model: str, dataset: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` (options the user set) over the preset's values; the result is what the recipe records.

    ``resolution`` and ``resize`` are one choice (an explicit HxW or a named size): either given replaces the
    preset's."""
    out = dict(preset_values(preset, model, dataset)) if preset else {}
    if "resolution" in given or "resize" in given:
        out.pop("resolution", None)
        out.pop("resize", None)
    out.update(given)
    if out.get("resize") == MODEL_DEFAULT:
        out["resize"] = None
    return out


def extract_config(
    preset: str | None, model: str, dataset: str, data_root: str, store: str, **options: Any
) -> ExtractConfig:
    """The ExtractConfig for ``model`` on ``dataset`` with ``preset`` resolved: ``options`` holds the
    ExtractConfig fields the user set (for the preset fields, only those set explicitly: they override the
    preset). What ``dvx extract`` and ``dvx run`` both build."""
    from dvx.config import ExtractConfig

    chosen = {k: v for k, v in options.items() if k in PRESET_FIELDS}
    rest = {k: v for k, v in options.items() if k not in PRESET_FIELDS}
    values = resolve_options(preset, model, dataset, chosen)
    return ExtractConfig(
        model=model, dataset=dataset, data_root=data_root, store=store, preset=preset, **values, **rest
    )
