"""A recipe group: one (dataset, model@fingerprint) in the store, its index and its arrays.

Every read of features goes through :func:`dvx.store.reader.read_array`, which checks the array against
its commit record; a damaged commit record hides its video. Either way the reader gets one line naming the
store, recipe, video (T, block) and the exact command that repairs it (:meth:`RecipeGroup.repair_command`).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from dvx.errors import CacheMissError, StoreError
from dvx.store import compact, layout
from dvx.store.backend import Backend, DamagedObjectError
from dvx.store.index import Commit, DamagedRecord, Failure, IndexView, array_slot, parse_commit
from dvx.store.reader import ArrayDamage, read_array
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
        self._flat: bool | None = None  # whether the commits folder holds flat records of an older dvx
        self._names: dict[tuple[str, str], str] = {}  # (video, gen) -> its record's name as last read
        self._stored: dict[tuple[int, str, str, str], int] = {}  # noted stored sizes (compacted index)
        # what the last full open of this group found: record name -> (listed size and time, commit), and
        # the stored sizes noted for it; a later open reuses them for records listed unchanged
        self._memo: dict[str, tuple[compact.Stat, Commit]] = {}
        self._stored_memo: dict[str, dict[tuple[int, str, str, str], int]] = {}

    def __repr__(self) -> str:
        return f"RecipeGroup({self.backend.location!r}, {self.path!r})"

    # ---- index ---------------------------------------------------------------------------------------
    def index(self, refresh: bool = False) -> IndexView:
        if self._index is None or refresh:
            self._index = self._readable_index(None)
        return self._index

    def video_index(self, video: str) -> IndexView:
        """A fresh index of one video's commits: what a writer checks after claiming a video another job
        may have committed since this job started. It lists only the video's own commits folder (never
        the whole commits folder: a writer calls this for about every video, so that would be quadratic),
        plus, in a store that holds flat records of an older dvx, those named ``<video>~*``."""
        return self._readable_index(video)

    def commit_records(
        self, video: str | None = None, use_compact: bool = False
    ) -> tuple[list[Commit], list[BadCommit]]:
        """The commit records of every video (or of one), listed once and read in one batch, and for each
        damaged record (video, gen, key, why), with video and gen taken from its file name (never from its
        content). A record removed between listing and reading is left out.

        ``use_compact`` (all videos, local stores only): take the records that the compacted index
        covers from it (dvx/store/compact.py: only where the record file is listed with the size and
        time it noted) and read the others; with write access, rebuild it when it covers too few. Object
        stores list times in whole seconds, too coarse to tell a record rewritten in place: there every
        record is read (in concurrent batches). ``dvx cache verify`` never uses it."""
        prefix = layout.commits_prefix(self.path)
        if video is not None:
            return self._read_records(prefix, self._video_record_names(video))
        if not use_compact or not self.backend.is_local:  # names only
            names = [
                n for k in self.backend.list_prefix(prefix) if layout.parse_commit_name(n := k[len(prefix) :])
            ]
            self._flat = any("/" not in n for n in names)
            return self._read_records(prefix, names)
        listed = {k[len(prefix) :]: st for k, st in self.backend.stat_prefix(prefix).items()}
        names = [n for n in sorted(listed) if layout.parse_commit_name(n)]
        self._flat = any("/" not in n for n in names)
        if all(n in self._memo and self._memo[n][0] == listed[n] and listed[n][1] > 0 for n in names):
            entries: dict[str, compact.CompactEntry] = {}
            state = "ok"  # nothing new since the last open: the compact file is not needed
        else:
            entries, state = compact.load(self.backend, self.path, self.recipe.fingerprint)
        fp = self.recipe.fingerprint
        self._stored = {}
        known, rest = [], []
        memo = self._memo
        for n in names:
            seen = memo.get(n)
            if seen is not None and seen[0] == listed[n] and listed[n][1] > 0:
                known.append((n, seen[1]))  # read or covered by an earlier open, listed unchanged
                self._stored.update(self._stored_memo.get(n, {}))
                continue
            c = compact.covered(entries.get(n), listed[n], n, fp)
            if c is None:
                rest.append(n)
            else:
                known.append((n, c))
                self._names[(c.video, c.gen)] = n
                noted = {
                    (int(slot[1:5]), slot[6:], c.video, c.gen): nbytes
                    for slot, nbytes in (entries[n].stored or {}).items()
                }
                self._stored.update(noted)
                self._stored_memo[n] = noted
        commits, bad = self._read_records(prefix, rest)
        self._memo = {
            n: (listed[n], c) for n, c in [*known, *((self._name(c), c) for c in commits)] if n in listed
        }
        stale = len(entries) - len(known)  # entries whose record is gone or changed
        uncovered = len(rest) - len(bad)
        if not self.backend.read_only and (
            max(uncovered, stale) >= self.compact_after or (state == "damaged" and uncovered)
        ):
            self._compact(listed, [*known, *((self._name(c), c) for c in commits)], entries)
        return [c for _, c in known] + commits, bad

    def stored_sizes(self) -> dict[tuple[int, str, str, str], int]:
        """(T, block, video, gen) -> stored bytes of the arrays whose records the last full index open
        took from the compacted index with their sizes (local stores; dvx/store/listing.py)."""
        return dict(self._stored)

    #: rebuild the compacted index once this many listed records are not in it (tests lower it)
    compact_after = compact.REBUILD_AFTER

    def _name(self, commit: Commit) -> str:
        """A record's name below the commits folder, as listed (the flat name of an older store)."""
        return self._names.get((commit.video, commit.gen), f"{commit.video}/{commit.gen}.json")

    def _compact(
        self,
        listed: dict[str, compact.Stat],
        named: list[tuple[str, Commit]],
        old: dict[str, compact.CompactEntry],
    ) -> bool:
        """Rebuild the compacted index from intact commits (their record files were checked, or covered),
        keeping the stored sizes already noted and measuring the others (local stores)."""
        entries = {}
        for n, c in named:
            if n not in listed or c.legacy:
                continue
            prev = old.get(n)
            stored = prev.stored if prev is not None and prev.stored is not None else self._measure(c)
            entries[n] = compact.CompactEntry(listed[n][0], listed[n][1], c.to_json(), stored)
        return compact.save(self.backend, self.path, self.recipe.fingerprint, entries)

    def _measure(self, commit: Commit) -> dict[str, int] | None:
        """array_slot -> stored bytes of each array of ``commit``, on a local store (None elsewhere: a
        listing per array would cost a request each; there one recursive listing gives every size)."""
        if not self.backend.is_local or self.backend.read_only:
            return None
        out = {}
        for t in commit.timesteps:
            for b in commit.blocks:
                key = layout.array_key(self.path, t, b, commit.video, commit.gen)
                out[array_slot(t, b)] = sum(size for size, _ in self.backend.stat_prefix(key).values())
        return out

    def compact(self) -> bool:
        """Rebuild the compacted index now from the record files (benchmarks, tools); False when it
        cannot be written (a read-only store)."""
        prefix = layout.commits_prefix(self.path)
        listed = {k[len(prefix) :]: st for k, st in self.backend.stat_prefix(prefix).items()}
        commits, _ = self._read_records(prefix, [n for n in sorted(listed) if layout.parse_commit_name(n)])
        old, _ = compact.load(self.backend, self.path, self.recipe.fingerprint)
        return self._compact(listed, [(self._name(c), c) for c in commits], old)

    def _video_record_names(self, video: str) -> list[str]:
        """The names (below the commits folder) of one video's records: its own folder, and the flat
        ``<video>~<gen>.json`` of an older dvx unless the group's last full listing found none."""
        prefix = layout.commits_prefix(self.path)
        # a prefix listing: on S3 one request for the folder, even when it does not exist yet (a folder
        # listing of a missing folder there lists its parent, the whole commits folder)
        names = [
            k[len(prefix) :] for k in self.backend.list_prefix(layout.video_commits_prefix(self.path, video))
        ]
        # flat records: looked for unless this group's last full listing (``index()``, which a run makes
        # at its start) found none; only a store that holds some pays for the look on every video
        if self._flat is not False:
            names += self.backend.list_dir_starting(prefix, f"{video}{layout.GEN_SEP}")
        return names

    def _read_records(self, prefix: str, names: Iterable[str]) -> tuple[list[Commit], list[BadCommit]]:
        named = [(prefix + n, n, p) for n in names if (p := layout.parse_commit_name(n))]
        raws = self.backend.get_many_bytes([key for key, _, _ in named])
        commits, bad = [], []
        for (key, name, (vid, gen)), raw in zip(named, raws, strict=True):
            if raw is None:  # removed meanwhile
                continue
            self._names[(vid, gen)] = name
            try:
                commits.append(parse_commit(raw, vid, gen, self.recipe.fingerprint))
            except DamagedRecord as err:
                bad.append((vid, gen, key, f"damaged record: {err}"))
        return commits, bad

    def record_key(self, video: str, gen: str) -> str:
        """The key of the record file of (video, gen) as last listed (flat in an older store)."""
        return layout.commits_prefix(self.path) + self._name(
            Commit(video, gen, (), (), (), (), (0, 0), {}, 0)
        )

    def _readable_index(self, video: str | None) -> IndexView:
        """An index of the commits; a video with a damaged commit record is not visible (skipping only the
        record could serve the video's older, superseded features): readers name the repair instead."""
        commits, bad = self.commit_records(video, use_compact=video is None)
        damaged: dict[str, str] = {}
        for vid, _, key, why in bad:
            damaged.setdefault(vid, f"commit record {key}: {why}")
        return IndexView(commits, damaged)

    def repair_command(self, videos: Iterable[str] | None = None) -> str:
        """The command that uncommits damage in this recipe (of ``videos`` only, if given)."""
        only = f" --videos {shlex.quote(','.join(videos))}" if videos else ""
        return (
            f"dvx cache verify --store {shlex.quote(self.backend.location)} --dataset {self.dataset} "
            f"--model {self.recipe.model}{only} --repair"
        )

    def failures(self) -> dict[str, Failure]:
        """video -> why it was skipped, for the videos an ``extract --skip-bad`` recorded as unreadable. A
        failure record that cannot be read still names its video (from its file name)."""
        prefix = layout.failures_prefix(self.path)
        keys = [k for k in self.backend.list_prefix(prefix) if k.endswith(".json")]
        out = {}
        for key, raw in zip(keys, self.backend.get_many_bytes(keys), strict=True):
            if raw is None:
                continue
            video = key[len(prefix) : -len(".json")]
            try:
                rec = json.loads(raw)
                when, who = rec.get("written_at", ""), rec.get("written_by", {})
                out[video] = Failure(video, str(rec["reason"]), when, who)
            except (ValueError, KeyError, TypeError) as err:
                out[video] = Failure(video, f"(unreadable failure record: {type(err).__name__})")
        return out

    def noise_levels(self) -> dict[int, dict[str, Any]]:
        """T -> the effective noise level recorded for it (sigma, SNR, the model's own timestep value)."""
        out = {}
        for name in self.backend.list_dir(self.path):
            t = layout.parse_t_key(name)
            if t is not None:
                try:
                    out[t] = self.backend.group_attrs(f"{self.path}/{name}") or {}
                except DamagedObjectError as err:
                    raise StoreError(f"{err}; the extract command that wrote T={t} writes it again") from err
        return out

    # ---- reading -------------------------------------------------------------------------------------
    def commit_for(self, video: str, t: int, block: str) -> Commit:
        self.check_readable([video])
        commit = self.index().lookup(video, t, block)
        if commit is None:
            raise CacheMissError(self.miss_message([video], [t], [block]))
        return commit

    def array_key(self, video: str, t: int, block: str) -> str:
        commit = self.commit_for(video, t, block)
        return layout.array_key(self.path, t, block, video, commit.gen)

    def read(self, video: str, t: int, block: str, frames: tuple[int, int] | None = None) -> np.ndarray:
        """One video's features at (T, block): (stored frames, C, h, w) float16, checked against its commit
        record (metadata, every chunk present, every checksum; dvx/store/reader.py). ``frames`` = (start,
        stop): only those stored frames (the chunks holding them are read and checked)."""
        commit = self.commit_for(video, t, block)
        key = layout.array_key(self.path, t, block, video, commit.gen)
        try:
            data, _ = read_array(self.backend, key, commit.shapes[block], commit.entry(t, block), frames)
        except ArrayDamage as err:
            raise StoreError(
                f"{self.backend.location}: {self.path} video {video} T={t} {block}: {err}; run "
                f"`{self.repair_command([video])}`, then the same extract command again to recompute it"
            ) from err
        return data

    def frames(self, video: str, t: int, block: str) -> StoredFrames:
        """One video's features at (T, block) as a lazy (stored frames, C, h, w) array: slicing the frame
        axis (``maps[a:b]``) reads and checks only the chunks holding those frames, so a reader of a long
        video holds a few frames at a time."""
        return StoredFrames(self, video, t, block, tuple(self.commit_for(video, t, block).shapes[block]))

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
            f"{shown}. Extract them with the recipe's other options as before: "
            f"`{self.extract_command(timesteps, blocks, data_root)}`"
        )

    def extract_command(
        self, timesteps: Iterable[int], blocks: Iterable[str], data_root: str | None = None
    ) -> str:
        """The ``dvx extract`` command for ``timesteps`` x ``blocks`` of this recipe (its resolution, clip,
        stride, frame cap, seed and ensemble as recorded; DATA_ROOT where the caller does not know it)."""
        r, q = self.recipe, shlex.quote
        parts = [
            f"dvx extract --model {r.model} --dataset {self.dataset}",
            f"--data-root {q(data_root or 'DATA_ROOT')} --store {q(self.backend.location)}",
            f"--timesteps {','.join(str(t) for t in timesteps)} --blocks {','.join(blocks)}",
            f"--resolution {r.resolution[0]}x{r.resolution[1]} --dtype {r.dtype}",
        ]
        if r.source and not r.source.startswith("tiny:"):  # hub id or folder: its weights' digest must match
            parts.append(f"--weights {q(r.source)}" + (f" --revision {q(r.revision)}" if r.revision else ""))
        if r.clip_len is not None:
            parts.append(f"--clip-len {r.clip_len}")
        if r.frame_stride != 1:
            parts.append(f"--frame-stride {r.frame_stride}")
        if r.max_frames is not None:
            parts.append(f"--max-frames {r.max_frames}")
        if r.seed:
            parts.append(f"--seed {r.seed}")
        if r.ensemble != 1:
            parts.append(f"--ensemble {r.ensemble}")
        if r.latent == "sample":
            parts.append("--latent sample")
        return " ".join(parts)

    def require(
        self,
        videos: Iterable[str],
        timesteps: Iterable[int],
        blocks: Iterable[str],
        data_root: str | None = None,
    ) -> None:
        """Raise CacheMissError naming what is missing, if any (video, T, block) is not committed."""
        timesteps, blocks, videos = list(timesteps), list(blocks), list(videos)
        self.check_readable(videos)
        index = self.index()
        missing = [v for v in videos if not index.has(v, timesteps, blocks)]
        if missing:
            raise CacheMissError(self.miss_message(missing, timesteps, blocks, data_root))

    def check_readable(self, videos: Iterable[str]) -> None:
        """A StoreError naming the first of ``videos`` whose commit record is damaged (in the index this
        group holds), and the repair; nothing if none is."""
        index = self.index()
        damaged = sorted(v for v in videos if v in index.damaged)
        if damaged:
            more = f" (and {len(damaged) - 1} more video(s))" if len(damaged) > 1 else ""
            raise StoreError(
                f"{self.backend.location}: {self.path} video {damaged[0]} is not readable: "
                f"{index.damaged[damaged[0]]}{more}; run `{self.repair_command(damaged)}`, then the same "
                "extract command again to recompute it"
            )


class StoredFrames:
    """A committed array read lazily along its frame axis (:meth:`RecipeGroup.frames`); every read is a
    verified read (:meth:`RecipeGroup.read` with a frame range)."""

    def __init__(self, group: RecipeGroup, video: str, t: int, block: str, shape: tuple[int, ...]) -> None:
        self.group, self.video, self.t, self.block, self.shape = group, video, t, block, shape
        self.dtype = np.dtype(np.float16)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, item: slice) -> np.ndarray:
        if not isinstance(item, slice) or item.step not in (None, 1):
            raise TypeError("StoredFrames takes a contiguous slice of frames, e.g. maps[4:8]")
        start, stop, _ = item.indices(self.shape[0])
        return self.group.read(self.video, self.t, self.block, (start, stop))
