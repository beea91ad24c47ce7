"""A probe on a shared store it cannot write works, and never writes there (results go elsewhere)."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dvx.cli import main
from dvx.config import ProbeConfig
from dvx.data.base import VideoRef
from dvx.probe import TASKS
from dvx.probe.runner import run_probe
from dvx.probe.task import ProbeContext, Task
from dvx.results import ResultRecord
from dvx.store.root import FeatureStore
from tests.conftest import make_toy
from tests.store.test_store import RECIPE, write_video

TASK = "test-readonly-mean"


class MeanFeatureTask(Task):
    """A stand-in probe: reads every video's features (tensor and lazy view), writes a file to --out."""

    main_metric = "mean"

    def settings(self) -> dict[str, Any]:
        return {"kind": "mean"}

    def videos(self, ctx: ProbeContext) -> list[VideoRef]:
        return ctx.dataset.videos()

    def run(self, ctx: ProbeContext, pairs: list[tuple[int, str]]) -> list[ResultRecord]:
        out = []
        for t, block in pairs:
            values = [float(ctx.group.tensor(r.id, t, block).float().mean()) for r in self.videos(ctx)]
            lazy = ctx.group.dataarray(t, block)
            assert lazy.sizes["video"] == len(values)
            if ctx.out is not None:
                ctx.out.mkdir(parents=True, exist_ok=True)
                (ctx.out / f"t{t}-{block}.txt").write_text(repr(values))
            out.append(self.record(ctx, t, block, {"mean": float(np.mean(values))}, videos=len(values)))
        return out


@pytest.fixture(autouse=True)
def _task() -> Iterator[None]:
    TASKS.register(TASK, MeanFeatureTask, "test only", dataset="toy")
    yield
    TASKS.unregister(TASK)


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """path -> (size, mtime_ns, sha256) of every file and folder under ``root``."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[str(p.relative_to(root))] = (st.st_size if p.is_file() else 0, st.st_mtime_ns, digest)
    return out


@contextlib.contextmanager
def unwritable(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make ``root`` a store this process cannot write: read-only permissions, and (as root, who ignores
    permissions) every zarr write and delete primitive failing like a read-only filesystem."""
    from zarr.storage import FsspecStore, LocalStore

    def refuse(*_: object, **__: object) -> None:
        raise PermissionError(30, "Read-only file system")

    paths = [root, *root.rglob("*")]
    modes = {p: p.stat().st_mode for p in paths}
    for p in paths:
        p.chmod(modes[p] & ~0o222)
    with monkeypatch.context() as m:
        for cls in (LocalStore, FsspecStore):
            for name in ("set", "set_if_not_exists", "delete", "delete_dir", "_set"):
                if hasattr(cls, name):
                    m.setattr(cls, name, refuse)
        m.setattr(os, "link", refuse)
        try:
            yield
        finally:
            for p in reversed(paths):
                p.chmod(modes[p])


def test_a_probe_on_a_store_it_cannot_write_works_and_never_writes_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_toy(tmp_path / "toy", {"a": 3, "b": 2})
    store = tmp_path / "shared-cache"
    group = FeatureStore.open(str(store), mode="a").create_group("toy", RECIPE)
    write_video(group, "a", n=3)
    write_video(group, "b", n=2, seed=5)
    before = snapshot(store)
    cfg = ProbeConfig(
        task=TASK,
        store=str(store),
        model=RECIPE.model,
        data_root=str(tmp_path / "toy"),
        out=str(tmp_path / "out"),
        results=str(tmp_path / "results"),
        progress=False,
    )
    with unwritable(store, monkeypatch):
        records = run_probe(cfg, log=lambda _: None)
        assert len(records) == 4 and {r.T for r in records} == {0, 50} and records[0].videos == 2
        again = run_probe(cfg, log=lambda _: None)  # the results records are found again, elsewhere
        assert [r.metrics for r in again] == [r.metrics for r in records]
        for argv in (
            ["cache", "ls", "--store", str(store), "-v"],
            ["cache", "verify", "--store", str(store)],
        ):
            main(argv)  # returns normally on success (exits non-zero on any error)
    assert snapshot(store) == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "t0-up.1.txt",
        "t0-up.2.txt",
        "t50-up.1.txt",
        "t50-up.2.txt",
    ]
    assert any((tmp_path / "results").rglob("*.json"))


def test_a_real_propagation_probe_on_an_unwritable_store_writes_only_out_and_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvx.data.synthetic import SynthConfig, write_world
    from tests.probe.test_propagation_tasks import write_pixel_store

    world = tmp_path / "world"
    write_world(SynthConfig(out=world, videos=2, frames=6, height=64, width=64, seed=1, brick_wall_every=0))
    store = tmp_path / "shared-cache"
    write_pixel_store("synthetic", world, store, resolution=(64, 64))
    before = snapshot(store)
    cfg = ProbeConfig(
        task="synthetic-propagation",
        store=str(store),
        model="pixels",
        data_root=str(world),
        dataset="synthetic",
        out=str(tmp_path / "out"),
        results=str(tmp_path / "results"),
        device="cpu",
        progress=False,
        options={"preset": "dino"},
    )
    with unwritable(store, monkeypatch):
        [rec] = run_probe(cfg, log=lambda _: None)
    assert rec.videos == 2 and 0.0 <= rec.metrics["JF_mean"] <= 1.0
    assert snapshot(store) == before
    assert any((tmp_path / "out").rglob("*.png")) and any((tmp_path / "results").rglob("*.json"))
