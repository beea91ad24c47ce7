"""The synthetic dynamic world: ``dvx synth`` writes it in the real datasets' layouts, and
:class:`SyntheticWorld` reads it back (a real round trip through the files, never a regeneration).

The generator itself lives in :mod:`dvx.data.synth_render` and the layout writers in
:mod:`dvx.data.synth_layouts`; this module holds the world-level runner (:func:`write_world`, driven by a
:class:`SynthConfig`), the deterministic stratified train/test split, and the dataset reader.
See docs/synthetic.md for what the world contains and every file it writes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from dvx import __version__
from dvx.data import synth_layouts as layouts
from dvx.data.base import Joints, Masks, PointTracks, Video, VideoDataset, VideoRef
from dvx.data.images import read_id_png, read_label_png, read_npy
from dvx.data.synth_render import (
    BACKGROUND_DEPTH,
    BACKGROUND_POINTS,
    GENERATOR_VERSION,
    MOTION_CLASSES,
    POINTS_PER_SPRITE,
    SEMANTIC_CLASSES,
    SHAPE_CLASSES,
    SyntheticVideo,
    Tracks,
    WorldParams,
    generate_video,
    max_speed,
)
from dvx.data.video_io import read_frames
from dvx.errors import ConfigError, CorruptVideoError, DataError, OutputError

__all__ = [
    "SPLITS",
    "SynthConfig",
    "SyntheticWorld",
    "Tracks",
    "WorldSummary",
    "stratified_split",
    "video_id",
    "write_world",
]

WORLD_FILE = "world.json"
WORLD_FORMAT = "dvx-synthetic-world"
SPLITS: tuple[str, ...] = ("train", "test")
#: how the world's train/test split is named in each layout
LAYOUT_SPLITS: dict[str, dict[str, str]] = {
    "davis": {"train": "train", "test": "val"},  # DAVIS/ImageSets/2017/<name>.txt
    "cityscapes": {"train": "train", "test": "val"},
    "movi": {"train": "train", "test": "validation"},
    "ucf101": {"train": "trainlist01", "test": "testlist01"},
    "jhmdb": {"train": "1", "test": "2"},  # the number after "<video>.avi" in <class>_test_split1.txt
}
#: bounds of a world (each video is generated in memory before it is written)
MAX_VIDEOS, MAX_FRAMES, MAX_SIDE, MAX_FPS = 100_000, 10_000, 2048, 1000.0
MAX_VIDEO_BYTES = 2**30
#: what ``dvx synth`` owns inside its output folder (and may replace with --overwrite)
MANAGED = ("DAVIS", "UCF-101", "ucfTrainTestlist", "cityscapes", "movi", "JHMDB", "extra", WORLD_FILE)


def video_id(index: int) -> str:
    return f"synth_{index:06d}"


@dataclass(frozen=True)
class SynthConfig:
    """Options of ``dvx synth`` (see docs/synthetic.md)."""

    out: Path
    videos: int = 14  # 2 per motion class
    frames: int = 16
    height: int = 128
    width: int = 128
    seed: int = 0
    colour_coded: bool = False
    brick_wall_every: int = 2
    speed: int = 0  # the most px per frame of a moving actor or pan (0: shorter side / 32)
    sprite_scale: float = 1.0
    all_sprites_move: bool = False
    test_fraction: float = 0.3
    fps: float = 8.0
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.videos < 1:
            raise ConfigError(f"--videos must be >= 1, got {self.videos}")
        if self.videos > MAX_VIDEOS:
            raise ConfigError(f"--videos must be at most {MAX_VIDEOS}, got {self.videos}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"test fraction must lie in (0, 1), got {self.test_fraction}")
        if not 0 < self.fps <= MAX_FPS:  # NaN too
            raise ConfigError(f"--fps must lie in (0, {MAX_FPS:.0f}], got {self.fps}")
        if max(self.height, self.width) > MAX_SIDE or self.frames > MAX_FRAMES:
            raise ConfigError(
                f"a synthetic video is at most {MAX_FRAMES} frames of {MAX_SIDE}x{MAX_SIDE} px, got "
                f"{self.frames} frames of {self.height}x{self.width}"
            )
        if self.frames * self.height * self.width * 3 > MAX_VIDEO_BYTES:
            raise ConfigError(
                f"{self.frames} frames of {self.height}x{self.width} px is more than "
                f"{MAX_VIDEO_BYTES // 2**30} GiB per video (each video is generated in memory); use fewer "
                "frames or a smaller --size"
            )
        if self.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {self.seed}")
        self.params()  # validates frames, size, brick_wall_every

    def params(self) -> WorldParams:
        return WorldParams(
            self.frames,
            self.height,
            self.width,
            self.colour_coded,
            self.brick_wall_every,
            self.speed,
            self.sprite_scale,
            self.all_sprites_move,
        )


@dataclass(frozen=True)
class WorldSummary:
    root: Path
    videos: int
    train: int
    test: int
    layouts: list[str] = field(default_factory=list)


def stratified_split(labels: Sequence[int], test_fraction: float) -> list[str]:
    """Deterministic split stratified by class: in each class with n >= 2 videos (in index order), the first
    ``clip(round(n * test_fraction), 1, n - 1)`` are "test" (as UCF101's split 1 tests the lowest groups);
    a class with a single video keeps it in "train"."""
    out = ["train"] * len(labels)
    members: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        members.setdefault(label, []).append(i)
    for idx in members.values():
        n = len(idx)
        if n >= 2:
            for i in idx[: min(max(round(n * test_fraction), 1), n - 1)]:
                out[i] = "test"
    return out


# ---- the runner -------------------------------------------------------------------------------------
def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {str(out)!r} is a file; give a folder")
    if out.exists() and any(out.iterdir()):
        partial = not (out / WORLD_FILE).exists()  # an interrupted `dvx synth` (world.json comes last)
        if partial and not all(p.name in MANAGED or p.name == WORLD_FILE + ".tmp" for p in out.iterdir()):
            raise DataError(
                f"--out {str(out)!r} is not empty and holds no synthetic world; give an empty folder"
            )
        if not overwrite:
            what = "an unfinished synthetic world" if partial else "a synthetic world"
            raise DataError(f"{str(out)!r} already holds {what}; pass --overwrite to replace it")
        (out / WORLD_FILE).unlink(missing_ok=True)  # first: a crash below leaves no world.json
        for name in MANAGED:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _entry(video: SyntheticVideo, vid: str, split: str, files: dict[str, str | None]) -> dict[str, Any]:
    meta = video.plan.to_json()
    for sprite, mean in zip(meta["sprites"], video.sprite_mean_rgb, strict=True):
        sprite["mean_rgb"] = [round(float(v), 2) for v in mean]
    return {"id": vid, "split": split, **meta, "files": files}


def write_world(cfg: SynthConfig, progress: Callable[[str], None] | None = None) -> WorldSummary:
    """Generate ``cfg.videos`` videos and write them in every layout; ``world.json`` is written last, so a
    failed write (a full disk, no permission) leaves no world (one line says so, and --overwrite replaces
    what was written)."""
    out = Path(cfg.out).expanduser()
    try:
        _prepare_out(out, cfg.overwrite)
        return _write_world(out, cfg, progress)
    except OSError as err:
        raise OutputError(
            f"writing the synthetic world to {str(out)!r} failed: {err.strerror or err}; nothing there is a "
            "world yet (world.json is written last): fix that and run again with --overwrite"
        ) from err


def _write_world(out: Path, cfg: SynthConfig, progress: Callable[[str], None] | None) -> WorldSummary:
    params = cfg.params()
    labels = [i % len(MOTION_CLASSES) for i in range(cfg.videos)]
    splits = stratified_split(labels, cfg.test_fraction)
    davis_sets: dict[str, list[str]] = {"train": [], "test": []}
    ucf_train: list[tuple[str, int]] = []
    ucf_test: list[str] = []
    jhmdb: dict[str, list[tuple[str, bool]]] = {}
    groups: dict[str, int] = {}
    entries = []
    for i in range(cfg.videos):
        video = generate_video(cfg.seed, i, params)
        plan, vid, split = video.plan, video_id(i), splits[i]
        groups[plan.motion_class] = groups.get(plan.motion_class, 0) + 1
        mid = cfg.frames // 2
        ucf_rel = layouts.ucf_relpath(plan.motion_class, groups[plan.motion_class])
        files: dict[str, str | None] = {
            "davis": layouts.write_davis(out, vid, video),
            "ucf101": layouts.write_ucf(out, ucf_rel, video, cfg.fps),
            "cityscapes": layouts.write_cityscapes(
                out, LAYOUT_SPLITS["cityscapes"][split], layouts.cityscapes_name(i, mid), video, mid
            ),
            "movi": layouts.write_movi(out, LAYOUT_SPLITS["movi"][split], vid, video),
            "jhmdb": None,
            "tracks": layouts.write_tracks(out, vid, video.tracks),
        }
        if plan.sprites:  # brick walls have no objects: not listed for DAVIS, no joints for JHMDB
            davis_sets[split].append(vid)
            files["jhmdb"] = layouts.write_jhmdb(out, plan.motion_class, vid, video)
            jhmdb.setdefault(plan.motion_class, []).append((vid, split == "test"))
        if split == "train":
            ucf_train.append((ucf_rel, plan.label))
        else:
            ucf_test.append(ucf_rel)
        entry = _entry(video, vid, split, files)
        entry["cityscapes_frame"] = mid
        entries.append(entry)
        if progress:
            progress(f"{vid} {plan.motion_class} ({plan.kind}, {split})")
    layouts.write_davis_imagesets(out, davis_sets["train"], davis_sets["test"])
    layouts.write_ucf_splits(out, [layouts.ucf_class_name(c) for c in MOTION_CLASSES], ucf_train, ucf_test)
    layouts.write_jhmdb_splits(out, jhmdb)
    world = {
        "format": WORLD_FORMAT,
        "generator_version": GENERATOR_VERSION,
        "dvx_version": __version__,
        "seed": cfg.seed,
        "num_videos": cfg.videos,
        "frames": cfg.frames,
        "height": cfg.height,
        "width": cfg.width,
        "fps": cfg.fps,
        "colour_coded": cfg.colour_coded,
        "brick_wall_every": cfg.brick_wall_every,
        "speed": cfg.params().speed,
        "max_speed": max_speed(cfg.params()),
        "sprite_scale": cfg.sprite_scale,
        "all_sprites_move": cfg.all_sprites_move,
        "test_fraction": cfg.test_fraction,
        "motion_classes": list(MOTION_CLASSES),
        "ucf_classes": [layouts.ucf_class_name(c) for c in MOTION_CLASSES],
        "semantic_classes": list(SEMANTIC_CLASSES),
        "shape_classes": list(SHAPE_CLASSES),
        "background_depth": BACKGROUND_DEPTH,
        "points_per_sprite": POINTS_PER_SPRITE,
        "background_points": BACKGROUND_POINTS,
        "camera": layouts.cityscapes_camera(cfg.height, cfg.width),
        "layout_splits": LAYOUT_SPLITS,
        "videos": entries,
    }
    tmp = out / (WORLD_FILE + ".tmp")
    tmp.write_text(json.dumps(world, indent=1))
    tmp.replace(out / WORLD_FILE)
    n_test = splits.count("test")
    return WorldSummary(
        out, cfg.videos, cfg.videos - n_test, n_test, ["DAVIS", "UCF-101", "cityscapes", "movi", "JHMDB"]
    )


# ---- the reader -------------------------------------------------------------------------------------
def read_world(root: Path) -> dict[str, Any]:
    path = root / WORLD_FILE
    if not path.is_file():
        raise DataError(f"no {WORLD_FILE} under {str(root)!r}: run `dvx synth --out DIR` first")
    try:
        world = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(
            f"{path} is not readable JSON ({err}); regenerate with `dvx synth --out DIR --overwrite`"
        ) from err
    if not isinstance(world, dict) or world.get("format") != WORLD_FORMAT:
        raise DataError(
            f"{path} is not a dvx synthetic world; regenerate with `dvx synth --out DIR --overwrite`"
        )
    if world.get("generator_version") != GENERATOR_VERSION:
        raise DataError(
            f"{path} was written by generator version {world.get('generator_version')}, this dvx reads "
            f"version {GENERATOR_VERSION}; regenerate with `dvx synth --out DIR --overwrite`"
        )
    return world


def _check_split(split: str | None, allow_none: bool) -> None:
    if (split is None and not allow_none) or (split is not None and split not in SPLITS):
        raise DataError(f"the synthetic world has splits 'train' and 'test', not {split!r}")


class SyntheticWorld(VideoDataset):
    """A ``dvx synth`` output folder read back from its files: DAVIS-layout JPEG frames, palette masks,
    MOVi-layout instance ids and depth, ``extra/`` point tracks and ``world.json`` metadata.

    ``split`` is None (every video), "train" or "test". ``ref.label`` is the motion class index and
    ``ref.meta`` the video's ``world.json`` entry.
    """

    name: ClassVar[str] = "synthetic"
    annotations: ClassVar[frozenset[str]] = frozenset(
        {"masks", "joints", "action", "semantic", "depth", "instances", "tracks", "point_tracks"}
    )
    probe_splits: ClassVar[tuple[str, str] | None] = ("train", "test")

    def __init__(self, root: str | Path, split: str | None = None) -> None:
        super().__init__(root, split)
        _check_split(split, allow_none=True)
        self.world = read_world(self.root)
        self._entries: dict[str, dict[str, Any]] = {e["id"]: e for e in self.world["videos"]}
        self.frame_names = [f"{t:05d}" for t in range(int(self.world["frames"]))]

    # ---- listing ------------------------------------------------------------------------------------
    def _ref(self, entry: dict[str, Any]) -> VideoRef:
        return VideoRef(
            id=entry["id"],
            path=self.root / entry["files"]["davis"],
            label=int(entry["label"]),
            meta={**entry, "n_frames": len(self.frame_names)},
        )

    def _select(self, split: str | None) -> list[VideoRef]:
        return [
            self._ref(e) for vid, e in sorted(self._entries.items()) if split is None or e["split"] == split
        ]

    def videos(self) -> list[VideoRef]:
        return self._select(self.split)

    def split_videos(self, split: str) -> list[VideoRef]:
        _check_split(split, allow_none=False)
        return self._select(split)

    def classes(self) -> list[str]:
        return list(self.world["motion_classes"])

    def info(self, ref: VideoRef) -> dict[str, Any]:
        """The video's ``world.json`` entry (motion class, kind, split, sprites, camera, files)."""
        try:
            return self._entries[ref.id]
        except KeyError:
            raise DataError(f"synthetic: no video {ref.id!r} in {self.root / WORLD_FILE}") from None

    def _path(self, ref: VideoRef, rel: str | None, what: str) -> Path:
        if rel is None:
            raise DataError(f"synthetic video {ref.id!r} has no {what}")
        path = self.root / rel
        if not path.exists():
            raise DataError(f"synthetic video {ref.id!r}: {what} {str(path)!r} is missing; rerun `dvx synth`")
        return path

    def _frame_files(self, ref: VideoRef, folder: Path, pattern: str) -> list[Path]:
        files = sorted(folder.glob(pattern))
        if [p.stem for p in files] != self.frame_names:
            raise CorruptVideoError(
                ref.id, f"{folder} holds {len(files)} {pattern} files, expected {len(self.frame_names)}"
            )
        return files

    def _check_size(self, ref: VideoRef, t: int, array: np.ndarray, what: str) -> None:
        size = (int(self.world["height"]), int(self.world["width"]))
        if array.shape[:2] != size:
            raise CorruptVideoError(ref.id, f"{what} frame {t} is {array.shape[:2]}, expected {size}")

    def _stack(self, ref: VideoRef, arrays: list[np.ndarray], what: str) -> np.ndarray:
        for t, a in enumerate(arrays):
            self._check_size(ref, t, a, what)
        return np.stack(arrays)

    # ---- frames -------------------------------------------------------------------------------------
    def load(self, ref: VideoRef) -> Video:
        folder = self._path(ref, self.info(ref)["files"]["davis"], "frame folder")
        files = self._frame_files(ref, folder, "*.jpg")
        frames = read_frames(files, ref.id)
        self._check_size(ref, 0, frames[0], "RGB")  # read_frames checked the others against the first
        return Video(ref.id, frames, [p.stem for p in files], fps=float(self.world["fps"]))

    # ---- annotations --------------------------------------------------------------------------------
    def _mask_files(self, ref: VideoRef) -> list[Path]:
        frames = self._path(ref, self.info(ref)["files"]["davis"], "frame folder")
        return self._frame_files(ref, frames.parents[2] / "Annotations" / "480p" / frames.name, "*.png")

    def masks(self, ref: VideoRef) -> Masks:
        """DAVIS-2017 palette masks: 0 background, k = sprite k (all frames annotated)."""
        read = [read_label_png(p) for p in self._mask_files(ref)]
        return Masks(self._stack(ref, [a for a, _ in read], "mask"), list(self.frame_names), read[0][1])

    def first_mask(self, ref: VideoRef) -> np.ndarray:
        """Frame 0's mask alone."""
        return self._stack(ref, [read_label_png(self._mask_files(ref)[0])[0]], "mask")[0]

    def instances(self, ref: VideoRef) -> np.ndarray:
        """(F, H, W) int32 instance ids from the MOVi-layout segmentations (0 = background)."""
        folder = self._path(ref, self.info(ref)["files"]["movi"], "MOVi export") / "segmentations"
        arrays = [read_id_png(p, ref.id) for p in self._frame_files(ref, folder, "*.png")]
        return self._stack(ref, arrays, "segmentation")

    def semantic(self, ref: VideoRef) -> np.ndarray:
        """(F, H, W) uint8 ids into ``world['semantic_classes']``: the instance files mapped through the
        sprites' classes recorded in world.json (no ignore pixels: every pixel is labelled)."""
        lut = np.zeros(256, dtype=np.uint8)
        for sprite in self.info(ref)["sprites"]:
            lut[int(sprite["instance"])] = int(sprite["semantic_id"])
        return lut[self.instances(ref)]

    def depth(self, ref: VideoRef) -> np.ndarray:
        """(F, H, W) float32 depth from the MOVi-layout ``depth/%05d.npy`` files."""
        folder = self._path(ref, self.info(ref)["files"]["movi"], "MOVi export") / "depth"
        arrays = [read_npy(p, ref.id).astype(np.float32) for p in self._frame_files(ref, folder, "*.npy")]
        return self._stack(ref, arrays, "depth")

    def tracks(self, ref: VideoRef) -> Tracks:
        """Point tracks from ``extra/<id>.npz``: POINTS_PER_SPRITE points per sprite, then the background."""
        path = self._path(ref, self.info(ref)["files"]["tracks"], "track file")
        try:
            with np.load(path) as z:
                xy, occluded, owner = z["xy"], z["occluded"], z["owner"]
        except (OSError, ValueError, KeyError) as err:
            raise CorruptVideoError(ref.id, f"{path.name}: {err}") from err
        if (
            xy.shape[0] != len(self.frame_names)
            or occluded.shape != xy.shape[:2]
            or owner.shape != xy.shape[1:2]
        ):
            raise CorruptVideoError(ref.id, f"{path.name}: inconsistent shapes {xy.shape} {occluded.shape}")
        return Tracks(
            xy.astype(np.float32), occluded.astype(bool), owner.astype(np.int32), list(self.frame_names)
        )

    def point_tracks(self, ref: VideoRef) -> PointTracks:
        """The tracks in TAP-Vid's layout: (N, F, 2) positions divided by the frame size (W, H), so that
        ``points * (W, H)`` is the 0-based pixel position, as in TAP-Vid's pickles; (N, F) occlusion."""
        tracks = self.tracks(ref)
        size = np.array([float(self.world["width"]), float(self.world["height"])], dtype=np.float32)
        points = (tracks.xy / size).transpose(1, 0, 2).astype(np.float32)
        return PointTracks(points, np.ascontiguousarray(tracks.occluded.T), list(tracks.frame_names))

    def joints(self, ref: VideoRef) -> Joints:
        """The actor's (instance 1's) tracked points as keypoints; visible = not occluded."""
        if not self.info(ref)["sprites"]:
            raise DataError(f"synthetic video {ref.id!r} is a brick wall: no sprite, hence no joints")
        tracks = self.tracks(ref)
        on = tracks.owner == 1
        names = [f"point{j:02d}" for j in range(int(on.sum()))]
        return Joints(tracks.xy[:, on], tracks.visible[:, on], list(self.frame_names), names)
