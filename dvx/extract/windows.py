"""Forward units: frame batches for image models, clips of the native length for video models.

Video models see non-overlapping windows of ``clip_len`` frames; the last one is padded by repeating the
last frame and the stored outputs that only cover padding are dropped. With time compression (tubelets,
causal video VAEs) a stored temporal index covers several input frames; the map is kept per stored index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Unit:
    index: int  # clip index (video models) or batch index (image models)
    frames: tuple[int, ...]  # input frame indices fed to the model (padding repeats the last frame)
    store_start: int  # first stored temporal index this unit writes
    keep: int  # stored outputs kept from this unit
    time_map: tuple[tuple[int, ...], ...]  # per kept output: the real input frames it covers


def plan_units(
    n_frames: int, clip_len: int | None, batch: int, temporal_map: Sequence[Sequence[int]] | None = None
) -> list[Unit]:
    """Units covering ``n_frames``; ``clip_len`` None means an image model batched by ``batch`` frames."""
    if n_frames < 1:
        raise ValueError("a video needs at least one frame")
    units: list[Unit] = []
    if clip_len is None:
        for k, start in enumerate(range(0, n_frames, batch)):
            idx = tuple(range(start, min(start + batch, n_frames)))
            units.append(Unit(k, idx, start, len(idx), tuple((i,) for i in idx)))
        return units
    tmap = [tuple(m) for m in (temporal_map or [[i] for i in range(clip_len)])]
    per_clip = len(tmap)
    store = 0
    for k, start in enumerate(range(0, n_frames, clip_len)):
        idx = tuple(min(start + j, n_frames - 1) for j in range(clip_len))
        real = n_frames - start  # frames of this clip that are not padding
        kept = [tuple(start + j for j in m if j < real) for m in tmap]
        keep = sum(1 for m in kept if m)
        if any(kept[i] for i in range(keep, per_clip)):
            raise ValueError("temporal map is not monotonic: a kept output follows a padded one")
        units.append(Unit(k, idx, store, keep, tuple(kept[:keep])))
        store += keep
    return units


def chunk_frames(clip_len: int | None, batch: int, temporal_map: Sequence[Sequence[int]] | None) -> int:
    """Stored frames per chunk: one chunk per unit, so every write covers whole chunks."""
    if clip_len is None:
        return batch
    return len(temporal_map) if temporal_map is not None else clip_len
