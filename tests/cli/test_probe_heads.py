"""`dvx probe` for trained heads and `dvx report` from the command line: JSON records keyed by metric
name, reuse on rerun, one-line errors with a non-zero exit, the report files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dvx.cli import main
from tests.probe.heads_fixtures import pixel_world

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return pixel_world(tmp_path_factory)


def args(world: tuple[Path, str], results: Path, task: str, *extra: str) -> list[str]:
    return [
        "probe", "--task", task, "--from-cache", "--store", world[1], "--model", "pixels",
        "--data-root", str(world[0]), "--results", str(results), "--epochs", "1", "--num-workers", "0",
        "--no-progress", *extra,
    ]  # fmt: skip


def test_probe_json_report_and_rerun(
    world: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res = tmp_path / "results"
    main(args(world, res, "synthetic-action", "--timesteps", "0,50", "--blocks", "layer.8", "--json"))
    lines = capsys.readouterr().out.splitlines()
    recs = [json.loads(line) for line in lines]  # JSON Lines: one record per line, the saved structure
    assert [(r["T"], r["block"]) for r in recs] == [(0, "layer.8"), (50, "layer.8")]
    assert set(recs[0]["metrics"]) == {"top1", "top5"} and recs[0]["probe"]["epochs"] == 1
    assert (recs[0]["main_metric"], recs[0]["higher_is_better"]) == ("top1", True)
    assert recs[0]["config"]["options"]["epochs"] == 1 and recs[0]["config"]["options"]["batch_size"] == 64
    saved = sorted((res / "synthetic-action").glob("*.json"))
    assert sorted(json.loads(p.read_text())["T"] for p in saved) == [0, 50]
    assert json.loads(saved[0].read_text()).keys() == recs[0].keys()
    main(args(world, res, "synthetic-depth", "--timesteps", "0", "--blocks", "layer.8", "--json"))
    [line] = capsys.readouterr().out.splitlines()  # one record: still one line, the same shape
    depth = json.loads(line)
    assert set(depth["metrics"]) == {"depth_mErr", "depth_RMSE"} and depth["dataset"] == "synthetic"
    assert (depth["main_metric"], depth["higher_is_better"]) == ("depth_mErr", False)
    main(args(world, res, "synthetic-action", "--timesteps", "0,50", "--blocks", "layer.8"))
    out = capsys.readouterr()
    assert "2 cached result(s), 0 to compute" in out.err and "top1" in out.out and "T=50" in out.out
    main(["report", "--store", world[1], "--results", str(res), "--out", str(tmp_path / "rep")])
    out = capsys.readouterr()
    assert out.out.startswith("| model | synthetic-action top1 | synthetic-action top5 | synthetic-depth")
    assert (tmp_path / "rep" / "heatmaps" / "pixels_synthetic-action.png").is_file()
    assert (tmp_path / "rep" / "report.md").is_file() and (tmp_path / "rep" / "table.csv").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--task", "synthetic-seg", "--blocks", "layer.64"), "needs spatial feature maps"),
        (("--task", "synthetic-seg", "--timesteps", "200"), "lacks T=200"),
        (
            ("--task", "synthetic-action", "--slots", "4"),
            "task 'synthetic-action' does not take option --slots",
        ),
        (
            ("--task", "synthetic-action", "--slots", "0"),
            "task 'synthetic-action' does not take option --slots",
        ),
        (("--task", "synthetic-action", "--epochs", "0"), "--epochs must be >= 1, got 0"),
        (("--task", "synthetic-action", "--lr", "nan"), "--lr must be > 0, got nan"),
        (("--task", "synthetic-action", "--videos", "nope"), "--videos: 'nope' is not among the 42 video(s)"),
        (
            (
                "--task",
                "synthetic-actio",
            ),
            "unknown task 'synthetic-actio'. Did you mean 'synthetic-action'",
        ),
        (("--task", "synthetic-discovery", "--slots", "0"), "--slots must be >= 1"),
        (("--task", "synthetic-action", "--devices", "two"), "--devices must be"),
        (("--task", "synthetic-action", "--device", "foo"), "--device 'foo'"),
        (("--task", "synthetic-action", "--device", "cuda:x"), "--device 'cuda:x'"),
        pytest.param(
            ("--task", "synthetic-seg", "--device", "cuda"),
            "CUDA is not available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    world: tuple[Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    message: str,
) -> None:
    base = args(world, tmp_path, "x")
    base = base[:1] + base[3:]  # drop "--task x"
    with pytest.raises(SystemExit) as code:
        main([*base, *extra])
    assert code.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dvx: error: ") and message in err[-1]
    assert not err[-1].startswith("Traceback")


def test_a_stray_file_in_the_results_directory_is_one_line(
    world: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res = tmp_path / "results"
    (res / "synthetic-action").mkdir(parents=True)
    (res / "synthetic-action" / "notes.json").write_text('{"hello": 1}')
    with pytest.raises(SystemExit) as code:
        main(["report", "--store", world[1], "--results", str(res)])
    assert code.value.code == 2
    assert "notes.json: not a dvx results record" in capsys.readouterr().err


def test_report_without_records_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as code:
        main(["report", "--store", str(tmp_path), "--results", str(tmp_path / "none")])
    assert code.value.code == 2 and "no probe results for store" in capsys.readouterr().err
