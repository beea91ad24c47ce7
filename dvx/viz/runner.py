"""``dvx viz``: read features of chosen videos, models, T and blocks from the cache and draw them.

Writes into ``out``:
- ``<video>_grid.png``: row 0 the input frames (then the probe predictions, with ``--predictions``), then
  per (model, T, block) a PCA row and a K-means row over the same frames (rows = models, as seed 002's
  Fig. 1), with ``<video>_grid.txt`` its caption;
- ``<video>_<model>_T<T>_<block>.mp4`` (unless ``--no-mp4``): input (with predictions), PCA and K-means
  side by side over every frame the features cover;
- ``dvx-config.json``: the resolved config.

PCA and K-means are fitted per (model, T, block) jointly over the shown frames of every chosen video
(dvx/viz/pca.py, dvx/viz/kmeans.py), so colours compare across frames and videos of one row.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dvx import __version__
from dvx.errors import ConfigError, DataError
from dvx.options import Options, option
from dvx.progress import progress

if TYPE_CHECKING:
    from dvx.store.group import RecipeGroup
    from dvx.store.index import Commit
    from dvx.store.root import FeatureStore

Log = Callable[[str], None]


@dataclass(frozen=True)
class VizConfig(Options):
    """What ``dvx viz`` draws and where (its CLI is generated from these fields)."""

    store: str = option(help="Feature store path or URL.")
    dataset: str = option(help="Dataset the features were extracted from (e.g. davis, synthetic).")
    data_root: str = option(help="Dataset folder (the input frames are read from it).")
    models: str = option(
        help="Model, or comma-separated models (model@fp8 where several recipes exist).", flag="--model"
    )
    videos: str | None = option(None, "Comma-separated video ids [default: the first with cached features].")
    timesteps: str | None = option(
        None, "Comma-separated T [default per model: 50 if cached, else the lowest]."
    )
    blocks: str | None = option(
        None, "Comma-separated blocks [default per model: up.2 if cached, else the last]."
    )
    frames: int = option(4, "Frames shown per video in the grid (evenly spaced).", minimum=1)
    k: int = option(10, "K-means clusters.", minimum=1)
    seed: int = option(0, "Seed of K-means (and of the point subsample of large fits).")
    predictions: str | None = option(
        None, "A `dvx probe --out` folder of one (task, model, T, block) whose predictions to overlay."
    )
    mp4: bool = option(True, "No mp4 videos, only the PNG grid.", flag="--no-mp4")
    fps: int = option(6, "Frame rate of the mp4 videos.", minimum=1)
    cell_height: int = option(128, "Height in pixels of one frame in the grid.", minimum=16)
    out: str = option("dvx-viz", "Output folder.")
    split: str | None = option(None, "Dataset split, as given to `dvx extract --split`.")
    progress: bool = option(True, "No progress bars.", flag="--no-progress")


@dataclass
class Panel:
    model: str  # label: model or model@fp8
    t: int
    block: str
    group: RecipeGroup
    random_weights: bool


@dataclass
class VizFiles:
    out: Path
    grids: list[Path] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _ints(text: str | None, flag: str) -> list[int]:
    try:
        return [int(n) for n in _names(text)]
    except ValueError as err:
        raise ConfigError(f"{flag} {text!r}: expected comma-separated integers") from err


def choose_panels(store: FeatureStore, cfg: VizConfig) -> list[Panel]:
    from dvx.results import block_order
    from dvx.store.layout import split_recipe_name

    wanted_t, wanted_b = _ints(cfg.timesteps, "--timesteps"), _names(cfg.blocks)
    panels = []
    models = _names(cfg.models)
    if not models:
        raise ConfigError("--model: name at least one model")
    for label in models:
        model, fp = split_recipe_name(label) if "@" in label else (label, "")
        group = store.find(cfg.dataset, model, fp or None)
        index = group.index()
        have_t, have_b = sorted(index.timesteps()), sorted(index.blocks(), key=block_order)
        if wanted_t:
            ts = [t for t in wanted_t if t in have_t]
            if not ts:
                raise ConfigError(
                    f"{label}: none of T={','.join(map(str, wanted_t))} is cached (it has {have_t})"
                )
        else:
            ts = [50 if 50 in have_t else have_t[0]]
        if wanted_b:
            bs = [b for b in wanted_b if b in have_b]
            if not bs:
                raise ConfigError(
                    f"{label}: none of blocks {', '.join(wanted_b)} is cached (it has {', '.join(have_b)})"
                )
        else:
            bs = ["up.2" if "up.2" in have_b else have_b[-1]]
        for t in ts:
            for b in bs:
                panels.append(Panel(label, t, b, group, model.startswith("tiny-")))
    return panels


def _covering(commit: Commit, names: Sequence[str]) -> dict[str, int]:
    """Input frame name -> the stored temporal index whose features cover it."""
    where: dict[str, int] = {}
    for stored, frames in enumerate(commit.time_map):
        for i in frames:
            where.setdefault(commit.frame_names[i], stored)
    return {n: where[n] for n in names if n in where}


def _shown(names: Sequence[str], n: int) -> list[str]:
    picks = np.unique(np.round(np.linspace(0, len(names) - 1, min(n, len(names)))).astype(int))
    return [names[i] for i in picks]


def run_viz(cfg: VizConfig, log: Log | None = None) -> VizFiles:
    from dvx.data import open_dataset
    from dvx.results import write_config
    from dvx.store.root import FeatureStore
    from dvx.viz import kmeans, pca
    from dvx.viz.overlay import overlay
    from dvx.viz.render import Row, grid_png, side_by_side_mp4, upsample

    log = log or (lambda msg: print(msg, file=sys.stderr))
    store = FeatureStore.open(cfg.store, mode="r")
    panels = choose_panels(store, cfg)
    dataset = open_dataset(cfg.dataset, cfg.data_root, cfg.split)
    refs = {r.id: r for r in dataset.videos()}
    first = panels[0]
    cached = [v for v in sorted(first.group.index().videos(first.t, first.block)) if v in refs]
    vids = _names(cfg.videos) or cached[:1]
    if not vids:
        raise DataError(f"{first.model}: no video of {cfg.dataset} at {cfg.data_root} has cached features")
    unknown = [v for v in vids if v not in refs]
    if unknown:
        raise ConfigError(f"--videos: {', '.join(unknown)} not in {cfg.dataset} at {cfg.data_root}")
    preds = Path(cfg.predictions).expanduser() if cfg.predictions else None
    if preds is not None and not preds.is_dir():
        raise ConfigError(f"--predictions {cfg.predictions}: no such folder")
    out = Path(cfg.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    files = VizFiles(out)

    videos = {v: dataset.load(refs[v]) for v in vids}
    shown = {v: _shown(list(videos[v].frame_names), cfg.frames) for v in vids}
    # features of every panel and video: (stored frames, C, h, w), and which stored index covers each frame
    feats: dict[tuple[int, str], np.ndarray] = {}
    cover: dict[tuple[int, str], dict[str, int]] = {}
    for p_i, p in enumerate(progress(panels, "viz read", "panel", cfg.progress)):
        for v in vids:
            commit = p.group.commit_for(v, p.t, p.block)
            feats[(p_i, v)] = p.group.read(v, p.t, p.block)
            cover[(p_i, v)] = _covering(commit, videos[v].frame_names)
            if not cover[(p_i, v)]:
                raise DataError(f"{p.model} T={p.t} {p.block}: the features of {v} cover none of its frames")
    fits = []
    for p_i, _ in enumerate(panels):  # one joint fit per panel over the shown frames of every video
        pooled = np.concatenate(
            [
                pca.positions(
                    feats[(p_i, v)][sorted({cover[(p_i, v)][n] for n in shown[v] if n in cover[(p_i, v)]})]
                )
                for v in vids
            ]
        )
        fits.append((pca.fit_pca(pooled, seed=cfg.seed), kmeans.fit_kmeans(pooled, cfg.k, cfg.seed)))

    random = sorted({p.model for p in panels if p.random_weights})
    caption = (
        f"{cfg.dataset}: rows = (model, T, block); three-channel PCA fitted jointly over the shown frames of "
        f"each row, K-means K={cfg.k} (seed {cfg.seed})"
        + (f"\n{', '.join(random)}: random weights (tiny twins): plumbing, not science" if random else "")
    )
    for v in progress(vids, "viz draw", "video", cfg.progress):
        video = videos[v]
        names = list(video.frame_names)
        h0, w0 = video.frames.shape[1:3]
        scale = cfg.cell_height / h0
        cell = (cfg.cell_height, max(2, int(np.rint(w0 * scale))))
        idx = {n: i for i, n in enumerate(names)}
        inputs = upsample(video.frames, cell, nearest=False)
        drawn = overlay(video.frames, names, v, preds) if preds is not None else None
        drawn_small = upsample(drawn, cell, nearest=False) if drawn is not None else None
        rows = [Row("input", [inputs[idx[n]] for n in shown[v]])]
        if drawn_small is not None and preds is not None:
            rows.append(
                Row("prediction\n" + "/".join(preds.parts[-3:]), [drawn_small[idx[n]] for n in shown[v]])
            )
        blank = np.full((*cell, 3), 200, dtype=np.uint8)
        for p_i, p in enumerate(panels):
            f, where = feats[(p_i, v)], cover[(p_i, v)]
            fit_pca, centres = fits[p_i]
            pcs = upsample(pca.colours(fit_pca, f), cell, nearest=False)
            km = upsample(kmeans.label_colours(kmeans.labels(centres, f), len(centres)), cell, nearest=True)
            head = f"{p.model}\nT={p.t} {p.block}"
            rows.append(Row(f"{head}\nPCA", [pcs[where[n]] if n in where else blank for n in shown[v]]))
            rows.append(
                Row(
                    f"{head}\nK-means K={len(centres)}",
                    [km[where[n]] if n in where else blank for n in shown[v]],
                )
            )
            if cfg.mp4:
                covered = [n for n in names if n in where]
                base = drawn if drawn is not None else video.frames
                left = upsample(base[[idx[n] for n in covered]], cell, nearest=False)
                mp4 = out / f"{v}_{_safe(p.model)}_T{p.t}_{_safe(p.block)}.mp4"
                files.videos.append(
                    side_by_side_mp4(
                        [left, pcs[[where[n] for n in covered]], km[[where[n] for n in covered]]],
                        mp4,
                        cfg.fps,
                    )
                )
        png = grid_png(rows, out / f"{v}_grid.png", caption)
        png.with_suffix(".txt").write_text(caption + "\n")
        files.grids.append(png)
    write_config(out, {"config": cfg.to_json(), "dvx_version": __version__})
    log(f"viz: {len(files.grids)} grid(s) and {len(files.videos)} video(s) written to {out}")
    return files


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)
