"""One contract suite over the model registry: every registered tiny twin passes the same backbone checks
(tests/extract/backbone_checks.py), so a backbone is tested the moment it is registered. The per-family
files add what is particular to a family (its geometry, conditioning, noise convention)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from dvx.errors import ConfigError
from dvx.extract import MODELS
from dvx.extract.base import Backbone, RunOptions
from dvx.extract.block_table import shipped_block_names
from dvx.extract.models import backbone_class, load_backbone, model_spec
from tests.extract.backbone_checks import (
    check_one_forward_equals_one_per_block,
    check_stops_after_deepest,
    check_timesteps_and_ensemble,
    frames,
    seed_fn,
)

TINY = [e.name for e in MODELS if str(e.options["source"]).startswith("tiny:")]
DIFFUSION_TINY = [n for n in TINY if backbone_class(n).is_diffusion]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=TINY)
def backbone(request: pytest.FixtureRequest) -> Iterator[Backbone]:
    b = load_backbone(model_spec(request.param), RunOptions(batch_size=4))
    b.ensure_loaded()
    yield b
    del b


def size(b: Backbone) -> tuple[int, int]:
    """A small input the model takes (a multiple of its resolution multiple near 64 high, twice that wide),
    else its registered resolution (models with a fixed input size). Not smaller: a UNet fed 8x16 pixels
    has a 1x1 mid block, where GroupNorm divides by a variance of ~0 and amplifies float rounding (the
    order of a batched convolution) into differences of order 1, which no protocol would ever see."""
    m = b.resolution_multiple
    k = max(1, 64 // m)
    try:
        b.check_resolution((k * m, 2 * k * m))
    except ConfigError:
        return b.spec.resolution
    return k * m, 2 * k * m


def unit(b: Backbone, seed: int = 0) -> torch.Tensor:
    """One unit of frames: a clip of the native length for video models, 2 images else."""
    return frames(b.clip_len or 2, *size(b), seed=seed)


def t_of(b: Backbone) -> int:
    return 50 if b.is_diffusion else 0  # non-diffusion baselines have T = 0 only


def test_every_family_has_a_tiny_twin_in_the_registry() -> None:
    families = {e.options["family"] for e in MODELS}
    assert families == {e.options["family"] for e in MODELS if e.name in TINY}


def test_block_names_from_config_equal_the_modules_and_the_shipped_table(backbone: Backbone) -> None:
    names = type(backbone).block_names_for(backbone.folder)
    assert names == backbone.block_names == list(backbone.block_modules())
    assert shipped_block_names(backbone.spec.name) == names  # what `dvx ls models` shows


def test_features_are_finite_maps_one_per_stored_frame(backbone: Backbone) -> None:
    x = unit(backbone)
    t = t_of(backbone)
    feats = backbone.features(x, [t], backbone.block_names, seed_fn, ensemble=1)[t]
    stored = len(backbone.temporal_map(len(x))) if backbone.is_video else len(x)
    for block, f in feats.items():
        assert f.ndim == 4 and f.shape[0] == stored and f.dtype == torch.float32, block
        assert torch.isfinite(f).all(), block
    again = backbone.features(x, [t], backbone.block_names[-1:], seed_fn, ensemble=1)[t]
    assert torch.equal(again[backbone.block_names[-1]], feats[backbone.block_names[-1]])  # deterministic


def test_one_forward_for_all_blocks_equals_one_per_block(backbone: Backbone) -> None:
    names = backbone.block_names
    check_one_forward_equals_one_per_block(
        backbone, unit(backbone, 1), [t_of(backbone)], [names[0], names[-1]]
    )


def test_the_forward_stops_after_the_deepest_requested_block(backbone: Backbone) -> None:
    names = backbone.block_names
    check_stops_after_deepest(backbone, unit(backbone, 2), t_of(backbone), names[len(names) // 2])


@pytest.mark.parametrize("name", DIFFUSION_TINY)
def test_timesteps_share_a_batch_and_the_ensemble_averages_draws(name: str) -> None:
    b = load_backbone(model_spec(name), RunOptions(batch_size=4))
    check_timesteps_and_ensemble(b, unit(b, 3), b.block_names[-1])


def test_the_split_into_diffusion_models_and_baselines_is_the_families() -> None:
    """Non-diffusion baselines (T = 0 only, no ensemble: the runner refuses both, tested per family) are
    exactly the encoder families; every other tiny twin runs the noise-level check above."""
    baselines = {MODELS.entry(n).options["family"] for n in TINY if n not in DIFFUSION_TINY}
    assert baselines == {"dinov2", "videomae", "vjepa2"}
