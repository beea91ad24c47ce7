"""Extraction recipes: everything that changes the features, canonicalised and fingerprinted.

A recipe's fingerprint is the sha256 of its canonical JSON (sorted keys, no whitespace) over the
*feature-determining* fields; ``fp8`` (its first 8 hex digits) names the recipe group in the store. Fields
that are recorded but do not change the features (where the weights came from, the dvx version) are left
out of the fingerprint, so the same weights loaded from a hub id or a local copy share one cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from dvx import __version__
from dvx.errors import RecipeMismatchError

#: bumped when dvx changes how features are computed for the same recipe fields (never silently reuse)
EXTRACTOR_VERSION = 1

#: recorded for provenance, not part of the fingerprint
PROVENANCE_FIELDS = frozenset({"source", "revision", "dvx_version"})


@dataclass(frozen=True)
class Recipe:
    model: str  # registry name, e.g. "svd", "tiny-sd"
    family: str  # backbone family, e.g. "svd", "sd", "dinov2"
    weights: str  # sha256 digest of the loaded components' files (configs + weights)
    dtype: str  # compute dtype of the backbone, e.g. "float16"
    resolution: tuple[int, int]  # (H, W) the frames are resized to before encoding
    clip_len: int | None  # frames per forward for video models; None: image model, frame by frame
    frame_stride: int = 1  # temporal subsampling of the source frames
    max_frames: int | None = None  # cap on frames per video (after stride); None = all
    latent: str = "mean"  # VAE latent: "mean" of the distribution, "sample", or "none" (pixel models)
    noise: Mapping[str, Any] = field(default_factory=dict)  # scheduler + T convention
    conditioning: Mapping[str, Any] = field(default_factory=dict)  # the fixed null conditioning
    seed: int = 0  # noise seed policy: seeded per (video, clip, T, ensemble member) from this
    ensemble: int = 1  # noise draws averaged per (clip, T)
    extractor: int = EXTRACTOR_VERSION
    source: str = ""  # hub id, local folder or "tiny:<family>" (provenance)
    revision: str | None = None  # hub revision asked for (provenance)
    dvx_version: str = __version__  # provenance

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["resolution"] = list(self.resolution)
        out["noise"] = dict(self.noise)
        out["conditioning"] = dict(self.conditioning)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recipe:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise RecipeMismatchError(
                f"recipe has fields this dvx does not know: {sorted(unknown)} (written by a newer dvx?)"
            )
        kw = dict(data)
        kw["resolution"] = tuple(kw["resolution"])
        return cls(**kw)

    def identity(self) -> dict[str, Any]:
        """The feature-determining fields (what the fingerprint covers)."""
        return {k: v for k, v in self.to_json().items() if k not in PROVENANCE_FIELDS}

    @property
    def fingerprint(self) -> str:
        canon = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()

    @property
    def fp8(self) -> str:
        return self.fingerprint[:8]

    @property
    def name(self) -> str:
        """``<model>@<fp8>``: the recipe group's name in the store."""
        return f"{self.model}@{self.fp8}"


def recipe_diff(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Human-readable differences between two recipe dicts: ``["resolution: [64, 64] != [128, 128]"]``."""
    out: list[str] = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out += recipe_diff(va, vb, prefix=f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: {json.dumps(va)} != {json.dumps(vb)}")
    return out


def matches(recipe: Recipe, constraints: Mapping[str, Any]) -> list[str]:
    """Which of ``constraints`` (field -> wanted value, dotted for nested) the recipe violates."""
    data = recipe.to_json()
    bad = []
    for key, want in constraints.items():
        have: Any = data
        for part in key.split("."):
            have = have.get(part) if isinstance(have, Mapping) else None
        if isinstance(want, tuple):
            want = list(want)
        if have != want:
            bad.append(f"{key}: store has {json.dumps(have)}, asked for {json.dumps(want)}")
    return bad
