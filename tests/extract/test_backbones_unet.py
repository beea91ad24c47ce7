"""SD and SVD on their tiny twins: same classes as the real models, saved and reloaded from config."""

from __future__ import annotations

import pytest
import torch

from dvx.errors import ConfigError
from dvx.extract.base import RunOptions
from dvx.extract.models import load_backbone, model_spec
from tests.extract.backbone_checks import (
    check_block_shapes,
    check_one_forward_equals_one_per_block,
    check_saved_and_loaded,
    check_stops_after_deepest,
    check_timesteps_and_ensemble,
    frames,
    seed_fn,
)

BLOCKS = ["down.0", "down.1", "down.2", "down.3", "mid", "up.0", "up.1", "up.2", "up.3"]


@pytest.fixture(scope="module", params=["tiny-sd", "tiny-svd"])
def backbone(request: pytest.FixtureRequest):
    return load_backbone(model_spec(request.param), RunOptions(batch_size=4))


def test_tiny_models_are_saved_and_loaded_with_from_pretrained(backbone) -> None:
    assert (backbone.folder / "unet" / "config.json").exists()
    assert (backbone.folder / "vae" / "config.json").exists()
    backbone.ensure_loaded()
    check_saved_and_loaded(backbone, backbone.unet, "unet")
    assert backbone.block_names == BLOCKS


def test_features_have_the_unet_geometry_and_are_deterministic(backbone) -> None:
    n = backbone.clip_len or 3
    x = frames(n, 64, 128)
    a = backbone.features(x, [0, 50], ["up.1", "up.2"], seed_fn, ensemble=1)
    b = backbone.features(x, [0, 50], ["up.1", "up.2"], seed_fn, ensemble=1)
    # latent 8x16; up.1 at 1/16 of the input (DIFT's up_ft_index=1), up.2 at 1/8
    assert tuple(a[50]["up.1"].shape) == (n, 64, 4, 8)
    assert tuple(a[50]["up.2"].shape) == (n, 32, 8, 16)
    assert torch.equal(a[50]["up.1"], b[50]["up.1"])
    assert not torch.allclose(a[0]["up.2"], a[50]["up.2"])  # T matters


def test_any_multiple_of_the_vae_factor_is_accepted_and_skips_keep_their_sizes(backbone) -> None:
    """DIFT's DAVIS frames are 480x832 (latent 60x104, not a multiple of 8 latent cells): the UNet forwards
    the skip sizes, so every up block has the size of its down level. Checked on a scaled-down 72x136
    (latent 9x17: odd sides at every level) and on the config arithmetic at 480x832."""
    assert backbone.resolution_multiple == 8
    check_block_shapes(backbone, frames(backbone.clip_len or 1, 72, 136), timestep=50)
    shapes = backbone.block_shapes((480, 832))
    assert shapes["up.2"][1:] == (60, 104) and shapes["up.1"][1:] == (30, 52) and shapes["mid"][1:] == (8, 13)
    with pytest.raises(ConfigError, match="multiples of 8"):
        backbone.check_resolution((60, 64))


def test_one_forward_for_all_blocks_equals_one_forward_per_block(backbone) -> None:
    x = frames(backbone.clip_len or 2, 64, 128, seed=1)
    check_one_forward_equals_one_per_block(backbone, x, [50], ["down.1", "mid", "up.2"])


def test_several_timesteps_share_a_batch_and_an_ensemble_averages_its_draws(backbone) -> None:
    n = backbone.clip_len or 2
    check_timesteps_and_ensemble(backbone, frames(n, 64, 128, seed=2), "up.1")
    check_timesteps_and_ensemble(backbone, frames(n, 64, 128, seed=3), "mid", members=4)


def test_the_forward_stops_after_the_deepest_requested_block(backbone) -> None:
    check_stops_after_deepest(backbone, frames(backbone.clip_len or 1, 64, 128), 50, "down.1")


def test_recipe_fields_record_the_noise_convention(backbone) -> None:
    fields = backbone.recipe_fields()
    assert len(fields["weights"]) == 64
    level = backbone.noise_level(50)
    if backbone.family == "svd":
        assert (
            fields["noise"]["kind"] == "edm-snr-matched" and fields["conditioning"]["motion_bucket_id"] == 127
        )
        assert level["model_timestep"] == pytest.approx(0.25 * torch.log(torch.tensor(level["sigma"])).item())
    else:
        assert fields["noise"]["kind"] == "ddpm" and fields["conditioning"]["prompt"] == ""
        assert level["model_timestep"] == 50
    sd_like_snr = level["snr"]
    assert 19 < sd_like_snr < 20.5  # both conventions put T=50 at the SNR of SD's schedule


def test_blocks_resolve_globs_and_suggest_on_typos(backbone) -> None:
    from dvx.errors import UnknownNameError

    assert backbone.resolve_blocks(["up.*"]) == ["up.0", "up.1", "up.2", "up.3"]
    assert backbone.resolve_blocks(None) == BLOCKS
    with pytest.raises(UnknownNameError, match=r"Did you mean 'up\.1'"):
        backbone.resolve_blocks(["up1"])


def test_the_time_embedding_sees_the_pipeline_timestep_under_bf16(backbone) -> None:
    # SD's pipeline passes the int64 DDPM T, SVD's the float32 c_noise = 0.25 ln sigma: never bf16
    from dvx.extract.noise import edm_sigma_for

    b = load_backbone(backbone.spec, RunOptions(batch_size=2, dtype="bfloat16"))
    b.ensure_loaded()
    seen: list[torch.Tensor] = []
    hook = b.unet.time_proj.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    n = b.clip_len or 1
    try:
        b.features(torch.rand(n, 3, 64, 64), [500], ["down.0"], seed_fn, ensemble=1)
    finally:
        hook.remove()
    if b.is_video:
        want = 0.25 * torch.log(torch.tensor([edm_sigma_for(500)], dtype=torch.float32))
        assert seen[0].dtype == torch.float32 and torch.equal(seen[0].flatten()[:1], want)
    else:
        assert seen[0].dtype == torch.int64 and seen[0].tolist() == [500]


def test_sampled_latents_are_fresh_for_every_ensemble_member(
    backbone, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DIFT's ensemble: the frame repeated through ``latent_dist.sample()``, so every member has its own
    latent sample as well as its own noise. Member m of an ensemble equals a single draw seeded as member m
    (latent included); the VAE still runs once per unit; member 0 draws what an ensemble of one drew."""
    sampler = load_backbone(model_spec(backbone.spec.name), RunOptions(batch_size=4, latent="sample"))
    sampler.ensure_loaded()
    x = frames(sampler.clip_len or 2, 64, 128, seed=5)
    calls: list[int] = []
    encode = sampler.vae.encode
    monkeypatch.setattr(sampler.vae, "encode", lambda *a, **k: calls.append(1) or encode(*a, **k))
    ens = sampler.features(x, [50], ["up.2"], seed_fn, ensemble=3)[50]["up.2"]
    per_unit = len(calls)
    draws = [
        sampler.features(x, [50], ["up.2"], lambda i, t, k, m=m: seed_fn(i, t, m), 1)[50]["up.2"]
        for m in range(3)
    ]
    torch.testing.assert_close(ens, torch.stack(draws).mean(0), rtol=1e-4, atol=1e-5)
    assert per_unit == len(calls) // 4  # the ensemble of 3 encoded as often as each single draw
    assert not torch.allclose(draws[0], draws[1])
    # the shared-sample behaviour this replaces: members' latents seeded like member 0 -> another result
    shared = [
        sampler.features(x, [50], ["up.2"], lambda i, t, k, m=m: seed_fn(i, t, 0 if t < 0 else m), 1)[50][
            "up.2"
        ]
        for m in range(3)
    ]
    assert not torch.allclose(ens, torch.stack(shared).mean(0), rtol=1e-4, atol=1e-5)
