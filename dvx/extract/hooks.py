"""Named forward hooks that capture block outputs, always removed, and can stop the forward pass early;
and the device -> host copy of what they capture (:func:`to_host`, into reused :class:`HostBuffers`)."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


class StopForward(Exception):
    """Raised by the hook of the deepest requested block: nothing after it needs computing."""


def first(output: Any) -> torch.Tensor:
    """Block outputs that are tuples (UNet down blocks: (hidden, residuals)) -> the hidden states."""
    return output[0] if isinstance(output, tuple | list) else output


@contextmanager
def capture(
    modules: Mapping[str, nn.Module],
    stop_after: str | None = None,
    select: Mapping[str, Callable[[Any], torch.Tensor]] | None = None,
) -> Iterator[dict[str, torch.Tensor]]:
    """Capture the outputs of ``modules`` (name -> module) into the yielded dict.

    ``stop_after``: after this block's output is captured, :class:`StopForward` aborts the forward pass
    (wrap the call in :func:`run_until_stop`). ``select`` maps a block name to a function picking the
    tensor out of its module's output (default :func:`first`). Hooks are removed on exit, always.
    """
    captured: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name: str) -> Callable[..., None]:
        pick = (select or {}).get(name, first)

        def hook(_module: nn.Module, _args: Any, output: Any) -> None:
            captured[name] = pick(output)
            if name == stop_after:
                raise StopForward(name)

        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield captured
    finally:
        for h in handles:
            h.remove()


def run_until_stop(fn: Callable[[], Any]) -> bool:
    """Call ``fn``; True if it ran to completion, False if a capture hook stopped it early."""
    try:
        fn()
    except StopForward:
        return False
    return True


class HostBuffers:
    """Reusable host tensors for the device -> host copies of block features (pinned on a GPU).

    Why: every forward of a video model copies hundreds of MB to the host (SVD: 397 MB in float16). Copied
    into fresh tensors, each copy pays for new pages (the kernel maps and zeroes them: 0.31 s of host time
    per SVD forward here, a third of a 1 s forward) and, from a GPU, a copy into pageable memory is staged
    through a pinned buffer by the CPU. A buffer used before costs neither, and a pinned one lets the GPU's
    DMA engine write it directly. Buffers are taken by a :class:`Lease` (one forward unit) and come back
    when the lease is released, which the runner queues on the writer thread after the unit's writes (the
    writer runs jobs in order, so nothing reads a buffer after it is back). A lease never released (a unit
    that failed) leaves its buffers to the garbage collector. At most ``max_free_bytes`` wait for reuse.
    """

    def __init__(self, pinned: bool = False, max_free_bytes: int = 4 * 2**30) -> None:
        self.pinned, self.max_free_bytes = pinned, max_free_bytes
        self._free: dict[tuple[tuple[int, ...], torch.dtype], list[torch.Tensor]] = {}
        self._free_bytes = 0
        self._lock = threading.Lock()
        self.allocated = 0  # buffers made (not reused): what a test or benchmark can watch

    def lease(self) -> Lease:
        return Lease(self)

    def _take(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        with self._lock:
            free = self._free.get((shape, dtype))
            if free:
                buf = free.pop()
                self._free_bytes -= buf.nbytes
                return buf
            self.allocated += 1
        return torch.empty(shape, dtype=dtype, pin_memory=self.pinned)

    def _give_back(self, buffers: list[torch.Tensor]) -> None:
        with self._lock:
            for buf in buffers:
                if self._free_bytes + buf.nbytes <= self.max_free_bytes:
                    self._free.setdefault((tuple(buf.shape), buf.dtype), []).append(buf)
                    self._free_bytes += buf.nbytes


class Lease:
    """The host buffers one forward unit copies into (:meth:`HostBuffers.lease`)."""

    def __init__(self, pool: HostBuffers) -> None:
        self.pool = pool
        self.buffers: list[torch.Tensor] = []

    def take(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        buf = self.pool._take(tuple(shape), dtype)
        self.buffers.append(buf)
        return buf

    @contextmanager
    def active(self) -> Iterator[Lease]:
        """:func:`to_host` copies into this lease's buffers inside the ``with``."""
        token = _LEASE.set(self)
        try:
            yield self
        finally:
            _LEASE.reset(token)

    def release(self) -> None:
        """Give the buffers back: call only once nothing reads them any more."""
        buffers, self.buffers = self.buffers, []
        self.pool._give_back(buffers)


_LEASE: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("dvx_host_lease", default=None)


def copy_to_host(x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
    """``x`` copied to the host, same dtype: into a buffer of the active :class:`Lease` if there is one (the
    device -> host copy proper), else a new tensor where ``x`` is on a device; never the memory of
    ``source`` (the module output ``x`` was computed from, default ``x``: the model may reuse it)."""
    lease = _LEASE.get()
    if lease is None:
        return _fresh(x, x if source is None else source)
    out = lease.take(tuple(x.shape), x.dtype)
    out.copy_(x)
    return out


def to_host(features: torch.Tensor, float16: bool) -> torch.Tensor:
    """Block features copied to the host: float32 (``float16`` False), or as the store keeps them.

    ``float16`` (what ``dvx extract`` asks for): cast to float16 on their device, then copied. The cast on
    the device halves the device -> host copy and leaves the host nothing to convert (on a GPU the cast is
    a negligible kernel; on the host it cost 1.3 s per SVD forward, docs/benchmarks.md). Where the float16
    copy is not finite (inf/NaN, or beyond float16's range) the features come back in float32 instead, so
    the runner's finite check (dvx/extract/finite.py) can tell an overflow from a non-finite forward and
    name it; such a video is never committed. Inside :meth:`Lease.active` the float16 copy lands in a
    reusable host buffer (:class:`HostBuffers`); on the CPU the cast writes it directly.
    """
    if not float16:
        return _fresh(features.float(), features)
    lease = _LEASE.get()
    if lease is not None and features.device.type == "cpu":  # cast straight into the buffer
        half = lease.take(tuple(features.shape), torch.float16)
        half.copy_(features)
        return half if bool(torch.isfinite(half).all()) else _fresh(features.float(), features)
    half = features.to(torch.float16)  # on the device
    if not bool(torch.isfinite(half).all()):
        return _fresh(features.float(), features)
    return copy_to_host(half, features)


def _fresh(x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """``x`` (computed from the module output ``source``) on the host, never ``source``'s own memory (not a
    leased buffer: float32 features are rare, a fallback or a caller that asked for them)."""
    out = x.cpu()
    return out.clone() if out.data_ptr() == source.data_ptr() else out
