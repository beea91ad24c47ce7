"""``dvx demo``: the whole pipeline on the synthetic world with tiny models, in a few minutes on a CPU.

1. generate a small synthetic dynamic world (``dvx synth``);
2. extract tiny video and image diffusion models at several timesteps, every block (``dvx extract``);
3. print what was cached (``dvx cache ls``);
4. probe from the cache (label propagation, trained heads) and print the papers' style tables, as far
   as those stages exist.

Running it again reuses the world and the cache ("N cached, 0 to compute").
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dvx.config import ExtractConfig


@dataclass(frozen=True)
class DemoConfig:
    workdir: Path
    models: tuple[str, ...] = ("tiny-svd", "tiny-sd")
    timesteps: tuple[int, ...] = (0, 50, 200)
    videos: int = 8
    frames: int = 12
    size: tuple[int, int] = (64, 96)
    resolution: tuple[int, int] = (64, 128)
    fresh: bool = False


def _say(msg: str) -> None:
    print(msg, flush=True)


def run_demo(cfg: DemoConfig, say: Callable[[str], None] = _say) -> None:
    from dvx.data.synthetic import SynthConfig, write_world
    from dvx.extract.runner import run_extract

    work = cfg.workdir.expanduser()
    if cfg.fresh and work.exists():
        shutil.rmtree(work)
    world, store = work / "world", work / "store"
    say(f"== 1. synthetic world -> {world}")
    if (world / "world.json").exists():
        say("   (exists; reused)")
    else:
        summary = write_world(SynthConfig(out=world, videos=cfg.videos, frames=cfg.frames, height=cfg.size[0],
                                          width=cfg.size[1], seed=0, colour_coded=True))
        say(f"   {summary}")
    say(f"== 2. extract {', '.join(cfg.models)} at T={','.join(map(str, cfg.timesteps))}, every block -> {store}")
    for model in cfg.models:
        report = run_extract(ExtractConfig(model=model, dataset="synthetic", data_root=str(world),
                                           store=str(store), timesteps=cfg.timesteps, resolution=cfg.resolution,
                                           batch_size=8, progress=sys.stderr.isatty()), log=say)
        say(f"   {report.summary()}")
    say(f"== 3. dvx cache ls --store {store}")
    from dvx.cli.cache import ls

    ls.main(["--store", str(store)], standalone_mode=False)
