"""From a registry name (plus user overrides) to a loaded backbone."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dvx.errors import ConfigError
from dvx.extract import MODELS
from dvx.extract.attention import AttentionLayer
from dvx.extract.base import Backbone, ModelSpec, RunOptions


def model_spec(
    name: str, weights: str | None = None, revision: str | None = None, clip_len: int | None = None
) -> ModelSpec:
    """The spec of registered model ``name`` (did-you-mean on unknown names), with overrides."""
    entry = MODELS.entry(name)
    o = entry.options
    spec = ModelSpec(
        name=name,
        family=o["family"],
        source=o["source"],
        revision=None,
        clip_len=o["clip_len"],
        resolution=tuple(o["resolution"]),
        options=dict(o.get("options") or {}),
    )
    if weights is not None:
        spec = replace(spec, source=weights, revision=revision)
    elif revision is not None:
        spec = replace(spec, revision=revision)
    if clip_len is not None:
        spec = replace(spec, clip_len=clip_len)
    return spec


def backbone_class(name: str) -> type[Backbone]:
    cls: type[Backbone] = MODELS.load(name)
    return cls


def load_backbone(spec: ModelSpec, run: RunOptions) -> Backbone:
    return backbone_class(spec.name).load(spec, run)


def block_names_in(name: str, folder: str | Path) -> list[str]:
    """Block names of registered model ``name``'s family, read from the config files in a local model
    ``folder`` (no weights loaded); one line when the folder does not hold that family's configs."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ConfigError(f"--weights {folder}: no such folder")
    try:
        return backbone_class(name).block_names_for(path)
    except (OSError, KeyError, TypeError, ValueError) as err:  # missing or foreign config files
        family = MODELS.entry(name).options["family"]
        raise ConfigError(
            f"--weights {folder}: not a {family} model folder ({type(err).__name__}: {err})"
        ) from None


def attention_layers_in(name: str, folder: str | Path) -> list[AttentionLayer]:
    """The attention layers whose q/k blocks registered model ``name`` can store (``<layer>.q``,
    ``<layer>.k``, per head ``.h<i>``), from the denoiser config in a local model ``folder`` (the denoiser
    is built on the meta device: no weights, no memory)."""
    path = Path(folder).expanduser()
    try:
        return backbone_class(name).attention_layers_for(path)
    except (OSError, KeyError, TypeError, ValueError) as err:
        family = MODELS.entry(name).options["family"]
        raise ConfigError(
            f"--weights {folder}: not a {family} model folder ({type(err).__name__}: {err})"
        ) from None


def block_geometry_in(
    name: str, folder: str | Path, resolution: tuple[int, int] | None = None
) -> dict[str, tuple[int, int, int]]:
    """Block -> (C, h, w) per stored frame of registered model ``name`` at ``resolution`` (default: its
    registered size), from the config files in a local model ``folder`` (no weights loaded)."""
    spec = model_spec(name)
    path = Path(folder).expanduser()
    try:
        return backbone_class(name).block_shapes_for(path, resolution or spec.resolution, spec.clip_len)
    except (OSError, KeyError, TypeError, ValueError) as err:
        family = MODELS.entry(name).options["family"]
        raise ConfigError(
            f"--weights {folder}: not a {family} model folder ({type(err).__name__}: {err})"
        ) from None
