"""Feature-store throughput on S3 (a moto server on loopback, in its own process) against local disk.

Writes go through dvx's own path (VideoWriter: one chunk per forward unit, commit record last), reads
through RecipeGroup.read; the small-object rate is a claim taken and released (create-if-absent, list,
read, overwrite), which every extracted video pays once. Everything is measured in one run.
    python -m benchmarks.bench_s3 [--out docs/benchmarks.md] [--videos 4 --frames 16]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks._common import command_line, machine, table, write_section
from dvx.store.claims import Claims
from dvx.store.recipe import Recipe
from dvx.store.root import FeatureStore
from dvx.store.writer import VideoWriter

MB = 1e6
RECIPE = Recipe(
    model="bench", family="x", weights="0" * 64, dtype="float16", resolution=(256, 256), clip_len=8
)
BLOCKS = ("up.1", "up.2", "up.3", "mid")


def start_moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    return proc, endpoint


def features(frames: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shapes = {"up.1": (640, 32, 32), "up.2": (320, 64, 64), "up.3": (320, 64, 64), "mid": (1280, 8, 8)}
    return {b: rng.standard_normal((frames, *shapes[b]), dtype=np.float32).astype(np.float16) for b in BLOCKS}


def measure(location: str, acts: dict[str, np.ndarray], videos: int, chunk: int) -> dict[str, float]:
    group = FeatureStore.open(location, mode="a").create_group("bench", RECIPE)
    n = len(next(iter(acts.values())))
    nbytes = sum(a.nbytes for a in acts.values()) * videos

    def write() -> None:
        for v in range(videos):
            vw = VideoWriter(group, f"v{v}", (50,), BLOCKS, chunk_frames=chunk)
            for b, a in acts.items():
                for s in range(0, n, chunk):
                    vw.write(50, b, s, a[s : s + chunk], n)
            vw.commit([str(i) for i in range(n)], [[i] for i in range(n)], (256, 256))

    def read() -> None:
        reader = FeatureStore.open(location, mode="r").groups()[0]
        for v in range(videos):
            for b in BLOCKS:
                reader.read(f"v{v}", 50, b)

    claims = Claims(group)
    names = iter(f"c{i}" for i in range(10**6))

    def claim() -> None:
        rec = claims.try_acquire(next(names))
        assert rec is not None
        claims.release(rec)

    t_write, t_read = _time(write), _time(read)
    t_claim = statistics.median(_time(claim) for _ in range(20))
    return {
        "write": nbytes / t_write / MB,
        "read": nbytes / t_read / MB,
        "claims": 1 / t_claim,
        "bytes": nbytes,
    }


def _time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--chunk", type=int, default=8, help="frames per chunk (one forward unit)")
    args = ap.parse_args(argv)
    acts = features(args.frames)
    proc, endpoint = start_moto()
    try:
        import s3fs

        bucket = f"dvx-bench-{uuid.uuid4().hex[:8]}"
        s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True).mkdir(bucket)
        with tempfile.TemporaryDirectory(prefix="dvx-bench-s3-") as d:
            local = measure(str(Path(d) / "store"), acts, args.videos, args.chunk)
            s3 = measure(f"s3://{bucket}/store", acts, args.videos, args.chunk)
    finally:
        proc.terminate()
        proc.wait()
    rows = [
        ["local disk", round(local["write"]), round(local["read"]), round(local["claims"])],
        ["S3 (moto, loopback)", round(s3["write"]), round(s3["read"]), round(s3["claims"])],
        [
            "S3 / local",
            round(s3["write"] / local["write"], 3),
            round(s3["read"] / local["read"], 3),
            round(s3["claims"] / local["claims"], 3),
        ],
    ]
    chunk_mb = sum(a[: args.chunk].nbytes for a in acts.values()) / len(acts) / MB
    body = (
        "## S3 against local disk (cluster scale)\n\n"
        f"`{command_line('bench_s3', argv)}` on {machine()}. {args.videos} videos x "
        f"{len(BLOCKS)} blocks x {args.frames} frames of fp16 features ({local['bytes'] / MB:.0f} MB per "
        f"pass, chunks of {args.chunk} frames = {chunk_mb:.1f} MB on average), written with VideoWriter "
        "(commit record last) and read back with RecipeGroup.read; moto's S3 server runs in its own process "
        "on 127.0.0.1 (in memory, so this measures the S3 protocol path, not a network or a disk). Claims/s: "
        "one claim taken and released (create-if-absent, list, read, overwrite).\n\n"
        + table(["store", "write MB/s", "read MB/s", "claims/s"], rows)
        + "\n"
    )
    print(body)
    if args.out:
        write_section(args.out, "s3", body)


if __name__ == "__main__":
    main()
