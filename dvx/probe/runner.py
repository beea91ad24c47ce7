"""``dvx probe``: resolve the cached features a probe asks for, reuse or compute its results records.

Reads the store read-only and never loads a backbone: dvx.extract, diffusers and transformers are never
imported on this path (tests/probe/test_isolation.py runs it with them made unimportable).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from dvx.config import ProbeConfig
from dvx.data import open_dataset
from dvx.errors import CacheMissError, ConfigError
from dvx.probe import TASKS
from dvx.probe.results import ResultRecord, ResultsDir, results_dir
from dvx.probe.task import ProbeContext, Task
from dvx.report.tables import block_order
from dvx.store.root import FeatureStore

Log = Callable[[str], None]


def probe_device(device: str) -> str:
    """``--device`` checked before any data is read: ``auto`` -> cuda when visible, else cpu."""
    import torch

    if device in ("auto", ""):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise ConfigError(
            f"--device {device!r} is not a torch device (cpu, cuda, cuda:N, mps, auto)"
        ) from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {device}: MPS is not available on this machine")
    return device


def is_primary_process() -> bool:
    """False in the non-zero ranks of a multi-process (DDP) probe: only rank 0 writes results records."""
    ranks = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK")
    return all(os.environ.get(v) in (None, "", "0") for v in ranks)


def resolve_pairs(cfg: ProbeConfig, available_t: list[int], available_b: list[str]) -> list[tuple[int, str]]:
    """Every asked (T, block) pair, each once (a repeated T or block is not scored twice)."""
    ts = list(cfg.timesteps) if cfg.timesteps else available_t
    bs = list(cfg.blocks) if cfg.blocks else available_b
    return list(dict.fromkeys((t, b) for t in ts for b in bs))


def build_task(cfg: ProbeConfig) -> tuple[Task, str]:
    entry = TASKS.entry(cfg.task)
    task: Task = entry.load()(cfg.task, cfg)
    unknown = sorted(k for k, v in cfg.options if v is not None and k not in task.option_names)
    if unknown:
        raise ConfigError(
            f"task {cfg.task!r} does not take option(s) "
            + ", ".join("--" + k.replace("_", "-") for k in unknown)
        )
    return task, cfg.dataset or entry.options["dataset"]


def run_probe(cfg: ProbeConfig, log: Log | None = None) -> list[ResultRecord]:
    log = log or (lambda msg: print(msg, file=sys.stderr))
    task, dataset_name = build_task(cfg)
    device = probe_device(cfg.device)
    store = FeatureStore.open(cfg.store, mode="r")
    group = store.find(dataset_name, cfg.model, cfg.recipe)
    dataset = open_dataset(dataset_name, cfg.data_root, cfg.split)
    ctx = ProbeContext(
        cfg=cfg,
        group=group,
        dataset=dataset,
        dataset_name=dataset_name,
        out=Path(cfg.out).expanduser() if cfg.out else None,
        device=device,
        log=log,
    )
    index = group.index()
    pairs = resolve_pairs(cfg, index.timesteps(), index.blocks())
    if not pairs:
        raise CacheMissError(
            group.miss_message(["<any>"], list(cfg.timesteps or []), list(cfg.blocks or []), cfg.data_root)
        )
    videos = [r.id for r in task.videos(ctx)]
    ctx.videos = tuple(videos)
    for t in sorted({t for t, _ in pairs}):
        group.require(videos, [t], sorted({b for tt, b in pairs if tt == t}), cfg.data_root)
    results = ResultsDir(results_dir(cfg.results))
    records: dict[tuple[int, str], ResultRecord] = {}
    todo = []
    for t, b in pairs:
        probe = task.record(ctx, t, b, {})
        found = None if cfg.force else results.find(probe)
        if found is not None:
            records[(t, b)] = found
        else:
            todo.append((t, b))
    log(
        f"{cfg.task} on {group.dataset}/{group.recipe.name}: {len(records)} cached result(s), "
        f"{len(todo)} to compute"
    )
    if todo:
        primary = is_primary_process()
        for rec in task.run(ctx, todo):
            if primary:
                results.save(rec, force=cfg.force)
            records[(rec.T, rec.block)] = rec
    return [records[p] for p in pairs]


def table(records: list[ResultRecord], metric: str) -> str:
    """A T x block table of ``metric`` (rows T, columns blocks), as seed 002's Table 3."""
    ts = sorted({r.T for r in records})
    bs = sorted({r.block for r in records}, key=block_order)
    cell = {(r.T, r.block): r.metrics.get(metric) for r in records}
    width = max(8, *(len(b) for b in bs))
    lines = [f"{metric:>8} | " + " ".join(f"{b:>{width}}" for b in bs)]
    lines.append("-" * len(lines[0]))
    for t in ts:
        vals = [cell.get((t, b)) for b in bs]
        lines.append(
            f"T={t:<6} | "
            + " ".join(f"{v:>{width}.4f}" if isinstance(v, int | float) else f"{'-':>{width}}" for v in vals)
        )
    return "\n".join(lines)
