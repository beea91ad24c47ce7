"""``dvx run``: the shipped seed-002 plan end to end with the tiny twins on the synthetic world, its dry run
(commands that parse and build the very configs the plan runs), and its checks on data roots."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import replace
from pathlib import Path

import pytest

from dvx.cli import cli, main
from dvx.config import ProbeConfig
from dvx.data.synthetic import SynthConfig, write_world
from dvx.errors import ConfigError
from dvx.plan.plan import load_plan
from dvx.plan.runner import RunConfig, expand, extraction_config, probe_config, run_plan
from tests.conftest import REPO

TABLE2 = ["ucf101", "hmdb51", "movi-c", "movi-e", "cityscapes-seg", "cityscapes-depth", "davis17", "jhmdb"]
TINY = [
    "tiny-dinov2",
    "tiny-videomae",
    "tiny-vjepa2",
    "tiny-sd",
    "tiny-sd3",
    "tiny-modelscope",
    "tiny-svd",
    "tiny-wan",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """14 videos (2 per motion class: every action split has a test video), 6 frames of 64x64."""
    root = tmp_path_factory.mktemp("plan") / "world"
    write_world(SynthConfig(out=root, videos=14, frames=6, height=64, width=64, seed=4))
    return root


def run_cli(world: Path, tmp: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    main([
        "run", "seed002", "--tiny", "--store", str(tmp / "store"), "--data-root", f"synthetic={world}",
        "--results", str(tmp / "results"), "--report", str(tmp / "report"), "--device", "cpu",
        "--no-progress", "--json", *extra,
    ])  # fmt: skip
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_the_seed002_plan_runs_end_to_end_with_tiny_twins_and_reports_tables_2_and_3(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = run_cli(world, tmp_path, capsys)
    assert summary["extractions"] == 53 and summary["probes"] == 60 and summary["computed"] > 0
    md = Path(summary["report"]).read_text()
    # Table 2: a row per model, the seed's task columns in its order
    table2 = md.split("## Models x tasks")[1].split("## T x block")[0]
    header = next(line for line in table2.splitlines() if line.startswith("| model"))
    tasks = list(dict.fromkeys(cell.split()[0] for cell in header.strip("| ").split(" | ")[1:]))
    assert tasks == TABLE2
    rows = [line.split(" | ")[0].strip("| ") for line in table2.splitlines() if line.startswith("| tiny-")]
    assert {r.split("@")[0] for r in rows} == set(TINY)
    wan = next(line for line in table2.splitlines() if line.startswith("| tiny-wan"))
    assert wan.count(" - ") == 12  # Open-Sora's stand-in: action recognition only (4 cells of 16 filled)
    # Table 3: SVD's T x block grids on HMDB51 and DAVIS-2017
    for task in ("hmdb51", "davis17"):
        section = re.search(rf"### tiny-svd\S* \(\w+\) - {task}\n(.*?)(?=\n### |\Z)", md, re.S)
        assert section is not None, task
        grid = section.group(1)
        assert "| T \\ block | up.1 | up.2 |" in grid
        ts = [line.split(" | ")[0].strip("| ") for line in grid.splitlines() if re.match(r"\| \d", line)]
        assert ts == ["0", "50", "100", "200"]
    # a second run finds everything cached: no video computed, no results record added
    records = sorted((tmp_path / "results").rglob("*.json"))
    again = run_cli(world, tmp_path, capsys)
    assert again["computed"] == 0 and sorted((tmp_path / "results").rglob("*.json")) == records


def _built(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> object:
    """The config a `dvx ...` command line builds (its runner is replaced by one that hands it back)."""
    import dvx.extract.runner
    import dvx.probe.runner

    class Built(Exception):
        pass

    def capture(cfg: object, *_a: object, **_k: object) -> None:
        raise Built(cfg)

    monkeypatch.setattr(dvx.extract.runner, "run_extract", capture)
    monkeypatch.setattr(dvx.probe.runner, "run_probe", capture)
    with pytest.raises(Built) as got:
        cli.main(args=argv[1:], standalone_mode=False)
    return got.value.args[0]


def test_the_dry_run_prints_commands_that_build_the_configs_it_runs(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = run_cli(world, tmp_path, capsys, "--dry-run", "--only", "davis17,cityscapes-depth")
    assert summary["planned_bytes"] > 0 and summary["planned_forwards"] > 0
    assert not (tmp_path / "store").exists() and not (tmp_path / "report").exists()  # nothing written
    commands = summary["commands"]
    assert len(commands) == 2 * 7 + 1 + 2 * 7 + 1  # extractions (davis, table 3, cityscapes), probes
    plan = load_plan("seed002")
    cfg = RunConfig(
        "seed002", str(tmp_path / "store"), {"synthetic": str(world)}, results=str(tmp_path / "results"),
        tiny=True, only=("davis17", "cityscapes-depth"), device="cpu", progress=False,
    )  # fmt: skip
    extracts, probes = expand(plan, cfg)
    expected = [extraction_config(j, plan, cfg, str(world)) for j in extracts]
    expected += [probe_config(j, plan, cfg, str(world)) for j in probes]
    for command, want in zip(commands, expected, strict=True):
        got = _built(shlex.split(command), monkeypatch)
        if isinstance(want, ProbeConfig):  # typed options: the same values however they were given
            want = replace(want, progress=True)
        else:  # the command spells the resolved values out, without the preset
            want = replace(want, preset=None, progress=True)
        assert got == want, command


def test_data_roots_must_be_given_and_one_reader_reads_one_folder(world: Path, tmp_path: Path) -> None:
    base = RunConfig("seed002", str(tmp_path / "s"), {}, dry_run=True)
    with pytest.raises(ConfigError, match=r"needs --data-root cityscapes=PATH .*--only TASKS"):
        run_plan(base, log=lambda _: None)
    roots = {k: str(world) for k in ("davis", "jhmdb", "ucf101", "hmdb51", "cityscapes", "movi-c")}
    roots["movi-e"] = str(tmp_path)
    # a plan reading two folders with one reader (as MOVi-C/E both read as `movi` would) is refused: the
    # store keys features by reader, so the second folder's videos would be found "cached"
    shipped = (REPO / "dvx" / "plan" / "seed002.toml").read_text()
    one_reader = re.sub(r'reader = "movi-[ce]"', 'reader = "movi"', shipped)
    assert one_reader.count('reader = "movi"') == 2
    (tmp_path / "one-reader.toml").write_text(one_reader)
    with pytest.raises(ConfigError, match=r"movi-c=.*movi-e=.*one reader 'movi'.*separate stores"):
        run_plan(replace(base, plan=str(tmp_path / "one-reader.toml"), data_roots=roots), log=lambda _: None)
    with pytest.raises(ConfigError, match=r"--only: plan seed002 has no task\(s\) davis"):
        run_plan(replace(base, data_roots=roots, only=("davis",)), log=lambda _: None)


def test_run_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, match in (
        (["run", "seed002", "--store", "s", "--data-root", "davis"], "must look like NAME=PATH"),
        (["run", "nope", "--store", "s"], "neither a shipped plan"),
    ):
        with pytest.raises(SystemExit) as ended:
            main(argv)
        err = capsys.readouterr().err.strip()
        assert ended.value.code == 2 and err.startswith("dvx: error:") and match in err and "\n" not in err
