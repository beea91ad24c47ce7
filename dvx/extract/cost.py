"""What an extraction cost (seed 002's Table 5: time and memory of each model), measured, never estimated.

A :class:`CostMeter` starts before the backbone is loaded and times every forward unit (one clip or one
batch of frames, all requested T and ensemble members together); at the end of a run that computed
something its record is written beside the recipe, at ``<recipe>/_index/cost/<device>-<dtype>.json``
(the newest run on that device and dtype replaces the older one). The recipe and its fingerprint are
untouched: cost describes a run, not the features.

Recorded:
- ``device``, ``device_name`` (the GPU's name, or the CPU's model), ``dtype``, torch ``threads``;
- ``units``, ``forwards`` (network forward passes, as ``--dry-run`` counts them), ``frames`` (input frames
  fed), ``timesteps`` and ``ensemble`` (work per frame), ``seconds`` (forward time only: decoding, queueing
  writes and committing are excluded; CUDA is synchronised around each unit);
- ``seconds_per_unit``, ``seconds_per_forward``, ``frames_per_second`` (input frames per second of
  forward time, all T and members of a frame counted once);
- ``peak_device_bytes``: ``torch.cuda.max_memory_allocated`` since the meter started (weights included);
  null on a CPU;
- ``peak_host_bytes`` / ``host_growth_bytes``: the process's peak resident set (Linux ``VmHWM``, reset
  when the meter starts via ``/proc/self/clear_refs``) and its growth over the resident set when the meter
  started (weights and the code of the libraries the backbone imports included). Where the peak cannot be
  reset (not Linux), the lifetime peak is used and ``host_peak_scope`` says ``process``. Memory freed
  earlier in the process is handed back (``malloc_trim``) before the start is read, yet several
  extractions in one process (the demo, a notebook) share imported libraries and allocator pools: host
  numbers for Table 5 are cleanest from one ``dvx extract`` per process.
"""

from __future__ import annotations

import platform
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from dvx.store.group import RecipeGroup

COST_DIR = "_index/cost"
_STATUS = Path("/proc/self/status")


def _status_kib(field: str) -> int | None:
    try:
        text = _STATUS.read_text()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(m.group(1)) if m else None


def _reset_host_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _release_freed() -> None:
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def host_rss() -> int | None:
    """The process's resident set now, in bytes (None where unknown)."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def host_peak() -> int | None:
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # KiB on Linux
    except (ImportError, OSError):  # pragma: no cover - not a POSIX system
        return None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class CostMeter:
    """Times forward units and measures peak memory from its creation on (see the module docstring)."""

    def __init__(self, device: str, dtype: str) -> None:
        self.device, self.dtype = device, dtype
        self.cuda = device.startswith("cuda") and torch.cuda.is_available()
        self.units = self.forwards = self.frames = 0
        self.seconds = 0.0
        self.timesteps = self.ensemble = 0
        _release_freed()  # memory freed earlier in this process is returned first, not silently reused
        self.host_start = host_rss()
        self.host_scope = "run" if _reset_host_peak() else "process"
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(torch.device(device))

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(torch.device(self.device))

    @contextmanager
    def unit(self, frames: int, forwards: int) -> Iterator[None]:
        """Time one forward unit of ``frames`` input frames and ``forwards`` network forward passes."""
        self._sync()
        start = time.perf_counter()
        yield
        self._sync()
        self.seconds += time.perf_counter() - start
        self.units += 1
        self.frames += frames
        self.forwards += forwards

    def note_work(self, timesteps: int, ensemble: int) -> None:
        """The work per frame of the units timed (the most T any video needed, the ensemble size)."""
        self.timesteps, self.ensemble = max(self.timesteps, timesteps), ensemble

    def record(self) -> dict[str, Any]:
        peak_dev = int(torch.cuda.max_memory_allocated(torch.device(self.device))) if self.cuda else None
        peak_host = host_peak()
        growth = None if peak_host is None or self.host_start is None else max(0, peak_host - self.host_start)
        name = torch.cuda.get_device_name(torch.device(self.device)) if self.cuda else cpu_name()
        per = lambda n: self.seconds / n if n else None  # noqa: E731
        return {
            "device": self.device,
            "device_name": name,
            "dtype": self.dtype,
            "threads": torch.get_num_threads(),
            "units": self.units,
            "forwards": self.forwards,
            "frames": self.frames,
            "timesteps": self.timesteps,
            "ensemble": self.ensemble,
            "seconds": self.seconds,
            "seconds_per_unit": per(self.units),
            "seconds_per_forward": per(self.forwards),
            "frames_per_second": self.frames / self.seconds if self.seconds else None,
            "peak_device_bytes": peak_dev,
            "peak_host_bytes": peak_host,
            "host_growth_bytes": growth,
            "host_peak_scope": self.host_scope,
        }

    def save(self, group: RecipeGroup) -> dict[str, Any] | None:
        """Write the record beside the recipe (nothing when no unit ran); returns it."""
        if not self.units:
            return None
        from dvx.store.index import now_iso

        rec = {**self.record(), "written_at": now_iso()}
        group.backend.put_json(cost_key(group.path, self.device, self.dtype), rec)
        return rec


def cost_key(recipe_path: str, device: str, dtype: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", f"{device}-{dtype}")
    return f"{recipe_path}/{COST_DIR}/{slug}.json"


def read_costs(group: RecipeGroup) -> list[dict[str, Any]]:
    """Every cost record of a recipe group (one per device and dtype it was extracted on)."""
    prefix = f"{group.path}/{COST_DIR}/"
    keys = sorted(k for k in group.backend.list_prefix(prefix) if k.endswith(".json"))
    out = []
    for raw in group.backend.get_many_bytes(keys):
        if raw is None:
            continue
        import json

        try:
            rec = json.loads(raw)
        except ValueError:
            continue  # a damaged cost record is no result: the next extraction on that device rewrites it
        if _well_formed(rec):  # parseable but damaged (a number turned into text): left out likewise
            out.append(rec)
    return out


NUMBERS = (
    "threads", "units", "forwards", "frames", "timesteps", "ensemble", "seconds", "seconds_per_unit",
    "seconds_per_forward", "frames_per_second", "peak_device_bytes", "peak_host_bytes", "host_growth_bytes",
)  # fmt: skip


def _well_formed(rec: Any) -> bool:
    """A cost record as :meth:`CostMeter.record` writes it: a dict, numeric fields numbers or null."""
    if not isinstance(rec, dict):
        return False
    return all(
        rec.get(k) is None or (isinstance(rec[k], int | float) and not isinstance(rec[k], bool))
        for k in NUMBERS
    )
