"""The task contract's record: what it keys on besides the probe settings."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from dvx.config import ProbeConfig
from dvx.probe.task import ProbeContext, scored_videos


def ctx(videos: tuple[str, ...], split: str | None = None) -> ProbeContext:
    return cast(Any, SimpleNamespace(videos=videos, cfg=SimpleNamespace(split=split)))


def test_scored_videos_names_the_split_and_the_exact_video_set() -> None:
    a = scored_videos(ctx(("b", "a")))
    assert a == scored_videos(ctx(("a", "b")))  # order does not matter
    assert a["split"] is None and len(a["videos_sha"]) == 16
    assert scored_videos(ctx(("a",)))["videos_sha"] != a["videos_sha"]  # a subset is other data
    assert scored_videos(ctx(("a", "b"), split="val"))["split"] == "val"


def test_jhmdb_settings_record_the_keypoint_constants_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    from dvx.probe import keypoints
    from dvx.probe.tasks.jhmdb import JhmdbPropagationTask

    task = JhmdbPropagationTask("jhmdb", ProbeConfig(task="jhmdb", store="s", model="m", data_root="d"))
    assert task.settings()["heatmap_sigma_cells"] == keypoints.SIGMA
    assert task.settings()["decode_topk"] == keypoints.DECODE_TOPK
    # a changed constant changes the record key: no stale result is reused
    monkeypatch.setattr(keypoints, "SIGMA", 0.25)
    monkeypatch.setattr(keypoints, "DECODE_TOPK", 5)
    assert task.settings()["heatmap_sigma_cells"] == 0.25 and task.settings()["decode_topk"] == 5
