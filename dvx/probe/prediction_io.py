"""Predictions on disk: DAVIS submission PNGs and JHMDB joint files, and the config saved beside them.

``dvx probe --out OUT`` writes one folder per (T, block):
``OUT/<task>/<dataset>/<model>@<fp8>/T<T>/<block>/`` holding the predictions and ``dvx-config.json`` (the
probe record's key fields and its resolved config, as litgpt saves hyperparameters beside outputs), so a
folder always says what produced it, and two models, tasks or datasets never share one.

- DAVIS: ``<folder>/<sequence>/<frame>.png``, indexed PNGs with the DAVIS palette, one per frame, named
  and sized like the annotations (what davis2017-evaluation and ``dvx eval`` read);
- JHMDB: ``<folder>/<video id>.json`` = ``{"video": ..., "frames": [[[x, y] x 15] per frame]}`` with
  0-based pixel coordinates in the original frame (JHMDB ``pos_img`` minus 1); a lost joint is ``null``.
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
from dvx.results import CONFIG_FILE

JHMDB_JOINTS = 15
COORDINATES = "0-based pixel (x, y) in the original frame (JHMDB pos_img - 1)"


def prediction_folders(root: Path) -> list[Path]:
    """The dvx prediction folders at or below ``root`` (each holding a dvx-config.json), or ``[root]``
    itself when there are none (a plain folder of predictions)."""
    if not root.is_dir():
        raise DataError(f"prediction folder {root} does not exist")
    found = sorted(p.parent for p in root.rglob(CONFIG_FILE))
    return found or [root]


def prediction_files(folder: Path, suffix: str) -> list[Path]:
    """The prediction files of a folder (``*<suffix>``, the config file left out)."""
    files = sorted(p for p in folder.glob(f"*{suffix}") if p.name != CONFIG_FILE)
    if not files:
        raise DataError(f"{folder} holds no <video>{suffix} predictions")
    return files


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
