"""Key names of the store layout (one place, so writer, reader, verify and gc agree).

```
<store>/zarr.json                                   root group, attrs {"dvx": {"schema": 1}}
<store>/<dataset>/<model>@<fp8>/zarr.json           recipe group, attrs {"dvx_recipe": ..., "fingerprint"}
<store>/<dataset>/<model>@<fp8>/t0050/zarr.json     timestep group, attrs {"T": 50, "sigma": ..., "snr": ...}
<store>/<dataset>/<model>@<fp8>/t0050/<block>/<video>~<gen>    one fp16 array (frames, C, h, w) per video
<store>/<dataset>/<model>@<fp8>/_index/commits/<video>/<gen>.json   commit record: makes <gen> visible
<store>/<dataset>/<model>@<fp8>/_index/compact.json                 every commit record in one file (a cache)
<store>/<dataset>/<model>@<fp8>/_index/failed/<video>.json          a video skipped with --skip-bad
<store>/<dataset>/<model>@<fp8>/_index/claims/<video>/<seq>.json    a writer's expiring claim on a video
<store>/<dataset>/<model>@<fp8>/_index/recipe.json                  a copy of the recipe group's zarr.json
```

Claims are numbered (``00000001.json``, ``00000002.json``, ...): the highest number is the current claim,
and a claim is taken (first time, or over an expired/released one) by creating the next number if absent,
so of several jobs taking over the same expired claim exactly one wins (see dvx/store/claims.py).

Commit records sit in one folder per video, so a writer's per-video check lists only that video's
records (on local disk one small directory read, on S3 one prefix listing), whatever the number of videos.
Stores written before this layout hold flat records ``_index/commits/<video>~<gen>.json``
(:func:`legacy_commit_key`); they stay readable, and both forms may coexist in one recipe.
"""

from __future__ import annotations

import re

from dvx.errors import ConfigError

SCHEMA_VERSION = 1
ROOT_ATTR = "dvx"
RECIPE_ATTR = "dvx_recipe"
INDEX = "_index"
GEN_SEP = "~"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TKEY = re.compile(r"^t(\d{4})$")
_FP8 = re.compile(r"^[0-9a-f]{8}$")


def check_name(kind: str, name: str) -> str:
    if not _NAME.match(name) or GEN_SEP in name or "@" in name:
        raise ConfigError(f"{kind} name {name!r} must use only letters, digits, '.', '_' and '-'")
    return name


def t_key(t: int) -> str:
    if not 0 <= t <= 999:
        raise ConfigError(
            f"timestep {t} is outside 0..999 (dvx uses the DDPM training scale for every model)"
        )
    return f"t{t:04d}"


def parse_t_key(key: str) -> int | None:
    m = _TKEY.match(key)
    return int(m.group(1)) if m else None


def recipe_key(dataset: str, model: str, fp8: str) -> str:
    return f"{dataset}/{model}@{fp8}"


def split_recipe_name(name: str) -> tuple[str, str]:
    model, _, fp8 = name.rpartition("@")
    return model, fp8


def is_recipe_name(name: str) -> bool:
    """Whether a folder name has the form of a recipe group, ``<model>@<8 hex digits>``."""
    model, fp8 = split_recipe_name(name)
    return bool(model) and bool(_FP8.match(fp8))


def recipe_copy_key(recipe: str) -> str:
    """The second copy of a recipe group's zarr.json (what ``dvx cache verify --repair`` restores from)."""
    return f"{recipe}/{INDEX}/recipe.json"


def array_key(recipe: str, t: int, block: str, video: str, gen: str) -> str:
    return f"{recipe}/{t_key(t)}/{block}/{video}{GEN_SEP}{gen}"


def commit_key(recipe: str, video: str, gen: str) -> str:
    return f"{recipe}/{INDEX}/commits/{video}/{gen}.json"


def legacy_commit_key(recipe: str, video: str, gen: str) -> str:
    """Where a store written before per-video commit folders keeps the record (flat, one folder)."""
    return f"{recipe}/{INDEX}/commits/{video}{GEN_SEP}{gen}.json"


def commits_prefix(recipe: str) -> str:
    return f"{recipe}/{INDEX}/commits/"


def video_commits_prefix(recipe: str, video: str) -> str:
    return f"{recipe}/{INDEX}/commits/{video}/"


def compact_key(recipe: str) -> str:
    """The compacted index of a recipe's commit records (dvx/store/compact.py): a cache, never the truth."""
    return f"{recipe}/{INDEX}/compact.json"


def failure_key(recipe: str, video: str) -> str:
    return f"{recipe}/{INDEX}/failed/{video}.json"


def failures_prefix(recipe: str) -> str:
    return f"{recipe}/{INDEX}/failed/"


def claim_key(recipe: str, video: str, seq: int) -> str:
    return f"{recipe}/{INDEX}/claims/{video}/{seq:08d}.json"


def claim_dir(recipe: str, video: str) -> str:
    return f"{recipe}/{INDEX}/claims/{video}/"


def parse_claim_name(name: str) -> int | None:
    stem, dot, ext = name.partition(".")
    return int(stem) if dot and ext == "json" and stem.isdigit() else None


def claims_prefix(recipe: str) -> str:
    return f"{recipe}/{INDEX}/claims/"


def parse_array_path(rel: str) -> tuple[int, str, str, str] | None:
    """``t0050/<block>/<video>~<gen>/...`` (relative to a recipe group) -> (T, block, video, gen)."""
    parts = rel.split("/")
    if len(parts) < 3:
        return None
    t = parse_t_key(parts[0])
    video, sep, gen = parts[2].rpartition(GEN_SEP)
    if t is None or not sep or not video or not gen:
        return None
    return t, parts[1], video, gen


def parse_commit_name(name: str) -> tuple[str, str] | None:
    """A record's path below the commits folder -> (video, gen): ``<video>/<gen>.json`` (this layout) or
    ``<video>~<gen>.json`` (flat, from older stores). Anything else (a temp file) -> None."""
    if not name.endswith(".json"):
        return None
    stem = name[: -len(".json")]
    if "/" in stem:
        video, _, gen = stem.partition("/")
        ok = bool(video) and bool(gen) and "/" not in gen and GEN_SEP not in gen and "." not in gen
        return (video, gen) if ok else None
    video, sep, gen = stem.rpartition(GEN_SEP)
    return (video, gen) if sep and video and gen and "." not in gen else None
