"""A tiny world and its uninterrupted single-process extraction, shared by the multi-process tests.

Every run here uses one CPU thread per process: on CPU, oneDNN picks thread-count dependent kernels, so
features are bit-identical across launches only for the same ``--threads`` (docs/store.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from dvx.config import ExtractConfig
from dvx.data.synthetic import SynthConfig, write_world
from dvx.extract.runner import run_extract
from dvx.store.index import Commit
from dvx.store.root import FeatureStore

REPO = Path(__file__).resolve().parents[2]
VIDEOS = tuple(f"synth_{i:06d}" for i in range(5))


@dataclass
class Reference:
    world: Path
    store: Path
    arrays: dict[tuple[str, int, str], np.ndarray]
    commits: dict[str, Commit]
    seconds: float

    def cfg(self, store: Path | str, **kw: object) -> ExtractConfig:
        base = {
            "model": "tiny-sd",
            "dataset": "synthetic",
            "data_root": str(self.world),
            "store": str(store),
            "timesteps": (0, 50),
            "resolution": (64, 64),
            "batch_size": 4,
            "threads": 1,
            "progress": False,
        }
        return ExtractConfig(**{**base, **kw})  # type: ignore[arg-type]

    def argv(self, store: Path | str, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "dvx",
            "extract",
            "--model",
            "tiny-sd",
            "--dataset",
            "synthetic",
            "--data-root",
            str(self.world),
            "--store",
            str(store),
            "--timesteps",
            "0,50",
            "--resolution",
            "64x64",
            "--batch-size",
            "4",
            "--threads",
            "1",
            "--no-progress",
            *extra,
        ]

    def popen(self, store: Path | str, *extra: str, **kw: object) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        return subprocess.Popen(self.argv(store, *extra), cwd=REPO, env=env, text=True, **kw)  # type: ignore[call-overload]

    def assert_same(self, store: Path | str, complete: bool = True) -> list[str]:
        """Every visible video of ``store`` equals the reference bit for bit (all of it, if ``complete``);
        returns the visible videos."""
        [group] = FeatureStore.open(str(store), mode="r").groups()
        index = group.index()
        videos = index.videos()
        if complete:
            assert videos == list(VIDEOS)
        for video in videos:
            assert index.has(video, (0, 50), index.blocks()) and len(index.blocks()) == 9, video
            ref, got = self.commits[video], index.latest(video)
            assert (got.frame_names, got.time_map, dict(got.shapes)) == (
                ref.frame_names,
                ref.time_map,
                dict(ref.shapes),
            )
            for t in (0, 50):
                for b in index.blocks():
                    np.testing.assert_array_equal(group.read(video, t, b), self.arrays[(video, t, b)])
        return videos


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    root = tmp_path_factory.mktemp("cluster")
    world = root / "world"
    write_world(SynthConfig(out=world, videos=len(VIDEOS), frames=6, height=48, width=64, seed=3))
    store = root / "reference"
    ref = Reference(world, store, {}, {}, 0.0)
    report = run_extract(ref.cfg(store), log=lambda _: None)
    ref.seconds = report.seconds
    [group] = FeatureStore.open(str(store), mode="r").groups()
    index = group.index()
    assert index.videos() == list(VIDEOS)
    for video in VIDEOS:
        ref.commits[video] = index.latest(video)
        for t in (0, 50):
            for b in index.blocks():
                ref.arrays[(video, t, b)] = group.read(video, t, b)
    return ref
