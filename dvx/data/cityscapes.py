"""Cityscapes reader: ``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` as 1-frame videos with ``gtFine``
semantic and instance labels and depth from ``disparity`` + ``camera``.

- semantic: ``<name>_gtFine_labelTrainIds.png``, else ``<name>_gtFine_labelIds.png`` mapped to the 19 train
  ids with the official label table (cityscapesScripts ``helpers/labels.py``); everything else -> 255.
- depth: disparity PNG value p (16 bit): d = (p - 1) / 256 for p > 0, invalid for p == 0 (and d <= 0);
  depth = baseline * fx / d in metres, NaN where invalid; baseline and fx from
  ``camera/<split>/<city>/<name>_camera.json`` (``extrinsic.baseline``, ``intrinsic.fx``), or
  :data:`DEFAULT_BASELINE_M` / :data:`DEFAULT_FX_PX` when that file is missing.
- instances: ``<name>_gtFine_instanceIds.png``; values >= 1000 are instances (label id * 1000 + k) and are
  kept as they are; values < 1000 (stuff, or a crowd region without instances) become 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dvx.data.base import Video, VideoDataset, VideoRef, safe_id
from dvx.data.images import read_id_png, read_rgb
from dvx.data.layout import locate, sorted_unique, subdirs
from dvx.errors import DataError

#: label id -> train id for the 19 evaluated classes (cityscapesScripts labels.py); other ids -> 255
LABEL_TO_TRAIN_ID: dict[int, int] = {
    7: 0,  # road
    8: 1,  # sidewalk
    11: 2,  # building
    12: 3,  # wall
    13: 4,  # fence
    17: 5,  # pole
    19: 6,  # traffic light
    20: 7,  # traffic sign
    21: 8,  # vegetation
    22: 9,  # terrain
    23: 10,  # sky
    24: 11,  # person
    25: 12,  # rider
    26: 13,  # car
    27: 14,  # truck
    28: 15,  # bus
    31: 16,  # train
    32: 17,  # motorcycle
    33: 18,  # bicycle
}
TRAIN_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip
IGNORE = 255
#: used when a frame has no camera json: the values of a real Cityscapes camera file (the commonly quoted
#: example); the rigs of other sequences differ by a few percent (baseline ~0.21-0.22 m, fx ~2260-2270 px)
DEFAULT_BASELINE_M = 0.209313
DEFAULT_FX_PX = 2262.52

_LUT = np.full(256, IGNORE, dtype=np.uint8)
for _id, _train in LABEL_TO_TRAIN_ID.items():
    _LUT[_id] = _train


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map Cityscapes label ids (uint8 array) to the 19 train ids, 255 elsewhere."""
    return _LUT[np.asarray(label_ids, dtype=np.uint8)]


def disparity_to_depth(raw: np.ndarray, baseline: float, fx: float) -> np.ndarray:
    """Depth in metres (float32, NaN where invalid) from a raw 16-bit Cityscapes disparity image."""
    p = np.asarray(raw, dtype=np.float64)
    d = (p - 1.0) / 256.0
    valid = (p > 0) & (d > 0)
    depth = np.full(p.shape, np.nan, dtype=np.float32)
    depth[valid] = (baseline * fx / d[valid]).astype(np.float32)
    return depth


class CityscapesDataset(VideoDataset):
    """Cityscapes at ``root`` (the folder holding ``leftImg8bit/``, or a parent). ``split`` is a folder of
    ``leftImg8bit`` ("train", "val", "test", ...); without it every split present is listed. Each image is a
    1-frame video with id ``<city>_<seq>_<frame>`` and frame name the same."""

    name = "cityscapes"
    annotations = frozenset({"semantic", "depth", "instances"})
    probe_splits = ("train", "val")

    def __init__(self, root: str | Path, split: str | None = None) -> None:
        super().__init__(root, split)
        found = locate(self.root, lambda p: (p / "leftImg8bit").is_dir(), "Cityscapes", names=("cityscapes",))
        if found is None:
            raise DataError(f"cityscapes: no leftImg8bit/<split>/<city>/ under {self.root}")
        self.dataset_dir = found
        self.images_dir = found / "leftImg8bit"
        present = [p.name for p in subdirs(self.images_dir)]
        if split is not None and split not in present:
            raise DataError(
                f"cityscapes: no split {split!r} in {self.images_dir} (present: {', '.join(present) or '-'})"
            )
        self.splits = [split] if split is not None else present
        self._refs: list[VideoRef] | None = None

    def split_videos(self, split: str) -> list[VideoRef]:
        """A split is a ``leftImg8bit`` folder (Cityscapes has no split files)."""
        return type(self)(self.dataset_dir, split).videos()

    def videos(self) -> list[VideoRef]:
        if self._refs is None:
            suffix = "_leftImg8bit.png"
            refs = [
                VideoRef(
                    id=safe_id(path.name[: -len(suffix)]),
                    path=path,
                    meta={
                        "split": split,
                        "city": city.name,
                        "name": path.name[: -len(suffix)],
                        "n_frames": 1,
                    },
                )
                for split in self.splits
                for city in subdirs(self.images_dir / split)
                for path in sorted(city.glob(f"*{suffix}"))
            ]
            if not refs:
                raise DataError(f"cityscapes: no *_leftImg8bit.png images under {self.images_dir}")
            self._refs = sorted_unique(refs, self.name)
        return list(self._refs)

    def load(self, ref: VideoRef) -> Video:
        frame = read_rgb(ref.path, ref.id)
        return Video(id=ref.id, frames=frame[None], frame_names=[ref.meta["name"]])

    # ---- annotations -----------------------------------------------------------------------------
    def _file(self, ref: VideoRef, folder: str, suffix: str) -> Path:
        meta = ref.meta
        return self.dataset_dir / folder / meta["split"] / meta["city"] / f"{meta['name']}{suffix}"

    def _checked(self, ref: VideoRef, arr: np.ndarray, path: Path) -> np.ndarray:
        from PIL import Image

        with Image.open(ref.path) as im:
            width, height = im.size
        if arr.shape != (height, width):
            raise DataError(
                f"cityscapes: {path.name} is {arr.shape[1]}x{arr.shape[0]}, the image {width}x{height}"
            )
        return arr[None]

    def semantic(self, ref: VideoRef) -> np.ndarray:
        """(1, H, W) uint8 train ids (0..18), 255 = ignore."""
        train = self._file(ref, "gtFine", "_gtFine_labelTrainIds.png")
        if train.is_file():
            ids = read_id_png(train, ref.id)
            if ids.max(initial=0) > 255:
                raise DataError(f"cityscapes: {train} holds values above 255")
            return self._checked(ref, ids.astype(np.uint8), train)
        labels = self._file(ref, "gtFine", "_gtFine_labelIds.png")
        if not labels.is_file():
            raise DataError(f"cityscapes: no gtFine label for {ref.id!r} (no {train.name}, no {labels.name})")
        ids = read_id_png(labels, ref.id)
        out = np.full(ids.shape, IGNORE, dtype=np.uint8)
        in_range = (ids >= 0) & (ids < 256)
        out[in_range] = label_ids_to_train_ids(ids[in_range].astype(np.uint8))
        return self._checked(ref, out, labels)

    def instances(self, ref: VideoRef) -> np.ndarray:
        """(1, H, W) int32: label id * 1000 + k for instance pixels, 0 elsewhere."""
        path = self._file(ref, "gtFine", "_gtFine_instanceIds.png")
        if not path.is_file():
            raise DataError(f"cityscapes: no instance map for {ref.id!r} ({path})")
        ids = read_id_png(path, ref.id)
        return self._checked(ref, np.where(ids >= 1000, ids, 0).astype(np.int32), path)

    def camera(self, ref: VideoRef) -> tuple[float, float]:
        """(baseline in metres, fx in pixels) from the camera json, or the documented defaults."""
        path = self._file(ref, "camera", "_camera.json")
        if not path.is_file():
            return DEFAULT_BASELINE_M, DEFAULT_FX_PX
        try:
            cam = json.loads(path.read_text())
            return float(cam["extrinsic"]["baseline"]), float(cam["intrinsic"]["fx"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"cityscapes: {path} lacks extrinsic.baseline / intrinsic.fx: {err}") from err

    def depth(self, ref: VideoRef) -> np.ndarray:
        """(1, H, W) float32 depth in metres from the disparity map, NaN where invalid."""
        path = self._file(ref, "disparity", "_disparity.png")
        if not path.is_file():
            raise DataError(f"cityscapes: no disparity map for {ref.id!r} ({path}); depth needs disparity/")
        baseline, fx = self.camera(ref)
        return self._checked(ref, disparity_to_depth(read_id_png(path, ref.id), baseline, fx), path)
