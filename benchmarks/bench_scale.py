"""Store-wide commands against the number of videos: ls, gc --dry-run, verify, index open, a re-run's work.

Stores of N videos (``--videos``, default 1000,5000,10000) are built with dvx's own writer: 4 timesteps
x 9 blocks per video, small arrays (4 frames of 4 x 4 x 4 float16), each video committed with its record,
on local disk; then one writable index open, as the next extraction run makes at its start (it rebuilds
the compacted index, docs/store.md). For each N, timed one by one (one process, warm page cache):
``dvx cache ls`` (:func:`~dvx.store.inventory.summarize`), ``gc --dry-run`` (:func:`~dvx.store.gc.plan_gc`),
``verify --quick`` and ``verify``, opening the index (what every probe process and DataLoader worker
does), and the store work of a re-run that adds a timestep: for each video a claim, the video's own
commits read again (``video_index``), a release (measured on a sample of videos and scaled to N). A
straight line fitted through the points gives the seconds per 1,000 videos and an extrapolation to 100k
written beside the measurements.

    python -m benchmarks.bench_scale [--videos 1000,5000,10000] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks._common import command_line, load_average, machine, table, write_section
from dvx.store.claims import Claims
from dvx.store.gc import plan_gc
from dvx.store.inventory import summarize
from dvx.store.recipe import Recipe
from dvx.store.root import FeatureStore
from dvx.store.verify import verify
from dvx.store.writer import VideoWriter

TIMESTEPS = (0, 50, 100, 200)
BLOCKS = (*(f"down.{i}" for i in range(4)), "mid", *(f"up.{i}" for i in range(4)))
FRAMES, SHAPE = 4, (4, 4, 4)
RECIPE = Recipe(
    model="bench", family="x", weights="0" * 64, dtype="float16", resolution=(32, 32), clip_len=None
)
SAMPLE = 200  # videos whose re-run work is timed


def build(location: Path, n: int, have: int) -> None:
    """Add videos ``have..n-1`` to the store at ``location``."""
    group = FeatureStore.open(str(location), mode="a").create_group("bench", RECIPE)
    x = np.random.default_rng(0).standard_normal((FRAMES, *SHAPE)).astype(np.float16)
    for i in range(have, n):
        vw = VideoWriter(group, f"v{i:06d}", TIMESTEPS, BLOCKS, chunk_frames=FRAMES)
        for t in TIMESTEPS:
            for b in BLOCKS:
                vw.write(t, b, 0, x, FRAMES)
        vw.commit([f"{f:05d}" for f in range(FRAMES)], [[f] for f in range(FRAMES)], (32, 32))
    # the next extraction run's first step: a writable index open, which rebuilds the compacted index
    # (docs/store.md) once enough records are new
    FeatureStore.open(str(location), mode="a").groups()[0].index()


def rerun_store_work(location: Path, n: int) -> float:
    """Seconds of store work a re-run adding a T spends on all ``n`` videos (claim, the video's commits,
    release; timed on a sample)."""
    group = FeatureStore.open(str(location), mode="a").groups()[0]
    group.index()  # what a run reads once at its start (timed as "index open")
    claims = Claims(group, 300.0, 0, 1, "bench")
    sample = random.Random(0).sample(range(n), min(SAMPLE, n))
    t0 = time.perf_counter()
    for i in sample:
        video = f"v{i:06d}"
        taken = claims.take(
            video, lambda video=video: not group.video_index(video).has(video, (400,), BLOCKS)
        )
        if taken.claim is not None:
            claims.release(taken.claim)
    return (time.perf_counter() - t0) / len(sample) * n


def measurements(location: Path, n: int) -> dict[str, float]:
    def timed(fn: Callable[[], object]) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    store = FeatureStore.open(str(location), mode="r")
    return {
        "cache ls": timed(lambda: summarize(store)),
        "gc --dry-run": timed(lambda: plan_gc(store)),
        "verify --quick": timed(lambda: verify(store, quick=True)),
        "verify": timed(lambda: verify(store)),
        "index open": timed(lambda: FeatureStore.open(str(location), mode="r").groups()[0].index()),
        "re-run store work": rerun_store_work(location, n),
    }


def fit(ns: list[int], secs: list[float]) -> tuple[float, float]:
    """Least-squares line seconds = a + b * videos: (a, b)."""
    if len(ns) < 2:
        return 0.0, secs[0] / ns[0]
    b, a = np.polyfit(np.array(ns, float), np.array(secs, float), 1)
    return float(a), float(b)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", default="1000,5000,10000", help="comma-separated store sizes, ascending")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    sizes = sorted(int(v) for v in args.videos.split(","))
    results: dict[int, dict[str, float]] = {}
    entries: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix="dvx-bench-scale-") as tmp:
        location, have = Path(tmp) / "store", 0
        for n in sizes:
            t0 = time.perf_counter()
            build(location, n, have)
            have = n
            entries[n] = sum(len(dirs) + len(files) for _, dirs, files in os.walk(location))
            results[n] = measurements(location, n)
            print(n, f"built in {time.perf_counter() - t0:.0f}s", results[n], flush=True)
    names = list(results[sizes[0]])
    rows = []
    for name in names:
        secs = [results[n][name] for n in sizes]
        a, b = fit(sizes, secs)
        ratio = round(secs[-1] / secs[0], 2) if secs[0] > 0 else float("nan")
        rows.append(
            [name, *(round(s, 2) for s in secs), ratio, round(b * 1000, 3), round(a + b * 100_000, 1)]
        )
    load = load_average()
    slots = len(TIMESTEPS) * len(BLOCKS)
    body = "\n".join(
        [
            "## Store-wide commands against the number of videos",
            "",
            f"`{command_line('bench_scale', argv)}`",
            "",
            f"Machine: {machine()}; load average {load:.2f} at the end." if load is not None else machine(),
            "",
            f"Videos of {len(TIMESTEPS)} T x {len(BLOCKS)} blocks ({FRAMES} frames of {SHAPE} float16), "
            "written with dvx's writer to local disk; seconds, one process, warm. Filesystem entries "
            "(files + folders) in the store: "
            + ", ".join(
                f"{entries[n]:,} at {n:,} videos ({entries[n] / n / slots:.2f} per slot)" for n in sizes
            )
            + ". *s per 1k* is the slope of a straight line through the points, *100k (extrapolated)* "
            "that line at 100,000 videos (an extrapolation, not a measurement).",
            "",
            table(
                [
                    "command",
                    *(f"{n:,} videos (s)" for n in sizes),
                    f"{sizes[-1]:,} / {sizes[0]:,}",
                    "s per 1k videos",
                    "100k (extrapolated, s)",
                ],
                rows,
            ),
        ]
    )
    print(body)
    if args.out is not None:
        write_section(args.out, "scale", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
