"""DAVIS-2016 / DAVIS-2017 reader: ``JPEGImages/<res>/<seq>/%05d.jpg``, ``Annotations/<res>/<seq>/%05d.png``.

Masks come in two conventions and both are read: DAVIS-2016 single-channel 0/255 PNGs (binarised: >127 -> 1)
and DAVIS-2017 palette PNGs, read as the official davis2017-evaluation reads them (``np.array(Image.open())``:
the palette indices, 0 background, k object k, 255 void; void is never an object, see docs/probes.md). Frames
and masks may have any size (DAVIS-2017 480p holds 854-, 910- and 1152-wide sequences). Splits come from the
official lists: DAVIS-2017 ``ImageSets/2017/<split>.txt`` (a sequence per line) or DAVIS-2016
``ImageSets/480p/<split>.txt`` (lines ``/JPEGImages/480p/<seq>/00000.jpg /Annotations/480p/<seq>/00000.png``).

Default split: the official evaluation (davis2017-evaluation ``--set val``, DIFT's and DINO's DAVIS scripts)
scores the 30 sequences of ``ImageSets/2017/val.txt``, so without a split the reader follows that list when
the root has it, for extraction and probing alike; ``split="all"`` takes every sequence present (train + val,
90 in the standard download), and a root without a 2017 list (a DAVIS-2016 copy) lists every sequence present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from dvx.data.base import Masks, Video, VideoDataset, VideoRef, safe_id
from dvx.data.images import read_label_png
from dvx.data.layout import frame_count, locate, missing_error, read_lines, sorted_unique, subdirs
from dvx.data.video_io import list_frame_files, read_frames
from dvx.errors import CorruptVideoError, DataError

FRAME_EXTS = (".jpg", ".jpeg", ".png")


class DavisDataset(VideoDataset):
    """DAVIS at ``root`` (the folder holding ``JPEGImages/``, or its parent holding ``DAVIS/``).

    ``resolution`` is the sub-folder of ``JPEGImages``/``Annotations`` ("480p", or "Full-Resolution" for
    DAVIS-2017 / "1080p" for DAVIS-2016); ``annotation_folder`` names the masks folder (e.g. a derived
    ``Annotations_palette_DERIVED``). ``split`` is "train", "val", "trainval", "test-dev", ... or
    "<year>/<split>" to pick the 2016 or 2017 list explicitly; None is :attr:`DEFAULT_SPLIT` when the root
    has that list, else every sequence present; ``"all"`` is every sequence present. ``self.split`` is the
    split actually followed (None = every sequence present).
    """

    name = "davis"
    annotations = frozenset({"masks"})
    #: the official evaluation list followed when no split is given (if the root has it)
    DEFAULT_SPLIT = "2017/val"
    #: the split name meaning "every sequence present"
    ALL = "all"

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        resolution: str = "480p",
        annotation_folder: str = "Annotations",
    ) -> None:
        super().__init__(root, split)
        self.resolution = resolution
        found = locate(self.root, lambda p: (p / "JPEGImages").is_dir(), "DAVIS", names=("DAVIS",))
        if found is None:
            raise DataError(f"davis: no JPEGImages/{resolution} under {self.root} (nor in a DAVIS/ folder)")
        self.dataset_dir = found
        self.frames_dir = found / "JPEGImages" / resolution
        if not self.frames_dir.is_dir():
            have = ", ".join(p.name for p in subdirs(found / "JPEGImages")) or "nothing"
            raise DataError(f"davis: no JPEGImages/{resolution} under {found} (JPEGImages holds: {have})")
        self.annotations_dir = found / annotation_folder / resolution
        if split is None and (found / "ImageSets" / f"{self.DEFAULT_SPLIT}.txt").is_file():
            self.split = self.DEFAULT_SPLIT
        elif split == self.ALL:
            self.split = None
        self._refs: list[VideoRef] | None = None

    # ---- listing ---------------------------------------------------------------------------------
    def videos(self) -> list[VideoRef]:
        if self._refs is None:
            if self.split is None:
                self._refs = self._refs_for([p.name for p in subdirs(self.frames_dir)])
            else:
                self._refs = self.split_videos(self.split)
        return list(self._refs)

    def split_videos(self, split: str) -> list[VideoRef]:
        names = self.split_sequences(split)
        missing = [n for n in names if not (self.frames_dir / n).is_dir()]
        if missing:
            raise missing_error("davis", split, missing, self.frames_dir)
        return self._refs_for(names)

    def _refs_for(self, names: list[str]) -> list[VideoRef]:
        refs = [
            VideoRef(
                id=safe_id(n),
                path=self.frames_dir / n,
                meta={"sequence": n, **frame_count(self.frames_dir / n, FRAME_EXTS)},
            )
            for n in names
        ]
        return sorted_unique(refs, "davis")

    def split_file(self, split: str) -> Path:
        """The official list file for ``split`` ("val", "2017/val", "2016/train", ...)."""
        year, _, name = split.rpartition("/")
        sets = self.dataset_dir / "ImageSets"
        per_res = [sets / self.resolution / f"{name}.txt", sets / "480p" / f"{name}.txt"]
        if year == "2017":
            candidates = [sets / "2017" / f"{name}.txt"]
        elif year == "2016":
            candidates = [sets / "2016" / f"{name}.txt", *per_res]
        elif year:
            candidates = [sets / year / f"{name}.txt"]
        else:
            candidates = [sets / "2017" / f"{name}.txt", *per_res, sets / "2016" / f"{name}.txt"]
        for path in candidates:
            if path.is_file():
                return path
        have = (
            sorted(str(p.relative_to(sets).with_suffix("")) for p in sets.rglob("*.txt"))
            if sets.is_dir()
            else []
        )
        raise DataError(
            f"davis: no list file for split {split!r} under {sets} "
            f"(available: {', '.join(have) or 'none'}); use --split {self.ALL} for every sequence present"
        )

    def split_sequences(self, split: str) -> list[str]:
        """Sequence names listed by the official split file, in file order, without repeats."""
        seen: dict[str, None] = {}
        for line in read_lines(self.split_file(split)):
            token = line.split()[0]
            # DAVIS-2016 lines are frame paths: the sequence is the frame's folder
            seq = Path(token).parts[-2] if "/" in token else token
            seen.setdefault(seq, None)
        return list(seen)

    # ---- decoding --------------------------------------------------------------------------------
    def load(self, ref: VideoRef) -> Video:
        files = list_frame_files(ref.path, FRAME_EXTS)
        if not files:
            raise CorruptVideoError(ref.id, f"no .jpg frames in {ref.path}")
        return Video(id=ref.id, frames=read_frames(files, ref.id), frame_names=[p.stem for p in files])

    def _annotation_files(self, ref: VideoRef) -> tuple[str, list[Path]]:
        """The sequence name and its annotation PNGs, in frame order (at least one)."""
        seq = ref.meta.get("sequence", ref.path.name)
        folder = self.annotations_dir / seq
        files = list_frame_files(folder, (".png",))
        if not files:
            raise DataError(f"davis: no annotation PNGs for sequence {seq!r} in {folder}")
        return seq, files

    def first_mask(self, ref: VideoRef) -> np.ndarray:
        """The first annotation PNG alone (``masks`` checks the full set against the frames)."""
        _, files = self._annotation_files(ref)
        return read_label_png(files[0])[0]

    def masks(self, ref: VideoRef) -> Masks:
        """Every annotated frame of the sequence (``frame_names`` tells which: DAVIS-2017 val/test-dev
        releases annotate only the first frame)."""
        seq, files = self._annotation_files(ref)
        frame_files = {p.stem: p for p in list_frame_files(ref.path, FRAME_EXTS)}
        orphans = [p.name for p in files if p.stem not in frame_files]
        if orphans:
            shown = ", ".join(orphans[:3])
            raise DataError(f"davis: annotations {shown} of {seq!r} have no frame in {ref.path}")
        with Image.open(frame_files[files[0].stem]) as im:
            width, height = im.size
        labels = np.empty((len(files), height, width), dtype=np.uint8)
        palette = None
        for i, path in enumerate(files):
            arr, pal = read_label_png(path)
            if arr.shape != (height, width):
                raise DataError(
                    f"davis: annotation {path} is {arr.shape[1]}x{arr.shape[0]} but the frames of {seq!r} "
                    f"are {width}x{height}"
                )
            labels[i] = arr
            if palette is None and pal is not None:
                palette = pal
        return Masks(labels=labels, frame_names=[p.stem for p in files], palette=palette)
