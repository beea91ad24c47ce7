"""Run every benchmark and rewrite its section of docs/benchmarks.md (``make bench``; about 30 min here).

Each entry is the exact command named at the top of its section, so a section can also be refreshed alone.
The propagation benchmarks need the real DAVIS samples in ../shared/data and are skipped, with a note, where
they are absent; the others fall back to the synthetic world.

    python -m benchmarks.run_all [--out docs/benchmarks.md] [--only store,s3] [--list]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import REPO, SHARED_DATA, repo_relative

# (section, its command as docs/benchmarks.md names it, needs ../shared/data); OUT is --out
RUNS: list[tuple[str, str, bool]] = [
    ("blocks", "bench_blocks --out OUT", False),
    ("store", "bench_store --out OUT", False),
    ("reads", "bench_reads --out OUT", False),
    ("extract-overlap", "bench_extract_overlap --out OUT", False),
    ("scale", "bench_scale --videos 1000,5000,10000 --out OUT", False),
    ("propagation", "bench_propagation --out OUT --section propagation", True),
    (
        "propagation-480p",
        "bench_propagation --frames 9 --stride 8 --sequences blackswan --out OUT --section propagation-480p",
        True,
    ),
    (
        "propagation-dift-full",
        "bench_propagation --frames 0 --stride 8 --preset dift --skip-reference --out OUT "
        "--section propagation-dift-full",
        True,
    ),
    ("tracking", "bench_tracking --out OUT", False),
    ("probe-cache", "bench_probe_cache --out OUT", False),
    ("probe-epoch", "bench_probe_epoch --threads 1 --out OUT", False),
    ("scaling", "bench_scaling --out OUT", False),
    ("s3", "bench_s3 --out OUT", False),
    ("twins", "bench_twins --fresh --out OUT", False),
]

ALSO_WRITES = {"scaling": ("cluster-projection",)}  # sections a run writes besides its own


def command(line: str, out: Path) -> list[str]:
    """The command for one RUNS entry; ``--out`` relative to the repository (its cwd) when inside it."""
    module, *args = line.split()
    return [
        sys.executable,
        "-m",
        f"benchmarks.{module}",
        *(repo_relative(out) if a == "OUT" else a for a in args),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    ap.add_argument("--only", default=None, help="comma-separated section names")
    ap.add_argument("--list", action="store_true", help="print the commands and exit")
    args = ap.parse_args(argv)
    known = [name for name, *_ in RUNS]
    only = args.only.split(",") if args.only else known
    unknown = sorted(set(only) - set(known))
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(known)}")
    failed = []
    for name, line, needs_data in RUNS:
        if name not in only:
            continue
        cmd = command(line, args.out)
        if args.list:
            print("python " + " ".join(cmd[1:]))
            continue
        if needs_data and not SHARED_DATA.is_dir():
            print(f"== {name}: skipped (needs the real samples at {SHARED_DATA})", flush=True)
            continue
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        rc = subprocess.call(cmd, cwd=REPO)
        print(f"== {name}: exit {rc} after {time.perf_counter() - start:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
