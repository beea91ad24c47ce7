"""Twins: training throughput (samples/s, forward vs backward) and the whole study at its default budget.

1. Throughput: one optimiser step of each twin (the tiny-svd UNet, frames-per-batch frames, 64x96 frames),
   timed as forward (noising + UNet + loss) and backward + optimiser step, median over steps after warm-up.
2. The study (`dvx twin study`, dvx/twin/study.py) at its default budget with the seeds asked for: total wall
   time per stage, the per-task table with 95% intervals, and the learning curve. The study folder
   (``--workdir``) is reused by a rerun, so a stopped run resumes where it stopped (its wall time then counts
   only the resumed part: the section says so).

    python -m benchmarks.bench_twins [--seeds 3] [--workdir DIR] [--fresh] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks._common import command_line, load_average, machine, table, write_section


def throughput(frames_per_batch: int, steps: int = 6, warmup: int = 2) -> list[list[object]]:
    import torch

    from dvx.extract.backbones.svd import tiny_unet
    from dvx.twin.config import TrainConfig
    from dvx.twin.module import TwinModule

    rows: list[list[object]] = []
    for objective in ("video", "image"):
        cfg = TrainConfig(objective=objective, data_root="-", out="-", frames_per_batch=frames_per_batch)
        module = TwinModule(tiny_unet(0), cfg)
        opt = torch.optim.AdamW(module.unet.parameters(), lr=cfg.lr)
        h, w = cfg.resolution[0] // 8, cfg.resolution[1] // 8
        fwd, bwd = [], []
        for i in range(warmup + steps):
            z0 = torch.randn(cfg.samples_per_batch, cfg.clip_frames, 4, h, w)
            t0 = time.perf_counter()
            loss = module.loss(z0)
            t1 = time.perf_counter()
            loss.backward()
            opt.step()
            opt.zero_grad()
            t2 = time.perf_counter()
            if i >= warmup:
                fwd.append(t1 - t0)
                bwd.append(t2 - t1)
        f, b = statistics.median(fwd), statistics.median(bwd)
        rows.append(
            [
                objective,
                f"{cfg.samples_per_batch} x {cfg.clip_frames}",
                f,
                b,
                f + b,
                cfg.samples_per_batch / (f + b),
                frames_per_batch / (f + b),
            ]
        )
    return rows


def _load(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "dvx-bench-twins",
        help="study folder, reused by a rerun (resumes a stopped study)",
    )
    ap.add_argument("--fresh", action="store_true", help="delete --workdir first")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: on a shared CPU, 2 threads per process oversubscribe the cores)",
    )
    ap.add_argument("--out", type=Path, default=None, help="rewrite the 'twins' section of this file")
    args = ap.parse_args(argv)
    import torch

    from dvx.twin.study import StudyConfig, run_study

    torch.set_num_threads(args.threads)

    cmd = command_line("bench_twins", argv)
    cfg_defaults = StudyConfig(out="-")
    load_before = load_average()
    rows = throughput(cfg_defaults.frames_per_batch)
    print(
        table(
            [
                "twin",
                "batch (samples x F)",
                "forward s",
                "backward+step s",
                "step s",
                "samples/s",
                "frames/s",
            ],
            rows,
        )
    )
    work = args.workdir
    if args.fresh and work.exists():
        shutil.rmtree(work)
    resumed = (work / "study.json").exists()
    start = time.perf_counter()
    report = run_study(StudyConfig(out=str(work), seeds=args.seeds, threads=args.threads), log=print)
    wall = time.perf_counter() - start
    load_after = load_average()
    stages = ", ".join(f"{k} {v / 60:.1f} min" for k, v in report.seconds.items())
    body = (
        "## Twins: training throughput and the 3-seed study (issue 12)\n\n"
        f"`{cmd}` on {machine()} (the study too: --threads {args.threads}); load average "
        f"{_load(load_before)} "
        f"at the start, {_load(load_after)} at the end "
        "(other jobs shared the cores). The tiny-svd UNet "
        f"(UNetSpatioTemporalConditionModel), {cfg_defaults.frames_per_batch} frames per step, "
        f"{cfg_defaults.resolution[0]}x{cfg_defaults.resolution[1]} frames (latents "
        f"{cfg_defaults.resolution[0] // 8}x{cfg_defaults.resolution[1] // 8}); median of 6 steps after "
        "2 warm-up steps.\n\n"
        + table(
            [
                "twin",
                "batch (samples x F)",
                "forward (s)",
                "backward + step (s)",
                "step (s)",
                "samples/s",
                "frames/s",
            ],
            rows,
        )
        + f"\n\nThe study at its default budget ({args.seeds} seeds, {cfg_defaults.steps} steps per twin): "
        f"**{wall / 60:.1f} min** wall time{' (resumed: earlier stages were reused)' if resumed else ''} "
        f"({stages}).\n\n" + report.markdown.split("\n", 1)[1]
    )
    print(body)
    if args.out:
        write_section(args.out, "twins", body)


if __name__ == "__main__":
    main()
