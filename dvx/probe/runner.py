"""``dvx probe``: resolve the cached features a probe asks for, pick its videos, reuse or compute its
results records.

Videos: the task's (from the dataset's split), narrowed by ``--videos`` / ``--exclude``; videos whose
extraction failed (``dvx extract --skip-bad`` records them in the store) are left out with one line and
listed in every record's ``left_out``, unless ``--include-failed`` (or ``--videos``) asks for them.

Reads the store read-only and never loads a backbone: dvx.extract, diffusers and transformers are never
imported on this path (tests/probe/test_isolation.py runs it with them made unimportable).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from dvx.config import ProbeConfig
from dvx.data import open_dataset
from dvx.data.base import VideoRef
from dvx.errors import CacheMissError, ConfigError, DataError
from dvx.probe.task import PredictionTask, ProbeContext, Task, task_class
from dvx.progress import quiet_libraries_unless_shown
from dvx.registry import did_you_mean
from dvx.results import ResultRecord, ResultsDir, results_dir, write_config
from dvx.store.group import RecipeGroup
from dvx.store.index import Failure
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


def build_task(cfg: ProbeConfig) -> Task:
    return task_class(cfg.task)(cfg.task, cfg)


def select_videos(
    cfg: ProbeConfig, candidates: list[VideoRef], failed: Mapping[str, Failure], log: Log
) -> tuple[list[VideoRef], dict[str, list[str]]]:
    """The task's videos narrowed by ``--videos`` / ``--exclude``, and without those whose extraction
    failed (``--skip-bad``) unless ``--include-failed`` or ``--videos`` asks for them; with why -> ids of
    what was left out (recorded in every record)."""
    ids = [r.id for r in candidates]
    if not ids:
        split = f" (split {cfg.split})" if cfg.split else ""
        raise DataError(f"task {cfg.task!r} finds no video in {cfg.data_root}{split}")
    for flag, names in (("--videos", cfg.videos or ()), ("--exclude", cfg.exclude)):
        unknown = [n for n in names if n not in ids]
        if unknown:
            raise DataError(
                f"{flag}: {unknown[0]!r}{f' and {len(unknown) - 1} more' if len(unknown) > 1 else ''} is not "
                f"among the {len(ids)} video(s) of task {cfg.task!r}"
                f"{f' (split {cfg.split})' if cfg.split else ''}.{did_you_mean(unknown[0], ids)}"
            )
    chosen = [r for r in candidates if r.id in cfg.videos] if cfg.videos else list(candidates)
    left_out: dict[str, list[str]] = {"excluded": [r.id for r in chosen if r.id in cfg.exclude]}
    chosen = [r for r in chosen if r.id not in cfg.exclude]
    if not cfg.include_failed and not cfg.videos:
        left_out["failed"] = [r.id for r in chosen if r.id in failed]
        if left_out["failed"]:
            shown = ", ".join(left_out["failed"][:5]) + (" ..." if len(left_out["failed"]) > 5 else "")
            log(
                f"left out {len(left_out['failed'])} video(s) whose extraction failed (--skip-bad): {shown}; "
                "--include-failed probes them anyway"
            )
        chosen = [r for r in chosen if r.id not in failed]
    if not chosen:
        raise DataError(
            f"task {cfg.task!r}: no video left to probe after --videos / --exclude / failed videos"
        )
    return chosen, {k: v for k, v in left_out.items() if v}


def require_features(
    cfg: ProbeConfig,
    group: RecipeGroup,
    videos: list[str],
    pairs: list[tuple[int, str]],
    failed: Mapping[str, Failure],
) -> None:
    """Every (video, T, block) is committed, or one line naming what is missing. A video recorded as failed
    by ``--skip-bad`` gets its recorded reason and how to leave it out, never an extract command that would
    fail again on the same file."""
    index = group.index()
    for t in sorted({t for t, _ in pairs}):
        blocks = sorted({b for tt, b in pairs if tt == t})
        broken = [v for v in videos if v in failed and not index.has(v, [t], blocks)]
        if broken:
            f = failed[broken[0]]
            more = f" and {len(broken) - 1} more" if len(broken) > 1 else ""
            raise CacheMissError(
                f"{group.dataset}/{group.recipe.name}: video {f.video!r}{more} has no features: its "
                f"extraction failed ({f.reason}) and was skipped by --skip-bad. Probe without it (drop "
                "--include-failed, or leave it out of --videos), or replace the file and extract it again"
            )
        group.require(videos, [t], blocks, cfg.data_root)


def write_prediction_configs(task: Task, ctx: ProbeContext, pairs: list[tuple[int, str]]) -> None:
    """``dvx-config.json`` in each (T, block) prediction folder before any prediction is written: the
    record's key fields and the resolved config (what ``dvx eval`` reads back)."""
    for t, b in pairs:
        folder = ctx.prediction_dir(task.name, t, b)
        if folder is not None:
            write_config(folder, task.output_config(ctx, t, b))


def run_probe(cfg: ProbeConfig, log: Log | None = None) -> list[ResultRecord]:
    log = log or (lambda msg: print(msg, file=sys.stderr))
    quiet_libraries_unless_shown(cfg.progress)
    task = build_task(cfg)
    device = probe_device(cfg.device)
    store = FeatureStore.open(cfg.store, mode="r")
    group = store.find(task.dataset_name, cfg.model, cfg.recipe)
    dataset = open_dataset(task.dataset_name, cfg.data_root, cfg.split)
    ctx = ProbeContext(
        cfg=cfg,
        group=group,
        dataset=dataset,
        dataset_name=task.dataset_name,
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
    failed = {v: f for v, f in group.failures().items() if not all(index.has(v, [t], [b]) for t, b in pairs)}
    refs, left_out = select_videos(cfg, task.videos(ctx), failed, log)
    ctx.refs, ctx.left_out = tuple(refs), left_out
    require_features(cfg, group, list(ctx.videos), pairs, failed)
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
        if primary and isinstance(task, PredictionTask):
            write_prediction_configs(task, ctx, todo)
        for rec in task.run(ctx, todo):
            if primary:
                results.save(rec, force=cfg.force)
            records[(rec.T, rec.block)] = rec
    return [records[p] for p in pairs]
