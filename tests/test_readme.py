"""The README's "A researcher's day" runs as written, on the synthetic world with the tiny twins.

The block is taken from README.md itself; the only changes are the substitutions below (real model -> its
tiny twin, real dataset folders -> the synthetic world's layouts, cluster sizes -> what one CPU can run), and
each must apply, so a README edit that the test no longer covers fails here instead of drifting silently.
Lines for a cluster launcher (``torchrun``, ``srun``) are the only ones not run.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from dvx.cli import main
from dvx.data.synthetic import SyntheticWorld
from dvx.data.tapvid import export_tapvid_davis
from dvx.results import ResultsDir
from tests.conftest import REPO

#: (README text, what runs here). Every pair must match the block at least once.
SUBSTITUTIONS: tuple[tuple[str, str], ...] = (
    ("/shared/dvx-cache", "{store}"),
    ("--data-root /data/DAVIS", "--data-root {world}/DAVIS"),
    # the world has no HMDB51 layout; its UCF101 layout stands in (as under `dvx run seed002 --tiny`)
    ("--dataset hmdb51 --data-root /data/hmdb51", "--dataset ucf101 --data-root {world}"),
    ("--data-root /data/hmdb51", "--dataset ucf101 --data-root {world}"),
    ("--model svd ", "--model tiny-svd "),
    ("--model sd-2.1 ", "--model tiny-sd "),
    ("--model wan-2.1 ", "--model tiny-wan "),
    ("layer.17.attn1", "layer.2.attn1"),  # tiny-wan has 4 layers of 2 heads
    ("--heads 0,3", "--heads 0,1"),
    ("attn1.q.h3", "attn1.q.h1"),
    ("--data-root /data/tapvid", "--data-root {world}/tapvid"),  # the world as tapvid_davis.pkl
    ("--epochs 20", "--epochs 1"),
    ("--devices 8", "--devices 2"),
    ("--preset dift ", "--preset dift --videos synth_000000 "),  # DIFT's 480-px inputs, 8 draws: one video
    ("--out preds/", "--out {tmp}/preds/"),
    ("--out report/", "--out {tmp}/report/"),
    ("--pred preds/", "--pred {tmp}/preds/"),
    # the plan's dry run: every dataset key of the real run stands for the synthetic world under --tiny
    (
        "--data-root davis=/data/DAVIS --data-root jhmdb=/data/JHMDB ...",
        "--tiny --data-root synthetic={world}",
    ),
)
SKIPPED = ("torchrun ", "srun ")


def researchers_day() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"## A researcher's day\n\n```\n(.*?)```", text, flags=re.S)
    assert match, "README.md has no 'A researcher's day' code block"
    return match.group(1)


def commands(block: str, **paths: str) -> list[list[str]]:
    for old, new in SUBSTITUTIONS:
        assert old in block, f"README's researcher's day no longer contains {old!r}: update SUBSTITUTIONS"
        block = block.replace(old, new.format(**paths))
    block = block.replace("\\\n", " ")
    out = []
    for line in block.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith(SKIPPED):
            continue
        argv = shlex.split(line, comments=True)
        assert argv[0] == "dvx", line
        out.append(argv[1:])
    return out


@pytest.mark.slow
def test_readme_researchers_day_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DVX_RESULTS_DIR", str(tmp_path / "results"))
    world, store = tmp_path / "world", tmp_path / "cache"
    main(["synth", "--out", str(world), "--videos", "14", "--frames", "3", "--size", "64x64", "--quiet"])
    export_tapvid_davis(SyntheticWorld(world), world / "tapvid")
    argvs = commands(researchers_day(), store=str(store), world=str(world), tmp=str(tmp_path))
    assert [a[0] for a in argvs].count("extract") >= 4 and "report" in [a[0] for a in argvs]
    outputs, logs = [], []
    for argv in argvs:
        main(argv)
        captured = capsys.readouterr()
        outputs.append(captured.out)
        logs.append(captured.err)
    text = "\n".join(outputs + logs)
    val = (world / "DAVIS" / "ImageSets" / "2017" / "val.txt").read_text().split()
    # the second identical extract computes nothing, as the README's "-> 30 cached, 0 to compute" says
    assert re.search(rf"davis/tiny-svd@[0-9a-f]{{8}}: {len(val)} cached, 0 to compute", text)
    # --json prints JSON Lines; the probe's predictions and resolved config are where the README says
    json_run = argvs.index(next(a for a in argvs if "--json" in a))
    records = [json.loads(line) for line in outputs[json_run].splitlines()]
    assert {r["block"] for r in records} == {"up.1", "up.2"} and all(r["task"] == "davis17" for r in records)
    [run] = (tmp_path / "preds" / "davis17" / "davis").glob("tiny-svd@*")
    assert {p.name for p in (run / "T50" / "up.2").iterdir()} >= set(val) | {"dvx-config.json"}
    assert "--slots" in text  # movi-e's --help lists its own options
    assert (tmp_path / "report").is_dir() and any((tmp_path / "report").rglob("*.md"))
    tracking = [r for r in ResultsDir(tmp_path / "results").records() if r.task == "tapvid-davis"]
    assert {(r.T, r.block) for r in tracking} == {
        (t, f"layer.2.attn1.q.h{h}") for t in (50, 200) for h in (0, 1)
    } and all(r.main_metric == "AJ" for r in tracking)
