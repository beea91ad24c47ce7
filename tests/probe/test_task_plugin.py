"""The rule for adding a probe task: its own file (here, this module) and one registry line are all it
takes. A tiny task registered from a test gets its CLI options (`dvx probe --task X --help`), a one-line
error for a flag it does not take, results records, JSON Lines, `dvx eval X` on what it wrote, and a
report that ranks by its own main metric and direction, with nothing else in dvx changed.

Also here: which videos a probe reads (``--videos``, ``--exclude``, videos whose extraction failed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from dvx.cli.probe import probe as probe_command
from dvx.cli.probe import task_params
from dvx.data.base import VideoDataset, VideoRef
from dvx.data.synthetic import SynthConfig, write_world
from dvx.errors import DataError
from dvx.options import Options, option
from dvx.probe import TASKS
from dvx.probe.prediction_io import prediction_files
from dvx.probe.task import PredictionTask, ProbeContext, Scores
from dvx.results import ResultRecord
from dvx.store.root import FeatureStore
from dvx.store.writer import record_failure
from tests.conftest import run_cli
from tests.probe.test_propagation_tasks import write_pixel_store

NAME = "test-norm"


@dataclass(frozen=True)
class NormOptions(Options):
    scale: float = option(1.0, "Multiply the features by this before taking their norm.", above=0)


class NormTask(PredictionTask):
    """Mean feature norm per video (a stand-in protocol); writes ``<video>.json`` with that number."""

    main_metric: ClassVar[str] = "norm"
    higher_is_better: ClassVar[bool] = False
    options_class: ClassVar[type[Options]] = NormOptions
    score_options: ClassVar[type[Options]] = NormOptions
    options: NormOptions

    def settings(self) -> dict[str, Any]:
        return {"scale": self.options.scale}

    def videos(self, ctx: ProbeContext) -> list[VideoRef]:
        return ctx.dataset.videos()

    def run(self, ctx: ProbeContext, pairs: list[tuple[int, str]]) -> list[ResultRecord]:
        out = []
        for t, block in pairs:
            norms = {}
            for ref in ctx.refs:
                x = ctx.group.tensor(ref.id, t, block).float() * self.options.scale
                norms[ref.id] = float(x.norm(dim=1).mean())
                folder = ctx.prediction_dir(self.name, t, block)
                if folder is not None:
                    (folder / f"{ref.id}.json").write_text(json.dumps({"norm": norms[ref.id]}))
            got = self.scores(norms)
            out.append(self.record(ctx, t, block, got.metrics, got.details, videos=got.videos))
        return out

    @staticmethod
    def scores(norms: dict[str, float]) -> Scores:
        return Scores({"norm": float(np.mean(list(norms.values())))}, {"per_video": norms}, len(norms))

    @classmethod
    def score_predictions(cls, folder: Path, dataset: VideoDataset, options: Options) -> Scores:
        known = {r.id for r in dataset.videos()}
        norms = {p.stem: json.loads(p.read_text())["norm"] for p in prediction_files(folder, ".json")}
        if not set(norms) <= known:
            raise DataError(f"{folder}: predictions for videos the dataset does not have")
        return cls.scores(norms)


@pytest.fixture(autouse=True)
def _registered() -> Iterator[None]:
    TASKS.register(
        NAME, NormTask, "test only: mean feature norm", dataset="synthetic", defaults={"scale": 2.0}
    )
    yield
    TASKS.unregister(NAME)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("plugin")
    write_world(
        SynthConfig(out=base / "w", videos=4, frames=4, height=32, width=32, seed=2, brick_wall_every=0)
    )
    write_pixel_store("synthetic", base / "w", base / "s", resolution=(32, 32))
    return base / "w", base / "s"


def probe_args(world: tuple[Path, Path], tmp: Path, *extra: str) -> list[str]:
    return [
        "probe", "--task", NAME, "--store", str(world[1]), "--model", "pixels", "--data-root", str(world[0]),
        "--results", str(tmp / "results"), "--device", "cpu", *extra,
    ]  # fmt: skip


def test_a_task_from_its_own_file_and_registry_line_works_end_to_end(
    world: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["probe", "--task", NAME, "--help"], capsys)
    assert code == 0 and f"Options of task {NAME}" in out and "--scale FLOAT" in out
    assert "[default: 2.0]" in out  # the registry line's default, not the class's 1.0
    code, _, err = run_cli([*probe_args(world, tmp_path), "--topk", "3"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"task {NAME!r} does not take option --topk (--topk is an option of davis17" in err
    code, out, _ = run_cli([*probe_args(world, tmp_path), "--out", str(tmp_path / "out"), "--json"], capsys)
    [rec] = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and rec["task"] == NAME and rec["probe"]["scale"] == 2.0
    assert (rec["main_metric"], rec["higher_is_better"]) == ("norm", False)
    code, out, _ = run_cli(
        ["eval", NAME, "--pred", str(tmp_path / "out"), "--data-root", str(world[0]), "--json"], capsys
    )
    assert code == 0 and json.loads(out)["metrics"] == rec["metrics"]
    code, out, _ = run_cli(
        probe_args(world, tmp_path, "--scale", "4"), capsys
    )  # another setting: its own record
    assert code == 0 and "norm: lower is better" in out
    code, out, _ = run_cli(
        [
            "report",
            "--store",
            str(world[1]),
            "--results",
            str(tmp_path / "results"),
            "--out",
            str(tmp_path / "rep"),
        ],
        capsys,
    )
    assert code == 0 and f"{NAME} norm ↓" in out
    # scale 4 doubles every norm; lower is better, so the scale-2 record is the model's best
    assert f"| pixels | {rec['metrics']['norm']:.4f} |" in out


def test_videos_exclude_and_failed_extractions(
    world: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        probe_args(world, tmp_path, "--videos", "synth_000001,synth_000002", "--json"), capsys
    )
    assert code == 0 and json.loads(out)["videos"] == 2
    code, out, _ = run_cli(probe_args(world, tmp_path, "--exclude", "synth_000001", "--json"), capsys)
    rec = json.loads(out)
    assert code == 0 and rec["videos"] == 3 and rec["left_out"] == {"excluded": ["synth_000001"]}
    code, _, err = run_cli(probe_args(world, tmp_path, "--exclude", "synth_00001"), capsys)
    assert (
        code == 2 and "--exclude: 'synth_00001' is not among the 4 video(s)" in err and "Did you mean" in err
    )
    # a store where one video failed extraction (--skip-bad) and was never written
    store = tmp_path / "s"
    write_pixel_store("synthetic", world[0], store, videos=["synth_000000", "synth_000001", "synth_000002"],
                      resolution=(32, 32))  # fmt: skip
    group = FeatureStore.open(str(store), mode="a").find("synthetic", "pixels", None)
    record_failure(group, "synth_000003", "synth_000003.mp4: moov atom not found")
    args = [*probe_args(world, tmp_path)[:4], str(store), *probe_args(world, tmp_path)[5:]]
    code, out, err = run_cli([*args, "--json"], capsys)
    rec = json.loads(out)
    assert code == 0 and rec["videos"] == 3 and rec["left_out"] == {"failed": ["synth_000003"]}
    assert "left out 1 video(s) whose extraction failed (--skip-bad): synth_000003" in err
    code, _, err = run_cli([*args, "--include-failed"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert (
        "'synth_000003' has no features: its extraction failed (synth_000003.mp4: moov atom not found)" in err
    )
    assert "dvx extract" not in err  # never a command that fails again on the same file


def test_each_registered_task_lists_its_own_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, movi, _ = run_cli(["probe", "--task", "movi-e", "--help"], capsys)
    assert code == 0 and "--slots INTEGER" in movi and "[default: 24]" in movi and "--topk" not in movi
    code, davis, _ = run_cli(["probe", "--task", "davis17", "--help"], capsys)
    assert code == 0 and "--topk INTEGER" in davis and "--slots" not in davis and "--epochs" not in davis
    code, plain, _ = run_cli(["probe", "--help"], capsys)
    assert (
        code == 0 and "dvx probe --task TASK --help" in plain and "movi-e" in plain and "--slots" not in plain
    )
    for entry in TASKS:  # a task option never shadows a common one
        names = {p.name for p in task_params(entry.name)}
        assert not names & {p.name for p in probe_command.params}, entry.name
