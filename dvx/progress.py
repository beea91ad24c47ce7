"""Progress of long steps, on a terminal and in logs alike.

Every step that can take more than a few seconds (extraction, propagation per video, trained heads per
epoch, verify, gc, viz, report) reports through :func:`progress`:

- stderr a terminal: a tqdm bar with rate and ETA;
- stderr not a terminal (a log file, ``make demo 2>&1 | cat``, a batch job): a plain line such as
  ``extract tiny-svd: 7/21 video (33%), 12s elapsed, ETA 24s [synth_000007]`` at most every ``every``
  seconds (5 by default) while it runs, and one line at its end, so logs show life without the
  carriage-return noise of a bar (a step that ends within ``every`` seconds prints just its end line);
- disabled (``--no-progress``): nothing at all, and :func:`silence_libraries` also turns off the bars and
  info logging of the libraries dvx drives (diffusers, transformers, huggingface_hub), which otherwise
  leak ``Loading weights`` or ``Writing model shards`` bars into stderr. Lightning's bar and model
  summary are switched off by the trainer's own flags (dvx/probe/lightning/trainer.py).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, TypeVar

T = TypeVar("T")

#: seconds between two plain progress lines when stderr is not a terminal
EVERY = 5.0


def fmt_seconds(s: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    s = max(0.0, s)
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


class Progress:
    """Counts ``done`` of ``total`` units of one step; see the module docstring for what it shows."""

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "it",
        enabled: bool = True,
        stream: IO[str] | None = None,
        every: float = EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.desc, self.unit, self.enabled = total, desc, unit, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.every, self.clock = every, clock
        self.done = 0
        self.postfix = ""
        self._bar: Any = None
        self._start = clock()
        self._last = self._start
        self._closed = False
        if not enabled:
            return
        if _isatty(self.stream):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True)

    @property
    def plain(self) -> bool:
        """True when this progress writes plain lines (enabled, stream not a terminal)."""
        return self.enabled and self._bar is None

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        now = self.clock()
        finished = self.total is not None and self.done >= self.total  # its end line comes from close()
        if now - self._last >= self.every and not finished:
            self._line(now)

    def set_postfix(self, text: str) -> None:
        """A short note shown with the count (the current video, a loss)."""
        self.postfix = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            self._line(final=True)

    def line(self, now: float | None = None, final: bool = False) -> str:
        """The plain progress line at ``now``."""
        now = self.clock() if now is None else now
        elapsed = now - self._start
        count = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        parts = [f"{self.desc}: {count} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * self.done / self.total:.0f}%)"
        parts.append(f"{fmt_seconds(elapsed)} elapsed")
        if final:
            parts.append("done")
        elif self.total and self.done:
            parts.append(f"ETA {fmt_seconds(elapsed / self.done * (self.total - self.done))}")
        elif self.total:
            parts.append("ETA unknown")
        text = ", ".join(parts)
        return f"{text} [{self.postfix}]" if self.postfix and not final else text

    def _line(self, now: float | None = None, final: bool = False) -> None:
        now = self.clock() if now is None else now
        self._last = now
        print(self.line(now, final), file=self.stream, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(
    items: Iterable[T],
    desc: str,
    unit: str = "it",
    enabled: bool = True,
    total: int | None = None,
    stream: IO[str] | None = None,
    every: float = EVERY,
) -> Iterator[T]:
    """Iterate ``items``, counting each one as done after the loop body ran for it."""
    if total is None:
        total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
    with Progress(total, desc, unit, enabled, stream, every) as bar:
        for item in items:
            yield item
            bar.update()


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


_SILENT_LOGGERS = ("diffusers", "transformers", "huggingface_hub", "pytorch_lightning", "lightning.pytorch")


def silence_libraries() -> None:
    """Turn off the progress bars and info logging of diffusers, transformers and huggingface_hub (and
    Lightning's info logging) for the rest of the process: what ``--no-progress`` promises besides dvx's
    own bars. Libraries that are not installed are skipped; none is imported only to be silenced
    unless it is importable anyway (they are dvx dependencies)."""
    for name in _SILENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:  # pragma: no cover - a dvx dependency
        pass
    for module in ("diffusers", "transformers"):
        try:
            utils_logging = __import__(f"{module}.utils.logging", fromlist=["logging"])
        except ImportError:  # pragma: no cover - dvx dependencies
            continue
        utils_logging.set_verbosity_error()
        utils_logging.disable_progress_bar()


def quiet_libraries_unless_shown(enabled: bool, stream: IO[str] | None = None) -> None:
    """Silence the libraries' own bars (:func:`silence_libraries`) unless dvx shows bars on a terminal:
    with ``--no-progress`` nothing may appear, and in a log their carriage-return bars are noise next to
    dvx's plain progress lines."""
    if not enabled or not _isatty(stream if stream is not None else sys.stderr):
        silence_libraries()


def epoch_progress(epochs: int, desc: str, enabled: bool, stream: IO[str] | None = None) -> list[Any]:
    """Lightning callbacks that report training per epoch as plain lines when stderr is not a terminal
    (on a terminal Lightning's own bar shows, so none is returned; none when disabled either)."""
    if not enabled or _isatty(stream if stream is not None else sys.stderr):
        return []
    import pytorch_lightning as pl

    class _Epochs(pl.Callback):
        def __init__(self) -> None:
            self.bar: Progress | None = None

        def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            if trainer.is_global_zero:
                self.bar = Progress(epochs, desc, "epoch", stream=stream)

        def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            if self.bar is not None:
                losses = [
                    float(v)
                    for k, v in trainer.callback_metrics.items()
                    if k.startswith("train/") and k.endswith("/loss")
                ]
                if losses:  # one per head of a sweep: their mean
                    self.bar.set_postfix(f"mean train loss {sum(losses) / len(losses):.4g}")
                self.bar.update()

        def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            if self.bar is not None:
                self.bar.close()

    return [_Epochs()]


def step_progress(steps: int, desc: str, enabled: bool, stream: IO[str] | None = None) -> list[Any]:
    """Lightning callbacks that report training per optimiser step as plain lines when stderr is not a
    terminal (step-budgeted training such as ``dvx twin train``; otherwise as :func:`epoch_progress`)."""
    if not enabled or _isatty(stream if stream is not None else sys.stderr):
        return []
    import pytorch_lightning as pl

    class _Steps(pl.Callback):
        def __init__(self) -> None:
            self.bar: Progress | None = None

        def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            if trainer.is_global_zero:
                self.bar = Progress(steps, desc, "step", stream=stream)

        def on_train_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.update()

        def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            if self.bar is not None:
                self.bar.close()

    return [_Steps()]
