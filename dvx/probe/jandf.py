"""DAVIS J&F, exactly as the official davis2017-evaluation tool scores the semi-supervised task.

Protocol (davisvideochallenge/davis2017-evaluation @ ac7c43f, ``davis2017/{evaluation,metrics,utils}.py``):

- objects: ids 1..N where N is the largest id in the FIRST annotated frame (void 255 removed first); ids
  above N that appear later are ignored. A prediction that uses an id above N is an error; objects the
  prediction never mentions are scored against an empty mask;
- void: GT pixels equal to 255 are set to background. The semi-supervised path passes no void mask to
  the metrics, so void pixels count as plain background (they are excluded only in the unsupervised task);
- the first and the last frame are not scored;
- J = |GT ∩ P| / |GT ∪ P| per frame and object, 1 when both are empty;
- F = boundary F-measure per frame and object: 1-pixel boundary maps (``seg2bmap``), a boundary pixel
  matches if the other boundary lies within a disk of radius ceil(0.008 x image diagonal) px
  (8 px at 854x480); precision/recall edge cases as the official ``f_measure``;
- per object: mean, recall (fraction of frames > 0.5) and decay (mean of the first quarter of the
  frames minus the last quarter, the official binning) over the scored frames;
- dataset: J-mean / F-mean = mean over ALL objects of all sequences; J&F = (J-mean + F-mean) / 2.
  Per sequence we also report the mean over that sequence's objects.

No OpenCV / scikit-image: the disk dilation is computed with an exact Euclidean distance transform
(a pixel is inside the dilation iff its distance to the nearest boundary pixel is <= the integer radius,
which is exactly the skimage ``disk`` footprint ``x^2 + y^2 <= r^2``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy import ndimage

from dvx.data.images import read_label_png
from dvx.errors import DataError

VOID = 255
BOUND_TH = 0.008
PROTOCOL = "davis2017-evaluation semi-supervised (first and last frame not scored, void = background)"


# --------------------------------------------------------------------------------------------------------
# per-frame metrics


def region_similarity(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """J over the last two axes of boolean-like ``gt`` and ``pred``; 1 where the union is empty."""
    gt = np.asarray(gt).astype(bool)
    pred = np.asarray(pred).astype(bool)
    if gt.shape != pred.shape:
        raise ValueError(f"shapes differ: gt {gt.shape} vs pred {pred.shape}")
    inter = np.count_nonzero(gt & pred, axis=(-2, -1))
    union = np.count_nonzero(gt | pred, axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        j = inter / union
    return np.where(union == 0, 1.0, j)


def boundary_map(seg: np.ndarray) -> np.ndarray:
    """1-pixel-wide boundary of a binary mask (H, W), offset half a pixel towards the origin (seg2bmap).

    A pixel is on the boundary if it differs from its right, lower or lower-right neighbour (outside the
    image counts as background); the last row compares only to the right, the last column only
    downwards, and the bottom-right pixel is never a boundary.
    """
    seg = np.asarray(seg).astype(bool)
    if seg.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {seg.shape}")
    right = np.zeros_like(seg)
    right[:, :-1] = seg[:, 1:]
    down = np.zeros_like(seg)
    down[:-1, :] = seg[1:, :]
    diag = np.zeros_like(seg)
    diag[:-1, :-1] = seg[1:, 1:]
    bmap = (seg ^ right) | (seg ^ down) | (seg ^ diag)
    bmap[-1, :] = seg[-1, :] ^ right[-1, :]
    bmap[:, -1] = seg[:, -1] ^ down[:, -1]
    bmap[-1, -1] = False
    return bmap


def boundary_tolerance(shape: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Match radius in pixels: ``bound_th`` itself if >= 1, else ceil(bound_th * image diagonal)."""
    if bound_th >= 1:
        if bound_th != int(bound_th):
            raise ValueError(f"a pixel tolerance must be an integer, got {bound_th}")
        return int(bound_th)
    return int(np.ceil(bound_th * np.linalg.norm(shape)))


def _count_near(src: np.ndarray, dst: np.ndarray, radius: int) -> int:
    """How many True pixels of ``src`` have a True pixel of ``dst`` within Euclidean distance ``radius``."""
    ys, xs = np.nonzero(src | dst)
    # every src and dst pixel lies in this box, so distances computed inside it are the true ones
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    dist = ndimage.distance_transform_edt(~dst[box])
    return int(np.count_nonzero(src[box] & (dist <= radius)))


def boundary_f(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """Boundary F-measure of one binary frame (official ``f_measure``, no void mask)."""
    gt = np.asarray(gt).astype(bool)
    pred = np.asarray(pred).astype(bool)
    if gt.shape != pred.shape:
        raise ValueError(f"shapes differ: gt {gt.shape} vs pred {pred.shape}")
    radius = boundary_tolerance(gt.shape, bound_th)
    fg_b = boundary_map(pred)
    gt_b = boundary_map(gt)
    n_fg = int(np.count_nonzero(fg_b))
    n_gt = int(np.count_nonzero(gt_b))
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = _count_near(fg_b, gt_b, radius) / n_fg
        recall = _count_near(gt_b, fg_b, radius) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def db_statistics(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, recall, decay) of per-frame values, as the official ``db_statistics``.

    Decay bins: ids = round(linspace(1, n, 5) + 1e-10) - 1; bin i = values[ids[i] : ids[i+1] + 1];
    decay = mean(bin 0) - mean(bin 3). (The official code casts ids to uint8, which would wrap for more
    than 256 scored frames; we keep them as integers.)
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    with np.errstate(invalid="ignore"):
        mean = float(np.nanmean(values)) if np.any(~np.isnan(values)) else float("nan")
        recall = float(np.nanmean(values > 0.5))
    ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.int64)
    bins = [values[ids[i] : ids[i + 1] + 1] for i in range(4)]
    decay = float(_nanmean(bins[0]) - _nanmean(bins[3]))
    return mean, recall, decay


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    ok = ~np.isnan(x)
    return float(x[ok].mean()) if ok.any() else float("nan")


# --------------------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class ObjectStats:
    """Statistics of one object over the scored frames of its sequence."""

    J_mean: float
    J_recall: float
    J_decay: float
    F_mean: float
    F_recall: float
    F_decay: float

    @classmethod
    def from_frames(cls, j: np.ndarray, f: np.ndarray) -> ObjectStats:
        return cls(*db_statistics(j), *db_statistics(f))

    def record(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class SequenceScore:
    """Per-frame J and F of every object of one sequence: arrays (n_objects, n_scored_frames)."""

    name: str
    J: np.ndarray
    F: np.ndarray

    @property
    def n_objects(self) -> int:
        return int(self.J.shape[0])

    @cached_property
    def objects(self) -> list[ObjectStats]:
        return [ObjectStats.from_frames(self.J[i], self.F[i]) for i in range(self.n_objects)]

    @property
    def J_mean(self) -> float:
        return _nanmean([o.J_mean for o in self.objects])

    @property
    def F_mean(self) -> float:
        return _nanmean([o.F_mean for o in self.objects])

    @property
    def JF_mean(self) -> float:
        return (self.J_mean + self.F_mean) / 2

    def record(self) -> dict:
        return {
            "J_mean": self.J_mean,
            "F_mean": self.F_mean,
            "JF_mean": self.JF_mean,
            "n_objects": self.n_objects,
            "n_frames_scored": int(self.J.shape[1]),
        }


@dataclass(frozen=True)
class DavisResult:
    """Scores of several sequences; dataset means are over all objects, as the official tool reports."""

    sequences: dict[str, SequenceScore]

    @cached_property
    def objects(self) -> list[tuple[str, ObjectStats]]:
        """(``<seq>_<k>``, stats) of every object of every sequence."""
        return [
            (f"{name}_{i + 1}", stats)
            for name, seq in self.sequences.items()
            for i, stats in enumerate(seq.objects)
        ]

    @property
    def J_mean(self) -> float:
        return _nanmean([o.J_mean for _, o in self.objects])

    @property
    def F_mean(self) -> float:
        return _nanmean([o.F_mean for _, o in self.objects])

    @property
    def JF_mean(self) -> float:
        return (self.J_mean + self.F_mean) / 2

    def record(self) -> dict:
        """The results record: dataset means, recall/decay, per sequence and per object (``<seq>_<k>``)."""
        objects = self.objects

        def mean_of(key: str) -> float:
            return _nanmean([getattr(o, key) for _, o in objects])

        return {
            "J_mean": self.J_mean,
            "F_mean": self.F_mean,
            "JF_mean": self.JF_mean,
            "J_recall": mean_of("J_recall"),
            "J_decay": mean_of("J_decay"),
            "F_recall": mean_of("F_recall"),
            "F_decay": mean_of("F_decay"),
            "n_sequences": len(self.sequences),
            "n_objects": len(objects),
            "per_sequence": {name: seq.record() for name, seq in self.sequences.items()},
            "per_object": {key: o.record() for key, o in objects},
            "protocol": PROTOCOL,
        }


# --------------------------------------------------------------------------------------------------------
# arrays


def evaluate_sequence(
    gt: np.ndarray,
    pred: np.ndarray,
    name: str = "",
    *,
    bound_th: float = BOUND_TH,
) -> SequenceScore:
    """Score one sequence: ``gt`` and ``pred`` are (F, H, W) integer label maps of every frame.

    ``gt`` holds 0 background, k object k, 255 void; ``pred`` holds 0..N. Frames 0 and F-1 of ``pred``
    are never read (they may be anything, e.g. zeros).
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    label = f"sequence {name!r}" if name else "sequence"
    if gt.ndim != 3:
        raise DataError(f"{label}: annotations must be (frames, H, W), got shape {gt.shape}")
    if pred.shape != gt.shape:
        raise DataError(f"{label}: predictions have shape {pred.shape} but annotations {gt.shape}")
    if gt.shape[0] < 3:
        raise DataError(f"{label}: needs at least 3 frames (the first and last are not scored)")
    gt = np.where(gt == VOID, 0, gt)
    n_obj = int(gt[0].max())
    gts, preds = gt[1:-1], pred[1:-1]
    n_pred = int(preds.max())
    if n_pred > n_obj:
        raise DataError(
            f"{label}: the prediction uses object id {n_pred} but the first annotated frame has only "
            f"{n_obj} object(s); predict ids 1..{n_obj} (0 = background)"
        )
    n_frames = gts.shape[0]
    j = np.zeros((n_obj, n_frames))
    f = np.zeros((n_obj, n_frames))
    for k in range(n_obj):
        gt_k = gts == k + 1
        pred_k = preds == k + 1
        j[k] = region_similarity(gt_k, pred_k)
        f[k] = [boundary_f(gt_k[i], pred_k[i], bound_th) for i in range(n_frames)]
    return SequenceScore(name=name, J=j, F=f)


# --------------------------------------------------------------------------------------------------------
# folders


def _pngs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".png" and p.is_file())


def _read_frames(paths: Sequence[Path]) -> np.ndarray:
    frames = [read_label_png(p)[0] for p in paths]
    shapes = {fr.shape for fr in frames}
    if len(shapes) > 1:
        raise DataError(f"{paths[0].parent}: frames of different sizes {sorted(shapes)}")
    return np.stack(frames)


def _sequence_dirs(
    pred_dir: Path, gt_dir: Path, sequences: Sequence[str] | None
) -> list[tuple[str, Path, Path]]:
    if not gt_dir.is_dir():
        raise DataError(
            f"annotation folder {gt_dir} does not exist (pass DAVIS Annotations/480p or a sequence)"
        )
    if not pred_dir.is_dir():
        raise DataError(f"prediction folder {pred_dir} does not exist")
    if _pngs(gt_dir):  # a single sequence folder
        name = gt_dir.name
        if sequences is not None and list(sequences) != [name]:
            raise DataError(f"{gt_dir} is one sequence ({name!r}); it cannot provide {list(sequences)}")
        seq_pred = pred_dir / name if (pred_dir / name).is_dir() else pred_dir
        return [(name, seq_pred, gt_dir)]
    available = sorted(p.name for p in gt_dir.iterdir() if p.is_dir() and _pngs(p))
    if not available:
        raise DataError(f"{gt_dir} holds no <sequence>/<frame>.png annotations")
    if sequences is None:
        names = available
    else:
        names = list(sequences)
        missing = [s for s in names if s not in available]
        if missing:
            raise DataError(f"no annotations for sequence(s) {missing} in {gt_dir}")
    out = []
    for name in names:
        seq_pred = pred_dir / name
        if not seq_pred.is_dir():
            raise DataError(
                f"no predictions for sequence {name!r}: {seq_pred} is missing "
                "(the DAVIS format is <pred>/<sequence>/<frame>.png)"
            )
        out.append((name, seq_pred, gt_dir / name))
    return out


def read_prediction_sequence(pred_dir: Path, frame_ids: Sequence[str], shape: tuple[int, int]) -> np.ndarray:
    """Read ``<pred_dir>/<id>.png`` for all ids but the first and last into (F, H, W); zeros elsewhere."""
    pred = np.zeros((len(frame_ids), *shape), dtype=np.uint8)
    for i, fid in enumerate(frame_ids):
        if i == 0 or i == len(frame_ids) - 1:
            continue
        path = pred_dir / f"{fid}.png"
        if not path.is_file():
            raise DataError(
                f"prediction {path} is missing (every frame but the first and last must be predicted, "
                "named like the annotations)"
            )
        arr = read_label_png(path)[0]
        if arr.shape != tuple(shape):
            raise DataError(
                f"prediction {path} is {arr.shape[1]}x{arr.shape[0]} but the annotation is "
                f"{shape[1]}x{shape[0]}; write predictions at the annotation size"
            )
        pred[i] = arr
    return pred


def evaluate_folders(
    pred_dir: str | Path, gt_dir: str | Path, sequences: Sequence[str] | None = None
) -> DavisResult:
    """Score ``<pred_dir>/<seq>/<frame>.png`` against ``<gt_dir>/<seq>/<frame>.png``.

    ``gt_dir`` is a DAVIS ``Annotations/480p`` folder (every sequence folder in it is scored unless
    ``sequences`` names some) or one sequence folder. Annotations may be DAVIS-2017 palette PNGs or
    DAVIS-2016 single-channel 0/255 masks (read as object 1); predictions are palette or 0/255 PNGs.
    """
    result: dict[str, SequenceScore] = {}
    for name, seq_pred, seq_gt in _sequence_dirs(Path(pred_dir), Path(gt_dir), sequences):
        gt_paths = _pngs(seq_gt)
        gt = _read_frames(gt_paths)
        ids = [p.stem for p in gt_paths]
        if len(ids) < 3:
            raise DataError(f"sequence {name!r}: {len(ids)} annotated frame(s); at least 3 are needed")
        pred = read_prediction_sequence(seq_pred, ids, gt.shape[1:])
        result[name] = evaluate_sequence(gt, pred, name=name)
    return DavisResult(result)
