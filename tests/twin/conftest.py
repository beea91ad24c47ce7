"""A tiny training world and tiny twins trained on it once per session (2 steps each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvx.twin.config import TrainConfig

#: the smallest settings that run every code path: 2-frame clips, 4 frames per batch, 32x48 frames
TINY = dict(
    steps=2, save_every=1, frames=2, frames_per_batch=4, resolution=(32, 48), threads=1, progress=False
)


@pytest.fixture(scope="session")
def train_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dvx.data.synthetic import SynthConfig, write_world

    root = tmp_path_factory.mktemp("twin-train-world")
    write_world(SynthConfig(out=root, videos=3, frames=4, height=32, width=48, seed=1000, colour_coded=True))
    return root


def tiny_config(world: Path, out: Path, objective: str, **kw: object) -> TrainConfig:
    return TrainConfig(objective=objective, data_root=str(world), out=str(out), **(TINY | kw))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, train_world: Path) -> dict[str, object]:
    """objective -> TrainReport of a 2-step run of each twin on the tiny world."""
    from dvx.twin.train import run_train

    out = tmp_path_factory.mktemp("twins")
    return {
        obj: run_train(tiny_config(train_world, out / obj, obj), log=lambda _: None)
        for obj in ("video", "image")
    }
