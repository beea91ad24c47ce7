"""TAP-Vid point-tracking datasets, read from the official pickles (``google-deepmind/tapnet``).

The three evaluation sets hold, per video, ``video`` (the frames), ``points`` (N, F, 2) x then y
normalised by the frame size and ``occluded`` (N, F) bool (tapnet ``tapvid/README.md``,
``evaluation_datasets.py``, ``generate_tapvid.py``):

- ``tapvid-davis``: ``tapvid_davis.pkl``, a dict ``{DAVIS sequence name: example}``; ``video`` is a
  (F, H, W, 3) uint8 array, ``points`` float32;
- ``tapvid-rgb-stacking``: ``tapvid_rgb_stacking.pkl``, a *list* of examples of the same form (no names:
  video ids are ``rgb_stacking_000``, ``rgb_stacking_001``, ... by list position);
- ``tapvid-kinetics``: pickle shards ``NNNN_of_MMMM.pkl`` (tapnet's reader globs ``*_of_0010.pkl``), each a
  list of examples (or a dict, whose values tapnet reads in order) whose ``video`` is an array of
  **JPEG-encoded frames** (bytes, as ``generate_tapvid.py`` writes them at 25 fps, at most 250) and
  ``points`` float64. Video ids are ``<shard stem>_<position>`` (``0000_of_0010_0003``), a dict's keys
  where a shard is a dict.

Frames come from the pickle at their stored size (DAVIS and RGB-Stacking ship 256x256, Kinetics its
original size); extraction resizes them to the model's resolution like any dataset. Point coordinates
follow ``generate_tapvid.py``: ``points * (W, H)`` is the 0-based pixel position with pixel centres at
integers. Frame names are ``00000``, ``00001``, ...

The pickles are unpickled by a restricted unpickler that only builds numpy arrays, dtypes and plain
containers: a file from elsewhere cannot run code when read. A dataset root is the folder holding the
pickle(s) (or that folder's parent with a ``tapvid_davis/`` ... folder in it, as the zips unpack), or the
pickle file itself for DAVIS and RGB-Stacking.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from dvx.data.base import PointTracks, Video, VideoDataset, VideoRef, safe_id
from dvx.errors import CorruptVideoError, DataError

DAVIS_FILE = "tapvid_davis.pkl"
RGB_STACKING_FILE = "tapvid_rgb_stacking.pkl"
KINETICS_SHARDS = "*_of_*.pkl"

# what a TAP-Vid pickle may build: numpy arrays (of numbers or bytes), dtypes, numpy scalars, dicts
_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # how pickle protocol 2 writes bytes (an array's buffer)
    *((f"numpy.{c}.multiarray", name) for c in ("core", "_core") for name in ("_reconstruct", "scalar")),
    *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED or (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to build {module}.{name}: a TAP-Vid pickle holds only arrays")


def read_pickle(path: Path) -> Any:
    """Unpickle a TAP-Vid file with :class:`_ArraysOnly`; any failure is a one-line DataError."""
    try:
        with open(path, "rb") as f:
            return _ArraysOnly(f).load()
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError, TypeError) as err:
        raise DataError(f"{path} is not a readable TAP-Vid pickle ({type(err).__name__}: {err})") from err


Examples = Mapping[str, Mapping[str, Any]] | Sequence[Mapping[str, Any]]


def write_pickle(path: Path, data: Examples) -> Path:
    """Write examples in a TAP-Vid pickle (a dict by name, as DAVIS; or a list, as RGB-Stacking/Kinetics)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(data if isinstance(data, list) else dict(data), f)
    return path


def decode_frames(video: Any, video_id: str) -> np.ndarray:
    """An example's ``video`` -> (F, H, W, 3) uint8: a uint8 array as it is, or a sequence of encoded
    images (JPEG bytes, as the Kinetics shards hold them) decoded with Pillow."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(video, np.ndarray) and video.dtype == np.uint8:
        if video.ndim != 4 or video.shape[-1] != 3 or len(video) == 0:
            raise CorruptVideoError(video_id, f"video array has shape {video.shape}, expected (F, H, W, 3)")
        return video
    if not isinstance(video, np.ndarray | list | tuple) or len(video) == 0:
        raise CorruptVideoError(video_id, f"video is {type(video).__name__}, not frames or encoded images")
    frames = []
    for i, item in enumerate(video):
        if not isinstance(item, bytes):
            raise CorruptVideoError(video_id, f"frame {i} is {type(item).__name__}, not encoded image bytes")
        try:
            with Image.open(io.BytesIO(item)) as im:
                frames.append(np.asarray(im.convert("RGB")))
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise CorruptVideoError(video_id, f"frame {i} cannot be decoded ({err})") from err
        if frames[-1].shape != frames[0].shape:
            raise CorruptVideoError(
                video_id, f"frame {i} is {frames[-1].shape[:2]}, frame 0 {frames[0].shape[:2]}"
            )
    return np.stack(frames)


def frame_names(n: int) -> list[str]:
    return [f"{i:05d}" for i in range(n)]


def example_tracks(example: Mapping[str, Any], video_id: str, n_frames: int) -> PointTracks:
    """An example's ``points`` / ``occluded`` as :class:`PointTracks` (float32, bool), checked against its
    frame count."""
    try:
        points = np.asarray(example["points"], dtype=np.float32)
        occluded = np.asarray(example["occluded"]).astype(bool)
    except (KeyError, TypeError, ValueError) as err:
        raise CorruptVideoError(video_id, f"no readable points/occluded arrays ({err})") from err
    if points.ndim != 3 or points.shape[-1] != 2 or occluded.shape != points.shape[:2]:
        raise CorruptVideoError(
            video_id, f"points {points.shape} / occluded {occluded.shape} are not (N, F, 2) / (N, F)"
        )
    if points.shape[1] != n_frames:
        raise CorruptVideoError(video_id, f"tracks cover {points.shape[1]} frames, the video has {n_frames}")
    return PointTracks(points, occluded, frame_names(n_frames))


def _find(root: Path, pattern: str, folder: str) -> list[Path]:
    """Files matching ``pattern`` in ``root`` or in ``root/folder`` (how the official zips unpack)."""
    for base in (root, root / folder):
        hits = sorted(p for p in base.glob(pattern) if p.is_file()) if base.is_dir() else []
        if hits:
            return hits
    return []


class _TapVidDataset(VideoDataset):
    """What the three readers share: no splits, videos as entries of pickle files, one file in memory."""

    annotations: ClassVar[frozenset[str]] = frozenset({"point_tracks"})

    def __init__(self, root: str | Path, split: str | None = None) -> None:
        super().__init__(root, split)
        if split is not None:
            raise DataError(f"{self.name}: TAP-Vid has no splits (got --split {split!r}); leave it out")
        self._refs: list[VideoRef] | None = None
        self._loaded: tuple[Path, Any] | None = None  # the last file read: shards are large, keep one

    def _file(self, path: Path) -> Any:
        if self._loaded is None or self._loaded[0] != path:
            self._loaded = None  # drop the previous shard before reading the next
            self._loaded = (path, read_pickle(path))
        return self._loaded[1]

    @staticmethod
    def _examples(data: Any, path: Path) -> list[tuple[str | None, Mapping[str, Any]]]:
        """(name or None, example) of a file's content: a dict by name or a list."""
        if isinstance(data, Mapping):
            items: list[tuple[str | None, Any]] = [(str(k), v) for k, v in data.items()]
        elif isinstance(data, list):
            items = [(None, v) for v in data]
        else:
            raise DataError(f"{path}: holds a {type(data).__name__}, not a dict or list of TAP-Vid examples")
        for name, ex in items:
            if not isinstance(ex, Mapping) or "video" not in ex:
                raise DataError(f"{path}: entry {name or '?'} is not a TAP-Vid example (video, points, ...)")
        return items

    def _files(self) -> list[Path]:
        raise NotImplementedError

    def _video_id(self, path: Path, position: int, name: str | None) -> str:
        raise NotImplementedError

    def videos(self) -> list[VideoRef]:
        if self._refs is None:
            refs = []
            for path in self._files():
                for i, (name, ex) in enumerate(self._examples(self._file(path), path)):
                    vid = self._video_id(path, i, name)
                    meta = {"file": str(path), "position": i, "n_frames": len(ex["video"])}
                    if name is not None:
                        meta["name"] = name
                    refs.append(VideoRef(id=vid, path=path, meta=meta))
            ids = [r.id for r in refs]
            if len(set(ids)) != len(ids):
                raise DataError(f"{self.name} at {self.root}: two videos map to one id; rename them")
            self._refs = sorted(refs, key=lambda r: r.id)
        return list(self._refs)

    def _example(self, ref: VideoRef) -> Mapping[str, Any]:
        path = Path(ref.meta.get("file", ref.path))
        items = self._examples(self._file(path), path)
        pos = int(ref.meta.get("position", -1))
        if not 0 <= pos < len(items):
            raise DataError(f"{self.name}: no video {ref.id!r} in {path}")
        return items[pos][1]

    def load(self, ref: VideoRef) -> Video:
        frames = decode_frames(self._example(ref)["video"], ref.id)
        return Video(ref.id, frames, frame_names(len(frames)))

    def point_tracks(self, ref: VideoRef) -> PointTracks:
        ex = self._example(ref)
        return example_tracks(ex, ref.id, len(ex["video"]))


class _SingleFile(_TapVidDataset):
    filename: ClassVar[str]

    def _files(self) -> list[Path]:
        if self.root.is_file():
            return [self.root]
        hits = _find(self.root, self.filename, self.filename.removesuffix(".pkl"))
        if not hits:
            raise DataError(
                f"{self.name}: no {self.filename} in {self.root} (nor in {self.root / self.filename[:-4]}); "
                "give the folder holding it or the file itself"
            )
        return hits[:1]


class TapVidDavis(_SingleFile):
    """TAP-Vid-DAVIS (30 videos): ``tapvid_davis.pkl``, a dict by DAVIS sequence name."""

    name: ClassVar[str] = "tapvid-davis"
    filename = DAVIS_FILE

    def _video_id(self, path: Path, position: int, name: str | None) -> str:
        return safe_id(name if name is not None else f"video_{position:03d}")


class TapVidRgbStacking(_SingleFile):
    """TAP-Vid-RGB-Stacking (50 synthetic robot videos): ``tapvid_rgb_stacking.pkl``, a list."""

    name: ClassVar[str] = "tapvid-rgb-stacking"
    filename = RGB_STACKING_FILE

    def _video_id(self, path: Path, position: int, name: str | None) -> str:
        return safe_id(name) if name is not None else f"rgb_stacking_{position:03d}"


class TapVidKinetics(_TapVidDataset):
    """TAP-Vid-Kinetics (1,144 videos): pickle shards ``NNNN_of_MMMM.pkl`` with JPEG-encoded frames.

    Listing the videos reads every shard once (pickles have no index); one shard stays in memory.
    """

    name: ClassVar[str] = "tapvid-kinetics"

    def _files(self) -> list[Path]:
        hits = _find(self.root, KINETICS_SHARDS, "tapvid_kinetics")
        if not hits:
            raise DataError(
                f"tapvid-kinetics: no pickle shards ({KINETICS_SHARDS}) in {self.root} "
                f"(nor in {self.root / 'tapvid_kinetics'})"
            )
        return hits

    def _video_id(self, path: Path, position: int, name: str | None) -> str:
        return safe_id(name) if name is not None else f"{path.stem}_{position:04d}"


def tapvid_examples(
    dataset: VideoDataset, refs: Sequence[VideoRef] | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """Any dataset with point tracks (the synthetic world) as TAP-Vid-DAVIS examples ``{id: example}``:
    ``video`` uint8 (F, H, W, 3), ``points`` float32 (N, F, 2), ``occluded`` bool (N, F)."""
    out = {}
    for ref in refs if refs is not None else dataset.videos():
        tracks = dataset.point_tracks(ref)
        out[ref.id] = {
            "video": dataset.load(ref).frames,
            "points": tracks.points.astype(np.float32),
            "occluded": tracks.occluded.astype(bool),
        }
    return out


def export_tapvid_davis(dataset: VideoDataset, out: Path, refs: Sequence[VideoRef] | None = None) -> Path:
    """Write ``dataset``'s videos and point tracks as ``<out>/tapvid_davis.pkl`` (the TAP-Vid-DAVIS form), so
    the ``tapvid-davis`` reader and ``dvx eval tapvid`` read e.g. the synthetic world's ground truth."""
    return write_pickle(Path(out) / DAVIS_FILE, tapvid_examples(dataset, refs))


def detect(root: Path) -> str | None:
    """The name of the TAP-Vid dataset whose file(s) ``root`` holds (or is), else None."""
    root = Path(root)
    if root.is_file():
        return {DAVIS_FILE: TapVidDavis.name, RGB_STACKING_FILE: TapVidRgbStacking.name}.get(root.name)
    for cls, pattern, folder in (
        (TapVidDavis, DAVIS_FILE, "tapvid_davis"),
        (TapVidRgbStacking, RGB_STACKING_FILE, "tapvid_rgb_stacking"),
        (TapVidKinetics, KINETICS_SHARDS, "tapvid_kinetics"),
    ):
        if _find(root, pattern, folder):
            return cls.name
    return None
