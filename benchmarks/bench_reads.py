"""Reads of stored features side by side: zarr's pipeline, the zarrs Rust pipeline, dvx's direct reader.

Two workloads, each against ``np.load`` of the very same arrays (``.npy`` files on the same disk), all
warm (every file read once before timing), variants interleaved within each repeat and the median kept:

- **scan**: every (video, T, block) array of a tiny-svd store (random-init weights: plumbing, not science)
  extracted from the DAVIS-2016 sample in ../shared/data (T=0,50, every block; the synthetic world where
  the sample is absent), as written now (one chunk per array: every array is under 64 MiB; flat keys);
- **clip**: one real-size SVD clip, 14 x 640 x 72 x 128 float16 (165 MB: three chunks of at most 64 MiB,
  as the writer cuts it), random values.

Variants: ``zarr.open_array(...)[:]`` with zarr-python's default codec pipeline and with the ``zarrs``
pipeline (``codec_pipeline.path = zarrs.ZarrsCodecPipeline``; both without dvx's checks), dvx's verified
read through zarr's pipeline (what ``RecipeGroup.read`` did before), and dvx's verified read as it is now
(chunk files read straight into the output, crc32c checked in place). Ratios are throughput / np.load's.

    python -m benchmarks.bench_reads [--repeat 9] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import zarr

from benchmarks._common import SHARED_DATA, command_line, load_average, machine, table, write_section
from dvx.config import ExtractConfig
from dvx.extract.runner import run_extract
from dvx.store import reader as reader_mod
from dvx.store.group import RecipeGroup
from dvx.store.recipe import Recipe
from dvx.store.root import FeatureStore
from dvx.store.writer import DIRECT_CHUNK_BYTES, VideoWriter

MB = 1e6
Slot = tuple[str, int, str]


def build_scan_store(tmp: Path) -> tuple[RecipeGroup, str]:
    davis = SHARED_DATA / "davis2016"
    if davis.exists():
        dataset, root, what = "davis", str(davis), "tiny-svd on the DAVIS-2016 sample"
    else:
        from dvx.data.synthetic import SynthConfig, write_world

        write_world(SynthConfig(out=tmp / "world", videos=4, frames=28))
        dataset, root, what = "synthetic", str(tmp / "world"), "tiny-svd on the synthetic world (no sample)"
    cfg = ExtractConfig(  # blocks None: every block
        model="tiny-svd",
        dataset=dataset,
        data_root=root,
        store=str(tmp / "scan"),
        timesteps=(0, 50),
        progress=False,
    )
    run_extract(cfg, log=lambda _: None)
    [group] = FeatureStore.open(str(tmp / "scan"), mode="r").groups()
    return group, what


def build_clip_store(tmp: Path, name: str = "clip", chunk_bytes: int = DIRECT_CHUNK_BYTES) -> RecipeGroup:
    recipe = Recipe(
        model="bench", family="x", weights="0" * 64, dtype="float16", resolution=(576, 1024), clip_len=14
    )
    group = FeatureStore.open(str(tmp / name), mode="a").create_group("bench", recipe)
    x = np.random.default_rng(0).standard_normal((14, 640, 72, 128)).astype(np.float16)
    vw = VideoWriter(group, "clip", (50,), ("up.2",), chunk_frames=14, direct_chunk_bytes=chunk_bytes)
    vw.write(50, "up.2", 0, x, 14)
    vw.commit([str(i) for i in range(14)], [[i] for i in range(14)], (576, 1024))
    return FeatureStore.open(str(tmp / name), mode="r").groups()[0]


def slots(group: RecipeGroup) -> list[Slot]:
    index = group.index()
    return [(v, t, b) for v in index.videos() for t, b, _ in index.slots(v)]


def variants(
    group: RecipeGroup, todo: list[Slot], npy: Path, one_chunk: RecipeGroup | None = None
) -> dict[str, Callable[[], int]]:
    """name -> a function reading every slot of ``todo`` once and returning the bytes read (``one_chunk``:
    the same arrays written as one chunk each, read by dvx's direct reader too)."""
    store = group.backend.store

    def np_load() -> int:
        return sum(np.load(npy / f"{i}.npy").nbytes for i in range(len(todo)))

    def zarr_default() -> int:
        keys = [group.array_key(*s) for s in todo]
        return sum(zarr.open_array(store=store, path=k, mode="r")[:].nbytes for k in keys)

    def zarrs() -> int:
        with zarr.config.set({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}):
            return zarr_default()

    def dvx_zarr_pipeline() -> int:
        with mock.patch.object(reader_mod, "_local_root", lambda backend: None):
            return sum(group.read(*s).nbytes for s in todo)

    def dvx_direct() -> int:
        return sum(group.read(*s).nbytes for s in todo)

    out = {
        "np.load (same arrays, .npy)": np_load,
        "zarr.open_array()[:] (zarr-python pipeline, unchecked)": zarr_default,
        "zarr.open_array()[:] (zarrs pipeline, unchecked)": zarrs,
        "dvx read, zarr pipeline (before)": dvx_zarr_pipeline,
        "dvx read, direct chunk files (now)": dvx_direct,
    }
    if one_chunk is not None:
        out["dvx read, direct, the clip as one 165 MB chunk"] = lambda: sum(
            one_chunk.read(*s).nbytes for s in todo
        )
    try:
        import zarrs as _  # noqa: F401
    except ImportError:
        del out["zarr.open_array()[:] (zarrs pipeline, unchecked)"]
    return out


def measure(
    group: RecipeGroup, tmp: Path, name: str, repeat: int, one_chunk: RecipeGroup | None = None
) -> list[list[object]]:
    todo = slots(group)
    npy = tmp / f"npy-{name}"
    npy.mkdir()
    for i, s in enumerate(todo):
        np.save(npy / f"{i}.npy", group.read(*s))
    fns = variants(group, todo, npy, one_chunk)
    times: dict[str, list[float]] = {k: [] for k in fns}
    nbytes = {k: fn() for k, fn in fns.items()}  # warm: every file read once
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    base = statistics.median(times["np.load (same arrays, .npy)"])
    rows = []
    for k in fns:
        t = statistics.median(times[k])
        rows.append([name, k, len(todo), round(t * 1e3, 1), round(nbytes[k] / t / MB), round(base / t, 2)])
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="dvx-bench-reads-") as tmp_:
        tmp = Path(tmp_)
        scan, what = build_scan_store(tmp)
        rows += measure(scan, tmp, "scan", args.repeat)
        one = build_clip_store(tmp, "clip-one-chunk", 2**40)
        rows += measure(build_clip_store(tmp), tmp, "clip", args.repeat, one)
    load = load_average()
    try:
        import zarrs as _  # noqa: F401

        zarrs_note = ""
    except ImportError:
        zarrs_note = " The zarrs row is absent: zarrs is not installed here (`pip install zarrs` adds it)."
    body = "\n".join(
        [
            "## Reads: zarr's pipeline, zarrs, dvx's direct chunk reader, against np.load",
            "",
            f"`{command_line('bench_reads', argv)}`",
            "",
            f"Machine: {machine()}; load average {load:.2f} at the end." if load is not None else machine(),
            "",
            f"*scan*: every array of a {what} store (T=0,50, every block); *clip*: one 14 x 640 x 72 x 128 "
            "float16 SVD clip (165 MB, three chunks of at most 64 MiB; the last row: as one chunk, "
            "as this round first wrote it). Warm, interleaved, median of "
            f"{args.repeat}; *x np.load* = np.load's time / the variant's (targets: scan >= 0.7, clip >= 0.8 "
            f"for dvx's read).{zarrs_note}",
            "",
            table(["workload", "reader", "arrays", "ms", "MB/s", "x np.load"], rows),
        ]
    )
    print(body)
    if args.out is not None:
        write_section(args.out, "reads", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
