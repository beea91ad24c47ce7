"""A small twin study end to end (2 seeds, 2 steps): worlds, both twins, extraction, probes, summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dvx.errors import ConfigError
from dvx.twin.study import PROPAGATION, TRACKING, StudyConfig, _ceiling_lines, run_study
from tests.conftest import run_cli


def tiny_study(out: Path, **kw: object) -> StudyConfig:
    base: dict[str, object] = dict(
        out=str(out), seeds=2, steps=2, save_every=1, frames=2, frames_per_batch=4, resolution=(32, 48),
        eval_resolution=(32, 48),
        train_videos=3, train_frames=4, eval_videos=14, eval_frames=4, timesteps=(50,),
        blocks=("up.1", "up.2"), heads=("synthetic-action",), head_epochs=1, vae_steps=2, threads=1,
    )  # fmt: skip
    return StudyConfig(**(base | kw))  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_small_study_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tiny_study(tmp_path / "study")
    report = run_study(cfg, log=lambda _: None)
    s = report.summary
    assert s["seeds"] == [0, 1]
    prop = s["tasks"][PROPAGATION]
    assert prop["metric"] == "JF_mean" and set(prop["roles"]) == {"video", "image", "untrained"}
    for role in ("video", "image", "untrained"):
        iv = prop["roles"][role]
        assert iv["n"] == 2 and iv["lo"] <= iv["mean"] <= iv["hi"]
        assert len(prop["values"][role]) == 2
    gap = prop["gap_video_minus_image"]
    diffs = [v - i for v, i in zip(prop["values"]["video"], prop["values"]["image"], strict=True)]
    assert gap["mean"] == pytest.approx(sum(diffs) / 2)
    assert set(prop["baselines"]) == {"copy_first_mask", "pixel_colour", "oracle_ids"}
    assert "synthetic-action" in s["tasks"]
    track = s["tasks"][TRACKING]  # training-free point tracking at the fixed reading point
    assert track["metric"] == "AJ" and track["block"] == "up.2" and track["higher_is_better"]
    assert all(0.0 <= v <= 1.0 for vs in track["values"].values() for v in vs)
    assert "gap_video_minus_image" in track
    # the learning curve: steps 0, 1, 2 for both twins
    assert [p["step"] for p in s["curve"]["video"]] == [0, 1, 2]
    assert [p["step"] for p in s["curve"]["image"]] == [0, 1, 2]
    # the untrained network is the video twin's step 0, and it is the video curve's first point
    assert s["curve"]["video"][0]["mean"] == pytest.approx(prop["roles"]["untrained"]["mean"])
    saved = json.loads((tmp_path / "study" / "study.json").read_text())
    assert saved["summary"]["tasks"][PROPAGATION]["values"] == prop["values"]
    md = (tmp_path / "study" / "study.md").read_text()
    assert "| synthetic-propagation | JF_mean" in md and "video - image gap" in md
    copy, oracle = (prop["baselines"][k]["mean"] for k in ("copy_first_mask", "oracle_ids"))
    assert ("no features of this stride can beat copying" in md) == (copy >= oracle)
    # the records are ordinary result records: `dvx report` renders them
    argv = ["report", "--store", str(cfg.store), "--results", str(cfg.results), "--out", str(tmp_path / "r")]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    # a second run reuses everything (nothing retrained, re-extracted or re-probed) and says the same
    again = run_study(cfg, log=lambda _: None)
    assert again.summary == s


def test_study_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="--main-t 100 is not one of --timesteps"):
        tiny_study(Path("x"), main_t=100)
    with pytest.raises(ConfigError, match=r"block 'up\.3' is not one of --blocks"):
        tiny_study(Path("x"), dense_block="up.3")


def _summary_with(copy: float, oracle: float) -> dict[str, object]:
    iv = lambda m: {"mean": m, "lo": m, "hi": m, "n": 3}  # noqa: E731
    base = {"copy_first_mask": iv(copy), "pixel_colour": iv(0.4), "oracle_ids": iv(oracle)}
    return {"tasks": {PROPAGATION: {"baselines": base}}}


def test_the_study_says_when_copying_beats_even_oracle_features() -> None:
    """Where the ground-truth ids as features score below copying the first mask, no network can beat
    copying at that stride: the study says so instead of leaving a "not reached" unexplained."""
    (line,) = _ceiling_lines(_summary_with(copy=0.70, oracle=0.39))
    assert "0.700" in line and "0.390" in line and "no features of this stride can beat copying" in line
    assert _ceiling_lines(_summary_with(copy=0.30, oracle=0.86)) == []
