"""V-JEPA 2 on its tiny twin: the encoder only, tubelets of 2 frames, RoPE positions at any square size."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dvx.errors import ConfigError
from dvx.extract.base import RunOptions
from dvx.extract.models import load_backbone, model_spec
from dvx.extract.tokens import tokens_to_maps
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


@pytest.fixture(scope="module")
def backbone():
    b = load_backbone(model_spec("tiny-vjepa2"), RunOptions())
    b.ensure_loaded()
    return b


def test_tiny_is_saved_and_loaded_with_from_pretrained(backbone) -> None:
    check_saved_and_loaded(backbone, backbone.model)
    assert backbone.block_names == BLOCKS and backbone.is_video and not backbone.is_diffusion
    assert backbone.recipe_fields()["conditioning"]["input"]["normalize"]["from"] == (
        "video_preprocessor_config.json"
    )


def test_features_match_a_model_built_for_that_crop_size(backbone) -> None:
    """At 64x64 (the tiny was configured for 128) the RoPE grid follows the input: the layers equal
    those of the same weights loaded with crop_size=64."""
    from transformers import VJEPA2Model

    x = frames(16, 64, 64)
    a = backbone.features(x, [0], BLOCKS, seed_fn, ensemble=1)[0]
    assert tuple(a["layer.2"].shape) == (8, 48, 4, 4)
    assert backbone.temporal_map(16)[:2] == [[0, 1], [2, 3]]
    ref = layer_output(VJEPA2Model.from_pretrained(backbone.folder, crop_size=64), backbone.normalize(x), 2)
    torch.testing.assert_close(a["layer.2"], tokens_to_maps(ref, (8, 4, 4))[0])
    # and back at 128 the positions are the native ones again (nothing sticks from the 64 run)
    x128 = frames(4, 128, 128)
    b128 = backbone.features(x128, [0], ["layer.0"], seed_fn, ensemble=1)[0]["layer.0"]
    ref = layer_output(VJEPA2Model.from_pretrained(backbone.folder), backbone.normalize(x128), 0)
    torch.testing.assert_close(b128, tokens_to_maps(ref, (2, 8, 8))[0])


def layer_output(model: torch.nn.Module, x: torch.Tensor, n: int) -> torch.Tensor:
    got: list[torch.Tensor] = []
    hook = model.encoder.layer[n].register_forward_hook(lambda _m, _a, out: got.append(out[0]))
    with torch.no_grad():
        model.eval()(pixel_values_videos=x[None], skip_predictor=True)
    hook.remove()
    return got[0]


def test_norm_is_the_encoder_last_hidden_state(backbone) -> None:
    x = frames(4, 64, 64, seed=4)
    backbone.features(x, [0], ["layer.0"], seed_fn, ensemble=1)  # sets the RoPE grid to 64x64
    with torch.no_grad():
        last = backbone.model.encoder(pixel_values_videos=backbone.normalize(x)[None]).last_hidden_state
    check_norm_is_last_hidden_state(backbone, x, last, (2, 4, 4))
    check_block_shapes(backbone, x)


def test_one_forward_for_all_blocks_and_the_early_stop(backbone) -> None:
    x = frames(8, 64, 64, seed=1)
    check_one_forward_equals_one_per_block(backbone, x, [0], ["layer.1", "layer.3"])
    check_stops_after_deepest(backbone, x, 0, "layer.0")


def test_non_square_resolutions_and_odd_clips_are_refused(backbone) -> None:
    with pytest.raises(ConfigError, match="square"):
        backbone.check_resolution((128, 256))
    with pytest.raises(ConfigError, match="multiples of 16"):
        backbone.check_resolution((120, 120))
    with pytest.raises(ConfigError, match="multiple of the tubelet size 2"):
        load_backbone(model_spec("tiny-vjepa2", clip_len=5), RunOptions())
    with pytest.raises(ConfigError, match="not a diffusion model"):
        backbone.features(frames(2, 64, 64), [50], BLOCKS, seed_fn, ensemble=1)


def test_extract_end_to_end_on_the_synthetic_world(tmp_path: Path) -> None:
    world = write_tiny_world(tmp_path / "w")
    group = extract_world(world, tmp_path / "s", "tiny-vjepa2", resolution=(64, 64), clip_len=4)
    # 5 frames, clips of 4: [0..3] -> tubelets (0,1),(2,3); [4,4,4,4] -> (4,) kept, the pad dropped
    assert group.read("synth_000001", 0, "layer.1").shape == (3, 48, 4, 4)
    assert group.index().lookup("synth_000001", 0, "layer.1").time_map == ((0, 1), (2, 3), (4,))
