"""Probe epoch time from the feature cache vs the same head fed by re-running the backbone (tiny-svd).

A synthetic world is extracted once with tiny-svd (T=50, blocks up.1 and up.2); then the action head
(pooled up.1) and the segmentation head (per-position up.2) are trained with the same Lightning module
and trainer, fed either by the probe datamodule reading the store, or by a dataset that decodes each
video and runs tiny-svd on it every epoch (what research code without a cache does). Each epoch's wall
time and the share of it the training loop spent waiting for data are measured by the probe's own
DataWaitTimer (first epoch left out).

    python -m benchmarks.bench_probe_epoch [--videos 28] [--size 128] [--epochs 4] [--threads 1]
        [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from benchmarks._common import command_line, load_average, machine, table, write_section
from dvx.config import ExtractConfig
from dvx.data.synthetic import SynthConfig, SyntheticWorld, write_world
from dvx.extract.base import RunOptions
from dvx.extract.models import load_backbone, model_spec
from dvx.extract.runner import _run_unit, run_extract, sample_frames
from dvx.extract.windows import plan_units
from dvx.probe.lightning.classification import ClassificationProbe, PooledBuilder
from dvx.probe.lightning.datamodule import CacheDataModule, FeatureDataset, SampleBuilder, SampleError
from dvx.probe.lightning.dense import DenseBuilder, DenseProbe
from dvx.probe.lightning.source import FeatureSource, pair_key
from dvx.probe.lightning.trainer import DataWaitTimer, make_trainer, quiet_lightning
from dvx.store.index import Commit
from dvx.store.root import FeatureStore

MODEL, T = "tiny-svd", 50


def notes(load: float | None) -> str:
    """The section's closing paragraph; the machine facts in it are read at run time."""
    shared = "" if load is None else f" The load average was {load:.1f} when this run started."
    return (
        "The backbone is a random-init tiny twin on the CPU: with a real model the backbone rows grow "
        "with its cost per clip, the cache rows only with the bytes of features read. The pooled action "
        "head is what `dvx probe` does (one streamed pass, then epochs from memory); the dense head streams "
        "every epoch, and its remaining time is the head itself (logits upsampled to label resolution). "
        "Extra workers pay off only when reads, not the head, are the bottleneck and there are cores to "
        f"spare (this machine has {os.cpu_count()}).{shared}\n"
    )


class BackboneDataset(Dataset):
    """Samples like :class:`FeatureDataset`, but the features come from running the backbone now, unit by
    unit as the extractor runs it (``runner._run_unit``: same model input, seeds and ensemble as ``cfg``)."""

    def __init__(
        self,
        dataset: SyntheticWorld,
        refs: list,
        pair: tuple[int, str],
        builder: SampleBuilder,
        cfg: ExtractConfig,
    ) -> None:
        if cfg.resolution is None:
            raise ValueError("BackboneDataset needs the ExtractConfig's resolution")
        self.dataset, self.refs, self.pair, self.builder, self.cfg = dataset, refs, pair, builder, cfg
        self.resolution = cfg.resolution
        run = RunOptions(batch_size=cfg.batch_size, device="cpu")
        self.backbone = load_backbone(model_spec(cfg.model), run)
        self.backbone.ensure_loaded()

    def __len__(self) -> int:
        return len(self.refs)

    def features(self, ref: Any) -> tuple[np.ndarray, Commit]:
        bb, (t, block) = self.backbone, self.pair
        frames, names = sample_frames(self.dataset.load(ref), self.cfg.frame_stride, self.cfg.max_frames)
        tmap = bb.temporal_map(bb.clip_len) if bb.clip_len else None
        parts, time_map = [], []
        for unit in plan_units(len(frames), bb.clip_len, self.cfg.batch_size, tmap):
            feats = _run_unit(bb, frames, unit, ref.id, self.cfg, self.resolution, (t,), [block])
            parts.append(feats[t][block][: unit.keep])
            time_map += [list(m) for m in unit.time_map]
        x = torch.cat(parts).numpy().astype(np.float16)
        commit = Commit(ref.id, "-", (t,), (block,), tuple(names), tuple(map(tuple, time_map)), (0, 0), {}, 0)
        return x, commit

    def __getitem__(self, i: int) -> dict[str, Any] | SampleError:
        ref = self.refs[i]
        x, commit = self.features(ref)
        return {
            "x": {pair_key(self.pair): self.builder.features(x, commit)},
            **self.builder.labels(self.dataset, ref, commit),
        }


def run_epochs(module: Any, dm: CacheDataModule, epochs: int, log_dir: Path) -> dict[str, float]:
    timer = DataWaitTimer()
    with quiet_lightning():
        trainer = make_trainer(log_dir, epochs, "cpu", None, None, False, [timer])
        trainer.fit(module, datamodule=dm)
    return timer.summary()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--videos", type=int, default=28)
    ap.add_argument("--frames", type=int, default=14)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads [torch's default]")
    ap.add_argument("--out", type=Path, default=None, help="write the section into this markdown file")
    args = ap.parse_args(argv)
    load = load_average()
    if args.threads:
        torch.set_num_threads(args.threads)
    res = (args.size, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        world = root / "world"
        write_world(
            SynthConfig(
                out=world,
                videos=args.videos,
                frames=args.frames,
                height=args.size,
                width=args.size,
                test_fraction=0.3,
            )
        )
        t0 = time.perf_counter()
        cfg = ExtractConfig(
            model=MODEL,
            dataset="synthetic",
            data_root=str(world),
            store=str(root / "s"),
            timesteps=(T,),
            blocks=("up.1", "up.2"),
            resolution=res,
            progress=False,
        )
        run_extract(cfg, log=lambda m: None)
        t_extract = time.perf_counter() - t0
        group = FeatureStore.open(str(root / "s"), "r").groups()[0]
        source = FeatureSource.of(group)
        ds = SyntheticWorld(world)
        train = ds.split_videos("train")
        rows, timings = [], {}
        families = {
            "action (pooled up.1)": (
                (T, "up.1"),
                PooledBuilder(),
                lambda dims: ClassificationProbe([(T, "up.1")], dims, 7, 1e-3, args.epochs, 0),
            ),
            "segmentation (per-position up.2)": (
                (T, "up.2"),
                DenseBuilder("semantic", 1),
                lambda dims: DenseProbe([(T, "up.2")], dims, "semantic", 5, 1e-3, args.epochs, 0),
            ),
        }
        for name, (pair, builder, make) in families.items():
            c = group.index().lookup(train[0].id, *pair).shapes[pair[1]][1]
            dims = {pair_key(pair): int(c)}
            cached = FeatureDataset(source, ds, train, [pair], builder)
            modes = {
                "cache, 0 workers": (cached, 0, False),
                "cache, 2 workers": (cached, 2, False),
            }
            if name.startswith("action"):
                modes["cache, pooled once (the probe's default)"] = (cached, 0, True)
            modes[f"re-run {MODEL} every epoch"] = (BackboneDataset(ds, train, pair, builder, cfg), 0, False)
            for mode, (data, workers, mat) in modes.items():
                dm = CacheDataModule(data, data, batch_size=4, num_workers=workers, seed=0, materialize=mat)  # type: ignore[arg-type]
                t = run_epochs(make(dims), dm, args.epochs, root / "logs" / f"{len(rows)}")
                timings[(name, mode)] = t["epoch_seconds"]
                rows.append([name, mode, round(t["epoch_seconds"], 4), round(t["data_wait_fraction"], 3)])
        for row in rows:
            base = timings[(row[0], f"re-run {MODEL} every epoch")]
            row.append(round(base / timings[(row[0], row[1])], 1))
        body = (
            "## Probe epochs: from the cache vs re-running the backbone\n\n"
            f"`{command_line('bench_probe_epoch', argv)}` on {machine()}. "
            f"{len(train)} training videos of {args.frames} frames at {args.size}x{args.size}, {MODEL} at "
            f"T={T}, batch 4, mean of epochs 2..{args.epochs} (the first, which starts workers, left out). "
            "'data wait' is the share of the epoch the training loop waited for its next batch (store "
            "reads, decoding, collation; for the backbone rows, the backbone forward). The one-off "
            f"extraction of the whole world (every video, both blocks) took {t_extract:.1f} s.\n\n"
            + table(["head", "fed by", "epoch (s)", "data wait", "speed-up vs re-running"], rows)
            + "\n\n"
            + notes(load)
        )
    print(body)
    if args.out:
        write_section(args.out, "probe-epoch", body)


if __name__ == "__main__":
    main()
