"""Point-tracking predictions on disk: ``<dir>/<video>.npz``, one file per video.

Keys (what ``dvx eval tapvid`` reads; any tracker can write them):

- ``tracks``: (Q, F, 2) float32, x then y in the 256x256 TAP-Vid raster (``x_normalised * 256``);
- ``occluded``: (Q, F) bool, the predicted occlusion;
- ``query_points`` (optional): (Q, 3) float32 ``[t, y, x]`` in the raster, the queries the rows answer,
  in the order of tapnet's query sampling for the query mode. When present, the evaluator checks them
  against the ground truth's queries, so predictions made for the other query mode fail loudly.

Files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dvx.errors import DataError

SUFFIX = ".npz"


@dataclass(frozen=True)
class Prediction:
    """One video's predicted tracks, in the raster."""

    tracks: np.ndarray  # (Q, F, 2) float32
    occluded: np.ndarray  # (Q, F) bool
    query_points: np.ndarray | None = None  # (Q, 3) float32 [t, y, x]

    def __post_init__(self) -> None:
        t, o = self.tracks, self.occluded
        if t.ndim != 3 or t.shape[-1] != 2 or o.shape != t.shape[:2]:
            raise ValueError(f"tracks (Q, F, 2) and occluded (Q, F) expected, got {t.shape} and {o.shape}")
        if self.query_points is not None and self.query_points.shape != (t.shape[0], 3):
            raise ValueError(f"query_points must be ({t.shape[0]}, 3), got {self.query_points.shape}")


def write_prediction(out_dir: str | Path, video: str, pred: Prediction) -> Path:
    """Write ``<out_dir>/<video>.npz`` atomically (temporary file + rename)."""
    path = Path(out_dir) / f"{video}{SUFFIX}"
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "tracks": np.asarray(pred.tracks, dtype=np.float32),
        "occluded": np.asarray(pred.occluded, dtype=bool),
    }
    if pred.query_points is not None:
        arrays["query_points"] = np.asarray(pred.query_points, dtype=np.float32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    tmp.replace(path)
    return path


def read_prediction(path: str | Path) -> Prediction:
    """Read a ``<video>.npz`` prediction; anything else is a one-line DataError."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            tracks, occluded = z["tracks"], z["occluded"]
            query_points = z["query_points"] if "query_points" in z.files else None
        return Prediction(
            tracks.astype(np.float32),
            occluded.astype(bool),
            None if query_points is None else query_points.astype(np.float32),
        )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise DataError(
            f"{path}: not a point-tracking prediction ({err}); expected an .npz with tracks (Q, F, 2) "
            "float32 in the 256x256 raster and occluded (Q, F) bool"
        ) from err


def prediction_files(folder: str | Path) -> dict[str, Path]:
    """``{video: path}`` of the ``*.npz`` files in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"prediction folder {folder} does not exist")
    return {p.stem: p for p in sorted(folder.glob(f"*{SUFFIX}")) if not p.name.startswith(".")}
