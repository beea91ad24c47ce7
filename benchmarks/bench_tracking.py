"""Benchmark: zero-shot point tracking from cached features at 480p, 100 frames.

Features are synthetic but of real size and type (float16, as the store holds them): random maps shaped
like the blocks people track with at 480p, and queries as TAP-Vid-DAVIS makes them (query-first: one per
track; strided: one per track every 5 frames). Each configuration runs ``dvx.probe.tracking.track_points``
once per ``--max-bytes`` budget and reports the throughput in (query, frame) pairs per second and the peak
memory growth during the call, to show that memory follows the budget, not the video length. Random
features make the predictions meaningless: this measures cost, not accuracy.

Configurations (480 x 854 source frames, 100 frames):

- ``sd-up.2``: SD / DIFT up.2 at 480 x 832: 640 x 60 x 104, one map per frame;
- ``wan-attn-q/k``: a Wan 2.1 self-attention q/k pair at 480 x 832: 1536 x 30 x 52, one map per 4 frames
  (26 stored maps for 101 frames; the first 100 frames are tracked).

    python -m benchmarks.bench_tracking [--tracks 30] [--device cpu] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from benchmarks._common import command_line, load_average, machine, peak_memory, table, write_section
from dvx.probe.tracking import TrackerConfig, track_points

SOURCE = (480, 854)
FRAMES = 100


@dataclass(frozen=True)
class Features:
    name: str
    channels: int
    size: tuple[int, int]
    frames_per_map: int  # 1: one map per frame; 4: Wan's causal VAE (map 0 = frame 0, then 4 frames each)
    query_key: bool

    def frame_to_stored(self) -> np.ndarray:
        t = np.arange(FRAMES)
        return t if self.frames_per_map == 1 else (t + self.frames_per_map - 1) // self.frames_per_map

    def maps(self, rng: np.random.Generator) -> np.ndarray:
        n = int(self.frame_to_stored()[-1]) + 1
        return rng.standard_normal((n, self.channels, *self.size), dtype=np.float32).astype(np.float16)


CONFIGS = (
    Features("sd-up.2", 640, (60, 104), 1, False),
    Features("wan-attn-q/k", 1536, (30, 52), 4, True),
)


def queries(rng: np.random.Generator, tracks: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Query frames and normalised positions as TAP-Vid samples them from ``tracks`` always-visible tracks."""
    frames = np.zeros(tracks, np.int64) if mode == "first" else np.repeat(np.arange(0, FRAMES, 5), tracks)
    return frames, rng.random((len(frames), 2))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=30, help="tracks per video (TAP-Vid-DAVIS: ~22 on average)")
    ap.add_argument("--budgets-mib", default="64,512", help="comma-separated max_bytes budgets in MiB")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=None, help="write the results as this benchmark's section of the file")
    args = ap.parse_args(argv)
    budgets = [int(b) for b in args.budgets_mib.split(",")]
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    rows = []
    t_start = time.perf_counter()
    for feats in CONFIGS:
        qmaps = feats.maps(rng)
        kmaps = feats.maps(rng) if feats.query_key else None
        for mode in ("first", "strided"):
            qf, qxy = queries(rng, args.tracks, mode)
            for budget in budgets:
                call = partial(
                    track_points,
                    qmaps,
                    qf,
                    qxy,
                    feats.frame_to_stored(),
                    SOURCE,
                    TrackerConfig(),
                    key_maps=kmaps,
                    device=args.device,
                    max_bytes=budget * 2**20,
                )
                _, seconds, peak = peak_memory(call, device)
                pairs = len(qf) * FRAMES
                rows.append(
                    [
                        feats.name,
                        f"{feats.channels} x {feats.size[0]} x {feats.size[1]}",
                        len(qmaps),
                        mode,
                        len(qf),
                        budget,
                        round(seconds, 2),
                        round(pairs / seconds),
                        "-" if peak is None else round(peak / 2**20),
                        round(qmaps.nbytes / 2**20),
                    ]
                )
                print(rows[-1], flush=True)
    header = [
        "features",
        "map (C x h x w)",
        "stored maps",
        "queries",
        "queries (n)",
        "budget MiB",
        "seconds",
        "pairs/s",
        "peak MiB",
        "features MiB (fp16)",
    ]
    load = load_average()
    text = (
        f"### Point tracking from features, 480p, {FRAMES} frames ({time.strftime('%Y-%m-%d %H:%M')})\n\n"
        f"`{command_line('bench_tracking', argv)}`: `track_points` (argmax + 5x5 soft-argmax, cosine) on "
        f"random float16 maps of real size, {args.tracks} tracks, source frames {SOURCE[0]}x{SOURCE[1]}, "
        f"device {args.device}, on {machine()}"
        + (f"; load average {load:.2f}" if load is not None else "")
        + f"; wall time {time.perf_counter() - t_start:.0f} s. pairs/s = (query, frame) pairs tracked per "
        "second; peak = resident (CPU) or allocated (CUDA) memory growth during the call, beside the "
        "features themselves (held in memory here; from the store they are read chunk by chunk). "
        "Absolute times on this shared machine are noisy; the budget rows of one configuration are "
        "measured in one run.\n\n" + table(header, rows)
    )
    print(text)
    if args.out:
        write_section(Path(args.out), "tracking", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
