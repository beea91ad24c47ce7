"""``dvx extract``: datasets -> backbone -> feature store, computing only what the cache lacks.

Order of work (cheap checks before anything heavy): model name, timesteps, data root and video list,
store location; then the backbone is loaded, blocks and resolution are validated, the recipe is
fingerprinted, and only videos whose (T, block) set is not fully committed are computed. Each video is
decoded, split into forward units, run once per unit for all T (and ensemble members), and its arrays are
written by a background thread that overlaps the next forward; its commit record is written last.

Several processes (``--devices N``, torchrun, srun; dvx/extract/distributed.py) or independent jobs may
extract into one store at once: each video is claimed in the store before it is computed
(dvx/store/claims.py), a rank works through its deterministic share first and then helps with the rest,
and a video another live writer holds is waited for rather than computed twice.
"""

from __future__ import annotations

import errno
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from dvx.config import ExtractConfig, human_bytes
from dvx.data import open_dataset
from dvx.data.base import Video, VideoDataset, VideoRef
from dvx.data.input_size import PER_VIDEO, input_size, size_preset
from dvx.errors import ConfigError, CorruptVideoError, DataError, DvxError, NoStoreError, StoreError
from dvx.extract.base import Backbone, RunOptions
from dvx.extract.cost import CostMeter
from dvx.extract.distributed import (
    RankInfo,
    detect_rank,
    launch_local,
    pick_device,
    work_order,
)
from dvx.extract.finite import NonFiniteFeaturesError, check_finite
from dvx.extract.hooks import HostBuffers
from dvx.extract.models import load_backbone, model_spec
from dvx.extract.noise import seed_for
from dvx.extract.presets import default_dtype, default_timesteps
from dvx.extract.windows import Unit, chunk_frames, plan_units
from dvx.progress import Progress, quiet_libraries_unless_shown
from dvx.store.backend import is_url, local_path, store_write_error
from dvx.store.claims import FAILED, ClaimRecord, Claims, Outcome
from dvx.store.group import RecipeGroup
from dvx.store.index import IndexView
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
    planned_forwards: int | None = None  # --dry-run: denoiser/encoder forward passes the missing videos need
    geometry: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # block -> (C, h, w), first size
    seconds: float = 0.0
    others: list[str] = field(default_factory=list)  # committed by another process during this run
    lost: list[str] = field(default_factory=list)  # computed, but another job took the claim over first
    ranks: int = 1  # processes that worked on this run

    def summary(self) -> str:
        if self.planned_bytes is not None:
            return (
                f"dry run: {self.group} needs {human_bytes(self.planned_bytes)} and "
                f"{self.planned_forwards} forward pass(es) for {self.total - self.cached} video(s) x "
                f"{len(self.timesteps)} timestep(s) x {len(self.blocks)} block(s); nothing was written"
            )
        parts = [f"{self.group}: {self.cached} cached, {len(self.computed)} computed"]
        if self.ranks > 1:
            parts[0] += f" by {self.ranks} processes"
        if self.others:
            parts.append(f"{len(self.others)} committed by other jobs meanwhile")
        if self.lost:
            parts.append(f"{len(self.lost)} left to the job that took over their claim")
        if self.failed:
            parts.append(f"{len(self.failed)} skipped as unreadable ({', '.join(sorted(self.failed))})")
        parts.append(f"{human_bytes(self.bytes_written)} written in {self.seconds:.1f}s")
        return "; ".join(parts)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def run_options(cfg: ExtractConfig, local_rank: int = 0) -> RunOptions:
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {cfg.device}: CUDA is not available on this machine")
    device = pick_device(
        cfg.device, local_rank, torch.cuda.device_count() if torch.cuda.is_available() else 0
    )
    dtype = cfg.dtype or default_dtype(model_spec(cfg.model).family, device)
    return RunOptions(device=device, dtype=dtype, batch_size=cfg.batch_size, latent=cfg.latent)


#: the recipe's ``latent`` for a VAE sample drawn afresh for each ensemble member (DIFT's ensemble); a
#: single member keeps "sample" (the same draw as before per-member sampling existed)
SAMPLE_PER_MEMBER = "sample per member"


def build_recipe(
    cfg: ExtractConfig,
    backbone: Backbone,
    resolution: tuple[int, int],
    input_notes: dict[str, object] | None = None,
) -> Recipe:
    """The recipe; ``input_notes`` (how frames were prepared beyond the resolution: a per-video resize rule,
    Cityscapes' temporal context) join ``conditioning.input``, only when there are any, so a recipe without
    them keeps its fingerprint."""
    fields = backbone.recipe_fields()
    latent = fields.get("latent", "none")
    if latent == "sample" and cfg.ensemble > 1:
        latent = SAMPLE_PER_MEMBER
    conditioning = dict(fields.get("conditioning", {}))
    if input_notes:
        conditioning["input"] = {**conditioning.get("input", {}), **input_notes}
    return Recipe(
        model=cfg.model,
        family=backbone.family,
        weights=fields["weights"],
        dtype=backbone.run.dtype,
        resolution=resolution,
        clip_len=backbone.clip_len,
        frame_stride=cfg.frame_stride,
        max_frames=cfg.max_frames,
        latent=latent,
        noise=fields.get("noise", {}),
        conditioning=conditioning,
        seed=cfg.seed,
        ensemble=cfg.ensemble,
        source=backbone.spec.source,
        revision=backbone.spec.revision,
    )


def recipe_resolution(
    cfg: ExtractConfig, backbone: Backbone
) -> tuple[tuple[int, int], dict[str, object] | None]:
    """The recipe's resolution and, for an aspect-keeping preset, the rule recorded beside it
    (``conditioning.input.resize``; the resolution is then :data:`PER_VIDEO`)."""
    if cfg.resize is None:
        return cfg.resolution or backbone.spec.resolution, None
    preset = size_preset(cfg.resize)
    snap = backbone.resolution_multiple
    if preset.fixed is not None:  # each side floored to the model's multiple (DINOv2: 320 -> 308)
        return (max(snap, preset.fixed[0] // snap * snap), max(snap, preset.fixed[1] // snap * snap)), None
    return PER_VIDEO, preset.params(snap)


def header_frame_size(ref: VideoRef) -> tuple[int, int] | None:
    """(H, W) of a video's frames from a file header (the first frame image, or a container's stream
    header): nothing is decoded. None when it cannot be told so (the video is then checked when loaded)."""
    from PIL import Image, UnidentifiedImageError

    from dvx.data.video_io import VIDEO_EXTS, list_frame_files, probe_video

    path = ref.path
    try:
        if path.is_dir():
            files = list_frame_files(path, (".jpg", ".jpeg", ".png")) or list_frame_files(
                path / "rgb", (".png", ".jpg")
            )
            if not files:
                return None
            path = files[0]
        if path.suffix.lower() in VIDEO_EXTS:
            info = probe_video(path, ref.id)
            return info.height, info.width
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except (OSError, UnidentifiedImageError, CorruptVideoError):
        return None


def check_sizes(backbone: Backbone, recipe: Recipe, refs: list[VideoRef]) -> dict[str, tuple[int, int]]:
    """Each video's input size (from its header; per video under an aspect-keeping preset), every distinct
    size checked against the model before anything is computed."""
    if tuple(recipe.resolution) != PER_VIDEO:
        fixed = (int(recipe.resolution[0]), int(recipe.resolution[1]))
        backbone.check_resolution(fixed)
        return {ref.id: fixed for ref in refs}
    sizes: dict[str, tuple[int, int]] = {}
    for ref in refs:
        frame = header_frame_size(ref)
        if frame is not None:
            sizes[ref.id] = input_size(recipe.resolution, recipe.conditioning, frame)
    for size in sorted(set(sizes.values())):
        backbone.check_resolution(size)
    return sizes


def select_videos(dataset: VideoDataset, wanted: Sequence[str] | None) -> list[VideoRef]:
    refs = dataset.videos()
    if not refs:
        split = getattr(dataset, "split", None)
        which = f" in split {split!r} (--split all takes every video)" if split else ""
        raise DataError(f"dataset {dataset.name!r} at {dataset.root} has no videos{which}")
    if wanted:
        by_id = {r.id: r for r in refs}
        absent = [v for v in wanted if v not in by_id]
        if absent:
            raise DataError(f"video(s) {', '.join(absent)} not in {dataset.name} at {dataset.root}")
        refs = [by_id[v] for v in wanted]
    return refs


def stored_count(n_frames: int, stride: int, max_frames: int | None) -> int:
    """How many of a video's ``n_frames`` frames :func:`sample_frames` keeps."""
    n = len(range(0, n_frames, stride))
    return n if max_frames is None else min(n, max_frames)


def sample_frames(video: Video, stride: int, max_frames: int | None) -> tuple[np.ndarray, list[str]]:
    """Every ``stride``-th frame, at most ``max_frames`` of them, and their names."""
    k = stored_count(len(video.frames), stride, max_frames)
    return video.frames[::stride][:k], list(video.frame_names[::stride][:k])


def temporal_map(backbone: Backbone) -> list[list[int]] | None:
    """The backbone's map from clip outputs to input frames (None for an image model)."""
    clip = backbone.clip_len
    return backbone.temporal_map(clip) if clip is not None else None


def with_frame_counts(refs: list[VideoRef]) -> list[VideoRef]:
    """``refs``, each with ``meta["n_frames"]`` where it can be told without decoding: the dataset's listing
    (frame folders) or, for a video file, its container's headers (:func:`~dvx.data.video_io.probe_video`:
    the announced count, or an estimate from duration x frame rate). A ref whose count cannot be told so
    (no header count, an unreadable file, a reader of another kind) is returned as it is."""
    from dvx.data.video_io import VIDEO_EXTS, probe_video

    out = []
    for ref in refs:
        if ref.meta.get("n_frames") is None and ref.path.suffix.lower() in VIDEO_EXTS and ref.path.is_file():
            try:
                n = probe_video(ref.path, ref.id).num_frames
            except CorruptVideoError:
                n = None
            if n:
                ref = replace(ref, meta={**ref.meta, "n_frames": n})
        out.append(ref)
    return out


def to_model_input(frames: np.ndarray, resolution: tuple[int, int]) -> torch.Tensor:
    """(k, H, W, 3) uint8 -> (k, 3, h, w) float32 in [0, 1], bilinear with antialiasing."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    if tuple(x.shape[-2:]) != tuple(resolution):
        x = F.interpolate(x, size=resolution, mode="bilinear", antialias=True, align_corners=False)
    return x.clamp_(0.0, 1.0)


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """CPU threads for this run (restored after). CPU results depend on it: oneDNN picks thread-count
    dependent kernels, so bit-identical features across launches need the same --threads per process."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_extract(cfg: ExtractConfig, log: Log | None = None) -> ExtractReport:
    log = log or (lambda msg: print(msg, file=sys.stderr))
    t_start = time.perf_counter()
    quiet_libraries_unless_shown(cfg.progress)  # --no-progress or a log: no third-party bars either
    # 1. cheap checks first
    rank = detect_rank()
    if cfg.devices > 1 and rank.world > 1:
        raise ConfigError(
            f"--devices {cfg.devices} under {rank.launcher} (world size {rank.world}): the launcher already "
            "starts one process per device; drop --devices"
        )
    spec = model_spec(cfg.model, cfg.weights, cfg.revision, cfg.clip_len)
    dataset = open_dataset(cfg.dataset, cfg.data_root, cfg.split)
    refs = select_videos(dataset, cfg.videos)
    store = _open_store(cfg)
    if cfg.devices > 1 and not cfg.dry_run:
        if cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available()):
            have = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if cfg.devices > have:
                raise ConfigError(f"--devices {cfg.devices} but only {have} GPU(s) are visible")
        return launch_local(cfg, log)
    with _torch_threads(cfg.threads), _graceful_sigterm():
        return _run(cfg, rank, spec, dataset, refs, store, log, t_start)


@contextmanager
def _graceful_sigterm() -> Iterator[None]:
    """SIGTERM (scancel, torchrun stopping the other ranks, `kill`) ends the run like Ctrl-C: queued writes
    finish, complete videos commit, and claims are released at once instead of expiring later."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):  # someone else handles it: leave it to them
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(
    cfg: ExtractConfig,
    rank: RankInfo,
    spec: object,
    dataset: VideoDataset,
    refs: list[VideoRef],
    store: FeatureStore | None,
    log: Log,
    t_start: float,
) -> ExtractReport:
    if rank.world > 1:
        base_log = log

        def log(msg: str) -> None:
            base_log(rank.prefix + msg)

    # 2. the backbone
    run = run_options(cfg, rank.local_rank)
    cost = CostMeter(run.device, run.dtype)  # from before the weights load: Table 5's memory includes them
    backbone = load_backbone(spec, run)  # type: ignore[arg-type]
    backbone.host_float16 = True  # features come to the host as stored: float16, cast on the device
    blocks = backbone.resolve_blocks(cfg.blocks, cfg.heads)
    timesteps = cfg.timesteps or default_timesteps(backbone.family)
    if not backbone.is_diffusion and timesteps != (0,):
        raise ConfigError(f"{cfg.model} is not a diffusion model: it has no noise level; use --timesteps 0")
    if not backbone.is_diffusion and cfg.ensemble != 1:
        raise ConfigError(
            f"{cfg.model} is not a diffusion model: it has no noise to average; use --ensemble 1"
        )
    resolution, resize = recipe_resolution(cfg, backbone)
    notes: dict[str, object] = {"resize": resize} if resize else {}
    adapt = getattr(dataset, "for_video_model", None)
    if backbone.is_video and adapt is not None and backbone.clip_len is not None:
        dataset, notes["frames"] = adapt(backbone.clip_len)  # e.g. Cityscapes' sequence snippets
        refs = select_videos(dataset, cfg.videos)
        log(f"{cfg.dataset} for a video model: {notes['frames']['rule']}")  # type: ignore[index]
    recipe = build_recipe(cfg, backbone, resolution, notes)
    sizes = check_sizes(backbone, recipe, refs)
    if resize:
        shown = ", ".join(f"{h}x{w}" for h, w in sorted(set(sizes.values())))
        log(f"resolution preset {cfg.resize}: {resize['rule']}; input sizes {shown}")
    report = ExtractReport(recipe, "", store.location if store else cfg.store, timesteps, tuple(blocks))
    report.ranks = rank.world
    with _full_store_is_a_store_error(report.store):
        group = _group(store, cfg.dataset, recipe, cfg.dry_run)
        report.group = f"{cfg.dataset}/{recipe.name}"
        index = group.index() if group is not None else None
        if group is not None:  # a damaged commit record hides its video: recomputing would not show it
            group.check_readable(r.id for r in refs)
        todo = [r for r in refs if index is None or not index.has(r.id, timesteps, blocks)]
        report.total, report.cached = len(refs), len(refs) - len(todo)
        log(
            f"{report.group}: {report.cached} cached, {len(todo)} to compute "
            f"(T={','.join(map(str, timesteps))}; {len(blocks)} block(s))"
        )
        if cfg.dry_run or rank.world > 1:  # what the byte plan and the ranks' balanced shares need
            todo = with_frame_counts(todo)
        if cfg.dry_run:
            _plan(report, backbone, dataset, todo, cfg, sizes, timesteps, blocks, log)
            _log_disk(cfg.store, report.planned_bytes or 0, log)
            report.seconds = time.perf_counter() - t_start
            return report
        assert group is not None and index is not None
        for t in timesteps:  # also when all is cached: a lost or damaged timestep group is written anew
            write_timestep_attrs(group, t, backbone.noise_level(t))
        if not todo:
            report.seconds = time.perf_counter() - t_start
            return report
        job = _Job(
            backbone, dataset, group, index, cfg, timesteps, blocks, report, log, rank, compute_env(run), cost
        )
        job.run(todo)
        cost.save(group)  # beside the recipe (dvx/extract/cost.py); the fingerprint is untouched
    report.seconds = time.perf_counter() - t_start
    return report


_FULL = {errno.ENOSPC, errno.EDQUOT}  # errnos of a store that has no room left


@contextmanager
def _full_store_is_a_store_error(location: str) -> Iterator[None]:
    """A full disk or quota fails the small writes of this thread too (recipe group, claims, failure
    records): one line naming the store, like the array writes that fail on the writer thread."""
    try:
        yield
    except StoreError:  # the writer thread's (a StoreWriteError is an OSError too)
        raise
    except OSError as err:
        if err.errno in _FULL:
            raise store_write_error(location, err) from err
        raise


def _open_store(cfg: ExtractConfig) -> FeatureStore | None:
    if not cfg.dry_run:
        return FeatureStore.open(cfg.store, mode="a")
    try:  # a dry run never writes: read what exists; it fails on what the real run would fail on
        return FeatureStore.open(cfg.store, mode="r")
    except NoStoreError:  # nothing there yet: the real run creates the store
        return None


def _group(store: FeatureStore | None, dataset: str, recipe: Recipe, dry_run: bool) -> RecipeGroup | None:
    if store is None:
        return None
    if dry_run:
        return store.existing_group(dataset, recipe)
    return store.create_group(dataset, recipe)


def compute_env(run: RunOptions) -> dict[str, object]:
    """What produced a commit's features besides its recipe (recorded in every commit record): the device,
    compute dtype, CPU threads and batch size, and the versions of the libraries that decode, compute and
    store them. Two runs give the same bits only where these agree too (docs/store.md)."""
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return ""

    env: dict[str, object] = {
        "device": run.device,
        "dtype": run.dtype,
        "threads": torch.get_num_threads(),
        "batch_size": run.batch_size,
        "torch": torch.__version__,
        **{name: ver(name) for name in ("diffusers", "transformers", "zarr", "numpy", "av", "pillow")},
    }
    if run.device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(torch.device(run.device))
        env["cuda"] = torch.version.cuda or ""
    return env


_DONE, _BUSY, _SIBLING = "done", "busy", "sibling"


class _Job:
    """One rank's share of the work: claim a video, compute what it lacks, commit, release; wait for videos
    other live writers hold, and take over the claims of writers that died."""

    def __init__(
        self,
        backbone: Backbone,
        dataset: VideoDataset,
        group: RecipeGroup,
        index: IndexView,
        cfg: ExtractConfig,
        timesteps: tuple[int, ...],
        blocks: list[str],
        report: ExtractReport,
        log: Log,
        rank: RankInfo,
        env: dict[str, object] | None = None,
        cost: CostMeter | None = None,
    ) -> None:
        """``env``: the compute environment recorded in every commit (:func:`compute_env`)."""
        self.backbone, self.dataset, self.group, self.index = backbone, dataset, group, index
        self.cfg, self.timesteps, self.blocks = cfg, timesteps, blocks
        self.report, self.log, self.rank, self.env = report, log, rank, env or {}
        self.tmap = temporal_map(backbone)
        self.per_chunk = chunk_frames(backbone.clip_len, cfg.batch_size, self.tmap)
        self.previously_failed = set(group.failures())
        self.claims = Claims(group, cfg.claim_ttl, rank.rank, rank.world, rank.run_id)
        self.cost = cost or CostMeter(backbone.run.device, backbone.run.dtype)  # times the forward units
        #: reused host buffers (pinned on a GPU) for the features' device -> host copies (extract/hooks.py)
        on_gpu = torch.device(backbone.run.device).type == "cuda" and torch.cuda.is_available()
        self.host_buffers = HostBuffers(pinned=on_gpu)

    def run(self, todo: list[VideoRef]) -> None:
        refs = {r.id: r for r in todo}
        order = work_order(
            [(r.id, float(r.meta.get("n_frames", 1))) for r in todo], self.rank.rank, self.rank.world
        )
        show = self.cfg.progress and self.rank.local_rank == 0
        bar = Progress(len(todo), f"extract {self.cfg.model}", "video", enabled=show)
        max_poll = min(5.0, max(0.2, self.cfg.claim_ttl / 10))
        poll = 0.1
        pending = [refs[v] for v in order]
        waiting_on: set[str] = set()
        with (
            self.claims.heartbeating(),
            BackgroundWriter(
                max_pending=max(4, 2 * len(self.timesteps) * len(self.blocks)),
                location=self.group.backend.location,
            ) as writer,
        ):
            while pending:
                deferred = []
                for ref in pending:
                    bar.set_postfix(ref.id)
                    outcome = self._one(ref, writer)
                    if outcome == _BUSY:
                        deferred.append(ref)
                    elif outcome == _DONE:
                        bar.update(1)
                    # _SIBLING: another rank of this launch computes it; the launch fails if that rank dies
                progressed = len(deferred) < len(pending)
                if deferred:
                    busy = {r.id for r in deferred}
                    if busy != waiting_on:
                        shown = ", ".join(sorted(busy)[:5]) + (" ..." if len(busy) > 5 else "")
                        self.log(f"waiting for {len(busy)} video(s) another job is computing: {shown}")
                        waiting_on = busy
                    poll = 0.1 if progressed else min(max_poll, poll * 2)  # back off while nothing moves
                    time.sleep(poll)
                pending = deferred
        bar.close()
        lost = set(self.report.lost)
        self.report.computed = [v for v in self.report.computed if v not in lost]

    def _one(self, ref: VideoRef, writer: BackgroundWriter) -> str:
        """Handle one video: _DONE, _BUSY (another job holds it: try again later) or _SIBLING."""
        fresh: list[IndexView] = []  # the video's commits, if the claims asked for them to be read again

        def is_done() -> bool:
            fresh.append(self.group.video_index(ref.id))
            return not _missing(fresh[-1], ref.id, self.timesteps, self.blocks)[0]

        taken = self.claims.take(ref.id, is_done)
        if taken.outcome is Outcome.HELD_BY_OTHER:
            return _BUSY
        if taken.outcome is Outcome.HELD_BY_SIBLING:
            return _SIBLING
        if taken.outcome is Outcome.DONE_ELSEWHERE:
            self.report.others.append(ref.id)
            return _DONE
        if taken.outcome is Outcome.FAILED_IN_LAUNCH:  # another rank of this launch could not read it
            self.report.failed[ref.id] = taken.reason
            return _DONE
        assert taken.claim is not None
        queued = False
        try:
            queued = self._claimed(ref, taken.claim, writer, fresh[-1] if fresh else self.index)
        finally:
            if not queued:  # on success the commit job releases the claim after committing
                self.claims.release(taken.claim)
        return _DONE

    def _claimed(self, ref: VideoRef, claim: ClaimRecord, writer: BackgroundWriter, index: IndexView) -> bool:
        """Compute what ``index`` (the job's, or the video's commits read after its claim was seen taken or
        finished) lacks for the video and queue its writes and commit; False if nothing was queued."""
        cfg = self.cfg
        ts, bs = _missing(index, ref.id, self.timesteps, self.blocks)
        try:
            video = self.dataset.load(ref)
        except CorruptVideoError as err:
            hint = CorruptVideoError(ref.id, f"{err.reason} (use --skip-bad to record it and go on)")
            return self._unusable(ref, claim, err.reason, hint, err)
        vw = VideoWriter(self.group, ref.id, ts, bs, self.per_chunk, cfg.codec)
        try:
            names, time_map = self._compute(ref, video, ts, bs, vw, writer)
        except NonFiniteFeaturesError as err:
            return self._unusable(ref, claim, err.reason, err, err)
        writer.submit(self._commit, vw, claim, names, time_map, tuple(video.frames.shape[1:3]))
        self.report.computed.append(ref.id)
        return True

    def _unusable(
        self, ref: VideoRef, claim: ClaimRecord, reason: str, err: DvxError, cause: Exception
    ) -> bool:
        """A video that cannot be extracted (unreadable, non-finite features): the run stops with ``err``,
        or with --skip-bad the failure is recorded in the store and the run goes on."""
        self.claims.release(claim, FAILED, reason)
        if not self.cfg.skip_bad:
            raise err from cause
        record_failure(self.group, ref.id, reason)
        self.report.failed[ref.id] = reason
        self.log(f"skipped {ref.id}: {reason}")
        return False

    def _compute(
        self,
        ref: VideoRef,
        video: Video,
        ts: tuple[int, ...],
        bs: list[str],
        vw: VideoWriter,
        writer: BackgroundWriter,
    ) -> tuple[list[str], list[tuple[int, ...]]]:
        """Run every forward unit of ``video`` and queue its arrays (checked finite) for writing; returns the
        frame names and time map its commit records. A video whose ref names ``store_frames`` (e.g.
        Cityscapes' annotated frame inside its snippet) stores only the outputs covering those frames."""
        cfg, backbone = self.cfg, self.backbone
        recipe = self.report.recipe
        frames, names = sample_frames(video, cfg.frame_stride, cfg.max_frames)
        size = input_size(recipe.resolution, recipe.conditioning, video.frames.shape[1:3])
        backbone.check_resolution(size)
        units = plan_units(len(frames), backbone.clip_len, cfg.batch_size, self.tmap)
        keep = kept_outputs(units, names, ref.meta.get("store_frames"), ref.id)
        total = units[-1].store_start + units[-1].keep if keep is None else len(keep[1])
        held: dict[tuple[int, str], list[np.ndarray]] = {}
        for unit in units:
            lease = self.host_buffers.lease()  # the unit's host copies land in reused buffers
            with (
                self.cost.unit(
                    len(unit.frames), unit_forwards(backbone, unit, len(ts), cfg.ensemble, cfg.batch_size)
                ),
                lease.active(),
            ):
                feats = _run_unit(backbone, frames, unit, ref.id, cfg, size, ts, bs)
            self.cost.note_work(len(ts), cfg.ensemble)
            for t in ts:
                for b in bs:
                    computed = feats[t][b][: unit.keep]
                    if computed.dtype == torch.float16:  # cast on the device and found finite there
                        data = computed.numpy()
                    else:  # float32: its float16 copy is not finite (or a backbone that does not cast)
                        with np.errstate(over="ignore"):  # an overflow is reported by check_finite
                            data = computed.numpy().astype(np.float16)
                        check_finite(
                            computed,
                            data,
                            model=cfg.model,
                            dtype=backbone.run.dtype,
                            t=t,
                            block=b,
                            video=ref.id,
                            time_map=unit.time_map,
                            names=names,
                        )
                    if keep is None:
                        writer.submit(vw.write, t, b, unit.store_start, data, total)
                        self.report.bytes_written += data.nbytes
                    else:
                        picked = [
                            i - unit.store_start for i in keep[0] if 0 <= i - unit.store_start < unit.keep
                        ]
                        held.setdefault((t, b), []).append(data[picked])
            # runs after the unit's writes (the writer keeps the order): only then are its buffers free again
            writer.submit(lease.release)
        if keep is None:
            return names, [m for u in units for m in u.time_map]
        for (t, b), parts in held.items():
            data = np.concatenate(parts)
            writer.submit(vw.write, t, b, 0, data, total)
            self.report.bytes_written += data.nbytes
        return keep[1], keep[2]

    def _commit(
        self,
        vw: VideoWriter,
        claim: ClaimRecord,
        names: list[str],
        time_map: list[tuple[int, ...]],
        source_size: tuple[int, int],
    ) -> None:
        """Runs on the writer thread after the video's arrays: commit if the claim is still ours."""
        try:
            if not self.claims.still_holds(claim):
                # another job judged our claim expired and took the video over: leave it to them
                self.report.lost.append(vw.video)
                self.log(f"{vw.video}: claim taken over by another writer; not committing it")
                return
            vw.commit(names, time_map, source_size, self.env)
            if vw.video in self.previously_failed:  # readable now: forget the old failure once committed
                clear_failure(self.group, vw.video)
        finally:
            self.claims.release(claim)


def _missing(
    index: IndexView, video: str, timesteps: tuple[int, ...], blocks: list[str]
) -> tuple[tuple[int, ...], list[str]]:
    """The timesteps and blocks still to compute for ``video`` (a later run adding T computes only T)."""
    missing = index.missing(video, timesteps, blocks)
    ts = {t for t, _ in missing}
    bs = {b for _, b in missing}
    return tuple(t for t in timesteps if t in ts), [b for b in blocks if b in bs]


def kept_outputs(
    units: list[Unit], names: list[str], store_frames: Sequence[str] | None, video: str
) -> tuple[list[int], list[str], list[tuple[int, ...]]] | None:
    """For a video whose ref names ``store_frames``: the stored indices covering them, the kept frames' names
    and the time map into those names (the other frames are temporal context only). None: keep everything."""
    if not store_frames:
        return None
    wanted = set(store_frames)
    absent = wanted - set(names)
    if absent:
        raise DataError(f"{video}: frame(s) {sorted(absent)} to store are not among the frames read")
    kept_names = [n for n in names if n in wanted]
    position = {n: i for i, n in enumerate(kept_names)}
    indices, time_map = [], []
    for unit in units:
        for j, covered in enumerate(unit.time_map):
            mine = tuple(position[names[f]] for f in covered if names[f] in wanted)
            if mine:
                indices.append(unit.store_start + j)
                time_map.append(mine)
    return indices, kept_names, time_map


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


def unit_forwards(backbone: Backbone, unit: Unit, n_timesteps: int, ensemble: int, batch_size: int) -> int:
    """Network forward passes for one unit: diffusion models batch (item, T, member) samples by
    ``batch_size`` (an image unit's items are its frames, a clip is one item); encoders run once per batch."""
    if not backbone.is_diffusion:
        return 1 if backbone.is_video else -(-len(unit.frames) // batch_size)
    items = 1 if backbone.is_video else len(unit.frames)
    return -(-(items * n_timesteps * ensemble) // batch_size)


def plan_geometry(
    backbone: Backbone, size: tuple[int, int], blocks: list[str], t: int
) -> dict[str, tuple[int, int, int]]:
    """(C, h, w) per stored frame of ``blocks`` at input ``size``: hidden-state blocks from the config
    (:meth:`~dvx.extract.base.Backbone.block_shapes`, no weights), attention q/k blocks from one forward on
    a blank unit (only when some are asked for)."""
    known = backbone.block_shapes(size)
    rest = [b for b in blocks if b not in known]
    if rest:
        blank = torch.zeros(backbone.clip_len or 1, 3, *size)
        feats = backbone.features(blank, [t], rest, lambda *_: 0, 1)[t]
        known = {**known, **{b: tuple(int(v) for v in f.shape[1:]) for b, f in feats.items()}}
    return {b: known[b] for b in blocks}  # type: ignore[misc]


def _plan(
    report: ExtractReport,
    backbone: Backbone,
    dataset: VideoDataset,
    todo: list[VideoRef],
    cfg: ExtractConfig,
    sizes: dict[str, tuple[int, int]],
    timesteps: tuple[int, ...],
    blocks: list[str],
    log: Log,
) -> None:
    """--dry-run: every block's (C, h, w), and the bytes and forward passes the missing videos need.
    Geometry comes from the model's config (:meth:`~dvx.extract.base.Backbone.block_shapes`; no weights,
    no forward), frame counts from ``meta["n_frames"]`` (:func:`with_frame_counts`; a video is decoded only
    where that could not count)."""
    shapes: dict[tuple[int, int], dict[str, tuple[int, int, int]]] = {}
    for size in sorted(set(sizes.values())):
        shapes[size] = plan_geometry(backbone, size, blocks, timesteps[0])
        geometry = ", ".join(f"{b} {c}x{h}x{w}" for b, (c, h, w) in shapes[size].items())
        log(f"{size[0]}x{size[1]} input -> (C x h x w per stored frame) {geometry}")
    if shapes:
        report.geometry = next(iter(shapes.values()))
    tmap = temporal_map(backbone)
    total = forwards = 0
    for ref in todo:
        n = ref.meta.get("n_frames")
        size = sizes.get(ref.id)
        if n is None or size is None:
            try:
                video = dataset.load(ref)
            except CorruptVideoError:
                continue
            n = len(video.frames)
            size = input_size(report.recipe.resolution, report.recipe.conditioning, video.frames.shape[1:3])
            if size not in shapes:
                shapes[size] = plan_geometry(backbone, size, blocks, timesteps[0])
        per_stored = sum(int(np.prod(v)) * 2 for v in shapes[size].values())  # bytes, all blocks
        units = plan_units(
            stored_count(int(n), cfg.frame_stride, cfg.max_frames), backbone.clip_len, cfg.batch_size, tmap
        )
        kept = ref.meta.get("store_frames")
        stored = len(kept) if kept else units[-1].store_start + units[-1].keep
        total += stored * per_stored * len(timesteps)
        forwards += sum(
            unit_forwards(backbone, u, len(timesteps), cfg.ensemble, cfg.batch_size) for u in units
        )
    report.planned_bytes, report.planned_forwards = total, forwards


def _log_disk(location: str, need: int, log: Log) -> None:
    """Log the bytes a run needs against the free space where a local store (path or file://) lives."""
    if is_url(location):
        return
    probe = local_path(location)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    log(
        f"needs {human_bytes(need)}; {human_bytes(free)} free at {probe}"
        + ("  (NOT ENOUGH)" if need > free else "")
    )
