"""Wan 2.1 on its tiny twin: DiT tokens over the causal 3-D VAE's latent frames, flow noising, null prompt."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from dvx.errors import ConfigError
from dvx.extract.backbones.wan import flow_shift
from dvx.extract.base import RunOptions
from dvx.extract.models import load_backbone, model_spec
from dvx.extract.noise import flow_sigma_for
from tests.extract.backbone_checks import (
    check_block_shapes,
    check_one_forward_equals_one_per_block,
    check_saved_and_loaded,
    check_stops_after_deepest,
    check_timesteps_and_ensemble,
    extract_world,
    frames,
    seed_fn,
    write_tiny_world,
)

BLOCKS = ["layer.0", "layer.1", "layer.2", "layer.3"]


@pytest.fixture(scope="module")
def backbone():
    b = load_backbone(model_spec("tiny-wan", clip_len=5), RunOptions(batch_size=4))
    b.ensure_loaded()
    return b


def test_tiny_is_saved_and_loaded_with_from_pretrained(backbone) -> None:
    check_saved_and_loaded(backbone, backbone.transformer, "transformer")
    assert backbone.block_names == BLOCKS and backbone.is_video
    assert type(backbone.vae).__name__ == "AutoencoderKLWan"


def test_features_are_tokens_per_latent_frame(backbone) -> None:
    x = frames(5, 64, 128)
    a = backbone.features(x, [0, 50], BLOCKS, seed_fn, ensemble=1)
    b = backbone.features(x, [0, 50], ["layer.2"], seed_fn, ensemble=1)
    # 5 frames -> 2 latent frames (frame 0 alone, frames 1-4); 64x128 -> latent 8x16 -> 4x8 tokens of width 24
    assert {tuple(v.shape) for v in a[50].values()} == {(2, 24, 4, 8)}
    torch.testing.assert_close(a[50]["layer.2"], b[50]["layer.2"])
    assert not torch.allclose(a[0]["layer.2"], a[50]["layer.2"])
    assert backbone.temporal_map(5) == [[0], [1, 2, 3, 4]]
    assert backbone.temporal_map(9) == [[0], [1, 2, 3, 4], [5, 6, 7, 8]]


def test_latents_are_normalised_with_the_vae_statistics(backbone) -> None:
    x = frames(5, 64, 64, seed=3)
    z = backbone.encode(x, seed_fn)
    with torch.no_grad():
        mean = backbone.vae.encode((x * 2 - 1).permute(1, 0, 2, 3)[None]).latent_dist.mean
    cfg = backbone.vae.config
    mu, sd = (torch.tensor(v).view(1, -1, 1, 1, 1) for v in (cfg.latents_mean, cfg.latents_std))
    torch.testing.assert_close(z, (mean - mu) / sd)
    assert tuple(z.shape) == (1, 16, 2, 8, 8)


def test_one_forward_for_all_blocks_and_the_early_stop(backbone) -> None:
    x = frames(5, 64, 64, seed=1)
    check_block_shapes(backbone, frames(5, 48, 80), timestep=16)
    check_one_forward_equals_one_per_block(backbone, x, [50], ["layer.1", "layer.3"])
    check_stops_after_deepest(backbone, x, 50, "layer.1")


def test_timesteps_share_a_batch_and_the_ensemble_averages_draws(backbone) -> None:
    check_timesteps_and_ensemble(backbone, frames(5, 64, 64, seed=2), "layer.1")


def test_null_conditioning_equals_the_pipeline(backbone) -> None:
    from diffusers import WanPipeline

    pipe = WanPipeline.from_pretrained(backbone.folder)
    with torch.no_grad():
        embeds, _ = pipe.encode_prompt(
            "", do_classifier_free_guidance=False, max_sequence_length=512, device="cpu"
        )
    assert tuple(backbone.null.shape) == (1, 512, 32)
    assert torch.equal(embeds, backbone.null)
    assert backbone.null[0, 0].any() and not backbone.null[0, 1:].any()  # one real token (</s>), then zeros


def test_a_non_finite_null_conditioning_is_refused(backbone, monkeypatch: pytest.MonkeyPatch) -> None:
    from diffusers import WanPipeline

    from dvx.extract.backbones.wan import null_conditioning

    monkeypatch.setattr(
        WanPipeline, "encode_prompt", lambda *a, **k: (torch.full((1, 512, 32), float("nan")), None)
    )
    with pytest.raises(ConfigError, match="overflows"):
        null_conditioning(backbone.folder, torch.device("cpu"), torch.float32)


def test_flow_shift_comes_from_the_scheduler_config_or_the_option(backbone) -> None:
    assert backbone.shift == 3.0 and backbone.recipe_fields()["noise"]["shift"] == 3.0
    assert backbone.noise_level(500)["model_timestep"] == pytest.approx(1000 * flow_sigma_for(500, 3.0))
    assert flow_shift({"shift": 5.0}, "m") == 5.0
    with pytest.raises(ConfigError, match="no flow shift"):
        flow_shift({"beta_schedule": "linear"}, "m")
    with pytest.raises(ConfigError, match="dynamic"):
        flow_shift({"use_flow_sigmas": True, "use_dynamic_shifting": True}, "m")
    five = load_backbone(replace(model_spec("tiny-wan"), options={"shift": 5.0}), RunOptions())
    assert five.shift == 5.0 and five.noise_level(500)["sigma"] == pytest.approx(flow_sigma_for(500, 5.0))


def test_bad_clip_lengths_and_resolutions_are_refused(backbone) -> None:
    with pytest.raises(ConfigError, match=r"4k\+1 frames"):
        load_backbone(model_spec("tiny-wan", clip_len=8), RunOptions())
    with pytest.raises(ConfigError, match="multiples of 16"):
        backbone.check_resolution((48, 72))


def test_extract_end_to_end_on_the_synthetic_world(tmp_path: Path) -> None:
    world = write_tiny_world(tmp_path / "w")
    group = extract_world(world, tmp_path / "s", "tiny-wan", resolution=(48, 64), timesteps=(0, 50))
    # one padded clip of 9: latent frames [0], [1-4], [5-8]; the last covers padding only and is dropped
    assert group.recipe.clip_len == 9
    assert group.read("synth_000000", 50, "layer.3").shape == (2, 24, 3, 4)
    assert group.index().lookup("synth_000000", 50, "layer.3").time_map == ((0,), (1, 2, 3, 4))


def test_the_time_embedding_sees_the_float32_timestep_under_bf16() -> None:
    # the pipeline hands the transformer float32 timesteps; a bf16 cast would turn 750 into 752
    b = load_backbone(model_spec("tiny-wan", clip_len=5), RunOptions(batch_size=2, dtype="bfloat16"))
    b.ensure_loaded()
    seen: list[torch.Tensor] = []
    hook = b.transformer.condition_embedder.timesteps_proj.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0])
    )
    try:
        b.features(frames(5, 32, 32), [500], ["layer.0"], seed_fn, ensemble=1)
    finally:
        hook.remove()
    assert seen[0].dtype == torch.float32
    assert seen[0].tolist() == [torch.tensor(1000 * flow_sigma_for(500, b.shift)).item()] == [750.0]
