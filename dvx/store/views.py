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
    group: RecipeGroup, t: int, block: str, videos: Iterable[str] | None = None
) -> xarray.DataArray:
    """``(video, frame, channel, y, x)`` float16, lazily read video by video (each read checked against
    its commit record, :meth:`RecipeGroup.read`); shorter videos NaN-padded.

    Coordinates: ``video`` (ids) and ``n_frames`` (stored frames per video, along ``video``). Attributes
    carry the dataset, recipe name, T and block.
    """
    import dask
    import dask.array as da
    import xarray as xr

    index = group.index()
    names = list(videos) if videos is not None else index.videos(t, block)
    if not names:
        raise CacheMissError(group.miss_message(["<any>"], [t], [block]))
    arrays = []
    for video in names:
        shape = tuple(group.commit_for(video, t, block).shapes[block])
        read = dask.delayed(group.read, pure=True)(video, t, block)
        arrays.append(da.from_delayed(read, shape=shape, dtype=np.float16))
    geom = {a.shape[1:] for a in arrays}
    if len(geom) != 1:
        raise StoreError(f"{group.path} {t}/{block}: videos have different feature geometry {sorted(geom)}")
    longest = max(a.shape[0] for a in arrays)
    padded = [
        a
        if a.shape[0] == longest
        else da.pad(
            a,
            ((0, longest - a.shape[0]), (0, 0), (0, 0), (0, 0)),
            mode="constant",
            constant_values=np.float16("nan"),
        )
        for a in arrays
    ]
    data = da.stack(padded, axis=0)
    return xr.DataArray(
        data,
        dims=("video", "frame", "channel", "y", "x"),
        coords={"video": names, "n_frames": ("video", [a.shape[0] for a in arrays])},
        attrs={"dataset": group.dataset, "recipe": group.recipe.name, "T": t, "block": block},
        name=f"{group.recipe.model}/t{t:04d}/{block}",
    )
