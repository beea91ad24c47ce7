"""Capturing every block in one forward vs one block, vs one forward per block (the research-code way).

Denoiser only (latents are encoded once, outside the timings), tiny-svd and tiny-sd at 256x256, T=50.
    python -m benchmarks.bench_blocks [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from benchmarks._common import command_line, machine, table, timeit, write_section
from dvx.extract.base import RunOptions
from dvx.extract.models import load_backbone, model_spec


def bench(name: str, size: int, repeat: int) -> list[object]:
    bb = load_backbone(model_spec(name), RunOptions(batch_size=16))
    bb.ensure_loaded()
    n = bb.clip_len or 8
    frames = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        z0 = bb.encode(frames, lambda *_: 0)
        eps = torch.randn(z0.shape, generator=torch.Generator().manual_seed(1))
        x, mt = bb.add_noise(z0, torch.full((z0.shape[0],), 50), eps)
    blocks = bb.block_names
    last = blocks[-1]

    def forward(bs: list[str]) -> None:
        with torch.no_grad():
            bb.forward_blocks(x, mt, bs)

    t_all = timeit(lambda: forward(blocks), repeat)
    t_one = timeit(lambda: forward(["up.1"]), repeat)
    t_full = timeit(lambda: forward([last]), repeat)  # a full forward, one block kept
    t_naive = t_full * len(blocks)  # estimated, not timed: one full forward per block (per-block scripts)
    return [
        name,
        f"{n} x {size}x{size}",
        len(blocks),
        round(t_all, 4),
        round(t_one, 4),
        round(t_naive, 4),
        round(t_all / t_full, 3),
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=None, help="write the section into this markdown file")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    rows = [bench(m, args.size, args.repeat) for m in ("tiny-svd", "tiny-sd")]
    header = [
        "model",
        "input",
        "blocks",
        "all blocks, 1 forward (s)",
        "up.1 only, early stop (s)",
        "est. 1 full forward per block: blocks x full (s)",
        "all / full forward",
    ]
    body = (
        "## Every block in one forward (issue 2, benchmark 1)\n\n"
        f"`{command_line('bench_blocks', argv)}` on {machine()}. Denoiser time per "
        "unit (an SVD clip or 8 SD frames) at T=50, median of "
        f"{args.repeat}; latents encoded once outside the timings. 'all / full forward' is the cost of "
        "capturing every block relative to a plain full forward (the hooks' overhead). The per-block "
        "column is not timed: it is blocks x one full forward (a forward that keeps the deepest block), "
        "what running the denoiser once per block would cost; capturing every block in one forward costs "
        "'all / full forward' of one such forward instead of 'blocks' of them.\n\n"
        + table(header, rows)
        + "\n"
    )
    print(body)
    if args.out:
        write_section(args.out, "blocks", body)


if __name__ == "__main__":
    main()
