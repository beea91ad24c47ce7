"""The shared VAE (`dvx twin vae`): training makes the latents carry the image, the folder is a plain
diffusers VAE that `dvx twin train --vae` uses, the same config is reused and another refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dvx.errors import ConfigError
from dvx.twin.vae import VaeConfig, train_vae
from tests.twin.conftest import tiny_config


def _cfg(world: Path, out: Path, **kw: object) -> VaeConfig:
    base: dict[str, object] = dict(steps=100, batch=4, resolution=(32, 48), threads=1, progress=False)
    return VaeConfig(data_root=str(world), out=str(out), **(base | kw))  # type: ignore[arg-type]


def _reconstruction_error(vae: torch.nn.Module, frames: torch.Tensor) -> float:
    with torch.no_grad():
        z = vae.encode(frames).latent_dist.mean
        return float(torch.nn.functional.mse_loss(vae.decode(z, num_frames=1).sample, frames))


@pytest.mark.slow
def test_a_trained_vae_reconstructs_better_than_its_init_and_loads_with_diffusers(
    train_world: Path, tmp_path: Path
) -> None:
    from diffusers import AutoencoderKLTemporalDecoder

    from dvx.extract.backbones.svd import tiny_vae
    from dvx.twin.vae import _frames

    cfg = _cfg(train_world, tmp_path / "vae")
    report = train_vae(cfg, log=lambda _: None)
    assert not report.reused and report.frames == 12  # 3 videos x 4 frames
    vae = AutoencoderKLTemporalDecoder.from_pretrained(report.out).eval()
    frames = _frames(cfg)
    assert _reconstruction_error(vae, frames) < 0.6 * _reconstruction_error(tiny_vae(cfg.seed).eval(), frames)
    saved = json.loads((report.out / "dvx-config.json").read_text())
    assert saved["command"] == "dvx twin vae" and saved["config"]["steps"] == 100
    assert len(json.loads((report.out / "losses.json").read_text())["step_loss"]) == 100
    # the same config is reused, another one refused, a folder holding something else refused
    assert train_vae(cfg, log=lambda _: None).reused
    with pytest.raises(ConfigError, match="other settings"):
        train_vae(_cfg(train_world, tmp_path / "vae", steps=101), log=lambda _: None)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds something else"):
        train_vae(_cfg(train_world, tmp_path / "other", steps=1), log=lambda _: None)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    # a twin trained on it freezes exactly those weights into its checkpoints and says so in its config
    from dvx.twin.train import run_train

    twin = run_train(
        tiny_config(train_world, tmp_path / "twin", "video", vae=str(report.out)), log=lambda _: None
    )
    ckpt = AutoencoderKLTemporalDecoder.from_pretrained(twin.checkpoints[2] / "vae")
    assert all(torch.equal(a, b) for a, b in zip(ckpt.parameters(), vae.parameters(), strict=True))
    assert json.loads((twin.out / "dvx-config.json").read_text())["vae"]["trained"] == str(report.out)


def test_vae_settings_and_folders_are_checked(train_world: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--steps"):
        _cfg(train_world, tmp_path / "v", steps=0)
    with pytest.raises(ConfigError, match="--resolution"):
        _cfg(train_world, tmp_path / "v", resolution=(30, 48))
    with pytest.raises(ConfigError, match="--kl-weight"):
        _cfg(train_world, tmp_path / "v", kl_weight=float("nan"))
    with pytest.raises(ConfigError, match="not a diffusers VAE folder"):
        tiny_config(train_world, tmp_path / "t", "video", vae=str(tmp_path / "missing"))
