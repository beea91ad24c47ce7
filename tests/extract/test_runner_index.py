"""What a writer reads of the index per video: one video's commit records, found without listing the
whole commits folder, and read once per video (a rerun otherwise costs a quadratic number of listings)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from dvx.extract.runner import run_extract
from dvx.store.backend import Backend
from dvx.store.group import RecipeGroup
from dvx.store.root import FeatureStore
from tests.extract.conftest import VIDEOS, Reference
from tests.store.test_store import RECIPE, write_video


def _commits_listed_whole(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every listing of a whole commits folder through the backend's listing calls."""
    seen: list[str] = []
    for name in ("list_dir", "list_prefix", "stat_prefix"):
        real = getattr(Backend, name)

        def spy(self: Backend, prefix: str, _real=real) -> list[str]:
            if prefix.rstrip("/").endswith("_index/commits"):
                seen.append(prefix)
            return _real(self, prefix)

        monkeypatch.setattr(Backend, name, spy)
    return seen


def test_video_index_lists_only_that_videos_commits(
    store_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = FeatureStore.open(store_location, mode="a").create_group("davis", RECIPE)
    assert list(group.video_index("dog").commits) == []  # no commits folder yet
    write_video(group, "dog", timesteps=(0,), blocks=("up.1",), n=2)
    write_video(group, "dog", timesteps=(50,), blocks=("up.1",), n=2)
    for other in ("dog1", "dog-x", "do", "cat"):  # names that share a beginning with "dog"
        write_video(group, other, timesteps=(0,), blocks=("up.1",), n=2)
    requests = _s3_list_requests(group)
    whole = _commits_listed_whole(monkeypatch)
    dog = group.video_index("dog")
    assert {c.video for c in dog.commits} == {"dog"} and len(dog.commits) == 2
    assert dog.has("dog", (0, 50), ["up.1"])
    assert [c.video for c in group.video_index("dog1").commits] == ["dog1"]
    assert [c.video for c in group.video_index("do").commits] == ["do"]
    assert list(group.video_index("bird").commits) == []
    assert whole == []  # never the whole folder
    if requests is not None:  # S3: the server lists the video's own folder (and its flat names)
        prefixes = [p for p in requests if "/commits/" in p]
        assert prefixes and all(
            p.endswith(tuple(f"/commits/{v}{end}" for v in ("dog", "dog1", "do", "bird") for end in "/~"))
            for p in prefixes
        )
    group.index()  # a full listing that finds no flat records of an older dvx ...
    requests = _s3_list_requests(group)
    assert [c.video for c in group.video_index("dog1").commits] == ["dog1"]
    if requests is not None:  # ... so the per-video check lists only the video's folder
        assert [p for p in requests if "/commits/" in p] == [p for p in requests if p.endswith("/dog1/")]


def test_list_dir_starting_keeps_only_the_names_with_that_beginning(store_location: str) -> None:
    backend = FeatureStore.open(store_location, mode="a").backend
    assert backend.list_dir_starting("notes", "dog") == []  # no such folder
    for name in ("dog~1.json", "dog~2.json", "dog1~1.json", "do~1.json", "cat~1.json"):
        backend.put_bytes(f"notes/{name}", b"{}")
    assert backend.list_dir_starting("notes", "dog~") == ["dog~1.json", "dog~2.json"]
    assert backend.list_dir_starting("notes/", "do") == [
        "dog1~1.json",
        "dog~1.json",
        "dog~2.json",
        "do~1.json",
    ]
    assert backend.list_dir_starting("notes", "bird") == []


def _s3_list_requests(group: RecipeGroup) -> list[str] | None:
    """On S3, the ``Prefix`` of every ListObjects request from now on (None on other backends)."""
    fs = getattr(group.backend.store, "fs", None)
    if fs is None or "s3" not in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        return None
    from zarr.core.sync import sync

    async def client():  # type: ignore[no-untyped-def]
        return await fs.set_session()

    s3 = sync(client())
    seen: list[str] = []

    def record(params: dict, **_: object) -> None:
        seen.append(params.get("Prefix", ""))

    s3.meta.events.register("provide-client-params.s3.ListObjectsV2", record)
    s3.meta.events.register("provide-client-params.s3.ListObjects", record)
    return seen


def test_a_rerun_reads_each_videos_commits_at_most_once(
    reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rerun adding a timestep meets every video's released claim: it reads that video's commits once
    (and only that video's), not the whole commits folder twice per video."""
    store = tmp_path / "store"
    shutil.copytree(reference.store, store)
    whole = _commits_listed_whole(monkeypatch)
    per_video: Counter[str] = Counter()
    real = RecipeGroup.video_index

    def counted(self: RecipeGroup, video: str):  # type: ignore[no-untyped-def]
        per_video[video] += 1
        return real(self, video)

    monkeypatch.setattr(RecipeGroup, "video_index", counted)
    report = run_extract(reference.cfg(store, timesteps=(0, 50, 100), blocks=("mid",)), log=lambda _: None)
    assert sorted(report.computed) == list(VIDEOS)
    assert len(whole) == 1  # the index every run reads once at its start
    assert set(per_video) == set(VIDEOS) and max(per_video.values()) == 1
    [group] = FeatureStore.open(str(store), mode="r").groups()
    assert all(group.index().has(v, (0, 50, 100), ["mid"]) for v in VIDEOS)
