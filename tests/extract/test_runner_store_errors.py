"""A store that fails a write (disk or quota full) ends ``dvx extract`` with one line naming the store; the
videos committed before stay visible and the same command again finishes the rest."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from dvx.cli import main
from dvx.errors import StoreError
from dvx.extract.runner import run_extract
from dvx.store.backend import Backend
from dvx.store.root import FeatureStore
from dvx.store.writer import VideoWriter
from tests.extract.conftest import VIDEOS, Reference

# tiny-sd at 64x64, T=0,50, batch 4 on 6 frames: 2 units x 2 T x 9 blocks = 36 array writes per video
WRITES_PER_VIDEO = 36


def _disk_full_after(
    monkeypatch: pytest.MonkeyPatch, cls: type, name: str, calls: int, keys: str = ""
) -> None:
    """``cls.name`` fails with ENOSPC from its ``calls``-th call on (counting calls whose key contains
    ``keys``), like a disk that filled up."""
    real = getattr(cls, name)
    seen = {"n": 0}

    def full(*args: object, **kwargs: object) -> object:
        if keys not in str(args[1]):
            return real(*args, **kwargs)
        seen["n"] += 1
        if seen["n"] >= calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(cls, name, full)


def _visible(store: Path) -> list[str]:
    [group] = FeatureStore.open(str(store), mode="r").groups()
    return group.index().videos()


def test_a_full_disk_during_array_writes_is_a_store_error_and_keeps_the_commits(
    reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    _disk_full_after(monkeypatch, VideoWriter, "write", WRITES_PER_VIDEO + 4)  # in the second video
    with pytest.raises(StoreError) as info:
        run_extract(reference.cfg(store), log=lambda _: None)
    message = str(info.value)
    assert message.startswith(f"writing to {store} failed: No space left on device")
    assert message.endswith("what was committed stays, rerun to resume")
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == errno.ENOSPC
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC  # for who catches those
    assert _visible(store) == [VIDEOS[0]]  # committed before the failure: still there, intact
    reference.assert_same(store, complete=False)
    monkeypatch.undo()
    report = run_extract(reference.cfg(store), log=lambda _: None)  # room again: the same command resumes
    assert sorted(report.computed) == list(VIDEOS[1:])
    reference.assert_same(store)


def test_a_full_disk_on_a_claim_is_a_store_error_too(
    reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claims are written by the main thread: a full disk there reads the same, and the video queued before
    still commits."""
    store = tmp_path / "store"
    _disk_full_after(monkeypatch, Backend, "put_json_if_absent", 2, keys="/claims/")  # the second claim
    with pytest.raises(StoreError, match=r"failed: No space left on device; what was committed stays"):
        run_extract(reference.cfg(store, videos=VIDEOS[:2]), log=lambda _: None)
    assert _visible(store) == [VIDEOS[0]]
    reference.assert_same(store, complete=False)


def test_a_full_disk_when_the_recipe_group_is_created_is_a_store_error(
    reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    _disk_full_after(monkeypatch, Backend, "put_json_if_absent", 1, keys="synthetic/")
    with pytest.raises(StoreError, match=r"failed: No space left on device; what was committed stays"):
        run_extract(reference.cfg(store), log=lambda _: None)


def test_the_cli_prints_one_line_for_a_full_disk(
    reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    store = tmp_path / "store"
    _disk_full_after(monkeypatch, VideoWriter, "write", 5)  # in the first video: nothing committed
    argv = reference.argv(store, "--videos", VIDEOS[0])[3:]  # without python -m dvx
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == StoreError.exit_code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"dvx: error: writing to {store} failed: No space left on device; " in err
    assert _visible(store) == []
