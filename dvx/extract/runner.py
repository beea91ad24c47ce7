"""``dvx extract``: datasets -> backbone -> feature store, computing only what the cache lacks.

Order of work (cheap checks before anything heavy): model name, timesteps, data root and video list,
store location; then the backbone is loaded, blocks and resolution are validated, the recipe is
fingerprinted, and only videos whose (T, block) set is not fully committed are computed. Each video is
decoded, split into forward units, run once per unit for all T (and ensemble members), and its arrays are
written by a background thread that overlaps the next forward; its commit record is written last.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from dvx.config import ExtractConfig
from dvx.data import open_dataset
from dvx.data.base import Video, VideoDataset, VideoRef
from dvx.errors import ConfigError, CorruptVideoError, DataError
from dvx.extract.base import Backbone, RunOptions
from dvx.extract.models import load_backbone, model_spec
from dvx.extract.noise import seed_for
from dvx.extract.windows import Unit, chunk_frames, plan_units
from dvx.store.group import RecipeGroup
from dvx.store.recipe import Recipe
from dvx.store.root import FeatureStore
from dvx.store.writer import (
    BackgroundWriter,
    VideoWriter,
    clear_failure,
    record_failure,
    write_timestep_attrs,
)

Log = Callable[[str], None]


@dataclass
class ExtractReport:
    recipe: Recipe
    group: str
    store: str
    timesteps: tuple[int, ...]
    blocks: tuple[str, ...]
    total: int = 0
    cached: int = 0
    computed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    bytes_written: int = 0
    planned_bytes: int | None = None  # --dry-run: bytes the missing videos need
    seconds: float = 0.0

    def summary(self) -> str:
        if self.planned_bytes is not None:
            return (
                f"dry run: {self.group} needs {human_bytes(self.planned_bytes)} for "
                f"{self.total - self.cached} video(s) x {len(self.timesteps)} timestep(s) x "
                f"{len(self.blocks)} block(s); nothing was written"
            )
        parts = [f"{self.group}: {self.cached} cached, {len(self.computed)} computed"]
        if self.failed:
            parts.append(f"{len(self.failed)} skipped as unreadable ({', '.join(sorted(self.failed))})")
        parts.append(f"{human_bytes(self.bytes_written)} written in {self.seconds:.1f}s")
        return "; ".join(parts)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def run_options(cfg: ExtractConfig) -> RunOptions:
    device = default_device() if cfg.device == "auto" else cfg.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine")
    dtype = cfg.dtype or ("float16" if device.startswith("cuda") else "float32")
    return RunOptions(device=device, dtype=dtype, batch_size=cfg.batch_size, latent=cfg.latent)


def build_recipe(cfg: ExtractConfig, backbone: Backbone, resolution: tuple[int, int]) -> Recipe:
    fields = backbone.recipe_fields()
    return Recipe(
        model=cfg.model,
        family=backbone.family,
        weights=fields["weights"],
        dtype=backbone.run.dtype,
        resolution=resolution,
        clip_len=backbone.clip_len,
        frame_stride=cfg.frame_stride,
        max_frames=cfg.max_frames,
        latent=fields.get("latent", "none"),
        noise=fields.get("noise", {}),
        conditioning=fields.get("conditioning", {}),
        seed=cfg.seed,
        ensemble=cfg.ensemble,
        source=backbone.spec.source,
        revision=backbone.spec.revision,
    )


def select_videos(dataset: VideoDataset, wanted: Sequence[str] | None) -> list[VideoRef]:
    refs = dataset.videos()
    if not refs:
        raise DataError(f"dataset {dataset.name!r} at {dataset.root} has no videos")
    if wanted:
        by_id = {r.id: r for r in refs}
        absent = [v for v in wanted if v not in by_id]
        if absent:
            raise DataError(f"video(s) {', '.join(absent)} not in {dataset.name} at {dataset.root}")
        refs = [by_id[v] for v in wanted]
    return refs


def sample_frames(video: Video, stride: int, max_frames: int | None) -> tuple[np.ndarray, list[str]]:
    frames, names = video.frames[::stride], video.frame_names[::stride]
    if max_frames is not None:
        frames, names = frames[:max_frames], names[:max_frames]
    return frames, list(names)


def to_model_input(frames: np.ndarray, resolution: tuple[int, int]) -> torch.Tensor:
    """(k, H, W, 3) uint8 -> (k, 3, h, w) float32 in [0, 1], bilinear with antialiasing."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    if tuple(x.shape[-2:]) != tuple(resolution):
        x = F.interpolate(x, size=resolution, mode="bilinear", antialias=True, align_corners=False)
    return x.clamp_(0.0, 1.0)


def run_extract(cfg: ExtractConfig, log: Log | None = None) -> ExtractReport:
    log = log or (lambda msg: print(msg, file=sys.stderr))
    t_start = time.perf_counter()
    # 1. cheap checks first
    spec = model_spec(cfg.model, cfg.weights, cfg.revision, cfg.clip_len)
    dataset = open_dataset(cfg.dataset, cfg.data_root, cfg.split)
    refs = select_videos(dataset, cfg.videos)
    store = _open_store(cfg)
    # 2. the backbone
    run = run_options(cfg)
    backbone = load_backbone(spec, run)
    blocks = backbone.resolve_blocks(cfg.blocks)
    resolution = cfg.resolution or spec.resolution
    backbone.check_resolution(resolution)
    timesteps = cfg.timesteps or ((50,) if backbone.is_diffusion else (0,))
    if not backbone.is_diffusion and timesteps != (0,):
        raise ConfigError(f"{cfg.model} is not a diffusion model: it has no noise level; use --timesteps 0")
    if not backbone.is_diffusion and cfg.ensemble != 1:
        raise ConfigError(
            f"{cfg.model} is not a diffusion model: it has no noise to average; use --ensemble 1"
        )
    recipe = build_recipe(cfg, backbone, resolution)
    report = ExtractReport(recipe, "", store.location if store else cfg.store, timesteps, tuple(blocks))
    group = _group(store, cfg.dataset, recipe, cfg.dry_run)
    report.group = f"{cfg.dataset}/{recipe.name}"
    index = group.index() if group is not None else None
    todo = [r for r in refs if index is None or not index.has(r.id, timesteps, blocks)]
    report.total, report.cached = len(refs), len(refs) - len(todo)
    log(
        f"{report.group}: {report.cached} cached, {len(todo)} to compute "
        f"(T={','.join(map(str, timesteps))}; {len(blocks)} block(s))"
    )
    if cfg.dry_run:
        report.planned_bytes = _plan_bytes(backbone, dataset, todo, cfg, resolution, timesteps, blocks)
        _log_disk(cfg.store, report.planned_bytes, log)
        report.seconds = time.perf_counter() - t_start
        return report
    if not todo:
        report.seconds = time.perf_counter() - t_start
        return report
    assert group is not None
    for t in timesteps:
        write_timestep_attrs(group, t, backbone.noise_level(t))
    _extract_videos(backbone, dataset, todo, group, cfg, resolution, timesteps, blocks, report, log)
    report.seconds = time.perf_counter() - t_start
    return report


def _open_store(cfg: ExtractConfig) -> FeatureStore | None:
    if not cfg.dry_run:
        return FeatureStore.open(cfg.store, mode="a")
    try:  # a dry run never writes: read what exists, if anything
        return FeatureStore.open(cfg.store, mode="r")
    except Exception:
        return None


def _group(store: FeatureStore | None, dataset: str, recipe: Recipe, dry_run: bool) -> RecipeGroup | None:
    if store is None:
        return None
    if dry_run:
        found = [g for g in store.groups(dataset, recipe.model) if g.recipe.fingerprint == recipe.fingerprint]
        return found[0] if found else None
    return store.create_group(dataset, recipe)


def _extract_videos(
    backbone: Backbone,
    dataset: VideoDataset,
    todo: list[VideoRef],
    group: RecipeGroup,
    cfg: ExtractConfig,
    resolution: tuple[int, int],
    timesteps: tuple[int, ...],
    blocks: list[str],
    report: ExtractReport,
    log: Log,
) -> None:
    from tqdm.auto import tqdm

    clip = backbone.clip_len
    tmap = backbone.temporal_map(clip) if clip is not None else None
    per_chunk = chunk_frames(clip, cfg.batch_size, tmap)
    previously_failed = set(group.failures())
    bar = tqdm(todo, desc=f"extract {cfg.model}", unit="video", disable=not cfg.progress, file=sys.stderr)
    with BackgroundWriter(max_pending=max(4, 2 * len(timesteps) * len(blocks))) as writer:
        for ref in bar:
            bar.set_postfix_str(ref.id)
            try:
                video = dataset.load(ref)
            except CorruptVideoError as err:
                if not cfg.skip_bad:
                    raise CorruptVideoError(
                        ref.id, f"{err.reason} (use --skip-bad to record it and go on)"
                    ) from err
                record_failure(group, ref.id, err.reason)
                report.failed[ref.id] = err.reason
                log(f"skipped {ref.id}: {err.reason}")
                continue
            frames, names = sample_frames(video, cfg.frame_stride, cfg.max_frames)
            units = plan_units(len(frames), clip, cfg.batch_size, tmap)
            total = units[-1].store_start + units[-1].keep
            ts, bs = _missing(group, ref.id, timesteps, blocks)
            vw = VideoWriter(group, ref.id, ts, bs, per_chunk, cfg.codec)
            for unit in units:
                feats = _run_unit(backbone, frames, unit, ref.id, cfg, resolution, ts, bs)
                for t in ts:
                    for b in bs:
                        data = feats[t][b][: unit.keep].numpy().astype(np.float16)
                        writer.submit(vw.write, t, b, unit.store_start, data, total)
                        report.bytes_written += data.nbytes
            time_map = [m for u in units for m in u.time_map]
            writer.submit(vw.commit, names, time_map, tuple(video.frames.shape[1:3]))
            if ref.id in previously_failed:  # readable now: forget the old failure once committed
                writer.submit(clear_failure, group, ref.id)
            report.computed.append(ref.id)


def _missing(
    group: RecipeGroup, video: str, timesteps: tuple[int, ...], blocks: list[str]
) -> tuple[tuple[int, ...], list[str]]:
    """The timesteps and blocks still to compute for ``video`` (a later run adding T computes only T)."""
    missing = group.index().missing(video, timesteps, blocks)
    ts = {t for t, _ in missing}
    bs = {b for _, b in missing}
    return tuple(t for t in timesteps if t in ts), [b for b in blocks if b in bs]


def _run_unit(
    backbone: Backbone,
    frames: np.ndarray,
    unit: Unit,
    video_id: str,
    cfg: ExtractConfig,
    resolution: tuple[int, int],
    timesteps: tuple[int, ...],
    blocks: list[str],
) -> dict[int, dict[str, torch.Tensor]]:
    x = to_model_input(frames[list(unit.frames)], resolution)
    if backbone.is_video:

        def seed_fn(item: int, t: int, m: int) -> int:
            return seed_for(cfg.seed, video_id, "clip", unit.index, t, m)
    else:

        def seed_fn(item: int, t: int, m: int) -> int:
            return seed_for(cfg.seed, video_id, "frame", unit.frames[item], t, m)

    return backbone.features(x, timesteps, blocks, seed_fn, cfg.ensemble)


def _plan_bytes(
    backbone: Backbone,
    dataset: VideoDataset,
    todo: list[VideoRef],
    cfg: ExtractConfig,
    resolution: tuple[int, int],
    timesteps: tuple[int, ...],
    blocks: list[str],
) -> int:
    """Bytes the missing videos need: per-block geometry from one forward on a blank unit, frame counts
    from the dataset listing (decoding only where a reader cannot count cheaply)."""
    if not todo:
        return 0
    clip = backbone.clip_len
    tmap = backbone.temporal_map(clip) if clip is not None else None
    n_in = clip or 1
    blank = torch.zeros(n_in, 3, *resolution)
    feats = backbone.features(blank, timesteps[:1], blocks, lambda *_: 0, 1)[timesteps[0]]
    per_stored = sum(
        int(np.prod(v.shape[1:])) * 2 for v in feats.values()
    )  # bytes per stored frame, all blocks
    total = 0
    for ref in todo:
        n = ref.meta.get("n_frames")
        if n is None:
            try:
                n = len(dataset.load(ref).frames)
            except CorruptVideoError:
                continue
        n = len(range(0, int(n), cfg.frame_stride))
        if cfg.max_frames is not None:
            n = min(n, cfg.max_frames)
        units = plan_units(n, clip, cfg.batch_size, tmap)
        total += (units[-1].store_start + units[-1].keep) * per_stored * len(timesteps)
    return total


def _log_disk(location: str, need: int, log: Log) -> None:
    if "://" in location:
        return
    from pathlib import Path

    probe = Path(location).expanduser()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    log(
        f"needs {human_bytes(need)}; {human_bytes(free)} free at {probe}"
        + ("  (NOT ENOUGH)" if need > free else "")
    )
