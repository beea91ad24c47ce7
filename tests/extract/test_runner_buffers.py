"""The runner's reused host buffers (dvx/extract/hooks.py HostBuffers): a buffer goes back to the pool only
after the writer thread has written what it holds, so reuse never changes a stored bit."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dvx.extract import hooks as hooks_mod
from dvx.extract.runner import run_extract
from dvx.store import writer as writer_mod
from tests.extract.test_runner import all_features, cfg, world  # noqa: F401  (world: a fixture)


def test_reused_host_buffers_never_change_what_is_stored(
    world: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slow writer (a video's first clip is written only once the next clip is on the host): had a buffer
    come back before its write, the next clip's copy would overwrite features not yet on disk. The store
    equals one written with a fresh host tensor per copy (no reuse at all)."""
    options = {"model": "tiny-svd", "clip_len": 2, "blocks": ("up.1", "up.2"), "timesteps": (0, 50)}
    pools: list[hooks_mod.HostBuffers] = []
    real_init = hooks_mod.HostBuffers.__init__

    def no_reuse(self: Any, pinned: bool = False, max_free_bytes: int = 0) -> None:
        real_init(self, pinned, 0)

    monkeypatch.setattr(hooks_mod.HostBuffers, "__init__", no_reuse)
    run_extract(cfg(world, tmp_path / "fresh", **options))
    fresh = all_features(tmp_path / "fresh")
    monkeypatch.undo()

    def watched(self: Any, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        pools.append(self)

    real_write, real_submit = writer_mod.VideoWriter.write, writer_mod.BackgroundWriter.submit
    later_clip_copied = threading.Event()

    def submit(self: Any, fn: Any, *args: Any) -> None:
        if (
            len(args) == 5 and isinstance(args[2], int) and args[2] > 0
        ):  # write(t, block, start, data, total) of a later clip: on the host
            later_clip_copied.set()
        real_submit(self, fn, *args)

    def slow_write(self: Any, t: int, block: str, start: int, *rest: Any) -> None:
        if start == 0:  # the first clip's writes wait until the next clip has been copied to the host
            assert later_clip_copied.wait(timeout=10)
        real_write(self, t, block, start, *rest)

    def video_start(self: Any, *args: Any, **kwargs: Any) -> None:
        later_clip_copied.clear()
        real_vw_init(self, *args, **kwargs)

    real_vw_init = writer_mod.VideoWriter.__init__
    monkeypatch.setattr(writer_mod.BackgroundWriter, "submit", submit)
    monkeypatch.setattr(writer_mod.VideoWriter, "__init__", video_start)
    monkeypatch.setattr(hooks_mod.HostBuffers, "__init__", watched)
    monkeypatch.setattr(writer_mod.VideoWriter, "write", slow_write)
    run_extract(cfg(world, tmp_path / "reused", **options))
    reused = all_features(tmp_path / "reused")
    assert fresh.keys() == reused.keys() and len(fresh) == 3 * 2 * 2
    for k in fresh:
        np.testing.assert_array_equal(fresh[k].view(np.uint16), reused[k].view(np.uint16))
    [pool] = pools
    copies = 3 * 3 * 2 * 2  # videos x clips of 2 (6 frames) x T x blocks
    assert 0 < pool.allocated < copies  # buffers came back and were used again
