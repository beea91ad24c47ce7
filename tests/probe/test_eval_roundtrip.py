"""`dvx eval <task>` reads exactly what `dvx probe --task <task> --out OUT` wrote, for every registered task
that writes predictions (a new one is covered the moment it is registered): the same metrics from the
files alone, with OUT itself as --pred; outputs of two recipes never share a folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dvx.cli import main
from dvx.data.synthetic import SynthConfig, write_world
from dvx.probe import TASKS
from dvx.probe.task import PredictionTask, task_dataset
from dvx.results import read_config
from tests.probe.test_propagation_tasks import write_pixel_store
from tests.probe.test_tracking_task import tapvid_root

PREDICTION_TASKS = [e.name for e in TASKS if issubclass(e.load(), PredictionTask)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("roundtrip") / "world"
    write_world(SynthConfig(out=out, videos=12, frames=5, height=64, width=64, seed=3, brick_wall_every=0))
    return out


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_every_prediction_task_is_covered() -> None:
    assert {"davis17", "jhmdb", "synthetic-propagation", "synthetic-tracking", "tapvid-davis"} <= set(
        PREDICTION_TASKS
    )


@pytest.mark.parametrize("task", PREDICTION_TASKS)
def test_eval_scores_what_probe_wrote_exactly(
    task: str, world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, out = tmp_path / "s", tmp_path / "out"
    if task_dataset(task).startswith("tapvid-"):  # the world's tracks in the TAP-Vid pickle form
        world = tapvid_root(task_dataset(task), world, tmp_path / "gt")
    write_pixel_store(task_dataset(task), world, store, resolution=(64, 64), strides=(8, 16))
    common = ["--store", str(store), "--model", "pixels", "--data-root", str(world), "--device", "cpu"]
    main(["probe", "--task", task, *common, "--out", str(out), "--results", str(tmp_path / "r"), "--json"])
    probed = json_lines(capsys)
    assert sorted((r["T"], r["block"]) for r in probed) == [(50, "pix.16"), (50, "pix.8")]
    main(["eval", task, "--pred", str(out), "--data-root", str(world), "--json"])  # OUT, as probe took it
    evaluated = {(r["T"], r["block"]): r for r in json_lines(capsys)}
    assert set(evaluated) == {(r["T"], r["block"]) for r in probed}
    for rec in probed:
        ev = evaluated[(rec["T"], rec["block"])]
        assert ev["metrics"] == rec["metrics"] and ev["videos"] == rec["videos"]
        assert (ev["model"], ev["recipe"], ev["dataset"]) == (rec["model"], rec["recipe"], rec["dataset"])
        assert (ev["main_metric"], ev["higher_is_better"]) == (rec["main_metric"], rec["higher_is_better"])
        folder = Path(ev["pred"])
        assert folder.relative_to(out).parts == (
            task,
            rec["dataset"],
            f"pixels@{rec['recipe'][:8]}",
            f"T{rec['T']}",
            rec["block"],
        )
        saved = read_config(folder)
        assert saved is not None and saved["config"] == rec["config"] and saved["probe"] == rec["probe"]


def test_two_recipes_write_apart_and_eval_scores_each(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, out = tmp_path / "s", tmp_path / "out"
    for size in ((64, 64), (32, 32)):  # another resolution: another recipe of the same model
        write_pixel_store("synthetic", world, store, resolution=size)
    common = ["--store", str(store), "--model", "pixels", "--data-root", str(world), "--out", str(out)]
    probed = []
    for fp in sorted(p.name.partition("@")[2] for p in (store / "synthetic").iterdir() if "@" in p.name):
        main(
            [
                "probe",
                "--task",
                "synthetic-propagation",
                *common,
                "--recipe",
                fp,
                "--results",
                str(tmp_path),
                "--json",
            ]
        )
        probed += json_lines(capsys)
    folders = sorted(out.glob("synthetic-propagation/synthetic/pixels@*/T50/pix.8"))
    assert len(folders) == 2  # one per recipe: the second probe did not overwrite the first
    main(["eval", "synthetic-propagation", "--pred", str(out), "--data-root", str(world), "--json"])
    evaluated = {r["recipe"]: r["metrics"] for r in json_lines(capsys)}
    assert evaluated == {r["recipe"]: r["metrics"] for r in probed}
