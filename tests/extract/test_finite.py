"""Non-finite activations are never committed: an injected inf/NaN (or a float16 overflow) fails the video
with one line naming model, T, block and frame; --skip-bad records it and goes on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import dvx.extract.runner as runner
from dvx.cli import main
from dvx.data.synthetic import SynthConfig, write_world
from dvx.extract.finite import NonFiniteFeaturesError, check_finite
from dvx.store.root import FeatureStore

BAD = "synth_000001"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world") / "w"
    write_world(SynthConfig(out=root, videos=3, frames=6, height=48, width=64, seed=3))
    return root


@pytest.fixture
def poison(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Make the second forward unit (frames 4-5) of video ``BAD`` produce the value put in the list at
    up.2, T=50, its second frame (frame 00005), in the denoiser's output: before the cast to float16 and
    the finite check that run on the device."""
    value: list[float] = []
    real = runner._run_unit

    def poisoned(backbone, frames, unit, video_id, *args):  # type: ignore[no-untyped-def]
        if not (video_id == BAD and unit.index == 1 and value):
            return real(backbone, frames, unit, video_id, *args)
        forward = backbone.forward_blocks

        def bad_forward(x, model_t, blocks):  # type: ignore[no-untyped-def]
            out = forward(x, model_t, blocks)
            out["up.2"][-1, 0, 0, 0] = value[0]  # one batch of (frame, T) samples, T-major: (5, T=50) last
            return out

        backbone.forward_blocks = bad_forward
        try:
            return real(backbone, frames, unit, video_id, *args)
        finally:
            del backbone.forward_blocks

    monkeypatch.setattr(runner, "_run_unit", poisoned)
    yield value


def argv(world: Path, store: Path, *extra: str) -> list[str]:
    return [
        "extract", "--model", "tiny-sd", "--dataset", "synthetic", "--data-root", str(world),
        "--store", str(store), "--timesteps", "0,50", "--blocks", "mid,up.2", "--resolution", "64x64",
        "--batch-size", "4", "--threads", "1", "--no-progress", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "what"),
    [
        (float("inf"), r"non-finite activation \(inf/NaN\) in the float32 forward"),
        (float("nan"), r"non-finite activation \(inf/NaN\) in the float32 forward"),
        (1.0e5, r"activation 1e\+05 overflows float16 storage \(largest finite value 65504\)"),
    ],
)
def test_a_bad_activation_commits_nothing_of_the_video_and_fails_with_one_line(
    world: Path,
    tmp_path: Path,
    poison: list[float],
    capsys: pytest.CaptureFixture[str],
    value: float,
    what: str,
) -> None:
    poison.append(value)
    with pytest.raises(SystemExit) as ended:
        main(argv(world, tmp_path / "s"))
    assert ended.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(lines) and [x for x in lines if "error" in x] == lines[-1:]
    err = lines[-1]
    assert err.startswith(f"dvx: error: video '{BAD}': tiny-sd T=50 block up.2: ")
    assert re.search(what, err), err
    assert err.endswith("at frame '00005'; nothing of this video was committed")
    [group] = FeatureStore.open(str(tmp_path / "s"), mode="r").groups()
    assert group.index().videos() == ["synth_000000"]  # the one before stays, nothing of the bad one
    assert group.failures() == {}


def test_skip_bad_records_it_and_the_run_goes_on(
    world: Path, tmp_path: Path, poison: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    poison.append(float("nan"))
    main(argv(world, tmp_path / "s", "--skip-bad"))
    out = capsys.readouterr().out
    assert f"1 skipped as unreadable ({BAD})" in out
    [group] = FeatureStore.open(str(tmp_path / "s"), mode="r").groups()
    index = group.index()
    assert index.videos() == ["synth_000000", "synth_000002"]
    assert "up.2" in group.failures()[BAD].reason and "00005" in group.failures()[BAD].reason
    for video in index.videos():
        assert np.isfinite(group.read(video, 50, "up.2")).all()
    poison.clear()  # fixed: the next run extracts it and forgets the failure
    main(argv(world, tmp_path / "s"))
    group = FeatureStore.open(str(tmp_path / "s"), mode="r").groups()[0]
    assert group.index().videos() == ["synth_000000", BAD, "synth_000002"] and group.failures() == {}


def test_check_finite_names_the_first_bad_frame() -> None:
    computed = torch.zeros(3, 2, 1, 1)
    computed[2, 1] = float("-inf")
    computed[1, 0] = float("nan")
    stored = computed.numpy().astype(np.float16)
    with pytest.raises(NonFiniteFeaturesError, match=r"m T=7 block b: non-finite .* at frame 'f2'"):
        check_finite(
            computed, stored, model="m", dtype="bfloat16", t=7, block="b", video="v",
            time_map=[(0, 1), (2, 3), (4,)], names=["f0", "f1", "f2", "f3", "f4"],
        )  # fmt: skip
    check_finite(
        computed[:1],
        stored[:1],
        model="m",
        dtype="x",
        t=0,
        block="b",
        video="v",
        time_map=[(0,)],
        names=["a"],
    )
