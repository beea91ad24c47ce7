"""Predictions on disk: DAVIS submission PNGs and JHMDB joint files, plus the JHMDB ground-truth reader.

- DAVIS: ``<out>/<sequence>/<frame>.png``, indexed PNGs with the DAVIS palette, one per frame, named and
  sized like the annotations (what davis2017-evaluation and ``dvx eval davis`` read);
- JHMDB: ``<out>/<video>.json`` = ``{"video": ..., "frames": [[[x, y] x 15] per frame]}`` with 0-based
  pixel coordinates in the original frame (JHMDB ``pos_img`` minus 1); a lost joint is ``null``.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from dvx.data.images import DAVIS_PALETTE, write_indexed_png
from dvx.errors import DataError, OutputError

JHMDB_JOINTS = 15
COORDINATES = "0-based pixel (x, y) in the original frame (JHMDB pos_img - 1)"


def write_davis_sequence(
    out_dir: str | Path,
    sequence: str,
    masks: np.ndarray,
    frame_names: Sequence[str],
    palette: np.ndarray | None = None,
) -> list[Path]:
    """Write (F, H, W) uint8 masks as ``<out_dir>/<sequence>/<name>.png`` (names as the annotations')."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (F, H, W), got {masks.shape}")
    if len(frame_names) != masks.shape[0]:
        raise ValueError(f"{masks.shape[0]} masks but {len(frame_names)} frame names")
    if masks.dtype != np.uint8:
        if masks.min(initial=0) < 0 or masks.max(initial=0) > 255:
            raise ValueError("mask ids must lie in 0..255")
        masks = masks.astype(np.uint8)
    folder = Path(out_dir) / sequence
    paths = []
    with _writing(folder):
        for name, mask in zip(frame_names, masks, strict=True):
            path = folder / f"{Path(name).stem}.png"
            write_indexed_png(path, mask, DAVIS_PALETTE if palette is None else palette)
            paths.append(path)
    return paths


@contextlib.contextmanager
def _writing(where: Path) -> Iterator[None]:
    """A prediction write that fails (disk full, no permission, --out under a file) is one line."""
    try:
        yield
    except OSError as err:
        raise OutputError(f"writing predictions to {where} failed: {err.strerror or err}") from err


def write_jhmdb_prediction(out_dir: str | Path, video: str, joints: np.ndarray) -> Path:
    """Write (F, J, 2) predicted joints (0-based pixels; NaN = lost) as ``<out_dir>/<video>.json``."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[-1] != 2:
        raise ValueError(f"joints must be (frames, joints, 2), got {joints.shape}")
    frames = [
        [None if not (math.isfinite(x) and math.isfinite(y)) else [float(x), float(y)] for x, y in frame]
        for frame in joints
    ]
    path = Path(out_dir) / f"{video}.json"
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"video": video, "coordinates": COORDINATES, "frames": frames}))
    return path


def read_jhmdb_prediction(path: str | Path) -> np.ndarray:
    """Read a ``<video>.json`` written by :func:`write_jhmdb_prediction` -> (F, J, 2), NaN for null."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        frames = data["frames"]
        out = np.array(
            [[[np.nan, np.nan] if p is None else [float(p[0]), float(p[1])] for p in fr] for fr in frames],
            dtype=np.float64,
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        raise DataError(
            f"{path}: not a JHMDB prediction file ({err}); expected "
            '{"video": ..., "frames": [[[x, y], ...15], ...]}'
        ) from err
    if out.ndim != 3 or out.shape[-1] != 2:
        raise DataError(f"{path}: every frame must list the same number of [x, y] joints")
    return out


def load_jhmdb_joints(mat_path: str | Path) -> np.ndarray:
    """JHMDB ``joint_positions.mat`` (``pos_img``: 2 x 15 x F, 1-based) -> (F, 15, 2) 0-based (x, y)."""
    from scipy.io import loadmat

    try:
        pos = np.asarray(loadmat(str(mat_path))["pos_img"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{mat_path}: cannot read pos_img from this .mat file ({err})") from err
    if pos.ndim != 3 or pos.shape[0] != 2:
        raise DataError(f"{mat_path}: pos_img has shape {pos.shape}, expected 2 x joints x frames")
    return np.transpose(pos, (2, 1, 0)) - 1.0


def find_jhmdb_annotation(root: str | Path, video: str) -> Path:
    """``<root>/joint_positions/<class>/<video>/joint_positions.mat`` for a video name."""
    base = Path(root) / "joint_positions"
    if not base.is_dir():
        raise DataError(f"{root} is not a JHMDB root: {base} is missing")
    hits = sorted(base.glob(f"*/{video}/joint_positions.mat"))
    if not hits:
        raise DataError(
            f"no ground truth for video {video!r} under {base}/<class>/{video}/joint_positions.mat"
        )
    if len(hits) > 1:
        raise DataError(f"video {video!r} appears in several classes: {[p.parent.parent.name for p in hits]}")
    return hits[0]
