"""ModelScope T2V on its tiny twin: UNet3D blocks over whole clips, DDPM noising, null prompt."""

from __future__ import annotations

from pathlib import Path

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
    extract_world,
    frames,
    seed_fn,
    write_tiny_world,
)

BLOCKS = ["down.0", "down.1", "down.2", "down.3", "mid", "up.0", "up.1", "up.2", "up.3"]
CLIP = 4  # a short clip keeps the tiny forward cheap; the registry's native length is 16


@pytest.fixture(scope="module")
def backbone():
    b = load_backbone(model_spec("tiny-modelscope", clip_len=CLIP), RunOptions(batch_size=4))
    b.ensure_loaded()
    return b


def test_tiny_is_saved_and_loaded_with_from_pretrained(backbone) -> None:
    check_saved_and_loaded(backbone, backbone.unet, "unet")
    assert backbone.block_names == BLOCKS and backbone.is_video
    assert model_spec("tiny-modelscope").clip_len == 16


def test_features_are_per_frame_unet_maps_and_deterministic(backbone) -> None:
    x = frames(CLIP, 64, 128)
    a = backbone.features(x, [0, 50], ["down.0", "up.1", "up.2"], seed_fn, ensemble=1)
    b = backbone.features(x, [0, 50], ["down.0", "up.1", "up.2"], seed_fn, ensemble=1)
    # latent 8x16; up.1 at 1/16 of the input (DIFT's up_ft_index=1), up.2 at 1/8
    assert tuple(a[50]["up.1"].shape) == (CLIP, 32, 4, 8)
    assert tuple(a[50]["up.2"].shape) == (CLIP, 16, 8, 16)
    assert torch.equal(a[50]["up.2"], b[50]["up.2"])
    # the UNet's (B*F, C, h, w) outputs are split back per frame: frames of one clip differ
    assert not torch.allclose(a[50]["down.0"][0], a[50]["down.0"][1])


def test_one_forward_for_all_blocks_and_the_early_stop(backbone) -> None:
    x = frames(CLIP, 64, 64, seed=1)
    check_one_forward_equals_one_per_block(backbone, x, [50], ["down.1", "mid", "up.2"])
    check_stops_after_deepest(backbone, x, 50, "down.1")


def test_timesteps_share_a_batch_and_the_ensemble_averages_draws(backbone) -> None:
    check_timesteps_and_ensemble(backbone, frames(CLIP, 64, 64, seed=2), "mid")


def test_null_conditioning_equals_the_modelscope_pipeline(backbone) -> None:
    from diffusers import DDIMScheduler, TextToVideoSDPipeline
    from transformers import AutoTokenizer, CLIPTextModel

    folder = backbone.folder
    pipe = TextToVideoSDPipeline(
        vae=backbone.vae,
        text_encoder=CLIPTextModel.from_pretrained(folder / "text_encoder"),
        tokenizer=AutoTokenizer.from_pretrained(folder / "tokenizer"),
        unet=backbone.unet,
        scheduler=DDIMScheduler.from_pretrained(folder / "scheduler"),
    )
    with torch.no_grad():
        embeds, _ = pipe.encode_prompt("", torch.device("cpu"), 1, False)
    assert torch.equal(embeds, backbone.null)


def test_recipe_noise_levels_and_bad_inputs(backbone) -> None:
    fields = backbone.recipe_fields()
    assert fields["noise"]["kind"] == "ddpm" and fields["noise"]["beta_schedule"] == "scaled_linear"
    assert fields["conditioning"]["prompt"] == ""
    level = backbone.noise_level(50)
    assert level["model_timestep"] == 50 and 19 < level["snr"] < 20.5  # SD's schedule at T=50
    with pytest.raises(ConfigError, match="multiples of 8"):
        backbone.check_resolution((44, 64))
    backbone.check_resolution((40, 56))  # the VAE factor suffices (tests/extract/test_backbones_unet.py)
    check_block_shapes(backbone, frames(backbone.clip_len, 40, 56), timestep=50)
    with pytest.raises(ConfigError, match="clip length 0"):
        load_backbone(model_spec("tiny-modelscope", clip_len=0), RunOptions())


def test_extract_end_to_end_on_the_synthetic_world(tmp_path: Path) -> None:
    world = write_tiny_world(tmp_path / "w")
    group = extract_world(
        world,
        tmp_path / "s",
        "tiny-modelscope",
        resolution=(64, 64),
        clip_len=8,
        timesteps=(0, 50),
        blocks=("down.0", "up.1"),
    )
    assert group.recipe.clip_len == 8 and group.noise_levels()[50]["model_timestep"] == 50
    assert group.read("synth_000000", 50, "up.1").shape == (5, 32, 4, 4)  # 5 frames of one padded clip
