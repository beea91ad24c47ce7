"""DINOv2 on its tiny twin: a non-diffusion image baseline, patch tokens of every layer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dvx.errors import ConfigError
from dvx.extract.base import RunOptions
from dvx.extract.encoder import IMAGENET_MEAN, pixel_normalization
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
    b = load_backbone(model_spec("tiny-dinov2"), RunOptions(batch_size=2))
    b.ensure_loaded()
    return b


def test_tiny_is_saved_and_loaded_with_from_pretrained(backbone) -> None:
    check_saved_and_loaded(backbone, backbone.model)
    assert backbone.block_names == BLOCKS and not backbone.is_diffusion and not backbone.is_video


def test_features_are_patch_tokens_of_each_layer_without_cls(backbone) -> None:
    x = frames(3, 56, 112)  # 4x8 patches of 14; batch_size 2 -> two forwards
    a = backbone.features(x, [0], BLOCKS, seed_fn, ensemble=1)
    assert list(a) == [0] and tuple(a[0]["layer.2"].shape) == (3, 32, 4, 8)
    assert a[0]["layer.2"].dtype == torch.float32
    b = backbone.features(x, [0], ["layer.2"], lambda *_: 7, ensemble=1)  # seeds are irrelevant
    assert torch.equal(a[0]["layer.2"], b[0]["layer.2"])
    # the reference: hidden states of transformers' own output, CLS dropped, normalised pixels in
    with torch.no_grad():
        ref = backbone.model(pixel_values=backbone.normalize(x), output_hidden_states=True).hidden_states
    torch.testing.assert_close(a[0]["layer.2"], tokens_to_maps(ref[3][:, 1:], (1, 4, 8))[:, 0])


def test_norm_is_the_last_hidden_state_patch_tokens(backbone) -> None:
    """``norm`` = DINO's get_intermediate_layers(n=1) = transformers' last_hidden_state, CLS dropped."""
    x = frames(2, 56, 84, seed=4)
    with torch.no_grad():
        last = backbone.model(pixel_values=backbone.normalize(x)).last_hidden_state
    check_norm_is_last_hidden_state(backbone, x, last[:, 1:].flatten(0, 1)[None], (2, 4, 6))
    check_block_shapes(backbone, x)


def test_one_forward_for_all_blocks_and_the_early_stop(backbone) -> None:
    x = frames(2, 42, 70, seed=1)
    check_one_forward_equals_one_per_block(backbone, x, [0], ["layer.0", "layer.3"])
    check_stops_after_deepest(backbone, x, 0, "layer.1")


def test_noise_options_and_bad_resolutions_are_refused(backbone) -> None:
    x = frames(1, 28, 28)
    with pytest.raises(ConfigError, match="not a diffusion model"):
        backbone.features(x, [50], BLOCKS, seed_fn, ensemble=1)
    with pytest.raises(ConfigError, match="use --ensemble 1"):
        backbone.features(x, [0], BLOCKS, seed_fn, ensemble=2)
    with pytest.raises(ConfigError, match="multiples of 14"):
        backbone.check_resolution((64, 128))
    backbone.check_resolution((126, 252))


def test_recipe_records_the_pixel_normalisation(backbone, tmp_path: Path) -> None:
    fields = backbone.recipe_fields()
    assert len(fields["weights"]) == 64 and fields["latent"] == "none" and fields["noise"]["kind"] == "none"
    assert fields["conditioning"]["input"]["normalize"]["from"] == "preprocessor_config.json"
    assert backbone.noise_level(0) == {"T": 0, "noise": "none"}
    (tmp_path / "config.json").write_text("{}")
    assert pixel_normalization(tmp_path) == {
        "mean": list(IMAGENET_MEAN),
        "std": [0.229, 0.224, 0.225],
        "from": "imagenet default",
    }
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.5] * 3, "image_std": [0.5] * 3})
    )
    assert pixel_normalization(tmp_path)["mean"] == [0.5] * 3


def test_extract_end_to_end_on_the_synthetic_world(tmp_path: Path) -> None:
    world = write_tiny_world(tmp_path / "w")
    group = extract_world(world, tmp_path / "s", "tiny-dinov2", resolution=(42, 56), batch_size=4)
    assert group.recipe.latent == "none" and group.index().timesteps() == [0]
    assert group.read("synth_000001", 0, "layer.3").shape == (5, 32, 3, 4)


def test_the_runner_refuses_noise_options_before_writing_anything(tmp_path: Path) -> None:
    from dvx.config import ExtractConfig
    from dvx.extract.runner import run_extract

    world = write_tiny_world(tmp_path / "w")
    base = dict(model="tiny-dinov2", dataset="synthetic", data_root=str(world), progress=False)
    with pytest.raises(ConfigError, match="use --ensemble 1"):
        run_extract(ExtractConfig(store=str(tmp_path / "a"), ensemble=2, **base))
    with pytest.raises(ConfigError, match="use --timesteps 0"):
        run_extract(ExtractConfig(store=str(tmp_path / "b"), timesteps=(0, 50), **base))
    for store in ("a", "b"):
        assert not any((tmp_path / store).rglob("tiny-dinov2@*"))  # no recipe group was created


def test_a_local_checkpoint_with_registers_drops_them_too(tmp_path: Path) -> None:
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    torch.manual_seed(0)
    cfg = Dinov2WithRegistersConfig(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_register_tokens=4,
        image_size=28,
        patch_size=14,
    )
    Dinov2WithRegistersModel(cfg).save_pretrained(tmp_path / "reg")
    b = load_backbone(model_spec("dinov2", weights=str(tmp_path / "reg")), RunOptions())
    assert b.prefix_tokens == 5 and b.normalization["from"] == "imagenet default"
    x = frames(1, 28, 42)
    out = b.features(x, [0], ["layer.1"], seed_fn, ensemble=1)[0]["layer.1"]
    with torch.no_grad():
        ref = b.model(pixel_values=b.normalize(x), output_hidden_states=True).hidden_states[2]
    assert ref.shape[1] == 1 + 4 + 2 * 3
    torch.testing.assert_close(out, tokens_to_maps(ref[:, 5:], (1, 2, 3))[:, 0])


def test_a_clone_with_a_legacy_bin_digests_like_the_safetensors_download(backbone, tmp_path: Path) -> None:
    import shutil

    from dvx.extract.encoder import model_files

    hub = tmp_path / "hub"  # what a hub download holds: safetensors only
    clone = tmp_path / "clone"  # a git clone of the same repo: the unused legacy .bin as well
    for d in (hub, clone):
        shutil.copytree(backbone.folder, d)
    torch.save(backbone.model.state_dict(), clone / "pytorch_model.bin")
    (clone / "pytorch_model.bin.index.json").write_text("{}")
    assert (
        model_files(clone)
        == model_files(hub)
        == ["config.json", "model.safetensors", "preprocessor_config.json"]
    )
    a = load_backbone(model_spec("dinov2", weights=str(hub)), RunOptions())
    b = load_backbone(model_spec("dinov2", weights=str(clone)), RunOptions())
    assert a.weights == b.weights == backbone.weights
    # a folder with the .bin alone: those are the weights read and hashed
    (hub / "model.safetensors").unlink()
    shutil.copy(clone / "pytorch_model.bin", hub / "pytorch_model.bin")
    assert model_files(hub) == ["config.json", "preprocessor_config.json", "pytorch_model.bin"]
