"""Named forward hooks that capture block outputs, always removed, and can stop the forward pass early."""

from __future__ import annotations

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


def to_host(features: torch.Tensor, float16: bool) -> torch.Tensor:
    """Block features copied to the host: float32 (``float16`` False), or as the store keeps them.

    ``float16`` (what ``dvx extract`` asks for): cast to float16 on their device, then copied. The cast on
    the device halves the device -> host copy and leaves the host nothing to convert (on a GPU the cast is
    a negligible kernel; on the host it cost 1.3 s per SVD forward, docs/benchmarks.md). Where the float16
    copy is not finite (inf/NaN, or beyond float16's range) the features come back in float32 instead, so
    the runner's finite check (dvx/extract/finite.py) can tell an overflow from a non-finite forward and
    name it; such a video is never committed.
    """
    if float16:
        half = features.to(torch.float16)
        out = half.cpu() if bool(torch.isfinite(half).all()) else features.float().cpu()
    else:
        out = features.float().cpu()
    # never the module's own output tensor (already on the host in that dtype): the model may reuse it
    return out.clone() if out.data_ptr() == features.data_ptr() else out
