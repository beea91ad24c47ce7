"""Does extraction keep a fast GPU busy? A simulated SVD forward against the real runner and writer.

A stand-in for a GPU: the real tiny-svd backbone class, whose denoiser forward is replaced by a 1 s sleep
(``--forward``) that returns SVD's real every-block activations for a 14-frame clip at 576x1024 (down.0-3,
mid, up.0-3: 14.2M values per frame, 397 MB per forward in float16, 795 MB in float32), produced as
float16 (SVD runs in float16 on a GPU). Everything after the forward is the real code: the device -> host
step (here a host copy of the tensors, standing in for the DMA; the cast and finite check it does on a GPU
are part of the simulated forward), the runner's per-block loop, the background writer thread, the store
on local disk and the commit records. Reported: the fraction of the wall time (first forward to the last
commit) that is forward time. The input video is a small synthetic one (decoding and resizing real frames
are not measured here).

"before" replays what the runner did before issue 15 in the same run: float32 copies to the host, the
ensemble division there, a host float16 cast and finite check, and zarr's chunked writes (nested keys,
16 MiB chunks, crc via np.append, folders per chunk). "fresh host tensors" replays the step after it:
float16 copies into new host tensors every forward (new pages to map and zero each time), dvx's direct
writes. "dvx now" copies into the runner's reused host buffers (dvx/extract/hooks.py ``HostBuffers``;
pinned on a GPU, so there the DMA engine does the copy: here a host memcpy still stands in for it).

    python -m benchmarks.bench_extract_overlap [--forwards 8] [--forward 1.0] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch

from benchmarks._common import command_line, load_average, machine, table, write_section
from dvx.config import ExtractConfig
from dvx.extract import base as base_mod
from dvx.extract import hooks as hooks_mod
from dvx.extract import runner as runner_mod
from dvx.extract.unet_blocks import unet_block_shapes
from dvx.store import writer as writer_mod

#: SVD (stabilityai/stable-video-diffusion-img2vid) UNet and VAE geometry, 576x1024 input, 14-frame clips
SVD_UNET = {
    "block_out_channels": [320, 640, 1280, 1280],
    "down_block_types": ["x"] * 4,
    "up_block_types": ["x"] * 4,
}
SVD_SIZE, SVD_VAE_FACTOR, CLIP = (576, 1024), 8, 14
MB = 1e6
VARIANTS = (
    ("before (host cast, zarr chunked writes)", "before"),
    ("fresh host tensors, direct writes", "fresh"),
    ("dvx now (reused host buffers)", "now"),
)


def svd_activations() -> dict[str, torch.Tensor]:
    """One forward's block outputs, (1, 14, C, h, w) float16, as the denoiser returns them per sample."""
    gen = torch.Generator().manual_seed(0)
    return {
        b: torch.randn((1, CLIP, *shape), generator=gen).to(torch.float16)
        for b, shape in unet_block_shapes(SVD_UNET, SVD_VAE_FACTOR, SVD_SIZE).items()
    }


class Clock:
    """Forward count and the start of the first one."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.forwards = 0


@contextmanager
def simulated_gpu(
    acts: dict[str, torch.Tensor], seconds: float, clock: Clock, variant: str
) -> Iterator[None]:
    """Patch tiny-svd's loaded backbone so its denoiser sleeps ``seconds`` and returns ``acts``."""
    real_load = runner_mod.load_backbone

    def load(spec: Any, run: Any) -> Any:
        bb = real_load(spec, run)

        def encode(frames: torch.Tensor, seed_fn: Any) -> torch.Tensor:
            return torch.zeros(1, CLIP, 4, 8, 8)  # the VAE's share of the forward is inside the sleep

        def forward_blocks(x: torch.Tensor, model_t: torch.Tensor, blocks: Sequence[str]) -> dict:
            if clock.first is None:
                clock.first = time.perf_counter()
            clock.forwards += 1
            time.sleep(seconds)
            return {b: acts[b] for b in blocks}

        bb.encode, bb.forward_blocks = encode, forward_blocks
        return bb

    # the device -> host step: now float16 (cast and finite check done on the device, inside the forward)
    # copied into a reused host buffer; fresh: into a new tensor; before: a float32 copy and the ensemble
    # division on the host
    def host(x: torch.Tensor, float16: bool) -> torch.Tensor:
        if variant == "before":
            return x.float() / 1
        return x.clone() if variant == "fresh" else hooks_mod.copy_to_host(x)

    before = variant == "before"

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(runner_mod, "load_backbone", load))
        stack.enter_context(mock.patch.object(base_mod, "to_host", host))
        if before:
            nested = {"name": "default", "separator": "/"}
            stack.enter_context(mock.patch.object(writer_mod, "CHUNK_KEY_ENCODING", nested))
            real_init = writer_mod.VideoWriter.__init__

            def zarr_writes(self: Any, *args: Any, **kwargs: Any) -> None:
                real_init(self, *args, **{**kwargs, "direct": False})

            stack.enter_context(mock.patch.object(writer_mod.VideoWriter, "__init__", zarr_writes))
        yield


def disk_write_speed(folder: Path, nbytes: int = 2**30) -> float:
    """Sustained write speed (bytes/s) of the disk under ``folder``: ``nbytes`` written and fsynced."""
    block = np.zeros(16 * 2**20, np.uint8)
    path = folder / "dvx-bench-disk-probe"
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        for _ in range(nbytes // block.nbytes):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    seconds = time.perf_counter() - t0
    path.unlink()
    return nbytes / seconds


def run_once(
    world: Path, store: Path, acts: dict, seconds: float, variant: str
) -> tuple[float, int, int, float]:
    """(wall seconds from the first forward to the end of the run, forwards, bytes on disk, seconds the
    writer thread spent in array writes)."""
    shutil.rmtree(store, ignore_errors=True)
    cfg = ExtractConfig(
        model="tiny-svd",
        dataset="synthetic",
        data_root=str(world),
        store=str(store),
        timesteps=(50,),
        blocks=tuple(acts),
        resolution=(64, 64),
        clip_len=CLIP,
        progress=False,
    )
    clock = Clock()
    busy = [0.0]
    real_write = writer_mod.VideoWriter.write

    def timed_write(self: Any, *args: Any) -> None:
        t0 = time.perf_counter()
        real_write(self, *args)
        busy[0] += time.perf_counter() - t0

    with (
        simulated_gpu(acts, seconds, clock, variant),
        mock.patch.object(writer_mod.VideoWriter, "write", timed_write),
    ):
        runner_mod.run_extract(cfg, log=lambda _: None)
    end = time.perf_counter()
    assert clock.first is not None
    nbytes = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    shutil.rmtree(store, ignore_errors=True)
    return end - clock.first, clock.forwards, nbytes, busy[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--forwards", type=int, default=8, help="clips (one forward each) in the video")
    ap.add_argument("--forward", type=float, default=1.0, help="simulated seconds per forward")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--stores",
        default=f"{tempfile.gettempdir()},/dev/shm",
        help="comma-separated folders to put the store in (local disk; /dev/shm isolates dvx's own cost "
        "from the disk's speed); absent ones are skipped",
    )
    args = ap.parse_args(argv)
    from dvx.data.synthetic import SynthConfig, write_world

    acts = svd_activations()
    per_forward = sum(a.numel() for a in acts.values())
    rows = []
    disks = []
    with tempfile.TemporaryDirectory(prefix="dvx-bench-overlap-") as tmp_:
        tmp = Path(tmp_)
        world = tmp / "world"
        write_world(SynthConfig(out=world, videos=1, frames=CLIP * args.forwards, height=64, width=64))
        run_once(world, tmp / "warm", {"mid": acts["mid"]}, 0.0, "now")  # builds tiny-svd once
        for folder in [Path(f) for f in args.stores.split(",") if Path(f).is_dir()]:
            speed = disk_write_speed(folder)
            disks.append(f"{folder}: {speed / MB:.0f} MB/s sustained (1 GiB written + fsync)")
            with tempfile.TemporaryDirectory(prefix="dvx-bench-overlap-", dir=folder) as where:
                for name, variant in VARIANTS:
                    wall, n, nbytes, busy = run_once(world, Path(where) / "s", acts, args.forward, variant)
                    rows.append(
                        [
                            str(folder),
                            name,
                            n,
                            round(wall / n, 3),
                            round(busy / n, 3),
                            round(n * args.forward / wall, 3),
                            round(nbytes / MB),
                        ]
                    )
                    print(rows[-1], flush=True)
    load = load_average()
    body = "\n".join(
        [
            "## Extraction overlap: a simulated 1 s/forward GPU with SVD every-block activations",
            "",
            f"`{command_line('bench_extract_overlap', argv)}`",
            "",
            f"Machine: {machine()}; load average {load:.2f} at the end." if load is not None else machine(),
            "",
            f"A forward returns SVD's 9 blocks for a {CLIP}-frame clip at {SVD_SIZE[0]}x{SVD_SIZE[1]}: "
            f"{per_forward * 2 / MB:.0f} MB in float16 ({per_forward * 4 / MB:.0f} MB in float32); "
            f"{args.forwards} forwards of {args.forward:g} s, through the real runner, writer thread and a "
            "local store. *compute fraction* = forward time / wall time from the first forward to the last "
            "commit (the target is >= 0.85). The simulated forward includes what a GPU does in it "
            "(the float16 cast and finite check); the device -> host copy is a host copy here. "
            "*writer s* = time the writer thread spent writing arrays, per forward. A store can only keep "
            f"up with {per_forward * 2 / MB / args.forward:.0f} MB/s of features where its disk sustains "
            "that: " + "; ".join(disks) + ".",
            "",
            table(
                [
                    "store",
                    "variant",
                    "forwards",
                    "s per forward",
                    "writer s per forward",
                    "compute fraction",
                    "MB stored",
                ],
                rows,
            ),
        ]
    )
    print(body)
    if args.out is not None:
        write_section(args.out, "extract-overlap", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
