"""Benchmark: fast kNN propagation vs the dense per-frame reference on real DAVIS sequences.

Raw-pixel (Lab) features of the DAVIS-2016 sequences in ../shared/data, average-pooled to ``--stride``,
are propagated from the first-frame mask by ``dvx.probe.propagation.propagate`` and by the DINO-style
dense loop in ``tests/probe/reference_propagation.py``. Per sequence it measures frames/s (target frames
over the propagation call) and the peak memory growth during the call, checks that both give the
same masks (and fails if not), and scores the masks (and the copy-the-first-mask baseline) with J&F
over the frames used. Both run with the same number of torch threads.

"Same masks": every pixel equal, except pixels where the reference's decision is itself a float tie
(its two best upsampled, normalised channels within 1e-5): two correct summation orders may round
those either way. Such pixels are counted and reported ("yes, N tie px"); any other difference fails.

    python -m benchmarks.bench_propagation                      # default: every sequence, 20 frames
    python -m benchmarks.bench_propagation --frames 0 --stride 8 --skip-reference   # fast only, 480p maps
    python -m benchmarks.bench_propagation --out docs/benchmarks.md   # write its section of the results
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks._common import (
    REPO,
    SHARED_DATA,
    command_line,
    load_average,
    machine,
    peak_memory,
    write_section,
)
from dvx.data.images import read_label_png, read_rgb
from dvx.probe.baselines import copy_first_mask, pixel_features
from dvx.probe.jandf import evaluate_sequence
from dvx.probe.propagation import (
    DEFAULT_MAX_BYTES,
    PropagationConfig,
    labels_to_masks,
    mask_to_onehot,
    propagate,
)

DEFAULT_DATA = SHARED_DATA / "davis2016" / "DAVIS"


@dataclass
class Row:
    sequence: str
    frames: int
    map_size: tuple[int, int]
    fast_fps: float
    fast_peak: int | None
    ref_fps: float | None = None
    ref_peak: int | None = None
    differ_px: int | None = None  # mask pixels that differ from the reference
    real_px: int | None = None  # ... of those, not at a float tie of the reference
    jf_pixels: float = float("nan")
    jf_copy: float = float("nan")


def _load(seq_dir: Path, mask_dir: Path, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    jpgs = sorted(seq_dir.glob("*.jpg"))
    pngs = sorted(mask_dir.glob("*.png"))
    if n_frames > 0:
        jpgs, pngs = jpgs[:n_frames], pngs[:n_frames]
    frames = np.stack([read_rgb(p) for p in jpgs])
    masks = np.stack([read_label_png(p)[0] for p in pngs])
    return frames, masks


COLUMNS = [
    "sequence",
    "frames",
    "map",
    "fast fps",
    "ref fps",
    "speed-up",
    "fast peak MiB",
    "ref peak MiB",
    "same masks",
    "J&F pixels",
    "J&F copy-first",
]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _same(r: Row) -> str:
    if r.differ_px is None:
        return "-"
    if r.real_px:
        return f"NO: {r.real_px} px"
    return "yes" if r.differ_px == 0 else f"yes, {r.differ_px} tie px"


def _mib(x: int | None) -> str:
    return "n/a" if x is None else f"{x / 2**20:.0f}"


def run(args: argparse.Namespace) -> list[Row]:
    sys.path.insert(0, str(REPO))
    from tests.probe.reference_propagation import mask_disagreement, reference_propagate

    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    cfg = PropagationConfig.preset(args.preset)
    root = Path(args.data)
    names = (
        args.sequences.split(",")
        if args.sequences
        else sorted(p.name for p in (root / "Annotations" / "480p").iterdir() if p.is_dir())
    )
    rows = []
    for name in names:
        frames, gt = _load(
            root / "JPEGImages" / "480p" / name, root / "Annotations" / "480p" / name, args.frames
        )
        n, H, W = gt.shape
        feats = pixel_features(frames, stride=args.stride).to(device)
        h, w = feats.shape[-2:]
        first = mask_to_onehot(gt[0], (h, w)).to(device)
        fast, t_fast, m_fast = peak_memory(
            lambda f=feats, fi=first: propagate(
                f, fi, cfg, device=device, max_bytes=args.max_bytes_mib * 2**20, cpu_threads=args.threads
            ),
            device,
        )
        fast_masks = labels_to_masks(fast, (H, W), (h * args.stride, w * args.stride))
        fast_masks[0] = gt[0]
        row = Row(name, n, (h, w), (n - 1) / t_fast, m_fast)
        if not args.skip_reference:
            ref, t_ref, m_ref = peak_memory(lambda f=feats, fi=first: reference_propagate(f, fi, cfg), device)
            row.ref_fps, row.ref_peak = (n - 1) / t_ref, m_ref
            row.differ_px, row.real_px = mask_disagreement(
                fast[1:].cpu(), ref[1:].cpu(), (H, W), (h * args.stride, w * args.stride)
            )
        if n >= 3:
            row.jf_pixels = evaluate_sequence(gt, fast_masks).JF_mean
            row.jf_copy = evaluate_sequence(gt, copy_first_mask(gt[0], n)).JF_mean
        rows.append(row)
        msg = f"{name}: {n} frames, map {h}x{w}: fast {row.fast_fps:.2f} fps / +{_mib(row.fast_peak)} MiB"
        if row.ref_fps is not None:
            msg += f", reference {row.ref_fps:.2f} fps / +{_mib(row.ref_peak)} MiB"
            msg += f", x{row.fast_fps / row.ref_fps:.1f}, masks: {_same(row)}"
        print(msg)
    return rows


def table(rows: list[Row], args: argparse.Namespace, wall: float, command: str) -> str:
    cfg = PropagationConfig.preset(args.preset)
    load = load_average()
    head = [
        f"### kNN propagation: fast vs dense reference ({time.strftime('%Y-%m-%d %H:%M')})",
        "",
        f"`{command}`: preset {args.preset} "
        f"(k={cfg.topk}, tau={cfg.temperature}, context={cfg.context}, radius={cfg.radius}), raw-pixel Lab "
        f"features at stride {args.stride}, {'all' if args.frames <= 0 else f'first {args.frames}'} frames, "
        f"device {args.device}, on {machine()}; load average {'?' if load is None else f'{load:.2f}'}; "
        f"wall time {wall:.0f} s. "
        "fps = target frames / s of the propagation call; peak = resident (CPU) or allocated (CUDA) memory "
        "growth during the call. J&F over the frames used (official protocol), not comparable to "
        "full-sequence numbers.",
        "",
        _row(COLUMNS),
        _row(["---"] * len(COLUMNS)),
    ]
    lines = []
    for r in rows:
        ref = r.ref_fps is not None
        same = _same(r)
        lines.append(
            _row(
                [
                    r.sequence,
                    str(r.frames),
                    f"{r.map_size[0]}x{r.map_size[1]}",
                    f"{r.fast_fps:.2f}",
                    f"{r.ref_fps:.2f}" if ref else "-",
                    f"{r.fast_fps / r.ref_fps:.1f}x" if ref else "-",
                    _mib(r.fast_peak),
                    _mib(r.ref_peak) if ref else "-",
                    same,
                    f"{r.jf_pixels:.3f}",
                    f"{r.jf_copy:.3f}",
                ]
            )
        )
    n = sum(r.frames - 1 for r in rows)
    fast_t = sum((r.frames - 1) / r.fast_fps for r in rows)
    all_ref = all(r.ref_fps is not None for r in rows)
    ref_t = sum((r.frames - 1) / r.ref_fps for r in rows) if all_ref else float("nan")
    lines.append(
        _row(
            [
                "**all**",
                str(n + len(rows)),
                "",
                f"{n / fast_t:.2f}",
                f"{n / ref_t:.2f}" if all_ref else "-",
                f"{ref_t / fast_t:.1f}x" if all_ref else "-",
                _mib(max((r.fast_peak or 0) for r in rows)),
                _mib(max((r.ref_peak or 0) for r in rows)) if all_ref else "-",
                _same(
                    Row(
                        "",
                        0,
                        (0, 0),
                        0,
                        None,
                        differ_px=sum(r.differ_px for r in rows),
                        real_px=sum(r.real_px for r in rows),
                    )
                )
                if all_ref
                else "-",
                f"{np.nanmean([r.jf_pixels for r in rows]):.3f}",
                f"{np.nanmean([r.jf_copy for r in rows]):.3f}",
            ]
        )
    )
    return "\n".join(head + lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=str(DEFAULT_DATA), help="a DAVIS root (JPEGImages/480p, Annotations/480p)"
    )
    parser.add_argument(
        "--sequences", default="", help="comma-separated (default: every sequence with masks)"
    )
    parser.add_argument("--frames", type=int, default=20, help="first N frames per sequence (0 = all)")
    parser.add_argument("--stride", type=int, default=16, help="average-pooling stride of the pixel features")
    parser.add_argument("--preset", default="dino", choices=["dino", "dift"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both implementations")
    parser.add_argument("--max-bytes-mib", type=int, default=DEFAULT_MAX_BYTES // 2**20)
    parser.add_argument("--skip-reference", action="store_true", help="time the fast implementation only")
    parser.add_argument(
        "--out", default=None, help="write the results as this benchmark's section of the file"
    )
    parser.add_argument(
        "--section", default="propagation", help="section name in --out (one per configuration)"
    )
    args = parser.parse_args(argv)
    if not Path(args.data).is_dir():
        print(f"DAVIS data not found at {args.data} (pass --data)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    rows = run(args)
    text = table(rows, args, time.perf_counter() - t0, command_line("bench_propagation", argv))
    print()
    print(text)
    if args.out:
        write_section(Path(args.out), args.section, text)
    if any(r.real_px for r in rows):
        print("FAILED: the fast and the reference propagation gave different masks", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
