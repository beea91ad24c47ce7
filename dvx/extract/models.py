"""From a registry name (plus user overrides) to a loaded backbone."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dvx.extract import MODELS
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


def _local_folder(spec: ModelSpec, cls: type[Backbone]) -> Path:
    """The model's files on this machine (tiny twins are built); never downloads."""
    if spec.source.startswith("tiny:"):
        return cls.folder_for(spec)
    if Path(spec.source).expanduser().is_dir():
        return Path(spec.source).expanduser()
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(spec.source, local_files_only=True))


def block_names(name: str) -> list[str] | None:
    """Block names of a registered model from its config alone; None when its files are not available
    locally (real weights are never downloaded just to list them)."""
    spec = model_spec(name)
    try:
        cls = backbone_class(name)
        return cls.block_names_for(_local_folder(spec, cls))
    except Exception:
        return None


def block_geometry(
    name: str, resolution: tuple[int, int] | None = None
) -> dict[str, tuple[int, int, int]] | None:
    """Block -> (C, h, w) per stored frame of a registered model at ``resolution`` (default: its registered
    size) from its config alone; None when its files are not available locally (nothing is downloaded)."""
    spec = model_spec(name)
    try:
        cls = backbone_class(name)
        return cls.block_shapes_for(_local_folder(spec, cls), resolution or spec.resolution, spec.clip_len)
    except Exception:
        return None
