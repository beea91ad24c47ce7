"""Progress: plain lines with done/total and ETA when stderr is not a terminal, nothing with --no-progress
(the libraries' own bars included)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dvx.progress import Progress, fmt_seconds, progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_come_at_most_every_few_seconds_with_count_and_eta() -> None:
    out, clock = io.StringIO(), Clock()
    bar = Progress(10, "extract m", "video", stream=out, every=5.0, clock=clock)
    assert not bar._bar and bar.plain  # a StringIO is not a terminal
    for step in range(10):
        clock.now += 2.0  # one video every 2 s
        bar.set_postfix(f"v{step}")
        bar.update()
    bar.close()
    lines = out.getvalue().splitlines()
    # updates at 2, 4, 6 (line), 8, 10, 12 (line), 14, 16, 18 (line), 20, then the end line
    assert lines == [
        "extract m: 3/10 video (30%), 6s elapsed, ETA 14s [v2]",
        "extract m: 6/10 video (60%), 12s elapsed, ETA 8s [v5]",
        "extract m: 9/10 video (90%), 18s elapsed, ETA 2s [v8]",
        "extract m: 10/10 video (100%), 20s elapsed, done",
    ]


def test_a_quick_step_prints_only_its_end_line_and_closing_twice_prints_once() -> None:
    out = io.StringIO()
    bar = Progress(3, "verify g", "video", stream=out, every=5.0, clock=Clock())
    bar.update(3)
    bar.close()
    bar.close()
    assert out.getvalue().splitlines() == ["verify g: 3/3 video (100%), 0s elapsed, done"]


def test_disabled_progress_writes_nothing() -> None:
    out = io.StringIO()
    assert list(progress(range(4), "gc", "item", enabled=False, stream=out, every=0.0)) == [0, 1, 2, 3]
    assert out.getvalue() == ""


def test_progress_counts_each_item_after_its_body_and_knows_unknown_totals() -> None:
    out = io.StringIO()
    seen = list(progress(iter("abc"), "walk", "step", stream=out, every=0.0))
    assert seen == ["a", "b", "c"]
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("walk: 1 step, ") and lines[-1].endswith("done")
    assert "ETA" not in out.getvalue()  # no total, no ETA


def test_fmt_seconds() -> None:
    assert [fmt_seconds(s) for s in (0.4, 59, 61, 3725)] == ["0s", "59s", "1m01s", "1h02m"]


@pytest.mark.slow
def test_extract_piped_shows_progress_lines_and_no_progress_shows_none(tmp_path: Path) -> None:
    from tests.conftest import make_toy

    make_toy(tmp_path / "toy", {"a": 2, "b": 2})
    # the toy dataset is registered by tests/conftest.py: run dvx through a tiny launcher that imports it
    launcher = tmp_path / "launch.py"
    launcher.write_text("import tests.conftest  # noqa: F401\nfrom dvx.cli import main\nmain()\n")
    piped = _run(launcher, tmp_path, "s1")
    assert "extract tiny-sd: 2/2 video (100%)" in piped and piped.rstrip().count("done") >= 1
    assert "Loading weights" not in piped  # a log gets dvx's lines, not the libraries' bars
    assert "\r" not in piped
    silent = _run(launcher, tmp_path, "s2", "--no-progress")
    assert "extract tiny-sd:" not in silent
    assert "Loading weights" not in silent and "it/s]" not in silent and "\r" not in silent


def _run(launcher: Path, tmp_path: Path, store: str, *extra: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(launcher), "extract", "--model", "tiny-sd", "--dataset", "toy",
         "--data-root", str(tmp_path / "toy"), "--store", str(tmp_path / store), "--timesteps", "50",
         "--resolution", "64x64", "--threads", "1", *extra],
        capture_output=True, text=True, check=False, cwd=Path(__file__).parents[1],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stderr
