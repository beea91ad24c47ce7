"""The dataset contract: list videos cheaply, decode frames on demand, read annotations for probes.

Every reader (DAVIS, JHMDB, UCF101/HMDB51, Cityscapes, the synthetic world) implements
:class:`VideoDataset`. Extraction only needs :meth:`VideoDataset.videos` and :meth:`VideoDataset.load`;
probes read the annotation accessors, which raise :class:`~dvx.errors.DataError` when a dataset has no
such labels.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from dvx.errors import DataError

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_id(name: str) -> str:
    """A store-safe video id: letters, digits, '.', '_' and '-' only ('/' and others become '__')."""
    out = _SAFE.sub("__", name).strip(".")
    if not out:
        raise DataError(f"cannot make a video id from {name!r}")
    return out


@dataclass(frozen=True)
class VideoRef:
    """A video of a dataset, listed without decoding anything."""

    id: str  # unique within the dataset, store-safe (see safe_id)
    path: Path  # the frame folder or video file it is read from
    label: int | None = None  # class index, for action datasets
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Video:
    """A decoded video: RGB frames plus one name per frame (used to name outputs and match labels)."""

    id: str
    frames: np.ndarray  # (F, H, W, 3) uint8 RGB
    frame_names: list[str]  # e.g. "00000" for DAVIS' 00000.jpg; f"{i:05d}" for decoded containers
    fps: float | None = None

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise DataError(
                f"video {self.id!r}: frames must be (F, H, W, 3) uint8, got {self.frames.shape} "
                f"{self.frames.dtype}"
            )
        if len(self.frame_names) != len(self.frames):
            raise DataError(
                f"video {self.id!r}: {len(self.frames)} frames but {len(self.frame_names)} frame names"
            )
        if len(self.frames) == 0:
            raise DataError(f"video {self.id!r} has no frames")


@dataclass
class Masks:
    """Per-frame object masks (DAVIS-2017 convention): 0 background, k = object k, 255 void."""

    labels: np.ndarray  # (F, H, W) uint8
    frame_names: list[str]
    palette: np.ndarray | None = None  # (256, 3) uint8 when read from palette PNGs

    @property
    def num_objects(self) -> int:
        ids = np.unique(self.labels)
        return int(ids[(ids != 0) & (ids != 255)].max(initial=0))


@dataclass
class Joints:
    """Per-frame 2-D keypoints in 0-based pixel coordinates of the original frames."""

    xy: np.ndarray  # (F, J, 2) float32, x then y
    visible: np.ndarray  # (F, J) bool
    frame_names: list[str]
    names: list[str]  # J joint names


@dataclass
class PointTracks:
    """Point tracks in the TAP-Vid layout: positions normalised by the frame size, x then y, so that
    ``points[..., 0] * W`` is the 0-based pixel column (pixel centres at integers) of a W-wide frame.

    TAP-Vid's pickles hold exactly these arrays per video (``points`` (N, F, 2), ``occluded`` (N, F)).
    """

    points: np.ndarray  # (N, F, 2) float32, x then y in [0, 1] (may lie outside when off-frame)
    occluded: np.ndarray  # (N, F) bool
    frame_names: list[str]

    def __post_init__(self) -> None:
        p, o = self.points, self.occluded
        if p.ndim != 3 or p.shape[-1] != 2 or o.shape != p.shape[:2]:
            raise DataError(
                f"point tracks must be points (N, F, 2) and occluded (N, F), got {self.points.shape} and "
                f"{self.occluded.shape}"
            )
        if self.points.shape[1] != len(self.frame_names):
            raise DataError(f"point tracks cover {self.points.shape[1]} frames, not {len(self.frame_names)}")


class VideoDataset(ABC):
    """A folder of videos in one of the layouts dvx reads.

    ``root`` may be the dataset's own folder or its parent (e.g. the folder holding ``DAVIS/``);
    ``split`` names an official split file; without it every video present is used, and with it a
    listed video that is absent is a :class:`DataError`.
    """

    name: ClassVar[str]
    #: which annotation accessors work: a subset of {"masks", "joints", "action", "semantic", "depth",
    #: "instances", "point_tracks"}
    annotations: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, root: str | Path, split: str | None = None) -> None:
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise DataError(f"data root {str(self.root)!r} does not exist")
        self.split = split

    @abstractmethod
    def videos(self) -> list[VideoRef]:
        """Every video of the dataset (or of ``split``), sorted by id."""

    @abstractmethod
    def load(self, ref: VideoRef) -> Video:
        """Decode a video; raises :class:`~dvx.errors.CorruptVideoError` when it cannot be read."""

    def video(self, video_id: str) -> VideoRef:
        for ref in self.videos():
            if ref.id == video_id:
                return ref
        raise DataError(f"{self.name}: no video {video_id!r} under {self.root}")

    # ---- annotations (probes); a dataset overrides those it has -------------------------------------
    def _no(self, kind: str) -> DataError:
        return DataError(f"dataset {self.name!r} at {self.root} has no {kind} annotations")

    def masks(self, ref: VideoRef) -> Masks:
        raise self._no("mask")

    def first_mask(self, ref: VideoRef) -> np.ndarray:
        """(H, W) uint8 labels of the first annotated frame: ``masks(ref).labels[0]``, which a reader
        overrides to decode only that one file."""
        return self.masks(ref).labels[0]

    def joints(self, ref: VideoRef) -> Joints:
        raise self._no("joint")

    def classes(self) -> list[str]:
        raise self._no("action-class")

    def point_tracks(self, ref: VideoRef) -> PointTracks:
        """TAP-Vid style point tracks (positions normalised by the frame size)."""
        raise self._no("point-track")

    def split_videos(self, split: str) -> list[VideoRef]:
        """The videos an official split file lists (for trained probes: train/test lists)."""
        raise self._no(f"split {split!r}")

    def semantic(self, ref: VideoRef) -> np.ndarray:
        """(F, H, W) uint8 train ids, 255 = ignore."""
        raise self._no("semantic")

    def depth(self, ref: VideoRef) -> np.ndarray:
        """(F, H, W) float32 depth, NaN where unknown."""
        raise self._no("depth")

    def instances(self, ref: VideoRef) -> np.ndarray:
        """(F, H, W) int32 instance ids, 0 = background."""
        raise self._no("instance")
