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

Video models (:meth:`CityscapesDataset.for_video_model`): seed 002 credits video models' scene
understanding to motion, so they must see motion. Cityscapes ships, per annotated image, a 30-frame snippet
``leftImg8bit_sequence/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` (17 Hz) whose 20th frame is the
annotated one (frames ``n - 19 .. n + 10`` around annotated frame ``n``). With that folder present a video
model sees ``clip_len`` consecutive snippet frames centred on the annotated frame (clamped to the snippet;
the whole snippet when the clip is longer), the annotated frame at its true position, and only the annotated
frame's features are stored (``ref.meta["store_frames"]``), so every probe reads it like the 1-frame video.
Without the folder the annotated frame is repeated to the clip length (a static clip). Which of the two was
used, and the frame map, are recorded in the recipe (``conditioning.input.frames``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from dvx.data.base import Video, VideoDataset, VideoRef, safe_id
from dvx.data.images import read_id_png, read_rgb
from dvx.data.layout import locate, sorted_unique, subdirs
from dvx.data.video_io import read_frames
from dvx.errors import CorruptVideoError, DataError

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

#: the 30-frame snippets around each annotated image, and where the annotated frame sits in one
SEQUENCE_DIR = "leftImg8bit_sequence"
SNIPPET_FRAMES = 30
ANNOTATED_INDEX = 19  # the 20th frame

_LUT = np.full(256, IGNORE, dtype=np.uint8)
for _id, _train in LABEL_TO_TRAIN_ID.items():
    _LUT[_id] = _train


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map Cityscapes label ids (uint8 array) to the 19 train ids, 255 elsewhere."""
    return _LUT[np.asarray(label_ids, dtype=np.uint8)]


def snippet_window(clip_len: int) -> tuple[int, int]:
    """(first snippet index, number of frames) a video model of ``clip_len`` sees: ``clip_len`` frames of the
    30-frame snippet centred on the annotated frame and clamped to the snippet (the whole snippet when
    ``clip_len`` exceeds it)."""
    n = min(clip_len, SNIPPET_FRAMES)
    start = min(max(ANNOTATED_INDEX - n // 2, 0), SNIPPET_FRAMES - n)
    return start, n


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

    def __init__(self, root: str | Path, split: str | None = None, clip_len: int | None = None) -> None:
        """``clip_len``: read each image's sequence snippet for a video model of that clip length (see the
        module docstring); None: the annotated image alone."""
        super().__init__(root, split)
        self.clip_len = clip_len
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
            if self.clip_len is not None:
                n = snippet_window(self.clip_len)[1]
                refs = [
                    replace(r, meta={**r.meta, "n_frames": n, "store_frames": (r.meta["name"],)})
                    for r in refs
                ]
            self._refs = sorted_unique(refs, self.name)
        return list(self._refs)

    def load(self, ref: VideoRef) -> Video:
        if self.clip_len is not None:
            return self._load_snippet(ref)
        frame = read_rgb(ref.path, ref.id)
        return Video(id=ref.id, frames=frame[None], frame_names=[ref.meta["name"]])

    # ---- sequence snippets (video models) -------------------------------------------------------------
    def for_video_model(self, clip_len: int) -> tuple[CityscapesDataset, dict[str, object]]:
        """This dataset as a video model of ``clip_len`` frames reads it, and the recipe's record of how:
        snippets when ``leftImg8bit_sequence/`` is present, else the static repeat of the annotated image."""
        if not (self.dataset_dir / SEQUENCE_DIR).is_dir():
            return self, {
                "source": "static",
                "rule": f"no {SEQUENCE_DIR}/ under the root: the annotated image repeated to the clip length",
            }
        start, n = snippet_window(clip_len)
        note = {
            "source": SEQUENCE_DIR,
            "clip_frames": n,
            "annotated_index": ANNOTATED_INDEX - start,
            "rule": f"{n} consecutive frames of the {SNIPPET_FRAMES}-frame snippet (snippet frames {start}.."
            f"{start + n - 1}; the annotated image is its frame {ANNOTATED_INDEX}), annotated frame at clip "
            f"index {ANNOTATED_INDEX - start}; features stored for the annotated frame only",
        }
        return CityscapesDataset(self.root, self.split, clip_len=clip_len), note

    def snippet_files(self, ref: VideoRef) -> list[Path]:
        """The sequence frames a video model sees for ``ref``, in time order."""
        assert self.clip_len is not None
        meta = ref.meta
        city, seq, frame = meta["name"].rsplit("_", 2)
        start, n = snippet_window(self.clip_len)
        first = int(frame) - ANNOTATED_INDEX + start
        folder = self.dataset_dir / SEQUENCE_DIR / meta["split"] / meta["city"]
        width = len(frame)
        return [folder / f"{city}_{seq}_{first + i:0{width}d}_leftImg8bit.png" for i in range(n)]

    def _load_snippet(self, ref: VideoRef) -> Video:
        files = self.snippet_files(ref)
        absent = [p.name for p in files if not p.is_file()]
        if absent:
            raise CorruptVideoError(
                ref.id,
                f"{len(absent)} of its {len(files)} {SEQUENCE_DIR} frames are missing (first: {absent[0]})",
            )
        suffix = "_leftImg8bit"
        names = [p.stem[: -len(suffix)] for p in files]
        return Video(id=ref.id, frames=read_frames(files, ref.id), frame_names=names)

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
