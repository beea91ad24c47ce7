"""Tracking from a cached store, and scoring the files it writes (``dvx eval tapvid``) reproduces its
numbers. The tiny models are random-init: their AJ is plumbing, not science."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dvx.data.synthetic import SynthConfig, SyntheticWorld, write_world
from dvx.data.tapvid import TapVidDavis, export_tapvid_davis
from dvx.errors import CacheMissError
from dvx.probe.evaluate_tapvid import TapvidEvalConfig, run_tapvid_eval
from dvx.probe.tapvid_io import read_prediction
from dvx.probe.tapvid_metrics import METRICS
from dvx.probe.track_cache import TrackingSettings, track_from_cache
from dvx.probe.tracking import TrackerConfig
from dvx.store.group import RecipeGroup
from tests.conftest import extract_tiny


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RecipeGroup]:
    root = tmp_path_factory.mktemp("track-cache")
    world = root / "world"
    write_world(SynthConfig(out=world, videos=3, frames=5, height=48, width=64, seed=4))
    _, group = extract_tiny("tiny-sd", "synthetic", world, root / "store", ("up.2", "up.3"))
    return world, group


def same(a: float | None, b: float | None) -> bool:
    return a == b  # records write an undefined figure as None


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["first", "strided"])
def test_scoring_the_written_files_reproduces_the_run(
    cached: tuple[Path, RecipeGroup], tmp_path: Path, mode: str
) -> None:
    world, group = cached
    settings = TrackingSettings(query_mode=mode, tracker=TrackerConfig(occlusion_threshold=0.2))
    run = track_from_cache(group, SyntheticWorld(world), 50, "up.2", settings, out=tmp_path)
    rec = run.record()
    assert (
        rec["n_videos"] == 3 and rec["block"] == rec["key_block"] == "up.2" and rec["matching"] == "feature"
    )
    assert sorted(p.name for p in run.files) == [f"synth_00000{i}.npz" for i in range(3)]
    scored = run_tapvid_eval(TapvidEvalConfig(pred=tmp_path, gt=world, query_mode=mode))
    for k in METRICS:
        assert same(scored[k], rec[k]), k
    assert scored["per_video"] == rec["per_video"]
    back = read_prediction(tmp_path / "synth_000000.npz")
    np.testing.assert_array_equal(back.tracks, run.predictions["synth_000000"].tracks)
    assert back.tracks.dtype == np.float32 and back.occluded.dtype == bool


def test_query_key_pair_and_the_tapvid_reader(cached: tuple[Path, RecipeGroup], tmp_path: Path) -> None:
    """Two blocks as query and key maps; and the same features read with the tapvid-davis ground truth of
    the exported world give the same scores as the world itself (both are the same tracks)."""
    world, group = cached
    export_tapvid_davis(SyntheticWorld(world), tmp_path / "gt")
    by_world = track_from_cache(group, SyntheticWorld(world), 50, "up.2", key_block="up.3").record()
    by_tapvid = track_from_cache(group, TapVidDavis(tmp_path / "gt"), 50, "up.2", key_block="up.3").record()
    assert by_world["matching"] == "query-key"
    for k in METRICS:
        assert same(by_world[k], by_tapvid[k]), k


def test_a_block_not_in_the_cache_is_a_cache_miss(cached: tuple[Path, RecipeGroup]) -> None:
    world, group = cached
    with pytest.raises(CacheMissError, match=r"block\(s\) up\.1"):
        track_from_cache(group, SyntheticWorld(world), 50, "up.1")


@pytest.mark.slow
def test_query_key_tracking_from_cached_wan_attention(tmp_path: Path) -> None:
    """DiffTrack's setting end to end: a Wan self-attention q/k pair extracted to the store (time
    compressed: one stored map per 4 frames) and tracked query-to-key; the files score the same."""
    world = tmp_path / "world"
    write_world(SynthConfig(out=world, videos=1, frames=9, height=32, width=32, seed=5))
    _, group = extract_tiny("tiny-wan", "synthetic", world, tmp_path / "store", ("layer.2.attn1.*",))
    assert group.read("synth_000000", 50, "layer.2.attn1.q").shape[0] == 3  # 9 frames -> 3 latent frames
    run = track_from_cache(
        group,
        SyntheticWorld(world),
        50,
        "layer.2.attn1.q",
        key_block="layer.2.attn1.k",
        out=tmp_path / "pred",
    )
    rec = run.record()
    assert rec["matching"] == "query-key" and rec["n_queries"] > 0
    scored = run_tapvid_eval(TapvidEvalConfig(pred=tmp_path / "pred", gt=world))
    for k in METRICS:
        assert same(scored[k], rec[k]), k
