"""Tiny TAP-Vid pickles in exactly the official structures (tapnet ``tapvid/README.md``,
``evaluation_datasets.py``, ``generate_tapvid.py``):

- DAVIS: ``tapvid_davis.pkl`` = {name: {"video": (F, H, W, 3) uint8, "points": (N, F, 2) float32,
  "occluded": (N, F) bool}};
- RGB-Stacking: ``tapvid_rgb_stacking.pkl`` = a list of such dicts;
- Kinetics: ``NNNN_of_MMMM.pkl`` shards, each a list of dicts whose "video" is ``np.array(tuple of JPEG
  bytes)`` (a fixed-width bytes array, as ``generate_tapvid.py`` builds it) and "points" float64.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def example(rng: np.random.Generator, frames: int, size: tuple[int, int], points: int) -> dict[str, Any]:
    h, w = size
    occluded = rng.random((points, frames)) < 0.3
    occluded[:, 0] = False  # every track visible somewhere
    return {
        "video": rng.integers(0, 256, (frames, h, w, 3), dtype=np.uint8),
        "points": rng.random((points, frames, 2)).astype(np.float32),
        "occluded": occluded,
    }


def jpeg(frame: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def write_davis(root: Path, examples: dict[str, dict[str, Any]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "tapvid_davis.pkl", "wb") as f:
        pickle.dump(examples, f)
    return root


def write_rgb_stacking(root: Path, examples: list[dict[str, Any]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "tapvid_rgb_stacking.pkl", "wb") as f:
        pickle.dump(examples, f)
    return root


def kinetics_example(ex: dict[str, Any]) -> dict[str, Any]:
    """A decoded example in the Kinetics shard form: JPEG frames, float64 points."""
    return {
        "video": np.array(tuple(jpeg(fr) for fr in ex["video"])),
        "points": ex["points"].astype(np.float64),
        "occluded": ex["occluded"],
    }


def write_kinetics(root: Path, shards: list[list[dict[str, Any]]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, shard in enumerate(shards):
        with open(root / f"{i:04d}_of_{len(shards):04d}.pkl", "wb") as f:
            pickle.dump([kinetics_example(ex) for ex in shard], f)
    return root
