"""Extraction throughput with 1 and 2 worker processes (one CPU thread each), measured in one run.

Each configuration runs ``dvx extract`` as a fresh command (as a user would) on an empty store, then once
more on the complete store (its start cost alone: every video is cached). The steady rate comes from the
commit records: per writer process, one video per median gap between its consecutive commits. A fixed
matmul workload run in 1 and then 2 processes gives the parallel speedup this (shared) machine offers at
the time. Then a tiny-svd forward at SVD's native 576x1024 gives the bytes each block stores per frame,
from which the second section it writes projects a real SVD run on DAVIS-2017.
    python -m benchmarks.bench_scaling [--out docs/benchmarks.md] [--videos 16 --frames 24]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import REPO, SHARED_DATA, command_line, load_average, machine, table, write_section

MB = 1e6
# SVD's UNet (stabilityai/stable-video-diffusion-img2vid, unet/config.json): the only number not measured
# here; tiny-svd has the same block structure (4 down blocks, 3 downsamplers, VAE factor 8) and channels
# (32, 32, 64, 64), so the spatial size of every block is measured and only channels are scaled.
SVD_CHANNELS = (320, 640, 1280, 1280)


def run(argv: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dvx", *argv], cwd=REPO, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def steady_rate(store: Path) -> tuple[float, int]:
    """Videos per second once running: for each writer process, 1 / the median gap between its
    consecutive commit records; summed over processes (start-up and tail effects drop out)."""
    from datetime import datetime

    from dvx.store.root import FeatureStore

    [group] = FeatureStore.open(str(store), mode="r").groups()
    by_pid: dict[int, list[float]] = {}
    for c in group.index().commits:
        by_pid.setdefault(int(c.written_by["pid"]), []).append(
            datetime.fromisoformat(c.written_at).timestamp()
        )
    rate = 0.0
    for stamps in by_pid.values():
        stamps.sort()
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        if gaps:
            rate += 1 / statistics.median(gaps)
    return rate, len(by_pid)


def scaling(tmp: Path, videos: int, frames: int, size: int) -> tuple[list[list[object]], dict[str, float]]:
    from dvx.data.synthetic import SynthConfig, write_world

    world = tmp / "world"
    write_world(SynthConfig(out=world, videos=videos, frames=frames, height=size, width=size, seed=1))
    base = ["extract", "--model", "tiny-sd", "--dataset", "synthetic", "--data-root", str(world)]
    base += ["--timesteps", "0,50", "--resolution", f"{size}x{size}", "--threads", "1", "--no-progress"]
    run([*base, "--store", str(tmp / "warmup"), "--videos", "synth_000000"])  # builds the tiny model once
    rows, rates = [], {}
    for n in (1, 2):
        store = tmp / f"store-{n}"
        total = run([*base, "--store", str(store), "--devices", str(n)])
        startup = run([*base, "--store", str(store), "--devices", str(n)])  # all cached: start cost only
        rate, writers = steady_rate(store)
        assert writers == n, (writers, n)
        rates[str(n)] = rate * frames
        rows.append(
            [
                f"{n} process{'es' if n > 1 else ''} x 1 thread",
                round(total, 1),
                round(startup, 1),
                round(videos * frames / total, 1),
                round(rates[str(n)], 1),
            ]
        )
    rows.append(
        [
            "2 / 1",
            "-",
            "-",
            round(float(rows[1][3]) / float(rows[0][3]), 2),
            round(rates["2"] / rates["1"], 2),
        ]
    )
    return rows, rates


_BURN = (
    "import time, torch; torch.set_num_threads(1); a = torch.randn(256, 256); t = time.perf_counter()\n"
    "for _ in range({n}): a = torch.tanh(a @ a)\n"
    "print(time.perf_counter() - t)"
)


def cpu_ceiling(iters: int = 8000) -> float:
    """The speedup 2 single-thread processes can get on this machine right now: the same fixed CPU work
    (torch matmuls) run alone, then twice at once; 2.0 with two idle cores, less when shared."""

    def burn(k: int) -> float:
        procs = [
            subprocess.Popen([sys.executable, "-c", _BURN.format(n=iters)], stdout=subprocess.PIPE, text=True)
            for _ in range(k)
        ]
        return max(float(p.communicate()[0]) for p in procs)

    alone = burn(1)
    return 2 * alone / burn(2)


def svd_bytes_per_frame() -> dict[str, int]:
    """Bytes one stored frame takes per block for SVD at 576x1024 (fp16), from a tiny-svd forward."""
    import torch

    from dvx.extract.base import RunOptions
    from dvx.extract.models import load_backbone, model_spec

    bb = load_backbone(model_spec("tiny-svd", clip_len=2), RunOptions(batch_size=1))  # sizes need no 14
    blank = torch.zeros(2, 3, 576, 1024)
    feats = bb.features(blank, (50,), bb.block_names, lambda *_: 0, 1)[50]
    tiny = tuple(bb.unet_config["block_out_channels"])
    out = {}
    for name, x in feats.items():
        idx = _channel_index(name, len(tiny))
        c, h, w = x.shape[1:]
        assert c == tiny[idx], (name, c, tiny)
        out[name] = SVD_CHANNELS[idx] * h * w * 2
    return out


def _channel_index(block: str, n: int) -> int:
    head, _, i = block.partition(".")
    if head == "down":
        return int(i)
    if head == "mid":
        return n - 1
    return n - 1 - int(i)  # up blocks run the channels in reverse


DAVIS17_VAL_VIDEOS, DAVIS17_VAL_FRAMES = 30, 1999  # DAVIS-2017 val (the OSVOS results in ../shared/data)
DAVIS17_ALL_VIDEOS = 90  # train + val
GPUS_PER_NODE, FORWARDS_PER_S = 8, 1.0  # assumptions of the projection, stated in its text


def davis17_val_frames() -> int:
    """DAVIS-2017 val frames: counted from the OSVOS predictions in ../shared/data when present."""
    osvos = SHARED_DATA / "davis2017_osvos"
    found = sum(1 for _ in osvos.rglob("*.png")) if osvos.is_dir() else 0
    return found or DAVIS17_VAL_FRAMES


def projection(
    per_block: dict[str, int], rows: list[list[object]], rates: dict[str, float], ceiling: float, command: str
) -> str:
    """The cluster-scale paragraph: storage and write bandwidth of a real SVD run, from the numbers above."""
    per_frame = sum(per_block.values())
    frames, t_count, clip = davis17_val_frames(), 4, 14
    total = per_frame * frames * t_count
    by_size = sorted(per_block.items(), key=lambda kv: -kv[1])
    sizes = ", ".join(f"{b} {v / MB:.2f} MB" for b, v in by_size)
    per_forward = clip * per_frame
    node_rate = per_forward * FORWARDS_PER_S * GPUS_PER_NODE
    wall_gain = float(rows[0][1]) / float(rows[1][1])
    start = ", ".join(f"{r[2]} s" for r in rows[:2])
    return (
        "## Projection: SVD on DAVIS-2017, 4 timesteps, every block (cluster scale)\n\n"
        f"Written by `{command}` from the numbers of the "
        "multi-process section. "
        f"One stored frame at one T takes **{per_frame / MB:.1f} MB** for all {len(per_block)} blocks of SVD "
        f"at 576x1024 (fp16, uncompressed; {sizes}). DAVIS-2017 val has {DAVIS17_VAL_VIDEOS} videos and "
        f"{frames:,} frames, so {t_count} timesteps x every block is {frames:,} x {t_count} x "
        f"{per_frame / MB:.1f} MB = **{total / 1e9:.0f} GB** "
        f"(about {total / DAVIS17_VAL_VIDEOS / 1e9:.1f} GB per video); "
        f"train+val ({DAVIS17_ALL_VIDEOS} videos) is about "
        f"{total * DAVIS17_ALL_VIDEOS / DAVIS17_VAL_VIDEOS / 1e9:.0f} GB. Storage grows linearly in frames x "
        "T x blocks and with the square of the resolution; lossless codecs gain little on fp16 activations "
        "(the codec table above), so `--blocks` and `--timesteps` are the real levers: the DIFT setting, "
        f"up.2 at one T, is {per_block['up.2'] * frames / 1e9:.0f} GB for val.\n\n"
        f"Throughput: one SVD forward (a {clip}-frame clip at one T) stores {clip} x {per_frame / MB:.1f} = "
        f"{per_forward / MB:.0f} MB when every block is kept. At an assumed {FORWARDS_PER_S:g} forward per "
        "second per GPU (an assumption: this benchmark runs tiny-sd, not SVD), a node of "
        f"{GPUS_PER_NODE} GPUs must sustain ~{node_rate / 1e9:.1f} GB/s of store writes, well above what one "
        "writer process reaches "
        "here (the store and S3 sections): every-block SVD extraction is bound by the store, not by compute, "
        "so the run is planned from the disk or object-store bandwidth. Ranks scale that bandwidth as far as "
        "the store does, because each rank writes its own videos (its own objects, never a shared chunk) "
        f"with its own background writer; measured there, 2 CPU processes reached "
        f"{rates['2'] / rates['1']:.2f}x the steady rate of one ({rates['2'] / rates['1'] / ceiling:.0%} of "
        f"the {ceiling:.2f}x this shared machine could give at the time), while the fixed start cost of a "
        f"process (interpreter, torch, model: {start} for 1 and 2 processes here, more for real weights) is "
        f"paid once per rank, which is why this {float(rows[0][1]):.0f} s job gains only {wall_gain:.2f}x in "
        "wall time.\n"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--videos", type=int, default=16)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args(argv)
    load = load_average()
    load_text = "?" if load is None else f"{load:.1f}"
    ceiling_before = cpu_ceiling()
    with tempfile.TemporaryDirectory(prefix="dvx-bench-scaling-") as d:
        rows, rates = scaling(Path(d), args.videos, args.frames, args.size)
    ceiling = (ceiling_before + cpu_ceiling()) / 2
    per_block = svd_bytes_per_frame()
    per_frame = sum(per_block.values())
    blocks = ", ".join(f"{b} {v / MB:.2f}" for b, v in per_block.items())
    body = (
        "## Multi-process extraction (cluster scale)\n\n"
        f"`{command_line('bench_scaling', argv)}` on {machine()}; load average "
        f"{load_text} when it started (the machine is shared: other jobs' load lowers the 2-process "
        "numbers). "
        f"tiny-sd on {args.videos} synthetic videos x {args.frames} frames at {args.size}x{args.size}, "
        "T=0,50, every block, `--threads 1` per process; each configuration is a fresh `dvx extract` "
        "command on an empty store (wall), run again with everything cached (its start cost: interpreter, "
        "torch, model, per process); steady = sum over processes of 1 / median time between a process's "
        "consecutive commits, i.e. the rate once running.\n\n"
        + table(["workers", "wall s", "start s (all cached)", "frames/s (wall)", "frames/s (steady)"], rows)
        + f"\n\nWhat 2 processes could gain on this machine during the run (the same fixed matmul work in 1 "
        f"process, then in 2 at once, before and after): {ceiling:.2f}x; extraction's work rate reached "
        f"{rates['2'] / rates['1']:.2f}x, i.e. {rates['2'] / rates['1'] / ceiling:.0%} of it."
        + "\n\nBytes per stored frame and block for SVD at 576x1024, fp16 (spatial sizes measured by a "
        f"tiny-svd forward, channels {SVD_CHANNELS} from SVD's UNet config), in MB: {blocks}; "
        f"{per_frame / MB:.1f} MB per frame and T for every block.\n"
    )
    projected = projection(per_block, rows, rates, ceiling, command_line("bench_scaling", argv))
    print(body)
    print(projected)
    if args.out:
        write_section(args.out, "scaling", body)
        write_section(args.out, "cluster-projection", projected)


if __name__ == "__main__":
    main()
