"""Shared helpers: timing, machine description, and writing a section of docs/benchmarks.md."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import platform
import re
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def repo_relative(path: str | Path) -> str:
    """``path`` relative to the repository when it lies inside it (as a command run from there names it)."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def _relative_arg(arg: str) -> str:
    flag, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
    return flag + eq + (repo_relative(value) if os.path.isabs(value) else value)


def command_line(module: str, argv: Sequence[str] | None = None) -> str:
    """The command that is running, as its section of docs/benchmarks.md names it.

    ``module`` is the script's module name under ``benchmarks``; ``argv`` its arguments (``sys.argv[1:]``
    when None). Absolute paths inside the repository are written relative to it, so the line reads the
    same wherever the checkout is.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    shown = [_relative_arg(a) for a in args]
    return " ".join(["python", "-m", f"benchmarks.{module}", *(shlex.quote(a) for a in shown)])


def machine() -> str:
    import torch

    cpus = os.cpu_count()
    gpu = gpu_name() or "no GPU"
    threads = torch.get_num_threads()
    return f"{platform.machine()}, {cpus} CPU cores, {gpu}, torch {torch.__version__}, {threads} threads"


def gpu_name() -> str | None:
    """The first CUDA device's name, None where there is none."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def load_average() -> float | None:
    """The 1-minute load average now, None where the platform has none."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def timeit(fn: Callable[[], object], repeat: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn`` over ``repeat`` runs after ``warmup`` runs (seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def write_section(out: Path, name: str, body: str) -> None:
    """Replace (or append) the section ``name`` of the markdown file ``out``, between markers."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}\n"
    text = out.read_text() if out.exists() else "# Benchmarks\n\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


def table(header: list[str], rows: list[list[object]]) -> str:
    def fmt(v: object) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def peak_memory(fn: Callable[[], object], device: torch.device) -> tuple[object, float, int | None]:
    """Run ``fn``; return its result, seconds, and peak memory growth in bytes (None if unmeasurable):
    allocated CUDA memory on a GPU, the resident set size (Linux ``VmHWM``) on the CPU."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize(device)
        return out, time.perf_counter() - t0, torch.cuda.max_memory_allocated(device) - base
    _trim()
    try:  # Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = _status("VmRSS")
    except OSError:
        base = None
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    return out, dt, (_status("VmHWM") - base) if base is not None else None


def _trim() -> None:
    """Return freed heap to the OS (glibc), so that memory freed by an earlier call is not reused
    silently and the next call's peak growth is visible."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))
