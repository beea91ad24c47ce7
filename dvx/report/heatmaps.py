"""T x block heatmaps (seed 002's Table 3 as a figure), drawn with matplotlib's object API (no pyplot,
no global backend change)."""

from __future__ import annotations

import math
from pathlib import Path

from dvx.results import Grid, fmt


def heatmap_png(grid: Grid, path: Path, title: str) -> Path:
    """Write ``grid`` as a PNG heatmap: rows T, columns blocks, each cell annotated; missing cells grey.
    Brighter is better whatever the metric's direction (the colour map is reversed for lower-is-better)."""
    import matplotlib
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = np.array([[math.nan if v is None else v for v in row] for row in grid.values], dtype=float)
    fig = Figure(figsize=(1.2 + 1.1 * len(grid.blocks), 1.2 + 0.55 * len(grid.timesteps)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    name = "viridis" if grid.higher_is_better else "viridis_r"
    cmap = matplotlib.colormaps[name].with_extremes(bad="#d0d0d0")
    masked = np.ma.masked_invalid(data)
    image = ax.imshow(masked, cmap=cmap, aspect="auto")
    ax.set_xticks(range(len(grid.blocks)), labels=grid.blocks)
    ax.set_yticks(range(len(grid.timesteps)), labels=[str(t) for t in grid.timesteps])
    ax.set_xlabel("block")
    ax.set_ylabel("T")
    finite = data[np.isfinite(data)]
    mid = float(finite.mean()) if finite.size else 0.0
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            v = data[i, j]
            bright = math.isfinite(v) and ((v > mid) == grid.higher_is_better)
            ax.text(j, i, fmt(None if math.isnan(v) else v), ha="center", va="center", fontsize=8,
                    color="black" if bright or not math.isfinite(v) else "white")  # fmt: skip
    ax.set_title(f"{title}\n{grid.metric} ({grid.direction})", fontsize=9)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
