"""VideoMAE on its tiny twin: a non-diffusion video baseline with tubelets of 2 frames."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dvx.errors import ConfigError
from dvx.extract.base import RunOptions
from dvx.extract.models import load_backbone, model_spec
from tests.extract.backbone_checks import (
    check_block_shapes,
    check_norm_is_last_hidden_state,
    check_one_forward_equals_one_per_block,
    check_saved_and_loaded,
    check_stops_after_deepest,
    extract_world,
    frames,
    seed_fn,
    write_tiny_world,
)

BLOCKS = ["layer.0", "layer.1", "layer.2", "layer.3", "norm"]
H, W = 128, 256  # the tiny's config.image_size: VideoMAE's position table fixes the resolution


@pytest.fixture(scope="module")
def backbone():
    b = load_backbone(model_spec("tiny-videomae"), RunOptions())
    b.ensure_loaded()
    return b


def test_tiny_is_saved_and_loaded_with_from_pretrained(backbone) -> None:
    check_saved_and_loaded(backbone, backbone.model)
    assert backbone.block_names == BLOCKS and backbone.is_video and not backbone.is_diffusion


def test_features_are_tubelet_tokens_reshaped_per_layer(backbone) -> None:
    x = frames(16, H, W)
    a = backbone.features(x, [0], BLOCKS, seed_fn, ensemble=1)[0]
    assert tuple(a["layer.1"].shape) == (8, 32, 8, 16)  # 16 frames / tubelet 2; 128x256 / 16
    assert backbone.temporal_map(16) == [[2 * k, 2 * k + 1] for k in range(8)]
    again = backbone.features(x, [0], ["layer.1"], seed_fn, ensemble=1)[0]
    assert torch.equal(a["layer.1"], again["layer.1"])
    with torch.no_grad():
        ref = backbone.model(
            pixel_values=backbone.normalize(x)[None], output_hidden_states=True
        ).hidden_states
    # tokens are (t, y, x)-major: token (t=1, y=2, x=3) is index 1*128 + 2*16 + 3
    torch.testing.assert_close(a["layer.1"][1, :, 2, 3], ref[2][0, 128 + 32 + 3])


def test_norm_is_the_last_hidden_state(backbone) -> None:
    x = frames(16, H, W, seed=4)
    with torch.no_grad():
        last = backbone.model(pixel_values=backbone.normalize(x)[None]).last_hidden_state
    check_norm_is_last_hidden_state(backbone, x, last, (8, H // 16, W // 16))
    check_block_shapes(backbone, x)


def test_one_forward_for_all_blocks_and_the_early_stop(backbone) -> None:
    x = frames(16, H, W, seed=1)
    check_one_forward_equals_one_per_block(backbone, x, [0], ["layer.0", "layer.2"])
    check_stops_after_deepest(backbone, x, 0, "layer.2")


def test_other_resolutions_are_refused_and_shorter_clips_use_a_prefix_of_the_table(backbone) -> None:
    with pytest.raises(ConfigError, match="fixed position table only fits 128x256"):
        backbone.check_resolution((224, 224))
    with pytest.raises(ConfigError, match="multiple of the tubelet size 2"):
        load_backbone(model_spec("tiny-videomae", clip_len=7), RunOptions())
    with pytest.raises(ConfigError, match="at most 16"):
        load_backbone(model_spec("tiny-videomae", clip_len=18), RunOptions())
    short = load_backbone(model_spec("tiny-videomae", clip_len=4), RunOptions())
    out = short.features(frames(4, H, W), [0], ["layer.3"], seed_fn, ensemble=1)[0]["layer.3"]
    assert tuple(out.shape) == (2, 32, 8, 16)
    table = backbone.model.embeddings.position_embeddings
    assert torch.equal(short.model.embeddings.position_embeddings[0], table[0, : 2 * 8 * 16])


def test_recipe_and_timesteps(backbone) -> None:
    fields = backbone.recipe_fields()
    assert (
        fields["noise"]["kind"] == "none" and fields["conditioning"]["input"]["normalize"]["std"][0] == 0.229
    )
    with pytest.raises(ConfigError, match="not a diffusion model"):
        backbone.features(frames(16, H, W), [0, 50], BLOCKS, seed_fn, ensemble=1)


def test_extract_end_to_end_on_the_synthetic_world(tmp_path: Path) -> None:
    world = write_tiny_world(tmp_path / "w")
    group = extract_world(world, tmp_path / "s", "tiny-videomae", blocks=("layer.0", "layer.3"))
    # 5 frames in one clip of 16 (padded): tubelets [0,1], [2,3], [4]; the padding-only ones dropped
    assert group.read("synth_000000", 0, "layer.3").shape == (3, 32, 8, 16)
    assert group.index().lookup("synth_000000", 0, "layer.3").time_map == ((0, 1), (2, 3), (4,))
