"""Multi-process extraction on existing launchers: ``--devices N``, ``torchrun`` and SLURM's ``srun``.

Every process is one *rank*. Its rank, the world size and its local rank come from the launcher's
environment (torchrun: ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; SLURM: ``SLURM_PROCID``/``SLURM_NTASKS``/
``SLURM_LOCALID``; ``--devices N`` spawns N local processes with torch.multiprocessing and sets the
torchrun variables itself). Each rank picks its device from its local rank, computes the same to-do list
from the store, takes its deterministic share of it (:func:`shard`), and then helps with the others'
tails (:func:`work_order`). Per-video claims in the store (dvx/store/claims.py) keep two ranks, or two
independent jobs, from computing one video at the same time; every rank writes its videos straight into
the shared store. No collective is needed, so no process group is created: ranks never wait for each
other except for a video another rank is still computing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from dvx.errors import ConfigError, DvxError
from dvx.store.claims import NO_RUN_ID

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from dvx.config import ExtractConfig
    from dvx.extract.runner import ExtractReport

RUN_ID_ENV = "DVX_RUN_ID"


@dataclass(frozen=True)
class RankInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    launcher: str = "single"  # single | torchrun | slurm
    run_id: str = ""  # unique to one launch, shared by its ranks ("" if unknown: every other writer is a job)

    @property
    def prefix(self) -> str:
        return f"[rank {self.rank}/{self.world}] " if self.world > 1 else ""


def _int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise ConfigError(f"environment variable {name}={env[name]!r} is not an integer") from None


def detect_rank(env: Mapping[str, str] | None = None) -> RankInfo:
    """This process's place in the launch: torchrun variables first (they win inside ``srun torchrun``),
    then SLURM's, else a single process."""
    env = os.environ if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:
        rank, world = _int(env, "RANK"), _int(env, "WORLD_SIZE")
        local = _int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else rank
        run = _run_id(env.get(RUN_ID_ENV)) or _run_id(env.get("TORCHELASTIC_RUN_ID"))
        info = RankInfo(rank, world, local, "torchrun", run)
    elif "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        rank, world = _int(env, "SLURM_PROCID"), _int(env, "SLURM_NTASKS")
        local = _int(env, "SLURM_LOCALID") if "SLURM_LOCALID" in env else 0
        job = env.get("SLURM_JOB_ID", "")
        run = _run_id(env.get(RUN_ID_ENV)) or (f"slurm-{job}.{env.get('SLURM_STEP_ID', '')}" if job else "")
        info = RankInfo(rank, world, local, "slurm", run)
    else:
        return RankInfo(run_id=_run_id(env.get(RUN_ID_ENV)))
    if world < 1 or not 0 <= info.rank < world or info.local_rank < 0:
        raise ConfigError(
            f"inconsistent {info.launcher} environment: rank {info.rank}, world size {world}, "
            f"local rank {info.local_rank}"
        )
    return info


# NO_RUN_ID: what torchrun sets TORCHELASTIC_RUN_ID to without ``--rdzv-id`` (static rendezvous with
# --master-addr and --master-port): every such launch gets it, so it says nothing about which launch a rank
# belongs to (defined beside the claims that compare run ids)


def _run_id(value: str | None) -> str:
    """A launch's id, or "" where there is none: ranks of different launches must never share one, since
    a rank leaves a video that a rank of its own launch holds without waiting for it."""
    value = (value or "").strip()
    return "" if value.lower() == NO_RUN_ID else value


def pick_device(requested: str, local_rank: int, cuda_count: int) -> str:
    """The device of a rank: ``auto``/``cuda`` mean the local rank's GPU (CPU without GPUs)."""
    if requested == "auto":
        return f"cuda:{local_rank % cuda_count}" if cuda_count else "cpu"
    if requested == "cuda":
        if cuda_count and local_rank >= cuda_count:
            raise ConfigError(
                f"local rank {local_rank} has no GPU of its own ({cuda_count} visible); "
                "start at most one process per GPU"
            )
        return f"cuda:{local_rank}" if cuda_count else "cuda"
    return requested


def shard(items: Sequence[tuple[str, float]], rank: int, world: int) -> list[str]:
    """Rank ``rank``'s share of ``(video, cost)`` items: longest first to the least-loaded rank (ties to
    the lower rank), returned in the input's order. Deterministic: every rank computes the same split."""
    if world <= 1:
        return [v for v, _ in items]
    load = [0.0] * world
    owner: dict[str, int] = {}
    for video, cost in sorted(items, key=lambda x: (-x[1], x[0])):
        r = min(range(world), key=lambda i: (load[i], i))
        owner[video] = r
        load[r] += max(float(cost), 1e-9)
    return [v for v, _ in items if owner[v] == rank]


def work_order(items: Sequence[tuple[str, float]], rank: int, world: int) -> list[str]:
    """Every video, in the order rank ``rank`` tries them: its own shard, then the other ranks' shards
    from their tails (work stealing where another rank is slower, died or was never started)."""
    order = shard(items, rank, world)
    for k in range(1, world):
        order += list(reversed(shard(items, (rank + k) % world, world)))
    return order


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


# ---- --devices N: one node, N processes ---------------------------------------------------------------
def _die_with_parent() -> None:
    """Linux: this child gets SIGKILL when its parent dies, so killing `dvx extract` kills its workers."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _worker(
    index: int,
    cfg: ExtractConfig,
    env: dict[str, str],
    pipes: Sequence[Connection],
    extract: Callable[..., ExtractReport] | None = None,
) -> None:
    """One spawned rank: set the torchrun variables, run the extraction, send its report back on its own
    pipe (``extract``: what to run instead of :func:`dvx.extract.runner.run_extract`, for tests)."""
    _die_with_parent()
    out = pipes[index]
    for other in pipes:  # keep only this rank's end: the parent sees EOF on it as soon as this rank exits
        if other is not out:
            other.close()
    os.environ.update({k: str(v) for k, v in env.items()})
    os.environ.update(RANK=str(index), LOCAL_RANK=str(index))
    if extract is None:
        from dvx.extract.runner import run_extract as extract

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        report = extract(cfg, log=log)
    except DvxError as err:
        out.send(("error", index, type(err).__name__, str(err)))
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    out.send(("report", index, report))


def launch_local(
    cfg: ExtractConfig, log: Callable[[str], None], extract: Callable[..., ExtractReport] | None = None
) -> ExtractReport:
    """Run ``cfg`` as ``cfg.devices`` local processes (ranks 0..N-1) and merge their reports.

    Each worker sends its report on a pipe of its own, and the parent reads the pipes *while* the workers
    run: a report bigger than the pipe buffer (64 KiB: a few thousand video ids) blocks its worker in
    ``send`` until the parent reads it, so reading only after joining would wait forever.
    """
    import torch.multiprocessing as mp

    n = cfg.devices
    threads = cfg.threads or max(1, (os.cpu_count() or 1) // n)
    child = replace(cfg, devices=1, threads=threads)
    env = {
        "WORLD_SIZE": str(n),
        "LOCAL_WORLD_SIZE": str(n),
        RUN_ID_ENV: os.environ.get(RUN_ID_ENV) or new_run_id(),
        "OMP_NUM_THREADS": str(threads),
    }
    ctx = mp.get_context("spawn")
    readers, writers = zip(*(ctx.Pipe(duplex=False) for _ in range(n)), strict=True)
    log(f"starting {n} worker processes ({threads} CPU thread(s) each)")
    failure: BaseException | None = None
    messages: list[tuple[Any, ...]] = []
    try:
        procs = mp.start_processes(
            _worker, args=(child, env, writers, extract), nprocs=n, join=False, start_method="spawn"
        )
    finally:
        for w in writers:  # the workers hold their own copies
            w.close()
    open_ = list(readers)
    try:
        while True:
            _receive(open_, messages, timeout=0.2)
            if procs.join(timeout=0):
                break
    except mp.ProcessRaisedException as err:  # an unexpected exception: keep its traceback
        failure = err
    except mp.ProcessExitedException as err:
        failure = err
    except BaseException:  # leaving early (Ctrl-C): take the workers down too (they stop gracefully)
        for p in procs.processes:
            if p.is_alive():
                p.terminate()
        raise
    while open_:  # every worker has exited: the rest of each pipe ends in EOF, so this never blocks
        _receive(open_, messages, timeout=0)
    errors = [m for m in messages if m[0] == "error"]
    if errors:
        _, index, kind, text = sorted(errors)[0]
        raise _reraise(kind, f"rank {index}: {text}")
    if isinstance(failure, mp.ProcessExitedException):  # killed (OOM, a signal) or exited without a word
        how = f"signal {failure.signal_name}" if failure.signal_name else f"exit code {failure.exit_code}"
        raise DvxError(
            f"worker process {failure.error_index} died ({how}); what it committed stays: run the same "
            "command again to resume"
        ) from failure
    if failure is not None:
        raise failure
    reports = [m[2] for m in sorted((m for m in messages if m[0] == "report"), key=lambda m: m[1])]
    if len(reports) != n:
        raise DvxError(f"only {len(reports)} of {n} worker processes reported back")
    return merge_reports(reports)


def _receive(readers: list[Connection], messages: list[tuple[Any, ...]], timeout: float) -> None:
    """Read one message from every pipe that has one (waiting up to ``timeout``); a pipe whose worker has
    exited ends in EOF (or in a message cut short by a kill) and is dropped from ``readers``."""
    from multiprocessing.connection import wait

    for conn in wait(readers, timeout=timeout):
        try:
            messages.append(conn.recv())
        except (EOFError, OSError):
            readers.remove(conn)
            conn.close()


def _reraise(kind: str, text: str) -> DvxError:
    import dvx.errors as errors

    cls = getattr(errors, kind, DvxError)
    if isinstance(cls, type) and issubclass(cls, DvxError) and cls is not errors.CorruptVideoError:
        return cls(text)
    return DvxError(text)


def merge_reports(reports: Sequence[ExtractReport]) -> ExtractReport:
    """One report for a multi-process run: rank 0's view of the to-do list, every rank's work."""
    first = reports[0]
    computed = sorted({v for r in reports for v in r.computed})
    merged = replace(
        first,
        computed=computed,
        failed={k: v for r in reports for k, v in r.failed.items()},
        bytes_written=sum(r.bytes_written for r in reports),
        others=sorted({v for r in reports for v in r.others} - set(computed)),
        lost=sorted({v for r in reports for v in r.lost} - set(computed)),
        seconds=max(r.seconds for r in reports),
        ranks=len(reports),
    )
    return merged
