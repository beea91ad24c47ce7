"""JHMDB reader: ``Rename_Images/<class>/<video>/%05d.png`` frames, ``joint_positions/<class>/<video>/
joint_positions.mat`` joints, ``puppet_mask/<class>/<video>/puppet_mask.mat`` masks and the official split
files ``<class>_test_split<N>.txt`` (lines ``<video>.avi 1|2``: 1 train, 2 test).

Video ids are ``<class>__<video>`` (made store-safe with :func:`safe_id`): unique across classes without
relying on the video names. Joints are converted from 1-based MATLAB pixel coordinates to 0-based ones.
JHMDB has no visibility flags: a joint is *visible* when it lies inside the frame
(0 <= x < W and 0 <= y < H), the rule the PCK evaluation uses for its reference box.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dvx.data.base import Joints, Masks, Video, VideoDataset, VideoRef, safe_id
from dvx.data.layout import (
    SPLIT_SUFFIX,
    frame_count,
    locate,
    missing_error,
    parse_split,
    sorted_unique,
    split_file_classes,
    split_file_videos,
    subdirs,
)
from dvx.data.video_io import list_frame_files, read_frames
from dvx.errors import CorruptVideoError, DataError

#: JHMDB joint order (``pos_img[:, j, :]``), as in the JHMDB README and mmpose's jhmdb dataset info
JOINT_NAMES: tuple[str, ...] = (
    "neck",
    "belly",
    "face",
    "right_shoulder",
    "left_shoulder",
    "right_hip",
    "left_hip",
    "right_elbow",
    "left_elbow",
    "right_knee",
    "left_knee",
    "right_wrist",
    "left_wrist",
    "right_ankle",
    "left_ankle",
)
SPLIT_FOLDERS = ("splits", "JHMDB_splits", "jhmdb_splits")
FRAME_EXTS = (".png", ".jpg", ".jpeg")


def _load_mat(path: Path, key: str, video_id: str) -> np.ndarray:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    if not path.is_file():
        raise DataError(f"jhmdb: video {video_id!r} has no {path.name} (looked for {path})")
    try:
        mat: dict[str, Any] = loadmat(str(path))
    except (MatReadError, ValueError, NotImplementedError, OSError, TypeError) as err:
        raise DataError(f"jhmdb: cannot read {path}: {err}") from err
    if key not in mat:
        have = ", ".join(k for k in mat if not k.startswith("_"))
        raise DataError(f"jhmdb: {path} has no {key!r} variable (has: {have})")
    return np.asarray(mat[key])


class JhmdbDataset(VideoDataset):
    """JHMDB at ``root`` (the folder holding ``Rename_Images/``, or a parent holding ``JHMDB/``).

    ``split`` is "train1".."train3" or "test1".."test3" (needs a split folder: ``splits/`` or
    ``JHMDB_splits/`` beside ``Rename_Images/``, or in its parent).
    """

    name = "jhmdb"
    annotations = frozenset({"joints", "masks", "action"})
    probe_splits = ("train1", "test1")

    def __init__(self, root: str | Path, split: str | None = None) -> None:
        super().__init__(root, split)
        if split is not None:
            parse_split(split, self.name)
        found = locate(self.root, lambda p: (p / "Rename_Images").is_dir(), "JHMDB", names=("JHMDB",))
        if found is None:
            raise DataError(f"jhmdb: no Rename_Images/<class>/<video>/ under {self.root} (nor under JHMDB/)")
        self.dataset_dir = found
        self.frames_dir = found / "Rename_Images"
        self.splits_dir = self._find_splits()
        self._refs: list[VideoRef] | None = None
        self._classes: list[str] | None = None

    def _find_splits(self) -> Path | None:
        for base in (self.dataset_dir, self.dataset_dir.parent):
            for name in SPLIT_FOLDERS:
                folder = base / name
                if not folder.is_dir():
                    continue
                for cand in (folder, *subdirs(folder)):
                    if any(cand.glob(f"*{SPLIT_SUFFIX}*.txt")):
                        return cand
        return None

    # ---- classes and listing ---------------------------------------------------------------------
    def classes(self) -> list[str]:
        """Sorted class names: from the split files when present, else the class folders."""
        if self._classes is None:
            if self.splits_dir is not None:
                names = split_file_classes(self.splits_dir)
            else:
                names = {p.name for p in subdirs(self.frames_dir)}
            self._classes = sorted(names)
        return list(self._classes)

    def _ref(self, cls: str, video: str) -> VideoRef:
        classes = self.classes()
        if cls not in classes:
            raise DataError(f"jhmdb: class folder {cls!r} has no split files in {self.splits_dir}")
        return VideoRef(
            id=safe_id(f"{cls}__{video}"),
            path=self.frames_dir / cls / video,
            label=classes.index(cls),
            meta={"class": cls, "video": video, **frame_count(self.frames_dir / cls / video, FRAME_EXTS)},
        )

    def videos(self) -> list[VideoRef]:
        if self._refs is None:
            if self.split is not None:
                self._refs = self.split_videos(self.split)
            else:
                refs = [self._ref(c.name, v.name) for c in subdirs(self.frames_dir) for v in subdirs(c)]
                self._refs = sorted_unique(refs, self.name)
        return list(self._refs)

    def split_videos(self, split: str) -> list[VideoRef]:
        kind, index = parse_split(split, self.name)
        if self.splits_dir is None:
            raise DataError(
                f"jhmdb: no split files (<class>_test_split{index}.txt in {' or '.join(SPLIT_FOLDERS)}) "
                f"under {self.dataset_dir}"
            )
        refs, missing = [], []
        for cls in self.classes():
            for name in split_file_videos("jhmdb", self.splits_dir, cls, index, kind, "1|2"):
                video = Path(name).stem
                if not (self.frames_dir / cls / video).is_dir():
                    missing.append(f"{cls}/{video}")
                refs.append(self._ref(cls, video))
        if missing:
            raise missing_error(self.name, split, missing, self.frames_dir)
        return sorted_unique(refs, self.name)

    # ---- decoding and annotations ----------------------------------------------------------------
    def _frame_files(self, ref: VideoRef) -> list[Path]:
        files = list_frame_files(ref.path, FRAME_EXTS)
        if not files:
            raise CorruptVideoError(ref.id, f"no frame images in {ref.path}")
        return files

    def load(self, ref: VideoRef) -> Video:
        files = self._frame_files(ref)
        return Video(id=ref.id, frames=read_frames(files, ref.id), frame_names=[p.stem for p in files])

    def _annotation_path(self, ref: VideoRef, folder: str, filename: str) -> Path:
        cls, video = ref.meta.get("class", ref.path.parent.name), ref.meta.get("video", ref.path.name)
        return self.dataset_dir / folder / cls / video / filename

    def _frame_size(self, files: list[Path], video_id: str) -> tuple[int, int]:
        try:
            with Image.open(files[0]) as im:
                return im.size  # (W, H)
        except OSError as err:
            raise CorruptVideoError(video_id, f"{files[0].name}: {err}") from err

    def joints(self, ref: VideoRef) -> Joints:
        """The 15 joints of every frame, 0-based pixel (x, y); ``visible`` = inside the frame."""
        path = self._annotation_path(ref, "joint_positions", "joint_positions.mat")
        pos = _load_mat(path, "pos_img", ref.id)
        files = self._frame_files(ref)
        if pos.ndim != 3 or pos.shape[0] != 2 or pos.shape[1] != len(JOINT_NAMES):
            raise DataError(f"jhmdb: pos_img in {path} is {pos.shape}, expected (2, 15, frames)")
        if pos.shape[2] != len(files):
            raise DataError(
                f"jhmdb: {path} has joints for {pos.shape[2]} frames but {ref.path} holds {len(files)} frames"
            )
        xy = np.ascontiguousarray(pos.transpose(2, 1, 0), dtype=np.float32) - 1.0  # (F, J, 2), 0-based
        width, height = self._frame_size(files, ref.id)
        x, y = xy[..., 0], xy[..., 1]
        with np.errstate(invalid="ignore"):
            visible = np.isfinite(x) & np.isfinite(y) & (x >= 0) & (x < width) & (y >= 0) & (y < height)
        return Joints(xy=xy, visible=visible, frame_names=[p.stem for p in files], names=list(JOINT_NAMES))

    def masks(self, ref: VideoRef) -> Masks:
        """The puppet masks (1 = person, 0 = background) of every frame."""
        path = self._annotation_path(ref, "puppet_mask", "puppet_mask.mat")
        mask = _load_mat(path, "part_mask", ref.id)
        files = self._frame_files(ref)
        width, height = self._frame_size(files, ref.id)
        if mask.ndim == 2:
            mask = mask[..., None]
        if mask.shape != (height, width, len(files)):
            expected = (height, width, len(files))
            raise DataError(f"jhmdb: part_mask in {path} is {mask.shape}, expected (H, W, F) = {expected}")
        labels = np.ascontiguousarray(mask.transpose(2, 0, 1) > 0, dtype=np.uint8)
        return Masks(labels=labels, frame_names=[p.stem for p in files])
