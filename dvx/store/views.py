"""Lazy xarray/dask views over a recipe's committed arrays, for scans over many videos."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from dvx.errors import CacheMissError, StoreError

if TYPE_CHECKING:
    import xarray

    from dvx.store.group import RecipeGroup


def dataarray(
    group: RecipeGroup,
    t: int,
    block: str,
    videos: Iterable[str] | None = None,
    dtype: str | np.dtype | None = None,
) -> xarray.DataArray:
    """``(video, frame, channel, y, x)``, lazily read video by video (each read checked against its commit
    record, :meth:`RecipeGroup.read`); shorter videos NaN-padded.

    ``dtype``: the stored float16 by default; ``"float32"`` for reductions (a float16 ``.mean()`` over
    many elements overflows). Coordinates: ``video`` (ids), ``frame`` (stored temporal index),
    ``n_frames`` (stored frames per video, along ``video``) and ``frame_name`` (along ``video`` and
    ``frame``: the name of the first input frame each stored index covers, ``""`` on padding). Attributes
    carry the dataset, recipe name, T and block.
    """
    import dask
    import dask.array as da
    import xarray as xr

    index = group.index()
    names = list(videos) if videos is not None else index.videos(t, block)
    if not names:
        raise CacheMissError(group.miss_message(["<any>"], [t], [block]))
    arrays, frame_names = [], []
    for video in names:
        commit = group.commit_for(video, t, block)
        read = dask.delayed(group.read, pure=True)(video, t, block)
        arrays.append(da.from_delayed(read, shape=tuple(commit.shapes[block]), dtype=np.float16))
        frame_names.append([commit.frame_names[covered[0]] for covered in commit.time_map])
    geom = {a.shape[1:] for a in arrays}
    if len(geom) != 1:
        raise StoreError(f"{group.path} {t}/{block}: videos have different feature geometry {sorted(geom)}")
    longest = max(a.shape[0] for a in arrays)
    out_dtype = np.dtype(dtype) if dtype is not None else arrays[0].dtype
    if out_dtype.kind != "f":
        raise StoreError(f"dataarray dtype must be a float type (padding is NaN), got {out_dtype}")
    padded = [
        (a if a.dtype == out_dtype else a.astype(out_dtype))
        if a.shape[0] == longest
        else da.pad(
            a.astype(out_dtype),
            ((0, longest - a.shape[0]), (0, 0), (0, 0), (0, 0)),
            mode="constant",
            constant_values=out_dtype.type("nan"),
        )
        for a in arrays
    ]
    data = da.stack(padded, axis=0)
    names_grid = [fn + [""] * (longest - len(fn)) for fn in frame_names]
    return xr.DataArray(
        data,
        dims=("video", "frame", "channel", "y", "x"),
        coords={
            "video": names,
            "frame": np.arange(longest),
            "n_frames": ("video", [a.shape[0] for a in arrays]),
            "frame_name": (("video", "frame"), np.array(names_grid, dtype=object)),
        },
        attrs={"dataset": group.dataset, "recipe": group.recipe.name, "T": t, "block": block},
        name=f"{group.recipe.model}/t{t:04d}/{block}",
    )
