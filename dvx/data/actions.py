"""Action-recognition readers: UCF101 and HMDB51 videos in class folders, decoded with PyAV.

UCF101: ``UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` with ``ucfTrainTestlist/{classInd.txt, trainlist0N.txt,
testlist0N.txt}``. HMDB51: ``<class>/<video>.avi`` with
``testTrainMulti_7030_splits/<class>_test_split<N>.txt`` (lines ``<video>.avi 0|1|2``: 1 train, 2 test,
0 unused). Split names are "train1".."train3" and "test1".."test3"; ``ref.label`` is the 0-based index
of the class in :meth:`classes`.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path

from dvx.data.base import Video, VideoDataset, VideoRef, safe_id
from dvx.data.layout import (
    locate,
    missing_error,
    parse_split,
    read_lines,
    sorted_unique,
    split_file_classes,
    split_file_videos,
    subdirs,
)
from dvx.data.video_io import VIDEO_EXTS, read_video
from dvx.errors import ConfigError, DataError


def _video_files(folder: Path) -> list[Path]:
    files = (p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTS and not p.name.startswith("."))
    return sorted(p for p in files if p.is_file())


def _has_class_folders(folder: Path) -> bool:
    """True when some sub-folder of ``folder`` holds a video file."""
    return any(any(p.suffix.lower() in VIDEO_EXTS for p in sub.iterdir()) for sub in subdirs(folder))


class _ClassFolderVideos(VideoDataset):
    """Videos in ``<videos_dir>/<class>/``; subclasses say where the split files are and how to read them."""

    annotations = frozenset({"action"})
    probe_splits = ("train1", "test1")
    #: folder names under the root that may hold the class folders (searched two levels deep)
    video_folders: tuple[str, ...] = ()
    #: the folder of official split files
    splits_folder: str = ""
    layout_hint: str = ""

    def __init__(self, root: str | Path, split: str | None = None) -> None:
        super().__init__(root, split)
        if split is not None:
            parse_split(split, self.name)
        names = (*self.video_folders, *(f"{a}/{b}" for a in self.video_folders for b in self.video_folders))
        found = locate(self.root, _has_class_folders, self.name, names=names)
        if found is None:
            raise DataError(f"{self.name}: no {self.layout_hint} under {self.root}")
        self.videos_dir = found
        self.splits_dir = self._find_splits()
        self._refs: list[VideoRef] | None = None
        self._classes: list[str] | None = None

    def _find_splits(self) -> Path | None:
        for base in (self.root, self.videos_dir, self.videos_dir.parent, *subdirs(self.root)):
            folder = base / self.splits_folder
            if folder.is_dir():
                return folder
        return None

    def _need_splits(self) -> Path:
        if self.splits_dir is None:
            raise DataError(
                f"{self.name}: no {self.splits_folder}/ folder beside {self.videos_dir} or in {self.root}"
            )
        return self.splits_dir

    # ---- classes ---------------------------------------------------------------------------------
    @abstractmethod
    def _official_classes(self) -> list[str] | None:
        """The class list of the official split files (None when there are none)."""

    def classes(self) -> list[str]:
        """Class names in official index order (the split files'), else the class folders sorted."""
        if self._classes is None:
            official = self._official_classes()
            if official is None:
                folders = (p.name for p in subdirs(self.videos_dir) if _video_files(p))
                official = sorted(folders, key=str.lower)
            self._classes = official
        return list(self._classes)

    def _label(self, cls: str) -> int:
        classes = self.classes()
        try:
            return classes.index(cls)
        except ValueError:
            raise DataError(
                f"{self.name}: class folder {cls!r} is not in the official class list ({self.splits_dir})"
            ) from None

    @abstractmethod
    def _video_id(self, cls: str, path: Path) -> str: ...

    def _ref(self, cls: str, path: Path) -> VideoRef:
        return VideoRef(id=self._video_id(cls, path), path=path, label=self._label(cls), meta={"class": cls})

    # ---- listing ---------------------------------------------------------------------------------
    def videos(self) -> list[VideoRef]:
        if self._refs is None:
            if self.split is not None:
                self._refs = self.split_videos(self.split)
            else:
                refs = [self._ref(c.name, f) for c in subdirs(self.videos_dir) for f in _video_files(c)]
                if not refs:
                    raise DataError(f"{self.name}: no video files in the class folders of {self.videos_dir}")
                self._refs = sorted_unique(refs, self.name)
        return list(self._refs)

    @abstractmethod
    def _split_entries(self, kind: str, index: int) -> list[tuple[str, str]]:
        """(class, path relative to videos_dir) for every video the split lists."""

    @classmethod
    def eval_split(cls, train: str) -> str:
        """Three official splits: trainN is scored on testN."""
        if not (train.startswith("train") and train[5:].isdigit()):
            raise ConfigError(f"--split for {cls.name} names the training split (train1, train2, train3)")
        return "test" + train[5:]

    def split_videos(self, split: str) -> list[VideoRef]:
        kind, index = parse_split(split, self.name)
        entries = self._split_entries(kind, index)
        missing = [rel for _, rel in entries if not (self.videos_dir / rel).is_file()]
        if missing:
            raise missing_error(self.name, split, missing, self.videos_dir)
        return sorted_unique([self._ref(cls, self.videos_dir / rel) for cls, rel in entries], self.name)

    def load(self, ref: VideoRef) -> Video:
        frames, fps = read_video(ref.path, ref.id)
        return Video(id=ref.id, frames=frames, frame_names=[f"{i:05d}" for i in range(len(frames))], fps=fps)


class Ucf101Dataset(_ClassFolderVideos):
    """UCF101 at ``root``: the folder holding ``UCF-101/`` and ``ucfTrainTestlist/`` (or ``UCF-101`` itself,
    or a parent of either). Video ids are the file stems (``v_ApplyEyeMakeup_g08_c01``)."""

    name = "ucf101"
    video_folders = ("UCF-101", "UCF101", "ucf101")
    splits_folder = "ucfTrainTestlist"
    layout_hint = "UCF-101/<Class>/v_<Class>_gXX_cYY.avi"

    def _video_id(self, cls: str, path: Path) -> str:
        return safe_id(path.stem)

    def _official_classes(self) -> list[str] | None:
        if self.splits_dir is None:
            return None
        path = self.splits_dir / "classInd.txt"
        if not path.is_file():
            raise DataError(f"ucf101: {self.splits_dir} has no classInd.txt")
        classes = []
        for i, line in enumerate(read_lines(path), start=1):
            parts = line.split()
            if len(parts) != 2 or parts[0] != str(i):
                raise DataError(f"ucf101: line {i} of {path} is {line!r}, expected '{i} <ClassName>'")
            classes.append(parts[1])
        return classes

    def _split_entries(self, kind: str, index: int) -> list[tuple[str, str]]:
        path = self._need_splits() / f"{kind}list{index:02d}.txt"
        if not path.is_file():
            raise DataError(f"ucf101: split file {path.name} is missing from {self.splits_dir}")
        classes = self.classes()
        entries = []
        for line in read_lines(path):
            parts = line.split()
            rel = parts[0].replace("\\", "/")
            cls = rel.split("/")[0]
            if cls not in classes:
                raise DataError(f"ucf101: {path.name} lists {rel!r}, whose class {cls!r} classInd.txt lacks")
            if len(parts) > 1 and parts[1] != str(classes.index(cls) + 1):
                raise DataError(
                    f"ucf101: {path.name} labels {rel!r} as {parts[1]} but classInd.txt gives "
                    f"{cls!r} index {classes.index(cls) + 1}"
                )
            entries.append((cls, rel))
        return entries


class Hmdb51Dataset(_ClassFolderVideos):
    """HMDB51 at ``root``: the folder holding the class folders (``hmdb51_org/`` after unpacking) and
    ``testTrainMulti_7030_splits/``, or a parent. Video ids are ``<class>__<video stem>`` (store-safe)."""

    name = "hmdb51"
    video_folders = ("hmdb51_org", "hmdb51", "HMDB51", "videos")
    splits_folder = "testTrainMulti_7030_splits"
    layout_hint = "<class>/<video>.avi class folders"

    def _video_id(self, cls: str, path: Path) -> str:
        return safe_id(f"{cls}__{path.stem}")

    def _official_classes(self) -> list[str] | None:
        if self.splits_dir is None:
            return None
        names = split_file_classes(self.splits_dir)
        if not names:
            raise DataError(f"hmdb51: {self.splits_dir} holds no <class>_test_split<N>.txt files")
        return sorted(names)

    def _split_entries(self, kind: str, index: int) -> list[tuple[str, str]]:
        splits = self._need_splits()
        entries = []
        for cls in self.classes():
            for video in split_file_videos("hmdb51", splits, cls, index, kind, "0|1|2"):
                entries.append((cls, f"{cls}/{video}"))
        return entries
