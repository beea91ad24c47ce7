"""T x block heatmaps (seed 002's Table 3 as a figure), drawn with matplotlib's object API (no pyplot,
no global backend change)."""

from __future__ import annotations

import math
from pathlib import Path

from dvx.results import Grid, fmt


def shared_scale(values: list[float]) -> tuple[float, float]:
    """One colour scale for every heatmap of a task (all models): [0, 1] when every value is a fraction,
    else the range of the values over all models (never min to max of one small grid, which shows
    0.0483 vs 0.0530 as the two extremes)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return (0.0, 1.0)
    lo, hi = min(finite), max(finite)
    if lo >= 0.0 and hi <= 1.0:
        return (0.0, 1.0)
    if lo == hi:
        pad = abs(lo) * 0.5 or 1.0
        return (lo - pad, hi + pad)
    return (lo, hi)


def heatmap_png(grid: Grid, path: Path, title: str, scale: tuple[float, float] | None = None) -> Path:
    """Write ``grid`` as a PNG heatmap: rows T, columns blocks, each cell annotated; missing cells grey.
    Brighter is better whatever the metric's direction (the colour map is reversed for lower-is-better).
    ``scale``: the colour range (shared by the task's heatmaps, :func:`shared_scale`); default: this grid's
    own values through :func:`shared_scale`."""
    import textwrap

    import matplotlib
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = np.array([[math.nan if v is None else v for v in row] for row in grid.values], dtype=float)
    width = max(4.6, 1.8 + 1.1 * len(grid.blocks))  # a single cell still fits its title and colour bar
    fig = Figure(figsize=(width, 2.0 + 0.55 * len(grid.timesteps)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    name = "viridis" if grid.higher_is_better else "viridis_r"
    cmap = matplotlib.colormaps[name].with_extremes(bad="#d0d0d0")
    masked = np.ma.masked_invalid(data)
    lo, hi = scale if scale is not None else shared_scale([float(v) for v in data.ravel()])
    image = ax.imshow(masked, cmap=cmap, aspect="auto", vmin=lo, vmax=hi)
    ax.set_xticks(range(len(grid.blocks)), labels=grid.blocks)
    if max(len(b) for b in grid.blocks) > 8:  # attention head blocks (layer.17.attn1.q.h3) would overlap
        ax.tick_params(axis="x", labelrotation=35, labelsize=8)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    ax.set_yticks(range(len(grid.timesteps)), labels=[str(t) for t in grid.timesteps])
    ax.set_xlabel("block")
    ax.set_ylabel("T")
    mid = (lo + hi) / 2  # the colour map's middle: dark text on the bright half
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            v = data[i, j]
            bright = math.isfinite(v) and ((v > mid) == grid.higher_is_better)
            ax.text(j, i, fmt(None if math.isnan(v) else v), ha="center", va="center", fontsize=8,
                    color="black" if bright or not math.isfinite(v) else "white")  # fmt: skip
    chars = int(width * 10)  # wrap long titles to the figure's width instead of clipping them
    head = "\n".join([*textwrap.wrap(title, chars), f"{grid.metric} ({grid.direction})"])
    ax.set_title(head, fontsize=9)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
