"""The extraction runner end to end on the synthetic world (and a toy dataset for corrupt videos)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dvx.config import ExtractConfig
from dvx.data import open_dataset
from dvx.data.synthetic import SynthConfig, write_world
from dvx.errors import ConfigError, CorruptVideoError, DataError, UnknownNameError
from dvx.extract.runner import run_extract, with_frame_counts
from dvx.store.root import FeatureStore
from dvx.store.writer import VideoWriter


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world") / "w"
    write_world(SynthConfig(out=root, videos=3, frames=6, height=48, width=64, seed=3))
    return root


def cfg(world: Path, store: Path, **kw: object) -> ExtractConfig:
    base = ExtractConfig(
        model="tiny-sd",
        dataset="synthetic",
        data_root=str(world),
        store=str(store),
        timesteps=(0, 50),
        resolution=(64, 64),
        batch_size=4,
        progress=False,
    )
    return replace(base, **kw)


def all_features(store: Path) -> dict[tuple[str, int, str], np.ndarray]:
    [g] = FeatureStore.open(str(store), mode="r").groups()
    idx = g.index()
    return {(v, t, b): g.read(v, t, b) for v in idx.videos() for t in idx.timesteps() for b in idx.blocks()}


def test_extract_caches_every_block_and_a_rerun_computes_nothing(world: Path, tmp_path: Path) -> None:
    logs: list[str] = []
    report = run_extract(cfg(world, tmp_path / "s"), log=logs.append)
    assert report.cached == 0 and len(report.computed) == 3 and report.bytes_written > 0
    assert "0 cached, 3 to compute" in logs[0]
    [g] = FeatureStore.open(str(tmp_path / "s"), mode="r").groups()
    assert g.index().blocks() == sorted(
        ["down.0", "down.1", "down.2", "down.3", "mid", "up.0", "up.1", "up.2", "up.3"]
    )
    assert g.index().timesteps() == [0, 50] and len(g.index().videos()) == 3
    x = g.read("synth_000000", 50, "up.2")
    assert x.dtype == np.float16 and x.shape == (6, 32, 8, 8) and np.isfinite(x).all()
    assert g.noise_levels()[50]["model_timestep"] == 50
    logs.clear()
    again = run_extract(cfg(world, tmp_path / "s"), log=logs.append)
    assert again.computed == [] and again.cached == 3 and "3 cached, 0 to compute" in logs[0]


def test_a_new_timestep_computes_only_that_timestep(world: Path, tmp_path: Path) -> None:
    run_extract(cfg(world, tmp_path / "s", blocks=("up.1",)))
    before = all_features(tmp_path / "s")
    report = run_extract(cfg(world, tmp_path / "s", blocks=("up.1",), timesteps=(0, 50, 200)))
    [g] = FeatureStore.open(str(tmp_path / "s"), mode="r").groups()
    new = [c for c in g.index().commits if c.timesteps == (200,)]
    assert len(new) == 3 and len(report.computed) == 3  # only T=200 was computed and committed
    after = all_features(tmp_path / "s")
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_resume_after_a_crash_redoes_only_the_rest_bit_for_bit(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_extract(cfg(world, tmp_path / "clean"))
    real_commit = VideoWriter.commit
    calls = {"n": 0}

    def crashing_commit(self: VideoWriter, *a: object, **k: object):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # dies between the arrays and the commit record of video 2
        return real_commit(self, *a, **k)

    monkeypatch.setattr(VideoWriter, "commit", crashing_commit)
    with pytest.raises(KeyboardInterrupt):
        run_extract(cfg(world, tmp_path / "crashed"))
    monkeypatch.setattr(VideoWriter, "commit", real_commit)
    [g] = FeatureStore.open(str(tmp_path / "crashed"), mode="r").groups()
    assert g.index().videos() == ["synth_000000"]  # the half-written video is invisible
    logs: list[str] = []
    report = run_extract(cfg(world, tmp_path / "crashed"), log=logs.append)
    assert "1 cached, 2 to compute" in logs[0] and len(report.computed) == 2
    clean, resumed = all_features(tmp_path / "clean"), all_features(tmp_path / "crashed")
    assert clean.keys() == resumed.keys()
    assert all(np.array_equal(clean[k], resumed[k]) for k in clean)


def test_video_models_use_clips_and_drop_padding(world: Path, tmp_path: Path) -> None:
    report = run_extract(
        cfg(world, tmp_path / "s", model="tiny-svd", clip_len=4, blocks=("up.1", "up.2"), timesteps=(50,))
    )
    [g] = FeatureStore.open(str(tmp_path / "s"), mode="r").groups()
    assert g.recipe.clip_len == 4 and len(report.computed) == 3
    commit = g.index().lookup("synth_000001", 50, "up.2")
    assert commit.time_map == tuple((i,) for i in range(6))  # 6 frames: clips of 4, last padded by 2
    assert g.read("synth_000001", 50, "up.2").shape == (6, 32, 8, 8)


def test_dry_run_writes_nothing_and_predicts_the_bytes(world: Path, tmp_path: Path) -> None:
    store = tmp_path / "s"
    planned = run_extract(cfg(world, store, dry_run=True))
    assert not store.exists() and planned.planned_bytes and planned.planned_bytes > 0
    done = run_extract(cfg(world, store))
    assert done.bytes_written == planned.planned_bytes


def test_dry_run_reports_free_space_for_a_file_url_store(world: Path, tmp_path: Path) -> None:
    logs: list[str] = []
    run_extract(replace(cfg(world, tmp_path, dry_run=True), store=f"file://{tmp_path}/s"), log=logs.append)
    assert any(f"free at {tmp_path}" in m for m in logs), logs
    logs.clear()
    run_extract(replace(cfg(world, tmp_path, dry_run=True), store="memory://dvx-dry-run"), log=logs.append)
    assert not any("free at" in m for m in logs), logs  # no local disk to report on


def _ucf(root: Path) -> Path:
    from tests.data._media import noise_frames, write_video

    write_video(root / "UCF-101" / "JumpRope" / "v_JumpRope_g01_c01.avi", noise_frames(7), codec="mpeg4")
    write_video(root / "UCF-101" / "Fencing" / "v_Fencing_g01_c01.mp4", noise_frames(5, seed=1))
    return root


def test_video_files_are_counted_from_their_headers_not_decoded(tmp_path: Path) -> None:
    from dvx.data.video_io import probe_video

    root = _ucf(tmp_path / "ucf")
    (root / "UCF-101" / "Fencing" / "v_Fencing_g02_c01.mp4").write_bytes(b"not a video")
    refs = {r.id: r for r in with_frame_counts(open_dataset("ucf101", str(root)).videos())}
    assert (
        refs["v_JumpRope_g01_c01"].meta["n_frames"] == 7 and refs["v_Fencing_g01_c01"].meta["n_frames"] == 5
    )
    assert "n_frames" not in refs["v_Fencing_g02_c01"].meta  # unreadable: left to the reader to report
    assert probe_video(refs["v_JumpRope_g01_c01"].path).num_frames == 7


def test_dry_run_of_video_files_decodes_nothing_and_predicts_the_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvx.data.actions import Ucf101Dataset

    root = _ucf(tmp_path / "ucf")
    base = cfg(root, tmp_path / "s", dataset="ucf101", timesteps=(0,), blocks=("mid",), frame_stride=2)
    load = Ucf101Dataset.load

    def no_decoding(self: Ucf101Dataset, ref: object) -> object:
        raise AssertionError(f"decoded {ref}")

    monkeypatch.setattr(Ucf101Dataset, "load", no_decoding)
    planned = run_extract(replace(base, dry_run=True))
    monkeypatch.setattr(Ucf101Dataset, "load", load)
    done = run_extract(base)
    assert sorted(done.computed) == ["v_Fencing_g01_c01", "v_JumpRope_g01_c01"]
    assert planned.planned_bytes == done.bytes_written > 0


def test_ranks_share_video_files_by_their_header_frame_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dvx.extract.runner as runner

    root = _ucf(tmp_path / "ucf")
    seen: list[list[tuple[str, float]]] = []
    order = runner.work_order
    monkeypatch.setattr(runner, "work_order", lambda items, *a: seen.append(list(items)) or order(items, *a))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")  # rank 1 never starts: rank 0 does its share, then the rest
    report = run_extract(cfg(root, tmp_path / "s", dataset="ucf101", timesteps=(0,), blocks=("mid",)))
    assert sorted(report.computed) == ["v_Fencing_g01_c01", "v_JumpRope_g01_c01"]
    assert sorted(seen[0]) == [("v_Fencing_g01_c01", 5.0), ("v_JumpRope_g01_c01", 7.0)]


def test_results_do_not_depend_on_the_batch_size(world: Path, tmp_path: Path) -> None:
    run_extract(cfg(world, tmp_path / "a", batch_size=1, blocks=("up.2",)))
    run_extract(cfg(world, tmp_path / "b", batch_size=4, blocks=("up.2",)))
    a, b = all_features(tmp_path / "a"), all_features(tmp_path / "b")
    for k in a:
        np.testing.assert_allclose(a[k].astype(np.float32), b[k].astype(np.float32), rtol=2e-3, atol=2e-3)


def test_recipe_options_make_new_groups(world: Path, tmp_path: Path) -> None:
    run_extract(cfg(world, tmp_path / "s", blocks=("mid",), timesteps=(0,)))
    run_extract(cfg(world, tmp_path / "s", blocks=("mid",), timesteps=(0,), ensemble=2))
    groups = FeatureStore.open(str(tmp_path / "s"), mode="r").groups()
    assert sorted(g.recipe.ensemble for g in groups) == [1, 2]
    assert len({g.recipe.fp8 for g in groups}) == 2


def test_unreadable_videos_fail_clearly_or_are_skipped(tmp_path: Path) -> None:
    from tests.conftest import make_toy

    root = make_toy(tmp_path / "toy", {"a": 3, "b": 2, "c": 2})
    (root / "b.npy").write_bytes(b"not a numpy file")
    base = ExtractConfig(
        model="tiny-sd",
        dataset="toy",
        data_root=str(root),
        store=str(tmp_path / "s"),
        timesteps=(0,),
        blocks=("mid",),
        resolution=(64, 64),
        progress=False,
    )
    with pytest.raises(CorruptVideoError, match="--skip-bad"):
        run_extract(base)
    [g] = FeatureStore.open(str(tmp_path / "s"), mode="r").groups()
    assert g.index().videos() == ["a"]  # committed before the failure, kept
    report = run_extract(replace(base, skip_bad=True))
    assert report.failed.keys() == {"b"} and report.computed == ["c"]
    g = FeatureStore.open(str(tmp_path / "s"), mode="r").groups()[0]
    assert g.index().videos() == ["a", "c"] and "b" in g.failures()
    shutil.copy(root / "a.npy", root / "b.npy")  # repaired: the next run extracts it and forgets the failure
    run_extract(replace(base, skip_bad=True))
    g = FeatureStore.open(str(tmp_path / "s"), mode="r").groups()[0]
    assert g.index().videos() == ["a", "b", "c"] and g.failures() == {}


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"model": "tiny-svdd"}, UnknownNameError, "Did you mean 'tiny-svd'"),
        ({"dataset": "davsi"}, UnknownNameError, "Did you mean 'davis'"),
        ({"blocks": ("up.9",)}, UnknownNameError, "no block 'up.9'"),
        ({"resolution": (60, 64)}, ConfigError, "multiples of 8"),
        ({"data_root": "/nonexistent/dvx"}, DataError, "does not exist"),
        ({"videos": ("nope",)}, DataError, "nope"),
    ],
)
def test_bad_input_fails_before_writing(
    world: Path, tmp_path: Path, change: dict, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        run_extract(cfg(world, tmp_path / "s", **change))
    assert not (tmp_path / "s" / "synthetic").exists()
