"""MOVi (Kubric MOVi-C/E) reader for dvx's export layout (docs/datasets.md explains how to produce it):

    <root>/<split>/<video>/rgb/%05d.png             RGB frames
    <root>/<split>/<video>/segmentations/%05d.png   instance ids, 0 = background ('L' or 16-bit PNG)
    <root>/<split>/<video>/depth/%05d.npy           optional float32 (H, W) depth in scene units

Splits are the folder names ("train", "validation", ...). Video ids are ``<split>__<video>`` so that the
videos of all splits can share one feature store without clashing.

Registered three times: ``movi-c`` and ``movi-e`` (the two variants seed 002 probes) and ``movi`` (any
other export). The name is the dataset's key in the feature store, and the variants number their videos
alike (``validation__0`` is a MOVi-C and a MOVi-E video), so both read as ``movi`` into one store would
share keys: the second extraction would find the first one's features "cached" and a movi-e probe would
score MOVi-C features. One reader name per variant keeps them apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dvx.data.base import Masks, Video, VideoDataset, VideoRef, safe_id
from dvx.data.images import read_id_png, read_npy
from dvx.data.layout import frame_count, locate, sorted_unique, subdirs
from dvx.data.video_io import list_frame_files, read_frames
from dvx.errors import CorruptVideoError, DataError

RGB_EXTS = (".png", ".jpg", ".jpeg")


def _is_split(folder: Path) -> bool:
    return any((v / "rgb").is_dir() for v in subdirs(folder))


def _is_export(folder: Path) -> bool:
    return any(_is_split(s) for s in subdirs(folder))


class MoviDataset(VideoDataset):
    """A MOVi export at ``root`` (the folder holding the split folders, or a parent holding one export)."""

    name = "movi"
    annotations = frozenset({"masks", "instances", "depth"})
    probe_splits = ("train", "validation")

    def __init__(self, root: str | Path, split: str | None = None) -> None:
        super().__init__(root, split)
        found = locate(self.root, _is_export, "MOVi export")
        if found is None:
            raise DataError(f"movi: no <split>/<video>/rgb/ folders under {self.root} (see docs/datasets.md)")
        self.dataset_dir = found
        present = [p.name for p in subdirs(found) if _is_split(p)]
        if split is not None and split not in present:
            raise DataError(f"movi: no split {split!r} in {found} (present: {', '.join(present)})")
        self.splits = [split] if split is not None else present
        self._refs: list[VideoRef] | None = None

    def videos(self) -> list[VideoRef]:
        if self._refs is None:
            refs = [
                VideoRef(
                    id=safe_id(f"{s}__{v.name}"),
                    path=v,
                    meta={"split": s, "video": v.name, **frame_count(v / "rgb", RGB_EXTS)},
                )
                for s in self.splits
                for v in subdirs(self.dataset_dir / s)
                if (v / "rgb").is_dir()
            ]
            self._refs = sorted_unique(refs, self.name)
        return list(self._refs)

    def split_videos(self, split: str) -> list[VideoRef]:
        return type(self)(self.dataset_dir, split).videos()

    def _rgb_files(self, ref: VideoRef) -> list[Path]:
        files = list_frame_files(ref.path / "rgb", RGB_EXTS)
        if not files:
            raise CorruptVideoError(ref.id, f"no frames in {ref.path / 'rgb'}")
        return files

    def load(self, ref: VideoRef) -> Video:
        files = self._rgb_files(ref)
        return Video(id=ref.id, frames=read_frames(files, ref.id), frame_names=[p.stem for p in files])

    def _matching(
        self, ref: VideoRef, folder: str, exts: tuple[str, ...]
    ) -> tuple[list[Path], tuple[int, int]]:
        """The per-frame files of ``folder``, checked to name exactly the RGB frames; and the frame (H, W)."""
        from PIL import Image

        rgb = self._rgb_files(ref)
        files = list_frame_files(ref.path / folder, exts)
        if not files:
            raise DataError(f"movi: video {ref.id!r} has no {folder}/ files ({ref.path / folder})")
        if [p.stem for p in files] != [p.stem for p in rgb]:
            raise DataError(
                f"movi: {ref.path / folder} has {len(files)} files, rgb/ has {len(rgb)}; the names must match"
            )
        with Image.open(rgb[0]) as im:
            width, height = im.size
        return files, (height, width)

    def instances(self, ref: VideoRef) -> np.ndarray:
        """(F, H, W) int32 instance ids, 0 = background."""
        files, size = self._matching(ref, "segmentations", (".png",))
        out = np.empty((len(files), *size), dtype=np.int32)
        for i, path in enumerate(files):
            ids = read_id_png(path, ref.id)
            if ids.shape != size:
                raise DataError(
                    f"movi: {path} is {ids.shape[1]}x{ids.shape[0]}, frames are {size[1]}x{size[0]}"
                )
            out[i] = ids
        return out

    def masks(self, ref: VideoRef) -> Masks:
        """The instance ids as Masks (uint8; ids must stay below 255, which means void)."""
        ids = self.instances(ref)
        if ids.max(initial=0) >= 255 or ids.min(initial=0) < 0:
            raise DataError(
                f"movi: video {ref.id!r} has instance ids outside 0..254; use instances() instead"
            )
        names = [p.stem for p in self._rgb_files(ref)]
        return Masks(labels=ids.astype(np.uint8), frame_names=names)

    def depth(self, ref: VideoRef) -> np.ndarray:
        """(F, H, W) float32 depth (NaN where unknown)."""
        files, size = self._matching(ref, "depth", (".npy",))
        out = np.empty((len(files), *size), dtype=np.float32)
        for i, path in enumerate(files):
            arr = read_npy(path, ref.id)
            if arr.ndim == 3 and arr.shape[-1] == 1:
                arr = arr[..., 0]
            if arr.shape != size:
                raise DataError(f"movi: {path} is {arr.shape}, the frames are {size}")
            out[i] = arr
        return out


class MoviCDataset(MoviDataset):
    """A MOVi-C export, stored under its own dataset key (see the module docstring)."""

    name = "movi-c"


class MoviEDataset(MoviDataset):
    """A MOVi-E export, stored under its own dataset key (see the module docstring)."""

    name = "movi-e"
