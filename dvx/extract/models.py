"""From a registry name (plus user overrides) to a loaded backbone."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

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
    return MODELS.load(name)


def load_backbone(spec: ModelSpec, run: RunOptions) -> Backbone:
    return backbone_class(spec.name).load(spec, run)


def local_folder(name: str) -> tuple[type[Backbone], Path]:
    """A registered model's class and local folder (tiny twins are built; real weights are never downloaded:
    a hub model must already be in the local cache, else the hub raises)."""
    spec = model_spec(name)
    cls = backbone_class(name)
    if spec.source.startswith("tiny:"):
        return cls, cls.folder_for(spec)
    if Path(spec.source).expanduser().is_dir():
        return cls, Path(spec.source).expanduser()
    from huggingface_hub import snapshot_download

    return cls, Path(snapshot_download(spec.source, local_files_only=True))


def block_names(name: str) -> list[str] | None:
    """Block names of a registered model from its config alone; None when its files are not available
    locally (real weights are never downloaded just to list them)."""
    try:
        cls, folder = local_folder(name)
        return cls.block_names_for(folder)
    except Exception:
        return None


def block_geometry(
    name: str, resolution: tuple[int, int] | None = None
) -> dict[str, tuple[int, int, int]] | None:
    """Block -> (C, h, w) per stored frame of a registered model at ``resolution`` (default: its registered
    size) from its config alone; None when its files are not available locally (nothing is downloaded)."""
    spec = model_spec(name)
    try:
        cls, folder = local_folder(name)
        return cls.block_shapes_for(folder, resolution or spec.resolution, spec.clip_len)
    except Exception:
        return None


def attention_layers(name: str) -> list[AttentionLayer] | None:
    """The attention layers whose q/k blocks a registered model can store (``<layer>.q``, ``<layer>.k``,
    per head ``.h<i>``), from its config alone; None when its files are not available locally."""
    try:
        cls, folder = local_folder(name)
        return cls.attention_layers_for(folder)
    except Exception:
        return None
