"""The task contract's record: what it keys on besides the probe settings."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from dvx.probe.task import ProbeContext, scored_videos


def ctx(videos: tuple[str, ...], split: str | None = None) -> ProbeContext:
    return cast(Any, SimpleNamespace(videos=videos, cfg=SimpleNamespace(split=split)))


def test_scored_videos_names_the_split_and_the_exact_video_set() -> None:
    a = scored_videos(ctx(("b", "a")))
    assert a == scored_videos(ctx(("a", "b")))  # order does not matter
    assert a["split"] is None and len(a["videos_sha"]) == 16
    assert scored_videos(ctx(("a",)))["videos_sha"] != a["videos_sha"]  # a subset is other data
    assert scored_videos(ctx(("a", "b"), split="val"))["split"] == "val"
