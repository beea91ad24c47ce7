"""Helpers shared by the dataset readers: find the dataset folder under a root, parse split names, check
that video ids are unique, and read simple list files."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from dvx.data.base import VideoRef
from dvx.data.video_io import list_frame_files
from dvx.errors import ConfigError, DataError

_SPLIT = re.compile(r"^(train|test)([1-9])$")


def locate(root: Path, accept: Callable[[Path], bool], what: str, names: Iterable[str] = ()) -> Path | None:
    """The dataset folder: ``root`` itself when ``accept(root)``, else ``root/<name>`` for the first of
    ``names`` accepted, else the single child folder of ``root`` accepted (several -> DataError); None when
    nothing is accepted."""
    root = Path(root)
    if accept(root):
        return root
    for name in names:
        cand = root / name
        if cand.is_dir() and accept(cand):
            return cand
    hits = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and accept(p))
    if len(hits) > 1:
        listed = ", ".join(p.name for p in hits)
        raise DataError(f"{root} holds several {what} folders ({listed}); pass the one to use as the root")
    return hits[0] if hits else None


def parse_split(split: str, dataset: str, max_index: int = 3) -> tuple[str, int]:
    """'train1' -> ('train', 1); anything else is a ConfigError listing the valid names."""
    m = _SPLIT.match(split)
    if not m or not 1 <= int(m.group(2)) <= max_index:
        valid = ", ".join(f"{k}{i}" for k in ("train", "test") for i in range(1, max_index + 1))
        raise ConfigError(f"{dataset}: unknown split {split!r}; use one of {valid}")
    return m.group(1), int(m.group(2))


def missing_error(dataset: str, split: str, missing: list[str], where: Path) -> DataError:
    """The DataError for a split listing videos that are absent (names the first few)."""
    shown = ", ".join(missing[:5]) + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
    return DataError(
        f"{dataset}: split {split!r} lists {len(missing)} video(s) absent under {where}: {shown}; "
        "complete the dataset or run without a split to use the videos present"
    )


def sorted_unique(refs: list[VideoRef], dataset: str) -> list[VideoRef]:
    """``refs`` sorted by id; two videos with one id are a DataError."""
    out = sorted(refs, key=lambda r: r.id)
    for a, b in itertools.pairwise(out):
        if a.id == b.id:
            raise DataError(f"{dataset}: two videos have the id {a.id!r}: {a.path} and {b.path}")
    return out


def read_lines(path: Path) -> list[str]:
    """Non-empty, stripped lines of a text file (any line endings)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise DataError(f"cannot read {path}: {err}") from err
    return [line.strip() for line in text.splitlines() if line.strip()]


def frame_count(folder: Path, exts: Iterable[str]) -> dict[str, int]:
    """``{"n_frames": N}`` for a frame folder: the number of frame files ``load`` reads from it (a listing,
    no image is opened), which sizes dry-run plans and balances ranks; {} when it holds none (``load``
    then raises CorruptVideoError)."""
    n = len(list_frame_files(folder, exts))
    return {"n_frames": n} if n else {}


def subdirs(folder: Path) -> list[Path]:
    """Visible sub-folders, sorted by name; [] when ``folder`` is absent."""
    if not Path(folder).is_dir():
        return []
    return sorted(p for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith("."))


# ---- HMDB51-style split files (HMDB51, JHMDB): <class>_test_split<N>.txt, lines "<video>.avi 0|1|2" ----
SPLIT_SUFFIX = "_test_split"


def split_file_classes(folder: Path) -> set[str]:
    """Class names of the ``<class>_test_split<N>.txt`` files in ``folder``."""
    return {p.name.rsplit(SPLIT_SUFFIX, 1)[0] for p in folder.glob(f"*{SPLIT_SUFFIX}*.txt")}


def split_file_videos(name: str, folder: Path, cls: str, index: int, kind: str, expected: str) -> list[str]:
    """The video file names of ``cls`` in split ``index`` (1 = train, 2 = test; 0 = unused), from
    ``<cls>_test_split<index>.txt``. ``expected`` is the line format the error shows (``'0|1|2'``)."""
    path = folder / f"{cls}{SPLIT_SUFFIX}{index}.txt"
    if not path.is_file():
        raise DataError(f"{name}: split file {path.name} is missing from {folder}")
    wanted = "1" if kind == "train" else "2"
    videos = []
    for line in read_lines(path):
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataError(f"{name}: bad line {line!r} in {path} (expected '<video>.avi {expected}')")
        if parts[1] == wanted:
            videos.append(parts[0])
    return videos
