"""Intervals over seeds: the mean with its two-sided 95% Student-t interval, and paired differences.

With n seeds the interval is ``mean +- t_{0.975, n-1} s / sqrt(n)`` (s: the sample standard deviation);
with one seed there is no interval (``lo``/``hi`` are None) and nothing is claimed about it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    mean: float
    lo: float | None
    hi: float | None
    n: int

    def render(self, digits: int = 3) -> str:
        if self.lo is None or self.hi is None:
            return f"{self.mean:.{digits}f} (n={self.n}, no interval)"
        return f"{self.mean:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"

    def above(self, other: Interval) -> bool:
        """This interval lies wholly above ``other`` (both have intervals; a point counts as its own)."""
        if self.lo is None or other.hi is None:
            return False
        return self.lo > other.hi

    def excludes_zero(self) -> bool:
        return self.lo is not None and self.hi is not None and (self.lo > 0 or self.hi < 0)

    def to_json(self) -> dict[str, float | int | None]:
        return {"mean": self.mean, "lo": self.lo, "hi": self.hi, "n": self.n}


def t_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """The mean of ``values`` and its two-sided Student-t interval at ``level``."""
    from scipy import stats

    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        raise ValueError("no values")
    mean = sum(xs) / n
    if n == 1:
        return Interval(mean, None, None, 1)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def constant(value: float, n: int) -> Interval:
    """A quantity that is the same for every seed (a baseline on the fixed evaluation world): a point."""
    return Interval(value, value, value, n)


def paired_difference(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Interval:
    """``a - b`` seed by seed, with its t-interval (the seeds pair the two runs)."""
    if len(a) != len(b):
        raise ValueError("paired values need the same seeds")
    return t_interval([x - y for x, y in zip(a, b, strict=True)], level)
