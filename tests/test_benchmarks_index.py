"""docs/benchmarks.md names, for every section, the command that produced it; `make bench`
(benchmarks/run_all.py) runs exactly those commands, so no number there lacks a command in the repo."""

from __future__ import annotations

import os
import re

from benchmarks._common import command_line
from benchmarks.run_all import ALSO_WRITES, RUNS, main
from tests.conftest import REPO


def test_every_documented_command_is_run_by_make_bench(capsys) -> None:
    assert main(["--list", "--out", "docs/benchmarks.md"]) == 0
    listed = {line.strip() for line in capsys.readouterr().out.splitlines() if line.strip()}
    doc = (REPO / "docs" / "benchmarks.md").read_text()
    documented = set(re.findall(r"`(python -m benchmarks\.[^`]*)`", doc))
    assert documented and listed == documented
    sections = set(re.findall(r"<!-- bench:([\w-]+) -->", doc))
    assert sections == {name for name, *_ in RUNS} | {s for more in ALSO_WRITES.values() for s in more}


def test_make_bench_names_out_relative_to_the_repo(capsys) -> None:
    """Plain `make bench` (no --out) runs the commands docs/benchmarks.md names, not an absolute --out."""
    assert main(["--list"]) == 0
    listed = {line.strip() for line in capsys.readouterr().out.splitlines() if line.strip()}
    documented = set(
        re.findall(r"`(python -m benchmarks\.[^`]*)`", (REPO / "docs" / "benchmarks.md").read_text())
    )
    assert listed == documented
    assert main(["--list", "--out", str(REPO / "docs" / "benchmarks.md")]) == 0
    assert {line.strip() for line in capsys.readouterr().out.splitlines() if line.strip()} == documented


def test_a_section_header_is_the_command_that_ran() -> None:
    out = str(REPO / "docs" / "benchmarks.md")
    assert command_line("bench_blocks", ["--size", "128", "--out", out]) == (
        "python -m benchmarks.bench_blocks --size 128 --out docs/benchmarks.md"
    )
    assert (
        command_line("bench_s3", [f"--out={out}"]) == "python -m benchmarks.bench_s3 --out=docs/benchmarks.md"
    )
    for script in sorted((REPO / "benchmarks").glob("bench_*.py")):
        source = script.read_text()
        assert "command_line(" in source and "`python -m benchmarks." not in source, script.name


def test_machine_facts_are_read_at_run_time_not_written_in() -> None:
    """Cores, GPUs and run-to-run spreads come from machine()/os/torch or a measurement, never a literal."""
    for script in sorted((REPO / "benchmarks").glob("bench_*.py")):
        source = script.read_text()
        for phrase in ("2-core", "2 cores", "no GPU was available", "up to 1.5x", "per-block / all"):
            assert phrase not in source, (script.name, phrase)
    from benchmarks.bench_store import writer_note

    assert str(os.cpu_count()) in writer_note() or "GPU" in writer_note()
