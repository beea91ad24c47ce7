"""Probe predictions drawn on the input frames, read from what ``dvx probe --out`` wrote for one
(task, model, T, block): DAVIS masks (``<dir>/<video>/<frame>.png``, indexed PNGs), JHMDB joints
(``<dir>/<video>.json``) and TAP-Vid tracks (``<dir>/<video>.npz``, 256x256 raster). Whatever the folder
holds for a video is drawn; a video with nothing there is shown without overlay."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dvx.viz.kmeans import palette


def _blend(frame: np.ndarray, mask: np.ndarray, colour: np.ndarray, alpha: float = 0.5) -> None:
    frame[mask] = (frame[mask] * (1 - alpha) + colour * alpha).astype(np.uint8)


def _dot(frame: np.ndarray, x: float, y: float, colour: np.ndarray, r: int = 2) -> None:
    h, w = frame.shape[:2]
    if not (np.isfinite(x) and np.isfinite(y)):
        return
    xi, yi = int(np.rint(x)), int(np.rint(y))
    frame[max(0, yi - r) : min(h, yi + r + 1), max(0, xi - r) : min(w, xi + r + 1)] = colour


def overlay(frames: np.ndarray, names: Sequence[str], video: str, folder: Path) -> np.ndarray | None:
    """``frames`` (F, H, W, 3) uint8 named ``names`` with the predictions of ``video`` in ``folder`` drawn
    on a copy; None when the folder holds no prediction of that video."""
    out = frames.copy()
    drawn = False
    masks = folder / video
    if masks.is_dir():
        from PIL import Image

        cols = palette(20)
        for i, name in enumerate(names):
            png = masks / f"{name}.png"
            if png.is_file():
                m = np.asarray(Image.open(png))
                if m.shape != out.shape[1:3]:
                    m = np.asarray(Image.fromarray(m).resize(out.shape[2:0:-1], Image.Resampling.NEAREST))
                for obj in np.unique(m):
                    if obj not in (0, 255):
                        _blend(out[i], m == obj, cols[(int(obj) - 1) % len(cols)])
                drawn = True
    joints = folder / f"{video}.json"
    if joints.is_file():
        rec = json.loads(joints.read_text())
        cols = palette(15)
        for i, frame in enumerate(rec.get("frames", [])[: len(out)]):
            for j, xy in enumerate(frame):
                if xy is not None:
                    _dot(out[i], xy[0], xy[1], cols[j % len(cols)])
        drawn = True
    tracks = folder / f"{video}.npz"
    if tracks.is_file():
        with np.load(tracks, allow_pickle=False) as z:
            t, occ = z["tracks"], z["occluded"]
        h, w = out.shape[1:3]
        cols = palette(max(1, len(t)))
        for q in range(len(t)):
            for i in range(min(len(out), t.shape[1])):
                if not occ[q, i]:
                    _dot(out[i], t[q, i, 0] / 256 * w, t[q, i, 1] / 256 * h, cols[q], r=1)
        drawn = True
    return out if drawn else None
