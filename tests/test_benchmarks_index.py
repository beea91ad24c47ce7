"""docs/benchmarks.md names, for every section, the command that produced it; `make bench`
(benchmarks/run_all.py) runs exactly those commands, so no number there lacks a command in the repo."""

from __future__ import annotations

import re

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
