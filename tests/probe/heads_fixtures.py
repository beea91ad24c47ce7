"""Worlds and feature stores for the trained-head tests, built once per test session.

- :func:`pixel_world`: a colour-coded synthetic world and a store of **pixel-patch features** written
  through the store's own writer: each position holds a fixed random projection of its patch's 4x4
  average-pooled RGB (a "pixels" model; blocks ``layer.4`` 16x16, ``layer.8`` 8x8, ``layer.64`` 1x1).
  Cheap, and it keeps the colour that decides the action class of a colour-coded world (random-init tiny
  diffusion models normalise the global colour away: GroupNorm), so heads can be checked to *learn*.
- :func:`tiny_sd_world`: a small world extracted by the real extraction runner with tiny-sd (the path a
  user takes), for end-to-end runs; :func:`dinov2_store`: the colour-coded world extracted with
  tiny-dinov2, whose features keep the colour (the "Done when" check on real extracted features).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dvx.config import ProbeConfig
from dvx.data import open_dataset
from dvx.data.synthetic import SynthConfig, write_world
from dvx.store.recipe import Recipe
from dvx.store.root import FeatureStore
from dvx.store.writer import VideoWriter

PIXEL_BLOCKS = {"layer.4": 4, "layer.8": 8, "layer.64": 64}
PIXEL_CHANNELS = 24


def pixel_recipe(size: tuple[int, int]) -> Recipe:
    return Recipe(
        model="pixels",
        family="pixels",
        weights="0" * 64,
        dtype="float32",
        resolution=size,
        clip_len=None,
        latent="none",
        noise={"kind": "additive gaussian, std T/1000 (test features)"},
    )


def pixel_features(frames: np.ndarray, patch: int, proj: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) uint8 -> (F, C, H/patch, W/patch): per patch, 4x4 average-pooled RGB, projected."""
    f, h, w, _ = frames.shape
    x = frames.astype(np.float32) / 255.0
    sub = patch // 4
    cells = x.reshape(f, h // patch, 4, sub, w // patch, 4, sub, 3).mean(axis=(3, 6))
    tokens = cells.transpose(0, 1, 3, 2, 4, 5).reshape(f, h // patch, w // patch, 48)
    return (tokens @ proj).transpose(0, 3, 1, 2)


def write_pixel_store(
    dataset: str,
    root: Path,
    store: str,
    timesteps: tuple[int, ...] = (0, 50),
    blocks: dict[str, int] | None = None,
) -> None:
    """Pixel-patch features of every video of ``dataset`` (read by its own reader) into ``store``."""
    blocks = blocks or PIXEL_BLOCKS
    ds = open_dataset(dataset, str(root))
    proj = np.random.default_rng(0).standard_normal((48, PIXEL_CHANNELS)).astype(np.float32)
    group = None
    for i, ref in enumerate(ds.videos()):
        video = ds.load(ref)
        n, size = len(video.frames), tuple(video.frames.shape[1:3])
        if group is None:
            group = FeatureStore.open(store, mode="a").create_group(dataset, pixel_recipe(size))
        vw = VideoWriter(group, ref.id, timesteps, list(blocks), chunk_frames=n)
        for t in timesteps:
            rng = np.random.default_rng([t, i])
            for block, patch in blocks.items():
                x = pixel_features(video.frames, patch, proj)
                x = x + rng.standard_normal(x.shape).astype(np.float32) * (t / 1000.0)
                vw.write(t, block, 0, x, n)
        vw.commit(video.frame_names, [[k] for k in range(n)], size)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Tiny heads on a shared CPU: one intra-op thread avoids OpenMP spin-waits (100x faster under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def heads_config(
    world: tuple[Path, str],
    results: Path,
    task: str,
    *,
    model: str = "pixels",
    timesteps: tuple[int, ...] = (0,),
    blocks: tuple[str, ...] = ("layer.8",),
    options: dict[str, object] | None = None,
    **kw: object,
) -> ProbeConfig:
    """A quiet probe config on a (world root, store path) pair: ``options`` go to the head (epochs, lr...),
    the rest replace :class:`ProbeConfig` fields."""
    base = ProbeConfig(
        task=task,
        store=world[1],
        model=model,
        data_root=str(world[0]),
        timesteps=timesteps,
        blocks=blocks,
        results=str(results),
        progress=False,
        options=dict(options or {}),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def _built(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[Path, bool]:
    root = tmp_path_factory.getbasetemp() / name
    return root, (root / "done").exists()


def pixel_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(world root, store path): 42 colour-coded videos (6 per motion class; 28 train, 14 test),
    4 frames of 64x64; pixel features at T = 0 and 50 of the world read as ``synthetic`` and through its
    Cityscapes, MOVi and UCF101 layouts (datasets ``cityscapes``, ``movi-e``, ``ucf101``)."""
    root, done = _built(tmp_path_factory, "heads-pixel-world")
    world, store = root / "world", root / "store"
    if not done:
        write_world(
            SynthConfig(out=world, videos=42, frames=4, height=64, width=64, seed=1, colour_coded=True)
        )
        for dataset in ("synthetic", "cityscapes", "movi-e", "ucf101"):
            write_pixel_store(dataset, world, str(store))
        (root / "done").write_text("")
    return world, str(store)


def tiny_sd_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(world root, store path): 14 videos x 4 frames of 64x64 extracted with tiny-sd at T = 50, blocks
    mid (1x1 at this size), up.1 (4x4) and up.2 (8x8)."""
    from dvx.config import ExtractConfig
    from dvx.extract.runner import run_extract

    root, done = _built(tmp_path_factory, "heads-tiny-sd-world")
    world, store = root / "world", root / "store"
    if not done:
        write_world(SynthConfig(out=world, videos=14, frames=4, height=64, width=64, seed=2))
        cfg = ExtractConfig(
            model="tiny-sd",
            dataset="synthetic",
            data_root=str(world),
            store=str(store),
            timesteps=(50,),
            blocks=("mid", "up.1", "up.2"),
            resolution=(64, 64),
            batch_size=4,
            progress=False,
        )
        run_extract(cfg, log=lambda msg: None)
        (root / "done").write_text("")
    return world, str(store)


def dinov2_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(world root, store path): the colour-coded world of :func:`pixel_world` extracted by the real
    extraction runner with tiny-dinov2 (T = 0, blocks layer.0..layer.3; random init keeps the colour, since
    LayerNorm normalises each token over channels, not each channel over the image)."""
    from dvx.config import ExtractConfig
    from dvx.extract.runner import run_extract

    world, _ = pixel_world(tmp_path_factory)
    root, done = _built(tmp_path_factory, "heads-dinov2-store")
    store = root / "store"
    if not done:
        cfg = ExtractConfig(
            model="tiny-dinov2", dataset="synthetic", data_root=str(world), store=str(store), progress=False
        )
        run_extract(cfg, log=lambda msg: None)
        (root / "done").write_text("")
    return world, str(store)
