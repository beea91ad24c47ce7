"""SD and SVD on their tiny twins: same classes as the real models, saved and reloaded from config."""

from __future__ import annotations

import json

import pytest
import torch

from dvx.extract.base import RunOptions
from dvx.extract.models import block_names, load_backbone, model_spec

BLOCKS = ["down.0", "down.1", "down.2", "down.3", "mid", "up.0", "up.1", "up.2", "up.3"]


def seed_fn(i: int, t: int, m: int) -> int:
    return 1000 * i + 10 * t + m


@pytest.fixture(scope="module", params=["tiny-sd", "tiny-svd"])
def backbone(request: pytest.FixtureRequest):
    return load_backbone(model_spec(request.param), RunOptions(batch_size=4))


def test_tiny_models_are_saved_and_loaded_with_from_pretrained(backbone) -> None:
    folder = backbone.folder
    assert (folder / "unet" / "config.json").exists() and (folder / "vae" / "config.json").exists()
    assert any(p.suffix == ".safetensors" for p in (folder / "unet").iterdir())
    cls_name = json.loads((folder / "unet" / "config.json").read_text())["_class_name"]
    backbone.ensure_loaded()
    assert type(backbone.unet).__name__ == cls_name
    assert backbone.block_names == BLOCKS == list(backbone.block_modules())
    assert block_names(backbone.spec.name) == BLOCKS


def test_features_have_the_unet_geometry_and_are_deterministic(backbone) -> None:
    n = backbone.clip_len or 3
    x = torch.rand(n, 3, 64, 128, generator=torch.Generator().manual_seed(0))
    a = backbone.features(x, [0, 50], ["up.1", "up.2"], seed_fn, ensemble=1)
    b = backbone.features(x, [0, 50], ["up.1", "up.2"], seed_fn, ensemble=1)
    # latent 8x16; up.1 at 1/16 of the input (DIFT's up_ft_index=1), up.2 at 1/8
    assert tuple(a[50]["up.1"].shape) == (n, 64, 4, 8)
    assert tuple(a[50]["up.2"].shape) == (n, 32, 8, 16)
    assert torch.equal(a[50]["up.1"], b[50]["up.1"])
    assert not torch.allclose(a[0]["up.2"], a[50]["up.2"])  # T matters


def test_one_forward_for_all_blocks_equals_one_forward_per_block(backbone) -> None:
    n = backbone.clip_len or 2
    x = torch.rand(n, 3, 64, 128, generator=torch.Generator().manual_seed(1))
    together = backbone.features(x, [50], BLOCKS, seed_fn, ensemble=1)[50]
    for b in ("down.1", "mid", "up.2"):
        alone = backbone.features(x, [50], [b], seed_fn, ensemble=1)[50][b]
        torch.testing.assert_close(alone, together[b])


def test_several_timesteps_share_a_batch_without_changing_results(backbone) -> None:
    n = backbone.clip_len or 2
    x = torch.rand(n, 3, 64, 128, generator=torch.Generator().manual_seed(2))
    both = backbone.features(x, [0, 200], ["up.1"], seed_fn, ensemble=1)
    alone = backbone.features(x, [200], ["up.1"], seed_fn, ensemble=1)
    torch.testing.assert_close(both[200]["up.1"], alone[200]["up.1"], rtol=1e-4, atol=1e-5)


def test_ensemble_averages_independent_noise_draws(backbone) -> None:
    n = backbone.clip_len or 2
    x = torch.rand(n, 3, 64, 128, generator=torch.Generator().manual_seed(3))
    one = backbone.features(x, [200], ["mid"], seed_fn, ensemble=1)[200]["mid"]
    four = backbone.features(x, [200], ["mid"], seed_fn, ensemble=4)[200]["mid"]
    assert not torch.allclose(one, four)
    draws = [
        backbone.features(x, [200], ["mid"], lambda i, t, k, m=m: seed_fn(i, t, m), 1)[200]["mid"]
        for m in range(4)
    ]
    torch.testing.assert_close(four, torch.stack(draws).mean(0), rtol=1e-4, atol=1e-5)


def test_the_forward_stops_after_the_deepest_requested_block(backbone) -> None:
    backbone.ensure_loaded()
    calls: list[str] = []
    hooks = [
        m.register_forward_hook(lambda *_a, n=n: calls.append(n)) for n, m in backbone.block_modules().items()
    ]
    try:
        n = backbone.clip_len or 1
        backbone.features(torch.rand(n, 3, 64, 128), [50], ["down.1"], seed_fn, ensemble=1)
    finally:
        for h in hooks:
            h.remove()
    assert calls == ["down.0", "down.1"]


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
