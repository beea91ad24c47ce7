"""Extraction presets (dift, seed002), per-family defaults, and flags overriding a preset."""

from __future__ import annotations

import pytest

from dvx.errors import ConfigError
from dvx.extract.noise import flow_noise_level, flow_sigma_for, flow_t_for_sigma
from dvx.extract.presets import (
    PRESET_FIELDS,
    default_dtype,
    default_timesteps,
    extract_config,
    preset_values,
    resolve_options,
    seed002_blocks,
    seed002_resize,
)


def test_dift_is_difts_davis_recipe() -> None:
    assert preset_values("dift", "sd-2.1", "davis") == {
        "timesteps": (51,),
        "ensemble": 8,
        "latent": "sample",
        "blocks": ("up.2",),
        "resize": "dift",
        "dtype": "float32",
    }
    with pytest.raises(ConfigError, match=r"--preset dift is DIFT's Stable Diffusion recipe.*sd3"):
        preset_values("dift", "sd3", "davis")
    with pytest.raises(ConfigError, match="unknown --preset 'dfit'"):
        preset_values("dfit", "sd-1.5", "davis")


@pytest.mark.parametrize(
    ("model", "dataset", "timesteps", "blocks", "resize"),
    [
        ("svd", "davis", (50,), ("up.2",), "dift"),
        ("svd", "hmdb51", (50,), ("up.1",), None),
        ("modelscope", "jhmdb", (50,), ("up.2",), "videowalk"),
        ("sd3", "ucf101", (16,), ("layer.11",), None),
        ("sd3", "cityscapes", (16,), ("layer.23",), None),
        ("wan-2.1", "ucf101", (16,), ("layer.11",), None),
        ("dinov2", "davis", (0,), ("norm",), "dift"),
        ("vjepa2", "davis", (0,), ("norm",), None),  # square inputs only: its own size
        ("vjepa2", "jhmdb", (0,), ("norm",), "videowalk"),
        ("videomae", "jhmdb", (0,), ("norm",), None),  # one fixed size
    ],
)
def test_seed002_per_family_and_dataset(
    model: str, dataset: str, timesteps: tuple, blocks: tuple, resize: str | None
) -> None:
    got = resolve_options("seed002", model, dataset, {})
    assert (got["timesteps"], got["blocks"], got["resize"]) == (timesteps, blocks, resize)
    assert set(got) <= set(PRESET_FIELDS)


def test_flags_beside_a_preset_override_it_and_the_config_records_the_resolved_values() -> None:
    cfg = extract_config("dift", "tiny-sd", "davis", "/data", "/store", ensemble=2, timesteps=(0, 51))
    assert (cfg.preset, cfg.ensemble, cfg.timesteps, cfg.latent, cfg.blocks) == (
        "dift",
        2,
        (0, 51),
        "sample",
        ("up.2",),
    )
    assert cfg.resize == "dift" and cfg.resolution is None
    # an explicit size (HxW or "model") replaces the preset's named one
    sized = extract_config("dift", "tiny-sd", "davis", "/d", "/s", resolution=(64, 64), resize=None)
    assert sized.resolution == (64, 64) and sized.resize is None
    own = extract_config("seed002", "tiny-sd", "davis", "/d", "/s", resolution=None, resize="model")
    assert own.resolution is None and own.resize is None
    plain = extract_config(None, "tiny-sd", "davis", "/d", "/s")
    assert (plain.preset, plain.timesteps, plain.ensemble, plain.latent, plain.resize) == (
        None,
        None,
        1,
        "mean",
        None,
    )


def test_default_timesteps_and_dtypes_per_family() -> None:
    assert default_timesteps("sd") == default_timesteps("svd") == default_timesteps("modelscope") == (50,)
    assert default_timesteps("sd3") == default_timesteps("wan") == (16,)
    assert default_timesteps("dinov2") == (0,)
    assert default_dtype("sd3", "cuda") == default_dtype("wan", "cuda:1") == "bfloat16"
    assert default_dtype("svd", "cuda") == "float16" and default_dtype("sd3", "cpu") == "float32"
    assert seed002_blocks("videomae", "ucf101") == ("norm",) and seed002_resize("sd", "movi") == "model"
    with pytest.raises(ConfigError, match="no extraction defaults"):
        default_timesteps("pixels")


def test_what_t16_means_for_a_flow_model() -> None:
    """seed 002's T = 16 for SD3: s = 0.016 before the shift, sigma = 0.0465 after shift 3; both recorded."""
    level = flow_noise_level(16, 3.0)
    assert level["sigma_unshifted"] == 0.016 and level["shift"] == 3.0
    assert level["sigma"] == pytest.approx(0.048 / 1.032) and level["model_timestep"] == pytest.approx(
        46.51, abs=0.01
    )
    # read as a shifted sigma of 0.016 instead, it would be dvx T = 5.4
    assert flow_t_for_sigma(0.016, 3.0) == pytest.approx(5.39, abs=0.01)
    assert flow_sigma_for(round(flow_t_for_sigma(0.25, 3.0)), 3.0) == pytest.approx(0.25, abs=2e-3)


def test_sd3_and_wan_compute_in_bfloat16_on_cuda_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from dvx.config import ExtractConfig
    from dvx.extract.runner import run_options

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)

    def dtype(model: str, **kw: object) -> str:
        cfg = ExtractConfig(model=model, dataset="synthetic", data_root="/", store="s", device="cuda", **kw)
        return run_options(cfg).dtype

    assert dtype("tiny-sd3") == dtype("wan-2.1") == "bfloat16"
    assert dtype("svd") == dtype("dinov2") == "float16"
    assert dtype("sd3", dtype="float16") == "float16"  # an explicit --dtype wins (and is recorded)
