"""Checks every backbone family's tiny twin must pass (used by tests/extract/test_backbones_<family>.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dvx.config import ExtractConfig
from dvx.data.synthetic import SynthConfig, write_world
from dvx.extract.base import Backbone
from dvx.extract.block_table import shipped_block_names
from dvx.extract.models import block_geometry_in, model_spec
from dvx.extract.runner import run_extract
from dvx.store.group import RecipeGroup
from dvx.store.root import FeatureStore


def seed_fn(i: int, t: int, m: int) -> int:
    return 1000 * i + 10 * t + m


def frames(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def config_class(folder: Path, sub: str = "") -> str:
    cfg = json.loads((folder / sub / "config.json").read_text())
    return cfg.get("_class_name") or cfg["architectures"][0]


def check_saved_and_loaded(backbone: Backbone, module: torch.nn.Module, sub: str = "") -> None:
    """The tiny folder holds a config + safetensors, loaded back as the class its config names, and the
    block names from the config alone equal the loaded modules'."""
    folder = backbone.folder
    assert any(p.suffix == ".safetensors" for p in (folder / sub).iterdir())
    name = config_class(folder, sub)
    assert type(module).__name__ == name
    names = type(backbone).block_names_for(folder)
    assert names == backbone.block_names == list(backbone.block_modules())
    assert shipped_block_names(backbone.spec.name) == names  # what `dvx ls models` shows


def check_one_forward_equals_one_per_block(
    backbone: Backbone, x: torch.Tensor, timesteps: Sequence[int], some: Sequence[str]
) -> None:
    together = backbone.features(x, timesteps, backbone.block_names, seed_fn, ensemble=1)
    for b in some:
        alone = backbone.features(x, timesteps, [b], seed_fn, ensemble=1)
        for t in timesteps:
            torch.testing.assert_close(alone[t][b], together[t][b])


def check_block_shapes(backbone: Backbone, x: torch.Tensor, timestep: int = 0) -> None:
    """The per-block (C, h, w) computed from the config alone (what --dry-run prints) equals the shapes of a
    real forward at the frames' size."""
    feats = backbone.features(x, [timestep], backbone.block_names, seed_fn, ensemble=1)[timestep]
    got = {b: tuple(v.shape[1:]) for b, v in feats.items()}
    size = (int(x.shape[-2]), int(x.shape[-1]))
    assert got == backbone.block_shapes(size)
    assert got == type(backbone).block_shapes_for(backbone.folder, size, backbone.clip_len)
    if backbone.clip_len == model_spec(backbone.spec.name).clip_len:  # the registry's helper: default clip
        assert block_geometry_in(backbone.spec.name, backbone.folder, size) == got


def check_norm_is_last_hidden_state(
    backbone: Backbone, x: torch.Tensor, last_hidden: torch.Tensor, grid: tuple[int, int, int]
) -> None:
    """Block ``norm`` is the model's ``last_hidden_state`` (patch tokens, reshaped), and after the store's
    float16 cast it equals it within float16 rounding."""
    from dvx.extract.tokens import tokens_to_maps

    norm = backbone.features(x, [0], ["norm"], seed_fn, ensemble=1)[0]["norm"]
    ref = tokens_to_maps(last_hidden, grid)[0]
    torch.testing.assert_close(norm, ref)
    stored = torch.from_numpy(norm.numpy().astype(np.float16)).float()
    torch.testing.assert_close(stored, ref, rtol=2**-10, atol=1e-6)
    last = backbone.features(x, [0], [backbone.block_names[-2]], seed_fn, ensemble=1)[0]
    assert not torch.allclose(last[backbone.block_names[-2]], norm)  # the LayerNorm is really applied


def check_stops_after_deepest(backbone: Backbone, x: torch.Tensor, t: int, block: str) -> None:
    """Requesting ``block`` runs the blocks up to it and none after it."""
    backbone.ensure_loaded()
    calls: list[str] = []
    modules = backbone.block_modules()
    hooks = [m.register_forward_hook(lambda *_a, n=n: calls.append(n)) for n, m in modules.items()]
    try:
        backbone.features(x, [t], [block], seed_fn, ensemble=1)
    finally:
        for h in hooks:
            h.remove()
    order = list(modules)
    assert calls == order[: order.index(block) + 1]


def check_timesteps_and_ensemble(backbone: Backbone, x: torch.Tensor, block: str, members: int = 2) -> None:
    """T changes the features; several T in one batch equal each T alone; an ensemble of ``members`` is
    the mean of its independently seeded draws."""
    both = backbone.features(x, [0, 200], [block], seed_fn, ensemble=1)
    alone = backbone.features(x, [200], [block], seed_fn, ensemble=1)
    assert not torch.allclose(both[0][block], both[200][block])
    torch.testing.assert_close(both[200][block], alone[200][block], rtol=1e-4, atol=1e-5)
    mean = backbone.features(x, [200], [block], seed_fn, ensemble=members)[200][block]
    draws = [
        backbone.features(x, [200], [block], lambda i, t, k, m=m: seed_fn(i, t, m), 1)[200][block]
        for m in range(members)
    ]
    assert not torch.allclose(mean, draws[0])
    torch.testing.assert_close(mean, torch.stack(draws).mean(0), rtol=1e-4, atol=1e-5)


def write_tiny_world(root: Path) -> Path:
    """2 videos x 5 frames x 48x64 of the synthetic world."""
    write_world(SynthConfig(out=root, videos=2, frames=5, height=48, width=64, seed=5))
    return root


def extract_world(world: Path, store: Path, model: str, **kw: object) -> RecipeGroup:
    """A short end-to-end ``run_extract`` into ``store``; returns its one recipe group."""
    cfg = ExtractConfig(
        model=model, dataset="synthetic", data_root=str(world), store=str(store), progress=False, **kw
    )
    report = run_extract(cfg, log=lambda _m: None)
    assert len(report.computed) == 2 and report.bytes_written > 0
    [group] = FeatureStore.open(str(store), mode="r").groups()
    for v in group.index().videos():
        for t in group.index().timesteps():
            for b in group.index().blocks():
                a = group.read(v, t, b)
                assert a.dtype == np.float16 and np.isfinite(a).all()
    return group
