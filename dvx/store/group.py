"""A recipe group: one (dataset, model@fingerprint) in the store, its index and its arrays."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from dvx.errors import CacheMissError, StoreError
from dvx.store import layout
from dvx.store.backend import Backend
from dvx.store.index import Commit, Failure, IndexView
from dvx.store.recipe import Recipe

if TYPE_CHECKING:
    import torch
    import xarray

#: an unreadable commit record: (video, gen, key, why)
BadCommit = tuple[str, str, str, str]


class RecipeGroup:
    """Read access to the committed features of one recipe (and the keys the writer needs)."""

    def __init__(self, backend: Backend, dataset: str, recipe: Recipe) -> None:
        self.backend = backend
        self.dataset = dataset
        self.recipe = recipe
        self.path = layout.recipe_key(dataset, recipe.model, recipe.fp8)
        self._index: IndexView | None = None

    def __repr__(self) -> str:
        return f"RecipeGroup({self.backend.location!r}, {self.path!r})"

    # ---- index ---------------------------------------------------------------------------------------
    def index(self, refresh: bool = False) -> IndexView:
        if self._index is None or refresh:
            self._index = self._readable_index(None)
        return self._index

    def video_index(self, video: str) -> IndexView:
        """A fresh index of one video's commits: what a writer checks after claiming a video another job
        may have committed since this job started. It lists only the names ``<video>~*`` (never the whole
        commits folder: a writer calls this for about every video, so that would be quadratic), then reads
        those records."""
        return self._readable_index(video)

    def commit_records(self, video: str | None = None) -> tuple[list[Commit], list[BadCommit]]:
        """The commit records of every video (or of one), listed once and read in one batch, and for each
        unreadable record (video, gen, key, why). A record removed between listing and reading is left out."""
        prefix = layout.commits_prefix(self.path)
        names = (
            self.backend.list_dir(prefix)
            if video is None
            else self.backend.list_dir_starting(prefix, f"{video}{layout.GEN_SEP}")
        )
        named = [
            (prefix + n, p) for n in names if (p := layout.parse_commit_name(n)) and (video in (None, p[0]))
        ]
        raws = self.backend.get_many_bytes([key for key, _ in named])
        commits, bad = [], []
        for (key, (vid, gen)), raw in zip(named, raws, strict=True):
            if raw is None:  # removed meanwhile
                continue
            try:
                commits.append(Commit.from_json(json.loads(raw)))
            except (ValueError, KeyError, TypeError, AttributeError) as err:  # ValueError covers bad JSON
                bad.append((vid, gen, key, f"unreadable record: {err}"))
        return commits, bad

    def _readable_index(self, video: str | None) -> IndexView:
        """An index of the commits; an unreadable commit record is an error (skipping it could serve a
        video's older, superseded features), with the command that repairs it."""
        commits, bad = self.commit_records(video)
        if bad:
            _, _, key, why = bad[0]
            more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
            raise StoreError(
                f"{self.backend.location}: commit record {key}{more} cannot be read ({why}); "
                f"run `dvx cache verify {self.backend.location} --repair` to uncommit the damaged video(s)"
            )
        return IndexView(commits)

    def failures(self) -> dict[str, Failure]:
        keys = [k for k in self.backend.list_prefix(layout.failures_prefix(self.path)) if k.endswith(".json")]
        out = {}
        for rec in self.backend.get_many_json(keys):
            if rec is not None:
                out[rec["video"]] = Failure(**rec)
        return out

    def noise_levels(self) -> dict[int, dict[str, Any]]:
        """T -> the effective noise level recorded for it (sigma, SNR, the model's own timestep value)."""
        out = {}
        for name in self.backend.list_dir(self.path):
            t = layout.parse_t_key(name)
            if t is not None:
                out[t] = self.backend.group_attrs(f"{self.path}/{name}") or {}
        return out

    # ---- reading -------------------------------------------------------------------------------------
    def commit_for(self, video: str, t: int, block: str) -> Commit:
        commit = self.index().lookup(video, t, block)
        if commit is None:
            raise CacheMissError(self.miss_message([video], [t], [block]))
        return commit

    def array_key(self, video: str, t: int, block: str) -> str:
        commit = self.commit_for(video, t, block)
        return layout.array_key(self.path, t, block, video, commit.gen)

    def read(self, video: str, t: int, block: str) -> np.ndarray:
        """One video's features at (T, block): (stored frames, C, h, w) float16."""
        key = self.array_key(video, t, block)
        try:
            arr = self.backend.open_array(key)
            return np.asarray(arr[...])
        except (FileNotFoundError, KeyError) as err:
            raise StoreError(
                f"{self.backend.location}: committed array {key} is missing (run `dvx cache verify`)"
            ) from err

    def tensor(
        self, video: str, t: int, block: str, device: str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """One video's features as a torch tensor (float16 unless ``dtype`` is given)."""
        import torch

        x = torch.from_numpy(self.read(video, t, block))
        if dtype is not None:
            x = x.to(dtype)
        return x.to(device) if device is not None else x

    def dataarray(
        self, t: int, block: str, videos: Iterable[str] | None = None, dtype: str | np.dtype | None = None
    ) -> xarray.DataArray:
        """A lazy dask-backed view ``(video, frame, channel, y, x)`` (NaN-padded to the longest video), in
        ``dtype`` (default: the stored float16; use float32 to reduce), with frame coordinates."""
        from dvx.store.views import dataarray

        return dataarray(self, t, block, videos, dtype)

    def miss_message(
        self, videos: list[str], timesteps: list[int], blocks: list[str], data_root: str | None = None
    ) -> str:
        """What is missing and the extract command that fills it (``data_root``: the caller's, if known)."""
        shown = ", ".join(videos[:5]) + (f" and {len(videos) - 5} more" if len(videos) > 5 else "")
        ts = ",".join(str(t) for t in timesteps)
        return (
            f"cache miss in {self.backend.location}: {self.path} (model {self.recipe.model}, recipe "
            f"{self.recipe.fp8}) lacks T={ts} block(s) {','.join(blocks)} for {len(videos)} video(s): "
            f"{shown}. "
            f"Extract them with: dvx extract --model {self.recipe.model} --dataset {self.dataset} "
            f"--data-root {data_root or 'DATA_ROOT'} "
            f"--timesteps {ts} --blocks {','.join(blocks)} --store {self.backend.location} "
            f"(same recipe options)"
        )

    def require(
        self,
        videos: Iterable[str],
        timesteps: Iterable[int],
        blocks: Iterable[str],
        data_root: str | None = None,
    ) -> None:
        """Raise CacheMissError naming what is missing, if any (video, T, block) is not committed."""
        timesteps, blocks = list(timesteps), list(blocks)
        index = self.index()
        missing = [v for v in videos if not index.has(v, timesteps, blocks)]
        if missing:
            raise CacheMissError(self.miss_message(missing, timesteps, blocks, data_root))
