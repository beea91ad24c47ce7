"""SD3 on its tiny twin: MMDiT image tokens per layer, flow noising with shift, null prompt of 3 encoders."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from dvx.errors import ConfigError
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
    b = load_backbone(model_spec("tiny-sd3"), RunOptions(batch_size=4))
    b.ensure_loaded()
    return b


def test_tiny_is_saved_and_loaded_with_from_pretrained(backbone) -> None:
    check_saved_and_loaded(backbone, backbone.transformer, "transformer")
    assert backbone.block_names == BLOCKS and not backbone.is_video
    assert backbone.transformer.transformer_blocks[-1].context_pre_only  # the last block returns (None, x)


def test_features_are_image_tokens_on_the_patch_grid(backbone) -> None:
    x = frames(3, 64, 128)
    a = backbone.features(x, [0, 50], BLOCKS, seed_fn, ensemble=1)
    b = backbone.features(x, [0, 50], ["layer.3"], seed_fn, ensemble=1)
    # latent 8x16, patch 2 -> 4x8 tokens of width 32; the last (context_pre_only) block included
    assert {tuple(v.shape) for v in a[50].values()} == {(3, 32, 4, 8)}
    torch.testing.assert_close(a[50]["layer.3"], b[50]["layer.3"])
    assert not torch.allclose(a[0]["layer.1"], a[50]["layer.1"])
    # the reshape is row-major: the map equals the block's token output at (y, x) = token y*8 + x
    got: list[torch.Tensor] = []
    hook = backbone.transformer.transformer_blocks[1].register_forward_hook(
        lambda _m, _a, out: got.append(out[1])
    )
    try:
        backbone.features(x[:1], [50], ["layer.1"], seed_fn, ensemble=1)
    finally:
        hook.remove()
    torch.testing.assert_close(a[50]["layer.1"][0, :, 2, 5], got[0][0, 2 * 8 + 5])


def test_one_forward_for_all_blocks_and_the_early_stop(backbone) -> None:
    x = frames(2, 64, 64, seed=1)
    check_block_shapes(backbone, frames(1, 48, 80), timestep=16)
    check_one_forward_equals_one_per_block(backbone, x, [50], ["layer.0", "layer.3"])
    check_stops_after_deepest(backbone, x, 50, "layer.1")


def test_timesteps_share_a_batch_and_the_ensemble_averages_draws(backbone) -> None:
    check_timesteps_and_ensemble(backbone, frames(2, 64, 64, seed=2), "layer.2")


def test_flow_noising_uses_the_scheduler_shift(backbone) -> None:
    assert backbone.shift == 3.0
    z0, eps = torch.ones(2, 16, 2, 2), torch.full((2, 16, 2, 2), 3.0)
    x, model_t = backbone.add_noise(z0, torch.tensor([0, 500]), eps)
    sigma = 3 * 0.5 / (1 + 2 * 0.5)  # shift 3 at s = 0.5
    assert torch.equal(x[0], z0[0]) and model_t[0] == 0
    torch.testing.assert_close(x[1], (1 - sigma) * z0[1] + sigma * eps[1])
    torch.testing.assert_close(model_t[1], torch.tensor(1000 * sigma))
    level = backbone.noise_level(500)
    assert level["sigma"] == pytest.approx(flow_sigma_for(500, 3.0)) == pytest.approx(sigma)
    assert backbone.noise_level(0)["snr"] is None
    fields = backbone.recipe_fields()
    assert fields["noise"]["kind"] == "flow" and fields["noise"]["shift"] == 3.0
    assert fields["conditioning"]["use_t5"] is True


def test_null_conditioning_equals_the_pipeline_with_and_without_t5(backbone) -> None:
    from diffusers import StableDiffusion3Pipeline

    pipe = StableDiffusion3Pipeline.from_pretrained(backbone.folder)
    with torch.no_grad():
        embeds, _, pooled, _ = pipe.encode_prompt(
            "", None, None, device="cpu", do_classifier_free_guidance=False
        )
    assert tuple(backbone.null.shape) == (1, 77 + 256, 48) and tuple(backbone.null_pooled.shape) == (1, 40)
    assert torch.equal(embeds, backbone.null) and torch.equal(pooled, backbone.null_pooled)
    no_t5 = load_backbone(replace(model_spec("tiny-sd3"), options={"use_t5": False}), RunOptions())
    no_t5.ensure_loaded()
    pipe.text_encoder_3 = pipe.tokenizer_3 = None
    with torch.no_grad():
        embeds, _, pooled, _ = pipe.encode_prompt(
            "", None, None, device="cpu", do_classifier_free_guidance=False
        )
    assert torch.equal(embeds, no_t5.null) and torch.equal(pooled, no_t5.null_pooled)
    assert not no_t5.null[:, 77:].any() and backbone.null[:, 77:].any()
    assert no_t5.recipe_fields()["conditioning"]["use_t5"] is False and no_t5.weights != backbone.weights
    assert model_spec("sd3-no-t5").options == {"use_t5": False}
    with pytest.raises(ConfigError, match="use_t5"):
        load_backbone(replace(model_spec("tiny-sd3"), options={"use_t5": "no"}), RunOptions())


def test_a_non_finite_null_conditioning_is_refused(backbone, monkeypatch: pytest.MonkeyPatch) -> None:
    from diffusers import StableDiffusion3Pipeline

    from dvx.extract.backbones.sd3 import null_conditioning

    inf = torch.full((1, 333, 48), float("inf"))
    monkeypatch.setattr(
        StableDiffusion3Pipeline, "encode_prompt", lambda *a, **k: (inf, None, inf[:, 0], None)
    )
    with pytest.raises(ConfigError, match="overflows"):
        null_conditioning(backbone.folder, backbone.transformer, True, torch.device("cpu"), torch.float32)


def test_bad_resolutions_are_refused(backbone) -> None:
    with pytest.raises(ConfigError, match="multiples of 16"):
        backbone.check_resolution((48, 72))
    with pytest.raises(ConfigError, match="at most 512 pixels"):
        backbone.check_resolution((64, 528))  # pos_embed_max_size 32 patches x 16
    backbone.check_resolution((512, 512))


def test_extract_end_to_end_on_the_synthetic_world(tmp_path: Path) -> None:
    world = write_tiny_world(tmp_path / "w")
    group = extract_world(
        world, tmp_path / "s", "tiny-sd3", resolution=(48, 64), timesteps=(0, 50), batch_size=4
    )
    assert group.read("synth_000001", 50, "layer.3").shape == (5, 32, 3, 4)
    assert group.noise_levels()[50]["model_timestep"] == pytest.approx(1000 * flow_sigma_for(50, 3.0))
    assert group.recipe.noise["kind"] == "flow" and group.recipe.conditioning["use_t5"] is True


def test_the_time_embedding_sees_the_float32_timestep_under_bf16() -> None:
    # the pipeline hands the transformer float32 timesteps; a bf16 cast would turn 750 into 752
    b = load_backbone(model_spec("tiny-sd3"), RunOptions(batch_size=2, dtype="bfloat16"))
    b.ensure_loaded()
    seen: list[torch.Tensor] = []
    hook = b.transformer.time_text_embed.time_proj.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0])
    )
    try:
        b.features(frames(1, 64, 64), [500], ["layer.0"], seed_fn, ensemble=1)
    finally:
        hook.remove()
    assert seen[0].dtype == torch.float32
    assert seen[0].tolist() == [torch.tensor(1000 * flow_sigma_for(500, b.shift)).item()] == [750.0]


def test_block_names_read_the_config_once(backbone, monkeypatch) -> None:
    """block_selectors runs every batch (capture_blocks): the config file is not re-read each time."""
    b = load_backbone(model_spec("tiny-sd3"), RunOptions(batch_size=4))
    reads: list[Path] = []
    read_text = Path.read_text

    def counting(self: Path, *args, **kwargs) -> str:
        if self.name == "config.json":
            reads.append(self)
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    for _ in range(3):
        assert b.block_names == BLOCKS
        assert set(b.block_selectors()) == set(BLOCKS)
    assert len(reads) == 1
    b.block_names.append("mutated")
    assert b.block_names == BLOCKS
