"""``dvx run PLAN``: every extraction, probe and the report of a plan, skipping what is cached.

Thin on purpose: a plan entry becomes exactly the typed config ``dvx extract`` / ``dvx probe`` /
``dvx report`` build from their flags (one function per stage: :func:`extraction_config`,
:func:`probe_config`, :func:`report_config`), handed to the same runners (``run_extract``, ``run_probe``,
``run_report``). So the cache is the one those commands use: a finished extraction prints "N cached, 0
computed", a probe whose results record exists is reused, and a rerun after a crash redoes only what is
missing.

``--dry-run`` runs every extraction as ``dvx extract --dry-run`` (the bytes and forward passes each needs,
nothing written) and prints each stage as the ``dvx`` command it runs. ``--tiny`` substitutes each model's
tiny twin and reads every dataset from the synthetic world's layouts (``--data-root synthetic=WORLD``, or per
key): the whole plan end to end on a CPU; its numbers come from random weights and measure nothing.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dvx.config import ExtractConfig, ProbeConfig, human_bytes, parse_size_choice
from dvx.errors import ConfigError
from dvx.plan.plan import SEED002, ExtractEntry, Plan, ProbeEntry, load_plan

Log = Callable[[str], None]
#: ``--data-root`` key every dataset falls back to under ``--tiny``
SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class RunConfig:
    plan: str  # a shipped plan name or a TOML file
    store: str
    data_roots: Mapping[str, str]  # data key -> folder
    results: str | None = None  # probe results directory (default: dvx's)
    out: str | None = None  # probe predictions, checkpoints and logs
    report: str = "dvx-report"  # where `dvx report` writes
    tiny: bool = False
    dry_run: bool = False
    only: tuple[str, ...] | None = None  # run only these tasks (and the extractions they read)
    device: str = "auto"
    threads: int | None = None  # CPU threads (extraction and probes); None: torch's default, 1 with --tiny
    progress: bool = True

    def cpu_threads(self) -> int | None:
        """Tiny twins run on one thread: their ops are too small to gain from more, and on a busy machine
        two threads ran tiny UNet forwards 30-50x slower than one (measured here, load average ~9)."""
        return self.threads if self.threads is not None else (1 if self.tiny else None)


@dataclass(frozen=True)
class ExtractJob:
    label: str  # the plan's model label
    model: str
    data: str
    reader: str
    entry: ExtractEntry


@dataclass(frozen=True)
class ProbeJob:
    label: str
    model: str
    data: str
    reader: str
    entry: ProbeEntry


@dataclass
class RunSummary:
    plan: str
    extractions: int = 0
    probes: int = 0
    computed: int = 0  # videos the extractions computed (0 when everything was cached)
    planned_bytes: int = 0
    planned_forwards: int = 0
    commands: list[str] = field(default_factory=list)
    report: str | None = None  # report.md, when written


def expand(plan: Plan, cfg: RunConfig) -> tuple[list[ExtractJob], list[ProbeJob]]:
    """One job per (entry, model), with ``--tiny``'s substitutions and ``--only``'s selection."""

    def model_of(label: str) -> str:
        spec = plan.models[label]
        return spec.tiny if cfg.tiny else spec.model

    def reader_of(key: str) -> str:
        spec = plan.data[key]
        return (spec.tiny_reader or spec.reader) if cfg.tiny else spec.reader

    probes = [
        ProbeJob(label, model_of(label), p.data, reader_of(p.data), p)
        for p in plan.probe
        if cfg.only is None or p.task in cfg.only
        for label in p.models
    ]
    if cfg.only is not None:
        unknown = sorted(set(cfg.only) - {p.task for p in plan.probe})
        if unknown:
            raise ConfigError(f"--only: plan {plan.name} has no task(s) {', '.join(unknown)}")
    wanted = {(j.label, j.data) for j in probes}
    extracts = [
        ExtractJob(label, model_of(label), e.data, reader_of(e.data), e)
        for e in plan.extract
        for label in e.models
        if (label, e.data) in wanted
    ]
    return extracts, probes


def data_roots(plan: Plan, cfg: RunConfig, keys: set[str]) -> dict[str, str]:
    """The folder of every data key the run reads (``--tiny``: the synthetic world by default). Two keys of
    one reader must share a folder: the store keys features by reader name, so two folders would collide."""
    missing = sorted(
        k for k in keys if k not in cfg.data_roots and not (cfg.tiny and SYNTHETIC in cfg.data_roots)
    )
    if missing:
        flags = " ".join(f"--data-root {k}=PATH" for k in missing)
        hint = f" (or --data-root {SYNTHETIC}=WORLD with --tiny)" if cfg.tiny else ""
        raise ConfigError(
            f"plan {plan.name} needs {flags}{hint}; --only TASKS runs part of it (tasks: "
            f"{', '.join(sorted({p.task for p in plan.probe}))})"
        )
    roots = {k: cfg.data_roots.get(k, cfg.data_roots.get(SYNTHETIC, "")) for k in keys}
    by_reader: dict[str, dict[str, str]] = {}
    for key, root in roots.items():
        by_reader.setdefault(plan.data[key].reader, {})[key] = root
    for reader, where in by_reader.items():
        if len(set(where.values())) > 1:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(where.items()))
            raise ConfigError(
                f"{shown} read different folders with the one reader {reader!r}: the store keys cached "
                f"features by reader, so they would collide; run them into separate stores with --only"
            )
    return roots


def _family_choice(value: tuple[Any, ...] | str, job: ProbeJob, kind: str) -> tuple[Any, ...]:
    from dvx.extract.presets import default_timesteps, family_of, seed002_blocks

    if value != SEED002:
        return tuple(value)
    family = family_of(job.model)
    return default_timesteps(family) if kind == "timesteps" else seed002_blocks(family, job.reader)


def _tiny_blocks(plan: Plan, blocks: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(plan.tiny.blocks.get(b, b) for b in blocks)


# ---- the stages: one function each, building what the CLI builds ---------------------------------------
def extraction_config(job: ExtractJob, plan: Plan, cfg: RunConfig, root: str) -> ExtractConfig:
    """The ExtractConfig ``dvx extract --preset P --model M --dataset D ...`` builds for this job."""
    from dvx.extract.presets import extract_config, resolve_options

    e = job.entry
    given: dict[str, Any] = {}
    if e.timesteps is not None:
        given["timesteps"] = e.timesteps
    if e.blocks is not None:
        given["blocks"] = e.blocks
    resolution = (plan.tiny.resolution_for(job.model) if cfg.tiny else None) or e.resolution
    if resolution is not None:
        given["resolution"], given["resize"] = parse_size_choice(resolution)
    if cfg.tiny:  # the twins lack some block names (4 DiT blocks): rename what the preset resolves
        blocks = resolve_options(e.preset, job.model, job.reader, given).get("blocks")
        if blocks:
            given["blocks"] = _tiny_blocks(plan, tuple(blocks))
    clip_len = plan.tiny.clip_len.get(job.model) if cfg.tiny else None
    return extract_config(
        e.preset,
        job.model,
        job.reader,
        root,
        cfg.store,
        **given,
        clip_len=clip_len,
        device=cfg.device,
        threads=cfg.cpu_threads(),
        dry_run=cfg.dry_run,
        progress=cfg.progress,
    )


def probe_config(job: ProbeJob, plan: Plan, cfg: RunConfig, root: str) -> ProbeConfig:
    """The ProbeConfig ``dvx probe --task T --model M ...`` builds for this job."""
    from dvx.probe.task import task_class

    blocks = _family_choice(job.entry.blocks, job, "blocks")
    takes = task_class(job.entry.task).options_class.__dataclass_fields__  # --tiny's go where they fit
    tiny = {k: v for k, v in plan.tiny.probe_options.items() if k in takes} if cfg.tiny else {}
    options = {**job.entry.options, **tiny}
    return ProbeConfig(
        task=job.entry.task,
        store=cfg.store,
        model=job.model,
        data_root=root,
        dataset=job.reader,
        timesteps=_family_choice(job.entry.timesteps, job, "timesteps"),
        blocks=_tiny_blocks(plan, blocks) if cfg.tiny else blocks,
        out=cfg.out,
        results=cfg.results,
        device=cfg.device,
        progress=cfg.progress,
        options=options,
    )


def report_config(cfg: RunConfig) -> Any:
    from dvx.report.runner import ReportConfig

    return ReportConfig(store=cfg.store, out=cfg.report, results=cfg.results)


# ---- commands ------------------------------------------------------------------------------------------
def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _value(v: Any) -> str:
    return ",".join(str(x) for x in v) if isinstance(v, tuple | list) else str(v)


def extract_command(c: ExtractConfig) -> str:
    """``c`` as the ``dvx extract`` command line that builds it (resolved values, no preset)."""
    args = ["dvx", "extract", "--model", c.model, "--dataset", c.dataset, "--data-root", c.data_root]
    args += ["--store", c.store]
    if c.timesteps:
        args += ["--timesteps", _value(c.timesteps)]
    if c.blocks:
        args += ["--blocks", _value(c.blocks)]
    if c.resize or c.resolution:
        args += ["--resolution", c.resize or f"{c.resolution[0]}x{c.resolution[1]}"]  # type: ignore[index]
    if c.clip_len is not None:
        args += ["--clip-len", str(c.clip_len)]
    for name in ("ensemble", "latent", "dtype"):
        value, default = getattr(c, name), ExtractConfig.__dataclass_fields__[name].default
        if value != default:
            args += [_flag(name), str(value)]
    if c.device != "auto":
        args += ["--device", c.device]
    if c.threads is not None:
        args += ["--threads", str(c.threads)]
    return shlex.join(args)


def probe_command(c: ProbeConfig) -> str:
    """``c`` as the ``dvx probe`` command line that builds it."""
    args = ["dvx", "probe", "--task", c.task, "--store", c.store, "--model", c.model]
    args += ["--data-root", c.data_root]
    if c.dataset:
        args += ["--dataset", c.dataset]
    for name in ("timesteps", "blocks", "out", "results"):
        value = getattr(c, name)
        if value:
            args += [_flag(name), _value(value)]
    if c.device != "auto":
        args += ["--device", c.device]
    from dvx.options import to_argv
    from dvx.probe.task import task_options

    args += to_argv(c.options, task_options(c.task, None))
    return shlex.join(args)


# ---- the run -------------------------------------------------------------------------------------------
def run_plan(cfg: RunConfig, log: Log | None = None) -> RunSummary:
    log = log or (lambda msg: print(msg, file=sys.stderr))
    with torch_threads(cfg.cpu_threads()):
        return _run_plan(cfg, log)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """The probes' CPU threads for the run (restored after; each extraction sets its own)."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run_plan(cfg: RunConfig, log: Log) -> RunSummary:
    from dvx.extract.runner import run_extract
    from dvx.probe.runner import build_task, run_probe
    from dvx.report.runner import run_report
    from dvx.results import Grid

    plan = load_plan(cfg.plan)
    extracts, probes = expand(plan, cfg)
    roots = data_roots(plan, cfg, {j.data for j in extracts} | {j.data for j in probes})
    summary = RunSummary(plan.name)
    mode = " (tiny twins on the synthetic world: plumbing, not science)" if cfg.tiny else ""
    log(f"plan {plan.name}: {len(extracts)} extraction(s), {len(probes)} probe(s){mode}")
    for i, job in enumerate(extracts, 1):
        ecfg = extraction_config(job, plan, cfg, roots[job.data])
        summary.commands.append(extract_command(ecfg))
        log(f"[extract {i}/{len(extracts)}] {job.label} ({job.model}) on {job.data}: {summary.commands[-1]}")
        report = run_extract(ecfg, log=log)
        summary.extractions += 1
        summary.computed += len(report.computed)
        summary.planned_bytes += report.planned_bytes or 0
        summary.planned_forwards += report.planned_forwards or 0
        log(f"  {report.summary()}")
    pcfgs = [(pjob, probe_config(pjob, plan, cfg, roots[pjob.data])) for pjob in probes]
    if cfg.dry_run:
        summary.commands += [probe_command(p) for _, p in pcfgs]
        for i, (pjob, p) in enumerate(pcfgs, 1):
            log(f"[probe {i}/{len(pcfgs)}] {pjob.label} ({pjob.model}) {p.task}: {probe_command(p)}")
        log(
            f"dry run of plan {plan.name}: the extractions need {human_bytes(summary.planned_bytes)} and "
            f"{summary.planned_forwards} forward pass(es); nothing was written"
        )
        return summary
    for i, (pjob, p) in enumerate(pcfgs, 1):
        summary.commands.append(probe_command(p))
        log(f"[probe {i}/{len(pcfgs)}] {pjob.label} ({pjob.model}) {p.task}: {summary.commands[-1]}")
        records = run_probe(p, log=log)
        summary.probes += 1
        for line in [*Grid.of(records).render().splitlines(), *build_task(p).extra_lines(records)]:
            log(f"  {line}")
    files = run_report(report_config(cfg), log=log)
    summary.report = str(files.markdown)
    log(files.table2)
    return summary
